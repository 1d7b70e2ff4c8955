"""Bad bytes from one client: it gets a clear error and is closed; others lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
from collections.abc import Awaitable, Callable

import msgpack
import pytest

from anonchat import events as ev
from anonchat.client import Client
from anonchat.daemon import Daemon
from anonchat.errors import Code

from .conftest import ClientFactory, DaemonFactory
from .helpers import RawPeer, collect, dial, hello_bytes, next_event


def frame_of(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


HELLO = hello_bytes()
BAD_INPUTS: list[tuple[str, bytes, str]] = [
    ("length zero", b"\x00\x00\x00\x00", Code.EMPTY_FRAME),
    ("4 GiB length prefix", b"\xff\xff\xff\xff", Code.FRAME_TOO_LARGE),
    ("one past the limit", struct.pack(">I", 65537), Code.FRAME_TOO_LARGE),
    ("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", Code.FRAME_TOO_LARGE),
    ("not msgpack", frame_of(b"\xc1\xc1"), Code.BAD_FRAME),
    (
        "trailing bytes in frame",
        frame_of(msgpack.packb({"t": "hello", "v": 1}) + b"\x01"),
        Code.BAD_FRAME,
    ),
    ("array not map", frame_of(msgpack.packb([1, 2])), Code.BAD_FRAME),
    ("no hello", frame_of(msgpack.packb({"t": "list", "id": 1})), Code.HELLO_REQUIRED),
    ("wrong version", frame_of(msgpack.packb({"t": "hello", "v": 99})), Code.UNSUPPORTED_VERSION),
    (
        "unknown type after hello",
        HELLO + frame_of(msgpack.packb({"t": "launch"})),
        Code.UNKNOWN_TYPE,
    ),
    (
        "server-only frame",
        HELLO + frame_of(msgpack.packb({"t": "ok", "id": 1})),
        Code.UNEXPECTED_FRAME,
    ),
    (
        "wrong field type",
        HELLO + frame_of(msgpack.packb({"t": "join", "id": 1, "room": 5})),
        Code.BAD_FIELD,
    ),
    (
        "unknown key",
        HELLO + frame_of(msgpack.packb({"t": "list", "id": 1, "x": 1})),
        Code.BAD_FIELD,
    ),
    ("second hello", HELLO + HELLO, Code.UNEXPECTED_FRAME),
]


async def honest_pair(daemon: Daemon) -> tuple[Client, Client]:
    a = await dial(daemon, "honest-a")
    b = await dial(daemon, "honest-b")
    await a.create("safe")
    await b.join("safe")
    await next_event(a, ev.Presence)
    return a, b


@pytest.mark.parametrize(("name", "data", "code"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
async def test_bad_input_closes_only_the_offender(
    daemon: Daemon, name: str, data: bytes, code: str
) -> None:
    a, b = await honest_pair(daemon)
    await a.say("safe", "before")
    peer = await RawPeer.open(daemon)
    await peer.send(data)
    frames = await peer.read_until_closed()
    errors = [f for f in frames if isinstance(f, ev.Error)]
    assert len(errors) == 1 and errors[0].code == code and errors[0].id is None
    assert errors[0].msg  # a sentence for people
    await a.say("safe", "after")
    assert [m.text for m in await collect(b, ev.Msg, 2)] == ["before", "after"]
    assert len(daemon.sessions) == 2
    await a.close()
    await b.close()


@pytest.mark.parametrize("plaintext", [False, True])
async def test_body_trickled_then_eof_is_truncated(
    make_daemon: DaemonFactory, plaintext: bool
) -> None:
    # The daemon answers a peer that half-closed, under TLS too (daemon/tls.py).
    daemon = await make_daemon(plaintext=plaintext)
    peer = await RawPeer.open(daemon)
    for byte in HELLO[:-1]:
        await peer.send(bytes([byte]))
    peer.half_close()
    frames = await peer.read_until_closed()
    assert [f.code for f in frames if isinstance(f, ev.Error)] == [Code.TRUNCATED]


async def test_hello_trickled_a_byte_at_a_time_works(daemon: Daemon) -> None:
    peer = await RawPeer.open(daemon)
    for byte in hello_bytes("slowpoke"):
        await peer.send(bytes([byte]))
    hello = await peer.read_frame()
    assert isinstance(hello, ev.ServerHello) and hello.nick == "slowpoke"
    await peer.close()


async def test_many_frames_in_one_write(connect: ClientFactory, daemon: Daemon) -> None:
    watcher = await connect("watcher")
    await watcher.create("r")
    peer = await RawPeer.open(daemon)
    reqs = [ev.Join(id=1, room="r")] + [ev.Say(id=i, room="r", text=f"m{i}") for i in range(2, 52)]
    await peer.send(
        hello_bytes("burst") + b"".join(frame_of(msgpack.packb(r.to_wire())) for r in reqs)
    )
    msgs = await collect(watcher, ev.Msg, 50)
    assert [m.text for m in msgs] == [f"m{i}" for i in range(2, 52)]
    await peer.close()


async def test_half_closed_socket_is_a_quit(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(resume_window=0.3)
    watcher = await dial(daemon, "watcher")
    await watcher.create("r")
    peer = await RawPeer.open(daemon)
    await peer.send(
        hello_bytes("half") + frame_of(msgpack.packb(ev.Join(id=1, room="r").to_wire()))
    )
    await next_event(watcher, ev.Presence)
    peer.half_close()
    p = await next_event(watcher, ev.Presence)  # once the resume window has passed
    assert (p.kind, p.nick) == ("quit", "half")
    await peer.read_until_closed()
    await watcher.close()


async def test_hello_timeout(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(hello_timeout=0.3)
    peer = await RawPeer.open(daemon)
    frames = await peer.read_until_closed()
    assert [f.code for f in frames if isinstance(f, ev.Error)] == [Code.HELLO_TIMEOUT]


async def test_idle_client_is_pinged_then_closed(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(ping_interval=0.2, idle_timeout=0.6)
    peer = await RawPeer.open(daemon)
    await peer.send(hello_bytes())
    frames = await peer.read_until_closed()  # never answers the ping
    assert isinstance(frames[0], ev.ServerHello)
    assert any(isinstance(f, ev.Ping) for f in frames)
    assert isinstance(frames[-1], ev.Error) and frames[-1].code == Code.IDLE_TIMEOUT


async def test_client_answering_pings_stays_connected(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(ping_interval=0.2, idle_timeout=2.0)
    client = await dial(daemon)
    await asyncio.sleep(3.0)  # past idle_timeout, with no traffic of its own but pongs
    assert client.closed is None
    assert await client.ping() >= 0
    await client.close()


async def test_connection_limit(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(max_connections=2)
    a = await dial(daemon)
    b = await dial(daemon)
    from anonchat.errors import ConnectionClosed

    with pytest.raises(ConnectionClosed) as info:
        await dial(daemon)
    assert info.value.code == Code.SERVER_FULL
    await a.close()
    await asyncio.sleep(0.05)
    c = await dial(daemon)  # a slot is free again
    for client in (b, c):
        await client.close()


async def test_reader_that_never_reads_is_dropped_sender_unaffected(
    make_daemon: DaemonFactory,
) -> None:
    daemon = await make_daemon(sendq=64 * 1024)
    sender = await dial(daemon, nick="sender")
    listener = await dial(daemon, nick="listener")
    await sender.create("flood")
    await listener.join("flood")
    stuck = await RawPeer.open(daemon)
    # A tiny receive buffer so the kernel cannot absorb what the daemon sends.
    stuck.writer.get_extra_info("socket").setsockopt(
        __import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096
    )
    await stuck.send(
        hello_bytes("stuck") + frame_of(msgpack.packb(ev.Join(id=1, room="flood").to_wire()))
    )
    text = "x" * 3000
    received = asyncio.create_task(collect(listener, ev.Msg, 3000, timeout=60))
    for _ in range(3000):  # 9 MB: more than any kernel buffer holds for it
        await sender.say("flood", text)
    assert len(await received) == 3000
    assert all(s.nick != "stuck" for s in daemon.sessions)  # its connection was dropped
    await sender.close()
    await listener.close()
    await stuck.close()


Check = Callable[[], Awaitable[None]]


async def test_replies_before_a_bad_frame_are_sent_then_the_error(daemon: Daemon) -> None:
    peer = await RawPeer.open(daemon)
    await peer.send(
        hello_bytes("quick")
        + frame_of(msgpack.packb({"t": "ping", "n": 5}))
        + frame_of(msgpack.packb({"t": "list", "id": 1}))
        + b"\x00\x00\x00\x00"
    )
    frames = await peer.read_until_closed()
    assert [type(f) for f in frames] == [ev.ServerHello, ev.Pong, ev.Rooms, ev.Error]
    assert isinstance(frames[-1], ev.Error) and frames[-1].code == Code.EMPTY_FRAME


async def test_a_huge_unknown_key_still_gets_a_short_error(daemon: Daemon) -> None:
    peer = await RawPeer.open(daemon)
    await peer.send(HELLO + frame_of(msgpack.packb({"t": "list", "id": 1, "k" * 5000: 1})))
    frames = await peer.read_until_closed()
    error = frames[-1]
    assert isinstance(error, ev.Error) and error.code == Code.BAD_FIELD
    assert len(error.msg) <= ev.SHORT_MAX


async def test_a_tls_record_that_does_not_decrypt_ends_only_that_connection(
    make_daemon: DaemonFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes forged below TLS, after the handshake (an application-data record
    that fails its tag): the daemon's TLS layer ends that connection quietly,
    a lost connection like any other; nothing is logged with a traceback and
    the others go on."""
    caplog.set_level(logging.DEBUG, logger="anonchat")
    daemon = await make_daemon()
    watcher = await dial(daemon, "watcher")
    peer = await RawPeer.open(daemon)
    await peer.send(hello_bytes("forger"))
    assert isinstance(await peer.read_frame(), ev.ServerHello)
    raw = peer.writer.get_extra_info("socket")._sock  # under asyncio's TLS
    raw.send(b"\x17\x03\x03\x00\x20" + bytes(32))
    with contextlib.suppress(ssl.SSLError):  # the daemon's alert: bad_record_mac
        await peer.read_until_closed()
    assert [s.nick for s in daemon.sessions] == ["watcher"]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
    await watcher.ping()
    await watcher.close()
