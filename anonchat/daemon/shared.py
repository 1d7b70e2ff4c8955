"""The tables every node replicates, and the little the state needs of its node.

``state.py`` applies commands to a :class:`SharedState`; so do the modules it
calls (``moderation``, ``secret_moderation``, ``dms``) and ``snapshot``, which
dumps and loads one.  None of them sees the :class:`~anonchat.daemon.server.Daemon`:
the daemon owns one ``SharedState`` and hands it, at construction, the few
things applying a command needs from the node -- as callables, each named for
what it does:

* ``to_flush(channel)``: a room carried its first frame since its last flush
  (``Daemon.room_to_flush``: its members are written at the end of the pass);
* ``stop_waiting(member)``: a dropped session of this node was resumed or
  ended, so its resume timer goes (``Daemon.stop_waiting``);
* ``lose(why)``: this node cannot go on with the service (``Daemon.lose``);
* ``stopping()``: whether the node is stopping (its own ``down`` is news to
  nobody);

and ``stats``, the node's counters (``metrics.Stats``, seen as the
:class:`Counters` applying bumps).  What is the node's
alone stays in the daemon: its connections (``sessions``), the resume
timers of its dropped sessions, its listener, its configuration, its loop.

Everything here is the same on every node that applied the same commands
(``node``, ``settings``, ``pin_bytes`` and ``replaying`` are this node's, and
``listing`` only counts changes for this node's cached room list).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import Code, RequestError
from ..names import name_key
from .rooms import Channel, Member, Ring, Room, SecretRoom

if TYPE_CHECKING:
    from .config import Limits

#: The meaning of commands; a node applying them differently is refused.
VERSION = 1
#: The limits that applying commands (or a deadline in the log) uses: every node
#: of a service must have the same, or their states drift apart.
SHARED_LIMITS = (
    "max_rooms",
    "max_rooms_per_session",
    "max_members_per_room",
    "ring_frames",
    "ring_bytes",
    "resume_window",
)


def shared_settings(limits: Limits, node_timeout: float) -> dict[str, Any]:
    """The settings every node must agree on (sent in each beat)."""
    settings: dict[str, Any] = {name: getattr(limits, name) for name in SHARED_LIMITS}
    settings["node_timeout"] = node_timeout
    settings["commands"] = VERSION
    return settings


def settings_differ(mine: dict[str, Any], theirs: dict[str, Any]) -> str:
    """The settings that differ, for a message ("" if none)."""
    names = sorted(set(mine) | set(theirs))
    return ", ".join(
        f"{n} is {_shown(mine.get(n))} here but {_shown(theirs.get(n))} there"
        for n in names
        if mine.get(n) != theirs.get(n)
    )


def _shown(value: Any) -> str:
    """A setting as the config file writes it: ``120``, not ``120.0``, whether
    it came from a TOML integer or from a default in seconds."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


class Counters(Protocol):
    """What applying commands counts for the node's metrics (``metrics.Stats``)."""

    resumes: int
    announcements: int
    direct: int
    handovers: int
    nodes_gone: int
    nodes_down: int

    def message(self, node: str, ts: int, sealed: bool = False) -> None:
        """A message sent through ``node`` was numbered at log time ``ts``."""


def _never() -> bool:
    return False


def _nothing(*_: Any) -> None:
    pass


class SharedState:
    """Nicks, members, rooms, tokens and nodes, as every node holds them."""

    def __init__(
        self,
        node: str,
        limits: Limits,
        node_timeout: float,
        stats: Counters,
        *,
        to_flush: Callable[[Channel], None],
        stop_waiting: Callable[[Member], None] = _nothing,
        lose: Callable[[str], None] = _nothing,
        stopping: Callable[[], bool] = _never,
    ) -> None:
        self.node = node  # this node, among the nodes of one service
        self.limits = limits
        self.node_timeout = node_timeout
        self.stats = stats
        self.to_flush = to_flush
        self.stop_waiting = stop_waiting
        self.lose = lose
        self.stopping = stopping
        self.members: dict[str, Member] = {}  # uid -> member, wherever it is connected
        self.nicks: dict[str, Member] = {}  # name_key(nick) -> its holder
        # Every look-alike claim of every nick (names.claim_keys) -> its holder:
        # a nick is free only if none of its claims is held (state.holder).
        self.claims: dict[str, Member] = {}
        self.rooms: dict[str, Room] = {}
        self.secret_rooms: dict[bytes, SecretRoom] = {}
        self.tokens: dict[bytes, Member] = {}  # hash of a resume token -> member
        self.dm_keys: dict[bytes, Member] = {}  # DM signing key -> the session holding it
        self.nodes: dict[str, int] = {}  # node -> log time of its last heartbeat (Redis)
        # node -> log time since which its heartbeats reached the stream without a
        # gap: a node judges others only after node_timeout of it (state.beat).
        self.alive_since: dict[str, int] = {}
        # node -> the settings it beats with (shared_settings): all must agree.
        self.node_settings: dict[str, dict[str, Any]] = {}
        self.settings = shared_settings(limits, node_timeout)  # this node's
        self.mismatched: set[str] = set()  # nodes with other settings, logged once
        # Sessions of a node that stopped and handed them over, by uid -> the log
        # time until which they may be resumed on another node (state.handed_over).
        self.orphans: dict[str, int] = {}
        # The raw pin secret-room join proofs are bound to (set once the node
        # has its TLS identity: Daemon.start; zeros without TLS).
        self.pin_bytes = bytes(32)
        # Applying the stream's past while starting (Redis): what happened then
        # is history, not news, for the log and for the checks of settings.
        self.replaying = False
        # The room list, sorted, is made again only after a room changed (a
        # member, a topic, a room made or dropped): ``listing`` counts changes.
        self.listing = 0

    def list_changed(self) -> None:
        """A public room changed what ``/list`` shows of it."""
        self.listing += 1

    def new_ring(self) -> Ring:
        limits = self.limits
        return Ring(limits.ring_frames, limits.ring_bytes)

    def new_room(self, name: str, key: str, topic: str = "") -> Room:
        """A public room (not yet in ``rooms``)."""
        return Room(self.new_ring(), self.to_flush, self.list_changed, name, key, topic)

    def new_secret_room(
        self, rid: bytes, auth: bytes, owner: bytes, owner_tag: bytes
    ) -> SecretRoom:
        """A secret room (not yet in ``secret_rooms``)."""
        return SecretRoom(self.new_ring(), self.to_flush, rid, auth, owner, owner_tag)

    def find_room(self, name: str) -> Room:
        room = self.rooms.get(name_key(name))
        if room is None:
            raise RequestError(Code.NO_SUCH_ROOM, f"there is no room {name}")
        return room

    def drop_if_empty(self, room: Room) -> bool:
        """Forget a room nobody is in; return whether it was dropped."""
        if room.members:
            return False
        if self.rooms.get(room.key) is room:
            del self.rooms[room.key]
            self.listing += 1
        return True

    def drop_secret_if_empty(self, room: SecretRoom) -> bool:
        if room.members:
            return False
        if self.secret_rooms.get(room.rid) is room:
            del self.secret_rooms[room.rid]
        return True
