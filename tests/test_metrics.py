"""The metrics endpoint, scraped over a real socket: one node, then two nodes
through a real redis-server (the bus, the stream, snapshots, nodes that stop
or die), and the page always aggregate: no nick, room or address in it."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from anonchat import __version__
from anonchat.client import Client
from anonchat.daemon import Daemon, redisbus
from anonchat.daemon.redisbus import RedisBus
from anonchat.errors import RequestError

from .conftest import DaemonFactory
from .helpers import dial, free_port, quiet
from .redis_server import RedisServer, redis_server
from .test_processes import start_daemon

PASSPHRASE = "unkempt-sherry-maroon-pebble-mousy-ravage"
Samples = dict[str, float]
Clients = Callable[..., Awaitable[Client]]


async def scrape(daemon: Daemon) -> Samples:
    """GET /metrics from the daemon's endpoint; every sample by name{labels}."""
    ((host, port),) = daemon.metrics_addresses
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    page = (await reader.read()).decode()
    writer.close()
    head, _, body = page.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 OK") and "version=0.0.4" in head
    samples: Samples = {}
    for family in text_string_to_metric_families(body):  # (also checks the format)
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    samples["_page"] = 0
    scrape.last_page = body  # type: ignore[attr-defined]
    return samples


async def until(daemon: Daemon, check: Callable[[Samples], bool], timeout: float = 20) -> Samples:
    """Scrape until ``check`` holds (what a node counts may come a moment later)."""
    async with asyncio.timeout(timeout):
        while not check(samples := await scrape(daemon)):
            await asyncio.sleep(0.05)
    return samples


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    opened: list[Client] = []

    async def make(node: Daemon, nick: str | None = None) -> Client:
        client = await dial(node, nick)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.close()


async def test_metrics_are_aggregate_only(make_daemon: DaemonFactory, clients: Clients) -> None:
    node = await make_daemon(metrics="127.0.0.1:0", max_per_address=3)
    alice, bob = await clients(node, "alice"), await clients(node, "bob")
    await alice.create("parlourzz")
    await bob.join("parlourzz")
    for n in range(3):
        await alice.say("parlourzz", f"counted, not kept {n}")
    await alice.create_secret("hideoutxq", PASSPHRASE)
    await bob.join_secret("hideoutxq", PASSPHRASE)
    await alice.say_secret("hideoutxq", "sealed")
    await quiet(bob)
    with pytest.raises(RequestError):
        await alice.join("nowhere")
    await clients(node)
    with pytest.raises(Exception, match="too many connections"):
        await clients(node)  # the fourth from 127.0.0.1
    # A plaintext client at a TLS daemon: its handshake fails, unanswered.
    _, plain = await asyncio.open_connection("127.0.0.1", node.port)
    plain.write(b"GET / HTTP/1.0\r\n\r\n")
    await until(node, lambda m: m["anonchat_handshakes_failed_total"] == 1)
    plain.close()
    m = await scrape(node)
    page: str = scrape.last_page  # type: ignore[attr-defined]
    assert m["anonchat_connections"] == 3 and m["anonchat_sessions"] == 3
    assert m['anonchat_messages_total{room="public"}'] == 3
    # The secret room's hellos and heres are announcements, not messages.
    assert m['anonchat_messages_total{room="secret"}'] == 1
    assert m["anonchat_secret_announcements_total"] >= 2
    assert m['anonchat_errors_total{code="no_such_room"}'] == 1
    assert m["anonchat_connections_accepted_total"] == 3
    assert m['anonchat_connections_refused_total{reason="too_many_connections"}'] == 1
    assert m["anonchat_resumes_total"] == 0
    # Every message was written out: each is one observation of its delivery.
    assert m["anonchat_delivery_seconds_count"] == 4
    assert m['anonchat_delivery_seconds_bucket{le="+Inf"}'] == 4
    assert m["anonchat_delivery_seconds_sum"] >= 0
    assert m["anonchat_service_sessions"] == 3 and m["anonchat_service_nodes"] == 1
    assert m["anonchat_service_rooms"] == 1 and m["anonchat_service_secret_rooms"] == 1
    (build,) = [k for k in m if k.startswith("anonchat_build_info{")]
    assert f'version="{__version__}"' in build and 'python="3.' in build
    assert m["process_resident_memory_bytes"] > 1 << 20
    assert m["process_open_fds"] >= 4 and m["process_max_fds"] >= m["process_open_fds"]
    assert m["process_cpu_seconds_total"] > 0 and m["process_start_time_seconds"] > 1.7e9
    # One node: no bus, and nothing per user on the page.
    assert not [k for k in m if k.startswith(("anonchat_bus", "anonchat_snapshot"))]
    for private in ("alice", "bob", "parlourzz", "hideoutxq", "counted", "sealed", "127.0.0.1"):
        assert private not in page


async def test_a_resume_is_counted(make_daemon: DaemonFactory) -> None:
    node = await make_daemon(metrics="127.0.0.1:0")
    alice = await dial(node, "alice")
    await alice.create("lobby")
    alice._writer.transport.abort()  # the connection is lost; the session waits
    again = await Client.connect("127.0.0.1", node.port, pin=node.pin, resume=alice)
    try:
        assert again.resumed
        await until(node, lambda m: m["anonchat_resumes_total"] == 1)
    finally:
        await again.close()


