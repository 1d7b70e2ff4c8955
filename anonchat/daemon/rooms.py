"""Public rooms and their fan-out.

A room numbers every event it carries (messages, presence, topic changes) with
its own sequence, so each member sees the same events in the same order and a
client can tell when it missed one.  Fan-out encodes a frame once and hands
the same bytes to every member (see :meth:`Room.broadcast`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..crypto import OwnerChain
from ..wire import encode_frame

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .config import Limits


class _NoSecretRooms(dict[bytes, "SecretRoom"]):
    """The secret rooms of a member in none, the same empty dict for all (most
    members are in no secret room; an empty dict each is 64 bytes): a member
    enters its first one through :meth:`Member.enter_secret`, which gives it a
    dict of its own.  Writing here is refused, so a slip shows at once."""

    __slots__ = ()

    def __setitem__(self, key: bytes, value: SecretRoom) -> None:
        raise TypeError("NO_SECRET_ROOMS is shared: use Member.enter_secret")


NO_SECRET_ROOMS: dict[bytes, SecretRoom] = _NoSecretRooms()


class Member:
    """Someone in the daemon's shared state: a nick, rooms, keys.

    A :class:`~anonchat.daemon.session.Session` is a member with a connection
    to this node.  With several nodes (``--redis``), the members connected to
    other nodes are :class:`Remote` entries of the same shape: the state every
    node applies in one order (see ``state.py``) names them too, but nothing is
    ever delivered to them here (``closing`` is always true for them).
    """

    __slots__ = (
        "claims",
        "closing",
        "dm_card",
        "dm_ring",
        "dm_seq",
        "first_uid",
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
        "urgent",
    )

    def __init__(self, limits: Limits, uid: str, node: str) -> None:
        self.limits = limits
        self.uid = uid
        # The session this member is, kept when a new connection resumes it
        # (``uid`` names the connection's member entry and changes then): bans
        # are by session, so they follow a resumed session.
        self.first_uid = uid
        self.node = node
        self.nick = ""
        self.nick_key = ""  # names.name_key(nick): its key in shared.nicks
        self.claims: tuple[str, ...] = ()  # names.claim_keys(nick): its keys in shared.claims
        self.token_hash = b""
        self.rooms: dict[str, Room] = {}
        self.secret_rooms: dict[bytes, SecretRoom] = NO_SECRET_ROOMS  # (see enter_secret)
        self.closing = False
        # Frames for this member alone (replies), and room frames moved here to
        # keep their order with those (see Channel.catch_up); written once per pass.
        # While nothing is queued, the empty tuple all members share (a list is
        # made for the first frame: an idle session holds none).
        self.out: list[bytes] | tuple[()] = ()
        self.out_bytes = 0
        self.urgent = False  # on the daemon's list of sessions to flush this pass
        # Direct messages: the session's DM card (sign, dh, sig) once registered,
        # and those relayed to it, numbered by its own sequence; the ring (made
        # with the first one) keeps the last ``dm_ring`` of them for a resume.
        self.dm_card: tuple[bytes, bytes, bytes] | None = None
        self.dm_seq = 0
        self.dm_ring: Ring | None = None

    def enter_secret(self, room: SecretRoom) -> None:
        """Count ``room`` among this member's secret rooms."""
        if self.secret_rooms is NO_SECRET_ROOMS:
            self.secret_rooms = {}
        self.secret_rooms[room.rid] = room

    def send(self, frame: ev.Frame) -> None:
        """Answer this member (only a local session has anyone to answer)."""

    def ok(self, rid: int, seq: int | None = None) -> None:
        """``send(ev.Ok(id=rid, seq=seq))``: a message's answer (a session's is cheaper)."""
        self.send(ev.Ok(id=rid, seq=seq))

    def deliver(self, frame_bytes: bytes) -> None:
        """Queue encoded bytes for this member's connection, if it is here."""

    def take(self, frames: list[bytes]) -> None:
        """Queue a room's frames ahead of what comes next (see Channel.catch_up)."""

    def abort(self, code: str) -> None:
        """Drop this member's connection, if it is here."""

    def close(self, code: str, msg: str) -> None:
        """Tell this member's client why and close, if it is here."""

    def flush(self) -> None:
        """Write what is queued, if the connection is here."""

    def write(self, data: bytes) -> None:
        """Write ``data`` now, if the connection is here (see Daemon.flush_rooms)."""

    def applied(self) -> None:
        """One of this member's requests was applied (a local session reads on)."""

    def welcome(self, resumed: bool, seen: list[list[Any]]) -> None:
        """The shared state took this session: greet its client, if it is here."""

    #: Whether this member's connection is on this node (replies are built only then).
    here = False


