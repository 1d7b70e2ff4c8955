"""Several daemons as one service through a real Redis server."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from anonchat import events as ev
from anonchat.client import Client
from anonchat.daemon import Daemon, commands, redisbus, state
from anonchat.daemon.redisbus import RedisBus
from anonchat.dm import DirectMessage, DmNotice
from anonchat.errors import Code, ConnectionClosed, RequestError
from anonchat.secret import SecretMessage, SecretNotice
from anonchat.wire import encode_body, pack_value

from .conftest import DaemonFactory
from .helpers import (
    RawPeer,
    collect,
    free_port,
    half_closing_client,
    hello_bytes,
    ident,
    lose_connection,
    next_event,
    quiet,
    until_closed,
)
from .processes import anonchatd_to_the_end, start_daemon
from .redis_server import RedisServer

PASSPHRASE = "unkempt-sherry-maroon-pebble-mousy-ravage"

NodeFactory = Callable[..., Awaitable[Daemon]]


@pytest.fixture
def redis_url(redis: RedisServer) -> str:
    return redis.url


@pytest.fixture
def make_node(redis_url: str, make_daemon: DaemonFactory, tmp_path: Path) -> NodeFactory:
    """Start nodes of one service: one Redis, one TLS key (so one pin).

    ``redis_url`` comes first: fixtures are torn down in reverse, and Redis
    must outlive the nodes that say goodbye through it."""

    async def make(node_timeout: float = 2.0, **options: Any) -> Daemon:
        state_dir = str(tmp_path / "state")
        return await make_daemon(
            redis=redis_url, node_timeout=node_timeout, state_dir=state_dir, **options
        )

    return make


def _stream_id(node: Daemon) -> tuple[int, int]:
    bus = node.bus
    assert isinstance(bus, RedisBus)
    ms, _, seq = bus._last_id.decode().partition("-")
    return int(ms), int(seq or 0)


async def caught_up(*nodes: Daemon) -> None:
    """Wait until every node has applied what any of them had applied when
    called: a node answers lists from its own copy, which may lag a moment."""
    target = max(_stream_id(n) for n in nodes)
    async with asyncio.timeout(10):
        while any(_stream_id(n) < target for n in nodes):
            await asyncio.sleep(0.01)


async def test_two_nodes_share_a_room(make_node: NodeFactory, clients: Any) -> None:
    a, b = await make_node(), await make_node()
    assert a.pin == b.pin
    alice = await clients(a, "alice")
    bob = await clients(b, "bob")
    await alice.create("lobby")
    joined = await bob.join("lobby")
    assert joined.members == ["alice", "bob"]
    await alice.say("lobby", "hello from a")
    msg = await next_event(bob, ev.Msg)
    assert (msg.nick, msg.text) == ("alice", "hello from a")


async def test_three_nodes_one_order(make_node: NodeFactory, clients: Any) -> None:
    """Senders on three nodes at once: every member sees the same messages in the
    same order, numbered by one strictly increasing sequence."""
    nodes = [await make_node() for _ in range(3)]
    people = [await clients(node, f"user{i}") for i, node in enumerate(nodes)]
    await people[0].create("lobby")
    for person in people[1:]:
        await person.join("lobby")
    per_sender = 100

    async def chatter(i: int) -> None:
        for n in range(per_sender):
            await people[i].say("lobby", f"{i}:{n}")

    await asyncio.gather(*(chatter(i) for i in range(3)))
    seen = [await collect(p, ev.Msg, 3 * per_sender) for p in people]
    orders = [[(m.seq, m.nick, m.text) for m in got] for got in seen]
    assert orders[0] == orders[1] == orders[2]
    seqs = [seq for seq, _, _ in orders[0]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for i in range(3):  # and each sender's messages in the order it sent them
        mine = [text for _, nick, text in orders[0] if nick == f"user{i}"]
        assert mine == [f"{i}:{n}" for n in range(per_sender)]


async def test_requests_in_one_write_wait_for_each_command(
    make_node: NodeFactory, clients: Any
) -> None:
    """A read holding many requests: each waits until the one before is applied
    through Redis (reading pauses meanwhile); all are answered, in order."""
    a, b = await make_node(), await make_node()
    watcher = await clients(b, "watcher")
    await watcher.create("r")
    peer = await RawPeer.open(a)
    reqs = [ev.Join(id=1, room="r")] + [ev.Say(id=i, room="r", text=f"m{i}") for i in range(2, 42)]
    await peer.send(hello_bytes("burst") + b"".join(encode_body(r.to_wire()) for r in reqs))
    msgs = await collect(watcher, ev.Msg, 40)
    assert [m.text for m in msgs] == [f"m{i}" for i in range(2, 42)]
    async with asyncio.timeout(5):
        while sum(isinstance(f, ev.Ok) for f in peer.frames) < 40:
            peer._decode(await peer.reader.read(65536))
    assert [f.id for f in peer.frames if isinstance(f, ev.Ok)] == list(range(2, 42))
    await peer.close()


@pytest.mark.parametrize("how", ["plain", "fin", "close_notify"])
async def test_a_client_that_half_closes_gets_every_reply_from_a_node(
    make_node: NodeFactory, clients: Any, how: str
) -> None:
    """Requests, then the client's end in the same packet (TLS close_notify,
    or a TCP FIN): a node answers only once each command came back through
    Redis, after the end arrived, and every reply still reaches the client.
    (asyncio's SSL transport dropped them all, the server hello included.)"""
    a, b = await make_node(plaintext=how == "plain"), await make_node(plaintext=how == "plain")
    watcher = await clients(b, "watcher")
    await watcher.create("r")
    reqs = [ev.Join(id=1, room="r")] + [ev.Say(id=i, room="r", text=f"m{i}") for i in range(2, 12)]
    data = hello_bytes("half") + b"".join(encode_body(r.to_wire()) for r in reqs)
    frames = await asyncio.to_thread(half_closing_client, a.port, data, how)
    replies = [f for f in frames if isinstance(f, ev.Joined | ev.Ok)]
    assert isinstance(frames[0], ev.ServerHello)
    assert [f.id for f in replies] == list(range(1, 12))
    assert [m.text for m in await collect(watcher, ev.Msg, 10)] == [f"m{i}" for i in range(2, 12)]


async def test_nicks_are_unique_across_nodes(make_node: NodeFactory, clients: Any) -> None:
    a, b = await make_node(), await make_node()
    await clients(a, "alice")
    with pytest.raises(ConnectionClosed) as closed:
        await clients(b, "Alice")
    assert closed.value.code == Code.NICK_TAKEN
    # Two clients racing for one nick on two nodes: exactly one gets it.
    results = await asyncio.gather(clients(a, "racer"), clients(b, "racer"), return_exceptions=True)
    won = [r for r in results if isinstance(r, Client)]
    lost = [r for r in results if isinstance(r, ConnectionClosed)]
    assert len(won) == 1 and len(lost) == 1 and lost[0].code == Code.NICK_TAKEN
    bob = await clients(b, "bob")
    with pytest.raises(RequestError) as caught:
        await bob.set_nick("alice")
    assert caught.value.code == Code.NICK_TAKEN
    # Look-alikes too: the claim is the confusable skeleton, on every node.
    with pytest.raises(ConnectionClosed) as closed:
        await clients(b, "\u0430lice")  # Cyrillic а
    assert closed.value.code == Code.NICK_TAKEN
    with pytest.raises(RequestError) as caught:
        await bob.set_nick("ALIC\u0415")  # Cyrillic Е
    assert caught.value.code == Code.NICK_TAKEN
    results = await asyncio.gather(
        clients(a, "mallory"), clients(b, "rnallory"), return_exceptions=True
    )  # "rn" looks like "m": racing on two nodes, one of the two wins
    assert sorted(type(r).__name__ for r in results) == ["Client", "ConnectionClosed"]


async def test_room_lists_and_members_are_shared(make_node: NodeFactory, clients: Any) -> None:
    a, b = await make_node(), await make_node()
    alice, bob = await clients(a, "alice"), await clients(b, "bob")
    await alice.create("lobby", "welcome")
    await caught_up(a, b)
    rooms = (await bob.list_rooms()).rooms
    assert [(r.room, r.members, r.topic) for r in rooms] == [("lobby", 1, "welcome")]
    await bob.join("lobby")
    await caught_up(a, b)
    assert (await alice.who("lobby")).members == ["alice", "bob"]
    with pytest.raises(RequestError) as caught:
        await bob.create("LOBBY")
    assert caught.value.code == Code.ROOM_EXISTS
    await bob.leave("lobby")
    await caught_up(a, b)
    assert (await alice.who("lobby")).members == ["alice"]


async def test_secret_room_across_nodes(make_node: NodeFactory, clients: Any) -> None:
    a, b = await make_node(), await make_node()
    alice, bob = await clients(a, "alice"), await clients(b, "bob")
    await alice.create_secret("den", PASSPHRASE)
    await bob.join_secret("den", PASSPHRASE)
    with pytest.raises(RequestError) as caught:
        await (await clients(b, "eve")).join_secret("den", "wrong " + PASSPHRASE)
    assert caught.value.code == Code.JOIN_DENIED
    await bob.say_secret("den", "from b, sealed")
    (msg,) = [e for e in await quiet(alice, 0.3) if isinstance(e, SecretMessage)]
    assert (msg.nick, msg.text, msg.fingerprint) == (
        "bob",
        "from b, sealed",
        ident(bob).fingerprint,
    )
    # The daemons never held the name or the text.
    for node in (a, b):
        assert "den" not in repr(node.secret_rooms) and "sealed" not in repr(node.secret_rooms)


async def test_moderation_across_nodes(make_node: NodeFactory, clients: Any) -> None:
    a, b = await make_node(), await make_node()
    alice, bob = await clients(a, "alice"), await clients(b, "bob")
    await alice.create("lobby")
    await bob.join("lobby")
    with pytest.raises(RequestError) as caught:
        await bob.kick("lobby", "alice")
    assert caught.value.code == Code.NOT_OWNER
    await alice.kick("lobby", "bob", "bye", ban=True)
    kicked = await next_event(bob, ev.Presence)
    assert (kicked.kind, kicked.nick, kicked.by) == ("ban", "bob", "alice")
    with pytest.raises(RequestError) as caught:
        await bob.join("lobby")
    assert caught.value.code == Code.BANNED


async def test_resume_on_another_node(make_node: NodeFactory, clients: Any) -> None:
    a, b = await make_node(), await make_node()
    alice, bob = await clients(a, "alice"), await clients(a, "bob")
    await alice.create("lobby")
    await bob.join("lobby")
    await collect(alice, ev.Presence, 1)
    await lose_connection(bob)  # the network went away
    for i in range(5):
        await alice.say("lobby", f"missed {i}")
    again = await Client.connect("127.0.0.1", b.port, pin=b.pin, resume=bob)
    try:
        assert again.resumed and again.nick == "bob"
        await alice.say("lobby", "after")
        got = [e.text for e in await quiet(again, 0.3) if isinstance(e, ev.Msg)]
        assert got == [*(f"missed {i}" for i in range(5)), "after"]
        assert not [e for e in await quiet(alice) if isinstance(e, ev.Presence)]
        await caught_up(a, b)
        assert (await alice.who("lobby")).members == ["alice", "bob"]
    finally:
        await again.close()


async def test_a_late_node_loads_the_snapshot(make_node: NodeFactory, clients: Any) -> None:
    a = await make_node()
    alice, bob = await clients(a, "alice"), await clients(a, "bob")
    await alice.create("lobby", "topic")
    await bob.join("lobby")
    await alice.say("lobby", "remembered")
    await alice.create_secret("den", PASSPHRASE)
    bus = a.bus
    assert isinstance(bus, RedisBus)
    await bus.write_snapshot()
    await alice.say("lobby", "after the snapshot")
    await bus.write_snapshot()  # trims the stream up to the first snapshot
    b = await make_node()
    assert [r.name for r in b.rooms.values()] == ["lobby"]
    assert b.rooms["lobby"].seq == a.rooms["lobby"].seq
    assert set(b.nicks) == {"alice", "bob"}
    carol = await clients(b, "carol")
    joined = await carol.join("lobby")
    assert joined.members == ["alice", "bob", "carol"]
    history = [e.text for e in await quiet(carol) if isinstance(e, ev.Msg)]
    assert history == ["remembered", "after the snapshot"]
    await (await clients(b, "dave")).join_secret("den", PASSPHRASE)


async def test_a_stream_entry_with_lists_that_are_no_commands_is_logged_and_skipped(
    make_node: NodeFactory, clients: Any, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A list in the stream that is no command of this version (an unknown op
    naming a member, a command of the wrong shape, not a list at all) is
    logged and skipped, on every node, and what follows it is applied; an
    unknown op naming nobody here is skipped without a word (as before the
    commands were typed: ``state.apply_list``)."""
    a, b = await make_node(), await make_node()
    alice, bob = await clients(a, "alice"), await clients(b, "bob")
    await alice.create("lobby")
    await bob.join("lobby")
    uid = next(m.uid for m in a.members.values() if m.nick == "alice")
    batch = [
        ["nope", uid, 1, "x"],  # unknown, naming a member
        ["nope", "nobody.1", None],  # unknown, naming nobody
        ["say", uid, 2, "lobby"],  # the wrong shape
        42,  # not a list
        ["topic", uid, 10_000, "lobby", "after the junk"],
    ]
    writer = redis.asyncio.Redis.from_url(redis_url)
    try:
        with caplog.at_level(logging.ERROR, logger="anonchat.daemon"):
            await writer.xadd(redisbus.STREAM, {"c": pack_value(batch)})
            changed = await next_event(bob, ev.TopicChanged)
            assert changed.topic == "after the junk"
            await caught_up(a, b)
    finally:
        await writer.aclose()
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    for node in (a, b):
        assert node.rooms["lobby"].topic == "after the junk"
    skipped = [m for m in logged if m.startswith("cannot apply command")]
    assert sorted(skipped) == sorted(
        [f"cannot apply command ['nope', '{uid}']"] * 2
        + [f"cannot apply command ['say', '{uid}']"] * 2
        + ["cannot apply command 42"] * 2
    )
    # The nodes go on: a message crosses them as before.
    await alice.say("lobby", "still here")
    assert (await next_event(bob, ev.Msg)).text == "still here"


async def test_a_node_counted_as_gone_is_logged_even_when_it_held_nobody(
    make_node: NodeFactory, redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator reads in the log that a node was counted as gone, whether
    or not it had users (it was said only when it had some)."""
    a = await make_node(node_timeout=1.0)
    doomed = await start_daemon(
        tmp_path / "state", "--redis", redis_url, "--node-timeout", "1", "--log-level", "WARNING"
    )
    async with asyncio.timeout(30):
        while len(a.nodes) < 2:  # its beat has arrived
            await asyncio.sleep(0.05)
    (other,) = [n for n in a.nodes if n != a.node]
    doomed.proc.kill()
    await doomed.proc.wait()
    with caplog.at_level(logging.WARNING, logger="anonchat.daemon"):
        async with asyncio.timeout(30):  # node_timeout, once the judge has watched as long
            while other in a.nodes:
                await asyncio.sleep(0.05)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"node {other} is gone; ending its 0 sessions" in said


async def test_a_killed_node_frees_its_users(
    make_node: NodeFactory, clients: Any, redis_url: str, tmp_path: Path
) -> None:
    """kill -9 one of three nodes mid-conversation: the clients of the other two
    lose nothing (every message, in order, no gap in the sequence), and within
    node_timeout the dead node's users' nicks and memberships are free again."""
    a, b = await make_node(node_timeout=1.0), await make_node(node_timeout=1.0)
    doomed = await start_daemon(
        tmp_path / "state", "--redis", redis_url, "--node-timeout", "1", "--log-level", "WARNING"
    )
    try:
        alice, bob = await clients(a, "alice"), await clients(b, "bob")
        carol = await Client.connect("127.0.0.1", doomed.port, nick="carol", pin=doomed.pin)
        await alice.create("lobby")
        await bob.join("lobby")
        await carol.join("lobby")
        await quiet(alice)
        await quiet(bob)

        async def talk(client: Client) -> None:
            for n in range(150):
                await client.say("lobby", f"{client.nick} {n}")
                await asyncio.sleep(0.004)

        talking = [asyncio.create_task(talk(c)) for c in (alice, bob, carol)]
        await asyncio.sleep(0.2)
        doomed.proc.kill()
        await doomed.proc.wait()
        await asyncio.gather(*talking[:2])
        talking[2].cancel()
        async with asyncio.timeout(30):  # node_timeout, once the judges have watched as long
            while "carol" in a.nicks or "carol" in b.nicks:
                await asyncio.sleep(0.05)
        await alice.ping()  # what the nodes sent before (the quit) has arrived
        await bob.ping()
        seen = [
            [e for e in c.events_nowait() if isinstance(e, ev.Msg | ev.Presence)]
            for c in (alice, bob)
        ]
        assert [(e.seq, type(e)) for e in seen[0]] == [(e.seq, type(e)) for e in seen[1]]
        seqs = [e.seq for e in seen[0]]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap
        for me in (alice, bob):
            mine = [e.text for e in seen[0] if isinstance(e, ev.Msg) and e.nick == me.nick]
            assert mine == [f"{me.nick} {n}" for n in range(150)]
        quits = [e for e in seen[0] if isinstance(e, ev.Presence)]
        assert [(e.kind, e.nick) for e in quits] == [("quit", "carol")]
        assert (await alice.who("lobby")).members == ["alice", "bob"]
        assert "carol" not in a.nicks and "carol" not in b.nicks
        await clients(b, "carol")  # the nick is free again
    finally:
        if doomed.proc.returncode is None:
            doomed.proc.kill()


async def test_pipelined_requests_keep_their_order(make_node: NodeFactory, clients: Any) -> None:
    """Messages do not wait for the round trip through Redis, joins do: a client
    that sends without waiting still sees its requests applied in order."""
    a, b = await make_node(), await make_node()
    alice, bob = await clients(a, "alice"), await clients(b, "bob")
    await alice.create("lobby")
    await bob.join("lobby")
    seqs = await asyncio.gather(*(alice.say("lobby", f"{n}") for n in range(50)))
    assert seqs == sorted(seqs)
    got = await collect(bob, ev.Msg, 50)
    assert [m.text for m in got] == [f"{n}" for n in range(50)]
    # A join and a message sent back to back: the message sees the join.
    await asyncio.gather(bob.create("second"), bob.say("second", "first words"))


async def test_secret_room_owners_across_nodes_and_snapshots(
    make_node: NodeFactory, clients: Any
) -> None:
    a = await make_node()
    owner, member = await clients(a, "owner"), await clients(a, "member")
    await owner.create_secret("den", PASSPHRASE)
    await member.join_secret("den", PASSPHRASE)
    await owner.secret_mode("den", locked=True)
    bus = a.bus
    assert isinstance(bus, RedisBus)
    await bus.write_snapshot()
    b = await make_node()  # loads the owner chain and the lock from the snapshot
    late = await clients(b, "late")
    with pytest.raises(RequestError) as caught:
        await late.join_secret("den", PASSPHRASE)
    assert caught.value.code == Code.ROOM_LOCKED
    await owner.secret_mode("den", locked=False)
    await late.join_secret("den", PASSPHRASE)
    assert late.secret_channel("den").owner_trusted
    await owner.secret_kick("den", "late")
    with pytest.raises(RequestError) as caught:
        await late.say_secret("den", "still here?")
    assert caught.value.code == Code.NOT_MEMBER


async def test_secret_room_one_order_across_nodes(make_node: NodeFactory, clients: Any) -> None:
    a, b = await make_node(), await make_node()
    alice, bob = await clients(a, "alice"), await clients(b, "bob")
    await alice.create_secret("den", PASSPHRASE)
    await bob.join_secret("den", PASSPHRASE)
    await quiet(alice)
    await quiet(bob)

    async def chatter(client: Client, who: str) -> None:
        for n in range(30):
            await client.say_secret("den", f"{who}{n}")

    await asyncio.gather(chatter(alice, "a"), chatter(bob, "b"))
    await asyncio.sleep(0.3)
    seen = [
        [e.text for e in c.events_nowait() if isinstance(e, SecretMessage)] for c in (alice, bob)
    ]
    assert seen[0] == seen[1] and len(seen[0]) == 60
    assert [t for t in seen[0] if t[0] == "a"] == [f"a{n}" for n in range(30)]


async def test_nodes_judge_nobody_after_an_outage_of_everyone(make_node: NodeFactory) -> None:
    """Only a node that kept beating for node_timeout counts others as gone
    (state.beat): after an outage of everyone, each has node_timeout to beat."""
    a = await make_node(node_timeout=1.0)
    timeout = 1000
    a.shared.nodes = {"x": 0, "y": 0}
    state.apply(a.shared, commands.Beat("x"), 5 * timeout)  # x was silent too: judges nobody
    assert set(a.nodes) >= {"x", "y"}
    for ms in range(200, timeout, 200):  # x beats on time, but has not watched long enough
        state.apply(a.shared, commands.Beat("x"), 5 * timeout + ms)
        assert "y" in a.nodes
    state.apply(a.shared, commands.Beat("x"), 6 * timeout)  # a whole node_timeout: y is gone
    assert "y" not in a.nodes and "x" in a.nodes


async def test_an_unreachable_redis_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"redis://127.0.0.1:{port}/0"
    status, out = await anonchatd_to_the_end(
        "--port", "0", "--state-dir", str(tmp_path), "--redis", url, timeout=30
    )
    assert status == 75  # EX_TEMPFAIL: try again later (systemd's Restart=)
    assert f"anonchatd: cannot reach Redis at {url}" in out
    assert "Traceback" not in out


async def test_a_slow_redis_backs_up_into_the_clients_not_the_daemon(
    redis: RedisServer, make_node: NodeFactory, clients: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While Redis does not answer, commands wait in the node; past BACKLOG each
    session waits for each of its commands, so the backlog is bounded by the
    sessions, not by what they send.  Once Redis is back everything arrives."""
    monkeypatch.setattr(redisbus, "BACKLOG", 5)
    a, b = await make_node(), await make_node()
    alice, bob = await clients(a, "alice"), await clients(b, "bob")
    await alice.create("lobby")
    await bob.join("lobby")
    await quiet(bob)
    bus = a.bus
    assert isinstance(bus, RedisBus)
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        sending = asyncio.gather(*(alice.say("lobby", f"{n}") for n in range(200)))
        await asyncio.sleep(0.5)
        assert len(bus._pending) <= 10  # not 200: alice's session waits
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    seqs = await asyncio.wait_for(sending, 10)
    assert seqs == sorted(seqs)
    got = await collect(bob, ev.Msg, 200)
    assert [m.text for m in got] == [f"{n}" for n in range(200)]


async def test_room_limits_hold_across_nodes(make_node: NodeFactory, clients: Any) -> None:
    """max_members_per_room counts members on every node: at the limit, and
    two joiners racing for the last place on two nodes, one of them gets it."""
    a, b = await make_node(max_members_per_room=3), await make_node(max_members_per_room=3)
    alice, bob = await clients(a, "alice"), await clients(b, "bob")
    await alice.create("lobby")
    await bob.join("lobby")  # two of three
    carol, dave = await clients(a, "carol"), await clients(b, "dave")
    results = await asyncio.gather(carol.join("lobby"), dave.join("lobby"), return_exceptions=True)
    refused = [r for r in results if isinstance(r, RequestError)]
    assert len(refused) == 1 and refused[0].code == Code.ROOM_FULL
    await caught_up(a, b)
    assert len((await alice.who("lobby")).members) == 3


async def alice_and_bob_on_two_nodes(
    make_node: NodeFactory, clients: Any, **options: Any
) -> tuple[Daemon, Daemon, Client, Client]:
    """Nodes a and b (a has seen b beat), alice on a and bob on b, in lobby."""
    a, b = await make_node(**options), await make_node(**options)
    async with asyncio.timeout(10):
        while b.node not in a.nodes:
            await asyncio.sleep(0.05)
    alice, bob = await clients(a, "alice"), await clients(b, "bob")
    await alice.create("lobby")
    await bob.join("lobby")
    return a, b, alice, bob


async def test_a_restarting_node_hands_its_sessions_over(
    make_node: NodeFactory, clients: Any
) -> None:
    """A rolling restart: a node stopped cleanly while others run tells its
    clients to resume, and their sessions wait for them on the other nodes:
    nobody else sees them quit, and they miss nothing."""
    a, b, alice, bob = await alice_and_bob_on_two_nodes(make_node, clients)
    await alice.create_secret("den", PASSPHRASE)
    await bob.join_secret("den", PASSPHRASE)
    await quiet(alice)
    await quiet(bob)
    (alice_uid,) = [s.uid for s in a.sessions if s.nick == "alice"]
    await a.shutdown()
    assert await until_closed(alice) == Code.RESTART
    await bob.say("lobby", "while you were away")
    await bob.say_secret("den", "sealed while away")
    # The handover reaches a later node through the snapshot (the stream before
    # it is trimmed): the node comes back (a new process, as after an upgrade)
    # and alice resumes there.
    assert isinstance(b.bus, RedisBus)
    await b.bus.write_snapshot()
    await b.bus.write_snapshot()
    c = await make_node()
    assert set(c.orphans) == set(b.orphans) == {alice_uid}
    again = await Client.connect("127.0.0.1", c.port, pin=c.pin, resume=alice)
    try:
        assert again.resumed and again.nick == "alice"
        events = await quiet(again, 0.5)
        assert [e.text for e in events if isinstance(e, ev.Msg)] == ["while you were away"]
        assert [e.text for e in events if isinstance(e, SecretMessage)] == ["sealed while away"]
        assert not [e for e in await quiet(bob) if isinstance(e, ev.Presence)]
        await caught_up(b, c)
        assert (await bob.who("lobby")).members == ["alice", "bob"]
        await again.say_secret("den", "back, same key")
        (msg,) = [e for e in await quiet(bob) if isinstance(e, SecretMessage)]
        assert (msg.nick, msg.fingerprint) == ("alice", ident(alice).fingerprint)
        async with asyncio.timeout(5):  # b applies the resume too
            while b.orphans:
                await asyncio.sleep(0.05)
        assert not c.orphans
    finally:
        await again.close()


async def test_handed_over_sessions_nobody_resumes_end_after_the_window(
    make_node: NodeFactory, clients: Any
) -> None:
    a, b, alice, bob = await alice_and_bob_on_two_nodes(make_node, clients, resume_window=1)
    await quiet(bob)
    await a.shutdown()
    assert await until_closed(alice) == Code.RESTART
    quit = await next_event(bob, ev.Presence, timeout=10)  # at the first beat past 1 s
    assert (quit.kind, quit.nick) == ("quit", "alice")
    assert not b.orphans and "alice" not in b.nicks


async def test_every_node_stopped_at_once_tells_everyone_the_same(
    make_node: NodeFactory, clients: Any
) -> None:
    """Issue 15 item 7: every node stopped at once (a restart of the whole
    service): every client hears `restart`, not half of them `shutdown`; the
    sessions wait in Redis and resume on a node started afterwards."""
    a, b, alice, bob = await alice_and_bob_on_two_nodes(make_node, clients)
    await asyncio.gather(a.shutdown(), b.shutdown())
    assert await until_closed(alice) == await until_closed(bob) == Code.RESTART
    c = await make_node()
    for old in (alice, bob):
        again = await Client.connect("127.0.0.1", c.port, pin=c.pin, resume=old)
        try:
            assert again.resumed and again.nick == old.nick
        finally:
            await again.close()


async def test_without_resume_window_the_last_node_says_shutdown(
    make_node: NodeFactory, clients: Any
) -> None:
    a = await make_node(resume_window=0)
    alice = await clients(a, "alice")
    await a.shutdown()
    assert await until_closed(alice) == Code.SHUTDOWN


async def test_direct_messages_across_nodes(make_node: NodeFactory, clients: Any) -> None:
    """A DM crosses nodes; the recipient resumes on a third node and gets what it
    missed once; a node that starts late knows the DM keys from the snapshot."""
    a, b = await make_node(), await make_node()
    alice, bob = await clients(a, "alice"), await clients(b, "bob")
    await caught_up(a, b)
    talk = await alice.open_dm("bob")
    await alice.send_dm(talk.peer, "across nodes")
    got = await next_dm(bob)
    assert (got.text, got.nick) == ("across nodes", "alice")
    await bob.send_dm(got.peer, "and back")
    assert (await next_dm(alice)).text == "and back"

    await lose_connection(bob)  # the network went away
    for i in range(3):
        await alice.send_dm(talk.peer, f"missed {i}")
    bus = a.bus
    assert isinstance(bus, RedisBus)
    await bus.write_snapshot()
    c = await make_node()  # loads the snapshot: the cards and bob's ring
    assert c.nicks["bob"].dm_ring is not None and c.nicks["bob"].dm_seq == 4
    again = await Client.connect("127.0.0.1", c.port, pin=c.pin, resume=bob)
    try:
        assert again.resumed
        await alice.send_dm(talk.peer, "after")
        texts = [(await next_dm(again)).text for _ in range(4)]
        assert texts == ["missed 0", "missed 1", "missed 2", "after"]
        await again.send_dm(got.peer, "resumed on a third node")
        assert (await next_dm(alice)).text == "resumed on a third node"
        carol = await clients(c, "carol")
        assert (await carol.open_dm("alice")).peer == alice.dms.identity.sign
    finally:
        await again.close()


async def next_dm(client: Client) -> DirectMessage:
    async with asyncio.timeout(10):
        async for event in client.events():
            assert not isinstance(event, DmNotice), event.text
            if isinstance(event, DirectMessage) and not event.own:
                return event
    raise AssertionError("closed before a direct message")


async def test_rotate_across_nodes(make_node: NodeFactory, clients: Any) -> None:
    """/secret rotate with the members on two nodes: the invitation crosses nodes,
    the member follows, the banned one (on the owner's node) is left behind."""
    a, b = await make_node(), await make_node()
    alice, troll = await clients(a, "alice"), await clients(a, "troll")
    bob = await clients(b, "bob")
    await alice.create_secret("den", PASSPHRASE)
    await caught_up(a, b)
    await bob.join_secret("den", PASSPHRASE)
    await troll.join_secret("den", PASSPHRASE)
    channel = alice.secret_channel("den")
    async with asyncio.timeout(10):
        while len([n for n in channel.nicks.values() if n]) < 3:
            await asyncio.sleep(0.01)
    await alice.secret_kick("den", "troll", ban=True)
    rotated = await alice.rotate_secret("den")
    assert [m.split("#")[0] for m in rotated.moved] == ["bob"]
    async with asyncio.timeout(15):
        async for event in bob.events():
            if isinstance(event, SecretNotice) and event.kind == "rotated":
                break
    assert bob.secret_channel("den").rid == alice.secret_channel("den").rid != channel.rid
    await alice.say_secret("den", "on the other side")
    async with asyncio.timeout(10):
        async for event in bob.events():
            if isinstance(event, SecretMessage) and event.text == "on the other side":
                break
    await troll.ping()
    assert not [e for e in troll.events_nowait() if isinstance(e, DirectMessage | DmNotice)]
