"""Framing: the decoder against split, joined, empty, huge, cut and garbage input."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from anonchat.errors import Code, LocalProtocolError, RemoteProtocolError
from anonchat.wire import DEFAULT_MAX_FRAME, FrameDecoder, encode_body, encode_frame

FRAMES = [{"t": "ping", "n": i} for i in range(3)] + [{"t": "say", "id": 7, "text": "héllo " * 50}]
STREAM = b"".join(encode_frame(f) for f in FRAMES)


def decode_all(chunks: list[bytes], max_frame: int = DEFAULT_MAX_FRAME) -> list[dict[str, object]]:
    decoder = FrameDecoder(max_frame)
    out: list[dict[str, object]] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    decoder.eof()
    return out


def test_many_frames_in_one_read() -> None:
    assert decode_all([STREAM]) == FRAMES


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_split_at_every_byte(cut: int) -> None:
    assert decode_all([STREAM[:cut], STREAM[cut:]]) == FRAMES


def test_one_byte_at_a_time() -> None:
    assert decode_all([STREAM[i : i + 1] for i in range(len(STREAM))]) == FRAMES


@pytest.mark.parametrize("cut", [1, 3, 4, 9, len(STREAM) - 1])
def test_bytearrays_fed_are_neither_changed_nor_kept(cut: int) -> None:
    """Whole frames are read from the data fed, and only an unfinished frame is
    copied and held: a caller's bytearray, reused for its next read, is neither
    changed nor held on to."""
    decoder = FrameDecoder()
    first = bytearray(STREAM[:cut])
    out = list(decoder.feed(first))  # type: ignore[arg-type]
    assert first == STREAM[:cut]
    first[:] = b"\xff" * len(first)  # the caller reads into it again
    out += decoder.feed(bytearray(STREAM[cut:]))  # type: ignore[arg-type]
    decoder.eof()
    assert out == FRAMES


def test_nothing_is_held_between_frames() -> None:
    """An idle decoder (the daemon has one per connection) holds no buffer."""
    decoder = FrameDecoder()
    assert list(decoder.feed(STREAM[:5])) == []
    assert decoder.buffered and decoder.started
    assert list(decoder.feed(STREAM[5:])) == FRAMES
    assert decoder.buffered == 0 and not decoder.started
    assert not isinstance(decoder._buf, bytearray)


def test_length_zero_is_refused() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        list(FrameDecoder().feed(b"\x00\x00\x00\x00"))
    assert info.value.code == Code.EMPTY_FRAME


def test_oversized_length_is_refused_from_the_header_alone() -> None:
    decoder = FrameDecoder()
    with pytest.raises(RemoteProtocolError) as info:
        list(decoder.feed(struct.pack(">I", 0xFFFFFFFF)))  # 4 GiB, no body sent at all
    assert info.value.code == Code.FRAME_TOO_LARGE
    assert decoder.buffered == 0


def test_frame_at_the_limit_and_one_past() -> None:
    limit = 1000
    body = {"t": "x", "pad": ""}
    overhead = len(msgpack.packb(body))
    at_limit = {"t": "x", "pad": "a" * (limit - overhead - 2)}  # str8 header adds 1 byte
    frame = encode_body(at_limit)
    assert len(frame) - 4 == limit
    assert decode_all([frame], max_frame=limit) == [at_limit]
    past = encode_body({"t": "x", "pad": "a" * (limit - overhead - 1)})
    assert len(past) - 4 == limit + 1
    with pytest.raises(RemoteProtocolError) as info:
        decode_all([past[:4]], max_frame=limit)
    assert info.value.code == Code.FRAME_TOO_LARGE


def test_encoder_refuses_what_the_peer_would_refuse() -> None:
    with pytest.raises(LocalProtocolError) as info:
        encode_frame({"t": "x", "pad": "a" * 2000}, max_frame=1000)
    assert info.value.code == Code.FRAME_TOO_LARGE


def test_truncated_frame_then_eof() -> None:
    decoder = FrameDecoder()
    assert list(decoder.feed(STREAM[:-3])) == FRAMES[:-1]
    with pytest.raises(RemoteProtocolError) as info:
        decoder.eof()
    assert info.value.code == Code.TRUNCATED


@pytest.mark.parametrize(
    "body",
    [
        b"\xc1",  # never-used msgpack byte
        b"\x93\x01\x02\x03",  # an array, not a map
        msgpack.packb({"n": 1}),  # no type key
        msgpack.packb({"t": 5}),  # type is not a string
        msgpack.packb({1: "x", "t": "ping"}),  # integer key
        msgpack.packb({"t": "ping"}) + b"\x00",  # trailing byte inside the frame
        msgpack.packb(msgpack.ExtType(1, b"abc")),  # ext type
        msgpack.packb({"t": "ping", "x": msgpack.ExtType(1, b"a")}),
        b"\x91" * 5000,  # deep nesting
    ],
)
def test_garbage_bodies_are_bad_frames(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        list(FrameDecoder().feed(struct.pack(">I", len(body)) + body))
    assert info.value.code == Code.BAD_FRAME


def test_frames_before_the_bad_one_are_delivered_and_the_decoder_stays_failed() -> None:
    decoder = FrameDecoder()
    good = encode_frame({"t": "ping", "n": 1})
    seen = []
    with pytest.raises(RemoteProtocolError):
        for body in decoder.feed(good + b"\x00\x00\x00\x01\xc1" + good):
            seen.append(body)
    assert seen == [{"t": "ping", "n": 1}]
    assert decoder.failed
    with pytest.raises(RemoteProtocolError):
        list(decoder.feed(good))


@given(st.lists(st.binary(max_size=200), max_size=8))
def test_any_bytes_raise_only_our_error(chunks: list[bytes]) -> None:
    decoder = FrameDecoder(max_frame=512)
    try:
        for chunk in chunks:
            for body in decoder.feed(chunk):
                assert isinstance(body, dict) and isinstance(body["t"], str)
        decoder.eof()
    except RemoteProtocolError:
        pass


@given(
    st.lists(
        st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**64 - 1) | st.text()),
        max_size=5,
    )
)
def test_valid_frames_survive_any_split(bodies: list[dict[str, object]]) -> None:
    frames = [{**b, "t": "x"} for b in bodies]
    stream = b"".join(encode_frame(f) for f in frames)
    for cut in range(0, len(stream), max(1, len(stream) // 7)):
        assert decode_all([stream[:cut], stream[cut:]]) == frames
