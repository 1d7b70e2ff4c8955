"""Run the benchmarks: anonchatd (plaintext, TLS, secret room), ngircd and a raw relay.

    python -m benchmarks.run [--quick] [--rounds N] [--only fanout,fanout-ok,latency,capacity]
                             [--json out.json] [--markdown out.md] [--generator c|python]

Every workload point starts a fresh server as a subprocess (so its CPU time
and memory are read from /proc apart from the load generator's), starts the
load generator (for ``fanout`` and ``latency`` in public rooms the C
program of benchmarks/cgen.py, unless ``--generator python``; otherwise the
Python worker processes of load.py and ircload.py), waits until every member has joined, lets
the senders go, discards a warm-up, measures for a fixed time, stops
everything and kills what is left.  The servers take turns point by point
(anonchatd, ngircd and the raw relay one after another for each workload and
room size), and the whole plan runs ``--rounds`` times, so that a change in
the machine's load hits every server alike; the summary gives each figure's
median with its min-max over the rounds, as a markdown table.  See
docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from . import cgen, ircload, load
from .common import Shared, Spec
from .ngircd import (
    INSTALL_HINT,
    Ngircd,
    find_ngircd,
    free_port,
    start_process,
    stop_process,
    wait_listening,
)
from .procstat import cpu_seconds, machine, machine_busy_seconds, raise_nofile, rss_kib

WORKERS = 2
SENDERS = 8
WINDOW = 4  # messages in flight per sender
LATENCY_RATE = 1000.0  # messages per second, all senders together
ROOM_SIZE = 100  # members per room in the capacity workload
ROOT = Path(__file__).resolve().parent.parent  # where ``-m benchmarks...`` runs


@dataclass
class Timing:
    warmup: float
    measure: float
    settle: float


class Server:
    name = ""
    variant = ""
    pid = 0
    port = 0
    pin = ""
    tls = False
    secret = False
    directory: Path  # the point's own directory (configs, logs)

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def pids(self) -> list[int]:
        """The processes whose CPU and memory count as the server's."""
        return [self.pid]

    def port_for(self, worker: int) -> int:
        """The port a load-generator worker connects to."""
        return self.port


class OwnProcess(Server):
    """A server that is one process started here, its output in ``self.log``."""

    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes]

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 10)
        self.log.close()


class Anonchatd(OwnProcess):
    name = "anonchatd"

    def __init__(self, directory: Path, variant: str) -> None:
        self.directory = directory
        self.variant = variant
        self.tls = variant == "tls"
        self.secret = variant == "secret"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        if self.tls:
            from anonchat.trust import ensure_identity

            self.pin = ensure_identity(directory).pin

    def start(self) -> None:
        self.log = open(self.directory / "anonchatd.log", "wb")  # noqa: SIM115
        self.proc = self.spawn(self.port)
        self.pid = self.proc.pid

    def spawn(self, port: int, *extra: str) -> subprocess.Popen[bytes]:
        """Start one anonchatd on ``port`` (logging to ``self.log``); wait until it listens."""
        cmd = [sys.executable, "-m", "anonchat.daemon", "--port", str(port)]
        cmd += ["--state-dir", str(self.directory), "--log-level", "WARNING"]
        cmd += ["--config", str(write_daemon_config(self.directory)), *extra]
        if not self.tls:
            cmd.append("--plaintext")
        proc = start_process(cmd, self.log, cwd=ROOT)
        wait_listening(port, proc, 20.0)
        return proc


class RelayServer(OwnProcess):
    """The raw coalescing relay (benchmarks/relay.py): the Python ceiling."""

    name = "relay"
    variant = "raw"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log = open(self.directory / "relay.log", "wb")  # noqa: SIM115
        cmd = [sys.executable, "-m", "benchmarks.relay", "--port", str(self.port)]
        self.proc = start_process(cmd, self.log, cwd=ROOT)
        self.pid = self.proc.pid
        wait_listening(self.port, self.proc, 20.0)


