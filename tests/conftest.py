"""Shared fixtures: a real daemon on 127.0.0.1, port 0, and clients of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from anonchat.client import Client
from anonchat.daemon import Config, Daemon, Limits

from .helpers import dial, free_port

#: CI is a loaded two-core machine: no property test may depend on its speed.
#: Loaded here, before any test module is imported, so that every ``@settings``
#: in the tests inherits it.
settings.register_profile("anonchat", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("anonchat")

DaemonFactory = Callable[..., Awaitable[Daemon]]

#: Every test client comes from 127.0.0.1 and most send as fast as they can:
#: raise the per-address and rate limits, unless a test passes its own.
#: tests/test_limits.py tests each at its default.
TEST_LIMITS: dict[str, Any] = {
    "max_per_address": 10_000,
    "msg_burst": 100_000,
    "msg_rate": 100_000.0,
    "room_join_burst": 10_000,
    "bytes_burst": 1 << 30,
    "bytes_rate": 1 << 30,
    # tests/test_abuse.py tests these (issue 14) at small values of its own.
    "max_handshakes_per_address": 10_000,
    "max_resumable_per_address": 10_000,
    "nick_burst": 10_000,
    "query_burst": 10_000,
    "connect_burst": 100_000,
}
ClientFactory = Callable[..., Awaitable[Client]]
#: Options of make_daemon that are daemon settings, not limits.
_SETTINGS = frozenset({"state_dir", "redis", "node_timeout", "metrics"})


@pytest.fixture
async def make_daemon(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DaemonFactory]:
    """Start TLS daemons with chosen limits (and settings such as ``redis`` or
    ``state_dir``); all are shut down after the test."""
    started: list[Daemon] = []

    async def make(plaintext: bool = False, **options: Any) -> Daemon:
        settings = {k: options.pop(k) for k in list(options) if k in _SETTINGS}
        settings.setdefault("state_dir", str(tmp_path_factory.mktemp("state")))
        config = Config(
            host="127.0.0.1",
            port=0,
            limits=Limits(**{**TEST_LIMITS, **options}),
            plaintext=plaintext,
            **settings,
        )
        daemon = Daemon(config)
        await daemon.start()
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        await daemon.shutdown()


@pytest.fixture
async def daemon(make_daemon: DaemonFactory) -> Daemon:
    return await make_daemon()


@pytest.fixture
async def connect(daemon: Daemon) -> AsyncIterator[ClientFactory]:
    """Connect clients to the default daemon; all are closed after the test."""
    clients: list[Client] = []

    async def make(nick: str | None = None, target: Daemon | None = None) -> Client:
        client = await dial(target or daemon, nick)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def socks_proxy() -> AsyncIterator[int]:
    """A real SOCKS5 proxy (microsocks, installed by scripts/test.sh) on loopback;
    yields its port."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        "microsocks",
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with asyncio.timeout(10):
        while True:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
    yield port
    proc.terminate()
    await proc.wait()
