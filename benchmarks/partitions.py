"""How a node could read only its rooms' traffic from Redis: python -m benchmarks.partitions

Issue 19 asks for the log to be split by room, so that a node reads only
the traffic of rooms that have a member on it, and for the choice of layout
to be measured.  This measures the Redis side of that choice, before any of
it is built: a writer process appends a fixed service-wide message rate
spread evenly over ``rooms`` rooms, and a reader process -- one node, with
the client the daemon uses (redis-py's asyncio client) -- follows the rooms
it serves (``served`` of them, chosen at random, as the rooms a node's users
happen to be in), in five layouts:

* ``one stream``: today's: every message in one stream; the node reads all.
* ``hash P=16``, ``hash P=256``: each room's messages in stream
  hash(room) mod P; the node reads (``XREAD BLOCK``) every partition holding
  one of its rooms, and drops the other rooms' messages it reads.
* ``stream per room``: one stream per room; the node reads its rooms' streams
  with one ``XREAD BLOCK`` naming all of them.
* ``pub/sub per room``: one capped stream per room for history (as above),
  and the entry also published on the room's channel in the same script; the
  node subscribes to its rooms' channels (no key list per read).

For each it reports the reader's CPU and redis-server's CPU per service-wide
message, and how many of the messages the reader received were for rooms it
does not serve.  A ratio of work on one machine, not a throughput claim.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import random
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from .ngircd import free_port, wait_listening
from .procstat import cpu_seconds

LAYOUTS = ("one stream", "hash P=16", "hash P=256", "stream per room", "pub/sub per room")
#: One message as the log would carry it (a msgpack'd command is about this size).
PAYLOAD = b"x" * 120
#: Entries a room's history stream keeps (XADD MAXLEN ~).
HISTORY = 256

#: Append one entry to a room's history and publish it on the room's channel,
#: atomically: the published copy names its stream id, so a subscriber that
#: missed some (a dropped connection) knows what to fetch with XRANGE.
APPEND_PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'c', ARGV[2])
redis.call('PUBLISH', ARGV[1], id)
return id
"""


def room_stream(layout: str, room: int) -> str:
    """The stream a room's messages go to in ``layout``."""
    if layout == "one stream":
        return "log"
    if layout.startswith("hash P="):
        parts = int(layout.split("=", 1)[1])
        return f"p:{zlib.crc32(b'room%d' % room) % parts}"
    return f"room:{room}"


def writer(url: str, layout: str, rooms: int, rate: float, stop: Any, ready: Any) -> None:
    async def main() -> None:
        client = aioredis.from_url(url)
        script = client.register_script(APPEND_PUBLISH)
        interval = 1.0 / rate
        ready.set()
        loop = asyncio.get_running_loop()
        due = loop.time()
        n = 0
        while not stop.is_set():
            room = n % rooms
            n += 1
            key = room_stream(layout, room)
            if layout == "pub/sub per room":
                await script(keys=[key], args=[f"ch:{room}", PAYLOAD, HISTORY])
            else:
                await client.xadd(key, {"r": room, "c": PAYLOAD}, maxlen=100_000, approximate=True)
            due += interval
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        await client.aclose()

    asyncio.run(main())


def reader(url: str, layout: str, served: list[int], counts: Any, stop: Any, ready: Any) -> None:
    """Follow the served rooms; count messages kept (ours) and dropped (others')."""
    mine = set(served)

    async def main() -> None:
        client = aioredis.from_url(url)
        if layout == "pub/sub per room":
            pubsub = client.pubsub()
            await pubsub.subscribe(*[f"ch:{room}" for room in served])
            ready.set()
            while not stop.is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if message is not None:
                    counts[0] += 1
            await pubsub.aclose()
        else:
            keys = sorted({room_stream(layout, room) for room in served})
            last: dict[Any, Any] = dict.fromkeys(keys, "$")
            ready.set()
            while not stop.is_set():
                reply: Any = await client.xread(last, count=1000, block=200)
                for key, entries in reply or ():
                    for _id, fields in entries:
                        if int(fields[b"r"]) in mine:
                            counts[0] += 1
                        else:
                            counts[1] += 1
                    last[key.decode()] = entries[-1][0]
        await client.aclose()

    asyncio.run(main())


