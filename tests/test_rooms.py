"""Public rooms over real sockets: membership, order, presence, topics, nicks, limits."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonchat import events as ev
from anonchat.client import Client
from anonchat.daemon import Daemon, Limits
from anonchat.daemon.rooms import NO_SECRET_ROOMS, Remote, Ring, SecretRoom
from anonchat.daemon.server import BUSY_FLUSH
from anonchat.errors import Code, ConnectionClosed, RequestError
from anonchat.wire import decode_body, encode_frame

from .conftest import ClientFactory, DaemonFactory
from .helpers import RawPeer, collect, dial, hello_bytes, next_event, quiet


async def test_three_clients_two_rooms_non_members_see_nothing(connect: ClientFactory) -> None:
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    await alice.create("red")
    await bob.join("red")
    await carol.create("blue")
    await quiet(alice)  # drop bob's join presence
    await alice.say("red", "for red only")
    await carol.say("blue", "for blue only")
    for member in (alice, bob):
        msg = await next_event(member, ev.Msg)
        assert (msg.room, msg.nick, msg.text) == ("red", "alice", "for red only")
    msg = await next_event(carol, ev.Msg)
    assert (msg.room, msg.text) == ("blue", "for blue only")
    assert not [f for f in await quiet(carol) if isinstance(f, ev.Msg)]
    assert not [f for f in await quiet(alice) if isinstance(f, ev.Msg)]
    assert not [f for f in await quiet(bob) if isinstance(f, ev.Msg)]


async def test_thousand_messages_arrive_everywhere_in_one_order(connect: ClientFactory) -> None:
    senders = [await connect(f"s{i}") for i in range(3)]
    listener = await connect("listener")
    first = await senders[0].create("busy")
    for s in [*senders[1:], listener]:
        await s.join("busy")
    base = first.seq + 3  # three joins after the creator's own
    await asyncio.sleep(0.05)
    for c in [*senders, listener]:
        c.events_nowait()

    async def send(client: Client, n: int) -> list[int]:
        return [await client.say("busy", f"{client.nick} {i}") for i in range(n)]

    acks = await asyncio.gather(*(send(s, 334 if i < 2 else 332) for i, s in enumerate(senders)))
    assert sorted(seq for a in acks for seq in a) == list(range(base + 1, base + 1001))
    streams = [await collect(c, ev.Msg, 1000) for c in [*senders, listener]]
    reference = [(m.seq, m.nick, m.text) for m in streams[0]]
    assert [seq for seq, _, _ in reference] == list(range(base + 1, base + 1001))
    for stream in streams[1:]:
        assert [(m.seq, m.nick, m.text) for m in stream] == reference
    for sender in senders:  # each sender's own messages keep their order
        own = [int(t.split()[1]) for _, n, t in reference if n == sender.nick]
        assert own == sorted(own)


async def test_presence_join_leave_nick_quit(connect: ClientFactory) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    joined = await alice.create("lobby", topic="hi there")
    assert joined.owner and joined.members == ["alice"] and joined.topic == "hi there"
    bob_joined = await bob.join("lobby")
    assert bob_joined.members == ["alice", "bob"] and not bob_joined.owner
    assert bob_joined.seq == joined.seq + 1
    p = await next_event(alice, ev.Presence)
    assert (p.kind, p.nick, p.seq) == ("join", "bob", bob_joined.seq)
    await bob.set_nick("robert")
    for c in (alice, bob):
        p = await next_event(c, ev.Presence)
        assert (p.kind, p.nick, p.new) == ("nick", "bob", "robert")
    assert bob.nick == "robert"
    await bob.leave("lobby")
    p = await next_event(alice, ev.Presence)
    assert (p.kind, p.nick) == ("leave", "robert")
    await bob.join("lobby")
    await next_event(alice, ev.Presence)
    await bob.close("good night")
    p = await next_event(alice, ev.Presence)
    assert (p.kind, p.nick, p.msg) == ("quit", "robert", "good night")
    assert (await alice.who("lobby")).members == ["alice"]


async def test_abrupt_disconnect_is_a_quit_after_the_resume_window(
    make_daemon: DaemonFactory,
) -> None:
    daemon = await make_daemon(resume_window=0.5)
    alice, bob = await dial(daemon, "alice"), await dial(daemon, "bob")
    await alice.create("lobby")
    await bob.join("lobby")
    await next_event(alice, ev.Presence)
    bob._writer.transport.abort()  # no bye: the socket just dies
    dropped = time.monotonic()
    assert not [f for f in await quiet(alice, 0) if isinstance(f, ev.Presence)]
    p = await next_event(alice, ev.Presence)
    assert (p.kind, p.nick) == ("quit", "bob")
    # Not before the window (a bound, not a timing: a slow machine only waits longer).
    assert time.monotonic() - dropped >= 0.5
    await alice.close()


async def test_topic_list_who(connect: ClientFactory) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    await alice.create("lobby")
    await alice.create("Quiet")
    await bob.join("LOBBY")  # names are case-insensitive
    await alice.set_topic("lobby", "snacks at 5")
    changed = await next_event(bob, ev.TopicChanged)
    assert (changed.nick, changed.topic) == ("alice", "snacks at 5")
    rooms = await bob.list_rooms()
    assert [(r.room, r.members, r.topic) for r in rooms.rooms] == [
        ("lobby", 2, "snacks at 5"),
        ("Quiet", 1, ""),
    ]
    assert (await bob.who("quiet")).members == ["alice"]
    with pytest.raises(RequestError) as info:
        await bob.set_topic("Quiet", "mine now")
    assert info.value.code == Code.NOT_MEMBER


async def test_room_errors(connect: ClientFactory) -> None:
    alice = await connect("alice")
    await alice.create("lobby")
    cases = [
        (alice.create("LOBBY"), Code.ROOM_EXISTS),
        (alice.join("nowhere"), Code.NO_SUCH_ROOM),
        (alice.join("lobby"), Code.ALREADY_MEMBER),
        (alice.leave("nowhere"), Code.NOT_MEMBER),
        (alice.say("nowhere", "x"), Code.NOT_MEMBER),
        (alice.who("nowhere"), Code.NO_SUCH_ROOM),
        (alice.create("two words"), Code.ROOM_INVALID),
        (alice.create("evil\u202eroom"), Code.ROOM_INVALID),
    ]
    for coro, code in cases:
        with pytest.raises(RequestError) as info:
            await coro
        assert info.value.code == code, code


async def test_empty_rooms_disappear(connect: ClientFactory, daemon: Daemon) -> None:
    alice = await connect("alice")
    await alice.create("brief")
    await alice.leave("brief")
    assert (await alice.list_rooms()).rooms == []
    assert daemon.rooms == {}


@pytest.mark.parametrize(
    "nick",
    [
        "",
        "a" * 33,
        "with space",
        "esc\x1bape",
        "rtl\u202eover",
        "zero\u200bwidth",
        "tab\tx",
        "\u0301combining",
        "new\nline",
        "nbsp\u00a0x",
    ],
)
async def test_invalid_nicks_are_refused(connect: ClientFactory, daemon: Daemon, nick: str) -> None:
    alice = await connect("alice")
    with pytest.raises(RequestError) as info:
        await alice.set_nick(nick)
    assert info.value.code == Code.NICK_INVALID
    # The daemon itself refuses too, not only the client library.
    alice._conn.send(ev.SetNick(id=999, nick=nick[:32]))
    alice._writer.write(alice._conn.data_to_send())
    assert alice.nick == "alice"


async def test_nick_limits_and_collisions(connect: ClientFactory) -> None:
    alice = await connect("a" * 32)  # at the limit
    assert alice.nick == "a" * 32
    with pytest.raises(ConnectionClosed) as info:
        await connect("a" * 33)
    assert info.value.code == Code.NICK_INVALID
    bob = await connect("bob")
    with pytest.raises(RequestError) as rinfo:
        await bob.set_nick("A" * 32)
    assert rinfo.value.code == Code.NICK_TAKEN
    with pytest.raises(ConnectionClosed) as info:
        await connect("BOB")
    assert info.value.code == Code.NICK_TAKEN
    with pytest.raises(ConnectionClosed) as info:
        await connect("\uff42\uff4f\uff42")  # full-width "bob"
    assert info.value.code == Code.NICK_TAKEN
    await bob.set_nick("Bob")  # changing one's own case is fine
    await bob.close()
    again = await connect("bob")  # a nick lives for one session
    assert again.nick == "bob"


async def test_a_nick_that_looks_like_a_connected_one_is_refused(connect: ClientFactory) -> None:
    """UTS #39 skeletons: a nick one confusable character away from a connected
    nick is refused at hello and at a nick change; an honest non-Latin nick,
    and the look-alike once the original is gone, are accepted."""
    alice = await connect("alice")
    with pytest.raises(ConnectionClosed) as closed:
        await connect("аlice")  # Cyrillic а: one character differs, and only in script
    assert closed.value.code == Code.NICK_TAKEN
    assert "looks like alice" in closed.value.message
    for look_alike in ("a1ice", "aIice", "ALIC\u0415"):  # digit one, capital I, Cyrillic Е
        with pytest.raises(ConnectionClosed):
            await connect(look_alike)
    bob = await connect("bob")
    with pytest.raises(RequestError) as refused:
        await bob.set_nick("alicе")  # Cyrillic е at the end
    assert refused.value.code == Code.NICK_TAKEN
    assert bob.nick == "bob"
    await bob.set_nick("alicee")  # one more letter is another nick
    assert bob.nick == "alicee"
    for honest in ("Алиса", "Ελένη", "山田たろう"):  # whole-script, unlike any connected nick
        assert (await connect(honest)).nick == honest
    await alice.set_nick("аlice")  # one's own look-alike is still one's own
    await alice.close()
    assert (await connect("alice")).nick == "alice"  # freed with the session


async def test_default_nick_is_random_and_readable(connect: ClientFactory) -> None:
    nicks = {(await connect()).nick for _ in range(5)}
    assert len(nicks) == 5
    for nick in nicks:
        adjective, animal, number = nick.split("-")
        assert adjective.isalpha() and animal.isalpha() and 10 <= int(number) < 100


async def test_text_limit_at_and_one_past(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(max_text=100)
    alice = await dial(daemon, nick="alice")
    bob = await dial(daemon, nick="bob")
    await alice.create("r")
    await bob.join("r")
    assert alice.hello.max_text == 100
    await alice.say("r", "é" * 50)  # 100 bytes of UTF-8
    # Bypass the client's own check to show that the daemon enforces the limit.
    alice._conn.send(ev.Say(id=999, room="r", text="é" * 50 + "x"))
    alice._writer.write(alice._conn.data_to_send())
    with pytest.raises(RequestError) as info:
        await alice.say("r", "é" * 50 + "x")
    assert info.value.code == Code.TEXT_TOO_LONG
    msgs = await collect(bob, ev.Msg, 1)
    assert msgs[0].text == "é" * 50
    assert not [f for f in await quiet(bob) if isinstance(f, ev.Msg)]
    for bad in ["", "   ", "bell\x07", "esc\x1b[2J"]:
        with pytest.raises(RequestError):
            await alice.say("r", bad)
    await alice.say("r", "two\nlines\tand a tab")
    assert (await next_event(bob, ev.Msg)).text == "two\nlines\tand a tab"
    await alice.close()
    await bob.close()


async def test_rooms_per_session_and_members_per_room(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(max_rooms_per_session=2, max_members_per_room=2)
    a = await dial(daemon)
    b = await dial(daemon)
    c = await dial(daemon)
    await a.create("one")
    await a.create("two")  # at the limit
    with pytest.raises(RequestError) as info:
        await a.create("three")
    assert info.value.code == Code.TOO_MANY_ROOMS
    assert "three" not in {r.room for r in (await a.list_rooms()).rooms}
    await b.join("one")  # two members: at the limit
    with pytest.raises(RequestError) as info:
        await c.join("one")
    assert info.value.code == Code.ROOM_FULL
    for client in (a, b, c):
        await client.close()


async def test_long_lists_are_cut_to_fit_one_frame(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(max_frame=8192, max_text=1024)
    clients = [await dial(daemon, nick=f"{'ñ' * 28}{i:04}") for i in range(150)]
    await clients[0].create("big")
    for c in clients[1:]:
        await c.join("big")
    who = await clients[0].who("big")
    assert who.more > 0 and len(who.members) + who.more == 150
    for i, c in enumerate(clients[:60]):
        await c.create(f"room{i:03}-{'t' * 20}", topic="x" * 200)
    rooms = await clients[0].list_rooms()
    assert rooms.more > 0 and len(rooms.rooms) + rooms.more == 61
    assert rooms.rooms[0].room == "big"  # largest first
    await asyncio.gather(*(c.close() for c in clients))


async def test_a_busy_room_is_flushed_in_batches_and_loses_nothing(
    make_daemon: DaemonFactory,
) -> None:
    """Past BUSY_FLUSH members a flush waits FLUSH_DELAY for more frames to ride
    along: every member still gets every message, in order."""
    daemon = await make_daemon(plaintext=True)
    members = [await dial(daemon, f"m{i}") for i in range(BUSY_FLUSH + 6)]
    await members[0].create("big")
    for m in members[1:]:
        await m.join("big")
    await asyncio.gather(*(members[i].say("big", f"{i}:{n}") for i in range(3) for n in range(10)))
    for m in members:
        got = [e for e in await collect(m, ev.Msg, 30)]
        assert [e.seq for e in got] == sorted(e.seq for e in got)
        for i in range(3):
            assert [e.text for e in got if e.nick == f"m{i}"] == [f"{i}:{n}" for n in range(10)]
    for m in members:
        await m.close()


@pytest.mark.parametrize("me", [False, True])
async def test_a_message_goes_out_exactly_as_msg_encodes_it(daemon: Daemon, me: bool) -> None:
    """Room.say builds the hottest frame's map itself (not through ev.Msg): the
    bytes must be Msg's, key for key, and read back as a valid Msg."""
    alice = await dial(daemon, "alice")
    await alice.create("r")
    await alice.say("r", "héllo, wörld", me=me)
    seq, is_message, data = daemon.rooms["r"].ring.entries()[-1]
    msg = ev.from_wire(decode_body(data[4:]), "client")
    assert isinstance(msg, ev.Msg) and is_message
    assert (msg.seq, msg.nick, msg.text, msg.me) == (seq, "alice", "héllo, wörld", me)
    assert data == encode_frame(msg.to_wire())
    await alice.close()


