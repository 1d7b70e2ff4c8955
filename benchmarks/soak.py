"""Soak: a daemon under honest and hostile load for a while; is its memory bounded?

    python benchmarks/soak.py [--seconds 60] [--honest 8] [--every 5]

Starts ``python -m anonchat.daemon`` as a subprocess (TLS, a fresh state
directory, the default limits but for ``max_per_address``, since every client
here comes from 127.0.0.1), then runs at once:

* honest clients (:class:`anonchat.client.Client`) in one room, each sending
  a message every ``1/--rate`` seconds (under the daemon's ``msg_rate``) and
  recording everything it receives;
* talkers posting 3,000-byte messages into a second room, where
* never-readers (a tiny receive buffer, they never read) sit until the daemon
  drops them (``sendq``), then come back;
* flooders that fire 200 messages at once and keep going after refusals
  (closed with ``flood``), then come back;
* garbage senders (random bytes inside TLS: ``frame_too_large``, ``bad_frame``,
  or, when the bytes happen to start with a small length, ``hello_timeout``);
* reconnect churn: connect, join, say one thing, leave, disconnect.

Then, one after another for ``--phase`` seconds each (after a phase with none
of them), the attacks of issue 14, all from one other address (127.0.0.2:
Linux routes all of 127.0.0.0/8 to lo) against the daemon's per-address
limits (the default ones, but for ``max_per_address``, raised to 64, and the
connection rate, raised to 1,000 a second, for the clients above, which all
come from 127.0.0.1 and reconnect often; the attacker, held to the same, thus
reconnects at full speed to come back at every other limit; the attacks run
in a process of their own, so that their CPU is not the honest clients'):

* ``ghosts``: sessions that create rooms, join the honest room and drop
  without ``bye``, again and again (resumable sessions with their rooms);
* ``nicks``: connections in the honest room changing nick as fast as they can;
* ``handshakes``: TCP connections that never send their ClientHello;
* ``lists``: connections holding 50 rooms each and calling ``list`` and
  ``who`` back to back;
* ``resumes``: hellos resuming a made-up token and naming ``lobby`` 3,800 times;
* ``slowloris``: connections that begin a frame and send a byte of it now
  and then.

For each phase the report gives the honest messages delivered per second
and the honest senders' round trip (``say`` to ``ok``), median and worst, next
to the phase without an attack, and what the attacker was told.

Every second it samples the daemon's RSS (``/proc/PID/status``) and its open
sockets; every ``--every`` seconds it prints a row.  At the end: is memory
bounded (the second half's peak RSS within 25 % + 8 MiB of the first half's)
and did every honest message reach every honest member, once, in one order?
Exit status 0 when both hold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from anonchat import events as ev
from anonchat.client import Client
from anonchat.errors import AnonchatError, ConnectionClosed, RemoteProtocolError, RequestError
from anonchat.trust import client_context
from anonchat.wire import FrameDecoder, encode_frame

HONEST_ROOM = "soak"
SCRIPT = str(Path(__file__).resolve())
ATTACKER = "127.0.0.2"  # the address issue 14's attacks come from (honest ones: 127.0.0.1)
BIG_ROOM = "big"
BIG_TEXT = "x" * 3000


@dataclass
class Stats:
    errors: Counter[str] = field(default_factory=Counter)
    delivered: int = 0  # honest messages received by honest members
    sent: int = 0  # honest messages acknowledged
    reconnects: int = 0
    delivered_at: list[float] = field(default_factory=list)  # when each delivery came
    round_trips: list[tuple[float, float]] = field(default_factory=list)  # (when, say -> ok)
    attacker: Counter[str] = field(default_factory=Counter)  # what the attacker was told


@dataclass
class Honest:
    client: Client
    acked: list[str] = field(default_factory=list)
    received: list[tuple[int, str]] = field(default_factory=list)  # (seq, text)


# -- the daemon ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_daemon(tmp: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    config = tmp / "limits.toml"
    # Every client of the mix comes from 127.0.0.1 and the churners reconnect
    # many times a second: room for them (the attacker at 127.0.0.2 gets the same,
    # so its attacks run at full speed against every other per-address limit).
    config.write_text(
        "[limits]\nmax_per_address = 64\nconnect_burst = 1000\nconnect_interval = 0.001\n",
        encoding="utf-8",
    )
    state = tmp / "state"
    base = [sys.executable, "-m", "anonchat.daemon", "--state-dir", str(state)]
    pin = subprocess.run(
        [*base, "--print-pin"], check=True, capture_output=True, text=True
    ).stdout.strip()
    log = (tmp / "daemon.log").open("wb")
    proc = subprocess.Popen(
        [*base, "--port", str(port), "--config", str(config), "--log-level", "WARNING"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, pin


async def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the daemon exited at start; see its log")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise SystemExit("the daemon did not start listening")


def rss_mib(pid: int) -> float:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def open_sockets(pid: int) -> int:
    """Sockets the daemon holds, less its listening one: about its connections."""
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    count += 1
    return max(0, count - 1)


# -- clients ---------------------------------------------------------------------


class Soak:
    def __init__(self, port: int, pin: str, args: argparse.Namespace) -> None:
        self.port = port
        self.pin = pin
        self.args = args
        self.stats = Stats()
        self.stop = asyncio.Event()
        self.phase = "none"
        self.phases: list[tuple[str, float, float]] = []  # (attack, start, end)
        self.attacker_by_phase: dict[str, Counter[str]] = {}
        self._n = 0

    async def connect(self, nick: str | None = None) -> Client:
        return await Client.connect("127.0.0.1", self.port, nick=nick, pin=self.pin, timeout=10)

    async def raw(
        self, rcvbuf: int | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port))
        return await asyncio.open_connection(
            sock=sock, ssl=client_context(), server_hostname="anonchatd"
        )

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def forever(self, name: str, one_round: Callable[[], Awaitable[None]]) -> None:
        """Repeat a hostile round until the soak ends; count what goes wrong."""
        while not self.stop.is_set():
            try:
                await one_round()
            except ConnectionClosed as exc:
                self.stats.errors[exc.code] += 1
            except RequestError as exc:
                self.stats.errors[f"{name}:{exc.code}"] += 1
            except (AnonchatError, OSError, TimeoutError) as exc:
                self.stats.errors[f"{name}:{type(exc).__name__}"] += 1
            self.stats.reconnects += 1

    # honest ------------------------------------------------------------------

    async def honest(self, me: Honest) -> None:
        async def receive() -> None:
            async for frame in me.client.events():
                if isinstance(frame, ev.Msg) and frame.room == HONEST_ROOM:
                    me.received.append((frame.seq, frame.text))
                    self.stats.delivered += 1
                    self.stats.delivered_at.append(time.monotonic())

        reader = asyncio.create_task(receive())
        n = 0
        while not self.stop.is_set():
            text = f"{me.client.nick} {n} " + "m" * random.randrange(1, 400)
            begun = time.monotonic()
            try:
                await me.client.say(HONEST_ROOM, text)
                self.stats.round_trips.append((begun, time.monotonic() - begun))
            except RequestError as exc:
                self.stats.errors[f"honest:{exc.code}"] += 1
            else:
                me.acked.append(text)
                self.stats.sent += 1
            n += 1
            await self.pause(1 / self.args.rate)
        await asyncio.sleep(2)  # let the last messages arrive
        reader.cancel()

    async def talker(self, client: Client) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(RequestError):
                await client.say(BIG_ROOM, BIG_TEXT)
            await self.pause(1 / self.args.rate)

    # hostile -----------------------------------------------------------------

    async def never_reader(self) -> None:
        reader, writer = await self.raw(rcvbuf=4096)
        hello = ev.ClientHello(v=ev.PROTOCOL_VERSION)
        join = ev.Join(id=1, room=BIG_ROOM)
        writer.write(encode_frame(hello.to_wire()) + encode_frame(join.to_wire()))
        try:
            # Never read; wait until the daemon gives up on us (or the soak ends).
            while not self.stop.is_set() and not reader.at_eof():
                await self.pause(1)
                if writer.transport.is_closing():
                    break
                writer.write(encode_frame(ev.Pong(n=0).to_wire()))  # "alive", still not reading
                await asyncio.wait_for(writer.drain(), 5)
        except (ConnectionError, TimeoutError):
            self.stats.errors["sendq_exceeded (dropped)"] += 1
        finally:
            writer.close()

    async def flooder(self) -> None:
        client = await self.connect()
        client.pace = False  # hostile: it does not wait for the rate the daemon announced
        try:
            room = f"flood-{client.nick}"
            await client.create(room)
            results = await asyncio.gather(
                *(client.say(room, f"spam {i}") for i in range(200)), return_exceptions=True
            )
            for r in results:
                if isinstance(r, RequestError):
                    self.stats.errors[r.code] += 1
            if client.closed is not None:
                self.stats.errors[client.closed.code] += 1
        finally:
            await client.close()
        await self.pause(1)

    async def garbage(self) -> None:
        reader, writer = await self.raw()
        writer.write(os.urandom(random.randrange(1, 2000)))
        decoder = FrameDecoder(1 << 20)
        try:
            async with asyncio.timeout(15):  # past hello_timeout (10 s)
                while data := await reader.read(65536):
                    with contextlib.suppress(RemoteProtocolError):
                        for body in decoder.feed(data):
                            frame = ev.from_wire(body, "client")
                            if isinstance(frame, ev.Error):
                                self.stats.errors[frame.code] += 1
        except ConnectionError:
            pass
        finally:
            writer.close()
        await self.pause(0.2)

    async def churn(self) -> None:
        client = await self.connect()
        try:
            room = f"churn-{client.nick}"
            await client.create(room)
            await client.say(room, "hello and goodbye")
            await client.leave(room)
        finally:
            await client.close()
        await self.pause(0.1)

    # the attacks of issue 14, from one other address ---------------------------

    async def attacker_raw(
        self, tls: bool = True
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(
            "127.0.0.1",
            self.port,
            local_addr=(ATTACKER, 0),
            ssl=client_context() if tls else None,
            server_hostname="anonchatd" if tls else None,
        )

    def told(self, what: str) -> None:
        self.stats.attacker[f"{self.phase}: {what}"] += 1

    async def frames(self, reader: asyncio.StreamReader) -> AsyncIterator[ev.Frame]:
        """The daemon's frames to an attacker, until it closes; errors are counted."""
        decoder = FrameDecoder(1 << 20)
        while data := await reader.read(65536):
            with contextlib.suppress(RemoteProtocolError):
                for body in decoder.feed(data):
                    frame = ev.from_wire(body, "client")
                    if isinstance(frame, ev.Error):
                        self.told(frame.code)
                    yield frame

    def next_n(self) -> int:
        self._n += 1
        return self._n

    async def replies(self, reader: asyncio.StreamReader, count: int) -> None:
        """Read until ``count`` replies (joined, ok, rooms, members, errors with an id)."""
        got = 0
        async for frame in self.frames(reader):
            if isinstance(frame, ev.Joined | ev.Ok | ev.Rooms | ev.Members) or (
                isinstance(frame, ev.Error) and frame.id is not None
            ):
                got += 1
                if got >= count:
                    return
        raise EOFError("closed by the daemon")

    async def ghost_round(self) -> None:
        """Join the honest room, create 49 rooms, drop without bye; again."""
        reader, writer = await self.attacker_raw()
        try:
            n = self.next_n()
            asks: list[ev.Frame] = [ev.Join(id=1, room=HONEST_ROOM)]
            asks += [ev.Create(id=2 + i, room=f"g{n}-{i}") for i in range(49)]
            hello = ev.ClientHello(v=ev.PROTOCOL_VERSION, nick=f"ghost{n}")
            writer.write(b"".join(encode_frame(f.to_wire()) for f in [hello, *asks]))
            async with asyncio.timeout(10):
                await self.replies(reader, len(asks))
            self.told("dropped without bye")
        finally:
            writer.transport.abort()

    async def nick_round(self) -> None:
        """In the honest room, change nick as fast as the daemon answers."""
        reader, writer = await self.attacker_raw()
        try:
            n = self.next_n()
            hello = ev.ClientHello(v=ev.PROTOCOL_VERSION, nick=f"nk{n}")
            writer.write(
                encode_frame(hello.to_wire())
                + encode_frame(ev.Join(id=1, room=HONEST_ROOM).to_wire())
            )
            for i in range(100_000):
                batch = [ev.SetNick(id=i * 10 + j, nick=f"nk{n}-{i}-{j}") for j in range(10)]
                writer.write(b"".join(encode_frame(f.to_wire()) for f in batch))
                async with asyncio.timeout(10):
                    await self.replies(reader, 10 + (1 if i == 0 else 0))
        finally:
            writer.transport.abort()

    async def handshake_round(self) -> None:
        """A TCP connection that never sends its ClientHello, held till it is closed."""
        reader, writer = await self.attacker_raw(tls=False)
        try:
            with contextlib.suppress(ConnectionError):
                await reader.read(1)
            self.told("handshake closed unanswered")
        finally:
            writer.close()
        await asyncio.sleep(0.05)

    async def list_round(self) -> None:
        """Hold 50 rooms, then ask for the room list and the honest room's members."""
        reader, writer = await self.attacker_raw()
        try:
            n = self.next_n()
            hello = ev.ClientHello(v=ev.PROTOCOL_VERSION, nick=f"ls{n}")
            creates = [ev.Create(id=1 + i, room=f"l{n}-{i}") for i in range(50)]
            writer.write(b"".join(encode_frame(f.to_wire()) for f in [hello, *creates]))
            async with asyncio.timeout(10):
                await self.replies(reader, len(creates))
            for i in range(100_000):
                asks = [ev.ListRooms(id=1000 + 2 * i), ev.Who(id=1001 + 2 * i, room=HONEST_ROOM)]
                writer.write(b"".join(encode_frame(f.to_wire()) for f in asks))
                async with asyncio.timeout(10):
                    await self.replies(reader, 2)
        finally:
            writer.transport.abort()

    async def resume_round(self) -> None:
        """A hello resuming a made-up token, naming lobby 3,800 times."""
        reader, writer = await self.attacker_raw()
        try:
            seen = [ev.Seen(seq=1, room="lobby")] * 3800
            hello = ev.ClientHello(v=ev.PROTOCOL_VERSION, resume=os.urandom(16), seen=seen)
            writer.write(encode_frame(hello.to_wire()))
            async with asyncio.timeout(10):
                async for frame in self.frames(reader):
                    if isinstance(frame, ev.ServerHello):
                        self.told("resume answered")
                        break
        finally:
            writer.transport.abort()

    async def slowloris_round(self) -> None:
        """Begin a frame of 60,000 bytes and send one byte of it a second."""
        reader, writer = await self.attacker_raw()
        try:
            hello = ev.ClientHello(v=ev.PROTOCOL_VERSION)
            writer.write(encode_frame(hello.to_wire()) + (60_000).to_bytes(4, "big"))
            closed = asyncio.ensure_future(self._drain_frames(reader))
            while not closed.done():
                writer.write(b"\x00")
                await asyncio.wait([closed], timeout=1)
        finally:
            writer.transport.abort()

    async def _drain_frames(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError):
            async for _ in self.frames(reader):
                pass

    async def attack_phases(self, seconds: float) -> None:
        """Each attack for ``seconds``, after as long with none; note the windows."""
        attacks: list[tuple[str, Callable[[], Awaitable[None]], int]] = [
            ("none", self.pause_round, 1),
            ("ghosts", self.ghost_round, 8),
            ("nicks", self.nick_round, 16),
            ("handshakes", self.handshake_round, 300),
            ("lists", self.list_round, 64),
            ("resumes", self.resume_round, 4),
            ("slowloris", self.slowloris_round, 64),
        ]
        for name, one_round, workers in attacks:
            self.phase = name
            print(f"phase {name}", flush=True)  # (to the soak, when run as --attacker)
            start = time.monotonic()
            tasks = [asyncio.create_task(self.attacker_loop(one_round)) for _ in range(workers)]
            await self.pause(seconds)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.phases.append((name, start, time.monotonic()))
            if self.stop.is_set():
                return
        self.phase = "none"
        print("phase end", flush=True)

    async def attacker_process(self) -> None:
        """Run the attack phases in a process of their own (so that the attacker's
        own CPU does not slow the honest clients here); note each phase's window."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            SCRIPT,
            "--attacker",
            str(self.port),
            "--pin",
            self.pin,
            "--phase",
            str(self.args.phase),
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        current: tuple[str, float] | None = None
        try:
            async for raw in proc.stdout:
                line = raw.decode().strip()
                if line.startswith("phase "):
                    if current is not None:
                        self.phases.append((current[0], current[1], time.monotonic()))
                    name = line.split(" ", 1)[1]
                    current = None if name == "end" else (name, time.monotonic())
                    self.phase = "none" if name == "end" else name
                elif line.startswith("told "):
                    self.stats.attacker.update(json.loads(line[5:]))
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()

    async def pause_round(self) -> None:
        await self.pause(3600)

    async def attacker_loop(self, one_round: Callable[[], Awaitable[None]]) -> None:
        while not self.stop.is_set():
            try:
                await one_round()
            except EOFError:
                pass  # closed by the daemon: the code it gave was counted
            except (OSError, TimeoutError) as exc:
                self.told(type(exc).__name__)
                await asyncio.sleep(0.05)


# -- the run -----------------------------------------------------------------------


def verdict_delivery(honest: list[Honest]) -> tuple[bool, str]:
    sent = {text for h in honest for text in h.acked}
    reference = honest[0].received
    problems = []
    for h in honest:
        texts = [t for _, t in h.received]
        if set(texts) != sent or len(texts) != len(sent):
            missing = len(sent - set(texts))
            problems.append(
                f"{h.client.nick}: {missing} missing, {len(texts) - len(set(texts))} twice"
            )
        elif h.received != reference:
            problems.append(f"{h.client.nick}: another order")
    seqs = [s for s, _ in reference]
    if seqs != sorted(seqs):
        problems.append("sequence numbers out of order")
    return not problems, "; ".join(problems) or f"{len(sent)} messages, each to all {len(honest)}"


async def soak(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="anonchat-soak-"))
    port = free_port()
    proc, pin = start_daemon(tmp, port)
    try:
        await wait_listening(port, proc)
        return await run(Soak(port, pin, args), proc, tmp)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def run(s: Soak, proc: subprocess.Popen[bytes], tmp: Path) -> int:
    args = s.args
    honest = [Honest(await s.connect(f"honest{i}")) for i in range(args.honest)]
    await honest[0].client.create(HONEST_ROOM)
    for h in honest[1:]:
        await h.client.join(HONEST_ROOM)
    talkers = [await s.connect(f"talker{i}") for i in range(4)]
    await talkers[0].create(BIG_ROOM)
    for t in talkers[1:]:
        await t.join(BIG_ROOM)

    tasks = [asyncio.create_task(s.honest(h)) for h in honest]
    tasks += [asyncio.create_task(s.talker(t)) for t in talkers]
    hostile = [("never_reader", s.never_reader)] * 4 + [
        ("flooder", s.flooder),
        ("flooder", s.flooder),
        ("garbage", s.garbage),
        ("garbage", s.garbage),
        ("churn", s.churn),
        ("churn", s.churn),
    ]
    tasks += [asyncio.create_task(s.forever(name, fn)) for name, fn in hostile]
    if args.phase > 0:
        tasks.append(asyncio.create_task(s.attacker_process()))

    print(f"soak: {args.seconds:g} s, daemon pid {proc.pid}, {args.honest} honest clients")
    print(
        f"{'t (s)':>6} {'attack':>10} {'conns':>6} {'delivered':>10} {'RSS MiB':>8}  errors by code"
    )
    samples: list[tuple[float, float]] = []
    start = time.monotonic()
    next_row = 0.0
    while (elapsed := time.monotonic() - start) < args.seconds:
        await asyncio.sleep(1)
        elapsed = time.monotonic() - start
        rss = rss_mib(proc.pid)
        samples.append((elapsed, rss))
        if elapsed >= next_row or elapsed + 1 >= args.seconds:
            next_row += args.every
            errors = ", ".join(f"{k} {v}" for k, v in sorted(s.stats.errors.items()))
            print(
                f"{elapsed:6.0f} {s.phase:>10} {open_sockets(proc.pid):6d} {s.stats.delivered:10d} "
                f"{rss:8.1f}  {errors}",
                flush=True,
            )
        if proc.poll() is not None:
            print("the daemon died; its log:", (tmp / "daemon.log").read_text()[-2000:])
            return 1
    s.stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in [*(h.client for h in honest), *talkers]:
        await c.close()

    half = len(samples) // 2
    first = max(r for _, r in samples[:half]) if half else 0.0
    second = max(r for _, r in samples[half:]) if samples else 0.0
    bounded = second <= first * 1.25 + 8
    delivered, detail = verdict_delivery(honest)
    ever_dropped = [k for k in s.stats.errors if "honest:" in k]
    print()
    print(f"RSS peak: first half {first:.1f} MiB, second half {second:.1f} MiB")
    print(f"memory bounded: {'yes' if bounded else 'NO'}")
    answer = "yes" if delivered else "NO"
    print(f"honest messages delivered to every honest member: {answer} ({detail})")
    if ever_dropped:
        print(f"honest clients were refused: {ever_dropped}")
    print(f"hostile connections made: {s.stats.reconnects}")
    served = report_phases(s)
    return 0 if bounded and delivered and not ever_dropped and served else 1


def report_phases(s: Soak) -> bool:
    """Honest traffic served during each attack, next to the phase without one;
    whether it went on in every phase (some delivery, no round trip over 5 s)."""
    if not s.phases:
        return True
    print()
    print("honest traffic served during each attack (from 127.0.0.2, alone):")
    print(
        f"{'attack':>10} {'s':>5} {'delivered/s':>12} {'ok median ms':>13} {'ok max ms':>10}"
        "  attacker was told"
    )
    ok = True
    for name, start, end in s.phases:
        seconds = max(end - start, 1e-9)
        delivered = sum(start <= t < end for t in s.stats.delivered_at)
        trips = sorted(rtt for t, rtt in s.stats.round_trips if start <= t < end)
        median = trips[len(trips) // 2] * 1000 if trips else float("nan")
        worst = trips[-1] * 1000 if trips else float("nan")
        told = ", ".join(
            f"{k.split(': ', 1)[1]} {v}"
            for k, v in sorted(s.stats.attacker.items())
            if k.startswith(f"{name}: ")
        )
        print(
            f"{name:>10} {seconds:5.0f} {delivered / seconds:12.1f} {median:13.1f} "
            f"{worst:10.1f}  {told}"
        )
        if not delivered or not trips or trips[-1] > 5.0:
            ok = False
    print(f"honest traffic served during every attack: {'yes' if ok else 'NO'}")
    return ok


async def attacker_main(args: argparse.Namespace) -> int:
    """The attacker's process: the phases, then what it was told (as JSON)."""
    s = Soak(args.attacker, args.pin, args)
    await s.attack_phases(args.phase)
    print("told " + json.dumps(dict(s.stats.attacker)), flush=True)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="how long to run (default 60)")
    p.add_argument("--honest", type=int, default=8, help="honest clients (default 8)")
    p.add_argument("--rate", type=float, default=8.0, help="messages/s per honest client (8)")
    p.add_argument("--every", type=float, default=5.0, help="seconds between table rows (5)")
    p.add_argument(
        "--phase",
        type=float,
        default=10.0,
        help="seconds of each of issue 14's attacks, run one after another (10; 0: none)",
    )
    p.add_argument("--attacker", type=int, help=argparse.SUPPRESS)  # PORT: run the attacks
    p.add_argument("--pin", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.attacker:
        return asyncio.run(attacker_main(args))
    if args.phase > 0:
        args.seconds = max(args.seconds, 7 * args.phase + 5)  # room for every phase
    return asyncio.run(soak(args))


if __name__ == "__main__":
    sys.exit(main())