class IrcServer(Server):
    name = "ngircd"
    variant = "plain"

    def __init__(self, exe: str, directory: Path) -> None:
        self.directory = directory
        self.ngircd = Ngircd(exe, directory)
        self.port = self.ngircd.port

    def start(self) -> None:
        self.ngircd.start()
        self.pid = self.ngircd.pid

    def stop(self) -> None:
        self.ngircd.stop()


#: Flood limits lifted for the benchmark, as ngircd's are (only those the daemon has).
LIFTED_LIMITS: dict[str, int | float] = {
    "max_connections": 100_000,
    "max_members_per_room": 100_000,
    "max_per_address": 100_000,
    "msg_burst": 1_000_000_000,
    "msg_rate": 1_000_000_000.0,
    "room_join_burst": 1_000_000,
    "room_join_interval": 0.000_001,
    "bytes_burst": 1 << 40,
    "bytes_rate": 1 << 40,
    "flood_strikes": 1_000_000_000,
    "connect_burst": 1_000_000,
    "connect_interval": 0.000_001,
    "max_handshakes_per_address": 100_000,
    "max_handshakes": 100_000,
}


def write_daemon_config(directory: Path) -> Path:
    """A TOML config lifting the daemon's flood limits (those its Limits define)."""
    import dataclasses

    from anonchat.daemon.config import Limits

    names = {f.name for f in dataclasses.fields(Limits)}
    lines = ["[limits]"] + [f"{k} = {v!r}" for k, v in LIFTED_LIMITS.items() if k in names]
    path = directory / "anonchatd.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def percentile(sorted_values: list[int], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k] / 1e6


