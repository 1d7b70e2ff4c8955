"""What one address can make the daemon hold: each limit at its value and one past.

Issue 14's limits: resumable sessions per address and in all, nick changes,
list and who requests, TLS handshakes in progress, unfinished frames.  Every
test uses a real TLS daemon on 127.0.0.1; waiting is on conditions, never on
the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import socket
import struct
import termios
from collections.abc import Callable

import msgpack
import pytest

from anonchat import events as ev
from anonchat.client import Client
from anonchat.daemon import Daemon
from anonchat.daemon.session import Session
from anonchat.daemon.state import holder
from anonchat.daemon.tls import ServerTLS
from anonchat.errors import Code, ConnectionClosed, Local, RequestError
from anonchat.trust import client_context

from .conftest import DaemonFactory
from .helpers import RawPeer, dial, drop, half_closing_client, hello_bytes, peer_from, quiet


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for ``condition`` to hold (checked as the event loop turns)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def ghost(daemon: Daemon, nick: str, room: str) -> Client:
    """A session in its own room whose connection is lost: resumable."""
    client = await dial(daemon, nick)
    await client.create(room)
    drop(client)
    await until(lambda: client.closed is not None and _held(daemon, nick))
    return client


def _held(daemon: Daemon, nick: str) -> bool:
    member = holder(daemon.shared, nick)  # held under its look-alike keys
    return member is not None and member.uid in daemon.ghosts


# -- resumable sessions ----------------------------------------------------------


@pytest.mark.parametrize("which", ["max_resumable_per_address", "max_resumable"])
async def test_resumable_sessions_at_and_one_past(make_daemon: DaemonFactory, which: str) -> None:
    # All test clients come from 127.0.0.1: per address or in all, the same three.
    other = "max_resumable" if which == "max_resumable_per_address" else "max_resumable_per_address"
    daemon = await make_daemon(**{which: 3, other: 100}, resume_window=600)
    ghosts = [await ghost(daemon, f"g{i}", f"r{i}") for i in range(3)]  # at the limit
    assert len(daemon.ghosts) == 3
    assert all(holder(daemon.shared, f"g{i}") for i in range(3))
    assert {f"r{i}" for i in range(3)} <= set(daemon.rooms)
    # Its nick, its room and its membership were all held; one more, and the
    # oldest ends: the nick and the room it alone was in are free again.
    ghosts.append(await ghost(daemon, "g3", "r3"))
    await until(lambda: holder(daemon.shared, "g0") is None)
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


async def test_nick_changes_are_counted_for_the_whole_address(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(nick_burst=2, nick_interval=60.0)
    first, second = await dial(daemon, "a0"), await dial(daemon, "b0")
    await first.set_nick("a1")
    await second.set_nick("b1")  # the address's second: at the burst
    with pytest.raises(RequestError) as info:
        await second.set_nick("b2")  # a new connection does not start afresh
    assert info.value.code == Code.RATE_LIMITED
    third = await dial(daemon, "c0")
    with pytest.raises(RequestError):
        await third.set_nick("c1")
    for c in (first, second, third):
        await c.close()


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
    again = await dial(daemon, "asker2")  # the address's bucket: no fresh start
    with pytest.raises(RequestError) as info:
        await again.list_rooms()
    assert info.value.code == Code.RATE_LIMITED
    await again.close()
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


# -- TLS handshakes in progress ------------------------------------------------------


async def stalled(daemon: Daemon, source: str = "127.0.0.1") -> asyncio.StreamWriter:
    """A TCP connection that never sends its ClientHello."""
    _, writer = await asyncio.open_connection("127.0.0.1", daemon.port, local_addr=(source, 0))
    return writer


async def closed_unanswered(writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(10):
        try:
            return await reader.read(1) == b""
        except ConnectionResetError:
            return True
        finally:
            writer.close()


@pytest.mark.parametrize("which", ["max_handshakes_per_address", "max_handshakes"])
async def test_handshakes_in_progress_at_and_one_past(
    make_daemon: DaemonFactory, which: str
) -> None:
    other = (
        "max_handshakes" if which == "max_handshakes_per_address" else "max_handshakes_per_address"
    )
    daemon = await make_daemon(**{which: 3, other: 100}, hello_timeout=600)
    listener = daemon._server
    assert listener is not None
    stuck = [await stalled(daemon) for _ in range(3)]  # at the limit: all held
    await until(lambda: listener.in_progress == 3)
    assert listener.refused == 0
    # One past: from the same address (or, for the limit in all, from another one),
    # closed at once, unanswered.
    source = "127.0.0.1" if which == "max_handshakes_per_address" else "127.0.0.2"
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port, local_addr=(source, 0))
    assert await closed_unanswered(writer, reader)
    assert listener.refused == 1 and listener.in_progress == 3
    if which == "max_handshakes_per_address":
        # Another address is not held up: its handshake, hello and requests go through.
        peer = await peer_from(daemon, "127.0.0.2")
        await peer.send(hello_bytes("other") + frame_of({"t": "list", "id": 1}))
        while len(peer.frames) < 2:
            await peer.read_frame()
        assert isinstance(peer.frames[1], ev.Rooms)
        await peer.close()
    stuck.pop().close()  # one gives up: a place is free again
    await until(lambda: listener.in_progress == 2)
    client = await dial(daemon, "after")
    await client.close()
    for writer in stuck:
        writer.close()
    await until(lambda: listener.in_progress == 0)
    assert len(listener.handshaking) == 0  # nothing outlives the handshakes


async def test_connections_opened_per_address_at_and_one_past(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(connect_burst=4, connect_interval=60.0)
    listener = daemon._server
    assert listener is not None
    clients = [await dial(daemon, f"c{i}") for i in range(4)]  # at the burst
    await clients.pop().close()  # (closing one gives no connection back: it is a rate)
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
    assert await closed_unanswered(writer, reader)  # one past: closed unanswered
    assert listener.refused == 1
    other = await peer_from(daemon, "127.0.0.2")  # another address is not held up
    await other.send(hello_bytes("other"))
    assert isinstance(await other.read_frame(), ev.ServerHello)
    await other.close()
    for c in clients:
        await c.close()


async def test_a_client_turned_away_unanswered_is_told_so_not_that_it_timed_out(
    make_daemon: DaemonFactory,
) -> None:
    """A connection past a limit is closed in its TLS handshake, at once: the
    client says the server closed it (and that this is what a daemon at its
    limits does), never "timed out", which sent users looking at their network."""
    daemon = await make_daemon(connect_burst=1, connect_interval=60.0)
    first = await dial(daemon, "first")
    with pytest.raises(ConnectionClosed) as refused:
        await dial(daemon, "second")
    assert refused.value.code == Local.UNREACHABLE
    said = refused.value.message
    assert "timed out" not in said
    assert "closed the connection during the TLS handshake" in said, said
    await first.close()


async def test_a_stalled_handshake_ends_at_hello_timeout(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(hello_timeout=0.5)
    listener = daemon._server
    assert listener is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
    await until(lambda: listener.in_progress == 1)
    assert await closed_unanswered(writer, reader)
    await until(lambda: listener.in_progress == 0)


# -- what a reader that does not read costs -------------------------------------------


def unsent(sock: socket.socket) -> int:
    """Bytes in a socket's kernel send queue (Linux: SIOCOUTQ)."""
    out = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    value: int = struct.unpack("i", out)[0]
    return value


