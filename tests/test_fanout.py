"""Fan-out within one event-loop pass: the room's log of the pass, shared by
its members (Channel in anonchat/daemon/rooms.py), must give every member
every event of the room once, in the room's order, and in order with the
member's own replies - also when it joins, leaves, is kicked or resumes in
the middle of a pass.

Several frames written with one write are read and handled by the daemon in
one pass, so these tests put the interesting moments inside one pass by
sending them together, over real sockets to a real daemon.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from anonchat import events as ev
from anonchat.client import Client
from anonchat.daemon import Daemon, server
from anonchat.wire import encode_body

from .conftest import DaemonFactory
from .helpers import RawPeer, dial, hello_bytes, lose_connection


def raw(frame: ev.Frame) -> bytes:
    return encode_body(frame.to_wire())


async def member(daemon: Daemon, nick: str, room: str, create: bool = False) -> RawPeer:
    """A raw peer that said hello and is in ``room`` (its replies read and kept)."""
    peer = await RawPeer.open(daemon)
    enter = ev.Create(id=1, room=room) if create else ev.Join(id=1, room=room)
    await peer.send(hello_bytes(nick) + raw(enter))
    await until(peer, lambda fs: any(isinstance(f, ev.Joined | ev.Error) for f in fs))
    assert any(isinstance(f, ev.Joined) for f in peer.frames), peer.frames
    return peer


async def until(peer: RawPeer, done: Callable[[list[ev.Frame]], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not done(peer.frames):
            await peer.read_frame(timeout)


async def settle(peer: RawPeer) -> None:
    """Everything the daemon sent before a pong has arrived once the pong has."""
    await peer.send(raw(ev.Ping(n=7)))
    await until(peer, lambda fs: isinstance(fs[-1], ev.Pong))


def texts(frames: list[ev.Frame], room: str = "r") -> list[str]:
    return [f.text for f in frames if isinstance(f, ev.Msg) and f.room == room]


def seqs(frames: list[ev.Frame], room: str = "r") -> list[int]:
    return [f.seq for f in frames if isinstance(f, ev.Msg | ev.Presence) and f.room == room]


def assert_gapless(numbers: list[int]) -> None:
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers


async def test_a_burst_reaches_every_member_once_in_order_with_the_senders_oks(
    daemon: Daemon,
) -> None:
    a = await member(daemon, "a", "r", create=True)
    b = await member(daemon, "b", "r")
    c = await member(daemon, "c", "r")
    start = len(a.frames)
    await a.send(b"".join(raw(ev.Say(id=10 + n, room="r", text=f"m{n}")) for n in range(60)))
    expected = [f"m{n}" for n in range(60)]
    for peer in (a, b, c):
        await until(peer, lambda fs: len(texts(fs)) >= 60)
        assert texts(peer.frames) == expected
    await until(a, lambda fs: sum(isinstance(f, ev.Ok) for f in fs[start:]) == 60)
    # The sender sees its message, then the ok that numbers it, every time.
    mine = [f for f in a.frames[start:] if isinstance(f, ev.Msg | ev.Ok)]
    for n in range(60):
        msg, ok = mine[2 * n], mine[2 * n + 1]
        assert isinstance(msg, ev.Msg) and isinstance(ok, ev.Ok)
        assert msg.text == f"m{n}" and ok.id == 10 + n and ok.seq == msg.seq


async def test_leaving_in_the_middle_of_a_pass_still_delivers_what_came_before(
    daemon: Daemon,
) -> None:
    owner = await member(daemon, "owner", "r", create=True)
    leaver = await member(daemon, "leaver", "r")
    start = len(leaver.frames)
    burst = [ev.Say(id=10 + n, room="r", text=f"m{n}") for n in range(5)]
    await leaver.send(b"".join(map(raw, [*burst, ev.Leave(id=99, room="r")])))
    await until(leaver, lambda fs: any(isinstance(f, ev.Ok) and f.id == 99 for f in fs))
    got = leaver.frames[start:]
    assert texts(got) == [f"m{n}" for n in range(5)]
    assert isinstance(got[-1], ev.Ok) and got[-1].id == 99  # the leave's ok comes last
    await until(owner, lambda fs: any(isinstance(f, ev.Presence) for f in fs[2:]))
    await until(owner, lambda fs: len(texts(fs)) == 5)
    left = [f for f in owner.frames if isinstance(f, ev.Presence) and f.kind == "leave"]
    assert [p.nick for p in left] == ["leaver"]
    assert left[0].seq > max(seqs(owner.frames[:-1]))  # after the five messages
    # Nothing of the room reaches it after it left.
    await owner.send(raw(ev.Say(id=50, room="r", text="after")))
    await until(owner, lambda fs: "after" in texts(fs))
    await settle(leaver)
    assert "after" not in texts(leaver.frames)


async def test_a_member_kicked_in_the_middle_of_a_pass_learns_it_after_the_messages_before(
    daemon: Daemon,
) -> None:
    owner = await member(daemon, "owner", "r", create=True)
    target = await member(daemon, "target", "r")
    start = len(target.frames)
    frames = [ev.Say(id=10, room="r", text="before"), ev.Kick(id=11, room="r", nick="target")]
    await owner.send(b"".join(map(raw, [*frames, ev.Say(id=12, room="r", text="after")])))
    await until(owner, lambda fs: "after" in texts(fs))
    await until(target, lambda fs: any(isinstance(f, ev.Presence) for f in fs[start:]))
    await settle(target)
    got = [f for f in target.frames[start:] if isinstance(f, ev.Msg | ev.Presence)]
    assert [type(f) for f in got] == [ev.Msg, ev.Presence]
    assert got[0].text == "before"  # type: ignore[union-attr]
    assert got[1].kind == "kick" and got[1].by == "owner"  # type: ignore[union-attr]


@pytest.mark.usefixtures("slow_flush")
async def test_joining_during_a_flood_gets_each_later_event_once_and_no_earlier_one(
    make_daemon: DaemonFactory,
) -> None:
    daemon = await make_daemon(history=0)
    flooder = await member(daemon, "flooder", "r", create=True)
    flood = b"".join(raw(ev.Say(id=10 + n, room="r", text=f"m{n}")) for n in range(400))
    task = asyncio.create_task(flooder.send(flood))
    joiner = await member(daemon, "joiner", "r")
    await task
    await until(flooder, lambda fs: len(texts(fs)) == 400)
    joined = next(f for f in joiner.frames if isinstance(f, ev.Joined))
    last = max(seqs(flooder.frames))
    if joined.seq < last:
        await until(joiner, lambda fs: bool(seqs(fs)) and max(seqs(fs)) == last)
    live = seqs(joiner.frames)
    assert all(s > joined.seq for s in live)
    if live:
        assert live[0] == joined.seq + 1
        assert_gapless(live)


async def test_one_member_in_two_rooms_gets_each_rooms_burst_in_order(daemon: Daemon) -> None:
    a = await member(daemon, "a", "r", create=True)
    await a.send(raw(ev.Create(id=2, room="s")))
    await until(a, lambda fs: sum(isinstance(f, ev.Joined) for f in fs) == 2)
    b = await member(daemon, "b", "r")
    await b.send(raw(ev.Join(id=2, room="s")))
    await until(b, lambda fs: sum(isinstance(f, ev.Joined) for f in fs) == 2)
    burst = [ev.Say(id=10 + n, room="rs"[n % 2], text=f"m{n}") for n in range(40)]
    await a.send(b"".join(map(raw, burst)))
    await until(b, lambda fs: len(texts(fs, "r")) + len(texts(fs, "s")) == 40)
    assert texts(b.frames, "r") == [f"m{n}" for n in range(0, 40, 2)]
    assert texts(b.frames, "s") == [f"m{n}" for n in range(1, 40, 2)]
    for room in "rs":
        assert_gapless(seqs(b.frames, room)[1:])  # after its own join


@pytest.fixture
def slow_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """Room flushes wait 20 ms once busy (from the first one on): a room's log of
    the pass then holds frames most of the time, so what the test does next lands
    in the middle of a pass."""
    monkeypatch.setattr(server, "BUSY_FLUSH", 1)
    monkeypatch.setattr(server, "FLUSH_DELAY", 0.02)


@pytest.mark.usefixtures("slow_flush")
async def test_resuming_during_a_flood_loses_nothing_and_repeats_nothing(
    make_daemon: DaemonFactory,
) -> None:
    total = 600
    daemon = await make_daemon(resume_window=30, ring_frames=2 * total, ring_bytes=1 << 20)
    flooder = await member(daemon, "flooder", "r", create=True)
    reader = await dial(daemon, "reader")
    await reader.join("r")
    flood = [raw(ev.Say(id=10 + n, room="r", text=f"m{n}")) for n in range(total)]
    seen: list[int] = []

    async def read(client: Client, until: int) -> None:
        async with asyncio.timeout(20):
            async for frame in client.events():
                if isinstance(frame, ev.Msg):
                    seen.append(frame.seq)
                    if len(seen) == until:
                        return

    await flooder.send(b"".join(flood[: total // 2]))
    await read(reader, 50)
    await lose_connection(reader)  # the network goes away, mid-flood
    # What reached the client before the break is what it tells the daemon it saw.
    seen += [f.seq for f in reader.events_nowait() if isinstance(f, ev.Msg)]

    async def go_on() -> None:  # the flood goes on while it resumes, a few at a time
        for n in range(total // 2, total, 5):
            await flooder.send(b"".join(flood[n : n + 5]))

    flooding = asyncio.create_task(go_on())
    again = await Client.connect("127.0.0.1", daemon.port, pin=daemon.pin, resume=reader)
    await flooding
    assert again.resumed
    await read(again, total)
    assert_gapless(seen)
    assert len(set(seen)) == total
    await again.close()


class PassCounter:
    """Counts passes of the event loop: a callback that schedules itself again
    with ``call_soon`` runs once in every pass."""

    def __init__(self) -> None:
        self.n = 0
        self.loop = asyncio.get_running_loop()
        self.running = True
        self.loop.call_soon(self._tick)

    def _tick(self) -> None:
        self.n += 1
        if self.running:
            self.loop.call_soon(self._tick)


class WriteLog:
    """Stands in for a session's transport: notes the pass of each write, passes it on."""

    def __init__(self, transport: asyncio.Transport, passes: PassCounter) -> None:
        self._transport = transport
        self._passes = passes
        self.writes: list[tuple[int, bytes]] = []

    def write(self, data: bytes) -> None:
        self.writes.append((self._passes.n, bytes(data)))
        self._transport.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