def run_layout(
    url: str,
    redis_pid: int,
    layout: str,
    rooms: int,
    served: list[int],
    rate: float,
    measure: float,
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    stop, w_ready, r_ready = ctx.Event(), ctx.Event(), ctx.Event()
    counts = ctx.Array("q", 2, lock=False)
    r = ctx.Process(target=reader, args=(url, layout, served, counts, stop, r_ready), daemon=True)
    r.start()
    r_ready.wait(30)
    w = ctx.Process(target=writer, args=(url, layout, rooms, rate, stop, w_ready), daemon=True)
    w.start()
    w_ready.wait(30)
    time.sleep(1.0)  # (warm up)
    assert r.pid is not None
    kept0, dropped0 = counts[0], counts[1]
    t0, r0, s0 = time.monotonic(), cpu_seconds(r.pid), cpu_seconds(redis_pid)
    time.sleep(measure)
    t1, r1, s1 = time.monotonic(), cpu_seconds(r.pid), cpu_seconds(redis_pid)
    kept, dropped = counts[0] - kept0, counts[1] - dropped0
    stop.set()
    for p in (w, r):
        p.join(10)
        if p.is_alive():
            p.kill()
    sent = rate * (t1 - t0)  # (paced: the writer keeps its schedule at these rates)
    return {
        "layout": layout,
        "rooms": rooms,
        "served": len(served),
        "rate": rate,
        "reader_cpu_pct": round(100 * (r1 - r0) / (t1 - t0), 1),
        "reader_us_per_msg": round(1e6 * (r1 - r0) / sent, 1),
        "redis_us_per_msg": round(1e6 * (s1 - s0) / sent, 1),
        "kept": kept,
        "dropped": dropped,
        "dropped_pct": round(100 * dropped / max(1, kept + dropped), 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rooms", type=int, default=1000, help="rooms service-wide (default 1000)")
    p.add_argument("--served", default="10,100", help="rooms the node serves, comma-separated")
    p.add_argument("--rate", type=float, default=1000.0, help="messages/s, service-wide")
    p.add_argument("--measure", type=float, default=4.0, help="seconds measured per point")
    p.add_argument("--layouts", default=",".join(LAYOUTS), help="comma-separated")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON here")
    args = p.parse_args()
    layouts = [name.strip() for name in args.layouts.split(",") if name.strip()]
    unknown = set(layouts) - set(LAYOUTS)
    if unknown:
        sys.exit(f"unknown layouts: {', '.join(sorted(unknown))} (known: {', '.join(LAYOUTS)})")
    rng = random.Random(19)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="anonchat-partitions-") as tmp:
        for served_n in (int(s) for s in args.served.split(",")):
            served = rng.sample(range(args.rooms), served_n)
            for layout in layouts:
                port = free_port()
                proc = subprocess.Popen(
                    [
                        *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
                        *("--save", "", "--appendonly", "no", "--dir", tmp),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.STDOUT,
                )
                try:
                    wait_listening(port, proc, 10.0)
                    url = f"redis://127.0.0.1:{port}/0"
                    row = run_layout(
                        url, proc.pid, layout, args.rooms, served, args.rate, args.measure
                    )
                finally:
                    proc.terminate()
                    proc.wait(10)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    print(
        "| rooms served | layout | reader CPU % | reader µs per service-wide message "
        "| redis µs per message | messages read for other rooms |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['served']} of {row['rooms']} | {row['layout']} | {row['reader_cpu_pct']} "
            f"| {row['reader_us_per_msg']} | {row['redis_us_per_msg']} | {row['dropped_pct']} % |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
