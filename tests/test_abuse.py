"""What one address can make the daemon hold: each limit at its value and one past.

Issue 14's limits: resumable sessions per address and in all, nick changes,
list and who requests, TLS handshakes in progress, unfinished frames.  Every
test uses a real TLS daemon on 127.0.0.1; waiting is on conditions, never on
the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable

import msgpack
import pytest

from anonchat import events as ev
from anonchat.client import Client
from anonchat.daemon import Daemon
from anonchat.daemon.session import Session
from anonchat.errors import Code, RequestError

from .conftest import DaemonFactory
from .helpers import RawPeer, dial, hello_bytes, quiet


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for ``condition`` to hold (checked as the event loop turns)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def drop(client: Client) -> None:
    """The connection dies without a goodbye (the network went away)."""
    client._writer.transport.abort()


async def ghost(daemon: Daemon, nick: str, room: str) -> Client:
    """A session in its own room whose connection is lost: resumable."""
    client = await dial(daemon, nick)
    await client.create(room)
    drop(client)
    await until(lambda: client.closed is not None and _held(daemon, nick))
    return client


def _held(daemon: Daemon, nick: str) -> bool:
    member = daemon.nicks.get(nick)
    return member is not None and member.uid in daemon.ghosts


# -- resumable sessions ----------------------------------------------------------


@pytest.mark.parametrize("which", ["max_resumable_per_address", "max_resumable"])
async def test_resumable_sessions_at_and_one_past(make_daemon: DaemonFactory, which: str) -> None:
    # All test clients come from 127.0.0.1: per address or in all, the same three.
    other = "max_resumable" if which == "max_resumable_per_address" else "max_resumable_per_address"
    daemon = await make_daemon(**{which: 3, other: 100}, resume_window=600)
    ghosts = [await ghost(daemon, f"g{i}", f"r{i}") for i in range(3)]  # at the limit
    assert len(daemon.ghosts) == 3
    assert {f"g{i}" for i in range(3)} <= set(daemon.nicks)
    assert {f"r{i}" for i in range(3)} <= set(daemon.rooms)
    # Its nick, its room and its membership were all held; one more, and the
    # oldest ends: the nick and the room it alone was in are free again.
    ghosts.append(await ghost(daemon, "g3", "r3"))
    await until(lambda: "g0" not in daemon.nicks)
    assert len(daemon.ghosts) == 3
    assert "r0" not in daemon.rooms and {"r1", "r2", "r3"} <= set(daemon.rooms)
    newcomer = await dial(daemon, "g0")  # the nick is free
    await newcomer.create("r0")  # and so is the room
    # The three kept are resumable, the ended one is not.
    again = await Client.connect("127.0.0.1", daemon.port, pin=daemon.pin, resume=ghosts[3])
    assert again.resumed and again.nick == "g3"
    stale = await Client.connect("127.0.0.1", daemon.port, pin=daemon.pin, resume=ghosts[0])
    assert not stale.resumed and stale.nick != "g0"
    for c in (newcomer, again, stale):
        await c.close()


async def test_resumable_sessions_count_apart_from_connections(make_daemon: DaemonFactory) -> None:
    """A ghost frees its connection slot: an address at max_per_address open
    connections can still resume (its ghosts are bounded apart)."""
    daemon = await make_daemon(max_per_address=2, max_resumable_per_address=2, resume_window=600)
    first = await ghost(daemon, "a", "ra")
    await ghost(daemon, "b", "rb")
    open_ = [await dial(daemon, "c")]
    again = await Client.connect("127.0.0.1", daemon.port, pin=daemon.pin, resume=first)
    assert again.resumed and again.nick == "a"
    assert len(daemon.ghosts) == 1
    for c in (*open_, again):
        await c.close()


# -- nick changes ------------------------------------------------------------------


async def test_nick_changes_at_and_one_past_the_burst(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(nick_burst=3, nick_interval=60.0)
    watcher = await dial(daemon, "watcher")
    await watcher.create("r")
    changer = await dial(daemon, "n0")
    await changer.join("r")
    for i in range(1, 4):  # at the burst
        await changer.set_nick(f"n{i}")
    await changer.set_nick("n3")  # the nick it has: nothing changes, nothing spent
    with pytest.raises(RequestError) as info:
        await changer.set_nick("n4")  # one past
    assert info.value.code == Code.RATE_LIMITED and "try again in 60 s" in info.value.message
    presence = [e for e in await quiet(watcher) if isinstance(e, ev.Presence)]
    assert [(p.kind, p.nick, p.new) for p in presence if p.kind == "nick"] == [
        ("nick", "n0", "n1"),
        ("nick", "n1", "n2"),
        ("nick", "n2", "n3"),
    ]
    assert changer.closed is None
    await changer.close()
    await watcher.close()


# -- list and who ------------------------------------------------------------------


@pytest.mark.parametrize("request_", ["list", "who"])
async def test_queries_at_and_one_past_the_burst(make_daemon: DaemonFactory, request_: str) -> None:
    daemon = await make_daemon(query_burst=4, query_interval=60.0)
    client = await dial(daemon, "asker")
    await client.create("r")

    async def ask() -> None:
        if request_ == "list":
            await client.list_rooms()
        else:
            await client.who("r")

    for _ in range(4):  # at the burst
        await ask()
    with pytest.raises(RequestError) as info:
        await ask()  # one past
    assert info.value.code == Code.RATE_LIMITED
    await client.say("r", "still connected")
    await client.close()


# -- unfinished frames -------------------------------------------------------------


def frame_of(body: dict[str, object]) -> bytes:
    data: bytes = msgpack.packb(body)
    return struct.pack(">I", len(data)) + data


def codes(frames: list[ev.Frame]) -> list[str]:
    return [f.code for f in frames if isinstance(f, ev.Error)]


def session_of(daemon: Daemon, nick: str) -> Session:
    return next(s for s in daemon.sessions if s.nick == nick)


async def test_a_frame_finished_within_frame_timeout_is_served(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(frame_timeout=2.0)
    peer = await RawPeer.open(daemon)
    await peer.send(hello_bytes("slow"))
    await peer.read_frame()
    session = session_of(daemon, "slow")
    request = frame_of({"t": "list", "id": 7})
    await peer.send(request[:3])  # a frame begins ...
    await until(lambda: session._frame_started > 0)
    await peer.send(request[3:])  # ... and ends in time: served
    reply = await peer.read_frame()
    assert isinstance(reply, ev.Rooms) and reply.id == 7
    assert session._frame_started == 0 and not session.closing
    await peer.close()


async def test_a_frame_not_finished_within_frame_timeout_is_closed(
    make_daemon: DaemonFactory,
) -> None:
    """Slowloris: a byte every so often keeps no connection open."""
    daemon = await make_daemon(frame_timeout=1.0, idle_timeout=600, ping_interval=300)
    peer = await RawPeer.open(daemon)
    await peer.send(hello_bytes("loris"))
    await peer.read_frame()
    session = session_of(daemon, "loris")
    loop = asyncio.get_running_loop()
    await peer.send(struct.pack(">I", 1000))
    start = loop.time()
    with contextlib.suppress(ConnectionError):
        while not session.closing:  # one byte at a time, never the whole frame
            await peer.send(b"\x00")
            await asyncio.sleep(0.05)
    assert codes(await peer.read_until_closed()) == [Code.SLOW_FRAME]
    assert loop.time() - start >= 1.0
    assert daemon.unfinished == 0


async def test_idle_timeout_counts_whole_frames_only(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(idle_timeout=1.0, ping_interval=0.5, frame_timeout=600)
    peer = await RawPeer.open(daemon)
    await peer.send(hello_bytes("drip"))
    await peer.read_frame()
    session = session_of(daemon, "drip")
    await peer.send(struct.pack(">I", 1000))
    with contextlib.suppress(ConnectionError):
        while not session.closing:
            await peer.send(b"\x00")
            await asyncio.sleep(0.05)
    assert codes(await peer.read_until_closed()) == [Code.IDLE_TIMEOUT]


async def test_unfinished_bytes_in_all_at_and_one_past(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(max_frame=8192, max_text=1024, max_unfinished=16384)
    peers = []
    for nick in ("p1", "p2", "p3"):
        peer = await RawPeer.open(daemon)
        await peer.send(hello_bytes(nick))
        await peer.read_frame()
        peers.append(peer)
    header = struct.pack(">I", 8192)
    await peers[0].send(header + b"\x00" * 8191)
    await peers[1].send(header + b"\x00" * 8191)
    await peers[2].send(header + b"\x00" * 2)
    await until(lambda: daemon.unfinished == 16384)  # at the limit: all held
    assert not any(s.closing for s in daemon.sessions)
    await peers[2].send(b"\x00")  # one past: that connection goes
    assert codes(await peers[2].read_until_closed()) == [Code.SLOW_FRAME]
    assert daemon.unfinished == 16382
    await peers[0].close()
    await until(lambda: daemon.unfinished == 8191)  # a lost connection lets go of its bytes
    await peers[1].send(b"\x00")  # the one still there finishes its frame (bad, but whole)
    assert codes(await peers[1].read_until_closed()) == [Code.BAD_FRAME]
    assert daemon.unfinished == 0
