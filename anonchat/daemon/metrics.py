"""Monitoring without surveillance: aggregate counts, never anything per user.

``anonchatd --metrics 127.0.0.1:9108`` serves them in the Prometheus text
format at ``/metrics`` (docs/operations.md, "Monitoring", lists them).  The
endpoint is bound to loopback unless the operator names another address; it
answers nothing else.

Two kinds of figures, named so that ``sum()`` over the nodes is right:

* ``anonchat_*``: this node's own -- its connections, the messages its clients
  sent, its errors, its Redis reads and writes.  Sum them over the nodes.
* ``anonchat_service_*``: the shared state every node holds alike (sessions,
  rooms, nodes, the stream) -- every node reports the same value, so take
  ``max()`` of them, never ``sum()``.

The daemon bumps plain integers as it works (:class:`Stats`); the
Prometheus client library (the ``metrics`` extra, imported only when
``--metrics`` is given) writes the page from them at each scrape.  Process
figures are read from ``/proc/self`` and ``os.times`` only, so they work
under systemd's ``ProcSubset=pid``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import platform
import resource
import ssl
import time
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import ConfigError
from .rooms import now_ms

if TYPE_CHECKING:
    from .server import Daemon

#: The most a metrics request may send before the daemon answers or gives up.
REQUEST_MAX = 4096
REQUEST_TIMEOUT = 5.0
#: How long a scrape waits for Redis to say how long the stream is.
PROBE_TIMEOUT = 1.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Upper bounds (seconds) of the delivery-latency histogram's buckets.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BUCKETS_MS = [b * 1000 for b in LATENCY_BUCKETS]


class Stats:
    """Counters the daemon bumps as it works (cheap: ints and Counters)."""

    __slots__ = (
        "accepted",
        "announcements",
        "direct",
        "errors",
        "handovers",
        "latency",
        "latency_sum",
        "live",
        "messages",
        "node",
        "nodes_down",
        "nodes_gone",
        "refused",
        "resumes",
        "sealed",
        "waiting",
    )

    def __init__(self, node: str = "") -> None:
        self.node = node  # this node: what its own clients did is counted here
        self.messages = 0  # public messages this node's clients sent (numbered, relayed)
        self.sealed = 0  # secret-room messages (msg, me) this node's clients sent
        self.announcements = 0  # secret-room announcements (hello, here) they sent
        self.direct = 0  # direct messages they sent
        self.errors: Counter[str] = Counter()  # error frames sent to clients, by code
        self.accepted = 0  # connections served (past the TLS handshake and the limits)
        self.refused: Counter[str] = Counter()  # connections turned away, by reason
        self.resumes = 0  # sessions resumed on this node
        # Seen in the stream, the same on every node (anonchat_service_*):
        self.handovers = 0  # nodes that stopped and handed their sessions over
        self.nodes_gone = 0  # nodes counted as gone (silent past node_timeout)
        self.nodes_down = 0  # nodes that stopped cleanly, with nobody to hand over to
        # Delivery latency: log times of the messages applied this pass, and the
        # histogram of (written - log time), in ms, per bucket (not cumulative).
        self.waiting: list[int] = []
        self.live = False  # (set once the node has caught up with the service)
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0  # ms

    def error(self, code: str) -> None:
        self.errors[code] += 1

    def message(self, node: str, ts: int, sealed: bool = False) -> None:
        """A message (sent through ``node``) was numbered at log time ``ts``."""
        if node == self.node:
            if sealed:
                self.sealed += 1
            else:
                self.messages += 1
        if self.live:
            self.waiting.append(ts)

    def messages_at(self, ts: int, count: int) -> None:
        """``count`` messages of this node's clients numbered at log time ``ts``
        (:meth:`message` for each, at once)."""
        self.messages += count
        if self.live:
            self.waiting.extend([ts] * count)

    def delivered(self) -> None:
        """This pass's messages were written to this node's clients."""
        if not self.waiting:
            return
        now = now_ms()
        for ts in self.waiting:
            ms = max(0, now - ts)
            self.latency[bisect.bisect_left(_BUCKETS_MS, ms)] += 1
            self.latency_sum += ms
        self.waiting.clear()


def check_available() -> None:
    """Refuse ``--metrics`` at start when the Prometheus client is missing."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--metrics needs the Prometheus client: pip install 'anonchat[metrics]'"
        ) from None


