"""The IRC load generator (for ngircd): the same process layout as :mod:`benchmarks.load`.

Minimal IRC over asyncio streams: NICK/USER, JOIN, PRIVMSG, PING/PONG.
Senders are IRC operators with user mode ``+F`` (no flood penalty).

Fan-out (``fanout``, the primary workload): a sender keeps ``window``
messages in flight, and a message stops being in flight when another member
has received it -- one receiver of the worker (its *watcher*) counts each
sender's lines by their prefix (``:s3!``) and frees as many places, exactly
as :mod:`benchmarks.load` does for anonchatd.  ``fanout-ok`` (the secondary
row): IRC has no acknowledgement of a PRIVMSG, so a sender sends batches of
``BATCH`` messages followed by a ``PING``; the server answers in order, so a
``PONG`` says the batch was processed (fanned out); at most ``window / BATCH``
batches are unanswered (one extra, cheap, command per batch for ngircd).

ngircd does not set ``TCP_NODELAY`` on its sockets.  Nagle's algorithm then
holds a small write back until the previous one is acknowledged, and the
generator's kernel delays that ACK (up to 40 ms on Linux): a quiet room's
messages would wait for the delayed-ACK timer, which measures the missing
socket option, not the daemon.  So every IRC socket of the generator is set
to ``TCP_QUICKACK`` after *every* read (:func:`quickack`; Linux clears the
option again on its own, so it is re-armed each time): the generator
acknowledges at once, as an ``anonchatd`` client's socket would never need
to.  The cost (one ``setsockopt`` per read) is the generator's, not ngircd's.

Receivers count ``PRIVMSG`` lines with ``bytes.count`` (no per-line Python
work) and parse lines only in the latency workload.  A delivery is a message
received by a member other than its sender (IRC does not echo a sender's
own messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from .common import (
    Shared,
    Spec,
    Stats,
    TokenCounter,
    Watch,
    Watcher,
    gather_limited,
    in_two_halves,
    on_schedule,
    peer_paced,
    run_worker,
    sent_at,
    stamp_text,
    wait_event,
)
from .ngircd import OPER_NAME, OPER_PASSWORD

READ_SIZE = 256 * 1024
BATCH = 4
TOKEN = b" PRIVMSG "


def quickack(sock: Any) -> None:
    """Acknowledge what arrives at once (see the module docstring); call after every read."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


class IrcConn:
    def __init__(self, spec: Spec, nick: str) -> None:
        self.spec = spec
        self.nick = nick
        self.buf = b""
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter
        self.sock: Any = None

    async def read(self) -> bytes:
        """One read, the socket re-armed for quick ACKs after it."""
        data = await self.reader.read(READ_SIZE)
        quickack(self.sock)
        return data

    def send(self, *lines: str) -> None:
        self.writer.write("".join(f"{line}\r\n" for line in lines).encode())

    async def lines(self) -> list[bytes]:
        data = await self.read()
        if not data:
            raise ConnectionError(f"{self.nick}: the server closed the connection")
        *lines, self.buf = (self.buf + data).split(b"\r\n")
        for line in lines:
            if line.startswith(b"PING "):
                self.send("PONG " + line[5:].decode())
        return lines

    async def until(self, *codes: bytes) -> None:
        """Read until a line whose command (second word) is one of ``codes``."""
        while True:
            for line in await self.lines():
                parts = line.split(b" ", 2)
                if len(parts) > 1 and parts[1] in codes:
                    return
                if len(parts) > 1 and parts[1] in (b"432", b"433", b"464", b"491", b"ERROR"):
                    raise RuntimeError(f"{self.nick}: {line.decode(errors='replace')}")

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.spec.host, self.spec.port, limit=READ_SIZE
        )
        self.sock = self.writer.get_extra_info("socket")
        quickack(self.sock)
        self.send(f"NICK {self.nick}", f"USER {self.nick} 0 * :bench")
        await self.until(b"376", b"422")  # end of (or no) MOTD: registered

    async def join(self, channel: str) -> None:
        self.send(f"JOIN {channel}")
        await self.until(b"366")  # end of NAMES

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.transport.abort()


async def receive(c: IrcConn, stats: Stats, latency: bool, watch: Watch) -> None:
    measuring = stats.sh.measuring
    samples = stats.latencies
    messages = TokenCounter(TOKEN)
    watcher = Watcher(watch)
    try:
        if not latency:
            while True:
                data = await c.read()
                if not data:
                    stats.lose()
                    return
                stats.add(messages.count(data))
                watcher.see(data)
                chunk = data
                if b"PING :" in chunk:
                    c.buf = b""
                    for line in chunk.split(b"\r\n"):
                        if line.startswith(b"PING "):
                            c.send("PONG " + line[5:].decode())
        while True:
            lines = await c.lines()
            now = time.monotonic_ns()
            keep = measuring.value
            n = 0
            for line in lines:
                if TOKEN in line:
                    n += 1
                    if keep:
                        samples.append(now - sent_at(line[line.index(b" :") + 2 :]))
            stats.add(n)
    except (ConnectionError, OSError):
        stats.lose()


