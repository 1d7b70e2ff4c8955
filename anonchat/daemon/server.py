"""The daemon: listening socket, sessions, nicks, rooms, timers, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from .. import events as ev
from ..address import format_address
from ..errors import CannotListen, Code
from ..names import claim_keys, random_nick
from ..trust import (
    ServerIdentity,
    default_state_dir,
    ensure_identity,
    load_identity,
    pin_bytes,
)
from ..wire import SharedUnpacker, encode_frame
from . import commands, memory, metrics, state
from .bus import Bus, make_bus
from .config import Config, metrics_address
from .limits import AddressBuckets, AddressCounter
from .listener import Listener, kernel_sendq, listening_sockets
from .metrics import Stats
from .rooms import Channel, Member, Room, SecretRoom, fit, member_list
from .session import Session
from .shared import SharedState

log = logging.getLogger("anonchat.daemon")

#: A flush of rooms that writes to this many sessions or more means fan-out is
#: busy: the next one waits one more pass of the event loop (what the other
#: senders sent meanwhile is read first and rides along in the same writes).
#: No timer: a quiet daemon delivers in the pass after the message arrived,
#: and replies are never delayed (see Daemon.mark_urgent).  (Counting frames
#: delivered instead, so that rooms of 10 wait a pass under load too, was
#: tried on 2026-12-04: no more deliveries/s at 10 or 30 members.)
BUSY_FLUSH = 64
#: A fixed wait for busy flushes, in seconds; 0 (the product) waits one pass
#: instead.  Tests widen it to land requests in the middle of a pass.
FLUSH_DELAY = 0.0

#: How long shutdown waits for sessions to flush their goodbye.
SHUTDOWN_GRACE = 5.0


class Daemon:
    """An anonchat server.  ``await start()``, then ``await shutdown()``.

    Holds everything in memory: nothing about sessions or rooms is written to
    disk, and no client address is stored or logged.
    """

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.server_name = f"anonchatd/{__version__}"
        self.node = secrets.token_hex(4)  # this process, among the nodes of one service
        self.sessions: dict[Session, None] = {}  # connected to this node, in order
        self.stats = Stats(self.node)
        # The shared state (see state.py and shared.py): the same on every node.
        # It gets of this node only what applying commands needs of it.
        self.shared = SharedState(
            self.node,
            self.config.limits,
            self.config.node_timeout,
            self.stats,
            to_flush=self.room_to_flush,
            stop_waiting=self.stop_waiting,
            lose=self.lose,
            stopping=lambda: self.stopping,
        )
        # Local: this node's dropped sessions awaiting resume, by uid, oldest first,
        # and the same by the keyed hash of the address they came from (each
        # address holds at most max_resumable_per_address; see forget()).
        self.ghosts: dict[str, asyncio.TimerHandle] = {}
        self.ghosts_by_address: dict[bytes, dict[str, Session]] = {}
        self.bus: Bus = make_bus(self.config.redis, self.shared)
        # One node: a read's messages are handled together (Session._say_run);
        # with several, one by one through the bus.  (The tests that hold the
        # two equal turn it off for the general way.)
        self.say_runs = self.bus.synchronous
        self.per_address = AddressCounter(self.config.limits.max_per_address)
        # Buckets every connection of one address shares (nick changes, list and
        # who); the listener keeps the connection rate's in the same table.
        self.address_buckets = AddressBuckets(self.config.limits)
        self._server: Listener | None = None
        self.identity: ServerIdentity | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._metrics: asyncio.Server | None = None
        self._next_sid = 0
        self._sendq = 0  # the last session's sendq (see _new_session)
        self._busy = False  # the last flush was large (see BUSY_FLUSH)
        self._loop: asyncio.AbstractEventLoop | None = None  # (the running one, once seen)
        self._rooms_to_flush: list[Channel] = []  # rooms with frames for members
        self._urgent: list[Member] = []  # sessions with frames of their own waiting
        self._stopped = asyncio.Event()
        self._all_gone: asyncio.Event | None = None  # set when the last session ends (shutdown)
        # Every session's transport reads into this one buffer; each read is
        # copied out before the next (see Session.buffer_updated).
        self.read_buffer = memoryview(bytearray(self.config.limits.read_size))
        # ... and its frames are unpacked with one msgpack Unpacker (Session._received).
        self.unpacker = SharedUnpacker(self.config.limits.max_frame)
        # Every session's get_buffer (see Session): one bound method for all.
        self.get_buffer: Callable[[int], memoryview] = self._read_buffer
        self.unfinished = 0  # bytes of unfinished frames held, all sessions (max_unfinished)
        # The room list, sorted, is made again only after a room changed (a
        # member, a topic, a room made or dropped: ``shared.listing`` counts them).
        self._listed: tuple[tuple[int, int, int], list[ev.RoomInfo], int] | None = None
        self.stopping = False
        self.handing_over = False  # stopping while other nodes keep the service
        self.lost = False  # stopped because the other nodes count it as gone

    # -- the shared state's tables, read through the daemon ---------------------
    # (state.py changes them, through self.shared: these are for reading)

    @property
    def members(self) -> dict[str, Member]:
        """uid -> member, wherever it is connected."""
        return self.shared.members

    @property
    def nicks(self) -> dict[str, Member]:
        return self.shared.nicks

    @property
    def rooms(self) -> dict[str, Room]:
        return self.shared.rooms

    @property
    def secret_rooms(self) -> dict[bytes, SecretRoom]:
        return self.shared.secret_rooms

    @property
    def nodes(self) -> dict[str, int]:
        """node -> log time of its last heartbeat (Redis)."""
        return self.shared.nodes

    @property
    def orphans(self) -> dict[str, int]:
        return self.shared.orphans

    @property
    def settings(self) -> dict[str, Any]:
        """What every node must agree on (shared.shared_settings)."""
        return self.shared.settings

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Load (or on first start create) the TLS identity, then listen."""
        config = self.config
        # The table of confusable characters that every nick is checked against
        # (names.claim_keys) is read now, not at the first hello: its ~6 MiB are
        # the daemon's from the start, and no client's hello waits for it.
        claim_keys("anonchat")
        context = None
        if not config.plaintext:
            self.identity = load_tls_identity(config)
            context = self.identity.context()
            self.shared.pin_bytes = self.pin_bytes
        # Both addresses are taken before joining the service: a busy port
        # stops the start with nothing announced to the other nodes.
        try:
            sockets = listening_sockets(config.host, config.port)
        except OSError as exc:
            raise CannotListen(
                f"cannot listen on {format_address(config.host, config.port)}: {why(exc)}"
            ) from None
        try:
            if config.metrics:
                metrics.check_available()
                host, port = metrics_address(config.metrics)
                try:
                    self._metrics = await metrics.serve(self, host, port)
                except OSError as exc:
                    raise CannotListen(
                        f"cannot serve metrics on {format_address(host, port)}: {why(exc)}"
                    ) from None
            await self.bus.start()
            # Messages replayed while catching up were delivered long ago: only
            # those applied from now on are timed (anonchat_delivery_seconds),
            # and only where --metrics serves the figure (no work for nobody).
            self.stats.live = bool(config.metrics)
        except BaseException:
            for sock in sockets:
                sock.close()
            if self._metrics is not None:
                self._metrics.close()
            raise
        # A protocol per connection, not asyncio.start_server's streams and task:
        # see "Where we departed from the design" in docs/architecture.md.  The
        # daemon accepts itself, to count and bound handshakes (see listener.py).
        limits = config.limits
        self._server = Listener(
            sockets,
            self._new_session,
            context,
            handshake_timeout=limits.hello_timeout,
            per_address=limits.max_handshakes_per_address,
            in_all=limits.max_handshakes,
            sndbuf=kernel_sendq(limits.sendq),
            buckets=self.address_buckets,
            read_size=limits.read_size,
            key_of=self.per_address.key_of,
        )
        self._server.start()
        self._sweeper = asyncio.create_task(self._sweep(), name="anonchatd-sweeper")
        log.info("listening on %s", describe(self.addresses))

    @property
    def listener(self) -> Listener | None:
        return self._server

    @property
    def metrics_addresses(self) -> list[tuple[str, int]]:
        """Where the metrics are served (none without ``--metrics``)."""
        if self._metrics is None:
            return []
        return [s.getsockname()[:2] for s in self._metrics.sockets]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        assert self._server is not None, "daemon not started"
        return [s.getsockname()[:2] for s in self._server.sockets if s.fileno() >= 0]

    @property
    def pin(self) -> str:
        """The pin clients check (``sha256/...``), or "" without TLS."""
        return self.identity.pin if self.identity else ""

    @property
    def pin_bytes(self) -> bytes:
        """The raw pin that secret-room proofs are bound to (zeros without TLS)."""
        return pin_bytes(self.identity.pin) if self.identity else bytes(32)

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    async def serve_until_stopped(self) -> None:
        await self._stopped.wait()

    async def shutdown(self, msg: str = "the server is shutting down") -> None:
        """Stop listening, tell every client, let them flush, close everything."""
        if self.stopping:
            await self._stopped.wait()
            return
        self.stopping = True
        # With several nodes the service's state lives on in Redis: this node's
        # sessions stay in it, resumable for resume_window on any node -- one
        # running now, or one started later (every node stopped at once for a
        # restart: all their clients are told the same, and resume).
        self.handing_over = (
            not self.bus.synchronous and not self.lost and self.config.limits.resume_window > 0
        )
        if self.handing_over:
            msg = "this server is restarting; reconnect to resume your session"
        elif self.lost:
            # The service goes on without this node: its clients belong on
            # another one (a final `shutdown` would make them give up).
            msg = "this server lost touch with the service; reconnect"
        log.info(
            "shutting down; %d sessions%s",
            len(self.sessions),
            " (handed over: resumable on any node)" if self.handing_over else "",
        )
        if self._server is not None:
            self._server.close()
        if self._metrics is not None:
            self._metrics.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for timer in self.ghosts.values():
            timer.cancel()
        self.ghosts.clear()
        self.ghosts_by_address.clear()
        self._all_gone = asyncio.Event()
        code = Code.RESTART if self.handing_over or self.lost else Code.SHUTDOWN
        for session in list(self.sessions):
            session.close(code, msg, bye=True)
        if self.sessions:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_gone.wait(), SHUTDOWN_GRACE)
            for session in list(self.sessions):
                session.transport.abort()  # ends it (connection_lost) on the next pass
            await asyncio.sleep(0)
        # The other nodes end this node's sessions (and its dropped ones) at once,
        # or keep them for resume_window when it hands them over.
        self.bus.submit(
            commands.Handover(self.node) if self.handing_over else commands.Down(self.node)
        )
        await self.bus.close()
        self._stopped.set()
        log.info("stopped")

    # -- connections -----------------------------------------------------------

    def _new_session(self, address_key: bytes, kernel: int | None) -> Session:
        """A session for a connection the listener accepted: ``address_key`` is the
        keyed hash of its address, ``kernel`` the send buffer the kernel granted it."""
        self._next_sid += 1
        session = Session(self, self._next_sid)
        session.address_key = address_key  # counted under it in accept()
        if kernel is not None:
            # sendq bounds what this client can make the daemon hold, the kernel's
            # send buffer included (the listener set SO_SNDBUF): our queue gets the rest.
            sendq = max(1, self.config.limits.sendq - kernel)
            if sendq == self._sendq:
                sendq = self._sendq  # (one int object for all: the kernel grants each the same)
            session.sendq = self._sendq = sendq
        return session

    def accept(self, session: Session) -> None:
        """A connection was made: serve it, or turn it away before its hello."""
        if len(self.sessions) >= self.config.limits.max_connections or self.stopping:
            self.stats.refused["stopping" if self.stopping else "server_full"] += 1
            refuse(session, Code.SERVER_FULL, "server is full")
            return
        address_key = session.address_key
        if not self.per_address.add(address_key):
            self.stats.refused["too_many_connections"] += 1
            refuse(session, Code.TOO_MANY_CONNECTIONS, "too many connections from your address")
            return
        self.stats.accepted += 1
        self.sessions[session] = None
        self.members[session.uid] = session
        log.debug("session %d opened (%d connected)", session.sid, len(self.sessions))

    def _read_buffer(self, sizehint: int) -> memoryview:
        return self.read_buffer  # one for all: each read is copied out at once

    def room_to_flush(self, room: Channel) -> None:
        """``room`` carried its first frame since its last flush: have its members
        written at the end of this pass (one pass later when fan-out is busy)."""
        if not self._rooms_to_flush:
            loop = self._loop
            if loop is None:
                # (Kept: get_running_loop calls getpid(), a system call, on Python 3.11.)
                loop = self._loop = asyncio.get_running_loop()
            if not self._busy:
                loop.call_soon(self.flush_rooms)
            elif FLUSH_DELAY:
                loop.call_later(FLUSH_DELAY, self.flush_rooms)
            else:
                # The inner call_soon runs after this pass's reads were handled.
                loop.call_soon(loop.call_soon, self.flush_rooms)
        self._rooms_to_flush.append(room)

    def flush_rooms(self) -> None:
        """Write every member of the rooms that carried frames (one write each)."""
        rooms, self._rooms_to_flush = self._rooms_to_flush, []
        written = 0
        for room in rooms:
            shared = room.joined()
            cursors = room.cursors
            for member in room.members:
                if member.closing:
                    continue
                written += 1
                if (
                    member.out
                    or member in cursors
                    or len(member.rooms) + len(member.secret_rooms) != 1
                ):
                    member.flush()  # its own frames, or other rooms', go in the same write
                else:
                    member.write(shared)  # the common case: this room's log, nothing else
            room.flushed()
        self._busy = written >= BUSY_FLUSH
        self.stats.delivered()

    def mark_urgent(self, session: Member) -> None:
        """Have ``session`` (a frame of its own waits: a reply, most often) written
        at the end of this pass, even while room flushes are delayed: a sender's
        ``ok`` is what lets it send on."""
        if not self._urgent:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self._flush_urgent)
        self._urgent.append(session)

    def _flush_urgent(self) -> None:
        urgent, self._urgent = self._urgent, []
        for session in urgent:
            session.flush()

    def forget(self, session: Session) -> None:
        """A connection ended.  A session that lost its connection waits
        ``resume_window`` seconds to be resumed, still holding its nick and
        rooms (its events go on into the rooms' rings); any other ends now."""
        if session not in self.sessions:
            return  # turned away, or already forgotten
        del self.sessions[session]
        self.per_address.remove(session.address_key)
        if self._all_gone is not None and not self.sessions:
            self._all_gone.set()
        log.debug("session %d closed: %s", session.sid, session.close_code or "eof")
        if self.members.get(session.uid) is not session:
            return  # it was taken over by a resuming connection, or has ended
        if not session.registered:
            del self.members[session.uid]  # it never said hello: nobody else knows it
            return
        if self.handing_over and (session.close_code == Code.RESTART or session.resumable):
            return  # the other nodes keep it for resume_window (handed_over)
        if session.resumable:
            self._keep_resumable(session)
            return
        self.bus.submit(commands.End(session.uid, session.quit_msg))

    def _keep_resumable(self, session: Session) -> None:
        """Keep a session that lost its connection for ``resume_window``: with its
        nick, rooms and memberships, it counts against its address
        (``max_resumable_per_address``) and the node (``max_resumable``); past
        either, the oldest such session (of that address, or of all) ends now."""
        limits = self.config.limits
        held = self.ghosts_by_address.get(session.address_key, {})
        while len(held) >= limits.max_resumable_per_address:
            self._expire(next(iter(held.values())))
        while len(self.ghosts) >= limits.max_resumable:
            oldest = self.members.get(next(iter(self.ghosts)))
            if isinstance(oldest, Session):
                self._expire(oldest)
            else:  # (cannot happen: a ghost is a session of this node until it ends)
                self.ghosts.pop(next(iter(self.ghosts)))
        self.ghosts_by_address.setdefault(session.address_key, {})[session.uid] = session
        self.ghosts[session.uid] = asyncio.get_running_loop().call_later(
            limits.resume_window, self._expire, session
        )

    def _expire(self, session: Session) -> None:
        """Nobody resumed a dropped session in time (or its address, or the node,
        holds too many others): end it."""
        self.stop_waiting(session)
        self.bus.submit(commands.End(session.uid, session.quit_msg))

    def stop_waiting(self, member: Member) -> None:
        """A dropped session of this node was resumed or ended: no timer for it."""
        timer = self.ghosts.pop(member.uid, None)
        if timer is not None:
            timer.cancel()
            if isinstance(member, Session):
                held = self.ghosts_by_address.get(member.address_key)
                if held is not None:
                    held.pop(member.uid, None)
                    if not held:
                        del self.ghosts_by_address[member.address_key]

    def lose(self, why: str) -> None:
        """This node can no longer be part of the service: stop (exit code 3),
        sending its clients to the other nodes."""
        if self.stopping:
            return
        log.error("%s; stopping", why)
        self.lost = True
        asyncio.get_running_loop().create_task(self.shutdown("the node lost the service"))

    async def _sweep(self) -> None:
        limits = self.config.limits
        tick = max(
            0.05,
            min(1.0, limits.hello_timeout / 5, limits.ping_interval / 5, limits.frame_timeout / 5),
        )
        loop = asyncio.get_running_loop()
        trimmed = loop.time()
        while True:
            await asyncio.sleep(tick)
            self._tick(loop.time())
            if loop.time() - trimmed >= memory.TRIM_INTERVAL:
                trimmed = loop.time()
                self.address_buckets.prune(trimmed)
                memory.trim()

    def _tick(self, now: float) -> None:
        # (A function of its own: the sweeper's loop must not keep the last
        # session it looked at alive until its next turn.)
        for session in list(self.sessions):
            session.tick(now)

    # -- nicks and rooms -----------------------------------------------------

    def free_random_nick(self) -> str:
        while True:
            nick = random_nick()
            if state.holder(self.shared, nick) is None:
                return nick

    def find_room(self, name: str) -> Room:
        return self.shared.find_room(name)

    def room_list(self, budget: int) -> tuple[list[ev.RoomInfo], int]:
        """The rooms, largest first, as many as fit ``budget``; sorted again only
        when a room changed since the last list (its cost grows with the rooms)."""
        key = (self.shared.listing, len(self.rooms), budget)
        if self._listed is None or self._listed[0] != key:
            ordered = sorted(self.rooms.values(), key=lambda r: (-len(r.members), r.key))
            infos = (
                ev.RoomInfo(room=r.name, members=len(r.members), topic=r.topic) for r in ordered
            )
            self._listed = (key, *fit(infos, budget, _room_info_size, len(ordered)))
        return self._listed[1], self._listed[2]

    def member_list(self, room: Room, budget: int) -> tuple[list[str], int]:
        """A room's nicks in join order, as many as fit ``budget`` (stops there)."""
        return member_list(room, budget)


