"""Public rooms and their fan-out.

A room numbers every event it carries (messages, presence, topic changes) with
its own sequence, so each member sees the same events in the same order and a
client can tell when it missed one.  Fan-out encodes a frame once and hands
the same bytes to every member (see :meth:`Room.broadcast`).
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..crypto import OwnerChain
from ..errors import Code
from ..wire import encode_frame

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .server import Daemon


class Member:
    """Someone in the daemon's shared state: a nick, rooms, keys.

    A :class:`~anonchat.daemon.session.Session` is a member with a connection
    to this node.  With several nodes (``--redis``), the members connected to
    other nodes are :class:`Remote` entries of the same shape: the state every
    node applies in one order (see ``state.py``) names them too, but nothing is
    ever delivered to them here (``closing`` is always true for them).
    """

    __slots__ = (
        "closing",
        "daemon",
        "dirty",
        "limits",
        "nick",
        "nick_key",
        "node",
        "out",
        "out_bytes",
        "rooms",
        "secret_rooms",
        "token_hash",
        "uid",
    )

    def __init__(self, daemon: Daemon, uid: str, node: str) -> None:
        self.daemon = daemon
        self.limits = daemon.config.limits
        self.uid = uid
        self.node = node
        self.nick = ""
        self.nick_key = ""
        self.token_hash = b""
        self.rooms: dict[str, Room] = {}
        self.secret_rooms: dict[bytes, SecretRoom] = {}
        self.closing = False
        self.out: list[bytes] = []  # frames waiting for this pass's single write
        self.out_bytes = 0
        self.dirty = False  # on the daemon's list of sessions to flush

    def send(self, frame: ev.Frame) -> None:
        """Answer this member (only a local session has anyone to answer)."""

    def deliver(self, frame_bytes: bytes) -> None:
        """Queue encoded bytes for this member's connection, if it is here."""

    def abort(self, code: str) -> None:
        """Drop this member's connection, if it is here."""

    def close(self, code: str, msg: str) -> None:
        """Tell this member's client why and close, if it is here."""

    def flush(self) -> None:
        """Write what is queued, if the connection is here."""

    def applied(self) -> None:
        """One of this member's requests was applied (a local session reads on)."""

    def welcome(self, resumed: bool, seen: list[list[Any]]) -> None:
        """The shared state took this session: greet its client, if it is here."""

    #: Whether this member's connection is on this node (replies are built only then).
    here = False


class Remote(Member):
    """A member connected to another node: named in rooms, never written to here."""

    __slots__ = ()

    def __init__(self, daemon: Daemon, uid: str, node: str) -> None:
        super().__init__(daemon, uid, node)
        self.closing = True  # fan-out on this node skips it

    def __repr__(self) -> str:
        return f"<Remote {self.uid} {self.nick!r}>"


def now_ms() -> int:
    return int(time.time() * 1000)


class Ring:
    """The recent numbered events of one room, as the bytes that were sent.

    Bounded by count and by bytes, in memory only.  It serves a resuming
    client the events it missed and a newcomer the last messages.
    """

    __slots__ = ("_entries", "_size", "max_bytes", "max_frames")

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._entries: deque[tuple[int, bool, bytes]] = deque()  # (seq, is_message, frame)
        self._size = 0

    def add(self, seq: int, is_message: bool, data: bytes) -> None:
        self._entries.append((seq, is_message, data))
        self._size += len(data)
        while self._entries and (
            len(self._entries) > self.max_frames or self._size > self.max_bytes
        ):
            self._size -= len(self._entries.popleft()[2])

    def entries(self) -> list[tuple[int, bool, bytes]]:
        return list(self._entries)

    def restore(self, entries: Iterable[tuple[int, bool, bytes]]) -> None:
        for seq, is_message, data in entries:
            self.add(seq, is_message, data)

    def since(self, seq: int, latest: int) -> tuple[list[bytes], tuple[int, int] | None]:
        """Frames after ``seq``, and the range of those no longer held (or None)."""
        frames = [data for s, _, data in self._entries if s > seq]
        oldest = self._entries[0][0] if self._entries else latest + 1
        lost = (seq + 1, min(oldest - 1, latest)) if oldest > seq + 1 and seq < latest else None
        return frames, lost

    def history(self, count: int) -> list[bytes]:
        """The last ``count`` messages (not presence events), oldest first."""
        out: list[bytes] = []
        for _, is_message, data in reversed(self._entries):
            if len(out) >= count:
                break
            if is_message:
                out.append(data)
        out.reverse()
        return out


def _is_message(frame: ev.Frame) -> bool:
    """What history on join replays: what people said, not announcements or presence."""
    return isinstance(frame, ev.Msg) or (
        isinstance(frame, ev.Sealed) and frame.kind in ("msg", "me")
    )