async def first_delivery(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch, members: int
) -> tuple[int, list[tuple[int, int]]]:
    """A message said in a room of ``members``: the pass in which the daemon read
    it, and for each other member the pass of the write that carried it and how
    many writes that member got for it."""
    from anonchat.daemon.session import Session

    read_at: list[int] = []
    buffer_updated = Session.buffer_updated
    passes: PassCounter | None = None

    def noting(self: Session, nbytes: int) -> None:
        if passes is not None and self.nick == "m0":
            read_at.append(passes.n)
        buffer_updated(self, nbytes)

    # (before connecting: the TLS transport keeps the method it found then)
    monkeypatch.setattr(Session, "buffer_updated", noting)
    peers = [await member(daemon, f"m{i}", "r", create=i == 0) for i in range(members)]
    for peer in peers:
        await settle(peer)
    sessions = {s.nick: s for s in daemon.sessions}
    passes = PassCounter()
    logs = []
    for i in range(1, members):
        log = WriteLog(sessions[f"m{i}"].transport, passes)
        sessions[f"m{i}"].transport = log  # type: ignore[assignment]
        logs.append(log)
    try:
        await peers[0].send(raw(ev.Say(id=50, room="r", text="now")))
        for peer in peers[1:]:
            await until(peer, lambda fs: "now" in texts(fs))
    finally:
        passes.running = False
    assert len(read_at) == 1  # one frame, one read
    carried = []
    for log in logs:
        hits = [n for n, data in log.writes if b"now" in data]
        carried.append((hits[0], len(log.writes)))
    for peer in peers:
        peer.writer.close()
    return read_at[0], carried


