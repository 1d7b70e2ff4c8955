"""Public rooms and their fan-out.

A room numbers every event it carries (messages, presence, topic changes) with
its own sequence, so each member sees the same events in the same order and a
client can tell when it missed one.  Fan-out encodes a frame once and hands
the same bytes to every member (see :meth:`Room.broadcast`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from .. import events as ev
from ..wire import encode_frame

if TYPE_CHECKING:
    from collections.abc import Iterable


class Member(Protocol):
    """What a room needs of a session."""

    nick: str

    def deliver(self, frame_bytes: bytes) -> None: ...


def now_ms() -> int:
    return int(time.time() * 1000)


class Room:
    __slots__ = ("key", "members", "name", "owners", "seq", "topic")

    def __init__(self, name: str, key: str, topic: str = "") -> None:
        self.name = name
        self.key = key
        self.topic = topic
        self.seq = 0
        # Insertion-ordered: the member list shows who came first.
        self.members: dict[Member, None] = {}
        self.owners: set[Member] = set()

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def broadcast(self, frame: ev.Frame, exclude: Member | None = None) -> None:
        """Encode ``frame`` once and queue the same bytes for every member."""
        data = encode_frame(frame.to_wire())
        for member in list(self.members):
            if member is not exclude:
                member.deliver(data)

    def say(self, sender: Member, text: str, me: bool) -> int:
        seq = self.next_seq()
        self.broadcast(
            ev.Msg(room=self.name, seq=seq, ts=now_ms(), nick=sender.nick, text=text, me=me)
        )
        return seq

    def presence(
        self,
        who: Member,
        kind: str,
        *,
        nick: str | None = None,
        new: str | None = None,
        exclude: Member | None = None,
        msg: str | None = None,
    ) -> int:
        seq = self.next_seq()
        frame = ev.Presence(
            room=self.name,
            seq=seq,
            ts=now_ms(),
            kind=kind,
            nick=nick or who.nick,
            new=new,
            msg=msg,
        )
        self.broadcast(frame, exclude=exclude)
        return seq

    def set_topic(self, who: Member, topic: str) -> int:
        self.topic = topic
        seq = self.next_seq()
        self.broadcast(
            ev.TopicChanged(room=self.name, seq=seq, ts=now_ms(), nick=who.nick, topic=topic)
        )
        return seq

    def nicks(self) -> list[str]:
        return [m.nick for m in self.members]


class SecretRoom:
    """A room the daemon cannot read: an opaque id, a public join key, members' keys.

    It never learns the room's name, the passphrase or any message: it checks
    join proofs against ``auth`` and relays sealed frames in one order.
    """

    __slots__ = ("auth", "members", "owners", "rid", "seq")

    def __init__(self, rid: bytes, auth: bytes) -> None:
        self.rid = rid
        self.auth = auth
        self.seq = 0
        self.members: dict[Member, bytes] = {}  # session -> its sealing key
        self.owners: set[Member] = set()

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def broadcast(self, frame: ev.Frame, exclude: Member | None = None) -> None:
        data = encode_frame(frame.to_wire())
        for member in list(self.members):
            if member is not exclude:
                member.deliver(data)

    def presence(self, sender: bytes, kind: str, exclude: Member | None = None) -> int:
        seq = self.next_seq()
        self.broadcast(
            ev.SecretPresence(room=self.rid, seq=seq, ts=now_ms(), kind=kind, sender=sender),
            exclude=exclude,
        )
        return seq

    def relay(self, who: Member, seal: ev.Seal) -> int:
        seq = self.next_seq()
        self.broadcast(
            ev.Sealed(
                room=self.rid,
                seq=seq,
                ts=now_ms(),
                sender=self.members[who],
                counter=seal.counter,
                epoch=seal.epoch,
                kind=seal.kind,
                ct=seal.ct,
                sig=seal.sig,
            )
        )
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
