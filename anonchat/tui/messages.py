"""Messages the network workers post to the UI.

Workers never touch widgets: they talk to the daemon through
:class:`anonchat.client.Client` and post one of these; the app's handlers
update the state and the screen, in the order the messages were posted.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from ..client import Client, Event
from .session import ConnectOptions


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
class Latency(Message):
    seconds: float


# -- screens to the app (screens never import the app: these bubble up to it) --


@dataclass
class ChatReady(Message):
    """The connect screen got a client: the app remembers the choice and opens
    the chat.  ``options`` are the ones for this server (its pin, its room if
    it came from a pasted link); ``server_text`` is what the user typed."""

    client: Client
    options: ConnectOptions
    server_text: str


@dataclass
class NickChosen(Message):
    """The user's nick changed: the app remembers it for next time."""

    nick: str


@dataclass
class QuitRequested(Message):
    """``/quit`` (with its message): the app closes the session and exits."""

    message: str
