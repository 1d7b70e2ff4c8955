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
from dataclasses import dataclass, field, replace

from . import events as ev
from .acts import owner_act, owner_action
from .crypto import (
    STALE_MS,
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
    long_fingerprint,
    safety_number,
    sign_owner_action,
    valid_public_key,
    verify_owner_action,
)
from .errors import Code, CryptoError, RequestError
from .names import InvalidName, check_nick, name_key, sanitize
from .plural import plural


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
    stale: bool  # a live message whose sender's clock disagrees with now by over 5 minutes
    own: bool  # sent by this session
    history: bool = False  # sent before we joined, replayed by the daemon on join
    sender: bytes = b""  # the sender's session key in this room


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
    about: bytes = b""  # the member it is about (join, leave, quit, nick): its session key


SecretEvent = SecretMessage | SecretNotice


@dataclass(frozen=True)
class Verification:
    """What to compare with a member by another channel (``/verify``)."""

    label: str  # bob#k3f9
    key: bytes  # their session key in this room
    theirs: str  # their long fingerprint, xxxx-xxxx-xxxx-xxxx (80 bits)
    ours: str  # ours in this room
    safety: str  # the safety number of the pair: 30 digits, the same on both sides
    verified: bool  # already marked verified in this session


def now_ms() -> int:
    return int(time.time() * 1000)


#: Characters a sealed nick may not hold beyond the public nick rules: ``#``
#: separates nick and fingerprint, ``<>`` frame a speaker's label.
SEALED_NICK_FORBIDDEN = frozenset("#<>")


def check_sealed_nick(nick: str) -> str:
    """The rules of a nick inside a secret room: the public nick rules
    (names.check_nick), and none of ``#<>``; raise InvalidName."""
    check_nick(nick)
    bad = sorted(SEALED_NICK_FORBIDDEN & set(nick))
    if bad:
        raise InvalidName(f"a nick in a secret room must not contain {' '.join(bad)}")
    return nick


def shown_nick(nick: str) -> str:
    """A sealed nick as we show it: one :func:`check_sealed_nick` allows, else
    ``?`` (a member chose it: ``alice#k3f9>`` or one with spaces would make a
    line read as someone else's)."""
    try:
        return check_sealed_nick(nick)
    except InvalidName:
        return "?"


def label(nick: str, public: bytes) -> str:
    """``alice#k3f9``: a nick is never shown without its fingerprint."""
    return f"{shown_nick(nick) if nick else '?'}#{fingerprint(public)}"


