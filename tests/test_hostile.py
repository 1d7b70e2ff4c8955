"""Every hostile client at once, while three honest ones talk: they lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from typing import Any

import msgpack

from anonchat import events as ev
from anonchat.client import Client
from anonchat.crypto import Identity, key_proof
from anonchat.daemon import Daemon
from anonchat.daemon.state import holder
from anonchat.errors import Code
from anonchat.trust import client_context

from .conftest import DaemonFactory
from .helpers import RawPeer, collect, dial, hello_bytes, next_event, peer_from

HONEST_MESSAGES = 1000
HONEST_RATE = 80.0  # messages a second each, under the daemon's msg_rate below
BIG_TEXT = "x" * 3000


def frame_of(body: dict[str, Any]) -> bytes:
    data: bytes = msgpack.packb(body)
    return struct.pack(">I", len(data)) + data


def codes(frames: list[ev.Frame]) -> list[str]:
    return [f.code for f in frames if isinstance(f, ev.Error)]


async def open_tiny_window(daemon: Daemon) -> RawPeer:
    """A peer whose receive buffer is tiny from the start (set before connecting)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", daemon.port))
    reader, writer = await asyncio.open_connection(
        sock=sock, ssl=client_context(), server_hostname="anonchatd"
    )
    return RawPeer(reader, writer)


# -- the hostile clients: each returns what it saw -------------------------------


async def garbage(daemon: Daemon) -> list[str]:
    peer = await RawPeer.open(daemon)
    await peer.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(512))
    return codes(await peer.read_until_closed(10))


async def huge_prefix(daemon: Daemon) -> list[str]:
    peer = await RawPeer.open(daemon)
    await peer.send(hello_bytes() + b"\xff\xff\xff\xff" + b"\x00" * 1000)
    return codes(await peer.read_until_closed(10))


async def trickler(daemon: Daemon) -> list[type[ev.Frame]]:
    """A hello and a request one byte at a time: slow, but honest, so served."""
    peer = await RawPeer.open(daemon)
    for byte in hello_bytes("trickler") + frame_of({"t": "list", "id": 1}):
        await peer.send(bytes([byte]))
        await asyncio.sleep(0.005)
    while len(peer.frames) < 2:
        await peer.read_frame(10)
    await peer.close()
    return [type(f) for f in peer.frames]


async def flooder(daemon: Daemon) -> list[str]:
    peer = await RawPeer.open(daemon)
    join = frame_of({"t": "create", "id": 1, "room": "floodroom"})
    says = b"".join(
        frame_of({"t": "say", "id": i, "room": "floodroom", "text": f"spam {i}"})
        for i in range(2, 5002)
    )
    await peer.send(hello_bytes("flooder") + join)
    with contextlib.suppress(ConnectionError):  # closed while we still write: the point
        await peer.send(says)
    return codes(await peer.read_until_closed(20))


async def never_reader(daemon: Daemon, talkers: list[Client]) -> bool:
    """Joins a room where others post large messages, and never reads."""
    stuck = await open_tiny_window(daemon)
    await stuck.send(hello_bytes("stuck") + frame_of({"t": "join", "id": 1, "room": "big"}))
    while (await next_event(talkers[0], ev.Presence, timeout=10)).nick != "stuck":
        pass
    session = next(s for s in daemon.sessions if s.nick == "stuck")

    async def talk(talker: Client) -> None:
        # The kernel takes a few MB before the daemon's own queue fills.
        for _ in range(3000):
            await talker.say("big", BIG_TEXT)  # never slowed or refused
            await asyncio.sleep(1 / HONEST_RATE)
            if session.closing:
                return

    await asyncio.gather(*(talk(t) for t in talkers))
    await stuck.close()
    return session.close_code == Code.SENDQ_EXCEEDED


