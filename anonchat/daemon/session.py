"""One client connection inside the daemon.

A session reads bytes, feeds its sans-I/O :class:`~anonchat.protocol.Connection`,
handles the frames that come out, and writes what the connection queued.

Writes are coalesced: whatever is queued for a session during one pass of the
event loop (its own replies and every room's fan-out) is a list of encoded
frames in ``Session.out``, written with one ``transport.writelines`` when the
daemon flushes its dirty sessions (one ``call_soon`` per pass for all of
them).  The session never waits for its peer to read: if the bytes waiting
for it exceed the ``sendq`` limit it is dropped with ``sendq_exceeded``, so a
slow reader costs only itself.

Logs name a session by a counter, never by its address, and never contain
message text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..crypto import verify_join_proof
from ..errors import FATAL_CODES, Code, ProtocolError, RequestError
from ..names import InvalidName, TextTooLong, check_nick, check_text, check_topic, name_key
from ..protocol import Connection, State
from . import moderation, secret_moderation
from .limits import SessionLimiter
from .rooms import Channel, SecretRoom, fit

if TYPE_CHECKING:
    from .rooms import Room
    from .server import Daemon

log = logging.getLogger("anonchat.daemon")

#: How long a closing connection may take to flush its last frames.
CLOSE_GRACE = 5.0


class Session:
    __slots__ = (
        "_ping_n",
        "challenge",
        "close_code",
        "closing",
        "conn",
        "connected_at",
        "daemon",
        "dirty",
        "last_rx",
        "limiter",
        "limits",
        "loop",
        "nick",
        "nick_key",
        "out",
        "out_bytes",
        "ping_sent",
        "quit_msg",
        "reader",
        "rooms",
        "secret_rooms",
        "sid",
        "token",
        "transport",
        "writer",
    )

    def __init__(
        self, daemon: Daemon, sid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.daemon = daemon
        self.limits = daemon.config.limits
        self.sid = sid
        self.reader = reader
        self.writer = writer
        self.transport = writer.transport
        self.loop = asyncio.get_running_loop()
        self.conn = Connection("server", self.limits.max_frame)
        self.nick = ""
        self.nick_key = ""
        self.rooms: dict[str, Room] = {}
        self.secret_rooms: dict[bytes, SecretRoom] = {}
        self.challenge = secrets.token_bytes(ev.KEY_SIZE)
        self.token = secrets.token_bytes(16)  # resumes this session (sent in hello only)
        self.limiter = SessionLimiter(self.limits, self.loop.time())
        self.connected_at = self.loop.time()
        self.last_rx = self.connected_at
        self.ping_sent = False
        self.closing = False
        self.close_code = ""
        self.quit_msg: str | None = None
        self.out: list[bytes] = []  # frames waiting for this pass's single write
        self.out_bytes = 0
        self.dirty = False  # on the daemon's list of sessions to flush
        self._ping_n = 0

    def __repr__(self) -> str:
        return f"<Session {self.sid} {self.nick!r}>"

    # -- output ------------------------------------------------------------

    # Fan-out is the hot path: a room event is encoded once and its bytes are
    # appended here for every member; the daemon writes each session's
    # frames with one call per event-loop pass (Daemon._flush_dirty).

    def deliver(self, frame_bytes: bytes) -> None:
        """Queue encoded bytes (a room event, or a reply) for this pass's write."""
        if self.closing:
            return
        self.out.append(frame_bytes)
        self.out_bytes += len(frame_bytes)
        if self.out_bytes > self.limits.sendq:
            self.abort(Code.SENDQ_EXCEEDED)
        elif not self.dirty:
            self.dirty = True
            self.daemon.mark_dirty(self)

    def send(self, frame: ev.Frame) -> None:
        if self.closing:
            return
        self.conn.send(frame)
        self._take_protocol_output()

    def _take_protocol_output(self, final: bool = False) -> None:
        """Move what the protocol queued (replies, auto-pongs; with ``final`` the
        error of a failed connection) into ``out``, keeping the order with fan-out."""
        data = self.conn.data_to_send(final=final)
        if data:
            self.deliver(data)

    def flush(self) -> None:
        """Write everything queued, once; drop a reader whose backlog passed ``sendq``."""
        self.dirty = False
        out = self.out
        if not out:
            return
        queued = self.out_bytes
        self.out, self.out_bytes = [], 0
        transport = self.transport
        if transport.is_closing():
            return
        if queued + transport.get_write_buffer_size() > self.limits.sendq:
            self.abort(Code.SENDQ_EXCEEDED)  # ours and the kernel transport's, together
            return
        transport.writelines(out)

    def _flush(self) -> None:
        """Write now (before closing), outside the per-pass flush."""
        self._take_protocol_output(final=True)
        self.flush()

    # -- closing -----------------------------------------------------------

    def close(self, code: str, msg: str, *, bye: bool = False) -> None:
        """Tell the client why, flush, and close; the read loop then ends."""
        if self.closing:
            return
        if self.conn.state in (State.OPEN, State.AWAIT_HELLO):
            with contextlib.suppress(ProtocolError):
                self.conn.send(ev.Bye(code=code, msg=msg) if bye else ev.Error(code=code, msg=msg))
        self._flush()
        self.closing = True
        self.close_code = code
        self.transport.close()
        self.loop.call_later(CLOSE_GRACE, self.transport.abort)

    def abort(self, code: str) -> None:
        """Drop the connection at once, without flushing (a reader that does not read)."""
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        self.transport.abort()

    # -- input -------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes; never raises."""
        try:
            await self._read_loop()
        except (ConnectionError, OSError):
            self.close_code = self.close_code or "reset"
        except Exception:
            # One session's bug must not take the daemon down: log once, close it.
            log.exception("session %d failed; closing it", self.sid)
            self.close(Code.INTERNAL, "internal server error")
        finally:
            if not self.closing:
                self.closing = True
                self.transport.close()
            self.daemon.forget(self)

    async def _read_loop(self) -> None:
        read_size = self.limits.read_size
        while not self.closing:
            data = await self.reader.read(read_size)
            self.last_rx = self.loop.time()
            self.ping_sent = False
            for frame in self.conn.receive_data(data):
                self._handle(frame)
                if self.closing:
                    return
            if self.conn.pending:  # pongs the protocol answered on its own
                self._take_protocol_output()
            if self.conn.state is State.FAILED:
                assert self.conn.error is not None
                log.info("session %d broke the protocol: %s", self.sid, self.conn.error.code)
                self.close_code = self.conn.error.code
                self._flush()  # the error frame the protocol queued
                self.closing = True
                self.transport.close()
                self.loop.call_later(CLOSE_GRACE, self.transport.abort)
                return
            if not data or self.conn.state is State.CLOSED:
                self.close_code = self.close_code or "eof"  # "quit" if a bye came first
                return
            pause = self.limiter.bytes_read(len(data), self.loop.time())
            if pause:  # past bytes_rate: read nothing more until the bucket refills
                await asyncio.sleep(pause)

    def _handle(self, frame: ev.Frame) -> None:
        handler = _HANDLERS.get(type(frame))
        if handler is None:
            # Pongs and the like: receiving them was enough (last_rx moved).
            return
        try:
            handler(self, frame)
        except RequestError as exc:
            message = exc.message[: ev.SHORT_MAX]
            if exc.code in FATAL_CODES:  # flood: refused too often
                self.close(exc.code, message)
                return
            self.send(ev.Error(code=exc.code, msg=message, id=getattr(frame, "id", None)))

    # -- timers (called by the daemon's sweeper) -----------------------------

    def tick(self, now: float) -> None:
        if self.closing:
            return
        silent = now - self.last_rx
        if self.conn.state is State.AWAIT_HELLO:
            if now - self.connected_at > self.limits.hello_timeout:
                self.close(Code.HELLO_TIMEOUT, "no hello received in time")
            return
        if silent > self.limits.idle_timeout:
            self.close(Code.IDLE_TIMEOUT, f"nothing received for {max(1, round(silent))} seconds")
        elif silent > self.limits.ping_interval and not self.ping_sent:
            self.ping_sent = True
            self._ping_n += 1
            self.send(ev.Ping(n=self._ping_n))

    # -- requests ----------------------------------------------------------

    def on_hello(self, frame: ev.ClientHello) -> None:
        daemon = self.daemon
        old = daemon.take_resumable(frame.resume) if frame.resume is not None else None
        if old is not None:
            self._adopt(old)
            nick = old.nick
        elif frame.nick is not None:
            try:
                nick = check_nick(frame.nick)
            except InvalidName as exc:
                self.close(Code.NICK_INVALID, str(exc))
                return
            if name_key(nick) in daemon.nicks:
                self.close(Code.NICK_TAKEN, f"the nick {nick} is taken")
                return
            self._take_nick(nick)
        else:
            nick = daemon.free_random_nick()
            self._take_nick(nick)
        daemon.tokens[self.token] = self
        self.send(
            ev.ServerHello(
                v=ev.PROTOCOL_VERSION,
                server=daemon.server_name,
                nick=nick,
                max_frame=self.limits.max_frame,
                max_text=self.limits.max_text,
                ping_interval=max(1, round(self.limits.ping_interval)),
                challenge=self.challenge,
                token=self.token,
                resumed=old is not None,
                resume_window=round(self.limits.resume_window),
            )
        )
        if old is not None:
            self._replay(frame.seen or [])

    def _adopt(self, old: Session) -> None:
        """Take over a dropped (or dropping) session: its nick, rooms and keys."""
        self.nick, self.nick_key = old.nick, old.nick_key
        self.daemon.nicks[self.nick_key] = self
        self.rooms, self.secret_rooms = old.rooms, old.secret_rooms
        old.rooms, old.secret_rooms = {}, {}
        for channel in [*self.rooms.values(), *self.secret_rooms.values()]:
            channel.replace_member(old, self)
        log.debug("session %d resumes session %d", self.sid, old.sid)

    def _replay(self, seen: list[ev.Seen]) -> None:
        """Send each room's events after the client's last seen one, or say they are gone."""
        for entry in seen:
            channel: Channel | None
            if entry.room is not None:
                channel = self.rooms.get(name_key(entry.room))
            else:
                channel = self.secret_rooms.get(entry.secret or b"")
            if channel is None:
                continue
            frames, lost = channel.ring.since(entry.seq, channel.seq)
            if lost is not None:
                self.send(
                    ev.Missed(first=lost[0], last=lost[1], room=entry.room, secret=entry.secret)
                )
            for data in frames:
                self.deliver(data)

    @property
    def resumable(self) -> bool:
        """Whether a new connection may take this session over once it is gone:
        it lost its connection (not a quit, a protocol violation or a shutdown)."""
        return bool(self.nick) and self.close_code in _RESUMABLE and self.limits.resume_window > 0

    def _take_nick(self, nick: str) -> None:
        self.daemon.nicks.pop(self.nick_key, None)
        self.nick = nick
        self.nick_key = name_key(nick)
        self.daemon.nicks[self.nick_key] = self

    def on_nick(self, frame: ev.SetNick) -> None:
        try:
            nick = check_nick(frame.nick)
        except InvalidName as exc:
            raise RequestError(Code.NICK_INVALID, str(exc)) from None
        holder = self.daemon.nicks.get(name_key(nick))
        if holder is not None and holder is not self:
            raise RequestError(Code.NICK_TAKEN, f"the nick {nick} is taken")
        old = self.nick
        self._take_nick(nick)
        self.send(ev.Ok(id=frame.id))
        if nick != old:
            for room in self.rooms.values():
                room.presence(self, "nick", nick=old, new=nick)

    def on_list(self, frame: ev.ListRooms) -> None:
        rooms, more = self.daemon.room_list(self.limits.max_frame - 1024)
        self.send(ev.Rooms(id=frame.id, rooms=rooms, more=more))

    def on_create(self, frame: ev.Create) -> None:
        self.limiter.check_room_join(self.loop.time())
        topic = self._check_topic(frame.topic or "")
        room = self.daemon.create_room(frame.room, topic)
        self._enter(room, frame.id, owner=True)

    def on_join(self, frame: ev.Join) -> None:
        room = self.daemon.find_room(frame.room)
        self.limiter.check_room_join(self.loop.time())
        if room.key in self.rooms:
            raise RequestError(Code.ALREADY_MEMBER, f"you are already in {room.name}")
        self._enter(room, frame.id, owner=False)

    def _check_room_limits(self, members: int) -> None:
        count = len(self.rooms) + len(self.secret_rooms)
        if count >= self.limits.max_rooms_per_session:
            raise RequestError(
                Code.TOO_MANY_ROOMS,
                f"you are in {count} rooms; the limit is {self.limits.max_rooms_per_session}",
            )
        if members >= self.limits.max_members_per_room:
            raise RequestError(Code.ROOM_FULL, "the room is full")

    def _enter(self, room: Room, request_id: int, owner: bool) -> None:
        try:
            if not owner:
                moderation.check_entry(self, room)
            self._check_room_limits(len(room.members))
        except RequestError:
            self.daemon.drop_if_empty(room)
            raise
        seq = room.presence(self, "join")
        room.members[self] = None
        if owner:
            room.owners.add(self)
        self.rooms[room.key] = room
        members, more = self.daemon.member_list(room, self.limits.max_frame - 1024)
        joined = ev.Joined(
            id=request_id,
            room=room.name,
            topic=room.topic,
            members=members,
            seq=seq,
            owner=owner,
            more=more,
            owners=room.owner_nicks()[:100],
            locked=room.locked,
            slow=room.slow,
        )
        self._send_with_history(room, joined, room.history)

    def _send_with_history(self, channel: Channel, reply: ev.Frame, history: bool = True) -> None:
        """The join reply, then the room's last messages (older than the reply's seq)."""
        self.send(reply)
        for data in channel.ring.history(self.limits.history if history else 0):
            self.deliver(data)

    def _member_room(self, name: str) -> Room:
        room = self.rooms.get(name_key(name))
        if room is None:
            raise RequestError(Code.NOT_MEMBER, f"you are not in {name}")
        return room

    def on_leave(self, frame: ev.Leave) -> None:
        room = self._member_room(frame.room)
        self.leave_room(room, "leave")
        self.send(ev.Ok(id=frame.id))

    def leave_room(self, room: Room, kind: str, msg: str | None = None) -> None:
        del room.members[self]
        room.owners.discard(self)
        self.rooms.pop(room.key, None)
        if not self.daemon.drop_if_empty(room):
            room.presence(self, kind, msg=msg)
            moderation.after_leave(room, self)

    def drop_room(self, room: Room) -> None:
        """Removed by an owner (the kick was announced already)."""
        del room.members[self]
        self.rooms.pop(room.key, None)
        if not self.daemon.drop_if_empty(room):
            moderation.after_leave(room, self)

    def on_topic(self, frame: ev.SetTopic) -> None:
        room = self._member_room(frame.room)
        moderation.check_topic_owner(self, room)
        room.set_topic(self, self._check_topic(frame.topic))
        self.send(ev.Ok(id=frame.id))

    @staticmethod
    def _check_topic(topic: str) -> str:
        try:
            return check_topic(topic)
        except InvalidName as exc:
            raise RequestError(Code.TOPIC_INVALID, str(exc)) from None

    def on_who(self, frame: ev.Who) -> None:
        room = self.daemon.find_room(frame.room)
        members, more = self.daemon.member_list(room, self.limits.max_frame - 1024)
        owners = room.owner_nicks()[:100]
        self.send(
            ev.Members(id=frame.id, room=room.name, members=members, more=more, owners=owners)
        )

    def on_say(self, frame: ev.Say) -> None:
        self.limiter.check_message(self.loop.time())
        room = self._member_room(frame.room)
        try:
            text = check_text(frame.text, self.limits.max_text)
        except TextTooLong as exc:
            raise RequestError(Code.TEXT_TOO_LONG, str(exc)) from None
        except InvalidName as exc:
            raise RequestError(Code.TEXT_INVALID, str(exc)) from None
        moderation.check_slow(self, room, self.loop.time())
        seq = room.say(self, text, frame.me)
        self.send(ev.Ok(id=frame.id, seq=seq))

    # -- secret rooms --------------------------------------------------------

    def _take_join_attempt(self) -> None:
        self.limiter.check_secret_join(self.loop.time())

    def on_secret_create(self, frame: ev.SecretCreate) -> None:
        self._take_join_attempt()
        if not verify_join_proof(
            frame.auth, frame.room, self.challenge, self.daemon.pin_bytes, frame.proof
        ):
            raise RequestError(Code.BAD_PROOF, "the proof does not match the room's join key")
        room = self.daemon.create_secret_room(
            frame.room, frame.auth, frame.owner_key, frame.owner_tag
        )
        self._enter_secret(room, frame, owner=True)

    def on_secret_join(self, frame: ev.SecretJoin) -> None:
        self._take_join_attempt()
        room = self.daemon.secret_rooms.get(frame.room)
        # A missing room and a wrong passphrase must look the same.
        if room is None or not verify_join_proof(
            room.auth, frame.room, self.challenge, self.daemon.pin_bytes, frame.proof
        ):
            raise RequestError(Code.JOIN_DENIED, "no such room or wrong passphrase")
        if frame.room in self.secret_rooms:
            raise RequestError(Code.ALREADY_MEMBER, "you are already in this room")
        if frame.sender in room.members.values():
            # Two members under one key could speak for each other's presence.
            raise RequestError(Code.ALREADY_MEMBER, "that session key is already in this room")
        secret_moderation.check_entry(self, room, frame.sender)
        self._enter_secret(room, frame, owner=False)

    def _enter_secret(
        self, room: SecretRoom, frame: ev.SecretCreate | ev.SecretJoin, owner: bool
    ) -> None:
        try:
            self._check_room_limits(len(room.members))
        except RequestError:
            self.daemon.drop_secret_if_empty(room)
            raise
        seq = room.presence(frame.sender, "join")
        room.members[self] = frame.sender
        if owner:
            room.owners.add(self)
        self.secret_rooms[room.rid] = room
        # The grants (at most OWNERS_MAX, ~190 bytes each) take up to 12 KiB.
        budget = self.limits.max_frame - 1024 - 200 * (len(room.grants) + 1)
        keys, more = fit(room.members.values(), budget, lambda k: 34)
        self._send_with_history(
            room,
            ev.SecretJoined(
                id=frame.id,
                room=room.rid,
                seq=seq,
                members=keys,
                owner_key=room.chain.owner,
                owner_tag=room.owner_tag,
                owner=owner,
                more=more,
                acts=room.chain.counter,
                grants=list(room.grants) or None,
                mode=room.mode,
            ),
            room.history,
        )

    def _secret_room(self, rid: bytes) -> SecretRoom:
        room = self.secret_rooms.get(rid)
        if room is None:
            raise RequestError(Code.NOT_MEMBER, "you are not in this secret room")
        return room

    def on_secret_leave(self, frame: ev.SecretLeave) -> None:
        self.leave_secret(self._secret_room(frame.room), "leave")
        self.send(ev.Ok(id=frame.id))

    def leave_secret(self, room: SecretRoom, kind: str) -> None:
        sender = room.members[self]
        self.drop_secret(room)
        if room.members:
            room.presence(sender, kind)

    def drop_secret(self, room: SecretRoom) -> None:
        """Out of a secret room: left, or removed by an owner (announced already)."""
        room.members.pop(self, None)
        room.owners.discard(self)
        room.last_said.pop(self, None)
        self.secret_rooms.pop(room.rid, None)
        self.daemon.drop_secret_if_empty(room)

    def on_seal(self, frame: ev.Seal) -> None:
        self.limiter.check_message(self.loop.time())
        room = self._secret_room(frame.room)
        if frame.kind not in SEAL_KINDS:
            raise RequestError(Code.TEXT_INVALID, f"unknown sealed kind {frame.kind!r}")
        secret_moderation.check_slow(self, room, frame, self.loop.time())
        seq = room.relay(self, frame)
        self.send(ev.Ok(id=frame.id, seq=seq))

    def on_bye(self, frame: ev.Bye) -> None:
        self.close_code = "quit"
        try:
            self.quit_msg = check_topic(frame.msg) or None
        except InvalidName:
            self.quit_msg = None


