"""Framing: a u32 big-endian length, then that many bytes of one msgpack map.

This module knows nothing of frame types or sockets.  :class:`FrameDecoder`
turns a stream of bytes into msgpack maps; :func:`encode_frame` does the
reverse.  Limits are checked before memory is spent: the length prefix is
checked as soon as its four bytes arrive, so a peer announcing 4 GiB is refused
without buffering a byte of the body, and the decoder never holds more than one
partial frame (at most ``max_frame`` bytes plus a read's worth).

A decoder that raised is failed for good: every later call raises the same
error, so a caller cannot accidentally resynchronise on garbage.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import msgpack

from .errors import Code, LocalProtocolError, RemoteProtocolError

#: Default and hard ceiling for a frame body, in bytes.
DEFAULT_MAX_FRAME = 64 * 1024
HEADER = struct.Struct(">I")
HEADER_SIZE = HEADER.size

_pack = msgpack.Packer(use_bin_type=True, autoreset=True).pack


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError("msgpack ext types are not allowed")


def encode_body(body: dict[str, Any]) -> bytes:
    """Pack one map with its length prefix (no size check: see :func:`encode_frame`)."""
    payload: bytes = _pack(body)
    return HEADER.pack(len(payload)) + payload


def encode_frame(body: dict[str, Any], max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """Pack one map as a frame, refusing to produce one the peer would reject."""
    payload: bytes = _pack(body)  # (encode_body, inline)
    if len(payload) > max_frame:
        raise LocalProtocolError(
            Code.FRAME_TOO_LARGE,
            f"frame of {len(payload)} bytes exceeds the limit of {max_frame}",
        )
    return HEADER.pack(len(payload)) + payload


def pack_value(value: Any) -> bytes:
    """msgpack for what is not a frame: the daemon's commands and snapshots (Redis)."""
    data: bytes = _pack(value)
    return data


def unpack_value(data: bytes) -> Any:
    """The inverse of :func:`pack_value`; raises ``ValueError`` on bad bytes."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_refuse_ext)
    except Exception as exc:  # msgpack raises many types; all mean "bad bytes"
        raise ValueError(f"not valid msgpack: {exc}") from exc


def decode_body(payload: bytes | bytearray, max_frame: int = DEFAULT_MAX_FRAME) -> dict[str, Any]:
    """Unpack one frame body into a map with a string ``t``; raise on anything else."""
    try:
        obj = msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=True,
            use_list=True,
            ext_hook=_refuse_ext,
            max_str_len=max_frame,
            max_bin_len=max_frame,
            max_array_len=max_frame,
            max_map_len=max_frame,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises many types; all mean "bad bytes"
        raise RemoteProtocolError(Code.BAD_FRAME, "frame body is not valid msgpack") from exc
    if not isinstance(obj, dict):
        raise RemoteProtocolError(Code.BAD_FRAME, "frame body must be a msgpack map")
    if not isinstance(obj.get("t"), str):
        raise RemoteProtocolError(Code.BAD_FRAME, "frame has no string type key 't'")
    return obj


class FrameDecoder:
    """Incremental frame decoder: :meth:`feed` bytes, iterate decoded maps."""

    __slots__ = ("_buf", "_error", "_need", "completed", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        # The bytes of a frame begun and not finished, in a bytearray made only
        # then: a decoder between frames (an idle connection's) holds none, and
        # whole frames are read from the data fed, not copied in first.
        self._buf: bytes | bytearray = b""
        self._need: int | None = None  # body length once the header is read
        self._error: RemoteProtocolError | None = None
        self.completed = 0  # frames whose bytes have all arrived

    @property
    def buffered(self) -> int:
        """Bytes held for a frame not yet complete."""
        return len(self._buf)

    @property
    def started(self) -> bool:
        """Whether a frame has begun (a byte of its header or more) and not ended."""
        return self._need is not None or bool(self._buf)

    def discard(self) -> None:
        """Let go of the bytes of an unfinished frame (the stream is gone)."""
        self._buf = b""
        self._need = None

    @property
    def failed(self) -> bool:
        return self._error is not None

    def feed(self, data: bytes) -> Iterator[dict[str, Any]]:
        """Add bytes and yield every complete frame body they finish.

        Raises :class:`RemoteProtocolError` at the first bad frame; frames
        before it in the same data have been yielded already.
        """
        if self._error is not None:
            raise self._error
        held = self._buf
        if held:
            held += data  # (a bytearray: the unfinished frame grows in place)
            buf: bytes | bytearray = held
        else:
            buf = data
        pos = 0
        try:
            while True:
                if self._need is None:
                    if len(buf) - pos < HEADER_SIZE:
                        return
                    (length,) = HEADER.unpack_from(buf, pos)
                    if not 0 < length <= self.max_frame:
                        self._check_length(length)  # raises
                    self._need = length
                    pos += HEADER_SIZE
                need = self._need
                if len(buf) - pos < need:
                    return
                body = buf[pos : pos + need]
                pos += need
                self._need = None
                self.completed += 1
                yield decode_body(body, self.max_frame)
        except RemoteProtocolError as exc:
            self._fail(exc)
            raise
        finally:
            if self._error is None:
                self._hold(buf, pos)

    def _hold(self, buf: bytes | bytearray, pos: int) -> None:
        """Keep what is left of ``buf`` after ``pos``: an unfinished frame."""
        held = self._buf
        if buf is held and isinstance(held, bytearray):  # what was read goes, in place
            if pos:
                del held[:pos]
            if not held:
                self._buf = b""
        elif pos < len(buf):
            self._buf = bytearray(memoryview(buf)[pos:])

    def eof(self) -> None:
        """Tell the decoder the stream ended; raise if a frame was cut short."""
        if self._error is not None:
            raise self._error
        if self._buf:
            self._fail(
                RemoteProtocolError(Code.TRUNCATED, "connection ended in the middle of a frame")
            )
            assert self._error is not None
            raise self._error

    def _fail(self, exc: RemoteProtocolError) -> None:
        self._error = exc
        self._buf = b""

    def _check_length(self, length: int) -> None:
        if length == 0:
            raise RemoteProtocolError(Code.EMPTY_FRAME, "frame length 0 is not allowed")
        if length > self.max_frame:
            raise RemoteProtocolError(
                Code.FRAME_TOO_LARGE,
                f"frame of {length} bytes exceeds the limit of {self.max_frame}",
            )
