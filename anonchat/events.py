"""One frozen dataclass per frame type, with validation both ways.

A frame on the wire is a msgpack map whose key ``t`` names its type.  Each
class here declares ``TYPE`` (that name), ``SENDER`` (who may send it:
``"client"``, ``"server"`` or ``"both"``) and its fields as annotations.
:func:`from_wire` checks a decoded map against the class: every required key
present, no unknown key, every value of the declared type and within its size
limit.  Any violation is a :class:`~anonchat.errors.RemoteProtocolError` with
code ``bad_field`` (or ``unknown_type`` / ``unexpected_frame``): schema errors
are protocol errors.

Meaning-level rules (what a valid nick is, how long a message may be) live in
:mod:`anonchat.names` and the daemon's limits; this module only guarantees
shape and bounded size.  Optional fields (default ``None`` or ``False``) are left
out of the map when they hold their default, so frames stay small.

Protocol version 1 is described byte for byte in ``docs/protocol.md``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args, get_origin, get_type_hints

from .errors import Code, LocalProtocolError, RemoteProtocolError

#: 2: crypto v2 of secret rooms (security.md, "Version 2"); 3: direct messages.
PROTOCOL_VERSION = 3
U63 = (1 << 63) - 1

Sender = Literal["client", "server", "both"]
Role = Literal["client", "server"]


@dataclass(frozen=True, slots=True)
class Max:
    """Annotation: at most ``n`` characters (str), bytes (bytes) or items (list)."""

    n: int


@dataclass(frozen=True, slots=True)
class Exactly(Max):
    """Annotation: exactly ``n`` bytes (keys, ids and signatures)."""


# Size ceilings of the schema.  They bound memory per frame; the daemon's
# configurable limits (docs/operations.md) are usually tighter.
NICK_MAX = 32
ROOM_MAX = 32
TOPIC_MAX = 300
TEXT_MAX = 16_384
SHORT_MAX = 200
LIST_MAX = 10_000

Nick = Annotated[str, Max(NICK_MAX)]
RoomName = Annotated[str, Max(ROOM_MAX)]
Topic = Annotated[str, Max(TOPIC_MAX)]
Text = Annotated[str, Max(TEXT_MAX)]
Short = Annotated[str, Max(SHORT_MAX)]
Kind = Annotated[str, Max(8)]
NickList = Annotated[list[str], Max(LIST_MAX)]

# Secret rooms: sizes fixed by crypto v1 (anonchat/crypto.py).
KEY_SIZE = 32
SIG_SIZE = 64
SEALED_MAX = 4096 + 16  # the largest padding bucket plus the AEAD tag
Key = Annotated[bytes, Exactly(KEY_SIZE)]
Signature = Annotated[bytes, Exactly(SIG_SIZE)]
Challenge = Annotated[bytes, Exactly(KEY_SIZE)]
Ciphertext = Annotated[bytes, Max(SEALED_MAX)]
SealKind = Annotated[str, Max(16)]
KeyList = Annotated[list[bytes], Max(LIST_MAX)]
Tag = Annotated[bytes, Exactly(KEY_SIZE)]  # HMAC-SHA-256
#: The most owner grants a secret room holds (they all travel in ``secret_joined``).
OWNERS_MAX = 64


class Frame:
    """Base of all frame classes."""

    TYPE: ClassVar[str]
    SENDER: ClassVar[Sender]
    _FIELDS: ClassVar[tuple[_FieldSpec, ...]]
    _KEYS: ClassVar[frozenset[str]]  # the keys its map may hold ("t" and the fields)

    def to_wire(self) -> dict[str, Any]:
        """The msgpack-ready map for this frame; checks our own values too."""
        body: dict[str, Any] = {"t": self.TYPE}
        for spec in self._FIELDS:
            value = getattr(self, spec.name)
            if not spec.required and value == spec.default:
                continue
            try:
                body[spec.name] = spec.check(value)
            except _FieldProblem as exc:
                raise LocalProtocolError(
                    Code.BAD_FIELD, f"{self.TYPE}.{spec.name}: {exc}"
                ) from None
        return body


class Record:
    """A map nested inside a frame (for example one entry of a room list)."""

    _FIELDS: ClassVar[tuple[_FieldSpec, ...]]
    _KEYS: ClassVar[frozenset[str]]

    def to_wire(self) -> dict[str, Any]:
        return {
            s.name: s.check(getattr(self, s.name))
            for s in self._FIELDS
            if s.required or getattr(self, s.name) != s.default
        }


class _FieldProblem(Exception):
    pass


#: Checks one value of a field and returns what goes on the wire (or into the
#: frame object); raises _FieldProblem.  Built once per field (see _checker):
#: every frame the daemon receives or sends runs these, so nothing about the
#: field's type is worked out again per value.
Checker = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _FieldSpec:
    name: str
    kind: Any
    required: bool
    default: Any
    max: int | None
    nullable: bool
    exact: bool = False
    outgoing: Checker = dataclasses.field(init=False, repr=False, compare=False)
    incoming: Checker = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "outgoing", _checker(self.kind, self.max, self.exact))
        object.__setattr__(self, "incoming", _incoming(self.kind, self.max, self.outgoing))

    def check(self, value: Any) -> Any:
        """A value of ours, before it goes on the wire."""
        if value is None:
            if self.nullable:
                return None
            raise _FieldProblem("missing value")
        return self.outgoing(value)


def _checker(kind: Any, max_: int | None, exact: bool = False) -> Checker:
    """The check of one (non-nil) value of type ``kind`` within ``max_``."""
    if kind is bool:

        def check_bool(value: Any) -> Any:
            if type(value) is not bool:
                raise _FieldProblem("expected a boolean")
            return value

        return check_bool
    if kind is int:

        def check_int(value: Any) -> Any:
            if type(value) is not int or not 0 <= value <= U63:
                raise _FieldProblem("expected a non-negative integer")
            return value

        return check_int
    if kind is str:
        limit = U63 if max_ is None else max_

        def check_str(value: Any) -> Any:
            if type(value) is not str:
                if not isinstance(value, str):
                    raise _FieldProblem("expected a string")
                value = str(value)  # a StrEnum member goes on the wire as its plain value
            if len(value) > limit:
                raise _FieldProblem(f"longer than {max_} characters")
            return value

        return check_str
    if kind is bytes:
        limit = U63 if max_ is None else max_

        def check_bytes(value: Any) -> Any:
            if type(value) is not bytes:
                raise _FieldProblem("expected bytes")
            if len(value) > limit:
                raise _FieldProblem(f"longer than {max_} bytes")
            if exact and len(value) != limit:
                raise _FieldProblem(f"must be exactly {max_} bytes")
            return value

        return check_bytes
    if get_origin(kind) is list:
        (item,) = get_args(kind)
        check_item = _checker(item, KEY_SIZE if item is bytes else NICK_MAX, exact=item is bytes)
        limit = U63 if max_ is None else max_

        def check_list(value: Any) -> Any:
            if type(value) is not list:
                raise _FieldProblem("expected a list")
            if len(value) > limit:
                raise _FieldProblem(f"more than {max_} items")
            return [check_item(v) for v in value]

        return check_list
    if isinstance(kind, type) and issubclass(kind, Record):
        record_cls = kind

        def check_record(value: Any) -> Any:
            if isinstance(value, record_cls):
                return value.to_wire()
            if type(value) is not dict:
                raise _FieldProblem("expected a map")
            return _build(record_cls, value, "record")

        return check_record
    raise TypeError(f"unsupported field type {kind!r}")  # a bug in this module


def _incoming(kind: Any, max_: int | None, outgoing: Checker) -> Checker:
    """The check of a value received from the peer: nil is refused, and maps
    become :class:`Record` objects."""
    if isinstance(kind, type) and issubclass(kind, Record):
        record_cls = kind

        def build_record(value: Any) -> Any:
            if value is None:
                raise _FieldProblem("nil is not a value; leave an optional key out instead")
            if type(value) is not dict:
                raise _FieldProblem("expected a map")
            return _build(record_cls, value, "record")

        return build_record
    if get_origin(kind) is list and isinstance(get_args(kind)[0], type):
        (item,) = get_args(kind)
        if issubclass(item, Record):
            build_item = _incoming(item, None, outgoing)
            limit = U63 if max_ is None else max_

            def build_records(value: Any) -> Any:
                if type(value) is not list or len(value) > limit:
                    raise _FieldProblem("expected a bounded list")
                return [build_item(v) for v in value]

            return build_records

    def check_value(value: Any) -> Any:
        if value is None:
            raise _FieldProblem("nil is not a value; leave an optional key out instead")
        return outgoing(value)

    return check_value


def _specs(cls: type) -> tuple[_FieldSpec, ...]:
    hints = get_type_hints(cls, include_extras=True)
    specs = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        nullable = False
        if get_origin(kind) in (typing.Union, _UnionType):
            args = [a for a in get_args(kind) if a is not type(None)]
            nullable = len(args) != len(get_args(kind))
            (kind,) = args
        max_ = None
        exact = False
        if get_origin(kind) is Annotated:
            kind, *extras = get_args(kind)
            bound = next(e for e in extras if isinstance(e, Max))
            max_, exact = bound.n, isinstance(bound, Exactly)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else f.default
        specs.append(_FieldSpec(f.name, kind, required, default, max_, nullable, exact))
    return tuple(specs)


_UnionType = type(int | None)

F = TypeVar("F", bound="Frame")
R = TypeVar("R", bound="Record")

_RECEIVERS: dict[str, tuple[Role, ...]] = {
    "client": ("server",),
    "server": ("client",),
    "both": ("client", "server"),
}

#: (role of the receiver, type name) -> class
_REGISTRY: dict[tuple[Role, str], type[Frame]] = {}
_ALL_TYPES: set[str] = set()


def frame(cls: type[F]) -> type[F]:
    """Class decorator: register a frame class for the side(s) that receive it."""
    cls._FIELDS = _specs(cls)
    cls._KEYS = frozenset(s.name for s in cls._FIELDS) | {"t"}
    receivers: tuple[Role, ...] = _RECEIVERS[cls.SENDER]
    for role in receivers:
        key = (role, cls.TYPE)
        assert key not in _REGISTRY, key
        _REGISTRY[key] = cls
    _ALL_TYPES.add(cls.TYPE)
    return cls


def record(cls: type[R]) -> type[R]:
    cls._FIELDS = _specs(cls)
    cls._KEYS = frozenset(s.name for s in cls._FIELDS)
    return cls


def _build(cls: type[Any], body: dict[str, Any], what: str) -> Any:
    """The object of class ``cls`` (a frame, or a record) a received map describes."""
    keys: frozenset[str] = cls._KEYS
    if not keys.issuperset(body):
        unknown = next(k for k in body if k not in keys)
        raise _FieldProblem(f"unknown key {repr(unknown)[:40]}")
    kwargs: dict[str, Any] = {}
    for spec in cls._FIELDS:
        name = spec.name
        if name in body:
            try:
                kwargs[name] = spec.incoming(body[name])
            except _FieldProblem as exc:
                raise _FieldProblem(f"{name}: {exc}") from None
        elif spec.required:
            raise _FieldProblem(f"missing key {name!r}")
    return cls(**kwargs)


def from_wire(body: dict[str, Any], receiver: Role) -> Frame:
    """Validate a decoded map and build its frame object, as seen by ``receiver``."""
    name = body.get("t")
    cls = _REGISTRY.get((receiver, name)) if isinstance(name, str) else None
    if cls is None:
        if name in _ALL_TYPES:
            raise RemoteProtocolError(
                Code.UNEXPECTED_FRAME, f"a {receiver} does not accept frames of type {name!r}"
            )
        shown = repr(name)[:40]
        raise RemoteProtocolError(Code.UNKNOWN_TYPE, f"unknown frame type {shown}")
    fast = _FAST_BUILD.get(cls)
    try:
        result: Frame = fast(body) if fast is not None else _build(cls, body, cls.TYPE)
    except _FieldProblem as exc:
        raise RemoteProtocolError(Code.BAD_FIELD, f"{cls.TYPE}: {exc}") from None
    return result


#: Frames with a builder of their own: the hottest ones, checked inline.
_FAST_BUILD: dict[type[Frame], Callable[[dict[str, Any]], Any]] = {}


# --------------------------------------------------------------------------
# Frames sent by both sides


@frame
@dataclass(frozen=True, slots=True)
class Ping(Frame):
    """Keepalive or latency probe; the peer answers with a ``pong`` of the same ``n``."""

    TYPE = "ping"
    SENDER = "both"
    n: int


@frame
@dataclass(frozen=True, slots=True)
class Pong(Frame):
    TYPE = "pong"
    SENDER = "both"
    n: int


@frame
@dataclass(frozen=True, slots=True)
class Bye(Frame):
    """Orderly goodbye.  From a client: quit.  From the server: it is closing."""

    TYPE = "bye"
    SENDER = "both"
    code: Short
    msg: Short


# --------------------------------------------------------------------------
# Client -> server


Token = Annotated[bytes, Exactly(16)]


@record
@dataclass(frozen=True, slots=True)
class Seen(Record):
    """The last sequence number a resuming client received in one room.

    ``room`` names a public room, ``secret`` a secret room's id, ``dm`` (true)
    the session's direct messages: exactly one is set.
    """

    seq: int
    room: RoomName | None = None
    secret: Key | None = None
    dm: bool = False


@frame
@dataclass(frozen=True, slots=True)
class ClientHello(Frame):
    """First frame of a client.  ``nick``: the nick wanted (refused if taken or invalid);
    without it the server picks a random one."""

    TYPE = "hello"
    SENDER = "client"
    v: int
    client: Short | None = None
    nick: Nick | None = None
    resume: Token | None = None
    seen: Annotated[list[Seen], Max(LIST_MAX)] | None = None


@frame
@dataclass(frozen=True, slots=True)
class SetNick(Frame):
    TYPE = "nick"
    SENDER = "client"
    id: int
    nick: Nick


@frame
@dataclass(frozen=True, slots=True)
class ListRooms(Frame):
    TYPE = "list"
    SENDER = "client"
    id: int


@frame
@dataclass(frozen=True, slots=True)
class Create(Frame):
    """Create a public room and join it; the creator becomes its owner."""

    TYPE = "create"
    SENDER = "client"
    id: int
    room: RoomName
    topic: Topic | None = None


@frame
@dataclass(frozen=True, slots=True)
class Join(Frame):
    TYPE = "join"
    SENDER = "client"
    id: int
    room: RoomName


@frame
@dataclass(frozen=True, slots=True)
class Leave(Frame):
    TYPE = "leave"
    SENDER = "client"
    id: int
    room: RoomName


@frame
@dataclass(frozen=True, slots=True)
class SetTopic(Frame):
    TYPE = "topic"
    SENDER = "client"
    id: int
    room: RoomName
    topic: Topic


@frame
@dataclass(frozen=True, slots=True)
class Who(Frame):
    TYPE = "who"
    SENDER = "client"
    id: int
    room: RoomName


@frame
@dataclass(frozen=True, slots=True)
class Say(Frame):
    """A message to a room.  ``me`` marks an action (``/me waves``)."""

    TYPE = "say"
    SENDER = "client"
    id: int
    room: RoomName
    text: Text
    me: bool = False


def _say_bounds() -> tuple[int, int]:
    """Say's bounds, read from its field specs (so the inline checks below
    cannot drift from the declared types)."""
    specs = {spec.name: spec for spec in Say._FIELDS}
    assert [(n, specs[n].kind, specs[n].required) for n in specs] == [
        ("id", int, True),
        ("room", str, True),
        ("text", str, True),
        ("me", bool, False),
    ]
    room_max, text_max = specs["room"].max, specs["text"].max
    assert room_max is not None and text_max is not None
    return room_max, text_max


_SAY_ROOM_MAX, _SAY_TEXT_MAX = _say_bounds()


def _build_say(body: dict[str, Any]) -> Say:
    """:func:`_build` for ``say``, every message's frame: the same checks on each
    field, inline (no keyword arguments, no checker calls).  A body that is not
    plainly valid goes through :func:`_build`, which names what is wrong;
    tests/test_events.py checks that both agree."""
    if Say._KEYS.issuperset(body):
        rid = body.get("id")
        room = body.get("room")
        text = body.get("text")
        me = body.get("me", False)
        if (
            type(rid) is int
            and 0 <= rid <= U63
            and type(room) is str
            and len(room) <= _SAY_ROOM_MAX
            and type(text) is str
            and len(text) <= _SAY_TEXT_MAX
            and type(me) is bool
        ):
            say = _new_say(Say)  # Say(rid, room, text, me), without the frozen
            _set_say_id(say, rid)  # dataclass's __init__ (one object.__setattr__ per
            _set_say_room(say, room)  # field): the slots are set directly
            _set_say_text(say, text)
            _set_say_me(say, me)
            return say
    result: Say = _build(Say, body, Say.TYPE)
    return result


_new_say = object.__new__
_set_say_id, _set_say_room, _set_say_text, _set_say_me = (
    Say.__dict__[name].__set__ for name in ("id", "room", "text", "me")
)


_FAST_BUILD[Say] = _build_say


def say_from_wire(body: dict[str, Any]) -> Say:
    """``from_wire(body, "server")`` for a body whose ``t`` is ``"say"``."""
    try:
        return _build_say(body)
    except _FieldProblem as exc:
        raise RemoteProtocolError(Code.BAD_FIELD, f"say: {exc}") from None


#: A say's fields, checked: (id, room, text, me).
SayFields = tuple[int, str, str, bool]


def says_fields(bodies: list[dict[str, Any]]) -> tuple[list[SayFields], RemoteProtocolError | None]:
    """The fields of consecutive ``say`` bodies (one read's), each checked as
    :func:`say_from_wire` checks it, without making the frames (the daemon's
    message path needs none, see Session._say_run): the same checks as
    :func:`_build_say`'s, inline (a body that is not plainly valid goes through
    it), up to the first body it refuses, and that refusal (None if none).
    tests/test_events.py holds it equal to :func:`say_from_wire` on each."""
    fields: list[SayFields] = []
    keys = Say._KEYS
    for body in bodies:
        if keys.issuperset(body):
            rid = body.get("id")
            room = body.get("room")
            text = body.get("text")
            me = body.get("me", False)
            if (
                type(rid) is int
                and 0 <= rid <= U63
                and type(room) is str
                and len(room) <= _SAY_ROOM_MAX
                and type(text) is str
                and len(text) <= _SAY_TEXT_MAX
                and type(me) is bool
            ):
                fields.append((rid, room, text, me))
                continue
        try:
            say = say_from_wire(body)
        except RemoteProtocolError as exc:
            return fields, exc
        fields.append((say.id, say.room, say.text, say.me))
    return fields, None


@frame
@dataclass(frozen=True, slots=True)
class Kick(Frame):
    """An owner removes ``nick`` from ``room`` (with ``ban``: for the room's lifetime)."""

    TYPE = "kick"
    SENDER = "client"
    id: int
    room: RoomName
    nick: Nick
    msg: Short | None = None
    ban: bool = False


@frame
@dataclass(frozen=True, slots=True)
class Op(Frame):
    """An owner makes ``nick`` an owner of ``room`` too."""

    TYPE = "op"
    SENDER = "client"
    id: int
    room: RoomName
    nick: Nick


@frame
@dataclass(frozen=True, slots=True)
class RoomMode(Frame):
    """An owner changes the room's modes; fields left out stay as they are.

    ``locked``: nobody new may join.  ``slow``: members who are not owners may
    send one message per ``slow`` seconds (0: off).  ``history``: newcomers get
    the recent messages (on by default).
    """

    TYPE = "mode"
    SENDER = "client"
    id: int
    room: RoomName
    locked: bool | None = None
    slow: int | None = None
    history: bool | None = None


# --------------------------------------------------------------------------
# Server -> client


@frame
@dataclass(frozen=True, slots=True)
class ServerHello(Frame):
    """Answer to the client's hello: the version spoken, the nick given, the limits.

    ``challenge`` is 32 random bytes for this connection: secret-room join
    proofs sign it, so a proof cannot be replayed on another connection.
    ``token`` lets a client that loses its connection resume this session
    within ``resume_window`` seconds (``resume`` in the next client hello);
    ``resumed`` says whether this connection did resume one.
    ``msg_burst`` and ``msg_interval_us`` are the message rate limit (that many
    messages at once, then one per that many microseconds; 0: not told), so
    a client can pace itself rather than be refused: a refused sealed message
    would still have used up its counter.  ``dm_burst`` and ``dm_interval_us``
    are the same for direct messages, and ``dm_max`` the largest ``ct`` of a
    ``dm_send`` in bytes.
    """

    TYPE = "hello"
    SENDER = "server"
    v: int
    server: Short
    nick: Nick
    max_frame: int
    max_text: int
    ping_interval: int
    challenge: Challenge
    token: Token
    resumed: bool = False
    resume_window: int = 0
    msg_burst: int = 0
    msg_interval_us: int = 0
    dm_burst: int = 0
    dm_interval_us: int = 0
    dm_max: int = 0


@frame
@dataclass(frozen=True, slots=True)
class Ok(Frame):
    """Success of request ``id``; for a ``say``, ``seq`` is the message's number."""

    TYPE = "ok"
    SENDER = "server"
    id: int
    seq: int | None = None


@frame
@dataclass(frozen=True, slots=True)
class Error(Frame):
    """Failure.  With ``id``: that request failed.  Without: the connection failed."""

    TYPE = "error"
    SENDER = "server"
    code: Short
    msg: Short
    id: int | None = None


@record
@dataclass(frozen=True, slots=True)
class RoomInfo(Record):
    room: RoomName
    members: int
    topic: Topic


@frame
@dataclass(frozen=True, slots=True)
class Rooms(Frame):
    """The public rooms, largest first; ``more`` counts those left out to fit one frame."""

    TYPE = "rooms"
    SENDER = "server"
    id: int
    rooms: Annotated[list[RoomInfo], Max(LIST_MAX)]
    more: int = 0


@frame
@dataclass(frozen=True, slots=True)
class Joined(Frame):
    """Answer to ``join``/``create``: the room as it is now.

    ``seq`` is the room's latest sequence number; the next event will carry ``seq + 1``.
    ``more`` counts members left out of ``members`` to keep the frame within its limit.
    """

    TYPE = "joined"
    SENDER = "server"
    id: int
    room: RoomName
    topic: Topic
    members: NickList
    seq: int
    owner: bool = False
    more: int = 0
    owners: NickList | None = None
    locked: bool = False
    slow: int = 0


@frame
@dataclass(frozen=True, slots=True)
class Members(Frame):
    TYPE = "members"
    SENDER = "server"
    id: int
    room: RoomName
    members: NickList
    more: int = 0
    owners: NickList | None = None


@frame
@dataclass(frozen=True, slots=True)
class Msg(Frame):
    """A message in a room, numbered by the room's sequence and stamped by the server."""

    TYPE = "msg"
    SENDER = "server"
    room: RoomName
    seq: int
    ts: int
    nick: Nick
    text: Text
    me: bool = False


PRESENCE_KINDS: frozenset[str] = frozenset({"join", "leave", "nick", "quit", "kick", "ban", "op"})


@frame
@dataclass(frozen=True, slots=True)
class Presence(Frame):
    """Someone joined, left, changed nick (``new``) or quit, in ``room``; or an
    owner (``by``) kicked, banned or made an owner of ``nick``.  ``msg`` is a
    quit message or a kick reason."""

    TYPE = "presence"
    SENDER = "server"
    room: RoomName
    seq: int
    ts: int
    kind: Kind
    nick: Nick
    new: Nick | None = None
    msg: Short | None = None
    by: Nick | None = None

    def __post_init__(self) -> None:
        if self.kind not in PRESENCE_KINDS:
            raise _FieldProblem(f"kind must be one of {sorted(PRESENCE_KINDS)}")


@frame
@dataclass(frozen=True, slots=True)
class TopicChanged(Frame):
    TYPE = "topic_changed"
    SENDER = "server"
    room: RoomName
    seq: int
    ts: int
    nick: Nick
    topic: Topic


# --------------------------------------------------------------------------
# Secret rooms: the daemon sees only a 32-byte room id, the room's public
# join key, each member's session key and sealed bytes it cannot open.


@frame
@dataclass(frozen=True, slots=True)
class SecretCreate(Frame):
    """Create a secret room: register its join key, proving possession of it.

    ``proof`` signs the connection's challenge (see crypto.py); ``sender`` is
    the session key this member's sealed messages will be signed with, and
    ``key_proof`` signs the same challenge with it (so nobody enters under
    another member's key); ``owner_key`` is the room's owner key, vouched for
    by ``owner_tag`` (an HMAC only passphrase holders can make: the daemon
    stores both and cannot check it).
    """

    TYPE = "secret_create"
    SENDER = "client"
    id: int
    room: Key
    auth: Key
    proof: Signature
    sender: Key
    key_proof: Signature
    owner_key: Key
    owner_tag: Tag


@frame
@dataclass(frozen=True, slots=True)
class SecretJoin(Frame):
    """Join a secret room with a proof signed by its join key, and a proof
    (``key_proof``) that the member holds its session key ``sender``."""

    TYPE = "secret_join"
    SENDER = "client"
    id: int
    room: Key
    proof: Signature
    sender: Key
    key_proof: Signature


@frame
@dataclass(frozen=True, slots=True)
class SecretLeave(Frame):
    TYPE = "secret_leave"
    SENDER = "client"
    id: int
    room: Key


@frame
@dataclass(frozen=True, slots=True)
class Seal(Frame):
    """A sealed message for a secret room; the daemon adds the sender's key."""

    TYPE = "seal"
    SENDER = "client"
    id: int
    room: Key
    counter: int
    epoch: int
    kind: SealKind
    ct: Ciphertext
    sig: Signature


OWNER_ACT_KINDS: frozenset[str] = frozenset({"kick", "ban", "op", "mode", "close"})
#: The optional fields of an :class:`OwnerAct` each kind must carry; the others
#: it must leave out (``bad_field`` otherwise).  A mode action carries all
#: three modes even when false or 0: their default is "unset", not false.
OWNER_ACT_FIELDS: dict[str, tuple[str, ...]] = {
    "kick": ("target",),
    "ban": ("target",),
    "op": ("target",),
    "mode": ("locked", "slow", "history"),
    "close": (),
}
_OWNER_ACT_OPTIONAL = ("target", "locked", "slow", "history")


@record
@dataclass(frozen=True, slots=True)
class OwnerAct(Record):
    """One signed owner action of a secret room (see crypto.py, "Owners").

    ``actor`` signed it: the room's owner key or a session key granted ``op``.
    ``counter`` is the room's next action number.  ``kick``, ``ban`` and ``op``
    name a member's session key as ``target``; ``mode`` carries the room's whole
    new mode (``locked``, ``slow`` seconds, ``history``) and no target;
    ``close`` (protocol version 3) carries nothing more: the room takes no new
    sealed message and no newcomer from then on (``/secret rotate``).
    """

    kind: Kind
    counter: int
    actor: Key
    sig: Signature
    target: Key | None = None
    locked: bool | None = None
    slow: int | None = None
    history: bool | None = None

    def __post_init__(self) -> None:
        if self.kind not in OWNER_ACT_KINDS:
            raise _FieldProblem(f"kind must be one of {sorted(OWNER_ACT_KINDS)}")
        wanted = OWNER_ACT_FIELDS[self.kind]
        present = tuple(f for f in _OWNER_ACT_OPTIONAL if getattr(self, f) is not None)
        if present != wanted:
            fields = ", ".join(wanted)
            raise _FieldProblem(
                f"a {self.kind} action carries exactly {fields} of the optional fields"
            )


@frame
@dataclass(frozen=True, slots=True)
class SecretAct(Frame):
    """An owner's signed action in a secret room; the daemon checks and enforces it."""

    TYPE = "secret_act"
    SENDER = "client"
    id: int
    room: Key
    act: OwnerAct


@frame
@dataclass(frozen=True, slots=True)
class SecretJoined(Frame):
    """Answer to ``secret_join``/``secret_create``: the members' session keys.

    ``owner_key`` and ``owner_tag`` are what the creator registered (members
    check the tag); ``grants`` are the ``op`` actions so far, ``mode`` the last
    ``mode`` action (none: open, no slow mode, history on) and ``acts`` the
    number of the room's last owner action.  ``owner``: this session created it.
    """

    TYPE = "secret_joined"
    SENDER = "server"
    id: int
    room: Key
    seq: int
    members: KeyList
    owner_key: Key
    owner_tag: Tag
    owner: bool = False
    more: int = 0
    acts: int = 0
    grants: Annotated[list[OwnerAct], Max(OWNERS_MAX)] | None = None
    mode: OwnerAct | None = None


@frame
@dataclass(frozen=True, slots=True)
class Sealed(Frame):
    """A sealed message relayed to every member, numbered and stamped by the daemon."""

    TYPE = "sealed"
    SENDER = "server"
    room: Key
    seq: int
    ts: int
    sender: Key
    counter: int
    epoch: int
    kind: SealKind
    ct: Ciphertext
    sig: Signature


@frame
@dataclass(frozen=True, slots=True)
class SecretPresence(Frame):
    """A session key joined, left or quit a secret room (the nick is sealed, not here)."""

    TYPE = "secret_presence"
    SENDER = "server"
    room: Key
    seq: int
    ts: int
    kind: Kind
    sender: Key

    def __post_init__(self) -> None:
        if self.kind not in {"join", "leave", "quit"}:
            raise _FieldProblem("kind must be join, leave or quit")


@frame
@dataclass(frozen=True, slots=True)
class SecretActed(Frame):
    """An owner action the daemon accepted and enforced, relayed to every member
    (a kicked or banned target too, before it is removed).  Members verify it."""

    TYPE = "secret_acted"
    SENDER = "server"
    room: Key
    seq: int
    ts: int
    act: OwnerAct


@frame
@dataclass(frozen=True, slots=True)
class Missed(Frame):
    """Events ``first`` to ``last`` of a room are lost to a resuming client:
    gone from the daemon's memory, or older than what fits its ``sendq``."""

    TYPE = "missed"
    SENDER = "server"
    first: int
    last: int
    room: RoomName | None = None
    secret: Key | None = None
    dm: bool = False


@frame
@dataclass(frozen=True, slots=True)
class ModeChanged(Frame):
    """The owner ``nick`` changed the modes of ``room``; these are all of them now."""

    TYPE = "mode_changed"
    SENDER = "server"
    room: RoomName
    seq: int
    ts: int
    nick: Nick
    locked: bool
    slow: int
    history: bool


# --------------------------------------------------------------------------
# Direct messages: the daemon relays ciphertext between two sessions' DM keys
# (anonchat/direct.py); it sees who writes to whom, when, and padded sizes.


@frame
@dataclass(frozen=True, slots=True)
class DmKey(Frame):
    """Register this session's DM card: ``sign`` (Ed25519) signed ``dh``
    (X25519) in ``sig``; ``proof`` signs the connection's challenge with it."""

    TYPE = "dm_key"
    SENDER = "client"
    id: int
    sign: Key
    dh: Key
    sig: Signature
    proof: Signature


@frame
@dataclass(frozen=True, slots=True)
class DmLookup(Frame):
    """Ask for the DM card of the session holding ``nick``, or of the member
    of the secret room ``room`` whose session key there is ``member``."""

    TYPE = "dm_lookup"
    SENDER = "client"
    id: int
    nick: Nick | None = None
    room: Key | None = None
    member: Key | None = None

    def __post_init__(self) -> None:
        by_nick = self.nick is not None
        by_member = self.room is not None and self.member is not None
        if by_nick == by_member or (self.room is None) != (self.member is None):
            raise _FieldProblem("a lookup names a nick, or a room and a member")


@frame
@dataclass(frozen=True, slots=True)
class DmSend(Frame):
    """A sealed direct message to the session whose DM key is ``to``.  With
    ``hide_nick`` the daemon does not tell the recipient the sender's nick
    (a conversation begun in a secret room, where the sender has a nick of
    the room's own: its public nick would link the two)."""

    TYPE = "dm_send"
    SENDER = "client"
    id: int
    to: Key
    counter: int
    ct: Ciphertext
    hide_nick: bool = False


@frame
@dataclass(frozen=True, slots=True)
class DmCard(Frame):
    """Answer to ``dm_lookup``: the session's nick now ("" for a lookup of a
    secret-room member: its public nick is not told) and its DM card."""

    TYPE = "dm_card"
    SENDER = "server"
    id: int
    nick: Nick
    sign: Key
    dh: Key
    sig: Signature


@frame
@dataclass(frozen=True, slots=True)
class Dm(Frame):
    """A direct message relayed to its recipient, numbered by the recipient's
    own sequence of direct messages and stamped by the daemon: the sender's
    nick now ("" if it asked to hide it), its DM card (``sign``, ``dh``,
    ``sig``) and the sealed bytes."""

    TYPE = "dm"
    SENDER = "server"
    seq: int
    ts: int
    nick: Nick
    sign: Key
    dh: Key
    sig: Signature
    counter: int
    ct: Ciphertext


def frame_types() -> dict[tuple[Role, str], type[Frame]]:
    """Every registered frame class, keyed by (receiving role, type name)."""
    return dict(_REGISTRY)
