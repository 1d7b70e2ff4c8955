"""Reaching a daemon: TCP (directly or through SOCKS5), TLS, and the pin check.

:func:`open_stream` opens the connection and :func:`verify_server` decides,
after the TLS handshake and before any frame, whether this is the daemon the
user meant (docs/security.md, "Is it really the daemon?").  Every failure is
a :class:`~anonchat.errors.ConnectionClosed` with a code and a sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Awaitable, Callable

from .errors import ConnectionClosed, Local
from .socks import open_via_socks5
from .trust import KnownHosts, TrustError, check_pin, client_context, pin_of_cert

Confirm = Callable[[str, int, str], Awaitable[bool]]
"""Asked on first contact with a server: (host, port, pin) -> trust it?"""


async def open_stream(
    host: str, port: int, tls: bool, proxy: tuple[str, int] | None, max_frame: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """TCP (directly or through SOCKS5), then TLS; errors become ConnectionClosed."""
    where = f"{host}:{port}" + (f" through the proxy {proxy[0]}:{proxy[1]}" if proxy else "")
    try:
        if proxy is not None:
            reader, writer = await open_via_socks5(proxy, host, port, max_frame + 8)
            if tls:
                await writer.start_tls(client_context(), server_hostname=None)
        else:
            reader, writer = await asyncio.open_connection(
                host,
                port,
                limit=max_frame + 8,
                ssl=client_context() if tls else None,
                server_hostname="" if tls else None,
            )
    except ssl.SSLError as exc:
        raise ConnectionClosed(
            Local.TLS_FAILED,
            f"TLS with {where} failed ({exc.reason}); is it an anonchat daemon "
            "with TLS? (a daemon run with --plaintext needs --plaintext here too)",
        ) from None
    except (OSError, TimeoutError) as exc:
        raise ConnectionClosed(
            Local.UNREACHABLE, f"cannot connect to {where}: {_why_not(exc, tls)}"
        ) from None
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


def _why_not(exc: OSError, tls: bool) -> str:
    """Why a connection could not be made, in words (the error's own if it has them)."""
    if exc.strerror:
        return exc.strerror
    if isinstance(exc, ConnectionError):
        # Closed by the other end with no error of its own: asyncio's TLS says so
        # with a bare ConnectionResetError (it was reported as "timed out").
        during = "during the TLS handshake" if tls else "at once"
        return (
            f"the server closed the connection {during} (a daemon does that at its "
            "connection limits: try again in a while)"
        )
    return "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__


async def verify_server(
    writer: asyncio.StreamWriter,
    host: str,
    port: int,
    expected: str | None,
    known: KnownHosts | None,
    accept_new_host: bool,
    confirm: Confirm | None,
) -> tuple[str, str]:
    """The server's pin once it is trusted, and a note for the user (or "").

    A given pin (``expected``) is checked and never stored; a first contact
    the user (or ``accept_new_host``) accepts is stored in ``known``.
    """
    ssl_object = writer.get_extra_info("ssl_object")
    cert = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not cert:
        raise ConnectionClosed(Local.TLS_FAILED, "the server presented no certificate")
    pin = pin_of_cert(cert)
    try:
        trusted, note = check_pin(host, port, pin, expected, known)
    except TrustError as exc:  # known_hosts cannot be read: nothing to trust it by
        raise ConnectionClosed(Local.HOST_NOT_TRUSTED, str(exc)) from None
    if trusted:
        return pin, note
    if not accept_new_host and confirm is None:  # a script: nobody to ask
        raise ConnectionClosed(
            Local.HOST_NOT_TRUSTED,
            f"{host}:{port} was not seen before and its key {pin} was not accepted: "
            "there is nobody to ask (the input is not a terminal); check it with the "
            "operator, then pass --fingerprint or an invite link, or --accept-new-host "
            "to trust a server seen for the first time",
        )
    if not accept_new_host and confirm is not None and not await confirm(host, port, pin):
        raise ConnectionClosed(
            Local.HOST_NOT_TRUSTED,
            f"{host}:{port} was not seen before and its key {pin} was not accepted; "
            "check it with the operator, then pass --fingerprint or use an invite link",
        )
    if known is not None:
        try:
            known.add(host, port, pin)
        except TrustError as exc:
            raise ConnectionClosed(Local.HOST_NOT_TRUSTED, str(exc)) from None
    return pin, ""
