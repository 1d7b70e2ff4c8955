"""Work per node when rooms are spread over nodes: python -m benchmarks.spread

Issue 19's measure of scale-out.  For 1, 2 and 3 anonchatd nodes on one
Redis, ``rooms`` public rooms of ``members`` members each, one sender per
room, and a fixed total message rate (1,000 msg/s by default), in two
layouts:

* ``spread``: all members of room *r* connect to node *r* mod N, so no room
  has members on two nodes (disjoint rooms: the case partitioning is for);
* ``one node``: every member connects to node 0, and the other nodes serve
  nobody: what they spend is what a node spends on rooms it does not serve.

Each node's CPU (user + system, from /proc) is read over the measured window
and divided by the messages the senders sent in it: **µs of each node's CPU
per service-wide message**.  With one log that every node reads whole and
applies whole, that figure does not fall as nodes are added, and an idle node
costs a good part of a busy one; with the log partitioned by room it should
fall as 1/N for spread rooms and be near nothing on a node that serves none.
This is a ratio of work, not a throughput claim: on a two-core machine the
nodes share the cores.

The generator is this process: full :class:`anonchat.client.Client` sessions
(the shared protocol layer), senders paced on a fixed schedule; it is light
at these rates (a few thousand deliveries a second).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from anonchat import events as ev
from anonchat.client import Client

from .cluster import Cluster
from .common import stamp_text
from .procstat import cpu_seconds, machine, raise_nofile

LAYOUTS = ("spread", "one node")


async def drain(client: Client, counts: list[int]) -> None:
    """Count the messages ``client`` receives (counts[0]) until it closes."""
    async for event in client.events():
        if isinstance(event, ev.Msg):
            counts[0] += 1


async def measure(
    cluster: Cluster,
    layout: str,
    rooms: int,
    members: int,
    rate: float,
    warmup: float,
    seconds: float,
) -> dict[str, Any]:
    nodes = len(cluster.ports)
    clients: list[Client] = []
    drains: list[asyncio.Task[None]] = []
    received = [0]
    senders: list[tuple[Client, str]] = []
    try:
        for r in range(rooms):
            port = cluster.ports[r % nodes if layout == "spread" else 0]
            room = f"room{r}"
            for m in range(members):
                client = await Client.connect("127.0.0.1", port, nick=f"r{r}m{m}", tls=False)
                clients.append(client)
                await client.join_or_create(room)
                drains.append(asyncio.create_task(drain(client, received)))
                if m == 0:
                    senders.append((client, room))
        sent = [0]
        interval = len(senders) / rate  # each sender's share of the rate

        async def send(client: Client, room: str, offset: float) -> None:
            loop = asyncio.get_running_loop()
            due = loop.time() + offset
            text = stamp_text()
            while True:
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await client.say(room, text)
                sent[0] += 1
                due += interval

        tasks = [
            asyncio.create_task(send(c, room, i * interval / len(senders)))
            for i, (c, room) in enumerate(senders)
        ]
        await asyncio.sleep(warmup)
        pids = [p.pid for p in cluster.procs]
        assert cluster.redis_proc is not None
        redis_pid = cluster.redis_proc.pid
        cpu0 = [cpu_seconds(pid) for pid in pids]
        redis0 = cpu_seconds(redis_pid)
        sent0, received0, t0 = sent[0], received[0], time.monotonic()
        await asyncio.sleep(seconds)
        cpu1 = [cpu_seconds(pid) for pid in pids]
        redis1 = cpu_seconds(redis_pid)
        sent1, received1, t1 = sent[0], received[0], time.monotonic()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
        for task in drains:
            task.cancel()
    elapsed = t1 - t0
    messages = max(sent1 - sent0, 1)
    used = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    return {
        "nodes": nodes,
        "layout": layout,
        "rooms": rooms,
        "members": members,
        "msg_per_s": messages / elapsed,
        "deliveries_per_s": (received1 - received0) / elapsed,
        "node_cpu_pct": [100 * u / elapsed for u in used],
        "node_us_per_msg": [1e6 * u / messages for u in used],
        "total_us_per_msg": 1e6 * sum(used) / messages,
        "redis_cpu_pct": 100 * (redis1 - redis0) / elapsed,
    }


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| nodes | layout | msg/s | CPU % of a core, each node | µs per service-wide "
        "message, each node | all nodes, µs per message | redis CPU % |",
        "|---:|---|---:|---|---|---:|---:|",
    ]
    for row in rows:
        if "failed" in row:
            out.append(f"| {row['nodes']} | {row['layout']} | failed: {row['failed']} | | | | |")
            continue
        cpu = " / ".join(f"{v:.1f}" for v in row["node_cpu_pct"])
        per = " / ".join(f"{v:.0f}" for v in row["node_us_per_msg"])
        out.append(
            f"| {row['nodes']} | {row['layout']} | {row['msg_per_s']:,.0f} | {cpu} | {per} "
            f"| {row['total_us_per_msg']:.0f} | {row['redis_cpu_pct']:.1f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.spread", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--nodes", default="1,2,3", help="comma-separated node counts")
    p.add_argument("--rooms", type=int, default=6, help="public rooms (default 6)")
    p.add_argument("--members", type=int, default=5, help="members per room (default 5)")
    p.add_argument("--rate", type=float, default=1000.0, help="messages/s, service-wide")
    p.add_argument("--measure", type=float, default=5.0, help="seconds measured per point")
    p.add_argument("--layouts", default=",".join(LAYOUTS), help="spread, one node")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON here")
    args = p.parse_args(argv)
    raise_nofile(65_536)
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    layouts = [name.strip() for name in args.layouts.split(",")]
    with tempfile.TemporaryDirectory(prefix="anonchat-spread-") as tmp:
        for nodes in (int(n) for n in args.nodes.split(",")):
            for layout in layouts:
                if layout not in LAYOUTS:
                    p.error(f"unknown layout {layout!r} (spread, one node)")
                if nodes == 1 and layout != LAYOUTS[0]:
                    continue  # with one node both layouts are the same
                directory = Path(tmp) / f"{nodes}-{layout.replace(' ', '-')}"
                directory.mkdir()
                cluster = Cluster(directory, nodes, redis=True)
                print(
                    f"[{time.monotonic() - started:4.0f} s] {nodes} node(s), {layout}",
                    file=sys.stderr,
                    flush=True,
                )
                cluster.start()
                try:
                    rows.append(
                        asyncio.run(
                            measure(
                                cluster,
                                layout,
                                args.rooms,
                                args.members,
                                args.rate,
                                1.0,
                                args.measure,
                            )
                        )
                    )
                except Exception as exc:
                    rows.append({"nodes": nodes, "layout": layout, "failed": repr(exc)})
                finally:
                    cluster.stop()
    print(table(rows))
    info = machine()
    print(
        f"\n{info['cpu_model']}, {info['cores']} cores, Python {info['python']}; "
        f"{args.rooms} rooms of {args.members}, {args.rate:.0f} msg/s asked; "
        f"{time.monotonic() - started:.0f} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
