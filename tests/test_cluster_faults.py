"""Several nodes through the faults of a real Redis deployment (issue 15).

Redis paused (SIGSTOP) or stopped longer than ``node_timeout``, a node frozen,
Redis restarted empty, a snapshot larger than one Redis value, nodes with
different settings.  Clients number their messages in a public and a secret
room, and every test ends with one verdict: nothing lost except what the
users were told of, nothing duplicated, nothing reordered, nobody logged off
who could have stayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from anonchat import events as ev
from anonchat.client import Client, Event
from anonchat.daemon import Daemon, Limits, commands, redisbus, state
from anonchat.daemon.redisbus import RedisBus
from anonchat.errors import ConfigError
from anonchat.frontend.commands import Attempt, Commands, Info, Note
from anonchat.secret import SecretMessage, SecretNotice

from . import test_cluster
from .conftest import DaemonFactory
from .helpers import collect, next_event, quiet
from .processes import PY, STARTED, anonchatd_to_the_end, start_daemon
from .redis_server import RedisServer, redis_server
from .test_cluster import PASSPHRASE, NodeFactory, caught_up

# The fixtures of tests/test_cluster.py: nodes of one service on conftest's Redis.
redis_url = test_cluster.redis_url
make_node = test_cluster.make_node

#: A short node_timeout keeps the tests quick; the faults last longer than it.
NODE_TIMEOUT = 1.0


class Numbered:
    """Each client says numbered messages in ``lobby`` and in the secret room
    ``den`` until stopped; every client records everything it receives."""

    def __init__(self, people: list[Client]) -> None:
        self.people = people
        self.seen: dict[str, list[Event]] = {c.nick: [] for c in people}
        self.sent: dict[str, int] = dict.fromkeys(self.seen, 0)
        self._stop = asyncio.Event()
        self._readers = [asyncio.create_task(self._read(c)) for c in people]
        self._talkers: list[asyncio.Task[None]] = []

    @classmethod
    async def setup(cls, nodes: list[Daemon], people: list[Client]) -> Numbered:
        """Everyone in ``lobby`` and ``den``; what the joins produced is drained."""
        first, *others = people
        await first.create("lobby")
        await first.create_secret("den", PASSPHRASE)
        for person in others:
            await person.join("lobby")
            await person.join_secret("den", PASSPHRASE)
        await caught_up(*nodes)  # every node sent everyone the others' joins
        for person in people:
            await person.ping()
            person.events_nowait()
        return cls(people)

    async def _read(self, client: Client) -> None:
        async for event in client.events():
            self.seen[client.nick].append(event)

    async def _talk(self, client: Client) -> None:
        n = 0
        while not self._stop.is_set():
            await client.say("lobby", f"{client.nick} {n}")
            await client.say_secret("den", f"{client.nick} {n}")
            n += 1
            self.sent[client.nick] = n
            await asyncio.sleep(0.01)  # a person's pace, not a synchronisation

    def start(self) -> None:
        self._talkers = [asyncio.create_task(self._talk(c)) for c in self.people]

    async def until_sent(self, each: int) -> None:
        """Wait until every client has sent ``each`` more messages."""
        target = {nick: n + each for nick, n in self.sent.items()}
        async with asyncio.timeout(60):
            while any(self.sent[nick] < target[nick] for nick in target):
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.wait_for(asyncio.gather(*self._talkers), 60)

    def _numbers(self, nick: str, kind: type[Any]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = defaultdict(list)
        for event in self.seen[nick]:
            if isinstance(event, kind):
                sender, _, n = event.text.partition(" ")
                out[sender].append(int(n))
        return out

    def _complete(self) -> bool:
        total = sum(self.sent.values())
        return all(
            sum(isinstance(e, kind) for e in self.seen[nick]) >= total
            for nick in self.seen
            for kind in (ev.Msg, SecretMessage)
        )

    async def verdict(self) -> None:
        """0 lost, 0 duplicated, 0 reordered, nobody logged off, no false alarm."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                while not self._complete():
                    await asyncio.sleep(0.05)
        for reader in self._readers:
            reader.cancel()
        expected = {nick: list(range(n)) for nick, n in self.sent.items()}
        for nick in self.seen:
            for kind in (ev.Msg, SecretMessage):
                got = dict(self._numbers(nick, kind))
                assert got == expected, (
                    nick,
                    kind.__name__,
                    {k: v[-20:] for k, v in got.items()},
                    self.sent,
                )
            odd = [e for e in self.seen[nick] if isinstance(e, ev.Presence | SecretNotice)]
            assert odd == [], nick  # nobody quit, no gap, no replay alarm
        assert [c.nick for c in self.people if c.closed is not None] == []


