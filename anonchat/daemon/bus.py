"""How commands reach the shared state (see state.py).

A bus takes the commands of this node's sessions and has every node apply
every node's commands in one order.  Two kinds:

* :class:`LocalBus` (the default): one node; a command is applied the moment
  it is submitted, inside the handler that submitted it.
* :class:`~anonchat.daemon.redisbus.RedisBus` (``--redis URL``): several
  nodes append their commands to one Redis stream and each applies the
  stream in order (``redisbus.py`` explains how).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..errors import ConfigError
from . import state
from .rooms import now_ms

if TYPE_CHECKING:
    from .server import Daemon


class Bus(Protocol):
    #: True when ``submit`` applies the command before it returns.
    synchronous: bool

    @property
    def backlogged(self) -> bool:
        """True when commands wait to be sent: sessions then wait for each one."""

    async def start(self) -> None:
        """Be ready to take commands (join the other nodes, load their state)."""

    def submit(self, cmd: state.Command) -> None:
        """Have ``cmd`` applied by every node, after every command submitted before it."""

    async def close(self) -> None:
        """Hand on what was submitted, then stop."""


class LocalBus:
    """One node: apply each command at once, at the local clock's time."""

    synchronous = True
    backlogged = False

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    async def start(self) -> None:
        pass

    def submit(self, cmd: state.Command) -> None:
        state.apply(self.daemon, cmd, now_ms())

    async def close(self) -> None:
        pass


def make_bus(daemon: Daemon) -> Bus:
    """The bus the configuration asks for."""
    if daemon.config.redis:
        try:
            from .redisbus import RedisBus  # needs the ``redis`` extra
        except ImportError:
            raise ConfigError(
                "--redis needs the Redis client: pip install 'anonchat[redis]'"
            ) from None
        return RedisBus(daemon, daemon.config.redis)
    return LocalBus(daemon)
