"""The daemon's message path on one node (issue 18): the ``say`` frames of one
read are handled together (``Session._say_run``), and every shortcut it takes
must give what the general way -- each frame through ``Session.on_say``, its
command submitted to the bus and applied by ``state.say`` -- gives.

The main test runs the same arbitrary scenario on two real daemons, one with
the run path and one without (``Daemon.say_runs``), and compares everything a
client or the shared state could see: every byte written to every member,
write by write, who was closed or dropped and why, each room's numbers and
ring, the counters.  The daemons' sessions are fed their reads directly
(``buffer_updated``, as the transport does) and write into transports that
keep what they are given: over sockets a test could not say which frames
arrive in one read, and a run is exactly the frames of one read.  The clocks
are fixed (a message's log time is part of its bytes); the rate limit refills
too slowly to matter within a test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from anonchat import events as ev
from anonchat.bucket import TokenBucket
from anonchat.daemon import bus, session
from anonchat.daemon.config import Config, Limits
from anonchat.daemon.rooms import Ring
from anonchat.daemon.server import Daemon
from anonchat.daemon.session import Session
from anonchat.wire import decode_body, encode_body, encode_frame

NOW_MS = 1_733_300_000_123


# -- the byte templates --------------------------------------------------------


@given(
    room=st.text(min_size=1, max_size=ev.ROOM_MAX),
    nick=st.text(min_size=1, max_size=ev.NICK_MAX),
    text=st.one_of(
        st.text(min_size=1, max_size=40),
        st.sampled_from(["x" * n for n in (31, 32, 255, 256, ev.TEXT_MAX)]),
    ),
    seq=st.one_of(st.integers(0, ev.U63), st.sampled_from([127, 128, 255, 256, 1 << 16, 1 << 32])),
    rid=st.one_of(st.integers(0, ev.U63), st.sampled_from([127, 128, 255, 256, 1 << 16, 1 << 32])),
    ts=st.one_of(st.integers(0, ev.U63), st.just(NOW_MS)),
    me=st.booleans(),
)
def test_the_templates_make_msgs_and_oks_byte_for_byte(
    room: str, nick: str, text: str, seq: int, rid: int, ts: int, me: bool
) -> None:
    """A message made from the templates is the frame Msg encodes to (and the
    map Room.say encodes), its ok the frame Ok encodes to, for any values."""
    head, mid = session._msg_templates(room, ts, nick)
    packed_seq, packed_text = session._pack(seq), session._pack(text)
    body = b"".join(
        (session._MSG_ME_MAP if me else session._MSG_MAP, head, packed_seq, mid, packed_text)
    ) + (session._ME_TRUE if me else b"")
    data = session._HEADER_PACK(len(body)) + body
    msg = ev.Msg(room=room, seq=seq, ts=ts, nick=nick, text=text, me=me)
    assert data == encode_body(msg.to_wire())
    general = {"t": "msg", "room": room, "seq": seq, "ts": ts, "nick": nick, "text": text}
    if me:
        general["me"] = True
    assert data == encode_body(general)
    packed_id = session._pack(rid)
    ok = b"".join((session._OK_HEAD, packed_id, session._OK_SEQ, packed_seq))
    assert session._HEADER_PACK(len(ok)) + ok == encode_frame(ev.Ok(id=rid, seq=seq).to_wire())


# -- the pieces taken at once ------------------------------------------------------


@given(
    burst=st.integers(1, 50),
    interval=st.sampled_from([0.001, 0.1, 1.0, 7.0]),
    steps=st.lists(st.tuples(st.floats(0, 20), st.integers(1, 60)), max_size=12),
)
def test_taking_tokens_at_once_is_taking_them_one_by_one(
    burst: int, interval: float, steps: list[tuple[float, int]]
) -> None:
    """TokenBucket.take_up_to(n) grants as many as n takes at the same time
    would, and leaves the bucket exactly as they do (a run is never empty)."""
    now = 100.0
    at_once, one_by_one = TokenBucket(burst, interval, now), TokenBucket(burst, interval, now)
    for wait, count in steps:
        now += wait
        granted = at_once.take_up_to(count, now)
        assert granted == sum(not one_by_one.take(now) for _ in range(count))
        assert (at_once._tokens, at_once._stamp) == (one_by_one._tokens, one_by_one._stamp)


@given(
    max_frames=st.integers(1, 8),
    max_bytes=st.integers(1, 60),
    batches=st.lists(
        st.tuples(st.integers(0, 3), st.lists(st.integers(0, 30), max_size=6)), max_size=6
    ),
)
def test_a_ring_extended_at_once_keeps_what_adding_one_by_one_keeps(
    max_frames: int, max_bytes: int, batches: list[tuple[int, list[int]]]
) -> None:
    """Ring.extend_messages keeps what adding its frames one by one keeps: the
    frames, their numbers, their flags and the size, trimmed by count and by
    bytes -- after events that are not messages, and after a gap in the
    numbers (which empties the ring, as add does)."""
    at_once, one_by_one = Ring(max_frames, max_bytes), Ring(max_frames, max_bytes)
    seq = 0
    for gap, sizes in batches:
        if gap == 1:  # a presence event between two runs
            seq += 1
            for ring in (at_once, one_by_one):
                ring.add(seq, False, bytes(3))
        seq += gap // 3 * 5  # (gap 3: numbers skipped)
        first = seq + 1
        frames = [bytes([n % 256]) * size for n, size in enumerate(sizes, first)]
        seq += len(frames)
        at_once.extend_messages(first, frames)
        for n, data in enumerate(frames, first):
            one_by_one.add(n, True, data)
        assert at_once.entries() == one_by_one.entries()
        assert at_once._size == one_by_one._size
        assert at_once._last == one_by_one._last


# -- the run path against the general way ------------------------------------------


class KeptTransport:
    """Just enough of a transport: keeps every write, notes a close or an abort."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.ended = ""

    def write(self, data: bytes) -> None:
        assert not self.ended, "written after the end"
        self.writes.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return bool(self.ended)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None:
        self.ended = self.ended or "close"

    def abort(self) -> None:
        self.ended = self.ended or "abort"