def daemon_side_sockets(port: int, peer_port: int) -> list[str]:
    """TCP states (hex, /proc/net/tcp) of the daemon's sockets to one peer port."""
    states = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(name, encoding="ascii") as f:
            for line in list(f)[1:]:
                fields = line.split()
                local, remote, state = fields[1], fields[2], fields[3]
                if (
                    int(local.rsplit(":", 1)[1], 16) == port
                    and int(remote.rsplit(":", 1)[1], 16) == peer_port
                ):
                    states.append(state)
    return states


async def test_sendq_counts_the_kernel_and_a_dropped_reader_is_reset(
    make_daemon: DaemonFactory,
) -> None:
    sendq = 256 * 1024
    daemon = await make_daemon(sendq=sendq)
    sender = await dial(daemon, "sender")
    await sender.create("r")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a window that stays shut
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", daemon.port))
    peer_port = sock.getsockname()[1]
    reader, writer = await asyncio.open_connection(
        sock=sock, ssl=client_context(), server_hostname="anonchatd"
    )
    stuck = RawPeer(reader, writer)
    await stuck.send(hello_bytes("stuck") + frame_of({"t": "join", "id": 1, "room": "r"}))
    await until(lambda: any(s.nick == "stuck" and s.rooms for s in daemon.sessions))
    session = session_of(daemon, "stuck")
    kernel_sock = session.transport.get_extra_info("socket")
    most = most_in_kernel = 0
    for _ in range(5000):
        await sender.say("r", "x" * 3000)
        if session.closing:
            break
        in_kernel = unsent(kernel_sock)
        total = session.queued + session.transport.get_write_buffer_size() + in_kernel
        most, most_in_kernel = max(most, total), max(most_in_kernel, in_kernel)
    assert session.close_code == Code.SENDQ_EXCEEDED
    assert 0 < most <= sendq  # all it held for the reader, the kernel's share included
    assert most_in_kernel > 0
    # The drop resets the connection: the daemon's socket and the data it held
    # for the reader are gone at once, not left in FIN-WAIT-1 for as long as the
    # reader keeps its window shut.
    await until(lambda: not daemon_side_sockets(daemon.port, peer_port))
    await stuck.close()
    await sender.say("r", "the sender was never slowed")
    await sender.close()


