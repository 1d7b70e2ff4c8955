"""The daemon: listening socket, sessions, nicks, rooms, timers, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from .. import events as ev
from ..errors import Code, RequestError
from ..names import InvalidName, check_room, name_key, random_nick
from ..trust import (
    ServerIdentity,
    default_state_dir,
    ensure_identity,
    load_identity,
    pin_bytes,
)
from ..wire import encode_frame
from .config import Config
from .limits import AddressCounter
from .rooms import Member, Ring, Room, SecretRoom, fit
from .session import Session

log = logging.getLogger("anonchat.daemon")

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
        self.sessions: dict[Session, asyncio.Task[None]] = {}
        self.nicks: dict[str, Session] = {}
        self.rooms: dict[str, Room] = {}
        self.secret_rooms: dict[bytes, SecretRoom] = {}
        self.tokens: dict[bytes, Session] = {}  # resume token -> session (live or dropped)
        self.ghosts: dict[bytes, asyncio.TimerHandle] = {}  # dropped sessions awaiting resume
        self.per_address = AddressCounter(self.config.limits.max_per_address)
        self._server: asyncio.Server | None = None
        self.identity: ServerIdentity | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._next_sid = 0
        self._dirty: list[Member] = []  # sessions with output waiting for this pass
        self._stopped = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Load (or on first start create) the TLS identity, then listen."""
        config = self.config
        context = None
        if not config.plaintext:
            self.identity = load_tls_identity(config)
            context = self.identity.context()
        self._server = await asyncio.start_server(
            self._on_connect,
            config.host,
            config.port,
            limit=config.limits.read_size,
            backlog=1024,
            reuse_address=True,
            ssl=context,
            ssl_handshake_timeout=config.limits.hello_timeout if context else None,
        )
        self._sweeper = asyncio.create_task(self._sweep(), name="anonchatd-sweeper")
        log.info("listening on %s", describe(self.addresses))

    @property
    def addresses(self) -> list[tuple[str, int]]:
        assert self._server is not None, "daemon not started"
        return [s.getsockname()[:2] for s in self._server.sockets]

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
        if self._stopped.is_set():
            return
        log.info("shutting down; %d sessions", len(self.sessions))
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for timer in self.ghosts.values():
            timer.cancel()
        self.ghosts.clear()
        for session in list(self.sessions):
            session.close(Code.SHUTDOWN, msg, bye=True)
        tasks = list(self.sessions.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
            for task in pending:
                task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        self._stopped.set()
        log.info("stopped")

    # -- connections -----------------------------------------------------------

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if len(self.sessions) >= self.config.limits.max_connections or self._stopped.is_set():
            refuse(writer, Code.SERVER_FULL, "server is full")
            return
        peer = writer.get_extra_info("peername")
        address_key = self.per_address.key_of(str(peer[0]) if peer else "")
        del peer  # only the keyed hash is kept, and only while the connection lasts
        if not self.per_address.add(address_key):
            refuse(writer, Code.TOO_MANY_CONNECTIONS, "too many connections from your address")
            return
        try:
            self._next_sid += 1
            session = Session(self, self._next_sid, reader, writer)
            task = asyncio.current_task()
            assert task is not None
            self.sessions[session] = task
            log.debug("session %d opened (%d connected)", session.sid, len(self.sessions))
            await session.run()
        finally:
            self.per_address.remove(address_key)

    def mark_dirty(self, session: Member) -> None:
        """Have ``session`` flushed at the end of this event-loop pass (one write each)."""
        if not self._dirty:
            asyncio.get_running_loop().call_soon(self._flush_dirty)
        self._dirty.append(session)

    def _flush_dirty(self) -> None:
        dirty, self._dirty = self._dirty, []
        for session in dirty:
            session.flush()

    def forget(self, session: Session) -> None:
        """A connection ended.  A session that lost its connection waits
        ``resume_window`` seconds to be resumed, still holding its nick and
        rooms (its events go on into the rooms' rings); any other ends now."""
        if self.sessions.pop(session, None) is None:
            return
        log.debug("session %d closed: %s", session.sid, session.close_code or "eof")
        if self.tokens.get(session.token) is not session:
            return  # it was taken over by a resuming connection
        if session.resumable and len(self.ghosts) < self.config.limits.max_connections:
            self.ghosts[session.token] = asyncio.get_running_loop().call_later(
                self.config.limits.resume_window, self._end_session, session
            )
            return
        self._end_session(session)

    def _end_session(self, session: Session) -> None:
        """Free a session's nick and leave its rooms, announcing the quit."""
        self.ghosts.pop(session.token, None)
        if self.tokens.get(session.token) is session:
            del self.tokens[session.token]
        if self.nicks.get(session.nick_key) is session:
            del self.nicks[session.nick_key]
        for room in list(session.rooms.values()):
            session.leave_room(room, "quit", msg=session.quit_msg)
        for secret in list(session.secret_rooms.values()):
            session.leave_secret(secret, "quit")

    def take_resumable(self, token: bytes) -> Session | None:
        """The session ``token`` names, detached from its old connection, or None."""
        old = self.tokens.pop(token, None)
        if old is None:
            return None
        timer = self.ghosts.pop(token, None)
        if timer is not None:
            timer.cancel()
        else:  # still connected as far as we know: the client knows better
            old.abort("resumed")
        return old

    async def _sweep(self) -> None:
        limits = self.config.limits
        tick = max(0.05, min(1.0, limits.hello_timeout / 5, limits.ping_interval / 5))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            for session in list(self.sessions):
                session.tick(now)

    # -- nicks and rooms -----------------------------------------------------

    def free_random_nick(self) -> str:
        while True:
            nick = random_nick()
            if name_key(nick) not in self.nicks:
                return nick

    def find_room(self, name: str) -> Room:
        room = self.rooms.get(name_key(name))
        if room is None:
            raise RequestError(Code.NO_SUCH_ROOM, f"there is no room {name}")
        return room

    def create_room(self, name: str, topic: str) -> Room:
        try:
            check_room(name)
        except InvalidName as exc:
            raise RequestError(Code.ROOM_INVALID, str(exc)) from None
        key = name_key(name)
        if key in self.rooms:
            raise RequestError(Code.ROOM_EXISTS, f"the room {self.rooms[key].name} already exists")
        if len(self.rooms) >= self.config.limits.max_rooms:
            raise RequestError(Code.TOO_MANY_ROOMS, "the server holds as many rooms as it may")
        room = Room(name, key, self.new_ring(), topic)
        self.rooms[key] = room
        return room

    def create_secret_room(
        self, rid: bytes, auth: bytes, owner: bytes, owner_tag: bytes
    ) -> SecretRoom:
        if rid in self.secret_rooms:
            raise RequestError(
                Code.ROOM_EXISTS, "a secret room with this name and passphrase exists"
            )
        if len(self.secret_rooms) >= self.config.limits.max_rooms:
            raise RequestError(Code.TOO_MANY_ROOMS, "the server holds as many rooms as it may")
        room = SecretRoom(rid, auth, self.new_ring(), owner, owner_tag)
        self.secret_rooms[rid] = room
        return room

    def new_ring(self) -> Ring:
        limits = self.config.limits
        return Ring(limits.ring_frames, limits.ring_bytes)

    def drop_secret_if_empty(self, room: SecretRoom) -> bool:
        if room.members:
            return False
        if self.secret_rooms.get(room.rid) is room:
            del self.secret_rooms[room.rid]
        return True

    def drop_if_empty(self, room: Room) -> bool:
        """Forget a room nobody is in; return whether it was dropped."""
        if room.members:
            return False
        if self.rooms.get(room.key) is room:
            del self.rooms[room.key]
        return True

    def room_list(self, budget: int) -> tuple[list[ev.RoomInfo], int]:
        ordered = sorted(self.rooms.values(), key=lambda r: (-len(r.members), r.key))
        infos = (ev.RoomInfo(room=r.name, members=len(r.members), topic=r.topic) for r in ordered)
        return fit(infos, budget, _room_info_size)

    def member_list(self, room: Room, budget: int) -> tuple[list[str], int]:
        return fit(room.nicks(), budget, _nick_size)


def refuse(writer: asyncio.StreamWriter, code: str, msg: str) -> None:
    """Turn a connection away before its hello: one error frame, then close."""
    writer.write(encode_frame(ev.Error(code=code, msg=msg).to_wire()))
    writer.close()


def _room_info_size(info: ev.RoomInfo) -> int:
    return 32 + len(info.room.encode()) + len(info.topic.encode())


def _nick_size(nick: str) -> int:
    return 2 + len(nick.encode())


def load_tls_identity(config: Config) -> ServerIdentity:
    """The configured certificate, or the self-signed one in the state directory."""
    if config.cert is not None and config.key is not None:
        return load_identity(Path(config.cert), Path(config.key))
    return ensure_identity(Path(config.state_dir) if config.state_dir else default_state_dir())


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when it is installed (the ``fast`` extra), else None."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def describe(addresses: list[tuple[str, int]]) -> str:
    return ", ".join(f"{h}:{p}" for h, p in addresses)
