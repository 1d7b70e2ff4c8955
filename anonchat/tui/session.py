"""Thin helpers over the public :class:`~anonchat.client.Client` API.

Things the TUI needs that the client does not offer (yet): join-or-create,
rejoining a list of rooms after a reconnect, a backoff schedule.  They use
only public ``Client`` methods.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import events as ev
from ..client import Client
from ..errors import Code, ConnectionClosed, RequestError

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


#: Asked on first contact with a TLS server: (host, port, pin) -> trust it?
Confirm = Callable[[str, int, str], Awaitable[bool]]


@dataclass
class ConnectOptions:
    """How to reach the daemon, beyond host and port.

    The transport options (TLS, pinning) are passed on only to a client that
    knows them: this TUI works with a plaintext-only client as well as with
    one that speaks TLS and pins keys in ``known_hosts``.
    """

    tls: bool = True
    pin: str | None = None
    known_hosts: Path | None = None
    confirm: Confirm | None = None


def _transport_kwargs(options: ConnectOptions) -> dict[str, Any]:
    accepted = inspect.signature(Client.connect).parameters
    kwargs: dict[str, Any] = {}
    if "tls" in accepted:
        kwargs["tls"] = options.tls
    if "pin" in accepted and options.pin:
        kwargs["pin"] = options.pin
    if "confirm" in accepted and options.confirm is not None:
        kwargs["confirm"] = options.confirm
    if "known_hosts" in accepted and options.known_hosts is not None:
        from .. import trust  # type: ignore[attr-defined,unused-ignore]

        kwargs["known_hosts"] = trust.KnownHosts(options.known_hosts)
    return kwargs


async def connect(
    host: str, port: int, nick: str | None, options: ConnectOptions | None = None
) -> Client:
    """Connect with ``nick``; raises ConnectionClosed like Client.connect."""
    kwargs = _transport_kwargs(options or ConnectOptions())
    client: Client = await Client.connect(host, port, nick=nick or None, **kwargs)
    return client


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
