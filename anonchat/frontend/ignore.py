"""``/ignore``: someone's lines hidden from this user, for this session.

Kept in the client's memory only and never sent: the daemon cannot tell whom
anyone ignores (docs/security.md).  An ignored public nick is followed across
its nick changes; a member of a secret room is ignored by its session key
there, whatever nick it seals.  What is hidden: their messages and actions
(``/me``), their direct messages (by the nick the daemon gives them) and their
comings and goings; owners' actions about them (kick,
ban) and topics stay visible.  Every hidden line is counted per room, so
nothing disappears without a trace.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .. import events as ev
from ..dm import DirectMessage
from ..names import name_key
from ..room import public_key, secret_key
from ..secret import SecretMessage, SecretNotice

#: Presence lines hidden with the person (owners' actions about them are not).
COMINGS_AND_GOINGS = frozenset({"join", "leave", "quit", "nick"})


@dataclass
class Ignored:
    """One ignored person: a public nick (every public room) or a session key
    in one secret room."""

    label: str  # as shown: "troll", or "troll#k3f9 in 🔒#den"
    nick: str = ""  # the public nick's comparison key; follows nick changes
    room: str = ""  # a secret room's window key
    key: bytes = b""  # the member's session key in that room
    hidden: Counter[str] = field(default_factory=Counter)  # lines hidden, by window key

    def total(self) -> int:
        return sum(self.hidden.values())


class Ignores:
    """Who this user ignores, and how many lines were hidden where."""

    def __init__(self) -> None:
        self.people: list[Ignored] = []

    def add_nick(self, nick: str) -> Ignored | None:
        """Ignore a public nick; None if it is ignored already."""
        if self._by_nick(name_key(nick)) is not None:
            return None
        entry = Ignored(label=nick, nick=name_key(nick))
        self.people.append(entry)
        return entry

    def add_key(self, room_key: str, key: bytes, label: str) -> Ignored | None:
        """Ignore a member of a secret room by its session key there."""
        if self._by_key(room_key, key) is not None:
            return None
        entry = Ignored(label=label, room=room_key, key=key)
        self.people.append(entry)
        return entry

    def remove_nick(self, nick: str) -> Ignored | None:
        """Stop ignoring a public nick: as typed in ``/ignore`` or as it is now."""
        key = name_key(nick)
        entry = self._by_nick(key) or next(
            (e for e in self.people if e.nick and name_key(e.label) == key), None
        )
        if entry is not None:
            self.people.remove(entry)
        return entry

    def remove_key(self, room_key: str, key: bytes) -> Ignored | None:
        entry = self._by_key(room_key, key)
        if entry is not None:
            self.people.remove(entry)
        return entry

    def hidden_in(self, room_key: str) -> int:
        """Lines hidden so far in one window."""
        return sum(entry.hidden[room_key] for entry in self.people)

    def hides(self, event: object) -> str | None:
        """Whether ``event`` is hidden: the window key it was counted in, or None."""
        entry: Ignored | None = None
        room = ""
        if isinstance(event, ev.Msg):
            room, entry = public_key(event.room), self._by_nick(name_key(event.nick))
        elif isinstance(event, ev.Presence) and event.kind in COMINGS_AND_GOINGS:
            room, entry = public_key(event.room), self._by_nick(name_key(event.nick))
            if event.kind == "nick" and event.new:
                # Followed: the same session under its new nick.  A change is
                # told once per shared room; the later ones find the new nick.
                if entry is not None:
                    entry.nick = name_key(event.new)
                else:
                    entry = self._by_nick(name_key(event.new))
        elif isinstance(event, SecretMessage) and not event.own:
            room = secret_key(event.room)
            entry = self._by_key(room, event.sender)
        elif isinstance(event, DirectMessage) and not event.own:
            # Hidden here only: the sender's messages are accepted as ever, so
            # it cannot tell it is ignored (docs/security.md, "Direct messages").
            room, entry = event.key, self._by_nick(name_key(event.nick))
        elif isinstance(event, SecretNotice) and event.kind in COMINGS_AND_GOINGS:
            room = secret_key(event.room)
            entry = self._by_key(room, event.about)
        if entry is None:
            return None
        entry.hidden[room] += 1
        return room

    def _by_nick(self, nick: str) -> Ignored | None:
        return next((e for e in self.people if e.nick and e.nick == nick), None)

    def _by_key(self, room_key: str, key: bytes) -> Ignored | None:
        if not key:
            return None
        return next((e for e in self.people if e.room == room_key and e.key == key), None)
