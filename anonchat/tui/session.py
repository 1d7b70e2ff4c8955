"""How the TUI reaches a daemon: the command line's connection options.

Joining rooms, secret ones included, and reconnecting are the front-end
core's (:mod:`anonchat.frontend`), shared with the line mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..address import same_server
from ..client import Client, Confirm, Endpoint


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
