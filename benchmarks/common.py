"""What the runner and its load-generator worker processes share.

A workload point runs ``workers`` processes (each its own uvloop event loop).
They report through :class:`Shared`: cumulative counters in shared memory
(each worker writes only its own slot), events for the phases, and a queue
for "ready" / "done" / "error" messages.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from multiprocessing.context import SpawnContext
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from multiprocessing.synchronize import Event
from typing import Any

from .procstat import raise_nofile

#: Send times of secret-room messages, per sender, indexed by counter % RING.
RING = 1 << 16

#: Text of every message: 20 digits of CLOCK_MONOTONIC ns at sending, then padding.
TEXT_SIZE = 100


def stamp_text(size: int = TEXT_SIZE) -> str:
    """A message text that carries its send time (CLOCK_MONOTONIC is system-wide)."""
    head = f"{time.monotonic_ns():020d} "
    return head + "x" * max(0, size - len(head))


def sent_at(text: str | bytes) -> int:
    """The send time a :func:`stamp_text` text carries."""
    return int(text[:20])


@dataclass
class Spec:
    """One worker's part of a workload point."""

    worker: int
    host: str
    port: int
    mode: str  # fanout | fanout-ok | latency | capacity
    tls: bool = False
    pin: str = ""
    room: str = "bench"
    secret: bool = False
    passphrase: str = "correct horse battery staple benchmark"
    receivers: int = 0  # lean receivers in this worker (fanout, latency)
    senders: list[int] = field(default_factory=list)  # global sender numbers here
    all_senders: int = 0
    creator: bool = False  # this worker creates the room (its first sender)
    window: int = 4  # messages per sender in flight (fanout, fanout-ok)
    rate: float = 0.0  # messages per second per sender (latency)
    rooms: list[tuple[str, int]] = field(default_factory=list)  # capacity: room, members
    concurrency: int = 100  # connections set up at once
    count_only: bool = False  # receivers count message bytes instead of decoding (see load)
    raw: bool = False  # the raw relay: no hello, no join, frames relayed as they are


def nick_token(n: int) -> bytes:
    """The bytes every public message of sender ``n`` (nick ``s{n}``) carries:
    the msgpack map entry ``"nick": "s{n}"`` (fixstr key, fixstr value)."""
    nick = f"s{n}".encode()
    return b"\xa4nick" + bytes([0xA0 | len(nick)]) + nick


def peer_paced(mode: str) -> bool:
    """Whether a sender's window is freed by another member receiving its messages
    (``fanout``, the primary workload) rather than by the server's ``ok`` (``fanout-ok``)."""
    return mode == "fanout"


@dataclass
class Shared:
    counts: SynchronizedArray[int]  # room messages received, per worker
    sent: SynchronizedArray[int]  # room messages sent, per worker
    lost: SynchronizedArray[int]  # connections closed by the server, per worker
    measuring: Synchronized[int]  # 1 while latency samples are kept
    ring: SynchronizedArray[int]
    created: Event
    half: Event  # capacity: the runner read the memory with half the connections up
    go: Event
    stop: Event
    status: Queue[tuple[Any, ...]]

    @classmethod
    def make(cls, ctx: SpawnContext, workers: int, senders: int) -> Shared:
        return cls(
            counts=ctx.RawArray("q", workers),
            sent=ctx.RawArray("q", workers),
            lost=ctx.RawArray("q", workers),
            measuring=ctx.RawValue("b", 0),
            ring=ctx.RawArray("q", max(1, senders) * RING),
            created=ctx.Event(),
            half=ctx.Event(),
            go=ctx.Event(),
            stop=ctx.Event(),
            status=ctx.Queue(),
        )


class Stats:
    """One worker's counters: deliveries and lost connections (shared with the
    runner), and its latency samples."""

    def __init__(self, spec: Spec, sh: Shared) -> None:
        self.w = spec.worker
        self.sh = sh
        self.latencies = array("q")
        self.lost = 0

    def add(self, n: int) -> None:
        self.sh.counts[self.w] += n

    def lose(self) -> None:
        self.lost += 1
        self.sh.lost[self.w] += 1


async def wait_event(event: Event, poll: float = 0.01) -> None:
    """Wait for a multiprocessing event without blocking the event loop."""
    while not event.is_set():  # noqa: ASYNC110 - a process-shared event, not asyncio's
        await asyncio.sleep(poll)


def run_worker(
    main: Callable[[Spec, Shared], Coroutine[Any, Any, dict[str, Any]]], spec: Spec, sh: Shared
) -> None:
    """A worker process's body: uvloop, run ``main``, report its result or its error."""
    raise_nofile(65_536)
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            result = runner.run(main(spec, sh))
        sh.status.put(("done", spec.worker, result))
    except BaseException as exc:
        sh.status.put(("error", spec.worker, f"{type(exc).__name__}: {exc}"))


async def gather_limited(
    factories: list[Callable[[], Coroutine[Any, Any, Any]]], limit: int
) -> list[Any]:
    """Run coroutine factories with at most ``limit`` running at once, in order."""
    sem = asyncio.Semaphore(limit)

    async def one(f: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        async with sem:
            return await f()

    return await asyncio.gather(*(one(f) for f in factories))


class TokenCounter:
    """Counts the occurrences of one byte string across reads with ``bytes.count``
    (one that straddles two reads is counted once: the last ``len(token) - 1``
    bytes of a read are kept, too few to hold the token whole)."""

    __slots__ = ("keep", "tail", "token")

    def __init__(self, token: bytes) -> None:
        self.token = token
        self.keep = len(token) - 1
        self.tail = b""

    def count(self, data: bytes) -> int:
        chunk = self.tail + data
        self.tail = chunk[-self.keep :]
        return chunk.count(self.token)


#: (the bytes one sender's messages carry, what to call with how many arrived)
Watch = list[tuple[bytes, Callable[[int], None]]]


class Watcher:
    """The watcher's part in peer pacing: counts each watched sender's messages
    in what arrives (by the bytes that name it) and frees as many places in
    that sender's window."""

    __slots__ = ("counters",)

    def __init__(self, watch: Watch) -> None:
        self.counters = [(TokenCounter(token), credit) for token, credit in watch]

    def see(self, data: bytes) -> None:
        for counter, credit in self.counters:
            k = counter.count(data)
            if k:
                credit(k)


async def on_schedule(interval: float, send: Callable[[], None]) -> None:
    """Call ``send`` every ``interval`` seconds on a fixed schedule (one that
    comes late does not push the later ones back), until cancelled."""
    loop = asyncio.get_running_loop()
    due = loop.time()
    while True:
        due += interval
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        send()


async def in_two_halves(
    factories: Sequence[Callable[[], Coroutine[Any, Any, Any]]], limit: int, spec: Spec, sh: Shared
) -> None:
    """Capacity: set up the first half of the connections, say so ("half", worker,
    count), wait until the runner has read the server's memory, set up the rest."""
    half = len(factories) // 2
    await gather_limited(list(factories[:half]), limit)
    sh.status.put(("half", spec.worker, half))
    await wait_event(sh.half)
    await gather_limited(list(factories[half:]), limit)