async def test_a_quiet_daemon_delivers_a_message_in_the_pass_after_reading_it(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No timer and no waiting for more: the flush that writes a message to the
    room's members is the first callback of the next loop pass (counted, not
    timed), one write per member."""
    read, carried = await first_delivery(daemon, monkeypatch, 4)
    assert daemon._busy is False
    for wrote, writes in carried:
        assert wrote == read + 1
        assert writes == 1


async def test_a_busy_daemon_waits_one_more_pass_and_no_timer(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a flush was large (BUSY_FLUSH), the next waits exactly one more pass
    for what the other senders sent meanwhile -- a pass, not a fixed delay."""
    monkeypatch.setattr(server, "BUSY_FLUSH", 1)
    assert server.FLUSH_DELAY == 0
    read, carried = await first_delivery(daemon, monkeypatch, 4)
    assert daemon._busy is True
    for wrote, _ in carried:
        assert wrote == read + 2


async def test_messages_that_arrive_in_one_pass_leave_in_one_write_per_member(
    daemon: Daemon,
) -> None:
    """Coalescing per pass: messages from two senders read in the same pass go to
    each other member in one write (the room's log of the pass, joined once)."""
    peers = [await member(daemon, f"m{i}", "r", create=i == 0) for i in range(4)]
    for peer in peers:
        await settle(peer)
    sessions = {s.nick: s for s in daemon.sessions}
    passes = PassCounter()
    logs = {}
    for nick in ("m2", "m3"):
        logs[nick] = WriteLog(sessions[nick].transport, passes)
        sessions[nick].transport = logs[nick]  # type: ignore[assignment]
    try:
        # Written without yielding to the loop: on loopback both senders' bytes are
        # in the daemon's socket buffers before its next pass reads either.
        peers[0].writer.write(raw(ev.Say(id=60, room="r", text="one")))
        peers[1].writer.write(raw(ev.Say(id=61, room="r", text="two")))
        for peer in peers[2:]:
            await until(peer, lambda fs: {"one", "two"} <= set(texts(fs)))
    finally:
        passes.running = False
    for log in logs.values():
        carrying = [data for _, data in log.writes if b"one" in data or b"two" in data]
        assert len(carrying) == 1
        assert b"one" in carrying[0] and b"two" in carrying[0]
    for peer in peers:
        peer.writer.close()