#: The event loop's time in the scenarios (seconds).
LOOP_NOW = 5000.0


@contextlib.contextmanager
def fixed_clock() -> Iterator[None]:
    """Log times (the ``ts`` in each event's bytes) from one fixed clock: the
    run path's and the bus's (the general way's); and the loop's clock, which
    the rate limits read, fixed too: a refusal says how long to wait, which
    with a running clock would depend on how long the scenario took to get
    there (the first, slower call of a test once crossed a second)."""
    with (
        mock.patch.object(session, "now_ms", lambda: NOW_MS),
        mock.patch.object(bus, "now_ms", lambda: NOW_MS),
        mock.patch.object(asyncio.BaseEventLoop, "time", lambda self: LOOP_NOW),
    ):
        yield


def frame_bytes(frame: ev.Frame) -> bytes:
    return encode_body(frame.to_wire())


#: What the scenarios' ``say`` frames are made of.
ROOMS = ["r1", "R1", "r2", "r3", "nowhere"]  # alice is in r1 and r2 (r2 is slow), not r3
TEXTS = [
    "hello",
    "héllo, wörld",
    "tab\tand\nnewline",
    "t" * 40,  # max_text
    "t" * 41,  # one past it
    "é" * 21,  # 42 bytes of UTF-8: past it
    "",
    "   ",
    "bell\x07",
    "del \x7f and \u2028",  # (not printable: only DEL is refused)
    "\u2028 ok",
]
#: The other frames a run may be cut by.
OTHERS: list[Any] = [
    ev.Ping(n=3),
    ev.Who(id=90, room="r1"),
    ev.ListRooms(id=91),
    ev.Leave(id=92, room="r1"),
    ev.Join(id=93, room="r1"),
    ev.SetNick(id=94, nick="alicia"),
    ev.SetTopic(id=95, room="r1", topic="new"),
]