class Remote(Member):
    """A member connected to another node: named in rooms, never written to here."""

    __slots__ = ()

    def __init__(self, limits: Limits, uid: str, node: str) -> None:
        super().__init__(limits, uid, node)
        self.closing = True  # fan-out on this node skips it

    def __repr__(self) -> str:
        return f"<Remote {self.uid} {self.nick!r}>"


def now_ms() -> int:
    return int(time.time() * 1000)


class Ring:
    """The recent numbered events of one room, as the bytes that were sent.

    Bounded by count and by bytes, in memory only.  It serves a resuming
    client the events it missed and a newcomer the last messages.

    A room numbers its events one after another, so an event's number is its
    place in the ring (the newest is ``_last``): per event the ring holds its
    bytes and one byte saying whether it is a message (what history replays),
    not a (number, flag, bytes) tuple with a number object of its own -- about
    a hundred bytes less per event (issue 18: a room of 100 holds the 100
    events of its members' joins).
    """

    __slots__ = ("_frames", "_last", "_messages", "_size", "max_bytes", "max_frames")

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._frames: deque[bytes] = deque()
        self._messages = bytearray()  # per frame: 1 if it is a message, else 0
        self._last = 0  # the number of the newest frame
        self._size = 0

    def add(self, seq: int, is_message: bool, data: bytes) -> None:
        frames = self._frames
        if seq != self._last + 1 and frames:
            # (Not done: a ring's events are numbered one after another.  Were
            # one to skip, what the ring holds would no longer be numbered by
            # its place: the older frames go, and are reported missed.)
            frames.clear()
            self._messages.clear()
            self._size = 0
        self._last = seq
        frames.append(data)
        self._messages.append(is_message)
        self._size += len(data)
        if len(frames) > self.max_frames or self._size > self.max_bytes:
            while frames and (len(frames) > self.max_frames or self._size > self.max_bytes):
                self._size -= len(frames.popleft())
                del self._messages[0]  # (O(1): a bytearray drops its head in place)

    def _first(self) -> int:
        """The number of the oldest frame held."""
        return self._last - len(self._frames) + 1

    def _after(self, seq: int) -> int:
        """How many of the oldest frames are numbered ``seq`` or less."""
        return min(len(self._frames), max(0, seq - self._first() + 1))

    def extend_messages(self, first: int, frames: list[bytes]) -> None:
        """:meth:`add` each of ``frames`` as a message, numbered ``first``,
        ``first + 1``, ... (a run of messages, Session._say_run): the frames
        go in at once and the oldest go once, not one by one."""
        held = self._frames
        if not frames:
            return
        if held and first != self._last + 1:
            for seq, data in enumerate(frames, first):
                self.add(seq, True, data)
            return
        held.extend(frames)
        self._messages += b"\x01" * len(frames)
        self._size += sum(map(len, frames))
        self._last = first + len(frames) - 1
        if len(held) > self.max_frames or self._size > self.max_bytes:
            size, drop = self._size, 0
            over = len(held) - self.max_frames
            for data in held:
                if drop >= over and size <= self.max_bytes:
                    break
                size -= len(data)
                drop += 1
            for _ in range(drop):
                held.popleft()
            del self._messages[:drop]
            self._size = size

    def entries(self) -> list[tuple[int, bool, bytes]]:
        first = self._first()
        return [
            (first + i, bool(message), data)
            for i, (message, data) in enumerate(zip(self._messages, self._frames, strict=True))
        ]

    def restore(self, entries: Iterable[tuple[int, bool, bytes]]) -> None:
        for seq, is_message, data in entries:
            self.add(seq, is_message, data)

    def size_since(self, seq: int) -> int:
        """Bytes of the frames after ``seq``."""
        return sum(len(data) for data in islice(self._frames, self._after(seq), None))

    def since(
        self, seq: int, latest: int, budget: int | None = None
    ) -> tuple[list[bytes], tuple[int, int] | None]:
        """Frames after ``seq`` -- the newest of them within ``budget`` bytes,
        if given -- and the range of those not given (gone from the ring, or
        older than what fits), or None."""
        skip = self._after(seq)
        frames = list(islice(self._frames, skip, None))
        oldest = self._first() + skip  # the number of frames[0]
        if budget is not None:
            total = sum(len(data) for data in frames)
            start = 0
            while start < len(frames) and total > budget:
                total -= len(frames[start])
                start += 1
            frames = frames[start:]
            oldest += start
        if not frames:
            oldest = latest + 1
        lost = (seq + 1, min(oldest - 1, latest)) if oldest > seq + 1 and seq < latest else None
        return frames, lost

    def history(self, count: int) -> list[bytes]:
        """The last ``count`` messages (not presence events), oldest first."""
        out: list[bytes] = []
        for message, data in zip(reversed(self._messages), reversed(self._frames), strict=True):
            if len(out) >= count:
                break
            if message:
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
    the modes and bans owners set, and the frames of the current pass.

    Fan-out (the daemon's hottest code) does no work per member per event: an
    event is encoded once and appended to the room's ``log``, the frames
    carried since the room was last flushed.  When the daemon flushes (once
    per event-loop pass, see Daemon.flush_rooms) every member is written the
    log with one write, the very same joined bytes for all who read it from
    the start.  A member that must get a frame of its own in between (a reply,
    a frame another room sends it, leaving the room) first takes the log up to
    that point into its own queue (:meth:`catch_up`); ``cursors`` remembers
    how far each such member has taken it, so every member sees every event of
    the room once, in the room's order, and in order with its own replies.
    """

    __slots__ = (
        "_joined",
        "_joined_n",
        "banned",
        "changed",
        "cursors",
        "history",
        "last_said",
        "locked",
        "log",
        "members",
        "owners",
        "ring",
        "seq",
        "slow",
        "to_flush",
    )

    def __init__(
        self, ring: Ring, to_flush: Callable[[Channel], None], changed: Callable[[], None]
    ) -> None:
        # What the node does once per pass for a room with frames (its members
        # are written: Daemon.room_to_flush), and what a change of members means
        # for the node's room list (SharedState.list_changed): called, never held
        # as the node itself, so a room knows nothing of the daemon.
        self.to_flush = to_flush
        self.changed = changed
        self.seq = 0
        # Insertion-ordered: the member list shows who came first.
        self.members: dict[Member, Any] = {}
        self.owners: set[Member] = set()
        self.ring = ring
        self.locked = False  # no new members
        self.slow = 0  # seconds between two messages of a member who is not an owner
        self.history = True  # newcomers get the recent messages
        self.banned: set[str] = (
            set()
        )  # sessions (by first_uid), never addresses; for the room's lifetime
        self.last_said: dict[
            Member, int
        ] = {}  # log time (ms) of each one's last message, for slow mode
        self.log: list[bytes] = []  # frames broadcast since the last flush
        self.cursors: dict[Member, int] = {}  # how much of ``log`` a member has taken (else 0)
        self._joined = b""  # b"".join(log[:_joined_n]), made once for all members
        self._joined_n = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def broadcast(self, frame: ev.Frame, exclude: Member | None = None) -> None:
        """Encode ``frame`` once, keep it in the ring, and add it to this pass's log."""
        seq: int = getattr(frame, "seq", 0)
        self.publish(encode_frame(frame.to_wire()), seq, _is_message(frame), exclude)

    def publish(
        self, data: bytes, seq: int, is_message: bool, exclude: Member | None = None
    ) -> None:
        """Keep an encoded event in the ring and add it to this pass's log."""
        self.ring.add(seq, is_message, data)
        log = self.log
        if not log:
            self.to_flush(self)
        if exclude is not None and exclude in self.members:
            self.catch_up(exclude)
            log.append(data)
            self.cursors[exclude] = len(log)  # it skips this one
        else:
            log.append(data)

    def catch_up(self, member: Member) -> None:
        """Move the frames ``member`` has not taken of this pass's log to its own
        queue: before a frame of its own, or before it leaves the room."""
        log = self.log
        start = self.cursors.get(member, 0)
        if start < len(log):
            self.cursors[member] = len(log)
            member.take(log[start:])

    def pending(self, member: Member) -> list[bytes]:
        """The frames of this pass ``member`` has not taken yet."""
        return self.log[self.cursors.get(member, 0) :]

    def joined(self) -> bytes:
        """The whole log as one buffer, joined once for every member that needs it all."""
        if self._joined_n != len(self.log):
            self._joined = b"".join(self.log)
            self._joined_n = len(self.log)
        return self._joined

    def flushed(self) -> None:
        """Every member was written the log: start the next pass's."""
        self.log = []
        self.cursors.clear()
        self._joined, self._joined_n = b"", 0

    def add(self, member: Member, value: Any) -> None:
        """A newcomer, last in the member list: it gets the events from now on."""
        self.members[member] = value
        self.changed()
        if self.log:
            self.cursors[member] = len(self.log)

    def remove(self, member: Member) -> None:
        """``member`` leaves (or is removed): it is still sent what came before."""
        self.catch_up(member)
        self.cursors.pop(member, None)
        self.members.pop(member, None)
        self.changed()
        self.owners.discard(member)
        self.last_said.pop(member, None)

    def replace_member(self, old: Member, new: Member) -> None:
        """A resumed session takes the place (and the order) of the one it resumes."""
        self.members = {(new if m is old else m): v for m, v in self.members.items()}
        self.cursors.pop(old, None)
        if self.log:
            self.cursors[new] = len(self.log)  # what it missed comes from the ring
        if old in self.owners:
            self.owners.discard(old)
            self.owners.add(new)
        if old in self.last_said:
            self.last_said[new] = self.last_said.pop(old)


class Room(Channel):
    """A public room: a name, a topic, members by nick, owners and modes."""

    __slots__ = ("key", "name", "topic")

    def __init__(
        self,
        ring: Ring,
        to_flush: Callable[[Channel], None],
        changed: Callable[[], None],
        name: str,
        key: str,
        topic: str = "",
    ) -> None:
        super().__init__(ring, to_flush, changed)
        self.name = name
        self.key = key
        self.topic = topic

    def owner_nicks(self) -> list[str]:
        return [m.nick for m in self.members if m in self.owners]

    def say(self, sender: Member, text: str, me: bool, ts: int) -> int:
        self.seq = seq = self.seq + 1  # (next_seq, inline)
        # The hottest event: its map is built here, not through ev.Msg, whose checks
        # every value has passed already (the room's name and the sender's nick when
        # they were taken, the text in Session.on_say); test_rooms checks the bytes
        # are Msg's, key for key.
        body: dict[str, Any] = {
            "t": "msg",
            "room": self.name,
            "seq": seq,
            "ts": ts,
            "nick": sender.nick,
            "text": text,
        }
        if me:
            body["me"] = True
        self.publish(encode_frame(body), seq, True)
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
        self.changed()
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

    __slots__ = ("auth", "chain", "closed", "grants", "mode", "owner_tag", "rid")

    def __init__(
        self,
        ring: Ring,
        to_flush: Callable[[Channel], None],
        rid: bytes,
        auth: bytes,
        owner: bytes,
        owner_tag: bytes,
    ) -> None:
        super().__init__(ring, to_flush, _unlisted)  # (not in the room list)
        self.rid = rid
        self.auth = auth
        self.chain = OwnerChain(rid, owner)
        self.owner_tag = owner_tag
        self.grants: list[ev.OwnerAct] = []  # for newcomers to verify
        self.mode: ev.OwnerAct | None = None  # the last mode action
        self.closed = False  # an owner closed it: no new sealed message, no newcomer
        # ``banned`` holds sessions (by first_uid); their keys are in chain.banned.

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


def _unlisted() -> None:
    pass


def member_list(room: Room, budget: int) -> tuple[list[str], int]:
    """A room's nicks in join order, as many as fit ``budget`` (stops there)."""
    return fit((m.nick for m in room.members), budget, _nick_size, len(room.members))


def _nick_size(nick: str) -> int:
    return 2 + len(nick.encode())


def fit(
    items: Iterable[Any], budget: int, size: Any, total: int | None = None
) -> tuple[list[Any], int]:
    """Take items in order while their summed ``size(item)`` stays within ``budget``.

    Returns the items taken and how many were left out, so a reply never
    exceeds the frame limit however many rooms or members there are.  Given
    the ``total`` number of items, it stops at the first one left out.
    """
    taken: list[Any] = []
    left = 0
    used = 0
    for item in items:
        cost = size(item)
        if left or used + cost > budget or len(taken) >= ev.LIST_MAX:
            if total is not None:
                return taken, total - len(taken)
            left += 1
            continue
        used += cost
        taken.append(item)
    return taken, left
