"""Several daemons as one service through a real Redis server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from anonchat import events as ev
from anonchat.client import Client
from anonchat.daemon import Config, Daemon, Limits

from .conftest import TEST_LIMITS
from .helpers import dial, next_event
from .redis_server import redis_server

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
