"""The client's side of direct messages: conversations, sealing, opening.

A conversation is with one *session*, named by its DM key (anonchat/direct.py),
not by its nick: the nick is what the daemon says the session is called now,
so a nick change never breaks a conversation, and a nick that comes back
under another key is announced loudly (:class:`DmNotice` ``key_changed``):
it may be a new session of the same person, or the daemon putting its own
key in between.  ``/verify`` compares the long fingerprints (or the safety
number) of both DM keys by another channel.

Everything here is kept in memory for the life of the client, across
reconnects (the DM keys and the counters: a nonce never repeats under one
key), never on disk.  The daemon relays sealed bytes; :class:`DmEvents`
turns them into :class:`DirectMessage` and :class:`DmNotice` events, refusing
(with a notice) anything that does not decrypt, repeats or comes out of order.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from . import events as ev
from .direct import DmCard, DmIdentity, DmPeers, long_fingerprint, safety_number, verify_card
from .errors import Code, CryptoError, RequestError
from .names import name_key, sanitize
from .room import DM_MARK as DM_MARK  # the prefix of a conversation's window key
from .secret import Verification, label, shown_nick


def dm_key(peer: bytes) -> str:
    """The window key of the conversation with the session whose DM key is ``peer``."""
    return DM_MARK + peer.hex()


def peer_of(key: str) -> bytes | None:
    """The DM key a window key names, or None if it names a room."""
    if not key.startswith(DM_MARK):
        return None
    try:
        return bytes.fromhex(key[len(DM_MARK) :])
    except ValueError:
        return None


@dataclass(frozen=True)
class DirectMessage:
    """A direct message that decrypted (or one we sent, ``own``)."""

    peer: bytes  # the other session's DM key: the conversation
    nick: str  # the other's nick as the daemon says now (our nick if own)
    fingerprint: str  # of the sender's DM key
    text: str
    ts: int  # the daemon's time (ms) for received ones, ours for our own
    own: bool = False
    me: bool = False  # an action (/me)
    stale: bool = False  # its sender's clock disagrees with ours by over 5 minutes
    sealed_nick: str = ""  # the nick the sender sealed inside (untrusted, may differ)
    to: str = ""  # own: the recipient as ``bob#k3f9``

    @property
    def key(self) -> str:
        return dm_key(self.peer)


@dataclass(frozen=True)
class DmNotice:
    """Something to tell the user about a conversation: ``refused`` (did not
    decrypt, replayed, reordered, a card that does not verify), ``missing``,
    ``key_changed``, ``nick`` (the other changed nick)."""

    peer: bytes
    nick: str
    text: str
    kind: str

    @property
    def key(self) -> str:
        return dm_key(self.peer)


DmEvent = DirectMessage | DmNotice

#: The body of an action (``/me``) inside a sealed direct message: a marker
#: character no one types, then the action.
ME_MARK = "\x01"


#: The body of an invitation to the room that replaces a secret room
#: (``/secret rotate``): a marker character no one types, then JSON.
ROTATE_MARK = "\x02"


@dataclass(frozen=True)
class Invite:
    """An owner's invitation, sent over direct messages, to follow a secret room
    to the room that replaces it: its name (the same), the new passphrase, both
    room ids, and the owner's signature with its session key in the old room."""

    room: str
    passphrase: str
    old: bytes
    new: bytes
    signer: bytes
    sig: bytes
    left: tuple[str, ...]  # who does not come along, as labels
    nick: str = ""  # the signer's nick in the room, as it sealed it (shown with its key)

    def body(self) -> str:
        fields = {
            "nick": self.nick,
            "room": self.room,
            "passphrase": self.passphrase,
            "old": self.old.hex(),
            "new": self.new.hex(),
            "signer": self.signer.hex(),
            "sig": self.sig.hex(),
            "left": list(self.left),
        }
        return ROTATE_MARK + json.dumps(fields, separators=(",", ":"))

    @classmethod
    def parse(cls, body: str) -> Invite:
        """Strictly: anything else raises ValueError."""
        data = json.loads(body.removeprefix(ROTATE_MARK))
        if not isinstance(data, dict) or set(data) != _INVITE_KEYS:
            raise ValueError("not an invitation")
        text = [data[k] for k in ("room", "passphrase", "old", "new", "signer", "sig", "nick")]
        left = data["left"]
        if not all(isinstance(v, str) for v in text) or not isinstance(left, list):
            raise ValueError("not an invitation")
        if not all(isinstance(v, str) for v in left) or len(left) > 1000:
            raise ValueError("not an invitation")
        room, passphrase, old, new, signer, sig, nick = text
        old_id, new_id, signer_key, signature = (bytes.fromhex(v) for v in (old, new, signer, sig))
        if [len(v) for v in (old_id, new_id, signer_key, signature)] != [32, 32, 32, 64]:
            raise ValueError("not an invitation")
        return cls(room, passphrase, old_id, new_id, signer_key, signature, tuple(left), nick)


_INVITE_KEYS = frozenset({"room", "passphrase", "old", "new", "signer", "sig", "left", "nick"})


@dataclass
class Conversation:
    """One conversation: the other session's card and what we know of it."""

    card: DmCard
    nick: str  # as the daemon said last (hidden: as they sealed it, untrusted)
    verified: bool = False  # compared by another channel (/verify), this session
    # Begun in a secret room: both sides' public nicks stay hidden (dm_send's
    # hide_nick), and ``nick`` is the one they seal.
    hidden: bool = False
    own_nick: str = ""  # the nick we seal to them ("": our public nick; "?" if hidden)

    @property
    def peer(self) -> bytes:
        return self.card.sign

    @property
    def label(self) -> str:
        return label(self.nick, self.card.sign)

    @property
    def key(self) -> str:
        return dm_key(self.card.sign)


