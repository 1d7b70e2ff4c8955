"""Room handles: what a front end holds to talk in a room, public or secret alike.

A front end never branches on public/secret, never reads the client's secret
channels and never normalises a room name itself: it asks the client for the
room a name means (:meth:`anonchat.client.Client.room`) and gets a
:class:`PublicRoom` or a :class:`SecretRoom` with the same methods.  Each
method says itself what a secret room cannot do (a kick reason or a topic
would be read by the server) instead of leaking it.

Which name means which room is decided here, once (:func:`room_keys`): a
secret room is matched both as the key schedule normalises names
(:func:`~anonchat.crypto.normalize_room`) and as the daemon compares them
(:func:`~anonchat.names.name_key`), so that no command ever sends the name of a
joined secret room to the daemon in the clear.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .crypto import normalize_room
from .errors import Code, RequestError
from .names import InvalidName, check_room, name_key

if TYPE_CHECKING:
    from .client import Client
    from .secret import SecretChannel

LOCK = "\U0001f512"  # 🔒: marks secret rooms, read out as "lock" by screen readers


def public_key(name: str) -> str:
    """The window key of a public room: the daemon's comparison key."""
    return name_key(name)


def secret_key(name: str) -> str:
    """The window key of a secret room: apart from any public room's."""
    return LOCK + normalize_room(name)


def secret_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a secret room, or None (checked as the key schedule reads it)."""
    if not name:
        return "type the room's name"
    try:
        check_room(normalize_room(name))
    except InvalidName as exc:
        return str(exc)
    return None


def room_keys(name: str) -> tuple[str, ...]:
    """Every key under which ``name`` may mean a room someone is in."""
    return (secret_key(name), LOCK + name_key(name), public_key(name))


@dataclass(frozen=True)
class Roster:
    """Who is in a room, as far as this client can tell."""

    room: str
    secret: bool
    members: list[str]
    more: int = 0  # members the daemon left out of a long list
    owners: tuple[str, ...] = ()  # as the daemon says; in a secret room, checked by signature
    verified: tuple[str, ...] = ()  # secret rooms: members verified out of band (/verify)
    direct: bool = False  # a conversation: the two of us, by DM key labels

    @property
    def count(self) -> int:
        return len(self.members) + self.more


class Room(ABC):
    """A room this client is in; get one from :meth:`Client.room`."""

    secret = False
    direct = False  # a conversation with one session (DirectRoom), not a room

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name

    @property
    @abstractmethod
    def key(self) -> str:
        """The window key: the same for every name that means this room."""

    @property
    def shown(self) -> str:
        """``#lobby`` or ``🔒#plans``."""
        return f"{LOCK if self.secret else ''}#{self.name}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    @abstractmethod
    async def say(self, text: str, *, me: bool = False) -> int: ...

    @abstractmethod
    async def leave(self) -> None: ...

    @abstractmethod
    async def kick(self, who: str, reason: str | None = None, *, ban: bool = False) -> None: ...

    @abstractmethod
    async def op(self, who: str) -> None: ...

    @abstractmethod
    async def set_mode(
        self, *, locked: bool | None = None, slow: int | None = None, history: bool | None = None
    ) -> None: ...

    @abstractmethod
    async def roster(self) -> Roster: ...

    @property
    def topic(self) -> str:
        return ""

    async def set_topic(self, topic: str) -> None:
        raise RequestError(Code.NOT_MEMBER, "this room has no topic")


class PublicRoom(Room):
    """A public room: the daemon and every member read what is said."""

    @property
    def key(self) -> str:
        return public_key(self.name)

    @property
    def topic(self) -> str:
        return self.client.topics.get(self.key, "")

    async def say(self, text: str, *, me: bool = False) -> int:
        return await self.client.say(self.name, text, me=me)

    async def leave(self) -> None:
        await self.client.leave(self.name)

    async def kick(self, who: str, reason: str | None = None, *, ban: bool = False) -> None:
        await self.client.kick(self.name, who, reason, ban=ban)

    async def op(self, who: str) -> None:
        await self.client.op(self.name, who)

    async def set_mode(self, **modes: Any) -> None:
        await self.client.set_mode(self.name, **modes)

    async def set_topic(self, topic: str) -> None:
        await self.client.set_topic(self.name, topic)

    async def roster(self) -> Roster:
        reply = await self.client.who(self.name)
        return Roster(reply.room, False, list(reply.members), reply.more, tuple(reply.owners or ()))


