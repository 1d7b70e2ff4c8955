"""The client's side of secret rooms: keys held in memory, sealing, opening.

The daemon relays :class:`~anonchat.events.Sealed` frames it cannot read;
:class:`SecretChannel` turns them into :class:`SecretMessage` and
:class:`SecretNotice` events for the UI, with every check of crypto v1 applied
(signature before decryption, replays dropped, gaps and stale times reported).

Members learn each other's nicks from sealed announcements: a newcomer sends
a ``hello``, every member answers with a ``here``.  Until a key has announced
itself it is shown by its fingerprint alone.  The server sees only the kinds
(``msg``, ``me``, ``hello``, ``here``) and the padded sizes.

Owners: the creator's client makes the room's owner key, and every owner
action (kick, ban, op, mode) the daemon relays is verified here against the
owner key the passphrase vouches for (crypto.py, "Owners") before it is
shown; one that does not verify is reported as forged, never as an owner's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import events as ev
from .crypto import (
    CryptoCode,
    Identity,
    Opened,
    Opener,
    OwnerAction,
    OwnerChain,
    RoomKeys,
    Sealed,
    Sealer,
    fingerprint,
    sign_owner_action,
    valid_public_key,
    verify_owner_action,
)
from .errors import Code, CryptoError, RequestError
from .names import name_key, sanitize


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
    # join, leave, quit, nick, missing, dropped; owner actions: kick, ban, op,
    # mode, removed (we were kicked or banned), forged (an action that does not verify)
    kind: str


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
    owner_key: Identity | None = None  # the room's owner key, if we created the room
    chain: OwnerChain | None = None  # who may moderate, verified; set by secret_joined
    owner_trusted: bool = False  # the owner key's tag checked out with our room keys
    locked: bool = False
    slow: int = 0
    history: bool = True
    nick: str | None = None  # the nick we seal in this room; None: our public nick

    @classmethod
    def open_room(
        cls, name: str, keys: RoomKeys, identity: Identity, sealer: Sealer | None = None
    ) -> SecretChannel:
        """A channel for a room; ``sealer``: the one used before in this room with
        this identity (a fresh one would count from 1 again and repeat nonces)."""
        sealer = sealer or Sealer(keys, identity)
        return cls(name, keys.room_id, keys, identity, sealer, Opener(keys))

    # -- owners ----------------------------------------------------------------

    def joined(self, frame: ev.SecretJoined) -> list[SecretNotice]:
        """Take the room's owner key, grants and mode from the daemon's reply,
        believing only what our room keys and the signatures vouch for."""
        self.chain = OwnerChain(self.rid, frame.owner_key)
        self.chain.counter = frame.acts
        self.locked, self.slow, self.history = False, 0, True
        self.owner_trusted = self.keys.check_owner_tag(frame.owner_key, frame.owner_tag)
        if self.owner_trusted and not valid_public_key(frame.owner_key):
            # A passphrase holder registered a key nobody holds (the identity
            # point, say): every signature under it would verify.
            self.owner_trusted = False
            text = (
                "warning: this room's owner key is not a valid public key (small order "
                "or not canonical): anyone could sign in its name; no owner action here "
                "will be trusted"
            )
            return [self._notice(frame.seq, 0, text, "forged")]
        if not self.owner_trusted:
            text = (
                "warning: the server gave this room an owner key that the passphrase does "
                "not vouch for: someone (the server?) put in their own; no owner action "
                "here will be trusted"
            )
            return [self._notice(frame.seq, 0, text, "forged")]
        refused = self.chain.load_grants([owner_action(g) for g in frame.grants or []])
        out = [
            self._notice(
                frame.seq, 0, f"ignored an owner grant that does not verify: {g.kind}", "forged"
            )
            for g in refused
        ]
        if frame.mode is not None:
            mode = owner_action(frame.mode)
            if mode.kind == "mode" and self._verifies(mode):
                self.locked, self.slow, self.history = mode.locked, mode.slow, mode.history
            else:
                out.append(
                    self._notice(frame.seq, 0, "ignored a room mode that does not verify", "forged")
                )
        return out

    def _verifies(self, action: OwnerAction) -> bool:
        """An action older than our joining: signed by someone who may act."""
        chain = self.chain
        assert chain is not None
        return (
            action.counter <= chain.counter
            and chain.may_act(action.actor)
            and verify_owner_action(self.rid, chain.owner, action)
        )

    def is_owner(self, key: bytes) -> bool:
        return self.owner_trusted and self.chain is not None and self.chain.may_act(key)

    def owners(self) -> list[str]:
        """The members who may moderate (by label), as far as we can verify."""
        return sorted(label(nick, key) for key, nick in self.nicks.items() if self.is_owner(key))

    def resolve(self, who: str) -> bytes:
        """The session key of a member named ``bob``, ``bob#k3f9`` or ``#k3f9``."""
        nick, _, fp = who.strip().rpartition("#") if "#" in who else (who.strip(), "", "")
        found = [
            key
            for key, said in self.nicks.items()
            if (not fp or fingerprint(key) == fp.casefold())
            and (not nick or name_key(sanitize(said)) == name_key(nick))
        ]
        if len(found) == 1:
            return found[0]
        if not found:
            raise RequestError(Code.NO_SUCH_NICK, f"nobody here is called {sanitize(who)}")
        labels = " or ".join(sorted(label(self.nicks[k], k) for k in found))
        raise RequestError(Code.NO_SUCH_NICK, f"{len(found)} members match; say {labels}")

    def sign_act(
        self,
        kind: str,
        target: bytes | None = None,
        *,
        locked: bool | None = None,
        slow: int | None = None,
        history: bool | None = None,
    ) -> ev.OwnerAct:
        """Sign an owner action as the room's next one: with our session key if it
        was granted, else with the owner key if we hold it (the daemon refuses
        anyone else with ``not_owner``).  A mode action keeps what is not given."""
        if self.chain is None:
            raise RequestError(Code.NOT_MEMBER, "this secret room is not joined yet")
        signer = self.identity
        if not self.chain.may_act(signer.public) and self.holds_owner_key:
            assert self.owner_key is not None
            signer = self.owner_key
        mode = kind == "mode"
        try:
            action = sign_owner_action(
                signer,
                self.rid,
                self.chain.owner,
                kind,
                self.chain.counter + 1,
                target,
                locked=self.locked if locked is None or not mode else locked,
                slow=self.slow if slow is None or not mode else slow,
                history=self.history if history is None or not mode else history,
            )
        except CryptoError as exc:
            raise RequestError(Code.BAD_MODE, exc.message) from None
        return owner_act(action)

    @property
    def holds_owner_key(self) -> bool:
        return (
            self.owner_key is not None
            and self.chain is not None
            and self.owner_key.public == self.chain.owner
        )

    def acted(self, frame: ev.SecretActed) -> tuple[list[SecretNotice], bool]:
        """Verify and apply an owner action the daemon relayed.  Returns the
        events, and whether it removed us from the room."""
        action = owner_action(frame.act)
        removed = action.kind in ("kick", "ban") and action.target == self.identity.public
        if action.target is not None and action.kind in ("kick", "ban"):
            # The daemon decides who it relays to, verified or not.
            target_nick = self.nicks.pop(action.target, "")
        else:
            target_nick = self.nicks.get(action.target or b"", "")
        try:
            if self.chain is None or not self.owner_trusted:
                raise CryptoError(CryptoCode.BAD_TAG, "this room's owner key is not vouched for")
            self.chain.accept(action)
        except CryptoError as exc:
            what = (
                f"{action.kind} of {label(target_nick, action.target)}"
                if action.target
                else action.kind
            )
            text = (
                f"ignored an owner action the server relayed ({what}): {exc.message} ({exc.code})"
            )
            if removed:
                text = (
                    "the server removed you, with an owner action that does not verify: "
                    f"{exc.message}"
                )
            return [
                self._notice(frame.seq, frame.ts, text, "removed" if removed else "forged")
            ], removed
        by = self._actor(action.actor)
        if action.kind == "mode":
            self.locked, self.slow, self.history = action.locked, action.slow, action.history
            return [
                self._notice(frame.seq, frame.ts, f"{by} set the modes: {self.modes()}", "mode")
            ], False
        assert action.target is not None
        who = label(target_nick, action.target)
        if removed:
            verb = "kicked" if action.kind == "kick" else "banned"
            return [self._notice(frame.seq, frame.ts, f"you were {verb} by {by}", "removed")], True
        if action.kind == "op":
            if action.target == self.identity.public and action.actor == self.chain.owner:
                return [], False  # our own grant, made with the owner key we hold
            return [
                self._notice(frame.seq, frame.ts, f"{who} is now an owner (by {by})", "op")
            ], False
        verb = "kicked" if action.kind == "kick" else "banned"
        return [self._notice(frame.seq, frame.ts, f"{who} was {verb} by {by}", action.kind)], False

    def _actor(self, key: bytes) -> str:
        if self.chain is not None and key == self.chain.owner:
            return "the room's owner key"
        return label(self.nicks.get(key, ""), key)

    def modes(self) -> str:
        return ", ".join(
            [
                "locked" if self.locked else "open to newcomers",
                f"slow mode {self.slow} s" if self.slow else "no slow mode",
                "history on join" if self.history else "no history on join",
            ]
        )

    def _notice(self, seq: int, ts: int, text: str, kind: str) -> SecretNotice:
        return SecretNotice(self.name, seq, ts or now_ms(), text, kind)

    # -- messages ----------------------------------------------------------------

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
        if self.chain is not None and frame.sender in self.chain.banned and self.owner_trusted:
            text = (
                f"dropped a message from #{fingerprint(frame.sender)}, who was banned: "
                "the server let them back in"
            )
            return [SecretNotice(self.name, frame.seq, frame.ts, text, "dropped")], False
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
            if valid_public_key(frame.sender):
                self.nicks.setdefault(frame.sender, "")
            return []
        nick = self.nicks.pop(frame.sender, "")
        verb = "left" if frame.kind == "leave" else "quit"
        text = f"{label(nick, frame.sender)} {verb}"
        return [SecretNotice(self.name, frame.seq, frame.ts, text, frame.kind)]


def owner_action(act: ev.OwnerAct) -> OwnerAction:
    """The crypto view of a wire action (mode fields only matter for ``mode``);
    the daemon checks actions with it too."""
    return OwnerAction(
        kind=act.kind,
        counter=act.counter,
        actor=act.actor,
        signature=act.sig,
        target=act.target,
        locked=bool(act.locked),
        slow=act.slow or 0,
        history=act.history is not False,
    )


def owner_act(action: OwnerAction) -> ev.OwnerAct:
    """The wire form of a signed action."""
    mode = action.kind == "mode"
    return ev.OwnerAct(
        kind=action.kind,
        counter=action.counter,
        actor=action.actor,
        sig=action.signature,
        target=action.target,
        locked=action.locked if mode else None,
        slow=action.slow if mode else None,
        history=action.history if mode else None,
    )
