"""The commands of the shared state: one frozen dataclass per command.

A session checks what only its connection can check, then submits a
command (``Session.submit``); every node applies every command in one order
(``state.apply``).  Like the frames of ``events.py``, each command is a
class with typed fields, and it has a plain form for the Redis stream:
``to_list()`` gives ``[op, uid, request_id, *args]`` (msgpack packs it as it
is) and ``from_list()`` builds the command again from such a list.  The
list's shape is the one the stream has always carried, so entries written
before the commands were typed read the same.

* A :class:`Request` is a member's request, answered to its ``request_id``:
  a :class:`RoomRequest` concerns one public room (``name``, as the client
  spelled it), a :class:`SecretRequest` one secret room (``room_id``), the
  others the session itself (``Nick``, ``DmKey``, ``Dm``).
* :class:`Hello` and :class:`End` begin and end a session; :class:`Beat`,
  :class:`Down`, :class:`Handover` and :class:`Begin` are a node's.  Their
  lists hold ``None`` where a request's id would be.

``room`` says which room a command concerns: ``names.name_key`` of a public
room's name (a ``str``), a secret room's id (``bytes``), or ``None`` for a
command of a session or a node, which may touch many rooms.  Nothing routes
by it yet; a log split by room (issue 19) would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from ..names import name_key

#: A room a command concerns: a public room's name_key, or a secret room's id.
RoomKey = str | bytes


class MalformedCommand(ValueError):
    """A list that is no command of this version (from the stream: never ours)."""

    def __init__(self, message: str, op: Any = None, uid: Any = None) -> None:
        super().__init__(message)
        self.op = op
        self.uid = uid


class UnknownCommand(MalformedCommand):
    """A list whose op no command of this version has."""


class Command:
    """Base of all commands."""

    __slots__ = ()

    #: The command's name: the first item of its list.
    OP: ClassVar[str]
    #: Its first field (uid, or node), and the others, in the list's order.
    _FIRST: ClassVar[str]
    _REST: ClassVar[tuple[str, ...]]
    #: Whether the list's third item is a request id (else it is None).
    _HAS_ID: ClassVar[bool] = False

    @property
    def room(self) -> RoomKey | None:
        """The room this command concerns, or None (a session's or a node's)."""
        return None

    def to_list(self) -> list[Any]:
        """``[op, uid, request_id, *args]``: what the Redis stream carries."""
        values = [getattr(self, name) for name in self._REST]
        if self._HAS_ID:  # (the request id is the second field)
            return [self.OP, getattr(self, self._FIRST), *values]
        return [self.OP, getattr(self, self._FIRST), None, *values]


C = TypeVar("C", bound=Command)

#: op -> class
_BY_OP: dict[str, type[Command]] = {}
#: op -> its constructor, and whether the list's third item is its second field
_BUILD: dict[str, tuple[Callable[..., Command], bool]] = {}


def command(cls: type[C]) -> type[C]:
    """Class decorator: register a command class under its ``OP``."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    cls._FIRST = names[0]
    cls._REST = tuple(names[1:])
    assert cls.OP not in _BY_OP, cls.OP
    _BY_OP[cls.OP] = cls
    _BUILD[cls.OP] = (cls, cls._HAS_ID)
    return cls


def from_list(raw: Any) -> Command:
    """The command a list from the stream holds; :class:`MalformedCommand`
    (:class:`UnknownCommand` for an op of no command) if it holds none."""
    if not isinstance(raw, list) or len(raw) < 3:
        raise MalformedCommand(f"not a command: {repr(raw)[:60]}")
    op, head, request_id = raw[0], raw[1], raw[2]
    found = _BUILD.get(op) if isinstance(op, str) else None
    if found is None:
        raise UnknownCommand(f"unknown command {repr(op)[:40]}", op, head)
    build, has_id = found
    try:
        if has_id:
            return build(head, request_id, *raw[3:])
        if request_id is not None:
            raise TypeError("a request id where none belongs")
        return build(head, *raw[3:])
    except TypeError as exc:
        raise MalformedCommand(f"{op}: {exc}", op, head) from None


def ops() -> dict[str, type[Command]]:
    """Every command class, by op."""
    return dict(_BY_OP)


# -- a member's requests ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberCommand(Command):
    """A command of one member of the shared state (``uid``): applied only if
    that member is still there when it comes up."""

    uid: str


@dataclass(frozen=True, slots=True)
class Request(MemberCommand):
    """A member's request: refused or answered to ``request_id``."""

    _HAS_ID: ClassVar[bool] = True
    request_id: int


@dataclass(frozen=True, slots=True)
class RoomRequest(Request):
    """A request about one public room, by the name the client gave."""

    name: str

    @property
    def room(self) -> RoomKey | None:
        return name_key(self.name)


