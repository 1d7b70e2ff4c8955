"""Monitoring without surveillance: aggregate counts, never anything per user.

``anonchatd --metrics 127.0.0.1:9108`` serves them in the Prometheus text
format at ``/metrics``: connections, sessions, rooms, nodes, messages
relayed and error frames sent by code.  The endpoint is bound to loopback
unless the operator names another address; it answers nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server import Daemon

#: The most a metrics request may send before the daemon answers or gives up.
REQUEST_MAX = 4096
REQUEST_TIMEOUT = 5.0


class Stats:
    """Counters the daemon bumps as it works (cheap: an int and a Counter)."""

    __slots__ = ("errors", "messages")

    def __init__(self) -> None:
        self.messages = 0  # messages (public and sealed) numbered and relayed
        self.errors: Counter[str] = Counter()  # error frames sent to clients, by code

    def error(self, code: str) -> None:
        self.errors[code] += 1


def render(daemon: Daemon) -> str:
    """The metrics page: each figure with its HELP and TYPE lines."""
    stats = daemon.stats
    lines: list[str] = []

    def metric(name: str, kind: str, text: str, values: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP anonchat_{name} {text}")
        lines.append(f"# TYPE anonchat_{name} {kind}")
        lines.extend(f"anonchat_{name}{labels} {value:g}" for labels, value in values)

    metric("connections", "gauge", "Connections to this node.", [("", len(daemon.sessions))])
    metric("sessions", "gauge", "Sessions in the service, all nodes.", [("", len(daemon.members))])
    metric("rooms", "gauge", "Public rooms.", [("", len(daemon.rooms))])
    metric("secret_rooms", "gauge", "Secret rooms.", [("", len(daemon.secret_rooms))])
    metric("nodes", "gauge", "Nodes alive (1 without Redis).", [("", max(1, len(daemon.nodes)))])
    metric(
        "messages_total",
        "counter",
        "Messages numbered and relayed in the service (each node counts them all).",
        [("", stats.messages)],
    )
    metric(
        "errors_total",
        "counter",
        "Error frames sent to this node's clients, by code.",
        [(f'{{code="{code}"}}', n) for code, n in sorted(stats.errors.items())],
    )
    return "\n".join(lines) + "\n"


async def serve(daemon: Daemon, host: str, port: int) -> asyncio.Server:
    """Listen for ``GET /metrics`` on ``host:port``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            writer.close()
            return
        request = head.split(b"\r\n", 1)[0].split()
        if len(request) >= 2 and request[0] == b"GET" and request[1] in (b"/metrics", b"/"):
            status, body = "200 OK", render(daemon).encode()
        else:
            status, body = "404 Not Found", b"only /metrics is here\n"
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, host, port, limit=REQUEST_MAX)
