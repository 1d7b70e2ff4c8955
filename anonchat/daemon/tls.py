"""TLS for one accepted connection, done by the daemon over the TCP transport.

Theory of operation.  asyncio's SSL transport (and uvloop's, made after it)
starts closing the moment the peer ends its side -- a TLS ``close_notify``
or a TCP ``FIN`` -- and from then on drops whatever the protocol writes.  A
client that sends its last requests and then half-closes would lose the
replies still to come: those of a node of several, whose commands wait for
Redis, and any written after a pause of reading.  TLS 1.3 lets each side end
its own direction (RFC 8446, 6.1), so the daemon does TLS itself, with
:class:`ssl.SSLObject` over two memory BIOs, and keeps writing after the
peer's end until the session closes.

:class:`ServerTLS` is the protocol of the TCP transport and, once the
handshake is over, the transport of the session (the few methods a
:class:`~anonchat.daemon.session.Session` calls: ``write``, ``close``,
``abort``, ``pause_reading``, ``resume_reading``, ``is_closing``,
``get_write_buffer_size``, ``get_extra_info``).  The listener awaits
:attr:`ServerTLS.handshake` (bounded by ``hello_timeout``) and counts the
handshake in progress until then.  Reading:

* ciphertext lands in one buffer shared by every connection and is copied
  into the connection's incoming BIO at once;
* plaintext is decrypted straight into the session's buffer, record by
  record, and not at all while the session has paused reading (the TCP
  transport pauses too, so TCP pushes back on the sender);
* the peer's end (``close_notify``, or a TCP ``FIN``) reaches the session as
  ``eof_received`` once everything before it was read; the connection stays
  open for writing until the session closes it (``close``: our
  ``close_notify``, then the TCP close once the buffer is written).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import Any, cast


class Closed(asyncio.Transport):
    """The transport of a connection that has ended: closed, holds nothing,
    writes nothing (the TLS layer's TCP side, a session's, once it is over)."""

    def is_closing(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


CLOSED = Closed()


class ServerTLS(asyncio.BufferedProtocol):
    """The server side of TLS on one TCP connection (see the module docstring)."""

    def __init__(
        self,
        context: ssl.SSLContext,
        factory: Callable[[], asyncio.BufferedProtocol],
        raw_buffer: bytearray,
    ) -> None:
        self._context = context
        self._factory = factory
        self._raw = raw_buffer  # shared by every connection: copied out at once
        self._tcp: asyncio.Transport = CLOSED
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls: ssl.SSLObject | None = None
        self._app: asyncio.BufferedProtocol | None = None
        self._paused = False  # the session paused reading
        self._tcp_eof = False  # the peer's TCP FIN arrived
        self._peer_done = False  # the peer's end reached the session
        self._closing = False
        self._reading_soon = False
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- the TCP transport's calls -------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._tcp = transport  # type: ignore[assignment]
        self._tls = self._context.wrap_bio(self._incoming, self._outgoing, server_side=True)

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self._raw)

    def buffer_updated(self, nbytes: int) -> None:
        if self._peer_done:
            return  # nothing may follow the peer's close_notify: dropped, not held
        self._incoming.write(memoryview(self._raw)[:nbytes])
        if self._app is None:
            self._shake()
        else:
            self._read()

    def eof_received(self) -> bool:
        self._tcp_eof = True
        if self._app is None:
            self._fail(ConnectionResetError("the peer left during the TLS handshake"))
            return False
        self._read()
        return True  # keep the TCP connection open for the replies

    def connection_lost(self, exc: Exception | None) -> None:
        app, self._app = self._app, None
        self._tcp = CLOSED
        self._tls = None  # its TLS state goes now, not with a garbage collection
        self._closing = True
        if not self.handshake.done():
            self.handshake.set_exception(exc or ConnectionResetError("connection lost"))
            self.handshake.exception()  # (retrieved: the listener may be gone)
        if app is not None:
            app.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._app is not None:
            self._app.pause_writing()

    def resume_writing(self) -> None:
        if self._app is not None:
            self._app.resume_writing()

    # -- the handshake -------------------------------------------------------

    def _shake(self) -> None:
        tls = self._tls
        if tls is None or self.handshake.done():
            return
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            self._send()
            return
        except (ssl.SSLError, OSError) as exc:
            self._fail(exc)
            return
        self._send()  # the end of the handshake (and the session tickets)
        self.handshake.set_result(None)
        self._app = app = self._factory()
        app.connection_made(cast(asyncio.BaseTransport, self))  # (the methods a session calls)
        if self._app is not None and self._incoming.pending:
            self._read()  # the client's first request came with its Finished

    def _fail(self, exc: BaseException) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc)
            self.handshake.exception()
        self._closing = True
        self._tcp.abort()

    # -- reading -------------------------------------------------------------

    def _read(self) -> None:
        """Decrypt into the session's buffer while it reads; then pass on the
        peer's end once everything before it was read."""
        tls = self._tls
        while self._app is not None and tls is not None and not self._paused:
            if self._peer_done or self._closing:
                break
            buf = memoryview(self._app.get_buffer(-1))
            try:
                count = cast(int, tls.read(len(buf), buf))  # (with a buffer: a count)
            except ssl.SSLWantReadError:
                if self._tcp_eof:
                    self._end_of_input()  # a FIN without close_notify: the end all the same
                break
            except ssl.SSLError as exc:
                self._send()
                self._closing = True
                self._tcp.abort()
                del exc  # (a broken record: the connection is lost, connection_lost says so)
                return
            if not count:
                self._end_of_input()  # close_notify
                break
            self._app.buffer_updated(count)
            tls = self._tls
        self._send()  # what reading made TLS say (a key update's answer)

    def _end_of_input(self) -> None:
        if self._peer_done or self._app is None:
            return
        self._peer_done = True
        if not self._app.eof_received():
            self.close()

    # -- the session's transport ---------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        tls = self._tls
        if self._closing or tls is None:
            return
        view = memoryview(data)
        while view:
            view = view[tls.write(view) :]
        self._send()

    def _send(self) -> None:
        if self._outgoing.pending:
            self._tcp.write(self._outgoing.read())

    def close(self) -> None:
        """Our ``close_notify``, then close once the TCP buffer is written."""
        if self._closing:
            return
        self._closing = True
        tls = self._tls
        if tls is not None:
            # (It then waits for the peer's close_notify, or TLS is broken: either way.)
            with contextlib.suppress(ssl.SSLError, OSError, ValueError):
                tls.unwrap()
            self._send()
        self._tcp.close()

    def abort(self) -> None:
        self._closing = True
        self._tcp.abort()

    def is_closing(self) -> bool:
        return self._closing or self._tcp.is_closing()

    def pause_reading(self) -> None:
        if not self._paused:
            self._paused = True
            self._tcp.pause_reading()

    def resume_reading(self) -> None:
        if not self._paused:
            return
        self._paused = False
        self._tcp.resume_reading()
        if not self._reading_soon:
            # Not from inside the session's own call: on the next pass.
            self._reading_soon = True
            asyncio.get_running_loop().call_soon(self._read_soon)

    def _read_soon(self) -> None:
        self._reading_soon = False
        self._read()

    def get_write_buffer_size(self) -> int:
        return self._tcp.get_write_buffer_size()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._tls
        return self._tcp.get_extra_info(name, default)
