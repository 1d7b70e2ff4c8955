"""Frame schema: every type round-trips; wrong types, missing and unknown keys are refused."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anonchat import events as ev
from anonchat.errors import Code, RemoteProtocolError

EXAMPLES: list[ev.Frame] = [
    ev.Ping(n=1),
    ev.Pong(n=1),
    ev.Bye(code="quit", msg="bye all"),
    ev.ClientHello(v=1, client="anonchat/0.1.0", nick="alice"),
    ev.ClientHello(v=1),
    ev.SetNick(id=1, nick="bob"),
    ev.ListRooms(id=2),
    ev.Create(id=3, room="lobby", topic="welcome"),
    ev.Join(id=4, room="lobby"),
    ev.Leave(id=5, room="lobby"),
    ev.SetTopic(id=6, room="lobby", topic=""),
    ev.Who(id=7, room="lobby"),
    ev.Say(id=8, room="lobby", text="hi", me=True),
    ev.ServerHello(
        v=1,
        server="anonchatd/0.1.0",
        nick="quiet-otter-42",
        max_frame=65536,
        max_text=3072,
        ping_interval=30,
        challenge=bytes(32),
        token=bytes(16),
    ),
    ev.Ok(id=8, seq=12),
    ev.Error(code="nick_taken", msg="the nick bob is taken", id=1),
    ev.Rooms(id=2, rooms=[ev.RoomInfo(room="lobby", members=3, topic="t")], more=2),
    ev.Joined(id=4, room="lobby", topic="", members=["a", "b"], seq=3, owner=True),
    ev.Members(id=7, room="lobby", members=["a"]),
    ev.Msg(room="lobby", seq=4, ts=1_700_000_000_000, nick="a", text="hi"),
    ev.Presence(room="lobby", seq=5, ts=1, kind="nick", nick="a", new="b"),
    ev.TopicChanged(room="lobby", seq=6, ts=1, nick="a", topic="new"),
    ev.SecretCreate(
        id=1,
        room=bytes(32),
        auth=bytes(32),
        proof=bytes(64),
        sender=bytes(32),
        key_proof=bytes(64),
        owner_key=bytes(32),
        owner_tag=bytes(32),
    ),
    ev.SecretJoin(id=1, room=bytes(32), proof=bytes(64), sender=bytes(32), key_proof=bytes(64)),
    ev.SecretLeave(id=1, room=bytes(32)),
    ev.Seal(id=1, room=bytes(32), counter=1, epoch=0, kind="msg", ct=bytes(272), sig=bytes(64)),
    ev.SecretJoined(
        id=1,
        room=bytes(32),
        seq=1,
        members=[bytes(32)],
        owner_key=bytes(32),
        owner_tag=bytes(32),
        owner=True,
        acts=2,
        grants=[
            ev.OwnerAct(kind="op", counter=1, actor=bytes(32), sig=bytes(64), target=bytes(32))
        ],
        mode=ev.OwnerAct(
            kind="mode",
            counter=2,
            actor=bytes(32),
            sig=bytes(64),
            locked=True,
            slow=5,
            history=False,
        ),
    ),
    ev.SecretAct(
        id=3,
        room=bytes(32),
        act=ev.OwnerAct(kind="ban", counter=3, actor=bytes(32), sig=bytes(64), target=bytes(32)),
    ),
    ev.SecretActed(
        room=bytes(32),
        seq=9,
        ts=1,
        act=ev.OwnerAct(kind="kick", counter=4, actor=bytes(32), sig=bytes(64), target=bytes(32)),
    ),
    ev.Sealed(
        room=bytes(32),
        seq=1,
        ts=1,
        sender=bytes(32),
        counter=1,
        epoch=0,
        kind="msg",
        ct=bytes(272),
        sig=bytes(64),
    ),
    ev.SecretPresence(room=bytes(32), seq=1, ts=1, kind="join", sender=bytes(32)),
    ev.Missed(first=3, last=9, room="lobby"),
    ev.Kick(id=1, room="lobby", nick="troll", msg="spam", ban=True),
    ev.Op(id=1, room="lobby", nick="alice"),
    ev.RoomMode(id=1, room="lobby", locked=True, slow=5),
    ev.ModeChanged(room="lobby", seq=9, ts=1, nick="alice", locked=True, slow=5, history=False),
    ev.ClientHello(
        v=1, resume=bytes(16), seen=[ev.Seen(seq=4, room="lobby"), ev.Seen(seq=2, secret=bytes(32))]
    ),
    ev.DmKey(id=1, sign=bytes(32), dh=bytes(32), sig=bytes(64), proof=bytes(64)),
    ev.DmLookup(id=2, nick="bob"),
    ev.DmLookup(id=3, room=bytes(32), member=bytes(32)),
    ev.DmSend(id=4, to=bytes(32), counter=1, ct=bytes(272)),
    ev.DmCard(id=2, nick="bob", sign=bytes(32), dh=bytes(32), sig=bytes(64)),
    ev.Dm(
        seq=1,
        ts=1,
        nick="alice",
        sign=bytes(32),
        dh=bytes(32),
        sig=bytes(64),
        counter=1,
        ct=bytes(272),
    ),
    ev.Missed(first=1, last=2, dm=True),
    ev.ClientHello(v=3, resume=bytes(16), seen=[ev.Seen(seq=4, dm=True)]),
]


def test_a_lookup_names_a_nick_or_a_member_of_a_room() -> None:
    for bad in (
        {},
        {"nick": "bob", "room": bytes(32), "member": bytes(32)},
        {"room": bytes(32)},
        {"member": bytes(32)},
        {"nick": "bob", "member": bytes(32)},
    ):
        with pytest.raises(RemoteProtocolError) as exc:
            ev.from_wire({"t": "dm_lookup", "id": 1, **bad}, "server")
        assert exc.value.code == "bad_field"


def receiver(frame: ev.Frame) -> ev.Role:
    return "server" if frame.SENDER == "client" else "client"


@pytest.mark.parametrize("frame", EXAMPLES, ids=lambda f: f.TYPE)
def test_round_trip(frame: ev.Frame) -> None:
    assert ev.from_wire(frame.to_wire(), receiver(frame)) == frame


def test_every_frame_type_has_an_example() -> None:
    assert {type(f) for f in EXAMPLES} == set(ev.frame_types().values())


def test_defaults_are_left_out() -> None:
    assert ev.Say(id=1, room="r", text="x").to_wire() == {
        "t": "say",
        "id": 1,
        "room": "r",
        "text": "x",
    }


def refused(body: dict[str, Any], as_: ev.Role = "server") -> str:
    with pytest.raises(RemoteProtocolError) as info:
        ev.from_wire(body, as_)
    return info.value.code


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"t": "nope"}, Code.UNKNOWN_TYPE),
        (
            {"t": "msg", "room": "r", "seq": 1, "ts": 1, "nick": "a", "text": "x"},
            Code.UNEXPECTED_FRAME,
        ),
        ({"t": "say", "id": 1, "room": "r"}, Code.BAD_FIELD),  # missing text
        ({"t": "say", "id": 1, "room": "r", "text": "x", "extra": 1}, Code.BAD_FIELD),
        ({"t": "say", "id": "1", "room": "r", "text": "x"}, Code.BAD_FIELD),
        ({"t": "say", "id": True, "room": "r", "text": "x"}, Code.BAD_FIELD),
        ({"t": "say", "id": -1, "room": "r", "text": "x"}, Code.BAD_FIELD),
        ({"t": "say", "id": 1, "room": b"r", "text": "x"}, Code.BAD_FIELD),
        ({"t": "say", "id": 1, "room": "r", "text": "x", "me": 1}, Code.BAD_FIELD),
        ({"t": "say", "id": 1, "room": "r" * 33, "text": "x"}, Code.BAD_FIELD),
        ({"t": "nick", "id": 1, "nick": "n" * 33}, Code.BAD_FIELD),
        ({"t": "hello", "v": 1, "nick": None}, Code.BAD_FIELD),
        ({"t": "ping", "n": 2**64}, Code.BAD_FIELD),
        ({"t": "ping", "n": 1.5}, Code.BAD_FIELD),
    ],
)
def test_schema_violations(body: dict[str, Any], code: str) -> None:
    assert refused(body) == code


def test_nested_records_are_checked() -> None:
    body = {"t": "rooms", "id": 1, "rooms": [{"room": "x", "members": "3", "topic": ""}]}
    assert refused(body, "client") == Code.BAD_FIELD
    body = {"t": "rooms", "id": 1, "rooms": [{"room": "x", "members": 3, "topic": "", "z": 1}]}
    assert refused(body, "client") == Code.BAD_FIELD


def test_presence_kind_is_checked() -> None:
    body = ev.Presence(room="r", seq=1, ts=1, kind="join", nick="a").to_wire()
    body["kind"] = "explode"
    assert refused(body, "client") == Code.BAD_FIELD


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.binary(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
type_names = st.sampled_from([*sorted({t for _, t in ev.frame_types()}), "zzz"])
field_names = st.sampled_from(
    [
        "id",
        "n",
        "v",
        "room",
        "text",
        "nick",
        "rooms",
        "members",
        "seq",
        "ts",
        "kind",
        "code",
        "msg",
        "me",
        "topic",
        "new",
    ]
)


@given(
    type_names,
    st.dictionaries(field_names | st.text(max_size=6), values, max_size=8),
    st.sampled_from(["client", "server"]),
)
def test_any_map_gives_a_frame_or_our_error(name: str, body: dict[str, Any], role: str) -> None:
    body["t"] = name
    try:
        frame = ev.from_wire(body, role)  # type: ignore[arg-type]
    except RemoteProtocolError:
        return
    assert ev.from_wire(frame.to_wire(), role) == frame  # type: ignore[arg-type]


def _generic_say(body: dict[str, Any]) -> Any:
    """What the generic builder makes of a say body (the frame, or its complaint)."""
    try:
        return ev._build(ev.Say, body, "say")
    except ev._FieldProblem as exc:
        return ("refused", str(exc))


def _fast_say(body: dict[str, Any]) -> Any:
    try:
        return ev._build_say(body)
    except ev._FieldProblem as exc:
        return ("refused", str(exc))


_SAY_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=ev.U63 + 2),
    st.sampled_from([0, 1, ev.U63, ev.U63 + 1, -1, 2.0, True]),
    st.text(max_size=40),
    st.sampled_from(["r" * ev.ROOM_MAX, "r" * (ev.ROOM_MAX + 1)]),
    st.sampled_from(["t" * ev.TEXT_MAX, "t" * (ev.TEXT_MAX + 1)]),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@given(
    st.dictionaries(
        st.sampled_from(["t", "id", "room", "text", "me", "seq", "x"]), _SAY_VALUES, max_size=6
    )
)
def test_the_inline_say_builder_agrees_with_the_generic_one(body: dict[str, Any]) -> None:
    """Say, every message's frame, is checked inline (events._build_say): the same
    frames, and the same refusals with the same words, as the generic builder."""
    assert _fast_say(body) == _generic_say(body)


@pytest.mark.parametrize(
    "body",
    [
        {"t": "say", "id": 1, "room": "r", "text": "hi"},
        {
            "t": "say",
            "id": ev.U63,
            "room": "r" * ev.ROOM_MAX,
            "text": "t" * ev.TEXT_MAX,
            "me": True,
        },
        {"t": "say", "id": ev.U63 + 1, "room": "r", "text": "hi"},
        {"t": "say", "id": 1, "room": "r" * (ev.ROOM_MAX + 1), "text": "hi"},
        {"t": "say", "id": 1, "room": "r", "text": "t" * (ev.TEXT_MAX + 1)},
        {"t": "say", "id": 1, "room": "r", "text": "hi", "me": None},
        {"t": "say", "id": 1, "room": "r", "text": "hi", "me": 1},
        {"t": "say", "id": True, "room": "r", "text": "hi"},
        {"t": "say", "id": 1, "room": "r"},
        {"t": "say", "id": 1, "room": "r", "text": "hi", "seq": 2},
    ],
)
def test_a_say_body_at_and_past_each_limit_is_judged_alike(body: dict[str, Any]) -> None:
    fast, generic = _fast_say(body), _generic_say(body)
    assert fast == generic
    via_wire: Any
    try:
        via_wire = ev.from_wire(body, "server")
    except RemoteProtocolError as exc:
        via_wire = ("refused", exc.code)
        assert isinstance(generic, tuple) and exc.code == Code.BAD_FIELD
    if not isinstance(generic, tuple):
        assert via_wire == generic


@given(
    st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {"id": st.integers(0, ev.U63), "room": st.text(max_size=5), "text": st.text()},
                optional={"me": st.booleans()},
            ),
            st.dictionaries(
                st.sampled_from(["t", "id", "room", "text", "me", "seq", "x"]),
                _SAY_VALUES,
                max_size=6,
            ),
        ),
        max_size=6,
    )
)
def test_a_run_of_say_bodies_is_checked_as_each_alone(bodies: list[dict[str, Any]]) -> None:
    """events.says_fields (the daemon's message path: one read's say bodies,
    checked inline without making frames) gives each body's fields as
    say_from_wire gives them, up to the first it refuses, with its refusal."""
    for body in bodies:
        body["t"] = "say"
    expected: list[ev.SayFields] = []
    refusal = None
    for body in bodies:
        try:
            say = ev.say_from_wire(body)
        except RemoteProtocolError as exc:
            refusal = (exc.code, exc.message)
            break
        expected.append((say.id, say.room, say.text, say.me))
    fields, error = ev.says_fields(bodies)
    assert fields == expected
    assert (error and (error.code, error.message)) == refusal