async def half_closer(daemon: Daemon) -> bool:
    peer = await RawPeer.open(daemon)
    await peer.send(hello_bytes("half") + frame_of({"t": "list", "id": 1}))
    while len(peer.frames) < 2:
        await peer.read_frame(10)
    peer.half_close()
    await peer.read_until_closed(10)  # the daemon ends it: returns instead of timing out
    return True


async def guesser(daemon: Daemon, rid: bytes) -> list[str]:
    """Tries secret-room proofs as fast as it can."""
    peer = await RawPeer.open(daemon)
    await peer.send(hello_bytes("guesser"))
    hello = await peer.read_frame()
    assert isinstance(hello, ev.ServerHello)
    # A real session key, so that every guess reaches the passphrase check.
    identity = Identity.generate()
    proven = key_proof(identity, rid, hello.challenge, daemon.pin_bytes)
    attempts = b"".join(
        frame_of(
            ev.SecretJoin(
                id=i,
                room=rid,
                proof=os.urandom(ev.SIG_SIZE),
                sender=identity.public,
                key_proof=proven,
            ).to_wire()
        )
        for i in range(1, 201)
    )
    with contextlib.suppress(ConnectionError):
        await peer.send(attempts)
    return codes(await peer.read_until_closed(20))


# -- the honest ones ---------------------------------------------------------------


async def honest_chat(clients: list[Client]) -> list[list[ev.Msg]]:
    receivers = [
        asyncio.create_task(collect(c, ev.Msg, HONEST_MESSAGES, timeout=50)) for c in clients
    ]

    async def send(client: Client, count: int) -> None:
        for i in range(count):
            await client.say("honest", f"{client.nick} {i}")
            await asyncio.sleep(1 / HONEST_RATE)  # honest clients keep to the rate limit

    shares = [334, 333, 333]
    await asyncio.gather(*(send(c, n) for c, n in zip(clients, shares, strict=True)))
    return list(await asyncio.gather(*receivers))