class Channel:
    """What public and secret rooms share: members, owners, a sequence, a ring,
    and the modes and bans owners set."""

    __slots__ = (
        "banned",
        "history",
        "last_said",
        "locked",
        "members",
        "owners",
        "ring",
        "seq",
        "slow",
    )

    def __init__(self, ring: Ring) -> None:
        self.seq = 0
        # Insertion-ordered: the member list shows who came first.
        self.members: dict[Member, Any] = {}
        self.owners: set[Member] = set()
        self.ring = ring
        self.locked = False  # no new members
        self.slow = 0  # seconds between two messages of a member who is not an owner
        self.history = True  # newcomers get the recent messages
        self.banned: set[str] = set()  # session uids, never addresses; for the room's lifetime
        self.last_said: dict[
            Member, int
        ] = {}  # log time (ms) of each one's last message, for slow mode

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def broadcast(self, frame: ev.Frame, exclude: Member | None = None) -> None:
        """Encode ``frame`` once, keep it in the ring, queue the same bytes for every member."""
        data = encode_frame(frame.to_wire())
        seq: int = getattr(frame, "seq", 0)
        self.ring.add(seq, _is_message(frame), data)
        # Delivering never changes membership (a dropped member leaves later), so
        # the dict is walked as it is, without a copy.  Session.deliver, inlined:
        # this loop runs once per member per event, the daemon's hottest code.
        size = len(data)
        for member in self.members:
            if member is exclude or member.closing:
                continue
            member.out.append(data)
            member.out_bytes += size
            if member.out_bytes > member.limits.sendq:
                member.abort(Code.SENDQ_EXCEEDED)
            elif not member.dirty:
                member.dirty = True
                member.daemon.mark_dirty(member)

    def replace_member(self, old: Member, new: Member) -> None:
        """A resumed session takes the place (and the order) of the one it resumes."""
        self.members = {(new if m is old else m): v for m, v in self.members.items()}
        if old in self.owners:
            self.owners.discard(old)
            self.owners.add(new)
        if old.uid in self.banned:
            self.banned.discard(old.uid)
            self.banned.add(new.uid)
        if old in self.last_said:
            self.last_said[new] = self.last_said.pop(old)


class Room(Channel):
    """A public room: a name, a topic, members by nick, owners and modes."""

    __slots__ = ("key", "name", "topic")

    def __init__(self, name: str, key: str, ring: Ring, topic: str = "") -> None:
        super().__init__(ring)
        self.name = name
        self.key = key
        self.topic = topic

    def owner_nicks(self) -> list[str]:
        return [m.nick for m in self.members if m in self.owners]

    def say(self, sender: Member, text: str, me: bool, ts: int) -> int:
        seq = self.next_seq()
        self.broadcast(ev.Msg(room=self.name, seq=seq, ts=ts, nick=sender.nick, text=text, me=me))
        return seq

    def presence(
        self,
        who: Member,
        kind: str,
        ts: int,
        *,
        nick: str | None = None,
        new: str | None = None,
        exclude: Member | None = None,
        msg: str | None = None,
        by: str | None = None,
    ) -> int:
        seq = self.next_seq()
        frame = ev.Presence(
            room=self.name,
            seq=seq,
            ts=ts,
            kind=kind,
            nick=nick or who.nick,
            new=new,
            msg=msg,
            by=by,
        )
        self.broadcast(frame, exclude=exclude)
        return seq

    def set_topic(self, who: Member, topic: str, ts: int) -> int:
        self.topic = topic
        seq = self.next_seq()
        self.broadcast(ev.TopicChanged(room=self.name, seq=seq, ts=ts, nick=who.nick, topic=topic))
        return seq

    def nicks(self) -> list[str]:
        return [m.nick for m in self.members]


class SecretRoom(Channel):
    """A room the daemon cannot read: an opaque id, a public join key, members' keys.

    It never learns the room's name, the passphrase or any message: it checks
    join proofs against ``auth`` and relays sealed frames in one order.
    ``members`` maps each session to its sealing key.

    Moderation (anonchat/daemon/secret_moderation.py): ``chain`` says which
    keys may act, from the owner key the creator registered (with ``owner_tag``,
    which only members can check); the daemon enforces what they sign.
    """

    __slots__ = ("auth", "chain", "grants", "mode", "owner_tag", "rid")

    def __init__(self, rid: bytes, auth: bytes, ring: Ring, owner: bytes, owner_tag: bytes) -> None:
        super().__init__(ring)
        self.rid = rid
        self.auth = auth
        self.chain = OwnerChain(rid, owner)
        self.owner_tag = owner_tag
        self.grants: list[ev.OwnerAct] = []  # for newcomers to verify
        self.mode: ev.OwnerAct | None = None  # the last mode action
        # ``banned`` holds sessions (by uid); their keys are in chain.banned.

    def presence(self, sender: bytes, kind: str, ts: int, exclude: Member | None = None) -> int:
        seq = self.next_seq()
        self.broadcast(
            ev.SecretPresence(room=self.rid, seq=seq, ts=ts, kind=kind, sender=sender),
            exclude=exclude,
        )
        return seq

    def relay(self, who: Member, seal: list[Any], ts: int) -> int:
        """Number and relay a sealed message: ``seal`` is [counter, epoch, kind, ct, sig]."""
        seq = self.next_seq()
        counter, epoch, kind, ct, sig = seal
        self.broadcast(
            ev.Sealed(
                room=self.rid,
                seq=seq,
                ts=ts,
                sender=self.members[who],
                counter=counter,
                epoch=epoch,
                kind=kind,
                ct=ct,
                sig=sig,
            )
        )
        return seq

    def acted(self, act: ev.OwnerAct, ts: int) -> int:
        """Relay an owner action the daemon accepted, as it was signed."""
        seq = self.next_seq()
        self.broadcast(ev.SecretActed(room=self.rid, seq=seq, ts=ts, act=act))
        return seq


def fit(items: Iterable[Any], budget: int, size: Any) -> tuple[list[Any], int]:
    """Take items in order while their summed ``size(item)`` stays within ``budget``.

    Returns the items taken and how many were left out, so a reply never
    exceeds the frame limit however many rooms or members there are.
    """
    taken: list[Any] = []
    left = 0
    used = 0
    for item in items:
        cost = size(item)
        if left or used + cost > budget or len(taken) >= ev.LIST_MAX:
            left += 1
            continue
        used += cost
        taken.append(item)
    return taken, left