say_st = st.builds(
    lambda rid, room, text, me: ev.Say(id=rid, room=room, text=text, me=me),
    st.one_of(st.integers(0, 300), st.just(ev.U63)),
    st.sampled_from(ROOMS),
    st.sampled_from(TEXTS),
    st.booleans(),
)
#: One read of alice's: mostly says, sometimes another frame, maybe a broken one last.
read_st = st.tuples(
    st.lists(st.one_of(say_st, say_st, say_st, st.sampled_from(OTHERS)), min_size=1, max_size=12),
    st.sampled_from([None, None, None, "bad field", "bad msgpack"]),
)
#: What happens in the daemon between alice's reads.
step_st = st.one_of(
    read_st,
    st.just("flush"),
    st.just("bob says"),
    st.just("carol says"),
)


async def scenario(
    runs: bool, steps: list[Any], burst: int, strikes: int, sendq: int
) -> dict[str, Any]:
    """Everything the clients and the shared state saw of ``steps``."""
    limits = Limits(
        max_text=40,
        msg_burst=burst,
        msg_rate=0.001,  # nothing refills within a test
        flood_strikes=strikes,
        sendq=sendq,
        max_per_address=100,
        room_join_burst=1000,
        nick_burst=1000,
        query_burst=1000,
        bytes_burst=1 << 30,
        bytes_rate=1 << 30,
    )
    daemon = Daemon(Config(host="127.0.0.1", port=0, plaintext=True, limits=limits))
    daemon.say_runs = runs
    sessions: dict[str, Session] = {}
    transports: dict[str, KeptTransport] = {}

    def feed(nick: str, data: bytes) -> None:
        daemon.read_buffer[: len(data)] = data
        sessions[nick].buffer_updated(len(data))

    passes: list[tuple[list[str], list[str]]] = []  # what each pass had to write

    def flush() -> None:
        passes.append(
            (
                [m.nick for m in daemon._urgent],
                [getattr(r, "name", "?") for r in daemon._rooms_to_flush],
            )
        )
        daemon._flush_urgent()
        daemon.flush_rooms()

    for nick in ("bob", "carol", "alice"):
        s = daemon._new_session(daemon.per_address.key_of("127.0.0.1"), None)
        transports[nick] = KeptTransport()
        s.connection_made(transports[nick])  # type: ignore[arg-type]
        sessions[nick] = s
        feed(nick, frame_bytes(ev.ClientHello(v=ev.PROTOCOL_VERSION, nick=nick)))
    feed("bob", frame_bytes(ev.Create(id=1, room="r1")) + frame_bytes(ev.Create(id=2, room="r3")))
    feed("carol", frame_bytes(ev.Create(id=1, room="r2")))
    feed("carol", frame_bytes(ev.RoomMode(id=2, room="r2", slow=30)))
    feed("alice", frame_bytes(ev.Join(id=1, room="r1")) + frame_bytes(ev.Join(id=2, room="r2")))
    flush()
    for transport in transports.values():
        transport.writes.clear()  # (the hellos hold random challenges and tokens)

    said = 0
    for step in steps:
        if step == "flush":
            flush()
        elif step in ("bob says", "carol says"):
            nick = step.split()[0]
            said += 1
            room = "r1" if nick == "bob" else "r2"
            feed(nick, frame_bytes(ev.Say(id=said, room=room, text=f"{nick} {said}")))
        else:
            frames, broken = step
            data = b"".join(map(frame_bytes, frames))
            if broken == "bad field":
                data += encode_body({"t": "say", "id": -1, "room": "r1", "text": "x"})
            elif broken == "bad msgpack":
                data += b"\x00\x00\x00\x01\xc1"
            feed("alice", data)
    flush()
    rooms = {
        name: (room.seq, room.ring.entries(), [m.nick for m in room.members], room.topic)
        for name, room in daemon.rooms.items()
    }
    return {
        "writes": {nick: t.writes for nick, t in transports.items()},
        "passes": passes,
        "ended": {nick: (t.ended, sessions[nick].close_code) for nick, t in transports.items()},
        "rooms": rooms,
        "messages": daemon.stats.messages,
        "errors": dict(daemon.stats.errors),
        "counted": {n: (s.submitted, s.done, s.nick) for n, s in sessions.items()},
    }


