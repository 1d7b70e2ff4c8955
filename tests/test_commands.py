"""The typed commands of the shared state (anonchat/daemon/commands.py).

A command travels through Redis as a list; the lists must stay exactly what
the daemon submitted before the commands were typed, so that a stream (or a
snapshot, or a node of the previous version) reads the same.  ``LEGACY``
spells each out as the old call sites built it (``Session.submit(op,
request_id, *args)`` made ``[op, uid, request_id, *args]``).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anonchat import events as ev
from anonchat.daemon import Daemon, Limits, commands, snapshot, state
from anonchat.daemon.commands import Command, MalformedCommand, UnknownCommand
from anonchat.daemon.metrics import Stats
from anonchat.daemon.rooms import Channel
from anonchat.daemon.shared import SharedState, settings_differ
from anonchat.names import name_key
from anonchat.wire import pack_value, unpack_value

from .helpers import next_event

C = commands

#: op -> the list the daemon submitted for it before commands were typed.
LEGACY: dict[str, Callable[[Any], list[Any]]] = {
    # Session.on_hello: submit("hello", None, node, nick, random, token_hash, resume, seen)
    "hello": lambda c: [
        "hello", c.uid, None, c.node, c.nick, c.random, c.token_hash, c.resume_hash, c.seen
    ],
    # Daemon.forget / Daemon._expire: ["end", uid, None, quit_msg]
    "end": lambda c: ["end", c.uid, None, c.quit_msg],
    "nick": lambda c: ["nick", c.uid, c.request_id, c.nick],
    "create": lambda c: ["create", c.uid, c.request_id, c.name, c.topic],
    "join": lambda c: ["join", c.uid, c.request_id, c.name],
    "leave": lambda c: ["leave", c.uid, c.request_id, c.name],
    "topic": lambda c: ["topic", c.uid, c.request_id, c.name, c.topic],
    "say": lambda c: ["say", c.uid, c.request_id, c.name, c.text, c.me],
    "kick": lambda c: ["kick", c.uid, c.request_id, c.name, c.nick, c.reason, c.ban],
    "op": lambda c: ["op", c.uid, c.request_id, c.name, c.nick],
    "mode": lambda c: ["mode", c.uid, c.request_id, c.name, c.locked, c.slow, c.history],
    "s_create": lambda c: [
        "s_create", c.uid, c.request_id, c.room_id, c.auth, c.sender, c.owner_key, c.owner_tag
    ],
    "s_join": lambda c: [
        "s_join", c.uid, c.request_id, c.room_id, c.proof, c.challenge, c.sender
    ],
    "s_leave": lambda c: ["s_leave", c.uid, c.request_id, c.room_id],
    "seal": lambda c: [
        "seal", c.uid, c.request_id, c.room_id, c.counter, c.epoch, c.kind, c.ct, c.sig
    ],
    "s_act": lambda c: ["s_act", c.uid, c.request_id, c.room_id, c.act],
    "dm_key": lambda c: ["dm_key", c.uid, c.request_id, c.sign, c.dh, c.sig],
    "dm": lambda c: ["dm", c.uid, c.request_id, c.to, c.counter, c.ct, c.hide_nick],
    # RedisBus._beat: ["beat", node, None, settings]
    "beat": lambda c: ["beat", c.node, None, c.settings],
    # Daemon.shutdown: ["handover" or "down", node, None]
    "down": lambda c: ["down", c.node, None],
    "handover": lambda c: ["handover", c.node, None],
    # RedisBus: the first entry of a stream, ["begin", node, None, epoch, taken_at]
    "begin": lambda c: ["begin", c.node, None, c.epoch, c.taken_at],
}  # fmt: skip

_plain = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text())
_msgpack_values = st.recursive(
    st.one_of(_plain, st.binary()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
_BY_TYPE: dict[Any, st.SearchStrategy[Any]] = {
    str: st.text(),
    bytes: st.binary(),
    int: st.integers(-(2**63), 2**64 - 1),
    bool: st.booleans(),
    dict[str, Any]: st.dictionaries(st.text(max_size=8), _msgpack_values, max_size=5),
    # session.resume_points: [room or None, secret or None, seq]
    list[list[Any]]: st.lists(
        st.tuples(st.none() | st.text(), st.none() | st.binary(), st.integers(0, 2**63)).map(list),
        max_size=4,
    ),
}


def _strategy(hint: Any) -> st.SearchStrategy[Any]:
    if hint in _BY_TYPE:
        return _BY_TYPE[hint]
    args = typing.get_args(hint)
    if type(None) in args:  # X | None
        (inner,) = [a for a in args if a is not type(None)]
        return st.none() | _strategy(inner)
    raise AssertionError(f"no strategy for {hint!r}")


def commands_of(cls: type[Command]) -> st.SearchStrategy[Command]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: _strategy(hints[f.name]) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return st.builds(cls, **fields)


ALL = sorted(commands.ops().values(), key=lambda cls: cls.OP)
any_command = st.sampled_from(ALL).flatmap(commands_of)


def test_every_command_has_its_legacy_list() -> None:
    assert set(LEGACY) == set(commands.ops())


@given(any_command)
def test_a_command_is_the_list_it_always_was_and_comes_back_from_it(cmd: Command) -> None:
    listed = cmd.to_list()
    assert listed == LEGACY[cmd.OP](cmd)
    assert commands.from_list(listed) == cmd
    # Through msgpack, as a stream entry carries a batch of them.
    (read,) = unpack_value(pack_value([listed]))
    assert commands.from_list(read) == cmd


@given(any_command)
def test_a_command_knows_its_room(cmd: Command) -> None:
    if isinstance(cmd, commands.RoomRequest):
        assert cmd.room == name_key(cmd.name)
    elif isinstance(cmd, commands.SecretRequest):
        assert cmd.room == cmd.room_id
    else:  # a session's (nick, DMs, hello, end) or a node's: not one room's
        assert cmd.room is None
        assert cmd.OP in {
            "hello",
            "end",
            "nick",
            "dm_key",
            "dm",
            "beat",
            "down",
            "handover",
            "begin",
        }


def test_public_room_commands_name_the_room_as_the_state_keys_it() -> None:
    """``Lobby`` and ``lobby`` are one room: one partition key."""
    assert C.Say("u", 1, "Lobby", "hi", False).room == C.Join("u", 2, "lobby").room == "lobby"


def test_lists_written_before_optional_fields_existed_still_read() -> None:
    assert commands.from_list(["beat", "n1", None]) == C.Beat("n1", None)
    assert commands.from_list(["dm", "u", 3, b"k", 1, b"ct"]) == C.Dm("u", 3, b"k", 1, b"ct")


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "say",
        42,
        {"op": "say"},
        [],
        ["say"],
        ["say", "u"],
        ["say", "u", 1, "lobby", "text"],  # one argument short
        ["say", "u", 1, "lobby", "text", False, "extra"],  # one too many
        ["beat", "n1", 5],  # a request id where none belongs
        ["end", "u", None],  # no quit message
    ],
)
def test_a_list_that_is_no_command_is_refused(raw: Any) -> None:
    with pytest.raises(MalformedCommand) as caught:
        commands.from_list(raw)
    assert not isinstance(caught.value, UnknownCommand)


@pytest.mark.parametrize("op", ["nope", "", 7, None, b"say"])
def test_an_unknown_op_is_refused_as_unknown(op: Any) -> None:
    with pytest.raises(UnknownCommand) as caught:
        commands.from_list([op, "u.1", None])
    assert (caught.value.op, caught.value.uid) == (op, "u.1")


async def test_apply_list_refuses_what_is_no_command_as_before(
    daemon: Daemon, clients: Any
) -> None:
    """What ``state.apply`` did with a list no node submits, ``apply_list``
    does: an unknown op naming nobody here is dropped silently, one naming a
    member raises (the bus logs it), a command of the wrong shape raises; the
    state is untouched either way."""
    alice = await clients(daemon, "alice")
    await alice.create("lobby")
    (uid,) = list(daemon.members)
    shared = daemon.shared
    state.apply_list(shared, ["nope", "nobody.1", None, "x"], 1)
    with pytest.raises(UnknownCommand):
        state.apply_list(shared, ["nope", uid, 9, "x"], 1)
    with pytest.raises(MalformedCommand):
        state.apply_list(shared, ["leave", uid, 9], 1)
    with pytest.raises(MalformedCommand):
        state.apply_list(shared, "leave", 1)
    assert [m.uid for m in daemon.rooms["lobby"].members] == [uid]
    # A good list is applied as the command it holds.
    state.apply_list(shared, ["topic", uid, 10_000, "lobby", "from a list"], 2)
    assert daemon.rooms["lobby"].topic == "from a list"
    changed = await next_event(alice, ev.TopicChanged)
    assert changed.topic == "from a list"


# -- the shared state without a node -------------------------------------------


def bare_state(node: str = "n1") -> tuple[SharedState, list[Channel]]:
    """A SharedState with no daemon: the rooms' flushes are only noted."""
    flushes: list[Channel] = []
    shared = SharedState(node, Limits(), 2.0, Stats(node), to_flush=flushes.append)
    return shared, flushes