@dataclass(frozen=True, slots=True)
class SecretRequest(Request):
    """A request about one secret room, by its opaque id."""

    room_id: bytes

    @property
    def room(self) -> RoomKey | None:
        return self.room_id


@command
@dataclass(frozen=True, slots=True)
class Nick(Request):
    OP: ClassVar[str] = "nick"
    nick: str


@command
@dataclass(frozen=True, slots=True)
class Create(RoomRequest):
    OP: ClassVar[str] = "create"
    topic: str


@command
@dataclass(frozen=True, slots=True)
class Join(RoomRequest):
    OP: ClassVar[str] = "join"


@command
@dataclass(frozen=True, slots=True)
class Leave(RoomRequest):
    OP: ClassVar[str] = "leave"


@command
@dataclass(frozen=True, slots=True)
class Topic(RoomRequest):
    OP: ClassVar[str] = "topic"
    topic: str


@command
@dataclass(frozen=True, slots=True)
class Say(RoomRequest):
    """A message (on one node ``Session.on_say`` applies it without building one)."""

    OP: ClassVar[str] = "say"
    text: str
    me: bool


@command
@dataclass(frozen=True, slots=True)
class Kick(RoomRequest):
    OP: ClassVar[str] = "kick"
    nick: str
    reason: str | None
    ban: bool


@command
@dataclass(frozen=True, slots=True)
class Op(RoomRequest):
    OP: ClassVar[str] = "op"
    nick: str


@command
@dataclass(frozen=True, slots=True)
class Mode(RoomRequest):
    """What an owner changes (None: unchanged)."""

    OP: ClassVar[str] = "mode"
    locked: bool | None
    slow: int | None
    history: bool | None


@command
@dataclass(frozen=True, slots=True)
class SecretCreate(SecretRequest):
    OP: ClassVar[str] = "s_create"
    auth: bytes
    sender: bytes
    owner_key: bytes
    owner_tag: bytes


@command
@dataclass(frozen=True, slots=True)
class SecretJoin(SecretRequest):
    """The join proof is checked when applied, against ``challenge`` (the
    session's), where the room is known for sure."""

    OP: ClassVar[str] = "s_join"
    proof: bytes
    challenge: bytes
    sender: bytes


@command
@dataclass(frozen=True, slots=True)
class SecretLeave(SecretRequest):
    OP: ClassVar[str] = "s_leave"


@command
@dataclass(frozen=True, slots=True)
class Seal(SecretRequest):
    """A sealed frame to relay, as the client sealed it."""

    OP: ClassVar[str] = "seal"
    counter: int
    epoch: int
    kind: str
    ct: bytes
    sig: bytes


@command
@dataclass(frozen=True, slots=True)
class SecretAct(SecretRequest):
    """A signed owner action, as its wire map (``events.OwnerAct.to_wire``)."""

    OP: ClassVar[str] = "s_act"
    act: dict[str, Any]


@command
@dataclass(frozen=True, slots=True)
class DmKey(Request):
    OP: ClassVar[str] = "dm_key"
    sign: bytes
    dh: bytes
    sig: bytes


@command
@dataclass(frozen=True, slots=True)
class Dm(Request):
    OP: ClassVar[str] = "dm"
    to: bytes
    counter: int
    ct: bytes
    hide_nick: bool = False


# -- sessions --------------------------------------------------------------------


@command
@dataclass(frozen=True, slots=True)
class Hello(Command):
    """A session begins (``resume_hash``: it resumes the session holding that
    token); ``seen`` is ``session.resume_points``' list of [room, secret, seq]."""

    OP: ClassVar[str] = "hello"
    uid: str
    node: str
    nick: str
    random: bool
    token_hash: bytes
    resume_hash: bytes | None
    seen: list[list[Any]]


@command
@dataclass(frozen=True, slots=True)
class End(MemberCommand):
    """A session is over (not resumed in time, or it quit)."""

    OP: ClassVar[str] = "end"
    quit_msg: str | None


# -- nodes -----------------------------------------------------------------------


@command
@dataclass(frozen=True, slots=True)
class Beat(Command):
    """A node is alive, with the settings it applies commands with."""

    OP: ClassVar[str] = "beat"
    node: str
    settings: dict[str, Any] | None = None


@command
@dataclass(frozen=True, slots=True)
class Down(Command):
    """A node stopped: its sessions end."""

    OP: ClassVar[str] = "down"
    node: str


@command
@dataclass(frozen=True, slots=True)
class Handover(Command):
    """A node stopped while others run: its sessions stay resumable."""

    OP: ClassVar[str] = "handover"
    node: str


@command
@dataclass(frozen=True, slots=True)
class Begin(Command):
    """The first entry of a stream (``redisbus``): its epoch, and the point
    of the old stream its state was restored from (``0-0``: a new service)."""

    OP: ClassVar[str] = "begin"
    node: str
    epoch: bytes
    taken_at: bytes