@settings(max_examples=300)
@example(  # an error reply takes the sender past sendq, and a message follows in its run
    steps=[
        ([ev.Say(id=n % 2 * ev.U63, room="r1", text="hello") for n in range(6)], None),
        (
            [
                ev.Ping(n=3),
                ev.ListRooms(id=91),
                ev.ListRooms(id=91),
                ev.Say(id=ev.U63, room="r1", text="hello"),
                ev.SetNick(id=94, nick="alicia"),
                ev.Say(id=0, room="r3", text="hello"),
                ev.Say(id=ev.U63, room="r1", text="hello"),
                ev.Ping(n=3),
            ],
            None,
        ),
    ],
    burst=9,
    strikes=1,
    sendq=1000,
)
@given(
    steps=st.lists(step_st, min_size=1, max_size=8),
    burst=st.integers(1, 30),
    strikes=st.integers(1, 6),
    sendq=st.sampled_from([1 << 20, 1000, 2500]),
)
def test_a_run_of_messages_is_handled_as_one_by_one(
    steps: list[Any], burst: int, strikes: int, sendq: int
) -> None:
    """Arbitrary reads of valid and refused says (a rate limit hit in the middle
    of a run and flood past it, a room the sender is not in, texts too long or
    invalid, slow mode), other frames between them (a ping whose pong must
    come between a message and its ok, leaving and joining, a nick change, a
    topic), a broken frame at the end of a read, other members' messages in
    the same pass, and sessions dropped by ``sendq`` in the middle of a run:
    the run path and the general way give the same bytes to every member."""
    with fixed_clock():
        general = asyncio.run(scenario(False, steps, burst, strikes, sendq))
        runs = asyncio.run(scenario(True, steps, burst, strikes, sendq))
    assert runs == general
    event(f"alice ended: {runs['ended']['alice'][1] or 'no'}")
    for code in runs["errors"]:
        event(f"refused: {code}")


def both(steps: list[Any], burst: int, strikes: int, sendq: int) -> dict[str, Any]:
    """What the run path gives, checked equal to what the general way gives."""
    with fixed_clock():
        general = asyncio.run(scenario(False, steps, burst, strikes, sendq))
        runs = asyncio.run(scenario(True, steps, burst, strikes, sendq))
    assert runs == general
    return runs


def test_the_scenarios_reach_the_cases_they_are_for() -> None:
    """The comparison above is only as good as what its scenarios do: a run
    cut by the rate limit, a flood, a drop by sendq, each refusal, and a
    message and its ok with a pong between them all happen in some (and the
    two paths agree on each here too)."""
    said = [ev.Say(id=n, room="r1", text=f"m{n}") for n in range(20)]
    limited = both([(said, None)], 4, 20, 1 << 20)
    assert limited["errors"] == {"rate_limited": 16} and limited["messages"] == 4
    flooded = both([(said, None)], 4, 2, 1 << 20)
    assert flooded["errors"] == {"rate_limited": 2, "flood": 1} and flooded["messages"] == 4
    assert flooded["ended"]["alice"] == ("close", "flood")
    dropped = both([(said, None)], 30, 6, 1000)
    assert dropped["ended"]["alice"] == ("abort", "sendq_exceeded")
    assert 1 < dropped["messages"] < 20
    refusals = [
        ev.Say(id=1, room="r3", text="hi"),
        ev.Say(id=2, room="r1", text="t" * 41),
        ev.Say(id=3, room="r1", text="bell\x07"),
        ev.Say(id=4, room="r2", text="slow"),
        ev.Say(id=5, room="r2", text="slower"),
    ]
    refused = both([(refusals, None)], 30, 6, 1 << 20)
    assert refused["errors"] == {
        "not_member": 1,
        "text_too_long": 1,
        "text_invalid": 1,
        "slow_mode": 1,
    }
    ponged = both([([ev.Ping(n=3), *said[:3]], None)], 30, 6, 1 << 20)
    frames = []
    data = b"".join(ponged["writes"]["alice"])
    while data:
        size = 4 + int.from_bytes(data[:4], "big")
        frames.append(ev.from_wire(decode_body(data[4:size]), "client"))
        data = data[size:]
    kinds = [type(f).__name__ for f in frames]
    assert kinds == ["Msg", "Pong", "Ok", "Msg", "Ok", "Msg", "Ok"]
