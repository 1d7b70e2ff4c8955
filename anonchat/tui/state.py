"""What the chat screen shows, as plain data: rooms, members, unread counts.

No Textual here: the app feeds frames in and asks what changed, so this is
easy to reason about and to test.  Rooms are keyed by
:func:`anonchat.names.name_key`, the same key the daemon compares by.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import events as ev
from ..names import name_key
from ..room import secret_key as secret_key
from ..secret import SecretEvent

CONSOLE = ""  # key of the server console, the window that is always there


@dataclass
class RoomState:
    name: str
    topic: str = ""
    members: list[str] = field(default_factory=list)
    more: int = 0  # members the server left out of the list
    owner: bool = False
    unread: int = 0
    mentioned: bool = False
    last_seq: int = 0
    secret: bool = False  # members are then "nick#fingerprint" labels, no topic
    verified: set[str] = field(default_factory=set)  # labels verified with /verify
    joined: bool = True  # False while a secret room waits to be rejoined, or once removed
    owners: set[str] = field(default_factory=set)  # nicks (labels in a secret room)
    removed: str = ""  # why we are out of it: "kicked by bob (spam)"; "" while in it
    dm: str = ""  # a conversation of direct messages: its window key (name: their label)

    @property
    def key(self) -> str:
        if self.dm:
            return self.dm
        return secret_key(self.name) if self.secret else name_key(self.name)

    @property
    def member_count(self) -> int:
        return len(self.members) + self.more

    def add_member(self, nick: str) -> None:
        if name_key(nick) not in {name_key(m) for m in self.members}:
            self.members.append(nick)

    def remove_member(self, nick: str) -> None:
        k = name_key(nick)
        self.members = [m for m in self.members if name_key(m) != k]

    def rename_member(self, old: str, new: str) -> None:
        k = name_key(old)
        self.members = [new if name_key(m) == k else m for m in self.members]
        if any(name_key(o) == k for o in self.owners):
            self.owners = {new if name_key(o) == k else o for o in self.owners}

    def is_owner(self, nick: str) -> bool:
        k = name_key(nick)
        return any(name_key(o) == k for o in self.owners)

    def removed_by_owner(self, why: str) -> None:
        """An owner removed us: the window stays, marked not joined, saying why."""
        self.joined = False
        self.removed = why
        self.members, self.more, self.owners, self.owner = [], 0, set(), False


@dataclass
class ChatState:
    """Joined rooms in the order they were joined, plus the public room list."""

    rooms: dict[str, RoomState] = field(default_factory=dict)
    public: list[ev.RoomInfo] = field(default_factory=list)
    current: str = CONSOLE

    def windows(self) -> list[str]:
        """Keys of every window in order: the console, then the joined rooms."""
        return [CONSOLE, *self.rooms]

    def activity(self) -> list[tuple[int, bool]]:
        """Windows with unread lines, as the status bar shows them while the room
        list is hidden (weechat's "Act:"): (Alt+digit number, mentioned)."""
        return [
            (number, room.mentioned)
            for number, room in enumerate(self.rooms.values(), start=1)
            if room.unread
        ]

    def room(self, name: str, *, secret: bool = False) -> RoomState | None:
        return self.rooms.get(secret_key(name) if secret else name_key(name))

    def secret_rooms(self) -> list[RoomState]:
        return [r for r in self.rooms.values() if r.secret]

    def enter_secret(self, name: str, members: list[str]) -> RoomState:
        room = self.rooms.get(secret_key(name))
        if room is None:
            room = RoomState(name, secret=True)
            self.rooms[room.key] = room
        room.members = list(members)
        room.joined, room.removed = True, ""
        return room

    def apply_secret(self, event: SecretEvent) -> RoomState:
        """Note a secret room's event (creating the room if it raced ahead of our join)."""
        room = self.rooms.get(secret_key(event.room))
        if room is None:
            room = RoomState(event.room, secret=True)
            self.rooms[room.key] = room
        room.last_seq = max(room.last_seq, event.seq)
        return room

    def open_dm(self, key: str, label: str, own: str) -> RoomState:
        """A conversation's window (``label``: theirs, ``bob#k3f9``), listed with the rooms."""
        room = self.rooms.get(key)
        if room is None:
            room = RoomState(label, dm=key)
            self.rooms[key] = room
        room.name = label
        room.members = [label, own]
        return room

    def enter(self, joined: ev.Joined) -> RoomState:
        room = self.rooms.get(name_key(joined.room))
        if room is None:
            room = RoomState(joined.room)
            self.rooms[room.key] = room
        room.name = joined.room
        room.topic = joined.topic
        room.members = list(joined.members)
        room.more = joined.more
        room.owner = joined.owner
        room.owners = set(joined.owners or ())
        room.last_seq = joined.seq
        room.joined, room.removed = True, ""
        return room

    def forget(self, name: str, *, secret: bool = False) -> None:
        key = secret_key(name) if secret else name_key(name)
        self.rooms.pop(key, None)
        if self.current == key:
            self.current = next(reversed(self.rooms), CONSOLE)

    def switch(self, key: str) -> bool:
        if key != CONSOLE and key not in self.rooms:
            return False
        self.current = key
        room = self.rooms.get(key)
        if room is not None:
            room.unread = 0
            room.mentioned = False
        return True

    def step(self, delta: int) -> str:
        """The window ``delta`` places after the current one, wrapping around."""
        order = self.windows()
        i = order.index(self.current) if self.current in order else 0
        return order[(i + delta) % len(order)]

    def apply(self, frame: ev.Msg | ev.Presence | ev.TopicChanged) -> RoomState:
        """Update members/topic/sequence for a room event; return the room."""
        room = self.rooms.get(name_key(frame.room))
        if room is None:  # an event raced ahead of our own join reply
            room = RoomState(frame.room)
            self.rooms[room.key] = room
        room.last_seq = max(room.last_seq, frame.seq)
        if isinstance(frame, ev.TopicChanged):
            room.topic = frame.topic
        elif isinstance(frame, ev.Presence):
            if frame.kind == "join":
                room.add_member(frame.nick)
            elif frame.kind == "nick":
                room.rename_member(frame.nick, frame.new or frame.nick)
            elif frame.kind == "op":
                room.owners.add(frame.nick)  # an owner named them, or they inherited it
            else:  # leave, quit, kick, ban
                room.remove_member(frame.nick)
                room.owners = {o for o in room.owners if name_key(o) != name_key(frame.nick)}
        return room

    def member_count(self, info: ev.RoomInfo) -> int:
        room = self.rooms.get(name_key(info.room))
        return room.member_count if room is not None else info.members

    def all_nicks(self) -> list[str]:
        seen: dict[str, str] = {}
        for room in self.rooms.values():
            if room.dm:
                continue
            for member in room.members:
                # A secret room's members are labels: complete the nick part.
                nick = member.rpartition("#")[0] or member if room.secret else member
                seen.setdefault(name_key(nick), nick)
        return list(seen.values())
