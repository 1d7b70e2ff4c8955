"""Messages the network workers post to the UI.

Workers never touch widgets: they talk to the daemon through
:class:`anonchat.client.Client` and post one of these; the app's handlers
update the state and the screen, in the order the messages were posted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from .. import events as ev
from ..client import Client, Event


@dataclass
class Connected(Message):
    """The first connection of a session is up."""

    client: Client


@dataclass
class ConnectFailed(Message):
    """The first connection failed (``unreachable``, ``nick_taken``, ...)."""

    code: str
    message: str


@dataclass
class ServerEvent(Message):
    """What the client pushed: a frame (Msg, Presence, TopicChanged, Bye, Error)
    or an opened secret-room event."""

    frame: Event


@dataclass
class ConnectionLost(Message):
    code: str
    message: str


@dataclass
class Reconnecting(Message):
    """Waiting ``delay`` seconds before attempt number ``attempt``."""

    attempt: int
    delay: float
    last_error: str


@dataclass
class Reconnected(Message):
    """A new connection is up: the session was resumed (nothing missed), or
    else the rooms were joined again where possible."""

    client: Client
    joined: list[ev.Joined]
    failed: list[tuple[str, str]]  # (room, reason)
    secret: list[str] = field(default_factory=list)  # secret rooms rejoined with kept keys


@dataclass
class Latency(Message):
    seconds: float


@dataclass
class RoomJoined(Message):
    joined: ev.Joined
    switch: bool = True


@dataclass
class RoomLeft(Message):
    """We are out of a room: we left it, or (``removed``: why) an owner removed us."""

    room: str
    secret: bool = False
    removed: str = ""


@dataclass
class SecretEntered(Message):
    """We are in a secret room (joined, created, or joined again after a
    reconnect).  ``passphrase`` is kept in memory to rejoin after a reconnect."""

    room: str
    passphrase: str = field(repr=False)
    how: str  # joined, created, rejoined
    generated: bool = False


@dataclass
class RoomsListed(Message):
    rooms: ev.Rooms
    show: bool  # print the list in the current window, not just refresh the sidebar


@dataclass
class MembersListed(Message):
    members: ev.Members


@dataclass
class RequestFailed(Message):
    what: str
    code: str
    message: str


@dataclass
class NickChanged(Message):
    nick: str
