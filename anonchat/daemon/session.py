"""One client connection inside the daemon.

A session is the connection's :class:`asyncio.BufferedProtocol`: the
transport reads into the daemon's one read buffer (``read_size`` bytes),
the session feeds what arrived to its sans-I/O
:class:`~anonchat.protocol.Connection`, handles the frames that come out,
and writes what the connection queued.  There is no task, stream reader or
stream writer per connection (see "Where we departed from the design" in
docs/architecture.md): an idle connection costs the session, its protocol
state and the transport.

Reading stops (``pause_reading``) while the session *holds*: while a
command it submitted is not yet applied (several nodes: the frames left of
that read wait for it), and while its byte bucket is in debt (pacing, see
limits.py); it resumes when nothing holds it any more.

Writes are coalesced: whatever is for a session during one pass of the event
loop (its own replies in ``Session.out``, and what its rooms carried, in
each room's log of the pass: see ``Channel`` in rooms.py) is written with one
``transport.write`` when the daemon flushes (one ``call_soon`` per pass for
all sessions).  The session never waits for its peer to read: if the bytes
waiting for it exceed the ``sendq`` limit it is dropped with
``sendq_exceeded``, so a slow reader costs only itself.

Logs name a session by a counter, never by its address, and never contain
message text.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import secrets
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from .. import events as ev
from ..crypto import verify_join_proof, verify_key_proof
from ..direct import DM_CIPHERTEXT_SIZES, DmCard, verify_dm_proof
from ..errors import FATAL_CODES, Code, LocalProtocolError, ProtocolError, RequestError
from ..names import InvalidName, TextTooLong, check_nick, check_text, check_topic, name_key
from ..plural import plural
from ..protocol import Connection, State
from ..wire import DEFAULT_MAX_FRAME, HEADER, encode_body, pack_value
from . import commands, dms, moderation, secret_moderation
from .limits import SessionLimiter
from .rooms import Member, now_ms
from .state import secret_room
from .tls import CLOSED

if TYPE_CHECKING:
    from .rooms import Channel, Ring, Room
    from .server import Daemon

log = logging.getLogger("anonchat.daemon")

#: How long a closing connection may take to flush its last frames.
CLOSE_GRACE = 5.0

#: SO_LINGER on, for 0 seconds: close() resets the connection and frees its buffers.
_LINGER_RESET = struct.pack("ii", 1, 0)

#: Why a session is not reading (bits of ``Session._hold``).
_APPLYING = 1  # a command it submitted is not applied yet
_PACING = 2  # its byte bucket is in debt


class Session(Member, asyncio.BufferedProtocol):
    """A member connected to this node: the connection's protocol and its state."""

    __slots__ = (
        "_eof",
        "_frame_started",
        "_frames",
        "_frames_in",
        "_grace",
        "_hold",
        "_nread",
        "_ping_n",
        "_unfinished",
        "address_key",
        "challenge",
        "close_code",
        "conn",
        "connected_at",
        "daemon",
        "done",
        "get_buffer",
        "last_rx",
        "limiter",
        "loop",
        "ping_sent",
        "quit_msg",
        "registered",
        "sendq",
        "submitted",
        "token",
        "transport",
        "wait_for",
        "waiting",
    )

    here = True
    transport: asyncio.Transport
    # asyncio.BufferedProtocol.get_buffer, as the daemon's one bound method
    # (Daemon.get_buffer): uvloop keeps ``protocol.get_buffer`` for every
    # transport, and a method of the session would be a bound-method object
    # per connection; every session reads into the same buffer anyway.
    get_buffer: Callable[[int], memoryview]  # type: ignore[assignment]

    def __init__(self, daemon: Daemon, sid: int) -> None:
        super().__init__(daemon.config.limits, f"{daemon.node}.{sid}", daemon.node)
        self.daemon = daemon  # the node it is connected to
        self.loop = asyncio.get_running_loop()
        self.get_buffer = daemon.get_buffer
        self.conn = Connection("server", self.limits.max_frame)
        self.challenge = secrets.token_bytes(ev.KEY_SIZE)  # secret-room join proofs are bound to it
        self.token = b""  # resumes this session (kept until sent in hello, see welcome)
        self.limiter = SessionLimiter(self.limits)
        self.connected_at = self.loop.time()
        self.last_rx = self.connected_at
        self.ping_sent = False
        self.close_code = ""
        self.quit_msg: str | None = None
        self.registered = False  # its hello was submitted: the shared state knows it
        self.waiting = False  # a command it submitted is not applied yet (several nodes)
        self.submitted = 0  # commands submitted, and applied: they are applied in order
        self.done = 0
        self.wait_for = 0  # the command ``waiting`` waits for
        self._ping_n = 0
        self.address_key = b""  # the keyed hash its address is counted under
        # Bytes it may have waiting in the daemon: sendq less the kernel's send
        # buffer (set by Daemon.accept from what the kernel granted).
        self.sendq = self.limits.sendq
        # Received, not yet handled (reversed); on one node a run of says as a list.
        self._frames: list[ev.Frame | list[ev.SayFields]] | None = None
        self._nread = 0  # bytes of the read those frames came from
        self._hold = 0  # why reading is paused (_APPLYING, _PACING)
        self._eof = False
        self._grace: asyncio.TimerHandle | None = None  # the abort if closing takes too long
        self._frame_started = 0.0  # when the frame now arriving began (0: none is)
        self._frames_in = 0  # frames received whole (the protocol's count, last seen)
        self._unfinished = 0  # bytes of that frame held, counted in daemon.unfinished

    def __repr__(self) -> str:
        return f"<Session {self.sid} {self.nick!r}>"

    @property
    def sid(self) -> int:
        """The daemon's counter of this connection, what logs name it by: the end
        of its ``uid`` (not kept twice: an int object per connection)."""
        return int(self.uid.rpartition(".")[2])

    # -- the transport's calls (asyncio.BufferedProtocol) --------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not registered as asyncio.Transport subclasses)
        self.transport = cast(asyncio.Transport, transport)
        # The factory made this session when TCP connected; hello_timeout counts
        # from here, after the TLS handshake (bounded by its own timeout).
        self.connected_at = self.last_rx = self.loop.time()
        self.daemon.accept(self)

    def buffer_updated(self, nbytes: int) -> None:
        data = bytes(self.daemon.read_buffer[:nbytes])
        try:  # (_guarded, inline: every read)
            self._received(data)
        except Exception:
            self._failed()

    def eof_received(self) -> bool:
        self._eof = True
        if self._frames is None:
            self._guarded(self._end_of_input)
        # Keep the connection open to send the last replies: TCP and TLS (the
        # daemon's own layer, tls.py) both let the client end its side alone.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self._grace is not None:
            # Closed in time: no abort (the timer would keep this session alive).
            self._grace.cancel()
            self._grace = None
        if not self.closing:
            self.closing = True
            self.close_code = self.close_code or ("reset" if exc is not None else "eof")
        self._frames = None
        self.waiting = False
        self._let_go_of_input()
        # Let go of the transport: a session and its transport must not hold each
        # other once the connection is gone (the daemon's TLS layer lets go of the
        # session too) -- such a cycle once held every session ended without
        # ``bye``, TLS buffers and all, until a full garbage collection.
        self.transport = CLOSED
        self.daemon.forget(self)

    def _let_go_of_input(self) -> None:
        """Nothing more will be read: free (and stop counting) an unfinished frame."""
        self.daemon.unfinished -= self._unfinished
        self._unfinished = 0
        self._frame_started = 0.0
        self.conn.discard_input()

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        """Run ``step``; one session's bug must not take the daemon down: log once, close it."""
        try:
            step(*args)
        except Exception:
            self._failed()

    def _failed(self) -> None:
        """A step of this session raised: log it once (from the except clause
        that caught it, whose exception the log shows) and close the session."""
        if self.closing:
            log.exception("session %d failed while closing", self.sid)
            self.transport.abort()
            return
        log.exception("session %d failed; closing it", self.sid)
        try:
            self.close(Code.INTERNAL, "internal server error")
        except Exception:
            self.transport.abort()

    # -- input -------------------------------------------------------------

    def _received(self, data: bytes) -> None:
        if self.closing:
            return
        conn = self.conn
        daemon = self.daemon
        frames = conn.receive_requests(data, daemon.unpacker, daemon.say_runs)
        now = self.loop.time()  # (this read's time, for all it does)
        progress = conn.input_progress()  # (frames_in, frame_started, buffered_in)
        if progress[0] != self._frames_in or progress[1]:
            self._progress(progress, now)
            if self.closing:
                return
        frames.reverse()  # handled with pop(), from the end
        if self._frames is not None:
            # A transport that delivered one more read after pause_reading():
            # its frames queue behind those still waiting, and wait too.
            self._frames = frames + self._frames
            self._nread += len(data)
            return
        self._nread = len(data)
        self._frames = frames
        self._serve(now)

    def _end_of_input(self) -> None:
        """The client ended its side: once the commands it sent are applied
        (with several nodes, messages may still be on their way through Redis),
        their replies are written, then the connection closes (_read_done)."""
        if self.done < self.submitted:
            self.waiting = True
            self.wait_for = self.submitted
            self._frames = []  # nothing more to handle: _go_on comes back here
            return
        self._received(b"")

    def _progress(self, progress: tuple[int, bool, int], now: float) -> None:
        """After a read: a whole frame is what counts as heard from (``idle_timeout``);
        a frame begun must end within ``frame_timeout``; the bytes of unfinished
        frames are counted for all connections together (``max_unfinished``).
        ``progress`` is the protocol's (frames_in, frame_started, buffered_in)."""
        frames_in, started, held = progress
        completed = frames_in != self._frames_in
        if completed:
            self._frames_in = frames_in
            self.last_rx = now
            self.ping_sent = False
        if not started:
            self._frame_started = 0.0
        elif completed or not self._frame_started:
            self._frame_started = now  # a new frame begins
        daemon = self.daemon
        grown = held - self._unfinished
        if grown > 0 and daemon.unfinished + grown > self.limits.max_unfinished:
            log.info("session %d dropped: the daemon holds too many unfinished frames", self.sid)
            self.close(
                Code.SLOW_FRAME,
                "the server holds too many unfinished frames; send each frame whole",
            )
            return
        daemon.unfinished += grown
        self._unfinished = held

    def _serve(self, now: float) -> None:
        """Handle the frames of the last read in order; stop at one that must wait.
        On one node the ``say`` frames that follow one another are handled
        together (:meth:`_say_run`).  ``now`` is the loop's time."""
        frames = self._frames
        while frames:
            frame = frames.pop()
            if type(frame) is list:  # a run of says' fields (receive_requests)
                self._say_run(frame, now)
            else:
                self._handle(frame)  # type: ignore[arg-type]
            if self.closing:
                self._frames = None
                self._stopped_reading()
                return
            if self.waiting:  # with several nodes: until it is applied
                self._pause(_APPLYING)
                return
        self._frames = None
        self._read_done(now)
        if self._hold & _APPLYING:
            self._resume(_APPLYING)

    def _read_done(self, now: float) -> None:
        """What follows each read, once its frames are handled."""
        conn = self.conn
        if conn.pending:  # pongs the protocol answered on its own
            self._take_protocol_output()
        if conn.state is State.FAILED:
            assert self.conn.error is not None
            log.info("session %d broke the protocol: %s", self.sid, self.conn.error.code)
            self.close_code = self.conn.error.code
            self._flush()  # the error frame the protocol queued
            self.closing = True
            self._close_transport()
            self._stopped_reading()
            return
        if self._eof and self._nread:
            self._end_of_input()  # the end came with (or while handling) the last read
            return
        if not self._nread or self.conn.state is State.CLOSED:
            self.close_code = self.close_code or "eof"  # "quit" if a bye came first
            self._flush()  # the replies to its last requests (a half-close reads them)
            self.closing = True
            self.transport.close()
            self._stopped_reading()
            return
        pause = self.limiter.bytes_read(self._nread, now)
        if pause:  # past bytes_rate: read nothing more until the bucket refills
            self._pause(_PACING)
            self.loop.call_later(pause, self._resume, _PACING)

    def _stopped_reading(self) -> None:
        """Reading is over (the session closed): the shared state may let it go now."""
        self.daemon.forget(self)

    def _pause(self, why: int) -> None:
        if not self._hold and not self.transport.is_closing():
            self.transport.pause_reading()
        self._hold |= why

    def _resume(self, why: int) -> None:
        if not self._hold & why:
            return
        self._hold &= ~why
        if not self._hold and not self.closing and not self.transport.is_closing():
            if self._frame_started:  # the time it was not read does not count against it
                self._frame_started = self.loop.time()
            self.transport.resume_reading()

    def _go_on(self) -> None:
        """The command it waited for was applied: handle the rest of that read."""
        if self._frames is not None and not self.waiting and not self.closing:
            self._guarded(self._serve, self.loop.time())

    # -- output ------------------------------------------------------------

    # Fan-out is the hot path: a room event is encoded once and added to the
    # room's log; each member is written the room's frames with its own ones,
    # in order, with one call per event-loop pass (Daemon.flush_rooms,
    # Daemon.mark_urgent; see Channel in rooms.py).

    def deliver(self, frame_bytes: bytes) -> None:
        """Queue encoded bytes of this session's own (a reply, a replayed event)
        for this pass's write, after the room frames that came before them."""
        if self.closing:
            return
        size = self._take_logs() + len(frame_bytes)
        self.out.append(frame_bytes)  # type: ignore[union-attr]  # (a list: _take_logs made it)
        self._queued(size)

    def _take_logs(self) -> int:
        """Move the frames of this pass its rooms carried and it has not taken
        into ``out`` (each room's Channel.catch_up, inline); their size."""
        out = self.out
        if not isinstance(out, list):  # nothing queued (see Member.out)
            out = self.out = []
        size = 0
        for rooms in (self.rooms, self.secret_rooms):
            if not rooms:
                continue
            for room in rooms.values():
                log = room.log
                if log:
                    cursors = room.cursors
                    start = cursors.get(self, 0)
                    if start < len(log):
                        cursors[self] = len(log)
                        taken = log[start:] if start else log
                        out += taken
                        size += sum(map(len, taken))
        return size

    def ok(self, rid: int, seq: int | None = None) -> None:
        """A request's ``ok``, encoded here: ``rid`` came in a checked frame, ``seq``
        is the room's counter, and the bytes are Ok's (test_rooms checks them).
        Anything but an open connection with nothing of the protocol's waiting
        goes the general way (``send``)."""
        if self.closing:
            return
        conn = self.conn
        if conn.state is not State.OPEN or conn.pending or type(rid) is not int:
            self.send(ev.Ok(id=rid, seq=seq))
        elif seq is None:
            self.deliver(encode_body({"t": "ok", "id": rid}))
        else:
            self.deliver(encode_body({"t": "ok", "id": rid, "seq": seq}))

    def take(self, frames: list[bytes]) -> None:
        if self.closing:
            return
        out = self.out
        if isinstance(out, list):
            out += frames
        else:
            self.out = frames  # (nothing queued: a slice of a room's log, made for this call)
        self._queued(sum(map(len, frames)))

    def _queued(self, size: int) -> None:
        self.out_bytes += size
        if self.out_bytes > self.sendq:
            self.abort(Code.SENDQ_EXCEEDED)
        elif not self.urgent:
            self.urgent = True
            self.daemon.mark_urgent(self)

    def send(self, frame: ev.Frame) -> None:
        if self.closing:
            return
        if type(frame) is ev.Error:
            self.daemon.stats.error(frame.code)
        self.conn.send(frame)
        self._take_protocol_output()

    def _take_protocol_output(self, final: bool = False) -> None:
        """Move what the protocol queued (replies, auto-pongs; with ``final`` the
        error of a failed connection) into ``out``, keeping the order with fan-out."""
        data = self.conn.data_to_send(final=final)
        if data:
            self.deliver(data)

    @property
    def queued(self) -> int:
        """Bytes waiting for this session's next write (its own and its rooms')."""
        rooms = [*self.rooms.values(), *self.secret_rooms.values()]
        return self.out_bytes + sum(len(f) for r in rooms for f in r.pending(self))

    def flush(self) -> None:
        """Write everything queued, once: its own frames in order with its rooms'
        frames of this pass; drop a reader whose backlog passed ``sendq``."""
        self.urgent = False
        if self.closing:
            self.out, self.out_bytes = (), 0
            return
        out = self.out if isinstance(self.out, list) else []
        data = b""  # a room's joined log, shared with the other members
        for rooms in (self.rooms, self.secret_rooms):
            for room in rooms.values():
                log = room.log
                if not log:
                    continue
                cursors = room.cursors
                start = cursors.get(self, 0)
                if start >= len(log):
                    continue
                cursors[self] = len(log)
                if not start and not out and not data:
                    data = room.joined()  # the common case: one room, nothing else
                    continue
                if data:
                    out.append(data)
                    data = b""
                out += log[start:] if start else log
        if out:
            if data:
                out.append(data)
            data = out[0] if len(out) == 1 else b"".join(out)
            self.out, self.out_bytes = (), 0
        elif not data:
            return
        self.write(data)

    def write(self, data: bytes) -> None:
        """Write ``data`` with one call, unless that takes this session past ``sendq``."""
        transport = self.transport
        if transport.is_closing():
            return
        if len(data) + transport.get_write_buffer_size() > self.sendq:
            self.abort(Code.SENDQ_EXCEEDED)  # ours and the transport's (kernel: see sendq)
            return
        # One buffer, one write: under TLS one record per pass, not one per frame
        # (the SSL transports encrypt each buffer of writelines() apart).
        transport.write(data)

    def _flush(self) -> None:
        """Write now (before closing), outside the per-pass flush."""
        self._take_protocol_output(final=True)
        self.flush()

    # -- closing -----------------------------------------------------------

    def close(self, code: str, msg: str, *, bye: bool = False) -> None:
        """Tell the client why, flush, and close; nothing more is read."""
        if self.closing:
            return
        if self.conn.state in (State.OPEN, State.AWAIT_HELLO):
            with contextlib.suppress(ProtocolError):
                self.conn.send(ev.Bye(code=code, msg=msg) if bye else ev.Error(code=code, msg=msg))
        if not bye:
            self.daemon.stats.error(code)
        self._flush()
        self.closing = True
        self.close_code = code
        self._close_transport()
        self.waiting = False
        self._let_go_of_input()

    def _close_transport(self) -> None:
        """Close after flushing; abort if the peer has not let go in CLOSE_GRACE."""
        self.transport.close()
        if self._grace is None:
            self._grace = self.loop.call_later(CLOSE_GRACE, self._reset)

    def _reset(self) -> None:
        """Abort with a reset: the kernel drops what it still holds for the peer
        at once (a plain close would keep it, and the socket, in FIN-WAIT-1 for
        as long as the peer does not read)."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self.transport.abort()

    def abort(self, code: str) -> None:
        """Drop the connection at once, without flushing (a reader that does not read)."""
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        if code == Code.SENDQ_EXCEEDED:
            log.info("session %d dropped: sendq_exceeded (it does not read)", self.sid)
        self._reset()
        self.waiting = False
        self._let_go_of_input()

    # -- requests dispatch ---------------------------------------------------

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
        if (
            self._frame_started
            and not self._hold
            and now - self._frame_started > self.limits.frame_timeout
        ):
            log.info("session %d dropped: a frame begun was not finished in time", self.sid)
            self.close(
                Code.SLOW_FRAME,
                "a frame begun was not finished within "
                + plural(self.limits.frame_timeout, "second"),
            )
            return
        if silent > self.limits.idle_timeout:
            self.close(
                Code.IDLE_TIMEOUT,
                f"no frame received for {plural(max(1, round(silent)), 'second')}",
            )
        elif silent > self.limits.ping_interval and not self.ping_sent:
            self.ping_sent = True
            self._ping_n += 1
            self.send(ev.Ping(n=self._ping_n))

    # -- requests ----------------------------------------------------------

    # A handler checks what only this connection can check, then submits a
    # command; the shared state (state.py) applies it and answers.

    def submit(self, cmd: commands.Command, wait: bool = True) -> None:
        """Hand a command to the bus.  With ``wait``, read nothing more until it
        is applied, so the checks of the next request see its outcome; messages
        do not wait (nothing a later check looks at depends on them), so a
        sender's messages stream through the bus back to back, still in order."""
        bus = self.daemon.bus
        self.submitted += 1
        if (wait or bus.backlogged) and not bus.synchronous:
            self.waiting = True
            self.wait_for = self.submitted
        bus.submit(cmd)

    def applied(self) -> None:
        """One of this session's commands was applied (they are, in order)."""
        self.done += 1
        if self.waiting and self.done >= self.wait_for:
            self.waiting = False
            self.loop.call_soon(self._go_on)

    def on_hello(self, frame: ev.ClientHello) -> None:
        random = frame.nick is None and frame.resume is None
        nick = ""
        if frame.nick is not None:
            try:
                nick = check_nick(frame.nick)
            except InvalidName as exc:
                self.close(Code.NICK_INVALID, str(exc))
                return
        elif random:
            nick = self.daemon.free_random_nick()
        self.token = secrets.token_bytes(16)
        resume = token_hash(frame.resume) if frame.resume is not None else None
        seen = resume_points(frame.seen or [], self.limits.max_rooms_per_session)
        self.registered = True
        # No nick and a resume token that turns out stale: a random nick, below.
        self.submit(
            commands.Hello(
                self.uid,
                self.node,
                nick or self.daemon.free_random_nick(),
                random or not nick,
                token_hash(self.token),
                resume,
                seen,
            )
        )

    def welcome(self, resumed: bool, seen: list[list[Any]]) -> None:
        """The shared state took this session (new or resumed): say hello."""
        self.send(
            ev.ServerHello(
                v=ev.PROTOCOL_VERSION,
                server=self.daemon.server_name,
                nick=self.nick,
                max_frame=self.limits.max_frame,
                max_text=self.limits.max_text,
                ping_interval=max(1, round(self.limits.ping_interval)),
                challenge=self.challenge,
                token=self.token,
                resumed=resumed,
                resume_window=round(self.limits.resume_window),
                msg_burst=self.limits.msg_burst,
                msg_interval_us=math.ceil(1_000_000 / self.limits.msg_rate),
                dm_burst=self.limits.dm_burst,
                dm_interval_us=math.ceil(1_000_000 / self.limits.dm_rate),
                dm_max=self.limits.dm_max_bytes,
            )
        )
        # Said once: what is left is what no longer counts for an open session.
        # The shared state keeps the token's hash, and hello_timeout is over.
        self.token = b""
        self.connected_at = 0.0
        if resumed:
            self._replay(seen)

    def _replay(self, seen: list[list[Any]]) -> None:
        """Send each room's events after the client's last seen one, or say they
        are gone.  All of it is queued in this pass, so it must fit ``sendq``
        (less a margin for what else this pass brings), or the client would be
        dropped again at every resume: the room there is shared out between the rooms
        (and the direct messages) as evenly as their needs allow, each keeping
        its newest events, and what is older is reported ``missed`` like events
        gone from the ring."""
        wanted: list[tuple[str | None, bytes | None, Ring, int, int]] = []
        for room, secret, seq in seen:
            if room is None and secret is None:
                if self.dm_ring is not None:
                    wanted.append((None, None, self.dm_ring, seq, self.dm_seq))
                continue
            channel: Channel | None
            if room is not None:
                channel = self.rooms.get(name_key(room))
            else:
                channel = self.secret_rooms.get(secret or b"")
            if channel is not None:
                wanted.append((room, secret, channel.ring, seq, channel.seq))
        budget = self.sendq - self.out_bytes - min(self.limits.max_frame, self.sendq // 4)
        shares = _shares([ring.size_since(seq) for _, _, ring, seq, _ in wanted], budget)
        for (room, secret, ring, seq, latest), share in zip(wanted, shares, strict=True):
            frames, lost = ring.since(seq, latest, share)
            if lost is not None:
                dm = room is None and secret is None
                self.send(ev.Missed(first=lost[0], last=lost[1], room=room, secret=secret, dm=dm))
            for data in frames:
                self.deliver(data)

    @property
    def resumable(self) -> bool:
        """Whether a new connection may take this session over once it is gone:
        it lost its connection (not a quit, a protocol violation or a shutdown)."""
        return bool(self.nick) and self.close_code in _RESUMABLE and self.limits.resume_window > 0

    def on_nick(self, frame: ev.SetNick) -> None:
        try:
            nick = check_nick(frame.nick)
        except InvalidName as exc:
            raise RequestError(Code.NICK_INVALID, str(exc)) from None
        if nick != self.nick:  # (the same nick again changes nothing and costs nothing)
            self.limiter.check_nick(self.daemon.address_buckets, self.address_key, self.loop.time())
        self.submit(commands.Nick(self.uid, frame.id, nick))

    def on_list(self, frame: ev.ListRooms) -> None:
        self.limiter.check_query(self.daemon.address_buckets, self.address_key, self.loop.time())
        rooms, more = self.daemon.room_list(self.limits.max_frame - 1024)
        self.send(ev.Rooms(id=frame.id, rooms=rooms, more=more))

    def on_create(self, frame: ev.Create) -> None:
        self.limiter.check_room_join(self.loop.time())
        self.submit(
            commands.Create(self.uid, frame.id, frame.room, _check_topic(frame.topic or ""))
        )

    def on_join(self, frame: ev.Join) -> None:
        # A missing room costs no join token.  (With several nodes a room made a
        # moment ago elsewhere may not be here yet: applying decides.)
        if name_key(frame.room) in self.daemon.rooms:
            self.limiter.check_room_join(self.loop.time())
        self.submit(commands.Join(self.uid, frame.id, frame.room))

    def on_leave(self, frame: ev.Leave) -> None:
        self.submit(commands.Leave(self.uid, frame.id, frame.room))

    def on_topic(self, frame: ev.SetTopic) -> None:
        self.submit(commands.Topic(self.uid, frame.id, frame.room, _check_topic(frame.topic)))

    def on_who(self, frame: ev.Who) -> None:
        self.limiter.check_query(self.daemon.address_buckets, self.address_key, self.loop.time())
        room = self.daemon.find_room(frame.room)
        members, more = self.daemon.member_list(room, self.limits.max_frame - 1024)
        owners = room.owner_nicks()[:100]
        self.send(
            ev.Members(id=frame.id, room=room.name, members=members, more=more, owners=owners)
        )

    def on_say(self, frame: ev.Say) -> None:
        """A message, the general way: with several nodes (on one node the
        daemon's ``say_runs`` handles messages in runs, :meth:`_say_run`)."""
        self.limiter.check_message(self.loop.time())
        # Membership is checked once, when the command is applied (state.say):
        # a second look-up here would normalise the room name twice per message.
        text = _check_text(frame.text, self.limits.max_text)
        self.submit(commands.Say(self.uid, frame.id, frame.room, text, frame.me), wait=False)

    def _say_run(self, run: list[ev.SayFields], now: float) -> None:
        """The ``say`` frames of one read that follow one another, on one node:
        what :meth:`on_say` and applying each one's command (``state.say``) do
        with them one by one, in the same order, with the same bytes and the
        same refusals, done together.

        One clock read of each kind for all (the rate limit's and the log
        time), the rate limit's tokens taken at once (those that find none are
        refused one by one, as each would be), one room look-up while the room
        stays the same, each message encoded from byte templates (test_hotpath
        holds them equal to Msg's and Ok's encoding), kept in the ring after
        the run, and appended to the room's log and with its ``ok`` to the
        sender's queue directly once the sender has taken its rooms' logs (the
        first reply of the run catches it up, as ``deliver`` does).  It stops
        where the one-by-one path would: at a ``flood`` refusal, or when the
        sender's queue passes ``sendq``.  tests/test_hotpath.py holds the two
        paths equal, byte for byte, on arbitrary runs."""
        daemon = self.daemon
        if daemon.shared.members.get(self.uid) is not self:
            for rid, name, text, me in run:  # (not in the shared state: the general way)
                self._handle(ev.Say(id=rid, room=name, text=text, me=me))
                if self.closing:
                    return
            return
        limiter = self.limiter
        granted = limiter.take_messages(len(run), now)
        ts = now_ms()
        conn = self.conn
        max_text = self.limits.max_text
        rooms = self.rooms
        sendq = self.sendq
        open_ = State.OPEN
        caught_up = False  # whether this session has taken all its rooms' logs
        out: list[bytes] = []  # (its queue, once caught up)
        last_name: str | None = None
        room: Room | None = None
        kept: list[bytes] = []  # the room's new messages, for its ring
        first = 0  # the number of kept[0]
        head = mid = b""
        log: list[bytes] = []
        cursors: dict[Member, int] = {}
        fixed = 0  # the bytes of a msg map but its seq's and its text's
        applied = said = 0
        try:
            for rid, name, text, me in run:
                refused: RequestError | None = None
                if granted:
                    granted -= 1
                else:
                    try:
                        limiter.check_message(now)  # refused: rate_limited, or flood
                    except RequestError as exc:
                        refused = exc
                if refused is None and not (
                    text
                    and len(text) <= max_text
                    and text.isascii()
                    and text.isprintable()
                    and not text.isspace()
                ):
                    try:
                        _check_text(text, max_text)
                    except RequestError as exc:
                        refused = exc
                if refused is not None:
                    if self._refused(refused, rid):
                        return
                    caught_up = conn.state is open_ and not conn.pending
                    out = self.out  # type: ignore[assignment]  # (a list: a reply was queued)
                    continue
                if name != last_name:
                    if kept:
                        assert room is not None
                        room.ring.extend_messages(first, kept)
                        kept = []
                    room = rooms.get(name_key(name))
                    last_name = name
                    if room is not None:
                        head, mid = _msg_templates(room.name, ts, self.nick)
                        fixed = len(head) + len(mid) + 1
                        log, cursors = room.log, room.cursors  # (the same lists all run)
                applied += 1  # (what state.apply counts: submitted, and applied)
                if room is None:
                    if self._refused(RequestError(Code.NOT_MEMBER, f"you are not in {name}"), rid):
                        return
                    caught_up = conn.state is open_ and not conn.pending
                    out = self.out  # type: ignore[assignment]  # (a list: a reply was queued)
                    continue
                if room.slow:
                    try:
                        moderation.check_slow(self, room, ts)
                    except RequestError as exc:
                        if self._refused(exc, rid):
                            return
                        caught_up = conn.state is open_ and not conn.pending
                        out = self.out  # type: ignore[assignment]  # (a list: a reply was queued)
                        continue
                room.seq = seq = room.seq + 1
                packed_seq = _pack(seq)
                packed_text = _pack(text)
                size = fixed + len(packed_seq) + len(packed_text)
                if me:
                    size += 4
                    data = b"".join(
                        (
                            _HEADER_PACK(size),
                            _MSG_ME_MAP,
                            head,
                            packed_seq,
                            mid,
                            packed_text,
                            _ME_TRUE,
                        )
                    )
                else:
                    data = b"".join(
                        (_HEADER_PACK(size), _MSG_MAP, head, packed_seq, mid, packed_text)
                    )
                if size > DEFAULT_MAX_FRAME:  # (encode_frame's check; max_text keeps below)
                    raise LocalProtocolError(Code.FRAME_TOO_LARGE, "a message frame too large")
                if not kept:
                    first = seq
                kept.append(data)
                if not log:
                    room.to_flush(room)
                log.append(data)
                said += 1
                if caught_up:
                    cursors[self] = len(log)
                    out.append(data)
                    queued = size + 4
                elif conn.state is open_ and not conn.pending:
                    # Its ok comes after the frames of its rooms' logs it has not
                    # taken, this message's included (as deliver takes them).
                    queued = self._take_logs()
                    out = self.out  # type: ignore[assignment]  # (a list: it took this message)
                    caught_up = True
                else:  # (the protocol has bytes of its own to go first: the general way)
                    self.ok(rid, seq)
                    if self.closing:
                        return
                    caught_up = conn.state is open_ and not conn.pending
                    out = self.out  # type: ignore[assignment]  # (a list: a reply was queued)
                    continue
                packed_id = _pack(rid)
                ok_size = len(packed_id) + len(packed_seq) + 13
                out.append(
                    b"".join((_HEADER_PACK(ok_size), _OK_HEAD, packed_id, _OK_SEQ, packed_seq))
                )
                self.out_bytes += queued + ok_size + 4
                if self.out_bytes > sendq:  # (what _queued does)
                    self.abort(Code.SENDQ_EXCEEDED)
                    return
                if not self.urgent:
                    self.urgent = True
                    daemon.mark_urgent(self)
        finally:
            if kept:
                assert room is not None
                room.ring.extend_messages(first, kept)
            if said:
                daemon.stats.messages_at(ts, said)
            self.submitted += applied
            self.done += applied

    def _refused(self, exc: RequestError, rid: int) -> bool:
        """Answer a refusal as _handle (or state.apply) does; True if the session
        is closing after it (flood, or the answer took it past ``sendq``)."""
        message = exc.message[: ev.SHORT_MAX]
        if exc.code in FATAL_CODES:
            self.close(exc.code, message)
        else:
            self.send(ev.Error(code=exc.code, msg=message, id=rid))
        return self.closing

    def on_kick(self, frame: ev.Kick) -> None:
        reason = moderation.reason(frame.msg)
        self.submit(commands.Kick(self.uid, frame.id, frame.room, frame.nick, reason, frame.ban))

    def on_op(self, frame: ev.Op) -> None:
        self.submit(commands.Op(self.uid, frame.id, frame.room, frame.nick))

    def on_mode(self, frame: ev.RoomMode) -> None:
        if frame.slow is not None and frame.slow > moderation.SLOW_MAX:
            raise RequestError(Code.BAD_MODE, f"slow mode is at most {moderation.SLOW_MAX} seconds")
        self.submit(
            commands.Mode(self.uid, frame.id, frame.room, frame.locked, frame.slow, frame.history)
        )

    # -- secret rooms --------------------------------------------------------

    def on_secret_create(self, frame: ev.SecretCreate) -> None:
        self.limiter.check_secret_join(self.loop.time())
        secret_moderation.check_keys(frame.auth, frame.sender, frame.owner_key)
        if not verify_join_proof(
            frame.auth, frame.room, self.challenge, self.daemon.pin_bytes, frame.proof
        ):
            raise RequestError(Code.BAD_PROOF, "the proof does not match the room's join key")
        self._check_key_proof(frame)
        self.submit(
            commands.SecretCreate(
                self.uid,
                frame.id,
                frame.room,
                frame.auth,
                frame.sender,
                frame.owner_key,
                frame.owner_tag,
            )
        )

    def on_secret_join(self, frame: ev.SecretJoin) -> None:
        self.limiter.check_secret_join(self.loop.time())
        secret_moderation.check_keys(frame.sender)
        self._check_key_proof(frame)
        # The join proof is checked where the room is known for sure: when the
        # command is applied (this node's copy may not have the room yet).
        self.submit(
            commands.SecretJoin(
                self.uid, frame.id, frame.room, frame.proof, self.challenge, frame.sender
            )
        )

    def _check_key_proof(self, frame: ev.SecretCreate | ev.SecretJoin) -> None:
        """Nobody enters a secret room under a session key it does not hold."""
        if not verify_key_proof(
            frame.sender, frame.room, self.challenge, self.daemon.pin_bytes, frame.key_proof
        ):
            raise RequestError(Code.BAD_PROOF, "the key proof does not match the session key")

    def on_secret_leave(self, frame: ev.SecretLeave) -> None:
        self.submit(commands.SecretLeave(self.uid, frame.id, frame.room))

    def on_seal(self, frame: ev.Seal) -> None:
        if frame.kind in ANNOUNCE_KINDS:
            self.limiter.check_announce(self.loop.time())
        else:
            self.limiter.check_message(self.loop.time())
        secret_room(self, frame.room)
        if frame.kind not in SEAL_KINDS:
            raise RequestError(Code.TEXT_INVALID, f"unknown sealed kind {frame.kind!r}")
        self.submit(
            commands.Seal(
                self.uid,
                frame.id,
                frame.room,
                frame.counter,
                frame.epoch,
                frame.kind,
                frame.ct,
                frame.sig,
            ),
            wait=False,
        )

    def on_secret_act(self, frame: ev.SecretAct) -> None:
        # Each action may cost a signature check: it takes a token like a message.
        self.limiter.check_message(self.loop.time())
        secret_room(self, frame.room)
        self.submit(commands.SecretAct(self.uid, frame.id, frame.room, frame.act.to_wire()))

    # -- direct messages (dms.py) ---------------------------------------------

    def on_dm_key(self, frame: ev.DmKey) -> None:
        card = DmCard(frame.sign, frame.dh, frame.sig)
        secret_moderation.check_keys(frame.sign)
        if not verify_dm_proof(card, self.challenge, self.daemon.pin_bytes, frame.proof):
            raise RequestError(Code.BAD_PROOF, "the DM card or its proof does not verify")
        self.submit(commands.DmKey(self.uid, frame.id, frame.sign, frame.dh, frame.sig))

    def on_dm_lookup(self, frame: ev.DmLookup) -> None:
        self.limiter.check_query(self.daemon.address_buckets, self.address_key, self.loop.time())
        self.send(dms.card_of(self.daemon.shared, self, frame))

    def on_dm_send(self, frame: ev.DmSend) -> None:
        self.limiter.check_dm(self.loop.time())
        size = len(frame.ct)
        if size > self.limits.dm_max_bytes:
            raise RequestError(
                Code.TEXT_TOO_LONG,
                f"a direct message is at most {self.limits.dm_max_bytes} bytes sealed",
            )
        if size not in DM_CIPHERTEXT_SIZES:
            raise RequestError(Code.TEXT_INVALID, "a sealed direct message is padded to a bucket")
        self.submit(
            commands.Dm(self.uid, frame.id, frame.to, frame.counter, frame.ct, frame.hide_nick),
            wait=False,
        )

    def on_bye(self, frame: ev.Bye) -> None:
        self.close_code = "quit"
        try:
            self.quit_msg = check_topic(frame.msg) or None
        except InvalidName:
            self.quit_msg = None


def resume_points(seen: list[ev.Seen], most: int) -> list[list[Any]]:
    """The rooms a resuming client names, and the last event it saw in each:
    its first ``most`` entries (no session is in more rooms), each room once
    (its first entry), so the cost of a resume is bounded by the rooms a
    session may be in, however long the list."""
    points: list[list[Any]] = []
    named: set[tuple[str, bytes]] = set()
    for point in seen[: most + 1]:  # (the rooms, and the direct messages)
        if point.dm:
            key = ("\0dm", b"")
        elif point.room is None and point.secret is None:
            continue  # names nothing
        elif point.room is None:
            key = ("", point.secret or b"")
        else:
            key = (name_key(point.room), b"")
        if key not in named:
            named.add(key)
            secret = None if point.dm else point.secret
            points.append([None if point.dm else point.room, secret, point.seq])
    return points


def _check_text(text: str, max_text: int) -> str:
    try:
        return check_text(text, max_text)
    except TextTooLong as exc:
        raise RequestError(Code.TEXT_TOO_LONG, str(exc)) from None
    except InvalidName as exc:
        raise RequestError(Code.TEXT_INVALID, str(exc)) from None


# A message and its ``ok`` from byte templates (Session._say_run): msgpack maps
# with fixed keys, in the order Room.say and Session.ok give them, so the bytes
# are those of encode_frame / encode_body (tests/test_hotpath.py holds them so).
_HEADER_PACK = HEADER.pack
_MSG_MAP = b"\x86"  # a map of 6: t, room, seq, ts, nick, text
_MSG_ME_MAP = b"\x87"  # ... and me
_ME_TRUE = b"\xa2me\xc3"
_OK_HEAD = b"\x83\xa1t\xa2ok\xa2id"  # a map of 3: t, id, seq
_OK_SEQ = b"\xa3seq"


_pack = pack_value


def _msg_templates(room: str, ts: int, nick: str) -> tuple[bytes, bytes]:
    """The bytes of a ``msg`` map around its seq and after its text's key."""
    return (
        b"\xa1t\xa3msg\xa4room" + _pack(room) + b"\xa3seq",
        b"\xa2ts" + _pack(ts) + b"\xa4nick" + _pack(nick) + b"\xa4text",
    )


def _check_topic(topic: str) -> str:
    try:
        return check_topic(topic)
    except InvalidName as exc:
        raise RequestError(Code.TOPIC_INVALID, str(exc)) from None


def token_hash(token: bytes) -> bytes:
    """What the shared state keeps of a resume token (never the token itself)."""
    return hashlib.sha256(token).digest()


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
    ev.Kick: Session.on_kick,
    ev.Op: Session.on_op,
    ev.RoomMode: Session.on_mode,
    ev.SecretAct: Session.on_secret_act,
    ev.DmKey: Session.on_dm_key,
    ev.DmLookup: Session.on_dm_lookup,
    ev.DmSend: Session.on_dm_send,
}

#: How a connection may end and still be resumed: it was lost, not ended on purpose.
_RESUMABLE = frozenset(
    {"reset", "eof", Code.IDLE_TIMEOUT, Code.SLOW_FRAME, Code.SENDQ_EXCEEDED, Code.TRUNCATED}
)

#: Kinds of sealed frames the daemon relays (it cannot see anything else of them).
SEAL_KINDS = frozenset({"msg", "me", "hello", "here"})
#: ... of which announcements, with their own rate limit (Limits.announce_burst).
ANNOUNCE_KINDS = frozenset({"hello", "here"})


def _shares(needs: list[int], budget: int) -> list[int]:
    """``budget`` shared out between ``needs``: each gets what it needs or an
    equal part of what the smaller needs left, whichever is less."""
    shares = [0] * len(needs)
    left = max(0, budget)
    order = sorted(range(len(needs)), key=needs.__getitem__)
    for done, i in enumerate(order):
        shares[i] = min(needs[i], left // (len(needs) - done))
        left -= shares[i]
    return shares
