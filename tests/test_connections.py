"""The daemon's connection machinery: one protocol object per connection (no
task, no streams), reading paused while a session holds, faults kept to one
session.  Real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

import msgpack
import pytest

from anonchat import events as ev
from anonchat.daemon import Daemon
from anonchat.daemon import session as session_module
from anonchat.daemon.rooms import NO_SECRET_ROOMS
from anonchat.errors import Code

from .conftest import DaemonFactory
from .helpers import RawPeer, collect, dial, hello_bytes


def frame_of(body: dict[str, Any]) -> bytes:
    data: bytes = msgpack.packb(body)
    return struct.pack(">I", len(data)) + data


async def read_until(peer: RawPeer, done: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not done(peer.frames):
            data = await peer.reader.read(65536)
            assert data, "closed early"
            peer._decode(data)


@pytest.mark.parametrize("plaintext", [True, False])
async def test_idle_connections_hold_no_task_and_no_unused_bucket(
    make_daemon: DaemonFactory, plaintext: bool
) -> None:
    daemon = await make_daemon(plaintext=plaintext)
    first = await RawPeer.open(daemon)  # the first connection may start the loop's machinery
    await first.send(hello_bytes("first"))
    await read_until(first, lambda fs: bool(fs))
    tasks = len(asyncio.all_tasks())
    peers = []
    for n in range(20):
        peer = await RawPeer.open(daemon)
        await peer.send(hello_bytes(f"idle{n}") + frame_of({"t": "list", "id": 1}))
        await read_until(peer, lambda fs: any(isinstance(f, ev.Rooms) for f in fs))
        peers.append(peer)
    assert len(daemon.sessions) == 21
    assert len(asyncio.all_tasks()) == tasks  # no task per connection
    for session in daemon.sessions:
        limiter = session.limiter
        assert limiter.bytes  # it has read
        assert (limiter.messages, limiter.room_joins, limiter.secret_joins) == (0.0, 0.0, 0.0)
        assert not limiter.strikes
    for peer in [first, *peers]:
        await peer.close()


async def test_an_idle_session_holds_nothing_it_no_longer_needs(
    make_daemon: DaemonFactory,
) -> None:
    """What an idle connection costs is kept to what it needs (the benchmark
    measures the bytes; this holds the structure): no ``__dict__`` anywhere
    per connection, no queue made before something is queued, no read buffer
    between frames, the resume token dropped once sent, the address's keyed
    hash the listener counted it under (not worked out again)."""
    daemon = await make_daemon(plaintext=True)
    peers = []
    for n in range(2):
        peer = await RawPeer.open(daemon)
        await peer.send(
            hello_bytes(f"idle{n}") + frame_of({"t": "create", "id": 1, "room": f"r{n}"})
        )
        await read_until(peer, lambda fs: any(isinstance(f, ev.Joined) for f in fs))
        peers.append(peer)
    hellos = [next(f for f in p.frames if isinstance(f, ev.ServerHello)) for p in peers]
    assert all(len(h.token) == 16 for h in hellos)  # the client got its token
    key = daemon.per_address.key_of("127.0.0.1")
    for session in daemon.sessions:
        for part in (session, session.conn, session.conn._decoder, session.limiter):
            assert not hasattr(part, "__dict__"), type(part)
        assert session.conn._out is None and session.conn._early_pings is None
        assert session.get_buffer is daemon.get_buffer  # no bound method per session
        assert session.out == () and session.out_bytes == 0  # no queue made
        assert session.secret_rooms is NO_SECRET_ROOMS  # one empty table for all
        assert session.conn._decoder._buf == b""
        assert not isinstance(session.conn._decoder._buf, bytearray)
        assert session.token == b""  # sent; the shared state keeps its hash
        assert session.token_hash in daemon.shared.tokens
        assert session.address_key == key
        assert session.sendq < daemon.config.limits.sendq  # less what the kernel holds
    first, second = daemon.sessions
    assert first.address_key is second.address_key  # one object for the address
    assert first.sid + 1 == second.sid and repr(first).startswith(f"<Session {first.sid} ")
    for peer in peers:
        await peer.close()


async def test_a_failing_session_is_closed_alone_and_logged_once(
    make_daemon: DaemonFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = await make_daemon()
    alice, bob = await dial(daemon, "alice"), await dial(daemon, "bob")
    await alice.create("safe")
    await bob.join("safe")
    on_list = session_module._HANDLERS[ev.ListRooms]

    def broken(session: session_module.Session, frame: ev.ListRooms) -> None:
        if session.nick == "victim":
            raise ZeroDivisionError("a bug in one handler")
        on_list(session, frame)

    monkeypatch.setitem(session_module._HANDLERS, ev.ListRooms, broken)
    peer = await RawPeer.open(daemon)
    with caplog.at_level(logging.ERROR, logger="anonchat.daemon"):
        await peer.send(
            hello_bytes("victim")
            + frame_of({"t": "list", "id": 1})
            + frame_of({"t": "list", "id": 2})  # never read: the session is closed
        )
        frames = await peer.read_until_closed()
    assert [type(f) for f in frames] == [ev.ServerHello, ev.Error]
    assert frames[1].code == Code.INTERNAL  # type: ignore[attr-defined]
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None
    await alice.say("safe", "still here")
    assert [m.text for m in await collect(bob, ev.Msg, 1)] == ["still here"]
    assert [r.room for r in (await alice.list_rooms()).rooms] == ["safe"]
    assert len(daemon.sessions) == 2
    await alice.close()
    await bob.close()


async def test_pacing_holds_reading_without_a_sleeping_task(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(plaintext=True, read_size=4096, bytes_burst=4096, bytes_rate=8192)
    peer = await RawPeer.open(daemon)
    await peer.send(hello_bytes("chatty"))
    await read_until(peer, lambda fs: bool(fs))
    tasks = len(asyncio.all_tasks())
    await peer.send(b"".join(frame_of({"t": "ping", "n": i}) for i in range(2000)))
    (session,) = daemon.sessions
    async with asyncio.timeout(10):
        while not session._hold:  # past the bucket: not reading
            await asyncio.sleep(0.01)
    assert len(asyncio.all_tasks()) == tasks
    await read_until(peer, lambda fs: sum(isinstance(f, ev.Pong) for f in fs) == 2000, 10.0)
    async with asyncio.timeout(3):  # the last read's debt is paid, then it reads again
        while session._hold:
            await asyncio.sleep(0.05)
    await peer.send(frame_of({"t": "ping", "n": 2000}))
    await read_until(peer, lambda fs: isinstance(fs[-1], ev.Pong) and fs[-1].n == 2000)
    await peer.close()


async def test_shutdown_ends_every_connection(daemon: Daemon) -> None:
    peers = [await RawPeer.open(daemon) for _ in range(3)]
    for n, peer in enumerate(peers):
        await peer.send(hello_bytes(f"p{n}"))
        await read_until(peer, lambda fs: bool(fs))
    loop = asyncio.get_running_loop()
    start = loop.time()
    await daemon.shutdown()
    assert loop.time() - start < 2.0
    assert daemon.sessions == {}
    for peer in peers:
        frames = await peer.read_until_closed()
        assert isinstance(frames[-1], ev.Bye) and frames[-1].code == Code.SHUTDOWN


@pytest.mark.parametrize("ending", ["protocol error", "quit"])
async def test_a_connection_closed_in_time_leaves_no_abort_pending(
    daemon: Daemon, ending: str
) -> None:
    """A closing session aborts its transport after CLOSE_GRACE only if the peer
    has not let go; once the connection is lost the timer is cancelled (aborting
    a TLS transport that has already closed leaked ~27 KiB per connection under
    uvloop: benchmarks/soak.py's memory grew without bound)."""
    peer = await RawPeer.open(daemon)
    async with asyncio.timeout(5):
        while not daemon.sessions:
            await asyncio.sleep(0.01)
    (session,) = daemon.sessions
    if ending == "quit":
        await peer.send(hello_bytes("leaving") + frame_of({"t": "bye", "code": "quit"}))
    else:
        await peer.send(b"\xff\xff\xff\xff")  # a 4 GiB frame: closed with frame_too_large
    await peer.read_until_closed()
    await peer.close()
    async with asyncio.timeout(3):  # well before CLOSE_GRACE (5 s)
        while session._grace is not None or session.transport.is_closing() is False:
            await asyncio.sleep(0.01)
    assert session not in daemon.sessions


def test_freed_memory_can_be_given_back() -> None:
    """The sweeper trims glibc's heap every TRIM_INTERVAL (memory.py); on the
    Linux machines the daemon runs on, there is a malloc_trim to call."""
    from anonchat.daemon import memory

    assert memory.trim() is True
    assert 0 < memory.TRIM_INTERVAL <= 60


async def test_the_table_of_confusable_characters_is_read_when_the_daemon_starts(
    make_daemon: DaemonFactory,
) -> None:
    """Every nick is checked against it (names.claim_keys): the daemon reads it at
    start, so the first client's hello does not wait for it and its memory is
    the daemon's from the start (docs/performance.md, idle connections)."""
    from anonchat import confusables

    confusables._prototypes.cache_clear()
    assert confusables._prototypes.cache_info().currsize == 0
    await make_daemon(plaintext=True)
    assert confusables._prototypes.cache_info().currsize == 1
