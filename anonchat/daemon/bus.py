"""How commands reach the shared state (see state.py).

A bus takes the commands of this node's sessions and has every node apply
every node's commands in one order.  Two kinds:

* :class:`LocalBus` (the default): one node; a command is applied the moment
  it is submitted, inside the handler that submitted it.
* :class:`~anonchat.daemon.redisbus.RedisBus` (``--redis URL``): several
  nodes append their commands to one Redis stream and each applies the
  stream in order (``redisbus.py`` explains how).

A command is an object of ``commands.py`` (one frozen dataclass per
command); the Redis bus sends it as its list (``to_list``) and builds it
again from the list it reads back (``from_list``), the local bus hands the
object itself to ``state.apply``.  A bus applies commands to the node's
:class:`~anonchat.daemon.shared.SharedState`; it never sees the daemon.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..errors import ConfigError
from . import state
from .commands import Command
from .rooms import now_ms
from .shared import SharedState


class BusStats:
    """What a bus through Redis counts, for the metrics (metrics.py)."""

    __slots__ = (
        "applied",
        "backlog",
        "last_write",
        "read_errors",
        "snapshot_at",
        "snapshot_bytes",
        "snapshot_failures",
        "snapshots",
        "write_errors",
    )

    def __init__(self, backlog: Callable[[], int], applied: Callable[[], bytes]) -> None:
        self.backlog = backlog  # commands waiting to be appended
        self.applied = applied  # the id of the last stream entry applied
        self.write_errors = 0  # appends (XADD) that failed
        self.read_errors = 0  # reads (XREAD) that failed
        self.last_write = 0.0  # time.monotonic() of the last successful append
        self.snapshots = 0  # snapshots written by this node
        self.snapshot_failures = 0
        self.snapshot_at = 0.0  # time.monotonic() of the last one written
        self.snapshot_bytes = 0  # and its size


class Bus(Protocol):
    #: True when ``submit`` applies the command before it returns.
    synchronous: bool

    @property
    def stats(self) -> BusStats | None:
        """What it counts (None: nothing worth a metric, one node)."""

    @property
    def backlogged(self) -> bool:
        """True when commands wait to be sent: sessions then wait for each one."""

    async def start(self) -> None:
        """Be ready to take commands (join the other nodes, load their state)."""

    def submit(self, cmd: Command) -> None:
        """Have ``cmd`` applied by every node, after every command submitted before it."""

    async def close(self) -> None:
        """Hand on what was submitted, then stop."""


class LocalBus:
    """One node: apply each command at once, at the local clock's time."""

    synchronous = True
    backlogged = False
    stats = None

    def __init__(self, shared: SharedState) -> None:
        self.shared = shared

    async def start(self) -> None:
        pass

    def submit(self, cmd: Command) -> None:
        state.apply(self.shared, cmd, now_ms())

    async def close(self) -> None:
        pass


def make_bus(redis: str | None, shared: SharedState) -> Bus:
    """The bus the configuration asks for (``redis``: the URL of ``--redis``)."""
    if redis:
        try:
            from .redisbus import RedisBus  # needs the ``redis`` extra
        except ImportError:
            raise ConfigError(
                "--redis needs the Redis client: pip install 'anonchat[redis]'"
            ) from None
        return RedisBus(shared, redis)
    return LocalBus(shared)