@pytest.mark.parametrize("plaintext", [False, True])
async def test_a_half_closed_client_gets_its_last_replies(
    make_daemon: DaemonFactory, plaintext: bool
) -> None:
    daemon = await make_daemon(plaintext=plaintext)
    peer = await RawPeer.open(daemon)
    asks = b"".join(frame_of({"t": "list", "id": i}) for i in range(1, 4))
    await peer.send(hello_bytes("half") + asks)
    peer.half_close()  # at once, before any reply
    frames = await peer.read_until_closed(10)
    assert [type(f) for f in frames] == [ev.ServerHello, ev.Rooms, ev.Rooms, ev.Rooms]
    assert [f.id for f in frames[1:] if isinstance(f, ev.Rooms)] == [1, 2, 3]


@pytest.mark.parametrize("how", ["plain", "fin", "close_notify"])
async def test_a_client_that_half_closes_while_paced_gets_every_reply(
    make_daemon: DaemonFactory, how: str
) -> None:
    """8,000 requests, more than one read and far more than bytes_burst, then the
    client's end at once (TLS close_notify, or a TCP FIN): the daemon reads
    them a paced chunk at a time, and every reply still reaches the client.
    (asyncio's SSL transport dropped every write once it had seen the end.)"""
    daemon = await make_daemon(plaintext=how == "plain", bytes_burst=4096, bytes_rate=200_000)
    count = 8000
    asks = b"".join(frame_of({"t": "list", "id": i}) for i in range(1, count + 1))
    assert len(asks) > daemon.config.limits.read_size
    frames = await asyncio.to_thread(
        half_closing_client, daemon.port, hello_bytes("half") + asks, how
    )
    assert [type(f) for f in frames] == [ev.ServerHello] + [ev.Rooms] * count
    assert [f.id for f in frames if isinstance(f, ev.Rooms)] == list(range(1, count + 1))


# -- memory comes back -------------------------------------------------------------------


