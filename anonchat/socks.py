"""A SOCKS5 client handshake (RFC 1928), enough for Tor and ssh -D.

Only the CONNECT command with no authentication, and the target always sent
as a domain name (ATYP 3) so the proxy resolves it: with Tor, a name resolved
locally would leak which server you visit, and .onion names only resolve
inside Tor.
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct

from .address import format_address, parse_address
from .errors import ConnectionClosed, Local

_REPLIES = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


def parse_proxy(url: str) -> tuple[str, int]:
    """``socks5://HOST:PORT`` (or ``socks5h://``) -> (host, port); the port is required.

    Either way the proxy resolves the server's name: the client never does.
    """
    for scheme in ("socks5://", "socks5h://"):
        if url.lower().startswith(scheme):
            rest = url[len(scheme) :].removesuffix("/")
            try:
                host, port = parse_address(rest, 0)
            except ValueError as exc:
                raise ValueError(f"bad proxy address {url!r}: {exc}") from None
            if port:
                return host, port
    raise ValueError(f"not a SOCKS5 proxy address: {url!r} (expected socks5://HOST:PORT)")


def describe_proxy(proxy: tuple[str, int]) -> str:
    """``socks5 HOST:PORT``, as the status bar and messages show a proxy."""
    return f"socks5 {format_address(*proxy)}"


async def open_via_socks5(
    proxy: tuple[str, int], host: str, port: int, limit: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to ``host:port`` through the proxy; the proxy resolves the name.

    A proxy that cannot be reached or refuses is a ``proxy_failed``
    :class:`ConnectionClosed`: there is never a direct connection instead.
    """
    try:
        reader, writer = await asyncio.open_connection(*proxy, limit=limit)
    except OSError as exc:
        raise ConnectionClosed(
            Local.PROXY_FAILED,
            f"cannot reach the proxy {describe_proxy(proxy)}: {exc.strerror or exc}; "
            "no direct connection is tried instead",
        ) from None
    try:
        await _handshake(reader, writer, host, port)
    except BaseException:
        writer.close()
        raise
    return reader, writer


async def _handshake(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
) -> None:
    writer.write(b"\x05\x01\x00")  # version 5, one method: no authentication
    version, method = await _read(reader, 2)
    if version != 5 or method != 0:
        raise ConnectionClosed("proxy_failed", "the proxy wants authentication we do not offer")
    writer.write(b"\x05\x01\x00" + _address(host) + struct.pack(">H", port))
    version, reply, _, atyp = await _read(reader, 4)
    if version != 5 or reply != 0:
        reason = _REPLIES.get(reply, f"error {reply}")
        raise ConnectionClosed("proxy_failed", f"the proxy could not reach {host}:{port}: {reason}")
    if atyp == 1:
        await _read(reader, 4 + 2)
    elif atyp == 4:
        await _read(reader, 16 + 2)
    elif atyp == 3:
        (length,) = await _read(reader, 1)
        await _read(reader, length + 2)
    else:
        raise ConnectionClosed("proxy_failed", "the proxy sent an unknown address type")


def _address(host: str) -> bytes:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            name = host.encode("idna")
        except UnicodeError:
            raise ConnectionClosed(Local.PROXY_FAILED, f"not a valid host name: {host!r}") from None
        if len(name) > 255:
            raise ConnectionClosed("proxy_failed", f"host name too long: {host}") from None
        return b"\x03" + bytes([len(name)]) + name
    return (b"\x01" if ip.version == 4 else b"\x04") + ip.packed


async def _read(reader: asyncio.StreamReader, n: int) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        raise ConnectionClosed("proxy_failed", "the proxy closed the connection") from None