def specs_for(server: Server, mode: str, members: int) -> tuple[list[Spec], int]:
    """Split a workload point over the workers; return the specs and the connection count."""
    base = {
        "host": "127.0.0.1",
        "port": server.port,
        "mode": mode,
        "tls": server.tls,
        "pin": server.pin,
        "secret": server.secret,
        # Fan-out receivers count message bytes, as the IRC receivers do (see load.py).
        "count_only": mode.startswith("fanout"),
        "raw": isinstance(server, RelayServer),
    }
    if isinstance(server, IrcServer):
        base["concurrency"] = 4  # ngircd's accept backlog is short
    specs = [Spec(worker=w, **base) for w in range(WORKERS)]  # type: ignore[arg-type]
    for spec in specs:
        spec.port = server.port_for(spec.worker)
    if mode == "capacity":
        rooms = [
            (f"cap{r}", min(ROOM_SIZE, members - r * ROOM_SIZE))
            for r in range(-(-members // ROOM_SIZE))
        ]
        for r, room in enumerate(rooms):
            specs[r % WORKERS].rooms.append(room)
        return specs, members
    senders = min(SENDERS, members - WORKERS)  # every worker keeps a receiver (its watcher)
    for n in range(senders):
        specs[n % WORKERS].senders.append(n)
    receivers = members - senders
    for w, spec in enumerate(specs):
        spec.receivers = receivers // WORKERS + (1 if w < receivers % WORKERS else 0)
        spec.all_senders = senders
        spec.window = WINDOW
        spec.rate = LATENCY_RATE / senders
    specs[0].creator = True
    return specs, members


#: The workloads the C generator drives (in public rooms).
C_WORKLOADS = ("fanout", "latency")


def c_generated(server: Server, mode: str, exe: Path) -> bool:
    """Whether the C generator (benchmarks/cgen.py) can drive this point: the
    fan-out or latency workload in a public room (a secret room needs a client
    that seals and signs), over TLS only if it was built with OpenSSL."""
    return mode in C_WORKLOADS and not server.secret and (not server.tls or cgen.has_tls(exe))


def latency_figures(row: dict[str, Any], samples: list[int]) -> None:
    """p50, p99 and the greatest of the latency samples (nanoseconds), into ``row``."""
    samples.sort()
    row["samples"] = len(samples)
    row["p50_ms"] = round(percentile(samples, 50), 3)
    row["p99_ms"] = round(percentile(samples, 99), 3)
    row["max_ms"] = round(samples[-1] / 1e6, 3) if samples else None


def run_point(
    server: Server,
    mode: str,
    members: int,
    timing: Timing,
    profile: Path | None,
    c_exe: Path | None = None,
) -> dict[str, Any]:
    """One point; with ``c_exe`` (the built C generator) the points it can drive
    (:func:`c_generated`) are driven by it, the others by the Python workers."""
    row: dict[str, Any] = {
        "workload": mode,
        "members": members,
        "server": server.name,
        "variant": server.variant,
        "notes": [],
    }
    if c_exe is not None and c_generated(server, mode, c_exe):
        row["generator"] = "c"
        return run_c_point(server, mode, members, timing, profile, c_exe, row)
    row["generator"] = "python"
    if c_exe is not None and mode in C_WORKLOADS:
        row["notes"].append("Python generator")
    ctx = mp.get_context("spawn")
    specs, conns = specs_for(server, mode, members)
    sh = Shared.make(ctx, WORKERS, sum(len(s.senders) for s in specs))
    target: Callable[[Spec, Shared], None] = (
        ircload.worker if isinstance(server, IrcServer) else load.worker
    )
    server.start()
    procs: list[Any] = []
    spy: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(0.3)
        base_rss = sum(rss_kib(pid) for pid in server.pids())
        halves, half_rss, half_conns = 0, 0, 0
        procs = [ctx.Process(target=target, args=(spec, sh), daemon=True) for spec in specs]
        for p in procs:
            p.start()
        t_setup = time.monotonic()
        ready = 0
        deadline = t_setup + (240 if mode == "capacity" else 90)
        while ready < len(procs):
            try:
                msg = sh.status.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"workers not ready after {deadline - t_setup:.0f} s") from None
            if msg[0] == "error":
                raise RuntimeError(f"worker {msg[1]}: {msg[2]}")
            if msg[0] == "half":  # capacity: every worker has half its connections up
                halves += 1
                half_conns += msg[2]
                if halves == len(procs):
                    time.sleep(timing.settle)
                    half_rss = sum(rss_kib(pid) for pid in server.pids())
                    sh.half.set()
            if msg[0] == "ready":
                ready += 1
        row["setup_s"] = round(time.monotonic() - t_setup, 1)
        gen_pids = [p.pid for p in procs]
        sh.go.set()
        if mode == "capacity":
            time.sleep(timing.settle)
            rss = sum(rss_kib(pid) for pid in server.pids())
            row["rss_kib"] = rss
            row["rss_base_kib"] = base_rss
            row["rss_half_kib"] = half_rss
            row["rss_per_conn_kib"] = round((rss - base_rss) / conns, 2)
            # And what the second half of the connections added, per connection: a
            # figure far below the first shows something loaded once, at the first
            # connections, or memory the allocator had free and reused.
            row["rss_second_half_kib"] = round((rss - half_rss) / max(1, conns - half_conns), 2)
            row["connections"] = conns
            time.sleep(0.5)
            row["lost"] = sum(sh.lost[:])
        else:

            def counters() -> tuple[int, int, float]:
                return sum(sh.counts[:]), sum(sh.sent[:]), time.monotonic()

            def measuring(on: bool) -> None:
                sh.measuring.value = int(on)

            spy = measure(server, row, timing, gen_pids, counters, measuring, profile)
            row["lost"] = sum(sh.lost[:])
        sh.stop.set()
        results = collect(sh, len(procs), 30.0)
        if mode == "latency":
            samples: list[int] = []
            for res in results:
                a = array("q")
                a.frombytes(res["latencies"])
                samples += a.tolist()
            latency_figures(row, samples)
        annotate(row)
        if spy is not None:
            spy.wait(timing.measure + 30)
    finally:
        sh.stop.set()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join(5)
        if spy is not None and spy.poll() is None:
            spy.kill()
        server.stop()
    return row


def measure(
    server: Server,
    row: dict[str, Any],
    timing: Timing,
    gen_pids: list[int],
    counters: Callable[[], tuple[int, int, float]],
    measuring: Callable[[bool], None],
    profile: Path | None,
) -> subprocess.Popen[bytes] | None:
    """The measured part of a point whose senders are going: warm up, then the
    deliveries and messages (``counters``: deliveries, messages sent, when) and
    the CPU of the server, the generator and the rest of the machine over
    ``timing.measure`` seconds, into ``row``.  Returns the profiler, if one runs."""
    spy = None
    time.sleep(timing.warmup)
    c0 = sum(cpu_seconds(pid) for pid in server.pids())
    g0 = sum(cpu_seconds(pid) for pid in gen_pids)
    m0 = machine_busy_seconds()
    n0, s0, t0 = counters()
    measuring(True)
    if profile is not None and isinstance(server, Anonchatd):
        spy = start_profile(
            server.pid, profile, f"{row['workload']}-{row['members']}-{server.variant}", timing
        )
    time.sleep(timing.measure)
    c1 = sum(cpu_seconds(pid) for pid in server.pids())
    g1 = sum(cpu_seconds(pid) for pid in gen_pids)
    m1 = machine_busy_seconds()
    n1, s1, t1 = counters()
    measuring(False)
    dt = t1 - t0
    row["deliveries_per_s"] = round((n1 - n0) / dt)
    row["messages_per_s"] = round((s1 - s0) / dt)
    row["daemon_cpu_pct"] = round(100 * (c1 - c0) / dt, 1)
    row["generator_cpu_pct"] = round(100 * (g1 - g0) / dt, 1)
    other = (m1 - m0) - (c1 - c0) - (g1 - g0)
    row["other_cpu_pct"] = round(max(0.0, 100 * other / dt), 1)
    if n1 > n0:
        row["server_us_per_delivery"] = round(1e6 * (c1 - c0) / (n1 - n0), 3)
    row["rss_kib"] = sum(rss_kib(pid) for pid in server.pids())
    return spy


def run_c_point(
    server: Server,
    mode: str,
    members: int,
    timing: Timing,
    profile: Path | None,
    exe: Path,
    row: dict[str, Any],
) -> dict[str, Any]:
    """A fan-out or latency point driven by the C generator (benchmarks/cgen.py):
    the same room, senders, window (or rate) and texts as the Python workers'."""
    kind = (
        "irc" if isinstance(server, IrcServer) else "raw" if server.variant == "raw" else "anonchat"
    )
    # As many senders as the Python workers have (each of them keeps a watcher).
    senders = min(SENDERS, members - WORKERS)
    plan = cgen.Plan(
        kind,
        "127.0.0.1",
        server.port,
        members,
        senders,
        WINDOW,
        tls=server.tls,
        pin=server.pin,
        rate=LATENCY_RATE / senders if mode == "latency" else None,
    )
    server.start()
    gen: cgen.Generator | None = None
    spy: subprocess.Popen[bytes] | None = None
    log = open(server.directory / "generator.log", "wb")  # noqa: SIM115
    try:
        time.sleep(0.3)
        t_setup = time.monotonic()
        cgen.prepare(plan)
        gen = cgen.Generator(exe, plan, stderr=log)
        row["setup_s"] = round(time.monotonic() - t_setup, 1)
        gen.go()
        running = gen

        def counters() -> tuple[int, int, float]:
            snap = running.snapshot()
            return snap["deliveries"], snap["sent"], snap["t"]

        try:
            spy = measure(server, row, timing, [gen.pid], counters, running.measuring, profile)
            final = gen.finish()
        except RuntimeError as exc:  # it exited: say why, from what it wrote
            log.flush()
            said = (server.directory / "generator.log").read_text(errors="replace").strip()
            raise RuntimeError(f"{exc}: {said.splitlines()[-1] if said else 'no message'}") from exc
        row["lost"] = final["lost"]
        if mode == "latency":
            latency_figures(row, final["latencies"].tolist())
            if final["bad_stamps"]:
                row["notes"].append(f"generator: {final['bad_stamps']} unreadable send times")
        if final["unanswered_pings"] or final["write_errors"]:
            row["notes"].append(
                f"generator: {final['unanswered_pings']} pings unanswered, "
                f"{final['write_errors']} write errors"
            )
        annotate(row)
        if spy is not None:
            spy.wait(timing.measure + 30)
    finally:
        cgen.close(plan)
        if gen is not None:
            gen.stop()
        if spy is not None and spy.poll() is None:
            spy.kill()
        server.stop()
        log.close()
    return row


def collect(sh: Shared, n: int, timeout: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        try:
            msg = sh.status.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise RuntimeError("workers did not finish in time") from None
        if msg[0] == "error":
            raise RuntimeError(f"worker {msg[1]}: {msg[2]}")
        if msg[0] == "done":
            out.append(msg[2])
    return out


def annotate(row: dict[str, Any]) -> None:
    notes: list[str] = row["notes"]
    cores = os.cpu_count() or 1
    gen = row.get("generator_cpu_pct")
    dmn = row.get("daemon_cpu_pct")
    if gen is not None and dmn is not None:
        if dmn < 85 and gen + dmn > 100 * cores * 0.9:
            notes.append("generator-bound: the machine's cores were busy, daemon had spare")
        elif gen + dmn > 100 * cores * 0.9:
            notes.append("all cores busy")
    if row.get("other_cpu_pct", 0) > 20:
        notes.append(f"other processes used {row['other_cpu_pct']:.0f}% CPU")
    if row.get("lost"):
        notes.append(f"{row['lost']} connections lost")


def start_profile(pid: int, directory: Path, name: str, timing: Timing) -> subprocess.Popen[bytes]:
    """Attach py-spy to the daemon for the measured window (collapsed stacks)."""
    exe = Path(sys.executable).with_name("py-spy")
    directory.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            str(exe) if exe.exists() else "py-spy",
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(timing.measure))),
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(directory / f"{name}.txt"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


COLUMNS = [
    ("workload", "workload", "{}"),
    ("members", "members", "{}"),
    ("server", "server", "{}"),
    ("variant", "variant", "{}"),
    ("deliveries_per_s", "deliv/s", "{:,}"),
    ("messages_per_s", "msgs/s", "{:,}"),
    ("daemon_cpu_pct", "srv CPU%", "{:.0f}"),
    ("generator_cpu_pct", "gen CPU%", "{:.0f}"),
    ("server_us_per_delivery", "srv µs/deliv", "{:.2f}"),
    ("p50_ms", "p50 ms", "{:.2f}"),
    ("p99_ms", "p99 ms", "{:.2f}"),
    ("max_ms", "max ms", "{:.1f}"),
    ("rss_per_conn_kib", "KiB/conn", "{:.1f}"),
    ("notes", "notes", "{}"),
]


def table(rows: list[dict[str, Any]]) -> str:
    cells = [[title for _, title, _ in COLUMNS]]
    for row in rows:
        line = []
        for key, _, fmt in COLUMNS:
            value = row.get(key)
            if key == "notes":
                line.append("; ".join(value or []))
            elif value is None:
                line.append("-")
            else:
                line.append(fmt.format(value))
        cells.append(line)
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    out = []
    for n, line in enumerate(cells):
        out.append(
            "  ".join(
                c.ljust(w) if i < 4 or i == 13 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


#: Each workload's servers, in the order they take turns.
SERVERS = [
    ("anonchatd", "plain"),
    ("anonchatd", "tls"),
    ("anonchatd", "secret"),
    ("ngircd", "plain"),
    ("relay", "raw"),
]


def plan(
    quick: bool, only: set[str], sizes: tuple[int, ...] | None = None
) -> list[tuple[str, int, str, str]]:
    """(mode, members, server, variant) points, in the order they run in one round."""
    points: list[tuple[str, int, str, str]] = []
    if sizes is None:
        sizes = (10, 100) if quick else (10, 100, 500)
    if "fanout" in only:
        for members in sizes:
            points += [("fanout", members, s, v) for s, v in SERVERS]
    if "fanout-ok" in only:  # the secondary row: windows freed by the daemon's answer
        for members in sizes:
            points += [("fanout-ok", members, s, v) for s, v in SERVERS[:4]]
    if "latency" in only:
        points += [("latency", 100, s, v) for s, v in SERVERS]
    if "capacity" in only:
        for members in (1000,) if quick else (1000, 10000):
            points += [("capacity", members, s, v) for s, v in SERVERS if v != "secret"]
    return points


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def _spread(values: list[float], fmt: str) -> str:
    """``median (min–max)`` of one figure over the rounds (just the value for one round)."""
    if not values:
        return "-"
    med = fmt.format(_median(values))
    if len(values) == 1:
        return med
    return f"{med} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def _mega(v: float) -> str:
    return f"{v / 1e6:.2f} M" if v >= 1e5 else f"{v / 1e3:.0f} k"


WORKLOAD_TITLES = {
    "fanout": "fan-out, each sender's window freed when another member received its messages",
    "fanout-ok": "fan-out, windows freed by the server's answer (secondary)",
    "latency": f"latency at {LATENCY_RATE:,.0f} msg/s, delivery to the other members",
    "capacity": "idle connections",
}


def summary(rows: list[dict[str, Any]], rounds: int) -> str:
    """The markdown tables: per workload and room size, every server's median
    (min–max over the rounds) and its ratio to ngircd's median."""
    groups: dict[tuple[str, int, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["workload"], row["members"], row["server"], row["variant"])
        groups.setdefault(key, []).append(row)

    def values(key: tuple[str, int, str, str], field: str) -> list[float]:
        return [r[field] for r in groups.get(key, []) if r.get(field) is not None]

    def notes(key: tuple[str, int, str, str]) -> str:
        """The rounds' notes, each kind once; a number in it becomes its largest."""
        kinds: dict[str, float] = {}
        for r in groups.get(key, []):
            for note in r.get("notes", []):
                numbers = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", note)]
                kind = re.sub(r"\d+(?:\.\d+)?", "{}", note)
                if numbers and kind.count("{}") == 1:
                    kinds[kind] = max(kinds.get(kind, 0.0), numbers[0])
                else:
                    kinds.setdefault(note.replace("{", "(").replace("}", ")"), 0.0)
        out = []
        for kind, most in kinds.items():
            if "{}" in kind:
                out.append(kind.format(("≤" if len(groups[key]) > 1 else "") + f"{most:g}"))
            else:
                out.append(kind)
        return "; ".join(out)

    out: list[str] = []
    workloads = list(dict.fromkeys(k[0] for k in groups))
    for workload in workloads:
        times = f"{rounds} rounds: median (min–max)" if rounds > 1 else "1 round"
        out.append(f"**{WORKLOAD_TITLES.get(workload, workload)}** ({times})\n")
        if workload == "capacity":
            out.append(
                "| connections | server | KiB per connection | ratio to ngircd "
                "| second half, KiB per connection | notes |"
            )
            out.append("|---|---|---|---|---|---|")
        elif workload == "latency":
            out.append(
                "| members | server | p50 ms | p99 ms | p50, p99 ratio to ngircd "
                "| srv CPU % | notes |"
            )
            out.append("|---|---|---|---|---|---|---|")
        else:
            out.append(
                "| members | server | deliveries/s | ratio to ngircd | srv µs/delivery "
                "| srv CPU % | gen CPU % | notes |"
            )
            out.append("|---|---|---|---|---|---|---|---|")
        keys = [k for k in groups if k[0] == workload]
        for key in keys:
            _, members, server, variant = key
            name = server if variant in ("plain", "raw") else f"{server} {variant}"
            ref = (workload, members, "ngircd", "plain")

            def ratio(
                field: str,
                k: tuple[str, int, str, str] = key,
                ref: tuple[str, int, str, str] = ref,
            ) -> str:
                mine, theirs = values(k, field), values(ref, field)
                if not mine or not theirs or not _median(theirs):
                    return "-"
                return f"{_median(mine) / _median(theirs):.2f}x"

            if workload == "capacity":
                cells = [
                    str(members),
                    name,
                    _spread(values(key, "rss_per_conn_kib"), "{:.2f}"),
                    ratio("rss_per_conn_kib"),
                    _spread(values(key, "rss_second_half_kib"), "{:.2f}"),
                ]
            elif workload == "latency":
                cells = [
                    str(members),
                    name,
                    _spread(values(key, "p50_ms"), "{:.2f}"),
                    _spread(values(key, "p99_ms"), "{:.2f}"),
                    f"{ratio('p50_ms')}, {ratio('p99_ms')}",
                    _spread(values(key, "daemon_cpu_pct"), "{:.0f}"),
                ]
            else:
                deliveries = values(key, "deliveries_per_s")
                med = _mega(_median(deliveries)) if deliveries else "-"
                if len(deliveries) > 1:
                    med += f" ({_mega(min(deliveries))}–{_mega(max(deliveries))})"
                cells = [
                    str(members),
                    name,
                    med,
                    ratio("deliveries_per_s"),
                    _spread(values(key, "server_us_per_delivery"), "{:.2f}"),
                    _spread(values(key, "daemon_cpu_pct"), "{:.0f}"),
                    _spread(values(key, "generator_cpu_pct"), "{:.0f}"),
                ]
            out.append("| " + " | ".join([*cells, notes(key)]) + " |")
        out.append("")
    return "\n".join(out)


def _git_head() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        head = ""
    return head or "unknown"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--quick", action="store_true", help="fewer points, shorter measurements")
    p.add_argument(
        "--only", default="fanout,fanout-ok,latency,capacity", help="comma-separated workloads"
    )
    p.add_argument("--rounds", type=int, default=3, help="times the whole plan runs (default 3)")
    p.add_argument(
        "--members", help="fan-out room sizes, comma-separated (default 10,100,500; quick 10,100)"
    )
    p.add_argument("--json", metavar="FILE", help="write every point's results as JSON here")
    p.add_argument("--markdown", metavar="FILE", help="write the summary tables here too")
    p.add_argument("--measure", type=float, help="seconds measured per point (default 5, quick 2)")
    p.add_argument("--profile", metavar="DIR", help="py-spy the daemon during fan-out (raw stacks)")
    p.add_argument("--no-ngircd", action="store_true", help="skip the ngircd reference")
    p.add_argument(
        "--generator",
        choices=("c", "python"),
        default="c",
        help="the fan-out and latency load generator: c (benchmarks/fanout.c, built with cc; "
        "default) or python (benchmarks/load.py, ircload.py)",
    )
    args = p.parse_args(argv)
    only = {w.strip() for w in args.only.split(",") if w.strip()}
    unknown = only - {"fanout", "fanout-ok", "latency", "capacity"}
    if unknown:
        p.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    timing = Timing(
        warmup=0.5 if args.quick else 1.0,
        measure=args.measure or (2.0 if args.quick else 5.0),
        settle=1.0,
    )
    raise_nofile(65_536)
    exe = None if args.no_ngircd else find_ngircd()
    if exe is None and not args.no_ngircd:
        print(f"benchmarks: {INSTALL_HINT}; its rows are marked 'not installed'", file=sys.stderr)
    info = machine()
    info["git"] = _git_head()
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        sizes = tuple(int(m) for m in args.members.split(",")) if args.members else None
    except ValueError:
        p.error("--members takes room sizes such as 10,100,500")
    if sizes is not None and min(sizes) < 2 * WORKERS:
        p.error(f"--members: a room needs at least {2 * WORKERS} members")
    points = plan(args.quick, only, sizes)
    args.c_exe = None
    if args.generator == "c" and only & set(C_WORKLOADS):
        try:
            args.c_exe = cgen.build()
        except cgen.NoCompiler as exc:
            print(f"benchmarks: {exc}", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="anonchat-bench-") as tmp:
        for rnd in range(args.rounds):
            for i, (mode, members, server_name, variant) in enumerate(points):
                rows.append(
                    one_point(
                        Path(tmp) / f"r{rnd}p{i}",
                        (mode, members, server_name, variant),
                        exe,
                        args,
                        timing,
                        f"[{time.monotonic() - started:5.0f} s] round {rnd + 1}/{args.rounds}",
                    )
                )
                rows[-1]["round"] = rnd + 1
    print(table(rows), file=sys.stderr)
    text = summary(rows, args.rounds)
    footer = (
        f"{info['cpu_model']}, {info['cores']} cores, Python {info['python']}, "
        f"uvloop {info['uvloop']}, {info['ngircd'] or 'ngircd not installed'}, "
        f"git {info['git']}; fan-out generator: {generator_name(args)}; "
        f"{len(points)} points x {args.rounds} rounds, "
        f"{timing.measure:g} s measured each; {time.monotonic() - started:.0f} s"
    )
    print(text)
    print(footer)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n" + footer + "\n", encoding="utf-8")
    if args.json:
        with contextlib.suppress(OSError):
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": info,
                    "timing": timing.__dict__,
                    "rounds": args.rounds,
                    "workers": WORKERS,
                    "senders": SENDERS,
                    "window": WINDOW,
                    "latency_rate": LATENCY_RATE,
                    "fanout_generator": generator_name(args),
                    "rows": rows,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return 0


def generator_name(args: argparse.Namespace) -> str:
    if args.c_exe is None:
        return "Python (benchmarks/load.py, ircload.py)"
    if cgen.has_tls(args.c_exe):
        return "C (benchmarks/fanout.c, with TLS; secret rooms: Python)"
    return "C (benchmarks/fanout.c, without TLS; TLS and secret rooms: Python)"


def one_point(
    directory: Path,
    point: tuple[str, int, str, str],
    exe: str | None,
    args: argparse.Namespace,
    timing: Timing,
    label: str,
) -> dict[str, Any]:
    mode, members, server_name, variant = point
    base = {"workload": mode, "members": members, "server": server_name, "variant": variant}
    if server_name == "ngircd" and exe is None:
        return {**base, "notes": ["not installed" if not args.no_ngircd else "skipped"]}
    directory.mkdir()
    server: Server
    if server_name == "ngircd" and exe is not None:
        server = IrcServer(exe, directory)
    elif server_name == "relay":
        server = RelayServer(directory)
    else:
        server = Anonchatd(directory, variant)
    print(f"{label} {mode} {members} {server_name} {variant} ...", file=sys.stderr, flush=True)
    try:
        return run_point(
            server,
            mode,
            members,
            timing,
            Path(args.profile) if args.profile and mode.startswith("fanout") else None,
            args.c_exe,
        )
    except Exception as exc:
        return {**base, "notes": [f"failed: {exc}"]}


if __name__ == "__main__":
    sys.exit(main())
