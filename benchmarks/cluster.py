"""Fan-out across several nodes sharing one Redis, against one node.

    python -m benchmarks.cluster [--members 100,500] [--measure 5] [--json out.json]

For each room size it runs the fan-out workload of ``benchmarks.run`` three
times, each with fresh processes:

* ``1 node``: one anonchatd, the in-process bus (the default);
* ``1 node + redis``: one anonchatd with ``--redis``: every command goes
  through the Redis stream and comes back, so this row is the bus's cost;
* ``2 nodes + redis``: two anonchatd nodes on one Redis; the load
  generator's two workers connect one to each node, so half the members and
  half the senders are on each, and every message crosses the stream.

"Server CPU" counts every anonchatd process and redis-server.  Deliveries
are counted by the receivers, as in ``benchmarks.run``.  See
docs/performance.md for a run and what it shows on a two-core machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .ngircd import free_port, stop_process, wait_listening
from .procstat import machine, raise_nofile
from .run import Anonchatd, Timing, run_point, table


class Cluster(Anonchatd):
    """``nodes`` anonchatd processes, with one redis-server when ``redis`` is set."""

    name = "anonchatd"

    def __init__(self, directory: Path, nodes: int, redis: bool) -> None:
        super().__init__(directory, "plain")
        self.nodes = nodes
        self.redis = redis
        self.variant = f"{nodes} node{'s' if nodes > 1 else ''}" + (" + redis" if redis else "")
        self.ports = [self.port] + [free_port() for _ in range(nodes - 1)]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.redis_proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        extra: list[str] = []
        if self.redis:
            port = free_port()
            self.redis_proc = subprocess.Popen(
                [
                    *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            wait_listening(port, self.redis_proc, 10.0)
            extra = ["--redis", f"redis://127.0.0.1:{port}/0"]
        self.log = open(self.directory / "anonchatd.log", "wb")  # noqa: SIM115
        self.procs = [self.spawn(port, *extra) for port in self.ports]
        self.proc = self.procs[0]
        self.pid = self.proc.pid

    def pids(self) -> list[int]:
        pids = [p.pid for p in self.procs]
        if self.redis_proc is not None:
            pids.append(self.redis_proc.pid)
        return pids

    def port_for(self, worker: int) -> int:
        return self.ports[worker % len(self.ports)]

    def stop(self) -> None:
        for proc in [*self.procs, *([self.redis_proc] if self.redis_proc else [])]:
            stop_process(proc, 10)
        self.log.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.cluster", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--members", default="100,500", help="comma-separated room sizes")
    p.add_argument("--measure", type=float, default=5.0, help="seconds measured per point")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON here")
    args = p.parse_args(argv)
    timing = Timing(warmup=1.0, measure=args.measure, settle=1.0)
    raise_nofile(65_536)
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="anonchat-cluster-") as tmp:
        for members in (int(m) for m in args.members.split(",")):
            for nodes, redis in ((1, False), (1, True), (2, True)):
                directory = Path(tmp) / f"{members}-{nodes}-{redis}"
                directory.mkdir()
                server = Cluster(directory, nodes, redis)
                print(
                    f"[{time.monotonic() - started:4.0f} s] fanout {members} {server.variant}",
                    file=sys.stderr,
                    flush=True,
                )
                try:
                    rows.append(run_point(server, "fanout", members, timing, None))
                except Exception as exc:
                    rows.append(
                        {
                            "workload": "fanout",
                            "members": members,
                            "server": "anonchatd",
                            "variant": server.variant,
                            "notes": [f"failed: {exc}"],
                        }
                    )
    print(table(rows))
    info = machine()
    print(
        f"\n{info['cpu_model']}, {info['cores']} cores, Python {info['python']}; "
        f"{time.monotonic() - started:.0f} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