async def test_a_messages_ok_goes_out_exactly_as_ok_encodes_it(daemon: Daemon) -> None:
    """A session encodes a message's ok itself (Session.ok, not through ev.Ok):
    the bytes on the wire must be Ok's, key for key."""
    peer = await RawPeer.open(daemon)
    create = encode_frame(ev.Create(id=1, room="r").to_wire())
    says = [encode_frame(ev.Say(id=n, room="r", text=f"m{n}").to_wire()) for n in (7, 1 << 40)]
    await peer.send(hello_bytes("alice") + create + b"".join(says))
    buf = b""
    oks: dict[int, bytes] = {}
    async with asyncio.timeout(10):
        while len(oks) < 2:
            data = await peer.reader.read(65536)
            assert data, "the daemon closed the connection"
            buf += data
            while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "big"):
                size = 4 + int.from_bytes(buf[:4], "big")
                frame, buf = buf[:size], buf[size:]
                body = decode_body(frame[4:])
                if body["t"] == "ok" and body["id"] != 1:
                    oks[body["id"]] = frame
    for rid, frame in oks.items():
        seq = decode_body(frame[4:])["seq"]
        assert frame == encode_frame(ev.Ok(id=rid, seq=seq).to_wire())
    assert set(oks) == {7, 1 << 40}
    peer.writer.close()