# -- several nodes through Redis ---------------------------------------------------


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture
def make_node(redis: RedisServer, make_daemon: DaemonFactory, tmp_path: Path) -> Any:
    async def make(**options: Any) -> Daemon:
        return await make_daemon(
            redis=redis.url,
            node_timeout=options.pop("node_timeout", 2.0),
            state_dir=str(tmp_path / "state"),
            metrics="127.0.0.1:0",
            **options,
        )

    return make


async def test_two_nodes_sum_to_the_service(
    make_node: Any, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redisbus, "SNAPSHOT_INTERVAL", 0.2)
    a, b = await make_node(), await make_node()
    alice, bob = await clients(a, "alice"), await clients(b, "bob")
    await alice.create("lobby")
    await bob.join("lobby")
    for n in range(3):
        await alice.say("lobby", f"a{n}")
    for n in range(2):
        await bob.say("lobby", f"b{n}")
    talk = await alice.open_dm("bob")
    await alice.send_dm(talk.peer, "direct, counted once")
    await quiet(alice)
    await quiet(bob)
    ma = await until(a, lambda m: m["anonchat_delivery_seconds_count"] == 5)
    mb = await until(b, lambda m: m["anonchat_delivery_seconds_count"] == 5)
    # Per node: what its own clients sent; sum() is the service's count.
    public = 'anonchat_messages_total{room="public"}'
    direct = 'anonchat_messages_total{room="direct"}'
    assert (ma[public], mb[public]) == (3, 2)
    assert (ma[direct], mb[direct]) == (1, 0)
    assert ma["anonchat_connections"] + mb["anonchat_connections"] == 2
    assert ma["anonchat_sessions"] == mb["anonchat_sessions"] == 1
    # The service's figures: the same on each node (max(), not sum()).
    for name in ("anonchat_service_sessions", "anonchat_service_rooms", "anonchat_service_nodes"):
        assert ma[name] == mb[name], name
    assert ma["anonchat_service_sessions"] == 2 and ma["anonchat_service_nodes"] == 2
    # The bus: nothing waiting, appends going through, caught up with the stream.
    for m in (ma, mb):
        assert m["anonchat_bus_backlog"] == 0
        assert m["anonchat_bus_write_errors_total"] == m["anonchat_bus_read_errors_total"] == 0
        assert 0 <= m["anonchat_bus_since_write_seconds"] < 60
        assert m["anonchat_bus_lag_seconds"] >= 0
        assert m["anonchat_service_stream_entries"] > 0
    # A node that starts later replays those messages: they are not timed.
    late = await make_node()
    await until(late, lambda m: m["anonchat_service_sessions"] == 2)
    m = await scrape(late)
    assert m["anonchat_delivery_seconds_count"] == 0 and m[public] == 0
    # Snapshots: written by the node with the smallest id.
    writer = min((a, b, late), key=lambda node: node.node)
    m = await until(writer, lambda m: m["anonchat_snapshot_writes_total"] >= 1)
    assert m["anonchat_snapshot_size_bytes"] > 0 and m["anonchat_snapshot_age_seconds"] >= 0
    assert m["anonchat_snapshot_failures_total"] == 0


async def test_nodes_that_stop_or_die_are_counted(
    make_node: Any, clients: Clients, tmp_path: Path
) -> None:
    a, b = await make_node(node_timeout=1.0), await make_node(node_timeout=1.0)
    await clients(b, "bob")
    await b.shutdown()  # a runs on: b hands its session over
    await until(a, lambda m: m["anonchat_service_handovers_total"] == 1)
    assert isinstance(a.bus, RedisBus)
    doomed = await start_daemon(
        tmp_path / "state", "--redis", a.config.redis or "", "--node-timeout", "1"
    )
    await until(a, lambda m: m["anonchat_service_nodes"] == 2)
    doomed.proc.send_signal(signal.SIGKILL)
    await doomed.proc.wait()
    m = await until(a, lambda m: m["anonchat_service_nodes_gone_total"] == 1)
    assert m["anonchat_service_nodes"] == 1


async def test_a_lost_redis_shows_in_the_bus_metrics(
    make_node: Any, redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an operator alerts on when Redis goes away: errors, a growing time
    since the last append, failed snapshots -- and no stream figures."""
    monkeypatch.setattr(redisbus, "SNAPSHOT_INTERVAL", 0.2)
    node = await make_node()
    await until(node, lambda m: m["anonchat_snapshot_writes_total"] >= 1)
    redis.proc.terminate()
    redis.proc.wait(10)
    m = await until(
        node,
        lambda m: (
            m["anonchat_bus_read_errors_total"] >= 1
            and m["anonchat_bus_write_errors_total"] >= 1
            and m["anonchat_snapshot_failures_total"] >= 1
            and m["anonchat_bus_since_write_seconds"] >= 1
        ),
    )
    assert "anonchat_service_stream_entries" not in m and "anonchat_bus_lag_seconds" not in m


async def test_a_free_port_is_found_for_metrics_and_reported(make_daemon: DaemonFactory) -> None:
    port = free_port()
    node = await make_daemon(metrics=f"127.0.0.1:{port}")
    assert node.metrics_addresses == [("127.0.0.1", port)]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /other HTTP/1.1\r\n\r\n")
    assert (await reader.read()).startswith(b"HTTP/1.1 404 Not Found")
    writer.close()