def refuse(session: Session, code: str, msg: str) -> None:
    """Turn a connection away before its hello: one error frame, then close."""
    session.closing = True
    session.close_code = code
    session.transport.write(encode_frame(ev.Error(code=code, msg=msg).to_wire()))
    session.transport.close()


def _room_info_size(info: ev.RoomInfo) -> int:
    return 32 + len(info.room.encode()) + len(info.topic.encode())


def load_tls_identity(config: Config) -> ServerIdentity:
    """The configured certificate, or the self-signed one in the state directory."""
    if config.cert is not None and config.key is not None:
        return load_identity(Path(config.cert), Path(config.key))
    return ensure_identity(Path(config.state_dir) if config.state_dir else default_state_dir())


def why(exc: OSError) -> str:
    """The reason of a socket error, in the same words on asyncio's loop and uvloop's
    (both wrap bind errors in a sentence of their own) and for a name that does not
    resolve (whose negative errno is the resolver's, not the system's)."""
    if exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno)
    return str(exc.strerror or exc)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when it is installed (the ``fast`` extra), else None."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def describe(addresses: list[tuple[str, int]]) -> str:
    """``HOST:PORT, ...``, an IPv6 address in brackets (``[::]:7667``, not ``:::7667``)."""
    return ", ".join(format_address(h, p) for h, p in addresses)