@dataclass
class SecretChannel:
    """One joined secret room: its keys (memory only) and what members said."""

    name: str
    rid: bytes
    keys: RoomKeys
    identity: Identity
    # Kept by the client for the session, across leaving, joining again and
    # reconnecting (memory only), per incarnation of the room (by owner key):
    # our sealers (a fresh one would count from 1 again and repeat nonces) and
    # the highest owner-action counter we accepted (so spent actions stay spent).
    sealers: dict[bytes, Sealer] = field(default_factory=dict)
    acts_seen: dict[bytes, int] = field(default_factory=dict)
    sealer: Sealer | None = None  # set by secret_joined, for the incarnation it names
    opener: Opener | None = None
    # The members as far as we know (the join reply's list, then presence) and
    # what each announced; a key not here is refused as a sender.
    nicks: dict[bytes, str] = field(default_factory=dict)  # session key -> announced nick
    listed_all: bool = True  # the join reply listed every member (``more`` was 0)
    join_seq: int = 0  # the join reply's seq: frames below it are history
    joined_at: int = 0  # our clock (ms) when the join reply came
    answered: set[bytes] = field(default_factory=set)  # keys whose hello we answered
    # Keys we verified out of band, for the session (memory only; kept by the client).
    verified: set[bytes] = field(default_factory=set)
    _spoke_at: dict[bytes, int] = field(default_factory=dict)  # daemon ts of last msg/rename
    owner_key: Identity | None = None  # the room's owner key, if we created the room
    chain: OwnerChain | None = None  # who may moderate, verified; set by secret_joined
    owner_trusted: bool = False  # the owner key's tag checked out with our room keys
    locked: bool = False
    slow: int = 0
    history: bool = True
    nick: str | None = None  # the nick we seal in this room; None: our public nick
    closed: bool = False  # an owner closed it (a verified ``close`` action)
    former: dict[bytes, str] = field(default_factory=dict)  # nicks of the kicked and banned

    @classmethod
    def open_room(
        cls,
        name: str,
        keys: RoomKeys,
        identity: Identity,
        sealers: dict[bytes, Sealer] | None = None,
        acts_seen: dict[bytes, int] | None = None,
    ) -> SecretChannel:
        """A channel for a room; ``sealers`` and ``acts_seen``: what this session
        kept of the room before (see the fields)."""
        return cls(
            name,
            keys.room_id,
            keys,
            identity,
            sealers if sealers is not None else {},
            acts_seen if acts_seen is not None else {},
        )

    # -- owners ----------------------------------------------------------------

    def joined(self, frame: ev.SecretJoined) -> list[SecretNotice]:
        """Take the room's owner key, grants and mode from the daemon's reply,
        believing only what our room keys and the signatures vouch for."""
        owner = frame.owner_key
        sealer = self.sealers.get(owner)
        if sealer is None:
            sealer = self.sealers[owner] = Sealer(self.keys, self.identity, owner)
        self.sealer = sealer
        if self.opener is None or self.opener.owner != owner:
            self.opener = Opener(self.keys, owner)
        self.nicks = {
            key: self.nicks.get(key, "") for key in frame.members if valid_public_key(key)
        }
        self.nicks.setdefault(self.identity.public, "")
        self.listed_all = frame.more == 0
        self.join_seq, self.joined_at = frame.seq, now_ms()
        self.chain = OwnerChain(self.rid, owner)
        # Spent actions stay spent: never believe a lower counter than we accepted.
        seen = self.acts_seen.get(owner, 0)
        self.chain.counter = max(frame.acts, seen)
        self.locked, self.slow, self.history = False, 0, True
        rollback = []
        if frame.acts < seen:
            text = (
                "warning: the server says this room's owners acted "
                f"{plural(frame.acts, 'time')}, but "
                f"you saw action {seen}: it rolled the room back, or withholds actions; "
                "owner actions numbered up to the one you saw will not be believed again"
            )
            rollback.append(self._notice(frame.seq, 0, text, "forged"))
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
            return [*rollback, self._notice(frame.seq, 0, text, "forged")]
        if not self.owner_trusted:
            text = (
                "warning: the server gave this room an owner key that the passphrase does "
                "not vouch for: someone (the server?) put in their own; no owner action "
                "here will be trusted"
            )
            return [*rollback, self._notice(frame.seq, 0, text, "forged")]
        refused = self.chain.load_grants([owner_action(g) for g in frame.grants or []])
        out = rollback + [
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
        """The session key of a member named ``bob``, ``bob#k3f9`` or ``#k3f9``;
        ``#k3f9`` also names an owner who has left (to ban: see security.md)."""
        nick, _, fp = who.strip().rpartition("#") if "#" in who else (who.strip(), "", "")
        known = dict(self.nicks)
        if self.chain is not None and fp and not nick:
            for key in self.chain.granted:
                known.setdefault(key, "")
        found = [
            key
            for key, said in known.items()
            if (not fp or fingerprint(key) == fp.casefold())
            and (not nick or name_key(sanitize(said)) == name_key(nick))
        ]
        if len(found) == 1:
            return found[0]
        if not found:
            raise RequestError(Code.NO_SUCH_NICK, f"nobody here is called {sanitize(who)}")
        labels = " or ".join(sorted(label(known[k], k) for k in found))
        raise RequestError(
            Code.NO_SUCH_NICK,
            f"{plural(len(found), 'member matches', 'members match')}; say {labels}",
        )

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
            if target_nick:
                self.former[action.target] = target_nick
        else:
            target_nick = self.nicks.get(action.target or b"", "")
        try:
            if self.chain is None or not self.owner_trusted:
                raise CryptoError(CryptoCode.BAD_TAG, "this room's owner key is not vouched for")
            self.chain.accept(action)
            self.acts_seen[self.chain.owner] = self.chain.counter
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
        if action.kind == "close":
            self.closed = self.locked = True
            text = f"{by} closed this room: it takes no new messages (it was rotated?)"
            return [self._notice(frame.seq, frame.ts, text, "close")], False
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
        if self.sealer is None:
            raise RequestError(Code.NOT_MEMBER, "this secret room is not joined yet")
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

    def member_list(self) -> list[tuple[str, bool]]:
        """The members' labels, each with whether we verified it (``/verify``)."""
        return sorted((label(nick, key), key in self.verified) for key, nick in self.nicks.items())

    def verification(self, who: str) -> Verification:
        """What to read to ``who`` (``bob#k3f9``) by another channel, and hear back."""
        key = self.resolve(who)
        return Verification(
            label=label(self.nicks.get(key, ""), key),
            key=key,
            theirs=long_fingerprint(key),
            ours=long_fingerprint(self.identity.public),
            safety=safety_number(self.identity.public, key),
            verified=key in self.verified,
        )

    def verify(self, who: str, heard: str) -> Verification:
        """Mark ``who`` verified if ``heard`` (what they read to us by another
        channel: their long fingerprint or our safety number, spaces, dashes and
        case aside) matches; raise ``RequestError`` (``bad_proof``) if not."""
        seen = self.verification(who)
        said = "".join(ch for ch in heard.casefold() if ch.isalnum())
        if said not in (seen.theirs.replace("-", ""), seen.safety.replace(" ", "")):
            raise RequestError(
                Code.BAD_PROOF,
                f"that is not {seen.label}'s long fingerprint nor your safety number: "
                "not verified (someone in between, or a typo?)",
            )
        self.verified.add(seen.key)
        return replace(seen, verified=True)

    def receive(self, frame: ev.Sealed) -> tuple[list[SecretEvent], bool]:
        """Open a relayed frame.  Returns the events, and whether it is a hello
        we have not answered yet (the caller answers it with a ``here``)."""
        sealed = Sealed(frame.sender, frame.counter, frame.kind, frame.epoch, frame.ct, frame.sig)
        live = frame.seq > self.join_seq  # below: history the daemon replays on join
        problem = None
        if self.chain is not None and frame.sender in self.chain.banned and self.owner_trusted:
            problem = "who was banned: the server let them back in"
        elif live and frame.sender not in self.nicks and self.listed_all:
            problem = "who is not a member of this room as far as we know (a replay?)"
        if problem is not None:
            text = f"dropped a message from #{fingerprint(frame.sender)}, {problem}"
            return [SecretNotice(self.name, frame.seq, frame.ts, text, "dropped")], False
        if self.opener is None:
            return [], False
        # A live message sealed (by the sender's clock) well before we joined is
        # an old one replayed to us as new: refused (STALE_MS of clock skew allowed).
        not_before = self.joined_at - STALE_MS if live else None
        try:
            opened = self.opener.open(sealed, now_ms(), not_before=not_before)
        except CryptoError as exc:
            text = (
                f"dropped a message claiming to be from #{fingerprint(frame.sender)}: "
                f"{exc.message} ({exc.code})"
            )
            return [SecretNotice(self.name, frame.seq, frame.ts, text, "dropped")], False
        events: list[SecretEvent] = []
        who = label(opened.nick, opened.sender)
        if opened.missing:
            text = f"{plural(opened.missing, 'message')} missing from {who}"
            events.append(SecretNotice(self.name, frame.seq, frame.ts, text, "missing"))
        events += self._apply(opened, frame, live)
        answer = (
            live
            and opened.kind == "hello"
            and opened.sender != self.identity.public
            and opened.sender not in self.answered
        )
        if answer:
            self.answered.add(opened.sender)
        return events, answer

    def _apply(self, opened: Opened, frame: ev.Sealed, live: bool) -> list[SecretEvent]:
        key = opened.sender
        before = self.nicks.get(key) or None  # "": listed, not announced yet
        member = key in self.nicks or (live and not self.listed_all)
        nick = shown_nick(opened.nick)
        announcement = opened.kind in ("hello", "here")
        if member:
            renamed = before is not None and nick != before
            if announcement and renamed and self._too_soon(key, frame):
                assert before is not None
                nick = before  # slow mode: a nick change is held back like a message
            self.nicks[key] = nick
            if nick != before:
                self._spoke_at[key] = frame.ts
        if opened.kind in ("msg", "me"):
            self._spoke_at[key] = frame.ts
            out: list[SecretEvent] = []
            if member and before is not None and before != nick:
                out.append(self._renamed(before, nick, key, frame))
            out.append(
                SecretMessage(
                    self.name,
                    frame.seq,
                    frame.ts,
                    nick,
                    opened.fingerprint,
                    opened.body,
                    opened.kind == "me",
                    opened.stale and live,  # history is old by nature, not a clock issue
                    key == self.identity.public,
                    not live,
                    key,
                )
            )
            return out
        if not member or not live:
            return []
        if opened.kind == "hello" and key != self.identity.public:
            text = f"{label(nick, key)} joined"
            return [SecretNotice(self.name, frame.seq, frame.ts, text, "join", key)]
        if before is not None and before != self.nicks[key]:
            return [self._renamed(before, self.nicks[key], key, frame)]
        return []

    def _too_soon(self, key: bytes, frame: ev.Sealed) -> bool:
        """In slow mode, whether a member who is not an owner changed its nick or
        spoke less than ``slow`` seconds ago (by the daemon's clock)."""
        if not self.slow or (self.chain is not None and self.is_owner(key)):
            return False
        last = self._spoke_at.get(key)
        return last is not None and frame.ts - last < self.slow * 1000

    def _renamed(self, before: str, nick: str, key: bytes, frame: ev.Sealed) -> SecretNotice:
        text = f"{label(before, key)} is now known as {label(nick, key)}"
        return SecretNotice(self.name, frame.seq, frame.ts, text, "nick", key)

    def presence(self, frame: ev.SecretPresence) -> list[SecretEvent]:
        """The daemon says a key joined, left or quit (joins are told by their hello)."""
        if frame.kind == "join":
            if valid_public_key(frame.sender):
                self.nicks.setdefault(frame.sender, "")
            return []
        nick = self.nicks.pop(frame.sender, "")
        verb = "left" if frame.kind == "leave" else "quit"
        text = f"{label(nick, frame.sender)} {verb}"
        return [SecretNotice(self.name, frame.seq, frame.ts, text, frame.kind, frame.sender)]
