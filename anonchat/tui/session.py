"""How the TUI reaches a daemon: the command line's connection options.

Joining rooms, secret ones included, and reconnecting are the front-end
core's (:mod:`anonchat.frontend`), shared with the line mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..client import Client, Confirm, Endpoint


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
