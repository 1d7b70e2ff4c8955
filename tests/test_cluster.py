"""Several daemons as one service through a real Redis server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from anonchat import events as ev
from anonchat.client import Client
from anonchat.daemon import Config, Daemon, Limits
from anonchat.daemon.redisbus import RedisBus
from anonchat.errors import Code, ConnectionClosed, RequestError
from anonchat.secret import SecretMessage
from anonchat.wire import encode_body

from .conftest import TEST_LIMITS
from .helpers import RawPeer, collect, dial, hello_bytes, next_event, quiet
from .redis_server import free_port, redis_server
from .test_processes import start_daemon

PASSPHRASE = "unkempt-sherry-maroon-pebble-mousy-ravage"

NodeFactory = Callable[..., Awaitable[Daemon]]


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


@pytest.fixture
async def make_node(redis_url: str, tmp_path: Path) -> AsyncIterator[NodeFactory]:
    """Start nodes of one service: one Redis, one TLS key (so one pin)."""
    started: list[Daemon] = []
    state_dir = tmp_path / "state"

    async def make(node_timeout: float = 2.0, **limits: Any) -> Daemon:
        config = Config(
            host="127.0.0.1",
            port=0,
            limits=Limits(**{**TEST_LIMITS, **limits}),
            state_dir=str(state_dir),
            redis=redis_url,
            node_timeout=node_timeout,
        )
        daemon = Daemon(config)
        await daemon.start()
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        await daemon.shutdown()


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    opened: list[Client] = []

    async def make(node: Daemon, nick: str | None = None) -> Client:
        client = await dial(node, nick)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.close()


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


async def test_room_lists_and_members_are_shared(make_node: NodeFactory, clients: Any) -> None:
    a, b = await make_node(), await make_node()
    alice, bob = await clients(a, "alice"), await clients(b, "bob")
    await alice.create("lobby", "welcome")
    rooms = (await bob.list_rooms()).rooms
    assert [(r.room, r.members, r.topic) for r in rooms] == [("lobby", 1, "welcome")]
    await bob.join("lobby")
    assert (await alice.who("lobby")).members == ["alice", "bob"]
    with pytest.raises(RequestError) as caught:
        await bob.create("LOBBY")
    assert caught.value.code == Code.ROOM_EXISTS
    await bob.leave("lobby")
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
        bob.identity.fingerprint,
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
    bob._writer.transport.abort()  # the network went away
    async with asyncio.timeout(5):
        while bob.closed is None:
            await asyncio.sleep(0.01)
    for i in range(5):
        await alice.say("lobby", f"missed {i}")
    again = await Client.connect("127.0.0.1", b.port, pin=b.pin, resume=bob)
    try:
        assert again.resumed and again.nick == "bob"
        await alice.say("lobby", "after")
        got = [e.text for e in await quiet(again, 0.3) if isinstance(e, ev.Msg)]
        assert got == [*(f"missed {i}" for i in range(5)), "after"]
        assert not [e for e in await quiet(alice) if isinstance(e, ev.Presence)]
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


async def test_a_killed_node_frees_its_users(
    make_node: NodeFactory, clients: Any, redis_url: str, tmp_path: Path
) -> None:
    """kill -9 one node mid-conversation: the others lose nothing, and within
    node_timeout its users' nicks and memberships are free again."""
    a = await make_node(node_timeout=1.0)
    doomed = await start_daemon(
        tmp_path / "state", "--redis", redis_url, "--node-timeout", "1", "--log-level", "WARNING"
    )
    try:
        alice = await clients(a, "alice")
        carol = await Client.connect("127.0.0.1", doomed.port, nick="carol", pin=doomed.pin)
        await alice.create("lobby")
        await carol.join("lobby")
        await collect(alice, ev.Presence, 1)

        async def talk() -> None:
            for n in range(200):
                await alice.say("lobby", f"{n}")
                await asyncio.sleep(0.005)

        talking = asyncio.create_task(talk())
        await asyncio.sleep(0.2)
        doomed.proc.kill()
        await doomed.proc.wait()
        quit_event = await next_event(alice, ev.Presence, timeout=5)
        assert (quit_event.kind, quit_event.nick) == ("quit", "carol")
        await talking
        assert (await alice.who("lobby")).members == ["alice"]
        assert "carol" not in a.nicks
        await clients(a, "carol")  # the nick is free again
        dave = await clients(a, "dave")
        await dave.join("lobby")
        await alice.say("lobby", "still here")
        said = [e.text for e in await quiet(dave) if isinstance(e, ev.Msg)]
        assert said[-2:] == ["199", "still here"]  # after the history on join
    finally:
        if doomed.proc.returncode is None:
            doomed.proc.kill()


async def test_metrics_are_aggregate_only(redis_url: str, tmp_path: Path, clients: Any) -> None:
    port = free_port()
    config = Config(
        host="127.0.0.1",
        port=0,
        limits=Limits(**TEST_LIMITS),
        state_dir=str(tmp_path / "state"),
        redis=redis_url,
        metrics=f"127.0.0.1:{port}",
    )
    node = Daemon(config)
    await node.start()
    try:
        alice = await clients(node, "alice")
        await alice.create("lobby")
        await alice.say("lobby", "counted, not kept")
        with pytest.raises(RequestError):
            await alice.join("nowhere")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        page = (await reader.read()).decode()
        writer.close()
        assert page.startswith("HTTP/1.1 200 OK")
        assert "anonchat_connections 1\n" in page
        assert "anonchat_rooms 1\n" in page
        assert "anonchat_messages_total 1\n" in page
        assert 'anonchat_errors_total{code="no_such_room"} 1\n' in page
        assert "alice" not in page and "lobby" not in page and "counted" not in page
    finally:
        await node.shutdown()