def hello(uid: str, nick: str, node: str = "n2") -> C.Hello:
    return C.Hello(uid, node, nick, False, uid.encode(), None, [])


def test_the_shared_state_applies_commands_without_a_daemon() -> None:
    """The state modules need of their node only what SharedState holds: here
    two members of another node make a room and talk, and the room asks the
    node to flush it once per pass, through its callable."""
    shared, flushes = bare_state()
    for cmd in [
        hello("n2.1", "alice"),
        hello("n2.2", "bob"),
        C.Create("n2.1", 1, "Lobby", "hi all"),
        C.Join("n2.2", 1, "lobby"),
    ]:
        state.apply(shared, cmd, 1000)
    room = shared.rooms["lobby"]
    assert [m.nick for m in room.members] == ["alice", "bob"]
    assert flushes == [room]  # once for the pass, however many events
    room.flushed()
    state.apply(shared, C.Say("n2.2", 2, "LOBBY", "hello", False), 1001)
    state.apply(shared, C.Say("n2.1", 2, "lobby", "hi bob", True), 1002)
    assert flushes == [room, room] and room.seq == 4  # 2 joins, 2 messages
    assert len(room.ring.history(10)) == 2
    state.apply(shared, C.Down("n2"), 1003)  # their node stopped
    assert not shared.members and not shared.rooms


