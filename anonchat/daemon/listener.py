"""The listening sockets: accept, count handshakes in progress, hand over to TLS.

Theory of operation.  ``asyncio``'s ``create_server`` calls the protocol
factory when TCP connects, before the TLS handshake, without the peer's
address, and says nothing of a handshake that fails: so handshakes in
progress could be neither counted nor bounded, and 1,100 stalled ClientHellos
from one address took every file descriptor the daemon had.  The daemon
therefore accepts connections itself: for each one it

1. counts it, under the keyed hash of its address (see limits.AddressCounter),
   among the handshakes in progress, and among the connections its address
   opened lately: past ``max_handshakes_per_address`` from its address,
   ``max_handshakes`` in all, or ``connect_burst`` (then one per
   ``connect_interval``) from its address, it is closed at once, unanswered
   (nothing to send it: there is no TLS session yet);
2. sets its options: ``TCP_NODELAY``, and ``SO_SNDBUF`` so the kernel holds a
   bounded share of ``sendq`` (see :func:`kernel_sendq`);
3. hands it to ``loop.connect_accepted_socket`` with the daemon's own TLS
   layer (:class:`~anonchat.daemon.tls.ServerTLS`: unlike asyncio's, it
   answers a client that has half-closed) and waits for the handshake, at
   most ``hello_timeout``; the daemon's
   :class:`~anonchat.daemon.session.Session` is made and connected when the
   handshake is over, and the count drops whether it succeeded or not.

A plaintext daemon counts too (its "handshake" ends at once).

The factory is given what the listener learnt of the socket: the keyed hash
of its address (the session is counted under it, see limits.AddressCounter)
and the send buffer the kernel granted (see Session.sendq), so the session
need not ask the transport for its socket (uvloop makes and keeps an object
for it, per connection, once asked).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Callable
from functools import partial

from .limits import AddressBuckets, AddressCounter
from .tls import ServerTLS

log = logging.getLogger("anonchat.daemon")

#: Connections accepted at most per wake-up of a listening socket.
ACCEPT_BATCH = 128

#: Seconds to stop accepting after the process ran out of descriptors.
ACCEPT_BACKOFF = 1.0


def kernel_sendq(sendq: int) -> int:
    """What to ask of ``SO_SNDBUF`` for a ``sendq``: a quarter, which Linux
    doubles (for its bookkeeping) and reports back; the daemon's own queue
    gets the rest (see Session.sendq)."""
    return max(4096, sendq // 4)


class Listener:
    """Accepts connections on ``sockets`` and connects each to ``factory``
    (called with the keyed hash of the peer's address and the send buffer
    the kernel granted, or None if it could not be read)."""

    def __init__(
        self,
        sockets: list[socket.socket],
        factory: Callable[[bytes, int | None], asyncio.BufferedProtocol],
        context: ssl.SSLContext | None,
        *,
        handshake_timeout: float,
        per_address: int,
        in_all: int,
        sndbuf: int,
        buckets: AddressBuckets,
        read_size: int = 65_536,
        key_of: Callable[[str], bytes] | None = None,
    ) -> None:
        self.sockets = sockets
        self.factory = factory
        self.context = context
        self.handshake_timeout = handshake_timeout
        self.in_all = in_all
        self.sndbuf = sndbuf
        self.handshaking = AddressCounter(per_address)  # in progress, per address
        # The keyed hash an address is counted under: the daemon's (the same
        # bytes then name the session's address), else the counter's own.
        self.key_of = key_of or self.handshaking.key_of
        self.buckets = buckets  # connections opened per address ("connects")
        self.in_progress = 0  # ... and in all
        self.refused = 0  # connections closed unanswered past either limit
        self.refused_by: Counter[str] = Counter()  # ... by the limit (for the metrics)
        self.failed = 0  # handshakes that failed or timed out
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()
        self._paused = False
        self._raw = bytearray(read_size)  # TLS records read, for every connection in turn

    def start(self) -> None:
        for sock in self.sockets:
            self._loop.add_reader(sock.fileno(), self._on_readable, sock)

    def close(self) -> None:
        """Stop accepting, drop the handshakes in progress, close the sockets."""
        for sock in self.sockets:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(sock.fileno())
            sock.close()
        for task in list(self._tasks):
            task.cancel()

    def _on_readable(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, peer = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors (EMFILE, ENFILE) or buffers
                log.warning("cannot accept connections: %s; pausing a second", exc.strerror)
                self._pause()
                return
            self._admit(conn, peer)

    def _pause(self) -> None:
        if self._paused:
            return
        self._paused = True
        for sock in self.sockets:
            self._loop.remove_reader(sock.fileno())
        self._loop.call_later(ACCEPT_BACKOFF, self._unpause)

    def _unpause(self) -> None:
        self._paused = False
        for sock in self.sockets:
            if sock.fileno() >= 0:
                self._loop.add_reader(sock.fileno(), self._on_readable, sock)

    def _admit(self, conn: socket.socket, peer: object) -> None:
        host = peer[0] if isinstance(peer, tuple) else str(peer)
        key = self.key_of(str(host))
        del peer, host  # only the keyed hash is kept, and only during the handshake
        if self.in_progress >= self.in_all:
            why = "max_handshakes"
        elif not self.buckets.take("connects", key, self._loop.time()):
            why = "connect_rate"
        elif not self.handshaking.add(key):
            why = "max_handshakes_per_address"
        else:
            why = ""
        if why:
            self.refused += 1
            self.refused_by[why] += 1
            conn.close()
            return
        self.in_progress += 1
        conn.setblocking(False)
        granted: int | None = None
        with contextlib.suppress(OSError):
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
            granted = conn.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        task = self._loop.create_task(self._connect(conn, key, granted))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, conn: socket.socket, key: bytes, granted: int | None) -> None:
        owned: ServerTLS | None = None  # once connected, its transport owns the socket
        factory = partial(self.factory, key, granted)
        try:
            if self.context is None:
                await self._loop.connect_accepted_socket(factory, conn)
            else:
                tls = ServerTLS(self.context, factory, self._raw)
                await self._loop.connect_accepted_socket(lambda: tls, conn)
                owned = tls
                async with asyncio.timeout(self.handshake_timeout):
                    await tls.handshake
        except (OSError, ssl.SSLError, TimeoutError, EOFError):
            # A failed or timed-out handshake: closed without a word, as before.
            self.failed += 1
            self._drop(conn, owned)
        except asyncio.CancelledError:
            self._drop(conn, owned)
            raise
        finally:
            self.in_progress -= 1
            self.handshaking.remove(key)

    @staticmethod
    def _drop(conn: socket.socket, owned: ServerTLS | None) -> None:
        if owned is None:
            conn.close()
        else:
            owned.abort()  # its transport closes the socket


def listening_sockets(host: str, port: int, backlog: int = 1024) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for every address ``host`` names
    (as ``create_server`` makes them: SO_REUSEADDR, IPv6 sockets IPv6-only --
    except ``::`` alone, every interface, which takes IPv4 too where the
    system allows it, as docs/operations.md says: there is no other way to
    ask for both)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    ipv4 = any(info[0] == socket.AF_INET for info in infos)
    sockets: list[socket.socket] = []
    seen: set[tuple[object, ...]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                if address[0] == "::" and not ipv4:
                    with contextlib.suppress(OSError):  # (a system that is IPv6-only anyway)
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                else:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets
