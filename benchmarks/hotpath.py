"""The daemon's per-message CPU, without sockets: python -m benchmarks.hotpath

A real :class:`~anonchat.daemon.server.Daemon` (one node) with real
sessions, whose transports only count what they are given.  Senders' ``say``
frames go in through the same call the event loop makes for a read
(``Session.buffer_updated``), and the daemon's per-pass flush runs after each
round, so every line of the hot path runs: decoding and checking the frame,
the rate limit, applying the command, encoding the message once, queueing it
for every member, the ``ok``, and joining each member's frames for its
write.  What it leaves out is the kernel: the write system calls, which the
socket benchmarks (``benchmarks.run``) measure.

It prints microseconds of daemon CPU per message and per delivery, for rooms
of 10, 100 and 500 members, 4 senders sending 8 messages each per pass (32
messages a pass, as many as the fan-out benchmark's 8 senders keep in flight
with their windows of 4; the shape is kept so that figures stay comparable
with earlier ones).  Use it to compare two versions of the hot path, run
alternately on the same machine; ``benchmarks.run`` remains the measure
against ngircd.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from typing import Any

from anonchat import events as ev
from anonchat.daemon.config import Config, Limits
from anonchat.daemon.server import Daemon
from anonchat.wire import encode_frame

from .common import stamp_text
from .run import LIFTED_LIMITS

SENDERS = 4
PER_PASS = 8  # messages each sender sends per pass (32 in all)


class CountingTransport:
    """Just enough of an asyncio transport: writes are counted, not sent."""

    def __init__(self) -> None:
        self.writes = 0
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.bytes += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def _frame(frame: ev.Frame) -> bytes:
    return encode_frame(frame.to_wire())


def _feed(session: Any, data: bytes) -> None:
    """What the transport does with one read (the daemon's shared read buffer)."""
    session.daemon.read_buffer[: len(data)] = data
    session.buffer_updated(len(data))


def _flush(daemon: Daemon) -> None:
    daemon._flush_urgent()
    daemon.flush_rooms()


async def measure(members: int, rounds: int) -> dict[str, float]:
    lifted: dict[str, Any] = {k: v for k, v in LIFTED_LIMITS.items() if hasattr(Limits(), k)}
    limits = Limits(**lifted)
    daemon = Daemon(Config(host="127.0.0.1", port=0, plaintext=True, limits=limits))
    sessions = []
    for n in range(members):
        session = daemon._new_session(daemon.per_address.key_of("127.0.0.1"), None)
        session.connection_made(CountingTransport())  # type: ignore[arg-type]
        _feed(session, _frame(ev.ClientHello(v=ev.PROTOCOL_VERSION, nick=f"m{n}")))
        enter = ev.Create(id=1, room="#bench") if n == 0 else ev.Join(id=1, room="#bench")
        _feed(session, _frame(enter))
        _flush(daemon)
        sessions.append(session)
    senders = sessions[:SENDERS]
    say = _frame(ev.Say(id=2, room="#bench", text=stamp_text()))
    chunk = say * PER_PASS
    for _ in range(3):  # warm up
        for s in senders:
            _feed(s, chunk)
        _flush(daemon)
    gc.collect()
    t0 = time.process_time()
    for _ in range(rounds):
        for s in senders:
            _feed(s, chunk)
        _flush(daemon)
    elapsed = time.process_time() - t0
    messages = rounds * SENDERS * PER_PASS
    deliveries = messages * members
    return {
        "members": members,
        "us_per_message": 1e6 * elapsed / messages,
        "us_per_delivery": 1e6 * elapsed / deliveries,
        "messages_per_s": messages / elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.hotpath", description=__doc__)
    p.add_argument("--members", default="10,100,500", help="comma-separated room sizes")
    p.add_argument("--messages", type=int, default=60_000, help="messages per room size")
    args = p.parse_args(argv)
    print(f"{'members':>8} {'µs/message':>11} {'µs/delivery':>12} {'messages/s':>11}")
    for members in (int(m) for m in args.members.split(",")):
        rounds = max(1, args.messages // (SENDERS * PER_PASS) * 10 // max(10, members // 10))
        row = asyncio.run(measure(members, rounds))
        print(
            f"{row['members']:>8} {row['us_per_message']:>11.2f} "
            f"{row['us_per_delivery']:>12.3f} {row['messages_per_s']:>11,.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
