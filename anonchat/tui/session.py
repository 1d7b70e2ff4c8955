"""Thin helpers over the public :class:`~anonchat.client.Client` API.

Things the TUI needs that the client does not offer (yet): join-or-create,
rejoining a list of rooms after a reconnect, a backoff schedule.  They use
only public ``Client`` methods.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from .. import events as ev
from ..address import same_server
from ..client import Client, Endpoint
from ..dial import Confirm
from ..errors import Code, ConnectionClosed, RequestError

#: Seconds to wait before each reconnect attempt; the last value repeats.
RECONNECT_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


def backoff(delays: Sequence[float]) -> Iterator[float]:
    yield from delays
    while True:
        yield delays[-1]


async def enter_secret(client: Client, room: str, passphrase: str, create: bool) -> str:
    """Join or create a secret room; return how: ``joined`` or ``created``.

    Creating one that exists (same name, same passphrase) joins it instead.
    """
    if not create:
        await client.join_secret(room, passphrase)
        return "joined"
    try:
        await client.create_secret(room, passphrase)
    except RequestError as exc:
        if exc.code != Code.ROOM_EXISTS:
            raise
        await client.join_secret(room, passphrase)
        return "joined"
    return "created"


@dataclass(frozen=True)
class ConnectOptions:
    """How to reach a daemon beyond its address: the command line's choices.

    ``endpoint`` carries TLS, the pin, the proxy and known_hosts.  Its pin
    applies only to its own host and port: a user who types another server
    on the connect screen gets trust on first use for that one, never a pin
    meant for a different server.  The proxy, ``--plaintext`` and
    ``--accept-new-host`` apply to every server, reconnects included.
    """

    endpoint: Endpoint = field(default_factory=lambda: Endpoint("", 0))
    confirm: Confirm | None = None

    def for_target(self, host: str, port: int) -> Endpoint:
        same = same_server((host, port), (self.endpoint.host, self.endpoint.port))
        return replace(self.endpoint, host=host, port=port, pin=self.endpoint.pin if same else None)

    def aimed_at(self, target: Endpoint) -> ConnectOptions:
        """These options for the server the user typed or pasted: a pasted
        invite link's pin (and room) applies to its own server, and the
        command line's pin still to the server it was given for."""
        endpoint = self.for_target(target.host, target.port)
        return replace(
            self,
            endpoint=replace(endpoint, pin=target.pin or endpoint.pin, room=target.room),
        )

    @property
    def label(self) -> str:
        """``HOST:PORT`` and the proxy, as the status bar shows where it is connected."""
        return self.endpoint.label


async def connect(
    host: str,
    port: int,
    nick: str | None,
    options: ConnectOptions | None = None,
    resume: Client | None = None,
) -> Client:
    """Connect with ``nick`` (resuming ``resume``'s session if the daemon still
    holds it); raises ConnectionClosed like Client.connect."""
    options = options or ConnectOptions()
    endpoint = options.for_target(host, port)
    return await endpoint.connect(nick or None, confirm=options.confirm, resume=resume)


async def reconnect_once(
    host: str, port: int, nick: str, options: ConnectOptions | None, old: Client
) -> Client:
    """One reconnect attempt, resuming ``old``'s session when the daemon still
    holds it.  If the nick is taken meanwhile, come back as ``nick_``."""
    try:
        return await connect(host, port, nick, options, resume=old)
    except ConnectionClosed as exc:
        if exc.code != Code.NICK_TAKEN or len(nick) >= ev.NICK_MAX:
            raise
    return await connect(host, port, nick + "_", options, resume=old)