async def three_nodes(make_node: NodeFactory, clients: Any) -> tuple[list[Daemon], Numbered]:
    nodes = [await make_node(node_timeout=NODE_TIMEOUT) for _ in range(3)]
    await all_see_each_other(nodes)
    people = [await clients(node, f"user{i}") for i, node in enumerate(nodes)]
    return nodes, await Numbered.setup(nodes, people)


async def all_see_each_other(nodes: list[Daemon], judging: bool = False) -> None:
    """Wait until every node counts every other as alive (with ``judging``:
    each has beaten without a gap for twice node_timeout since, so any judging
    there was to do has been done)."""
    ids = {n.node for n in nodes}
    span = 2 * round(NODE_TIMEOUT * 1000)
    async with asyncio.timeout(30):
        while not all(
            ids <= set(n.nodes)
            and (not judging or all(n.nodes[i] - n.shared.alive_since[i] > span for i in ids))
            for n in nodes
        ):
            assert not any(n.stopping for n in nodes), "a node stopped"
            await asyncio.sleep(0.05)


async def outage(fault: Any, nodes: list[Daemon], talk: Numbered) -> None:
    talk.start()
    await talk.until_sent(5)
    await fault()
    await all_see_each_other(nodes, judging=True)
    await talk.until_sent(5)
    await talk.stop()
    await talk.verdict()
    assert not any(n.stopping for n in nodes)
    assert all(len(n.nodes) == 3 for n in nodes)