def test_a_snapshot_of_a_shared_state_loads_into_another() -> None:
    shared, _ = bare_state()
    for cmd in [
        hello("n2.1", "alice"),
        C.Create("n2.1", 1, "lobby", "topic"),
        C.Say("n2.1", 2, "lobby", "kept", False),
        C.Beat("n2", shared.settings),
    ]:
        state.apply(shared, cmd, 1000)
    data = snapshot.dump(shared, b"1000-0")
    other, _ = bare_state("n3")
    assert snapshot.load(other, data) == b"1000-0"
    assert snapshot.dump(other, b"1000-0") == data
    assert other.nicks["alice"].uid == "n2.1" and other.rooms["lobby"].topic == "topic"


def test_settings_that_differ_are_named_as_the_config_file_writes_them() -> None:
    """``resume_window = 60`` in one node's file against the default (120.0 s)
    reads "60 here but 120 there", not "60 here but 120.0 there"; a fraction
    and a value missing on one side are shown as they are."""
    mine = {"resume_window": 60, "node_timeout": 2.5, "ring_frames": 512}
    theirs = {"resume_window": 120.0, "node_timeout": 10.0, "ring_frames": 512, "commands": 1}
    assert settings_differ(mine, theirs) == (
        "commands is None here but 1 there, "
        "node_timeout is 2.5 here but 10 there, "
        "resume_window is 60 here but 120 there"
    )
    assert settings_differ(mine, dict(mine)) == ""