def render(daemon: Daemon, stream: tuple[int, bytes] | None = None) -> bytes:
    """The metrics page; ``stream`` is the Redis stream's length and last id, if known."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(daemon, stream))
    return generate_latest(registry)


class _Collector:
    def __init__(self, daemon: Daemon, stream: tuple[int, bytes] | None) -> None:
        self.daemon, self.stream = daemon, stream

    def collect(self) -> Iterator[Any]:
        yield from _node_metrics(self.daemon)
        yield from _bus_metrics(self.daemon, self.stream)
        yield from _service_metrics(self.daemon, self.stream)
        yield from _process_metrics()


def _gauge(name: str, text: str, value: float, unit: str = "") -> Any:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(name, text, value=value, unit=unit)


def _counter(name: str, text: str, value: float | None = None, labels: tuple[str, ...] = ()) -> Any:
    from prometheus_client.core import CounterMetricFamily

    return CounterMetricFamily(name, text, value=value, labels=labels or None)


def _node_metrics(daemon: Daemon) -> Iterator[Any]:
    from prometheus_client.core import HistogramMetricFamily, InfoMetricFamily

    stats = daemon.stats
    yield InfoMetricFamily(
        "anonchat_build",
        "The daemon's version, Python, event loop and TLS library.",
        value={
            "version": __version__,
            "python": platform.python_version(),
            "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
            "tls": ssl.OPENSSL_VERSION,
        },
    )
    yield _gauge("anonchat_connections", "Connections to this node.", len(daemon.sessions))
    mine = sum(1 for m in daemon.members.values() if m.node == daemon.node)
    yield _gauge(
        "anonchat_sessions",
        "Sessions of this node, including dropped ones awaiting resume.",
        mine,
    )
    messages = _counter(
        "anonchat_messages",
        "Messages this node's clients sent, numbered and relayed: in public rooms, "
        "secret rooms, or direct.",
        labels=("room",),
    )
    messages.add_metric(["public"], stats.messages)
    messages.add_metric(["secret"], stats.sealed)
    messages.add_metric(["direct"], stats.direct)
    yield messages
    yield _counter(
        "anonchat_secret_announcements",
        "Secret-room announcements (hello, here) this node's clients sent.",
        stats.announcements,
    )
    errors = _counter(
        "anonchat_errors", "Error frames sent to this node's clients, by code.", labels=("code",)
    )
    for code, n in sorted(stats.errors.items()):
        errors.add_metric([code], n)
    yield errors
    yield _counter(
        "anonchat_connections_accepted",
        "Connections this node served (past the TLS handshake and every limit).",
        stats.accepted,
    )
    refused = _counter(
        "anonchat_connections_refused",
        "Connections this node turned away, by reason.",
        labels=("reason",),
    )
    listener = daemon.listener
    refusals = stats.refused + (listener.refused_by if listener else Counter())
    for reason, n in sorted(refusals.items()):
        refused.add_metric([reason], n)
    yield refused
    yield _counter(
        "anonchat_handshakes_failed",
        "TLS handshakes that failed or timed out (closed without a word).",
        listener.failed if listener else 0,
    )
    yield _counter("anonchat_resumes", "Sessions resumed on this node.", stats.resumes)
    cumulative, total = [], 0
    for bound, n in zip([*map(str, LATENCY_BUCKETS), "+Inf"], stats.latency, strict=True):
        total += n
        cumulative.append((bound, total))
    yield HistogramMetricFamily(
        "anonchat_delivery_seconds",
        "From a message's log time (its receipt; with Redis, its append) until this "
        "node wrote it to its clients.",
        buckets=cumulative,
        sum_value=stats.latency_sum / 1000,
    )


def _bus_metrics(daemon: Daemon, stream: tuple[int, bytes] | None) -> Iterator[Any]:
    bus = daemon.bus.stats
    if bus is None:
        return
    now = time.monotonic()
    yield _gauge("anonchat_bus_backlog", "Commands waiting to be appended to Redis.", bus.backlog())
    yield _counter("anonchat_bus_write_errors", "Appends (XADD) that failed.", bus.write_errors)
    yield _counter("anonchat_bus_read_errors", "Reads (XREAD) that failed.", bus.read_errors)
    if bus.last_write:
        yield _gauge(
            "anonchat_bus_since_write",
            "Seconds since this node's last successful append (beats come every node_timeout / 5).",
            now - bus.last_write,
            unit="seconds",
        )
    if stream is not None:
        last = _ms(stream[1])
        yield _gauge(
            "anonchat_bus_lag",
            "Seconds of log time between the stream's last entry and the last this node applied.",
            max(0, last - _ms(bus.applied())) / 1000,
            unit="seconds",
        )
    yield _counter("anonchat_snapshot_writes", "Snapshots this node wrote.", bus.snapshots)
    yield _counter(
        "anonchat_snapshot_failures", "Snapshots this node failed to write.", bus.snapshot_failures
    )
    if bus.snapshot_at:
        yield _gauge(
            "anonchat_snapshot_age",
            "Seconds since this node last wrote a snapshot.",
            now - bus.snapshot_at,
            unit="seconds",
        )
        yield _gauge(
            "anonchat_snapshot_size",
            "Bytes of the last snapshot this node wrote.",
            bus.snapshot_bytes,
            unit="bytes",
        )


def _service_metrics(daemon: Daemon, stream: tuple[int, bytes] | None) -> Iterator[Any]:
    stats = daemon.stats
    every = " The same on every node: take max(), not sum()."
    yield _gauge(
        "anonchat_service_sessions",
        "Sessions in the service, all nodes, including those awaiting resume." + every,
        len(daemon.members),
    )
    yield _gauge("anonchat_service_rooms", "Public rooms." + every, len(daemon.rooms))
    yield _gauge("anonchat_service_secret_rooms", "Secret rooms." + every, len(daemon.secret_rooms))
    yield _gauge(
        "anonchat_service_nodes",
        "Nodes alive (1 without Redis)." + every,
        max(1, len(daemon.nodes)),
    )
    if daemon.bus.stats is None:
        return
    if stream is not None:
        yield _gauge(
            "anonchat_service_stream_entries", "Entries in the Redis stream." + every, stream[0]
        )
    seen = " Seen in the stream since this node started." + every
    yield _counter("anonchat_service_handovers", "Nodes that handed over." + seen, stats.handovers)
    yield _counter(
        "anonchat_service_nodes_gone",
        "Nodes counted as gone (silent past node_timeout)." + seen,
        stats.nodes_gone,
    )
    yield _counter(
        "anonchat_service_nodes_down", "Nodes that stopped cleanly." + seen, stats.nodes_down
    )


def _process_metrics() -> Iterator[Any]:
    """The usual ``process_*`` figures, from /proc/self and os.times only."""
    times = os.times()
    yield _counter(
        "process_cpu_seconds", "User and system CPU time spent.", times.user + times.system
    )
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/statm", "rb") as f:
            pages = f.read().split()
        page = os.sysconf("SC_PAGE_SIZE")
        yield _gauge("process_virtual_memory_bytes", "Virtual memory size.", int(pages[0]) * page)
        yield _gauge("process_resident_memory_bytes", "Resident memory size.", int(pages[1]) * page)
    with contextlib.suppress(OSError):
        yield _gauge("process_open_fds", "Open file descriptors.", len(os.listdir("/proc/self/fd")))
    yield _gauge(
        "process_max_fds",
        "The limit of open file descriptors (LimitNOFILE).",
        resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    )
    yield _gauge(
        "process_start_time_seconds", "Start time of the process since the epoch.", _STARTED
    )


def _started() -> float:
    """When this process started (epoch seconds): its start in clock ticks after
    boot, and the boot time from CLOCK_BOOTTIME (no /proc/stat needed)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        ticks = int(fields[19])  # field 22, starttime, counted after the name
        booted = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        return booted + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time()  # (when this module was imported: close enough)


_STARTED = _started()


def _ms(entry_id: bytes) -> int:
    return int(entry_id.partition(b"-")[0] or 0)


async def serve(daemon: Daemon, host: str, port: int) -> asyncio.Server:
    """Listen for ``GET /metrics`` on ``host:port``."""
    check_available()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            writer.close()
            return
        request = head.split(b"\r\n", 1)[0].split()
        if len(request) >= 2 and request[0] == b"GET" and request[1] in (b"/metrics", b"/"):
            stream = None
            probe = getattr(daemon.bus, "probe", None)
            if probe is not None:
                with contextlib.suppress(TimeoutError):
                    stream = await asyncio.wait_for(probe(), PROBE_TIMEOUT)
            status, body = "200 OK", render(daemon, stream)
        else:
            status, body = "404 Not Found", b"only /metrics is here\n"
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {CONTENT_TYPE}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, host, port, limit=REQUEST_MAX)