@pytest.mark.parametrize("length", [0.6, 1.2, 2.5])
async def test_redis_paused_longer_than_node_timeout_ejects_nobody(
    length: float,
    redis: RedisServer,
    make_node: NodeFactory,
    clients: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 15 items 1 and 3: Redis SIGSTOPped under three nodes and talking
    clients for ``length`` times node_timeout (around half of it, where the
    judges start to wait, just over it and well over it): no node counts
    another as gone, nobody is logged off.  Past node_timeout the nodes'
    writes time out and are sent again while Redis holds the first copies,
    which it executes on SIGCONT: still every message arrives once, in order,
    and no secret-room member sees a replay alarm."""
    nodes, talk = await three_nodes(make_node, clients)

    async def pause() -> None:
        redis.proc.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(length * NODE_TIMEOUT)  # the outage's length (a lower bound)
        finally:
            redis.proc.send_signal(signal.SIGCONT)

    await outage(pause, nodes, talk)
    if length > 1:
        timed_out = [
            r for r in caplog.records if "cannot write to Redis (Timeout" in r.getMessage()
        ]
        assert timed_out  # the writes were sent twice, and Redis executed both


async def test_redis_down_longer_than_node_timeout_ejects_nobody(
    redis: RedisServer, make_node: NodeFactory, clients: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 15 item 1: Redis stopped (connections refused) for over twice
    node_timeout, then back with its data: nobody is ejected or logged off.
    Each node logs the outage, not each of its many failed tries: the first
    error, and the end (redisbus.Outage)."""
    nodes, talk = await three_nodes(make_node, clients)

    async def down() -> None:
        await asyncio.to_thread(redis.stop, save=True)
        await asyncio.sleep(2.5 * NODE_TIMEOUT)  # the outage's length (a lower bound)
        await asyncio.to_thread(redis.start)

    await outage(down, nodes, talk)
    said = [r.getMessage() for r in caplog.records if r.name == "anonchat.daemon.redis"]
    began = [m for m in said if m.startswith("cannot write to Redis")]
    ended = [m for m in said if m.startswith("wrote to Redis again after")]
    tries = sum(n.bus.stats.write_errors for n in nodes if n.bus.stats is not None)
    assert 3 <= len(began) < tries  # at least one outage a node, never a line a try
    assert len(ended) == len(began)
    assert not [m for m in said if m.startswith("still cannot")]  # (under OUTAGE_REMIND)


def test_an_outage_is_logged_when_it_begins_now_and_then_and_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    outage = redisbus.Outage("write to", "wrote to", clock=lambda: now[0])
    caplog.set_level(logging.WARNING, "anonchat.daemon.redis")
    for t in range(0, 70):  # a failed try a second for 70 s
        now[0] = 100.0 + t
        outage.failed("Connection refused")
    outage.worked()
    outage.worked()  # (nothing more to say)
    assert [r.getMessage() for r in caplog.records] == [
        "cannot write to Redis (Connection refused); retrying",
        "still cannot write to Redis after 30 s (31 failed tries; the last: Connection refused);"
        " retrying",
        "still cannot write to Redis after 60 s (61 failed tries; the last: Connection refused);"
        " retrying",
        "wrote to Redis again after 69.0 s (70 failed tries)",
    ]
    caplog.clear()
    outage.failed("Timeout reading from 127.0.0.1:6379")  # a new outage
    assert [r.getMessage() for r in caplog.records] == [
        "cannot write to Redis (Timeout reading from 127.0.0.1:6379); retrying"
    ]


class Balancer:
    """A TCP balancer in front of the nodes, as an operator runs one: each
    connection goes to the first node that accepts it; TLS passes through."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self._ports = ports
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Balancer:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._pipes:
            task.cancel()

    def cut(self) -> None:
        """A partition: every connection through here breaks, new ones fail."""
        self._ports, self.ports = self.ports, []
        for task in self._pipes:
            task.cancel()

    def heal(self) -> None:
        self.ports = self._ports

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for port in self.ports:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        else:
            writer.close()
            return
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(_pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except OSError:
        pass
    finally:
        dst.close()


class LineMode:
    """``anonchat --plain`` reading numbered lines from a pipe, as a script would."""

    def __init__(self, proc: asyncio.subprocess.Process, nick: str) -> None:
        self.proc, self.nick, self.typed = proc, nick, 0

    @classmethod
    async def start(cls, port: int, pin: str, nick: str) -> LineMode:
        proc = await asyncio.create_subprocess_exec(
            PY,
            *("-m", "anonchat", "--plain", "--server", f"127.0.0.1:{port}", "--fingerprint", pin),
            "--nick",
            nick,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        STARTED.append(proc)
        self = cls(proc, nick)
        self.write("/join lobby")
        return self

    def write(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")

    def type_next(self) -> None:
        self.write(f"{self.nick} {self.typed}")
        self.typed += 1

    async def finish(self) -> tuple[int, str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        async with asyncio.timeout(60):
            out = await self.proc.stdout.read()
            return await self.proc.wait(), out.decode()


def verdict_told(lm: LineMode, out: str, delivered: list[int]) -> None:
    """Every typed line arrived once, in order, or its writer was told it may not have."""
    assert delivered == sorted(set(delivered)), "duplicated or reordered"
    for n in sorted(set(range(lm.typed)) - set(delivered)):
        told = [
            line
            for line in out.splitlines()
            if f"{lm.nick} {n}" in line and ("not sent" in line or "may not have" in line)
        ]
        assert told, f"line {n} of {lm.nick} lost without a word:\n{out}"


async def lines_survive(
    watcher: Client, port: int, pin: str, fault: Any, lost: Any, backends: list[int]
) -> None:
    """Line-mode clients behind a balancer (``backends``, the doomed node
    first) type numbered lines while ``fault`` runs and until ``lost`` says the
    node stopped; they must carry on on another node, and every line arrive
    once, in order, or its writer be told."""
    async with Balancer(backends) as balancer:
        people = [await LineMode.start(balancer.port, pin, f"lm{i}") for i in range(2)]
        joined = {e.nick for e in await collect(watcher, ev.Presence, 2)}
        assert joined == {"lm0", "lm1"}

        async def type_until(done: Any) -> None:
            try:
                async with asyncio.timeout(30):
                    while not done():
                        for person in people:
                            person.type_next()
                        await asyncio.sleep(0.05)  # a person's pace
            except (TimeoutError, ConnectionError) as exc:
                outs = [await person.finish() for person in people]
                raise AssertionError(f"the line-mode clients did not carry on: {outs}") from exc

        seen: list[ev.Msg] = []

        def heard(n: int) -> bool:
            seen.extend(e for e in watcher.events_nowait() if isinstance(e, ev.Msg))
            return all(
                any(m.text.startswith(f"{p.nick} ") and int(m.text.split()[1]) >= n for m in seen)
                for p in people
            )

        await type_until(lambda: heard(5))
        faulty = asyncio.create_task(fault())
        await type_until(faulty.done)
        await faulty
        await lost()
        after = max(p.typed for p in people)
        await type_until(lambda: heard(after + 5))  # back, on the other node
        results = [await person.finish() for person in people]
    seen.extend(e for e in await quiet(watcher) if isinstance(e, ev.Msg))
    for person, (status, out) in zip(people, results, strict=True):
        assert status == 0, out
        assert "lost touch" in out, out  # told to reconnect, not that the server shut down
        mine = [int(m.text.split()[1]) for m in seen if m.text.startswith(f"{person.nick} ")]
        verdict_told(person, out, mine)


async def test_a_frozen_node_sends_its_clients_to_the_others(
    make_node: NodeFactory, clients: Any, redis_url: str, tmp_path: Path
) -> None:
    """Issue 15 item 2: a node frozen (SIGSTOP, a VM pause) longer than
    node_timeout is counted as gone; when it wakes it closes its clients with
    `restart`, not the final `shutdown`, so line-mode clients behind a balancer
    carry on on another node; every line typed meanwhile arrives once, in
    order, or its writer is told."""
    a = await make_node(node_timeout=NODE_TIMEOUT)
    frozen = await start_daemon(  # (its log is not read after the start: warnings only)
        tmp_path / "state",
        "--redis",
        redis_url,
        "--node-timeout",
        str(NODE_TIMEOUT),
        "--log-level",
        "WARNING",
    )
    watcher = await clients(a, "watcher")
    await watcher.create("lobby")

    async def freeze() -> None:
        frozen.proc.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(2.5 * NODE_TIMEOUT)  # the freeze's length (a lower bound)
        finally:
            frozen.proc.send_signal(signal.SIGCONT)

    async def lost() -> None:
        async with asyncio.timeout(30):
            assert await frozen.proc.wait() == 3  # it lost the service

    await lines_survive(watcher, frozen.port, frozen.pin, freeze, lost, [frozen.port, a.port])


async def test_a_node_cut_off_from_redis_sends_its_clients_to_the_others(
    redis: RedisServer,
    make_node: NodeFactory,
    make_daemon: DaemonFactory,
    clients: Any,
    tmp_path: Path,
) -> None:
    """Issue 15 item 2: one node loses Redis (a network partition) for longer
    than node_timeout while the others keep it: they count it as gone; when it
    gets through again it finds that out and closes its clients with
    `restart`, who carry on on another node, nothing lost without a word."""
    a = await make_node(node_timeout=NODE_TIMEOUT)
    async with Balancer([redis.port]) as link:  # the node's only way to Redis
        url = redis.url.replace(f":{redis.port}/", f":{link.port}/")
        cut_off = await make_daemon(  # (the service's key, as make_node gives it)
            redis=url, node_timeout=NODE_TIMEOUT, state_dir=str(tmp_path / "state")
        )
        await all_see_each_other([a, cut_off])
        watcher = await clients(a, "watcher")
        await watcher.create("lobby")

        async def partition() -> None:
            link.cut()
            await asyncio.sleep(2.5 * NODE_TIMEOUT)  # the partition's length (a lower bound)
            link.heal()

        async def lost() -> None:
            async with asyncio.timeout(30):
                while not cut_off.lost:
                    await asyncio.sleep(0.05)

        await lines_survive(
            watcher, cut_off.port, cut_off.pin, partition, lost, [cut_off.port, a.port]
        )
    assert not a.stopping


def shared_view(node: Daemon) -> Any:
    """What every node must agree on: rooms, their members, nicks, secret rooms."""
    return (
        {k: (r.topic, [m.nick for m in r.members], r.seq) for k, r in node.rooms.items()},
        sorted(node.nicks),
        {rid: sorted(r.members.values()) for rid, r in node.secret_rooms.items()},
    )


async def test_redis_restarted_empty_is_restored_by_the_running_nodes(
    redis: RedisServer, make_node: NodeFactory, clients: Any
) -> None:
    """Issue 15 item 4: Redis restarts empty (no persistence) under three nodes
    and talking clients.  The nodes notice at their next write and one of them
    restores the stream from its state; nobody is logged off, nothing is lost
    or doubled; a node started afterwards holds the same rooms and members and
    its users talk with everyone."""
    nodes, talk = await three_nodes(make_node, clients)
    epochs = {n.bus._epoch for n in nodes}  # type: ignore[attr-defined]
    assert len(epochs) == 1
    talk.start()
    await talk.until_sent(5)
    await asyncio.to_thread(redis.stop, save=False)
    await asyncio.to_thread(redis.start)  # empty
    async with asyncio.timeout(30):
        while len({n.bus._epoch for n in nodes} | epochs) != 2:  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
    await talk.until_sent(5)
    late = await make_node(node_timeout=NODE_TIMEOUT)
    await all_see_each_other([*nodes, late])
    newcomer = await clients(late, "newcomer")
    joined = await newcomer.join("lobby")
    assert sorted(joined.members) == sorted(["newcomer", *talk.seen])
    await talk.until_sent(5)
    await talk.stop()
    await newcomer.say("lobby", "hello after the restart")
    await caught_up(*nodes, late)
    views = [shared_view(n) for n in [*nodes, late]]
    assert all(v == views[0] for v in views[1:])
    for person in talk.people:  # the newcomer's join and message reached everyone
        async with asyncio.timeout(10):
            while not any(
                isinstance(e, ev.Msg) and e.nick == "newcomer" for e in talk.seen[person.nick]
            ):
                await asyncio.sleep(0.05)
        talk.seen[person.nick] = [
            e for e in talk.seen[person.nick] if getattr(e, "nick", "") != "newcomer"
        ]
    await talk.verdict()
    assert not any(n.stopping for n in nodes)


@pytest.fixture
def small_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """Redis whose largest value is 1 MB, the smallest proto-max-bulk-len it allows."""
    with redis_server(tmp_path, "--proto-max-bulk-len", "1mb") as server:
        yield server


async def fill_rooms(client: Client, rooms: int, each: int) -> None:
    """``rooms`` rooms with ``each`` messages of 3,000 characters: about
    ``rooms * each * 3`` KB of rings in the shared state."""
    for r in range(rooms):
        await client.create(f"big{r}")
        for n in range(each):
            await client.say(f"big{r}", f"{n:05} " + "x" * 2_994)


async def test_a_snapshot_larger_than_one_redis_value(
    small_redis: RedisServer,
    make_daemon: DaemonFactory,
    clients: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 15 item 5: a snapshot larger than Redis's largest value is stored
    in parts; a late node loads it whole and talks with the others."""
    a = await make_daemon(redis=small_redis.url, node_timeout=NODE_TIMEOUT)
    alice = await clients(a, "alice")
    await fill_rooms(alice, 3, 150)  # about 1.4 MB
    bus = a.bus
    assert isinstance(bus, RedisBus)
    await bus.write_snapshot()
    header = await bus._read_header()
    assert header is not None and header["size"] > 1024 * 1024 and header["parts"] > 2
    caplog.set_level(logging.INFO, logger="anonchat.daemon.redis")
    b = await make_daemon(redis=small_redis.url, node_timeout=NODE_TIMEOUT)
    assert f"loaded the service's state as of {header['at'].decode()}" in caplog.text
    for key, room in a.rooms.items():
        assert b.rooms[key].ring.entries() == room.ring.entries()
    carol = await clients(b, "carol")
    await carol.join("big1")
    history = [e.text[:5] for e in await quiet(carol, 0.5) if isinstance(e, ev.Msg)]
    assert history == [f"{n:05}" for n in range(150)][-len(history) :] and history
    await alice.say("big1", "after")
    assert (await next_event(carol, ev.Msg)).text == "after"


async def test_a_failing_snapshot_is_logged_and_the_writer_goes_on(
    small_redis: RedisServer,
    make_daemon: DaemonFactory,
    clients: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 15 item 5: a snapshot Redis refuses (here parts larger than its
    largest value) is logged at ERROR each time; the node's commands go on
    through their own connection and nobody counts it as gone."""
    monkeypatch.setattr(redisbus, "SNAPSHOT_PART", 4 * 1024 * 1024)
    monkeypatch.setattr(redisbus, "SNAPSHOT_INTERVAL", 0.2)
    a = await make_daemon(redis=small_redis.url, node_timeout=NODE_TIMEOUT)
    b = await make_daemon(redis=small_redis.url, node_timeout=NODE_TIMEOUT)
    alice, bob = await clients(a, "alice"), await clients(b, "bob")
    await fill_rooms(alice, 2, 200)  # 1.2 MB: one part, too large for Redis
    await bob.join("big0")
    await quiet(bob, 0.5)  # the room's history
    failures = 0
    async with asyncio.timeout(30):
        while failures < 3:  # and each time the writer (min of the nodes) goes on
            await alice.say("big0", f"still here {failures}")
            assert (await next_event(bob, ev.Msg)).text == f"still here {failures}"
            failures = sum(
                r.levelname == "ERROR" and "cannot write a snapshot" in r.getMessage()
                for r in caplog.records
            )
            await asyncio.sleep(NODE_TIMEOUT)  # a pace: the test spans several node_timeouts
    assert {a.node, b.node} <= set(a.nodes) and {a.node, b.node} <= set(b.nodes)
    assert not a.stopping and not b.stopping


async def test_a_node_with_other_settings_is_refused(
    make_node: NodeFactory, clients: Any, tmp_path: Path, redis_url: str
) -> None:
    """Issue 15 item 6: a node whose max_members_per_room differs from the
    running nodes' refuses to start, naming the setting (exit 2 for the
    program); the service goes on as before."""
    a = await make_node(node_timeout=NODE_TIMEOUT)
    told = f"max_members_per_room is 2 here but {Limits().max_members_per_room} there"
    with pytest.raises(ConfigError, match=told):
        await make_node(node_timeout=NODE_TIMEOUT, max_members_per_room=2)
    config = tmp_path / "odd.toml"
    config.write_text("[limits]\nmax_members_per_room = 2\n")
    status, out = await anonchatd_to_the_end(
        *("--port", "0", "--state-dir", str(tmp_path / "state"), "--redis", redis_url),
        *("--node-timeout", str(NODE_TIMEOUT), "--config", str(config)),
    )
    assert status == 2, out
    assert told in out
    assert "Traceback" not in out
    b = await make_node(node_timeout=NODE_TIMEOUT)  # the same settings: welcome
    await all_see_each_other([a, b])
    alice, bob = await clients(a, "alice"), await clients(b, "bob")
    await alice.create("lobby")
    await bob.join("lobby")
    assert not a.stopping and not b.stopping


async def test_of_two_nodes_with_other_settings_the_newer_stops(
    make_node: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 15 item 6: two nodes that started at once with other settings both
    passed the check at start; when their beats meet, the newer one stops
    loudly (exit 3 for the program) and the older one logs it."""
    a = await make_node(node_timeout=NODE_TIMEOUT)
    await all_see_each_other([a])
    odd = {**a.settings, "max_members_per_room": 2}
    ts = a.nodes[a.node]
    state.apply(a.shared, commands.Beat("newer", odd), ts + 100)  # newer than a: a goes on
    assert not a.stopping
    assert "node newer has other settings than this node" in caplog.text
    a.shared.alive_since["older"] = a.nodes["older"] = a.shared.alive_since[a.node] - 100
    state.apply(a.shared, commands.Beat("older", odd), ts + 200)  # older than a: a stops
    async with asyncio.timeout(10):
        while not a.stopping:
            await asyncio.sleep(0.02)
    assert a.lost
    assert "this node's settings differ from node older's" in caplog.text


async def test_a_late_node_takes_the_past_as_history(
    make_node: NodeFactory, clients: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 15 item 10: a node that starts applies the stream's past: a node
    that handed its sessions over long ago is not news in its log, and the
    beats of a node that is gone, with other settings, do not stop it."""
    a = await make_node(node_timeout=NODE_TIMEOUT)
    await all_see_each_other([a])
    await clients(a, "alice")
    await a.shutdown()  # hands alice's session over
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="anonchat.daemon")
    b = await make_node(node_timeout=NODE_TIMEOUT, max_members_per_room=2)
    await all_see_each_other([b])
    told = [r for r in caplog.records if f"node {a.node} restarts" in r.getMessage()]
    assert told and all(r.levelno == logging.DEBUG for r in told)  # applied, quietly
    assert not b.stopping and a.node not in b.nodes
    assert set(b.orphans) == {uid for uid, m in b.members.items() if m.nick == "alice"}
    # Its metrics count what happened since it started: not a's handover.
    assert (b.stats.handovers, b.stats.nodes_down, b.stats.nodes_gone) == (0, 0, 0)


class Notes:
    """A front end that keeps what the core tells the user."""

    passphrase_in_band = True
    kind = "line"

    def __init__(self, key: str) -> None:
        self.key = key
        self.notes: list[Note] = []

    def show(self, note: Note) -> None:
        self.notes.append(note)

    def current_key(self) -> str | None:
        return self.key

    async def read_passphrase(self, prompt: str) -> str | None:
        return None

    async def secret_form(self, name: str, create: bool, attempt: Attempt) -> None:
        return None

    def front_command(self, name: str, rest: str) -> None:
        return None

    def texts(self) -> list[str]:
        return [n.text for n in self.notes if isinstance(n, Info)]


async def test_a_message_in_doubt_is_confirmed_by_the_replay(
    make_node: NodeFactory, clients: Any
) -> None:
    """Issue 15 item 7: the connection breaks after a message left but before
    its `ok` came back: the user is told it may not have arrived; the node had
    applied it, so the resumed session's replay holds it, and the user is told
    it did arrive after all (no "not sent" for a delivered message)."""
    a, b = await make_node(plaintext=True), await make_node(plaintext=True)
    alice, bob = await clients(a, "alice"), await clients(b, "bob")
    await alice.create("lobby")
    await bob.join("lobby")
    await quiet(alice)
    room = alice.room("lobby")
    assert room is not None
    notes = Notes(room.key)
    commands = Commands(alice, notes)
    transport: Any = alice._writer.transport
    send = transport.write

    def send_then_cut(data: bytes) -> None:  # the network goes away behind the message
        send(data)
        transport.abort()

    transport.write = send_then_cut
    await commands.say("in doubt")
    assert notes.texts() == [
        "the connection was lost while sending; it may not have arrived: in doubt"
    ]
    assert (await next_event(bob, ev.Msg)).text == "in doubt"  # it did arrive
    again = await Client.connect("127.0.0.1", b.port, tls=False, resume=alice)
    try:
        assert again.resumed
        commands.back(again)
        for event in await quiet(again, 0.5):  # the replay, as a front end passes it on
            commands.hides(event)
        assert notes.texts()[1:] == ["it did arrive after all: in doubt"]
    finally:
        await again.close()


async def test_the_documented_acl_user_suffices(
    redis: RedisServer, make_daemon: DaemonFactory, clients: Any
) -> None:
    """The ACL user docs/operations.md gives the nodes can run a service:
    join, talk, snapshot, restore (the doc's line is the one applied)."""
    doc = (Path(__file__).parents[1] / "docs" / "operations.md").read_text()
    (acl,) = re.findall(r"`(ACL SETUSER anonchat [^`]+)`", doc)
    acl = acl.replace(">PASSWORD", ">sesame")
    admin = Redis.from_url(redis.url)
    admin.execute_command(*acl.split())  # type: ignore[no-untyped-call]  # as written
    url = redis.url.replace("redis://", "redis://anonchat:sesame@")
    a = await make_daemon(redis=url, node_timeout=NODE_TIMEOUT)
    b = await make_daemon(redis=url, node_timeout=NODE_TIMEOUT)
    alice, bob = await clients(a, "alice"), await clients(b, "bob")
    await alice.create("lobby")
    await bob.join("lobby")
    assert isinstance(a.bus, RedisBus)
    await a.bus.write_snapshot()
    await alice.say("lobby", "through the ACL")
    assert (await next_event(bob, ev.Msg)).text == "through the ACL"
    admin.flushall()  # as after an empty restart: the nodes restore the stream
    await alice.say("lobby", "restored")
    assert (await next_event(bob, ev.Msg, timeout=20)).text == "restored"
    assert not a.stopping and not b.stopping
