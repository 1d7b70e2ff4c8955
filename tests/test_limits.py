"""Rate limits and connections per address, each at its value and one past it."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonchat import events as ev
from anonchat.bucket import TokenBucket
from anonchat.daemon import Limits
from anonchat.daemon.limits import SLACK, AddressCounter, SessionLimiter
from anonchat.errors import FATAL_CODES, Code, ConnectionClosed, RequestError

from .conftest import DaemonFactory
from .helpers import RawPeer, dial, hello_bytes, next_event

DEFAULTS = Limits()


def frame_of(body: object) -> bytes:
    data: bytes = msgpack.packb(body)
    return struct.pack(">I", len(data)) + data


def says(first_id: int, count: int, room: str = "r") -> bytes:
    return b"".join(
        frame_of(ev.Say(id=i, room=room, text=f"m{i}").to_wire())
        for i in range(first_id, first_id + count)
    )


async def read_until(peer: RawPeer, done: Callable[[list[ev.Frame]], bool]) -> None:
    while not done(peer.frames):
        await peer.read_frame(timeout=10)


def replies(frames: list[ev.Frame]) -> list[tuple[int | None, str]]:
    """(id, "ok" or the error code) of every reply, in order."""
    out: list[tuple[int | None, str]] = []
    for f in frames:
        if isinstance(f, ev.Ok):
            out.append((f.id, "ok"))
        elif isinstance(f, ev.Error):
            out.append((f.id, f.code))
    return out


def test_defaults_are_the_documented_ones() -> None:
    assert (DEFAULTS.msg_burst, DEFAULTS.msg_rate) == (20, 10.0)
    assert (DEFAULTS.room_join_burst, DEFAULTS.room_join_interval) == (50, 1.0)
    assert (DEFAULTS.bytes_burst, DEFAULTS.bytes_rate) == (256 * 1024, 64 * 1024)
    assert (DEFAULTS.flood_strikes, DEFAULTS.max_per_address) == (20, 16)
    assert {Code.FLOOD, Code.TOO_MANY_CONNECTIONS} <= FATAL_CODES


def test_token_bucket_spend_leaves_a_debt_to_wait_out() -> None:
    bucket = TokenBucket(100, 0.01, now=0.0)  # 100 at once, then 100 per second
    assert bucket.spend(100, 0.0) == 0.0
    assert bucket.spend(50, 0.0) == pytest.approx(0.5)
    assert bucket.spend(0, 0.5) == 0.0  # paid off
    assert bucket.take(0.5) > 0


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["message", "room_join", "bytes"]),
            st.floats(0, 3),  # seconds since the step before
            st.integers(0, 300_000),  # bytes read (a bytes step)
        ),
        max_size=60,
    )
)
def test_a_session_limiter_bucket_is_a_token_bucket(steps: list[tuple[str, float, int]]) -> None:
    """A SessionLimiter holds each bucket as one number (the time it is full
    again), not a TokenBucket: both give the same answers, step for step (a
    burst at one instant included: the clock's rounding costs it no token)."""
    limits = Limits(msg_burst=3, msg_rate=2.0, room_join_burst=2, room_join_interval=1.5)
    limiter = SessionLimiter(limits)
    now = 1000.0
    buckets = {
        "message": TokenBucket(3, 0.5, now),
        "room_join": TokenBucket(2, 1.5, now),
        "bytes": TokenBucket(limits.bytes_burst, 1.0 / limits.bytes_rate, now),
        "strikes": TokenBucket(limits.flood_strikes, 1.0 / limits.msg_rate, now),
    }
    for kind, dt, size in steps:
        now += dt
        if kind == "bytes":
            assert limiter.bytes_read(size, now) == pytest.approx(
                buckets["bytes"].spend(size, now), abs=1e-6
            )
            continue
        bucket = buckets[kind]
        if abs(bucket._tokens + (now - bucket._stamp) / bucket.interval - 1) < 2 * SLACK:
            return  # a millionth of a token from the edge: rounding decides (SLACK)
        wait = bucket.take(now)
        check = limiter.check_message if kind == "message" else limiter.check_room_join
        if not wait:
            check(now)  # taken: no refusal
            continue
        struck = buckets["strikes"].take(now) > 0
        with pytest.raises(RequestError) as refused:
            check(now)
        assert refused.value.code == (Code.FLOOD if struck else Code.RATE_LIMITED)


# -- messages ----------------------------------------------------------------


async def test_message_burst_at_and_one_past(make_daemon: DaemonFactory) -> None:
    # The default burst; a slow refill so the test does not race the clock.
    daemon = await make_daemon(msg_burst=DEFAULTS.msg_burst, msg_rate=0.5)
    watcher = await dial(daemon, "watcher")
    await watcher.create("r")
    peer = await RawPeer.open(daemon)
    burst = DEFAULTS.msg_burst
    await peer.send(hello_bytes("fast") + frame_of({"t": "join", "id": 1, "room": "r"}))
    await read_until(peer, lambda fs: any(isinstance(f, ev.Joined) for f in fs))
    await peer.send(says(100, burst + 1))
    await read_until(peer, lambda fs: len(replies(fs)) == burst + 1)
    got = replies(peer.frames)
    assert got[:burst] == [(100 + i, "ok") for i in range(burst)]  # at the burst
    assert got[burst] == (100 + burst, Code.RATE_LIMITED)  # one past: refused, with its id
    error = peer.frames[-1]
    assert isinstance(error, ev.Error) and "try again in" in error.msg
    msgs = [f for f in watcher.events_nowait() if isinstance(f, ev.Msg)]
    await asyncio.sleep(0.1)
    msgs += [f for f in watcher.events_nowait() if isinstance(f, ev.Msg)]
    assert len(msgs) == burst  # the refused one was never fanned out
    await asyncio.sleep(2.1)  # one token at 0.5/s
    await peer.send(says(200, 1))
    await read_until(peer, lambda fs: len(replies(fs)) == burst + 2)
    assert replies(peer.frames)[-1] == (200, "ok")
    await peer.close()
    await watcher.close()


async def test_a_flood_past_the_strikes_is_closed(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(msg_burst=20, msg_rate=0.5, flood_strikes=20)
    watcher = await dial(daemon, "watcher")
    await watcher.create("r")
    peer = await RawPeer.open(daemon)
    await peer.send(
        hello_bytes("flooder")
        + frame_of({"t": "join", "id": 1, "room": "r"})
        + says(100, 20 + 20 + 1 + 50)
    )
    frames = await peer.read_until_closed()
    got = replies(frames)
    assert got[:20] == [(100 + i, "ok") for i in range(20)]
    assert got[20:40] == [(120 + i, Code.RATE_LIMITED) for i in range(20)]  # 20 strikes
    assert got[40:] == [(None, Code.FLOOD)]  # the 21st refusal closes; the rest is unread
    assert all(s.nick != "flooder" for s in daemon.sessions)
    await watcher.say("r", "still here")  # everyone else is unaffected
    await watcher.close()


async def test_sealed_messages_share_the_message_bucket(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(msg_burst=3, msg_rate=0.1)
    alice = await dial(daemon, "alice")
    alice.pace = False  # refused, not paced: this is the daemon's bucket
    # Creating takes one: the owner's grant of her own session key (her hello is
    # an announcement, from the other budget).
    await alice.create_secret("s", "correct horse battery staple")
    await alice.say_secret("s", "one")
    await alice.say_secret("s", "two")  # the third
    with pytest.raises(RequestError) as info:
        await alice.say_secret("s", "three")
    assert info.value.code == Code.RATE_LIMITED
    await alice.close()


async def test_secret_owner_actions_share_the_message_bucket(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(msg_burst=3, msg_rate=0.1)
    alice = await dial(daemon, "alice")
    alice.pace = False  # refused, not paced: this is the daemon's bucket
    await alice.create_secret("s", "correct horse battery staple")  # the grant: one
    await alice.secret_mode("s", slow=5)
    await alice.secret_mode("s", slow=6)  # the third
    with pytest.raises(RequestError) as info:
        await alice.secret_mode("s", slow=0)
    assert info.value.code == Code.RATE_LIMITED
    await alice.close()


async def test_announcements_have_their_own_bucket(make_daemon: DaemonFactory) -> None:
    """Audit hole 2: hellos and heres at announce_burst and one past it; messages
    are not slowed by them, nor they by messages."""
    daemon = await make_daemon(announce_burst=2, announce_rate=0.1, msg_burst=2, msg_rate=0.1)
    alice = await dial(daemon, "alice")
    alice.pace = False  # refused, not paced: this is the daemon's bucket
    await alice.create_secret("s", "correct horse battery staple")  # the hello: one
    await alice.set_secret_nick("s", "al")  # a here: the second
    with pytest.raises(RequestError) as info:
        await alice.set_secret_nick("s", "ali")
    assert info.value.code == Code.RATE_LIMITED and "announcements" in info.value.message
    await alice.say_secret("s", "messages still go")  # (the grant took one of two)
    with pytest.raises(RequestError) as info:
        await alice.say_secret("s", "one too many")
    assert info.value.code == Code.RATE_LIMITED and "messages" in info.value.message
    await alice.close()


# -- joins ---------------------------------------------------------------------


async def test_public_joins_at_and_one_past_the_burst(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(room_join_burst=3, room_join_interval=60.0)
    owner = await dial(daemon, "owner")
    for name in ("a", "b", "c"):  # the owner's three
        await owner.create(name)
    churner = await dial(daemon, "churner")
    await churner.join("a")
    await churner.leave("a")
    await churner.join("a")
    await churner.join("b")  # the third: at the burst
    with pytest.raises(RequestError) as info:
        await churner.join("c")
    assert info.value.code == Code.RATE_LIMITED and "try again in 60 s" in info.value.message
    with pytest.raises(RequestError) as info:
        await churner.create("e")
    assert info.value.code == Code.RATE_LIMITED
    with pytest.raises(RequestError) as info:  # a missing room costs no token and says so
        await churner.join("nowhere")
    assert info.value.code == Code.NO_SUCH_ROOM
    await churner.close()
    await owner.close()


# -- bytes ---------------------------------------------------------------------


async def test_bytes_past_the_bucket_are_paced_not_refused(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(read_size=4096, bytes_burst=4096, bytes_rate=8192)
    peer = await RawPeer.open(daemon)
    await peer.send(hello_bytes("chatty"))
    await read_until(peer, lambda fs: bool(fs))
    pings = b"".join(frame_of({"t": "ping", "n": i}) for i in range(2000))  # ~20 KiB
    assert len(pings) > 4096 + 2 * 8192
    loop = asyncio.get_running_loop()
    start = loop.time()
    await peer.send(pings)
    await read_until(peer, lambda fs: sum(isinstance(f, ev.Pong) for f in fs) == 2000)
    elapsed = loop.time() - start
    # Beyond the burst, 8 KiB per second: at least two seconds less the last read.
    assert 1.0 < elapsed < 8.0
    assert not [f for f in peer.frames if isinstance(f, ev.Error)]
    await peer.close()


# -- connections per address -------------------------------------------------


async def test_connections_per_address_at_and_one_past(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(max_per_address=DEFAULTS.max_per_address)
    clients = [await dial(daemon) for _ in range(DEFAULTS.max_per_address)]  # at the limit
    with pytest.raises(ConnectionClosed) as info:
        await dial(daemon)
    assert info.value.code == Code.TOO_MANY_CONNECTIONS
    peer = await RawPeer.open(daemon)  # before any hello: one error, then closed
    frames = await peer.read_until_closed()
    assert [(type(f), getattr(f, "code", None)) for f in frames] == [
        (ev.Error, Code.TOO_MANY_CONNECTIONS)
    ]
    assert len(daemon.per_address) == 1
    await clients.pop().close()
    await asyncio.sleep(0.05)
    clients.append(await dial(daemon))  # a slot is free again
    await asyncio.gather(*(c.close() for c in clients))
    await asyncio.sleep(0.05)
    assert len(daemon.per_address) == 0  # nothing outlives the connections


def test_the_connections_of_one_address_share_one_key_held_no_longer_than_they() -> None:
    """Every connection of an address (behind a Tor onion service: all of them)
    holds the same key object, not a copy each; once its last connection ends
    the counter holds nothing of that address, not even for that."""
    counter = AddressCounter(10)
    first = counter.key_of("192.0.2.7")
    assert counter.add(first)
    again = counter.key_of("192.0.2.7")
    assert again is first
    assert counter.key_of("192.0.2.8") is not first
    counter.remove(first)
    assert counter._last == b"" and len(counter) == 0
    assert counter.key_of("192.0.2.7") == first


def test_address_keys_are_keyed_hashes_per_ipv4_and_ipv6_64() -> None:
    counter = AddressCounter(2)
    v4 = counter.key_of("192.0.2.7")
    assert v4 == counter.key_of("::ffff:192.0.2.7")  # mapped IPv4 is the same address
    assert v4 != counter.key_of("192.0.2.8")
    assert counter.key_of("2001:db8:1:2::1") == counter.key_of("2001:db8:1:2:ffff::9")
    assert counter.key_of("2001:db8:1:2::1") != counter.key_of("2001:db8:1:3::1")
    assert counter.key_of("fe80::1%eth0") == counter.key_of("fe80::2")
    assert bytes([192, 0, 2, 7]) not in v4 and b"192.0.2.7" not in v4
    assert AddressCounter(2).key_of("192.0.2.7") != v4  # a new random key per process
    assert counter.add(v4) and counter.add(v4) and not counter.add(v4)
    counter.remove(v4)
    assert counter.add(v4)
    counter.remove(v4)
    counter.remove(v4)
    assert len(counter) == 0


# -- limits that were there before, at the value and one past ------------------


async def test_frame_size_at_and_one_past(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(max_frame=8192, max_text=1024)

    async def send_frame_of_size(size: int) -> str:
        body = {"t": "list", "id": 1, "pad": ""}
        body["pad"] = "x" * (size - len(msgpack.packb(body)) - 2)  # str8 -> str16 header
        data = msgpack.packb(body)
        assert len(data) == size
        peer = await RawPeer.open(daemon)
        await peer.send(hello_bytes() + struct.pack(">I", size) + data)
        frames = await peer.read_until_closed()
        return next(f.code for f in frames if isinstance(f, ev.Error))

    assert await send_frame_of_size(8192) == Code.BAD_FIELD  # read whole, then judged
    assert await send_frame_of_size(8193) == Code.FRAME_TOO_LARGE  # refused from its length


async def test_rooms_on_the_daemon_at_and_one_past(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(max_rooms=3)
    a = await dial(daemon)
    for name in ("one", "two", "three"):  # at the limit
        await a.create(name)
    b = await dial(daemon)
    with pytest.raises(RequestError) as info:
        await b.create("four")
    assert info.value.code == Code.TOO_MANY_ROOMS
    await a.leave("three")  # an empty room is forgotten, making space
    await b.create("four")
    await a.close()
    await b.close()


async def test_sendq_at_its_value_is_kept_and_past_it_dropped(
    make_daemon: DaemonFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="anonchat.daemon")
    daemon = await make_daemon(sendq=64 * 1024, max_text=3072)
    sender = await dial(daemon, "sender")
    await sender.create("r")
    stuck = await RawPeer.open(daemon)
    stuck.writer.get_extra_info("socket").setsockopt(
        __import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096
    )
    await stuck.send(hello_bytes("stuck") + frame_of({"t": "join", "id": 1, "room": "r"}))
    await next_event(sender, ev.Presence)
    session = next(s for s in daemon.sessions if s.nick == "stuck")
    # Fill its queue while it does not read, watching what is waiting for it.
    most = 0
    for _ in range(5000):
        await sender.say("r", "x" * 3000)
        if session.closing:
            break
        most = max(most, session.queued + session.transport.get_write_buffer_size())
    assert session.close_code == Code.SENDQ_EXCEEDED
    assert 0 < most <= 64 * 1024  # it was kept while at or under sendq
    # The drop is logged at INFO (protocol.md: no frame is sent, the log says why).
    drops = [r for r in caplog.records if "sendq_exceeded" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in drops] == [
        (logging.INFO, f"session {session.sid} dropped: sendq_exceeded (it does not read)")
    ]
    await stuck.close()
    await sender.close()


async def test_hello_just_within_the_timeout_is_served_and_none_is_closed_after_it(
    make_daemon: DaemonFactory,
) -> None:
    daemon = await make_daemon(hello_timeout=1.0)
    loop = asyncio.get_running_loop()
    late, silent = await RawPeer.open(daemon), await RawPeer.open(daemon)
    start = loop.time()
    await asyncio.sleep(0.6)
    await late.send(hello_bytes("late"))
    await read_until(late, lambda fs: bool(fs))
    assert isinstance(late.frames[0], ev.ServerHello)
    frames = await silent.read_until_closed()
    assert codes_of(frames) == [Code.HELLO_TIMEOUT]
    assert loop.time() - start >= 1.0
    await late.send(frame_of({"t": "ping", "n": 1}))  # still open, past the timeout
    await read_until(late, lambda fs: isinstance(fs[-1], ev.Pong))
    await late.close()


def codes_of(frames: list[ev.Frame]) -> list[str]:
    return [f.code for f in frames if isinstance(f, ev.Error)]