class SecretRoom(Room):
    """A secret room: sealed end to end; the daemon sees an opaque id."""

    secret = True

    @property
    def key(self) -> str:
        return secret_key(self.name)

    @property
    def channel(self) -> SecretChannel:
        return self.client.secret_channel(self.name)

    @property
    def label(self) -> str:
        """How the others see us here: ``alice#k3f9`` (the nick we seal here, and
        the fingerprint of our session key in this room: one key per room)."""
        return self.client.own_secret_label(self.name)

    async def say(self, text: str, *, me: bool = False) -> int:
        return await self.client.say_secret(self.name, text, me=me)

    async def leave(self) -> None:
        await self.client.leave_secret(self.name)

    async def kick(self, who: str, reason: str | None = None, *, ban: bool = False) -> None:
        # A reason is never sent: the daemon relays owner actions and would read it.
        await self.client.secret_kick(self.name, who, ban=ban)

    async def op(self, who: str) -> None:
        await self.client.secret_op(self.name, who)

    async def set_mode(self, **modes: Any) -> None:
        await self.client.secret_mode(self.name, **modes)

    async def set_topic(self, topic: str) -> None:
        raise RequestError(
            Code.TOPIC_INVALID, "secret rooms have no topic: the server would see it"
        )

    def announced(self) -> list[str]:
        """Members that announced themselves to us, as ``nick#fp`` labels."""
        return self.channel.members()

    async def roster(self) -> Roster:
        channel = self.channel
        owners = tuple(channel.owners())
        return Roster(self.name, True, channel.members(), 0, owners, self.verified())

    def verified(self) -> tuple[str, ...]:
        """The labels of members we verified out of band (``/verify``), this session."""
        return tuple(m for m, ok in self.channel.member_list() if ok)


#: The window key prefix of conversations (dm.DM_MARK: an envelope).
DM_MARK = "\u2709"


class DirectRoom(Room):
    """A conversation of direct messages with one session, as a window: sealed
    end to end between the two DM keys (docs/security.md, "Direct messages").

    ``name`` is the other's nick as the daemon said last; the window key is
    their DM key, so it stays the same when either changes nick."""

    direct = True

    def __init__(self, client: Client, peer: bytes) -> None:
        conversation = client.conversation(peer)
        super().__init__(client, conversation.nick if conversation else "?")
        self.peer = peer

    @property
    def key(self) -> str:
        return DM_MARK + self.peer.hex()

    @property
    def shown(self) -> str:
        """``@bob#k3f9``: a nick is never shown without its key's fingerprint."""
        conversation = self.client.conversation(self.peer)
        return "@" + (conversation.label if conversation else self.name)

    @property
    def verified(self) -> bool:
        conversation = self.client.conversation(self.peer)
        return bool(conversation and conversation.verified)

    async def say(self, text: str, *, me: bool = False) -> int:
        await self.client.send_dm(self.peer, text, me=me)
        return 0

    async def leave(self) -> None:
        """Close the window: nothing is sent (the conversation's keys and counters
        stay in memory, so it can be opened again)."""

    async def kick(self, who: str, reason: str | None = None, *, ban: bool = False) -> None:
        raise RequestError(Code.NOT_OWNER, "a conversation has no owners: /ignore hides someone")

    async def op(self, who: str) -> None:
        raise RequestError(Code.NOT_OWNER, "a conversation has no owners")

    async def set_mode(self, **modes: Any) -> None:
        raise RequestError(Code.NOT_OWNER, "a conversation has no modes")

    async def set_topic(self, topic: str) -> None:
        raise RequestError(Code.TOPIC_INVALID, "a conversation has no topic")

    async def roster(self) -> Roster:
        conversation = self.client.conversation(self.peer)
        theirs = conversation.label if conversation else self.name
        verified = (theirs,) if self.verified else ()
        ours = f"{self.client.nick}#{self.client.dm_fingerprint}"
        return Roster(self.name, False, [theirs, ours], 0, (), verified, direct=True)