async def test_sessions_ended_without_bye_are_freed_without_a_collection(
    make_daemon: DaemonFactory,
) -> None:
    """1,000 TLS sessions end without ``bye`` (each waits out a short resume
    window first); with the garbage collector off, not one Session is left:
    reference counting alone frees them, there is no cycle on their path."""
    daemon = await make_daemon(resume_window=0.2)
    gc.collect()
    gc.disable()
    try:

        async def one(i: int) -> None:
            peer = await RawPeer.open(daemon)
            await peer.send(
                hello_bytes(f"gone{i}") + frame_of({"t": "create", "id": 1, "room": f"r{i}"})
            )
            while len(peer.frames) < 2:
                await peer.read_frame()
            peer.writer.transport.abort()  # no bye: the network went away

        for start in range(0, 1000, 50):
            await asyncio.gather(*(one(i) for i in range(start, start + 50)))
        await until(lambda: not daemon.members and not daemon.sessions, timeout=60)
        await until(lambda: not daemon.ghosts and not daemon.rooms)
        live = [o for o in gc.get_objects() if isinstance(o, Session) and o.daemon is daemon]
        assert live == []
        # Nor the daemon's TLS layer of each connection, with its OpenSSL state.
        await until(lambda: not any(isinstance(o, ServerTLS) for o in gc.get_objects()))
    finally:
        gc.enable()


# -- requests whose cost grows with the daemon -------------------------------------------


async def test_a_resume_naming_a_room_thousands_of_times_replays_it_once(
    make_daemon: DaemonFactory,
) -> None:
    daemon = await make_daemon(resume_window=600, max_rooms_per_session=5)
    alice = await dial(daemon, "alice")
    await alice.create("lobby")
    peer = await RawPeer.open(daemon)
    await peer.send(hello_bytes("bob") + frame_of({"t": "join", "id": 1, "room": "lobby"}))
    while len(peer.frames) < 2:
        await peer.read_frame()
    hello, joined = peer.frames[:2]
    assert isinstance(hello, ev.ServerHello) and isinstance(joined, ev.Joined)
    peer.writer.transport.abort()
    await until(lambda: _held(daemon, "bob"))
    for i in range(3):
        await alice.say("lobby", f"missed {i}")
    # 3,000 times the same room (and 60 rooms it is not in before it): only the
    # first max_rooms_per_session entries are read, each room once.
    seen = [{"room": "lobby", "seq": joined.seq}] * 3000
    again = await RawPeer.open(daemon)
    body = {"t": "hello", "v": ev.PROTOCOL_VERSION, "resume": hello.token, "seen": seen}
    await again.send(frame_of(body) + frame_of({"t": "list", "id": 9}))
    while not any(isinstance(f, ev.Rooms) for f in again.frames):
        await again.read_frame()
    frames = again.frames
    assert isinstance(frames[0], ev.ServerHello) and frames[0].resumed
    assert [f.text for f in frames if isinstance(f, ev.Msg)] == [f"missed {i}" for i in range(3)]
    await again.close()
    await alice.close()


async def test_the_room_list_follows_every_change(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon()
    alice, bob = await dial(daemon, "alice"), await dial(daemon, "bob")

    async def listed() -> list[tuple[str, int, str]]:
        return [(r.room, r.members, r.topic) for r in (await alice.list_rooms()).rooms]

    assert await listed() == []
    await alice.create("a")
    await alice.create("b", topic="bees")
    assert await listed() == [("a", 1, ""), ("b", 1, "bees")]
    await bob.join("b")
    assert await listed() == [("b", 2, "bees"), ("a", 1, "")]
    await alice.set_topic("a", "ants")
    assert await listed() == [("b", 2, "bees"), ("a", 1, "ants")]
    await alice.leave("a")
    assert await listed() == [("b", 2, "bees")]
    await bob.close()
    await until(lambda: len(daemon.rooms["b"].members) == 1)
    assert await listed() == [("b", 1, "bees")]
    await alice.close()
