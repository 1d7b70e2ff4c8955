"""Thin helpers over the public :class:`~anonchat.client.Client` API.

Things the TUI needs that the client does not offer (yet): join-or-create,
rejoining a list of rooms after a reconnect, a backoff schedule.  They use
only public ``Client`` methods.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from .. import events as ev
from ..client import Client, Confirm, Endpoint
from ..errors import Code, ConnectionClosed, RequestError
from ..secret import SecretChannel

#: Seconds to wait before each reconnect attempt; the last value repeats.
RECONNECT_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


def backoff(delays: Sequence[float]) -> Iterator[float]:
    yield from delays
    while True:
        yield delays[-1]


async def join_or_create(client: Client, room: str, topic: str | None = None) -> ev.Joined:
    """Join ``room``; create it (with ``topic``) if it does not exist."""
    try:
        return await client.join(room)
    except RequestError as exc:
        if exc.code != Code.NO_SUCH_ROOM:
            raise
    try:
        return await client.create(room, topic or None)
    except RequestError as exc:
        if exc.code != Code.ROOM_EXISTS:  # someone else created it in between
            raise
        return await client.join(room)


async def rejoin(
    client: Client, rooms: Sequence[tuple[str, str]]
) -> tuple[list[ev.Joined], list[tuple[str, str]]]:
    """Join each (room, topic) again; a room the restarted server forgot is
    created with its old topic.  Returns (joined, [(room, reason), ...])."""
    joined: list[ev.Joined] = []
    failed: list[tuple[str, str]] = []
    for room, topic in rooms:
        try:
            joined.append(await join_or_create(client, room, topic))
        except RequestError as exc:
            failed.append((room, exc.message))
    return joined, failed


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


async def rejoin_secret(client: Client, room: str, passphrase: str) -> SecretChannel:
    """Join a secret room again after a reconnect.  A restarted server forgot
    it (``join_denied``): create it again with the same passphrase, so the
    others, rejoining the same way, meet in it."""
    try:
        return await client.join_secret(room, passphrase)
    except RequestError as exc:
        if exc.code != Code.JOIN_DENIED:
            raise
    try:
        return await client.create_secret(room, passphrase)
    except RequestError as exc:
        if exc.code != Code.ROOM_EXISTS:  # someone else made it again in between
            raise
        return await client.join_secret(room, passphrase)


@dataclass(frozen=True)
class ConnectOptions:
    """How to reach a daemon beyond its address: the command line's choices.

    ``endpoint`` carries TLS, the pin, the proxy and known_hosts.  Its pin
    applies only to its own host and port: a user who types another server
    on the connect screen gets trust on first use for that one, never a pin
    meant for a different server.  The proxy applies to every server.
    """

    endpoint: Endpoint = field(default_factory=lambda: Endpoint("", 0))
    confirm: Confirm | None = None

    def for_target(self, host: str, port: int) -> Endpoint:
        same = (host, port) == (self.endpoint.host, self.endpoint.port)
        return replace(self.endpoint, host=host, port=port, pin=self.endpoint.pin if same else None)


async def connect(
    host: str, port: int, nick: str | None, options: ConnectOptions | None = None
) -> Client:
    """Connect with ``nick``; raises ConnectionClosed like Client.connect."""
    options = options or ConnectOptions()
    return await options.for_target(host, port).connect(nick or None, confirm=options.confirm)


async def reconnect_once(
    host: str, port: int, nick: str, options: ConnectOptions | None = None
) -> Client:
    """One reconnect attempt.  If our old session still holds the nick (the
    server has not noticed the drop yet), come back as ``nick_`` instead."""
    try:
        return await connect(host, port, nick, options)
    except ConnectionClosed as exc:
        if exc.code != Code.NICK_TAKEN or len(nick) >= ev.NICK_MAX:
            raise
    return await connect(host, port, nick + "_", options)