_HANDLERS: dict[type[ev.Frame], Callable[[Session, Any], None]] = {
    ev.ClientHello: Session.on_hello,
    ev.SetNick: Session.on_nick,
    ev.ListRooms: Session.on_list,
    ev.Create: Session.on_create,
    ev.Join: Session.on_join,
    ev.Leave: Session.on_leave,
    ev.SetTopic: Session.on_topic,
    ev.Who: Session.on_who,
    ev.Say: Session.on_say,
    ev.Bye: Session.on_bye,
    ev.SecretCreate: Session.on_secret_create,
    ev.SecretJoin: Session.on_secret_join,
    ev.SecretLeave: Session.on_secret_leave,
    ev.Seal: Session.on_seal,
    ev.Kick: moderation.on_kick,
    ev.Op: moderation.on_op,
    ev.RoomMode: moderation.on_mode,
    ev.SecretAct: secret_moderation.on_act,
}

#: How a connection may end and still be resumed: it was lost, not ended on purpose.
_RESUMABLE = frozenset({"reset", "eof", Code.IDLE_TIMEOUT, Code.SENDQ_EXCEEDED, Code.TRUNCATED})

#: Kinds of sealed frames the daemon relays (it cannot see anything else of them).
SEAL_KINDS = frozenset({"msg", "me", "hello", "here"})