@settings(max_examples=300)
@given(
    st.lists(st.tuples(st.booleans(), st.binary(max_size=40)), max_size=40),
    st.integers(1, 12),  # max_frames
    st.integers(1, 300),  # max_bytes
    st.integers(-2, 45),  # a client's last seen event
    st.one_of(st.none(), st.integers(0, 200)),  # a resume's budget
    st.integers(0, 8),  # messages of history asked for
)
def test_the_ring_keeps_what_a_list_of_numbered_events_would(
    events: list[tuple[bool, bytes]],
    max_frames: int,
    max_bytes: int,
    seen: int,
    budget: int | None,
    count: int,
) -> None:
    """The ring holds an event's bytes and whether it is a message, its number
    being its place (issue 18: no tuple and number per event): it answers as the
    plain list of (seq, is_message, bytes) it stands for, bounded the same way."""
    ring = Ring(max_frames, max_bytes)
    model: list[tuple[int, bool, bytes]] = []
    for seq, (message, data) in enumerate(events, start=1):
        ring.add(seq, message, b"\0\0\0\0" + data)
        model.append((seq, message, b"\0\0\0\0" + data))
        while model and (len(model) > max_frames or sum(len(d) for *_, d in model) > max_bytes):
            model.pop(0)
    latest = len(events)
    assert ring.entries() == model
    after = [(s, d) for s, _, d in model if s > seen]
    assert ring.size_since(seen) == sum(len(d) for _, d in after)
    if budget is not None:
        while after and sum(len(d) for _, d in after) > budget:
            after.pop(0)
    oldest = after[0][0] if after else latest + 1
    lost = (seen + 1, min(oldest - 1, latest)) if oldest > seen + 1 and seen < latest else None
    assert ring.since(seen, latest, budget) == ([d for _, d in after], lost)
    messages = [d for _, m, d in model if m]
    assert ring.history(count) == (messages[-count:] if count else [])
    copy = Ring(max_frames, max_bytes)
    copy.restore(ring.entries())  # (a snapshot, see snapshot.py)
    assert copy.entries() == model


def test_a_ring_whose_numbers_skip_keeps_only_what_follows_the_gap() -> None:
    ring = Ring(10, 1000)
    for seq in (1, 2, 3, 7, 8):
        ring.add(seq, True, bytes([seq]))
    assert [s for s, _, _ in ring.entries()] == [7, 8]
    assert ring.since(2, 8) == ([b"\x07", b"\x08"], (3, 6))


def test_the_empty_table_of_secret_rooms_all_members_share_is_never_written() -> None:
    """A member in no secret room holds the one shared empty table (issue 18);
    entering one gives it a table of its own, and the shared one refuses a write."""
    member = Remote(Limits(), "n.1", "n")
    assert member.secret_rooms is NO_SECRET_ROOMS
    with pytest.raises(TypeError):
        NO_SECRET_ROOMS[b"\0" * 32] = None  # type: ignore[assignment]
    room = SecretRoom(Ring(4, 1024), lambda room: None, b"\1" * 32, b"\2" * 32, b"\3" * 32, b"")
    member.enter_secret(room)
    assert member.secret_rooms == {room.rid: room} and not NO_SECRET_ROOMS
