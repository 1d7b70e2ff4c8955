"""The client's side of secret rooms: keys held in memory, sealing, opening.

The daemon relays :class:`~anonchat.events.Sealed` frames it cannot read;
:class:`SecretChannel` turns them into :class:`SecretMessage` and
:class:`SecretNotice` events for the UI, with every check of crypto v1 applied
(signature before decryption, replays dropped, gaps and stale times reported).

Members learn each other's nicks from sealed announcements: a newcomer sends
a ``hello``, every member answers with a ``here``.  Until a key has announced
itself it is shown by its fingerprint alone.  The server sees only the kinds
(``msg``, ``me``, ``hello``, ``here``) and the padded sizes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import events as ev
from .crypto import Identity, Opened, Opener, RoomKeys, Sealed, Sealer, fingerprint
from .errors import CryptoError
from .names import sanitize


@dataclass(frozen=True)
class SecretMessage:
    """A verified, decrypted message of a secret room."""

    room: str  # the room's name as this user typed it
    seq: int
    ts: int  # the daemon's timestamp (ms)
    nick: str  # as the sender sealed it: untrusted text
    fingerprint: str
    text: str
    me: bool
    stale: bool  # the sender's own clock disagrees with now by over 5 minutes
    own: bool  # sent by this session


@dataclass(frozen=True)
class SecretNotice:
    """Something to tell the user about a secret room (joins, gaps, forgeries)."""

    room: str
    seq: int
    ts: int
    text: str
    kind: str  # join, leave, quit, nick, missing, dropped


SecretEvent = SecretMessage | SecretNotice


def now_ms() -> int:
    return int(time.time() * 1000)


def label(nick: str, public: bytes) -> str:
    """``alice#k3f9``: a nick is never shown without its fingerprint."""
    return f"{sanitize(nick) or '?'}#{fingerprint(public)}"


@dataclass
class SecretChannel:
    """One joined secret room: its keys (memory only) and what members said."""

    name: str
    rid: bytes
    keys: RoomKeys
    identity: Identity
    sealer: Sealer
    opener: Opener
    nicks: dict[bytes, str] = field(default_factory=dict)  # session key -> announced nick

    @classmethod
    def open_room(cls, name: str, keys: RoomKeys, identity: Identity) -> SecretChannel:
        return cls(name, keys.room_id, keys, identity, Sealer(keys, identity), Opener(keys))

    def seal(self, nick: str, text: str, kind: str) -> ev.Seal:
        sealed = self.sealer.seal(nick, now_ms(), text, kind)
        return ev.Seal(
            id=0,
            room=self.rid,
            counter=sealed.counter,
            epoch=sealed.epoch,
            kind=sealed.kind,
            ct=sealed.ciphertext,
            sig=sealed.signature,
        )

    def members(self) -> list[str]:
        return sorted(label(nick, key) for key, nick in self.nicks.items())

    def receive(self, frame: ev.Sealed) -> tuple[list[SecretEvent], bool]:
        """Open a relayed frame.  Returns the events, and whether we must answer
        a newcomer's ``hello`` with our own ``here``."""
        sealed = Sealed(frame.sender, frame.counter, frame.kind, frame.epoch, frame.ct, frame.sig)
        try:
            opened = self.opener.open(sealed, now_ms())
        except CryptoError as exc:
            text = (
                f"dropped a message claiming to be from #{fingerprint(frame.sender)}: "
                f"{exc.message} ({exc.code})"
            )
            return [SecretNotice(self.name, frame.seq, frame.ts, text, "dropped")], False
        events: list[SecretEvent] = []
        who = label(opened.nick, opened.sender)
        if opened.missing:
            text = f"{opened.missing} messages missing from {who}"
            events.append(SecretNotice(self.name, frame.seq, frame.ts, text, "missing"))
        events += self._apply(opened, frame)
        answer = opened.kind == "hello" and opened.sender != self.identity.public
        return events, answer

    def _apply(self, opened: Opened, frame: ev.Sealed) -> list[SecretEvent]:
        before = self.nicks.get(opened.sender)
        self.nicks[opened.sender] = opened.nick
        if opened.kind in ("msg", "me"):
            out: list[SecretEvent] = []
            if before is not None and before != opened.nick:
                out.append(self._renamed(before, opened, frame))
            out.append(
                SecretMessage(
                    self.name,
                    frame.seq,
                    frame.ts,
                    opened.nick,
                    opened.fingerprint,
                    opened.body,
                    opened.kind == "me",
                    opened.stale,
                    opened.sender == self.identity.public,
                )
            )
            return out
        if opened.kind == "hello" and opened.sender != self.identity.public:
            who = label(opened.nick, opened.sender)
            return [SecretNotice(self.name, frame.seq, frame.ts, f"{who} joined", "join")]
        if before is not None and before != opened.nick:
            return [self._renamed(before, opened, frame)]
        return []

    def _renamed(self, before: str, opened: Opened, frame: ev.Sealed) -> SecretNotice:
        text = f"{label(before, opened.sender)} is now known as {label(opened.nick, opened.sender)}"
        return SecretNotice(self.name, frame.seq, frame.ts, text, "nick")

    def presence(self, frame: ev.SecretPresence) -> list[SecretEvent]:
        """The daemon says a key joined, left or quit (joins are told by their hello)."""
        if frame.kind == "join":
            self.nicks.setdefault(frame.sender, "")
            return []
        nick = self.nicks.pop(frame.sender, "")
        verb = "left" if frame.kind == "leave" else "quit"
        text = f"{label(nick, frame.sender)} {verb}"
        return [SecretNotice(self.name, frame.seq, frame.ts, text, frame.kind)]
