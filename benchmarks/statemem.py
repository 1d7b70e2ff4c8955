"""What every node holds per member and per room today: python -m benchmarks.statemem

With one log that every node applies whole (issue 19), every node holds every
member and every room of the service.  This applies real commands
(``state.apply``) to a :class:`~anonchat.daemon.shared.SharedState` -- 20,000
sessions of another node, 2,000 rooms of 10 members, then enough messages to
fill each room's ring -- and reports with tracemalloc the bytes each unit
takes.  docs/operations.md's capacity model uses these figures.
"""

from __future__ import annotations

import gc
import secrets
import tracemalloc

from anonchat.daemon import commands as c
from anonchat.daemon import state
from anonchat.daemon.config import Limits
from anonchat.daemon.shared import SharedState

SESSIONS, ROOMS, MEMBERS, TEXT = 20_000, 2_000, 10, "x" * 100


class Counted:
    """The counters applying commands bumps (metrics.Stats), kept nowhere."""

    resumes = announcements = direct = handovers = nodes_gone = nodes_down = 0

    def message(self, node: str, ts: int, sealed: bool = False) -> None:
        pass


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def main() -> None:
    limits = Limits(max_rooms=ROOMS * 2, max_members_per_room=1000)
    shared = SharedState("here", limits, 10.0, Counted(), to_flush=lambda channel: None)
    tracemalloc.start()
    start = traced()
    for i in range(SESSIONS):
        uid = f"u{i:08d}"
        hello = c.Hello(uid, "elsewhere", f"user{i}", False, secrets.token_bytes(32), None, [])
        state.apply(shared, hello, 1000)
    members = traced()
    for r in range(ROOMS):
        state.apply(shared, c.Create(f"u{r * MEMBERS:08d}", 1, f"room{r}", ""), 1000)
        for k in range(1, MEMBERS):
            state.apply(shared, c.Join(f"u{r * MEMBERS + k:08d}", 1, f"room{r}"), 1000)
    rooms = traced()
    for r in range(ROOMS):
        for k in range(limits.ring_frames):
            say = c.Say(f"u{r * MEMBERS + k % MEMBERS:08d}", 2, f"room{r}", TEXT, False)
            state.apply(shared, say, 2000 + k)
    full = traced()
    print(f"a member of another node: {(members - start) / SESSIONS:.0f} bytes")
    print(f"a room of {MEMBERS}, its joins in its ring: {(rooms - members) / ROOMS:.0f} bytes")
    print(
        f"a room whose ring is full ({limits.ring_frames} messages of {len(TEXT)} characters): "
        f"{(full - members) / ROOMS / 1024:.1f} KiB"
    )


if __name__ == "__main__":
    main()