class Sender:
    def __init__(self, spec: Spec, stats: Stats, n: int) -> None:
        self.conn = IrcConn(spec, f"s{n}")
        self.token = f":s{n}!".encode()  # how its lines begin, as others receive them
        self.spec = spec
        self.stats = stats
        self.channel = "#" + spec.room
        self.unanswered = 0
        self.answered = asyncio.Event()
        self.lines = b""

    def credit(self, k: int) -> None:
        """The watcher saw ``k`` more of this sender's messages: send as many."""
        self.stats.sh.sent[self.stats.w] += k
        self.conn.writer.write(self.lines * k)

    async def connect(self) -> None:
        c = self.conn
        await c.connect()
        c.send(f"OPER {OPER_NAME} {OPER_PASSWORD}")
        await c.until(b"381")
        c.send(f"MODE {c.nick} +F")
        await c.join(self.channel)

    async def read(self) -> None:
        """Count other senders' messages with ``bytes.count`` (as the anonchat
        senders do); in ``fanout-ok``, each PONG closes a batch."""
        if peer_paced(self.spec.mode) or self.spec.mode == "latency":
            await receive(self.conn, self.stats, False, [])
            return
        c, stats = self.conn, self.stats
        messages, pongs_seen = TokenCounter(TOKEN), TokenCounter(b" PONG ")
        try:
            while True:
                data = await c.read()
                if not data:
                    stats.lose()
                    return
                stats.add(messages.count(data))
                pongs = pongs_seen.count(data)
                if pongs:
                    self.unanswered -= pongs
                    self.answered.set()
                if b"PING :" in data:
                    for line in data.split(b"\r\n"):
                        if line.startswith(b"PING "):
                            c.send("PONG " + line[5:].decode())
        except (ConnectionError, OSError):
            stats.lose()

    async def pump(self, window: int) -> None:
        if peer_paced(self.spec.mode):
            self.lines = f"PRIVMSG {self.channel} :{stamp_text()}\r\n".encode()
            self.credit(window)
            return
        batches = max(1, window // BATCH)
        sent = self.stats.sh.sent
        w = self.stats.w
        token = 0
        while True:
            while self.unanswered >= batches:
                self.answered.clear()
                await self.answered.wait()
            token += 1
            lines = [f"PRIVMSG {self.channel} :{stamp_text()}" for _ in range(BATCH)]
            self.conn.send(*lines, f"PING :{token}")
            self.unanswered += 1
            sent[w] += BATCH
            await self.conn.writer.drain()

    async def paced(self, rate: float) -> None:
        sent, w = self.stats.sh.sent, self.stats.w

        def say() -> None:
            self.conn.send(f"PRIVMSG {self.channel} :{stamp_text()}")
            sent[w] += 1

        await on_schedule(1.0 / rate, say)


async def main(spec: Spec, sh: Shared) -> dict[str, Any]:
    stats = Stats(spec, sh)
    senders = [Sender(spec, stats, n) for n in spec.senders]
    receivers: list[IrcConn] = []
    tasks: list[asyncio.Task[None]] = []
    t0 = time.monotonic()
    try:
        if spec.creator and senders:
            await senders[0].connect()
            sh.created.set()
        elif spec.mode != "capacity":
            await wait_event(sh.created)
        for s in senders[1 if spec.creator else 0 :]:
            await s.connect()

        async def setup(c: IrcConn, channel: str) -> None:
            # ngircd listens with a short accept backlog: a connection lost in it is retried.
            for attempt in range(5):
                try:
                    async with asyncio.timeout(5.0):
                        await c.connect()
                        await c.join(channel)
                    return
                except (TimeoutError, ConnectionError, OSError):
                    if hasattr(c, "writer"):
                        c.abort()
                    if attempt == 4:
                        raise

        if spec.mode == "capacity":
            pairs = [
                (IrcConn(spec, f"{room}m{i}"), "#" + room)
                for room, members in spec.rooms
                for i in range(members)
            ]
        else:
            pairs = [
                (IrcConn(spec, f"r{spec.worker}x{i}"), "#" + spec.room)
                for i in range(spec.receivers)
            ]
        receivers = [c for c, _ in pairs]
        factories: list[Callable[[], Coroutine[Any, Any, None]]] = [
            partial(setup, c, ch) for c, ch in pairs
        ]
        if spec.mode == "capacity":
            await in_two_halves(factories, spec.concurrency, spec, sh)
        else:
            await gather_limited(factories, spec.concurrency)
        setup_s = time.monotonic() - t0
        latency = spec.mode == "latency"
        watch: Watch = []
        if peer_paced(spec.mode):
            if not receivers:
                raise RuntimeError("fan-out needs a receiver in every worker (the watcher)")
            watch = [(s.token, s.credit) for s in senders]
        tasks += [
            asyncio.create_task(receive(c, stats, latency, watch if i == 0 else []))
            for i, c in enumerate(receivers)
        ]
        tasks += [asyncio.create_task(s.read()) for s in senders]
        sh.status.put(("ready", spec.worker, len(receivers) + len(senders)))
        await wait_event(sh.go)
        for s in senders:
            if spec.mode.startswith("fanout"):
                tasks.append(asyncio.create_task(s.pump(spec.window)))
            elif spec.mode == "latency":
                tasks.append(asyncio.create_task(s.paced(spec.rate)))
        await wait_event(sh.stop, 0.05)
        return {"setup_s": setup_s, "latencies": stats.latencies.tobytes(), "lost": stats.lost}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in receivers:
            c.abort()
        for s in senders:
            if hasattr(s.conn, "writer"):
                s.conn.abort()


def worker(spec: Spec, sh: Shared) -> None:
    """multiprocessing target."""
    run_worker(main, spec, sh)