async def test_everything_at_once(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(
        msg_burst=100,  # honest clients here send 100 a second each
        msg_rate=100.0,
        flood_strikes=20,
        join_burst=5,
        join_interval=10.0,
        sendq=64 * 1024,
    )
    honest = [await dial(daemon, f"honest{i}") for i in range(3)]
    await honest[0].create("honest")
    for c in honest[1:]:
        await c.join("honest")
    await asyncio.sleep(0.1)
    for c in honest:
        c.events_nowait()  # presence of the joins
    talkers = [await dial(daemon, f"talker{i}") for i in range(4)]
    await talkers[0].create("big")
    for t in talkers[1:]:
        await t.join("big")
    keeper = await dial(daemon, "keeper")
    secret = await keeper.create_secret("vault", "correct horse battery staple")
    before = len(daemon.sessions)

    async with asyncio.timeout(55):
        chat = asyncio.create_task(honest_chat(honest))
        garbage_codes = asyncio.create_task(garbage(daemon))
        huge_codes = asyncio.create_task(huge_prefix(daemon))
        trickled = asyncio.create_task(trickler(daemon))
        flood_codes = asyncio.create_task(flooder(daemon))
        dropped = asyncio.create_task(never_reader(daemon, talkers))
        half_closed = asyncio.create_task(half_closer(daemon))
        guess_codes = asyncio.create_task(guesser(daemon, secret.rid))
        await asyncio.gather(
            chat,
            garbage_codes,
            huge_codes,
            trickled,
            flood_codes,
            dropped,
            half_closed,
            guess_codes,
        )
    streams = chat.result()

    # Every honest message reached every honest member, in one order, numbered 1 by 1.
    reference = [(m.seq, m.nick, m.text) for m in streams[0]]
    seqs = [seq for seq, _, _ in reference]
    assert seqs == list(range(seqs[0], seqs[0] + HONEST_MESSAGES))
    for stream in streams[1:]:
        assert [(m.seq, m.nick, m.text) for m in stream] == reference
    for c in honest:
        own = [int(text.split()[1]) for _, nick, text in reference if nick == c.nick]
        assert own == sorted(own) and len(own) in (333, 334)
        assert c.closed is None

    # Each offender got what the limits say, and only it lost its connection.
    assert garbage_codes.result() == [Code.FRAME_TOO_LARGE]
    assert huge_codes.result() == [Code.FRAME_TOO_LARGE]
    assert trickled.result() == [ev.ServerHello, ev.Rooms]
    flood = flood_codes.result()
    assert flood[-1] == Code.FLOOD and set(flood[:-1]) == {Code.RATE_LIMITED}
    assert dropped.result()
    assert half_closed.result()
    guesses = guess_codes.result()
    assert guesses[:5] == [Code.JOIN_DENIED] * 5  # the join_burst, then refused unseen
    assert set(guesses[5:-1]) == {Code.RATE_LIMITED} and guesses[-1] == Code.FLOOD

    # The daemon is still serving: the same sessions as before, and newcomers.
    await asyncio.sleep(0.2)
    assert len(daemon.sessions) == before
    newcomer = await dial(daemon, "newcomer")
    await newcomer.join("honest")
    await newcomer.say("honest", "made it")
    assert (await next_event(honest[0], ev.Msg)).text == "made it"
    for c in [*honest, *talkers, keeper, newcomer]:
        await c.close()


# -- one address at every per-address limit at once ----------------------------------

ATTACKER = "127.0.0.2"  # Linux routes all of 127.0.0.0/8 to lo; honest clients use .1


async def attacker_peer(daemon: Daemon) -> RawPeer:
    return await peer_from(daemon, ATTACKER)


async def turned_away_unanswered(daemon: Daemon) -> None:
    """A TCP connection from the attacker's address: closed before any TLS answer."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", daemon.port, local_addr=(ATTACKER, 0)
    )
    with contextlib.suppress(ConnectionError):
        assert await reader.read(1) == b""
    writer.close()


async def until(condition: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def insider(daemon: Daemon, nick: str, rooms: int) -> RawPeer:
    """A session from the attacker's address in lobby and ``rooms - 1`` rooms of
    its own: at max_rooms_per_session."""
    peer = await attacker_peer(daemon)
    asks = [frame_of({"t": "join", "id": 1, "room": "lobby"})]
    asks += [
        frame_of({"t": "create", "id": 2 + i, "room": f"{nick}-{i}"}) for i in range(rooms - 1)
    ]
    await peer.send(hello_bytes(nick) + b"".join(asks))
    while sum(isinstance(f, ev.Joined) for f in peer.frames) < rooms:
        await peer.read_frame(10)
    return peer


def replies_of(frames: list[ev.Frame]) -> list[str]:
    """ "ok", "rooms" or the error code of each reply with an id (nick and list)."""
    out = []
    for f in frames:
        if isinstance(f, ev.Ok):
            out.append("ok")
        elif isinstance(f, ev.Rooms):
            out.append("rooms")
        elif isinstance(f, ev.Error) and f.id is not None:
            out.append(f.code)
    return out


async def test_an_address_at_every_limit_leaves_room_for_everyone_else(
    make_daemon: DaemonFactory,
) -> None:
    limits = {
        "max_per_address": 4,
        "max_resumable_per_address": 4,
        "max_handshakes_per_address": 3,
        "max_rooms_per_session": 5,
        "max_rooms": 40,  # more than one address can hold: (4 + 4) x 4 rooms of its own
        "max_members_per_room": 12,  # lobby: 8 of the attacker's, and room for more
        "nick_burst": 3,
        "nick_interval": 60.0,
        "query_burst": 3,
        "query_interval": 60.0,
        "max_frame": 8192,
        "max_text": 1024,
        "max_unfinished": 64 * 1024,  # 4 unfinished frames of 8 KiB are the address's
        "frame_timeout": 600.0,
        "resume_window": 600.0,
        "msg_burst": 20,
        "msg_rate": 10.0,
        "connect_burst": 14,  # every connection the attacker makes below, not one more
        "connect_interval": 600.0,
    }
    daemon = await make_daemon(**limits)
    host = await dial(daemon, "host")
    await host.create("lobby")

    # Resumable sessions at the limit, each with its nick and five rooms.
    for i in range(4):
        peer = await insider(daemon, f"ghost{i}", 5)
        peer.writer.transport.abort()
    await until(lambda: len(daemon.ghosts) == 4)
    # A fifth ghost ends the address's oldest, not anyone else's.
    fifth = await insider(daemon, "ghost4", 5)
    fifth.writer.transport.abort()
    shared = daemon.shared
    await until(lambda: holder(shared, "ghost0") is None and holder(shared, "ghost4") is not None)
    assert len(daemon.ghosts) == 4
    # Open connections at the limit, each in five rooms, at its nick and query
    # limits, and in the middle of a frame it never finishes.
    open_ = [await insider(daemon, f"live{i}", 5) for i in range(4)]
    replied = []
    for i, peer in enumerate(open_):
        nicks = [frame_of({"t": "nick", "id": 100 + n, "nick": f"live{i}x{n}"}) for n in range(4)]
        lists = [frame_of({"t": "list", "id": 200 + n}) for n in range(4)]
        await peer.send(b"".join(nicks + lists))
        start = len(peer.frames)
        while len(replies_of(peer.frames[start:])) < 8:
            await peer.read_frame(10)
        replied += replies_of(peer.frames[start:])
    # The address's nick and query buckets, shared by its connections: three each.
    assert sorted(replied).count("ok") == 3 and replied.count("rooms") == 3
    assert replied.count(Code.RATE_LIMITED) == 4 * 8 - 6
    for peer in open_:
        await peer.send(struct.pack(">I", 8192) + b"\x00" * 8000)
    await until(lambda: daemon.unfinished == 4 * 8000)
    # One more connection from the address: turned away.
    extra = await attacker_peer(daemon)
    assert codes(await extra.read_until_closed(10)) == [Code.TOO_MANY_CONNECTIONS]
    # TLS handshakes in progress at the limit; one more is closed unanswered.
    stalled = []
    for _ in range(3):
        stalled.append(
            (await asyncio.open_connection("127.0.0.1", daemon.port, local_addr=(ATTACKER, 0)))[1]
        )
    listener = daemon._server
    assert listener is not None
    await until(lambda: listener.in_progress == 3)
    await turned_away_unanswered(daemon)
    assert listener.refused == 1
    # And it has opened all the connections it may for now: with a handshake
    # place free again, one more is still closed unanswered.
    stalled.pop().close()
    await until(lambda: listener.in_progress == 2)
    await turned_away_unanswered(daemon)
    assert listener.refused == 2 and listener.in_progress == 2

    # The attacker sits at every limit of its address.  Everyone else gets in,
    # joins lobby, creates a room and chats.
    assert len(daemon.rooms) == 1 + 8 * 4
    alice = await dial(daemon, "alice")
    bob = await dial(daemon, "bob")
    joined = await alice.join("lobby")
    assert "live0x2" in joined.members and "ghost1" in joined.members
    await bob.join("lobby")
    await alice.create("quiet-corner")
    await bob.join("quiet-corner")
    await alice.say("quiet-corner", "can you hear me?")
    await bob.say("lobby", "loud and clear")
    assert (await next_event(bob, ev.Msg)).text == "can you hear me?"
    heard = [(m.room, m.nick, m.text) for m in await collect(alice, ev.Msg, 2)]
    assert ("lobby", "bob", "loud and clear") in heard
    await alice.set_nick("alice2")
    assert len((await alice.list_rooms()).rooms) == len(daemon.rooms)
    assert (await alice.who("lobby")).members[-2:] == ["alice2", "bob"]

    for peer in open_:
        await peer.close()
    for writer in stalled:
        writer.close()
    for c in (host, alice, bob):
        await c.close()