@dataclass
class DmState:
    """What a client keeps of direct messages for its life (memory only)."""

    identity: DmIdentity = field(default_factory=DmIdentity.generate)
    conversations: dict[bytes, Conversation] = field(default_factory=dict)
    seen: int = 0  # the last dm seq received on this session (what a resume names)

    def __post_init__(self) -> None:
        self.peers = DmPeers(self.identity)

    def by_nick(self, nick: str) -> Conversation | None:
        key = name_key(nick)
        return next(
            (c for c in self.conversations.values() if not c.hidden and name_key(c.nick) == key),
            None,
        )


def now_ms() -> int:
    return int(time.time() * 1000)


class DmEvents:
    """Turns what the daemon relays into events; the client's dispatch calls it."""

    def __init__(self, state: DmState) -> None:
        self.state = state

    def take_card(
        self, card: DmCard, nick: str, hidden: bool = False
    ) -> tuple[Conversation, list[DmNotice]]:
        """A card the daemon gave for ``nick`` (a lookup): refuse one that does not
        verify; announce a nick whose conversation had another key.  ``hidden``:
        a secret-room member, ``nick`` the one it seals there."""
        state = self.state
        if not verify_card(card):
            raise RequestError(
                Code.BAD_KEY,
                f"the server gave a DM key for {sanitize(nick)} that does not verify; not sent",
            )
        notices = []
        known = None if hidden else state.by_nick(nick)
        if known is not None and known.peer != card.sign:
            was = " (you had verified it)" if known.verified else ""
            notices.append(
                DmNotice(
                    card.sign,
                    nick,
                    f"WARNING: {sanitize(nick)}'s DM key changed: was {known.label}{was}, now "
                    f"{label(nick, card.sign)}. It may be a new session of the same person, or "
                    "someone (the server?) in between: compare with /verify before you trust it",
                    "key_changed",
                )
            )
        conversation = self._conversation(card, nick)
        conversation.hidden = conversation.hidden or hidden
        return conversation, notices

    def _conversation(self, card: DmCard, nick: str) -> Conversation:
        conversation = self.state.conversations.get(card.sign)
        if conversation is None or conversation.card.dh != card.dh:
            conversation = Conversation(card, nick)
            self.state.conversations[card.sign] = conversation
        conversation.nick = nick  # what the daemon calls them now
        return conversation

    def received(self, frame: ev.Dm) -> list[DmEvent]:
        """Open one relayed direct message: a message, and notices (or a refusal)."""
        state = self.state
        state.seen = max(state.seen, frame.seq)
        card = DmCard(frame.sign, frame.dh, frame.sig)
        shown = label(frame.nick, frame.sign)
        try:
            opened = state.peers.open(card, frame.counter, frame.ct, now_ms())
        except CryptoError as exc:
            return [
                DmNotice(
                    frame.sign,
                    frame.nick,
                    f"refused a direct message said to be from {shown}: {exc.message} ({exc.code})",
                    "refused",
                )
            ]
        out: list[DmEvent] = []
        hidden = not frame.nick  # the sender hides its public nick: show the sealed one
        nick = shown_nick(opened.nick) if hidden else frame.nick
        known = state.conversations.get(frame.sign)
        if hidden and known is not None and nick == "?":
            nick = known.nick  # they do not say: keep what the room told us
        other = state.by_nick(frame.nick) if known is None and not hidden else None
        if other is not None and other.peer != frame.sign:
            was = " (you had verified it)" if other.verified else ""
            out.append(
                DmNotice(
                    frame.sign,
                    frame.nick,
                    f"WARNING: a direct message from {shown}, whose DM key is not the one "
                    f"you talked with as {sanitize(frame.nick)} ({other.label}{was}). It may "
                    "be a new session of the same person, or someone (the server?) in "
                    "between: compare with /verify before you trust it",
                    "key_changed",
                )
            )
        if known is not None and known.nick != nick:
            out.append(
                DmNotice(
                    frame.sign,
                    nick,
                    f"{label(known.nick, frame.sign)} is now called {sanitize(nick)}",
                    "nick",
                )
            )
            known.nick = nick
        conversation = self._conversation(card, nick)
        conversation.hidden = conversation.hidden or hidden
        if opened.missing:
            many = "s" if opened.missing > 1 else ""
            out.append(
                DmNotice(
                    frame.sign,
                    frame.nick,
                    f"{opened.missing} direct message{many} from {conversation.label} never "
                    "arrived (withheld or lost)",
                    "missing",
                )
            )
        me = opened.body.startswith(ME_MARK)
        out.append(
            DirectMessage(
                peer=frame.sign,
                nick=nick,
                fingerprint=card.fingerprint,
                text=opened.body[1:] if me else opened.body,
                ts=frame.ts,
                me=me,
                stale=opened.stale,
                sealed_nick=opened.nick,
            )
        )
        return out

    def missed(self, frame: ev.Missed) -> DmNotice:
        count = frame.last - frame.first + 1
        return DmNotice(
            b"",
            "",
            f"{count} direct message{'s' if count > 1 else ''} sent to you while you were away "
            "are gone from the server's memory",
            "missing",
        )

    def unavailable(self, why: str) -> DmNotice:
        return DmNotice(
            b"",
            "",
            f"direct messages do not work on this connection: the server refused your DM "
            f"key ({sanitize(why)})",
            "refused",
        )

    def verification(self, conversation: Conversation) -> Verification:
        own = self.state.identity.sign
        return Verification(
            label=conversation.label,
            key=conversation.peer,
            theirs=long_fingerprint(conversation.peer),
            ours=long_fingerprint(own),
            safety=safety_number(own, conversation.peer),
            verified=conversation.verified,
        )
