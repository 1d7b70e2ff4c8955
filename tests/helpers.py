"""Test helpers: a raw socket peer for sending bytes no honest client would send,
and small utilities to collect events."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable
from typing import Any, TypeVar

from anonchat import events as ev
from anonchat.client import Client, Event
from anonchat.crypto import Identity, RoomKeys
from anonchat.daemon import Daemon
from anonchat.errors import RemoteProtocolError
from anonchat.secret import SecretChannel
from anonchat.trust import client_context
from anonchat.wire import FrameDecoder, encode_body

T = TypeVar("T", bound=ev.Frame)


def free_port() -> int:
    """A loopback port nothing listens on now (for a subprocess to listen on, or
    for "cannot connect" tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def dial(daemon: Daemon, nick: str | None = None) -> Client:
    """Connect to a test daemon the way a user with its pin would."""
    return await Client.connect(
        "127.0.0.1", daemon.port, nick=nick, tls=bool(daemon.pin), pin=daemon.pin or None
    )


def hello_bytes(nick: str | None = None) -> bytes:
    return encode_body(ev.ClientHello(v=ev.PROTOCOL_VERSION, nick=nick).to_wire())


class RawPeer:
    """A TCP peer that writes arbitrary bytes and reads the daemon's frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder(1 << 20)
        self.frames: list[ev.Frame] = []

    @classmethod
    async def open(cls, daemon: Daemon) -> RawPeer:
        ctx = client_context() if daemon.pin else None
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port, ssl=ctx)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_frame(self, body: dict[str, Any]) -> None:
        await self.send(encode_body(body))

    async def read_until_closed(self, timeout: float = 5.0) -> list[ev.Frame]:
        """Read frames until the daemon closes the connection; return them all."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    data = await self.reader.read(65536)
                except (ConnectionResetError, BrokenPipeError):
                    # (BrokenPipeError: after half_close() under TLS, our side's
                    # answer to the daemon's close_notify cannot be sent.)
                    data = b""
                if not data:
                    return self.frames
                self._decode(data)

    async def read_frame(self, timeout: float = 5.0) -> ev.Frame:
        start = len(self.frames)
        async with asyncio.timeout(timeout):
            while len(self.frames) == start:
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("closed before a frame arrived")
                self._decode(data)
        return self.frames[start]

    def _decode(self, data: bytes) -> None:
        with contextlib.suppress(RemoteProtocolError):
            for body in self.decoder.feed(data):
                self.frames.append(ev.from_wire(body, "client"))

    def half_close(self) -> None:
        """Shut down our sending side at the TCP level (works under TLS too)."""
        self.writer.get_extra_info("socket").shutdown(socket.SHUT_WR)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def half_closing_client(port: int, data: bytes, how: str) -> list[ev.Frame]:
    """A client that sends ``data`` and at once ends its side, then reads every
    frame until the daemon closes (blocking: run it in a thread).  ``how``:
    ``"plain"`` (TCP ``FIN``, no TLS), ``"fin"`` (TLS, then a TCP ``FIN``
    without ``close_notify``) or ``"close_notify"`` (TLS's own half-close: the
    client's ``close_notify``, in the same packet as its last requests)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    received = bytearray()
    with sock:
        if how == "plain":
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                received += chunk
            return [ev.from_wire(b, "client") for b in FrameDecoder(1 << 20).feed(bytes(received))]
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = client_context().wrap_bio(incoming, outgoing)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                incoming.write(sock.recv(65536))
        tls.write(data)
        if how == "close_notify":
            with contextlib.suppress(ssl.SSLWantReadError):  # (the daemon's comes later)
                tls.unwrap()
        sock.sendall(outgoing.read())
        if how == "fin":
            sock.shutdown(socket.SHUT_WR)
        while chunk := sock.recv(65536):
            incoming.write(chunk)
            while True:
                try:
                    count = len(plain := tls.read(65536))
                except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                    break
                if not count:
                    break
                received += plain
    return [ev.from_wire(b, "client") for b in FrameDecoder(1 << 20).feed(bytes(received))]


async def next_event(client: Client, kind: type[T], timeout: float = 5.0) -> T:
    """The next pushed event of type ``kind`` (others are skipped)."""
    async with asyncio.timeout(timeout):
        async for frame in client.events():
            if isinstance(frame, kind):
                return frame
    raise AssertionError(f"connection closed before a {kind.TYPE} event")


async def collect(client: Client, kind: type[T], count: int, timeout: float = 20.0) -> list[T]:
    """The next ``count`` pushed events of type ``kind``."""
    out: list[T] = []
    async with asyncio.timeout(timeout):
        async for frame in client.events():
            if isinstance(frame, kind):
                out.append(frame)
                if len(out) == count:
                    return out
    raise AssertionError(f"closed after {len(out)} of {count} {kind.TYPE} events")


async def quiet(client: Client, delay: float = 0.2) -> list[Event]:
    """Wait a little, then return what arrived (to show that nothing did)."""
    await asyncio.sleep(delay)
    await client.ping()  # everything sent before the pong has been received
    return client.events_nowait()


def ident(client: Client, room: str | None = None) -> Identity:
    """A client's session key in a secret room (one per room since v2): in
    ``room``, or the only one it has made."""
    if room is not None:
        return client.secret_channel(room).identity
    (identity,) = client._identities.values()
    return identity


#: The owner key of the rooms the unit tests make without a daemon.
TEST_OWNER = Identity.from_seed(bytes([42]) * 32)


def joined_channel(
    name: str, keys: RoomKeys, identity: Identity, members: list[bytes], seq: int = 0
) -> SecretChannel:
    """A channel as if the daemon had answered our join (owner key TEST_OWNER,
    vouched for; ``members``: the member list, ours added)."""
    channel = SecretChannel.open_room(name, keys, identity)
    channel.joined(
        ev.SecretJoined(
            id=1,
            room=keys.room_id,
            seq=seq,
            members=[*members, identity.public],
            owner_key=TEST_OWNER.public,
            owner_tag=keys.owner_tag(TEST_OWNER.public),
        )
    )
    return channel


def rewrite(client: Client, change: Callable[[ev.Frame], ev.Frame | None]) -> None:
    """Be a hostile daemon towards ``client``: every frame it receives from now
    on goes through ``change`` first (None: withheld)."""
    dispatch = client._dispatch

    def hostile(frame: ev.Frame) -> None:
        changed = change(frame)
        if changed is not None:
            dispatch(changed)

    client._dispatch = hostile  # type: ignore[method-assign]
