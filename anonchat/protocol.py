"""Sans-I/O connection state machines for both ends of an anonchat connection.

Theory of operation
-------------------
A :class:`Connection` is fed the bytes that arrived (:meth:`receive_data`) and
returns the frames they completed, as validated frame objects from
:mod:`anonchat.events`.  Frames to send are handed to :meth:`send`; the bytes
to write are collected with :meth:`data_to_send`.  It never touches a socket,
never reads the clock and never raises on the peer's input: a peer that breaks
the protocol moves the connection to ``FAILED``, ``error`` says why, and on the
server side an ``error`` frame telling the client is queued for sending.  The
I/O layer then writes what is left and closes.

States (both roles)::

    AWAIT_HELLO --hellos exchanged--> OPEN --bye received / EOF------> CLOSED
         |                              |--bye or fatal error sent--> CLOSING --EOF--> CLOSED
         '------------------------------'--peer broke protocol------> FAILED

The client sends ``hello`` first; the server answers with its own ``hello``
(or an ``error`` and close).  The client may pipeline requests after its
hello.  (The daemon's fan-out does not go through ``send``: it encodes a room
event once and hands the same bytes to every member, see ``daemon/rooms.py``.)
Pings are answered here, automatically, with a pong of the same number; pongs
are passed up so the caller can measure latency.
"""

from __future__ import annotations

from enum import Enum

from . import events as ev
from .errors import Code, LocalProtocolError, ProtocolError, RemoteProtocolError
from .wire import DEFAULT_MAX_FRAME, FrameDecoder, encode_frame


class State(Enum):
    AWAIT_HELLO = "await_hello"
    OPEN = "open"
    CLOSING = "closing"  # we sent bye or a fatal error; still reading until EOF
    CLOSED = "closed"
    FAILED = "failed"


class Connection:
    """One end of one connection; ``role`` is ``"client"`` or ``"server"``."""

    __slots__ = (
        "_decoder",
        "_early_pings",
        "_error_due",
        "_hello_received",
        "_hello_sent",
        "_out",
        "_out_size",
        "error",
        "max_frame",
        "role",
        "state",
    )

    def __init__(self, role: ev.Role, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.role: ev.Role = role
        self.max_frame = max_frame
        self.state = State.AWAIT_HELLO
        self.error: ProtocolError | None = None
        self._decoder = FrameDecoder(max_frame)
        # The containers are made when first needed: the daemon holds one
        # Connection per client, and an idle one has nothing queued.
        self._out: list[bytes] | None = None  # encoded frames not yet taken
        self._out_size = 0
        self._hello_sent = False
        self._hello_received = False
        self._early_pings: list[int] | None = None  # answered once our hello is out
        self._error_due = False  # a failure's error frame, sent after earlier replies

    # -- receiving -------------------------------------------------------

    def receive_data(self, data: bytes) -> list[ev.Frame]:
        """Feed bytes from the peer (``b""`` means end of stream); get the frames."""
        if self.state in (State.FAILED, State.CLOSED):
            return []
        frames: list[ev.Frame] = []
        try:
            if not data:
                self._decoder.eof()
                self.state = State.CLOSED
                return frames
            says = self.role == "server" and self.state is State.OPEN
            for body in self._decoder.feed(data):
                if says and body["t"] == "say":
                    # Every message: no look-up, nothing for _accept to apply.
                    frames.append(ev.say_from_wire(body))
                    continue
                frame = ev.from_wire(body, self.role)
                if self._accept(frame):
                    frames.append(frame)
                if self.state in (State.CLOSED, State.FAILED):
                    break
                says = self.role == "server" and self.state is State.OPEN
        except RemoteProtocolError as exc:
            self._fail(exc)
        return frames

    def _accept(self, frame: ev.Frame) -> bool:
        """Apply a received frame to the state; return whether to pass it up."""
        if self._hello_received and type(frame) not in _CHANGE_STATE:
            return True  # the common case (requests, events): nothing to apply
        if isinstance(frame, ev.ClientHello | ev.ServerHello):
            if self._hello_received:
                raise RemoteProtocolError(Code.UNEXPECTED_FRAME, "hello was already received")
            if frame.v != ev.PROTOCOL_VERSION:
                raise RemoteProtocolError(
                    Code.UNSUPPORTED_VERSION,
                    f"protocol version {frame.v} is not supported; "
                    f"this {self.role} speaks version {ev.PROTOCOL_VERSION}",
                )
            self._hello_received = True
            self._update_open()
            return True
        if isinstance(frame, ev.Bye):
            self.state = State.CLOSED
            return True
        if isinstance(frame, ev.Error) and frame.id is None:
            # The server failed the connection (or refused our hello).
            self.state = State.CLOSED
            return True
        if not self._hello_received:
            raise RemoteProtocolError(Code.HELLO_REQUIRED, "the first frame must be hello")
        if isinstance(frame, ev.Ping):
            if self._hello_sent:
                self._queue(ev.Pong(n=frame.n))
            elif self._early_pings is None:
                self._early_pings = [frame.n]
            else:
                self._early_pings.append(frame.n)
            return False
        return True

    def _update_open(self) -> None:
        if self._hello_sent and self._hello_received and self.state is State.AWAIT_HELLO:
            self.state = State.OPEN

    def _fail(self, exc: ProtocolError) -> None:
        # The frames before the bad one were returned and may still be
        # answered; the error frame follows those answers (data_to_send).
        self.state = State.FAILED
        self.error = exc
        self._error_due = self.role == "server"

    # -- sending ---------------------------------------------------------

    def send(self, frame: ev.Frame) -> None:
        """Queue a frame; raise :class:`LocalProtocolError` if it may not be sent now."""
        if (
            self.state is State.OPEN
            and type(frame) not in _OPENING_OR_CLOSING
            and frame.SENDER in _MAY_SEND[self.role]
        ):
            self._queue(frame)  # the common case (replies, requests): nothing else to check
            return
        if self.state in (State.CLOSED, State.CLOSING) or (
            self.state is State.FAILED and not self._error_due
        ):
            raise LocalProtocolError(Code.UNEXPECTED_FRAME, f"connection is {self.state.value}")
        if frame.SENDER not in (self.role, "both"):
            raise LocalProtocolError(
                Code.UNEXPECTED_FRAME, f"a {self.role} cannot send {frame.TYPE}"
            )
        is_hello = isinstance(frame, ev.ClientHello | ev.ServerHello)
        if is_hello == self._hello_sent and not isinstance(frame, ev.Error | ev.Bye):
            raise LocalProtocolError(
                Code.UNEXPECTED_FRAME,
                "hello must be the first frame, and only the first"
                if is_hello
                else "hello must be sent first",
            )
        self._queue(frame)
        if is_hello:
            self._hello_sent = True
            self._update_open()
            for n in self._early_pings or ():
                self._queue(ev.Pong(n=n))
            self._early_pings = None
        elif isinstance(frame, ev.Bye) or (isinstance(frame, ev.Error) and frame.id is None):
            self.state = State.CLOSING

    def _queue(self, frame: ev.Frame) -> None:
        data = encode_frame(frame.to_wire(), self.max_frame)
        if self._out is None:
            self._out = [data]
        else:
            self._out.append(data)
        self._out_size += len(data)

    def data_to_send(self, *, final: bool = True) -> bytes:
        """Take the bytes queued for the peer.

        After a failure the error frame is added only when ``final``: a caller
        still answering the frames that came before the bad one passes False.
        """
        if final and self._error_due and self.error is not None:
            self._error_due = False
            message = self.error.message[: ev.SHORT_MAX]
            self._queue(ev.Error(code=self.error.code, msg=message))
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        self._out, self._out_size = None, 0
        return data

    @property
    def pending(self) -> int:
        """Bytes queued and not yet taken by :meth:`data_to_send`."""
        return self._out_size + (1 if self._error_due else 0)

    @property
    def buffered_in(self) -> int:
        """Bytes received for a frame not yet complete."""
        return self._decoder.buffered

    @property
    def frame_started(self) -> bool:
        """Whether a frame has begun arriving and is not complete yet."""
        return self._decoder.started

    @property
    def frames_in(self) -> int:
        """Frames received whole so far (pings and pongs included)."""
        return self._decoder.completed

    def discard_input(self) -> None:
        """The connection is gone: free the bytes of an unfinished frame."""
        self._decoder.discard()


#: Received frames that _accept applies to the state (every other frame, once
#: the peer's hello is in, is just passed up).  Frame classes are not subclassed.
_CHANGE_STATE = frozenset({ev.ClientHello, ev.ServerHello, ev.Bye, ev.Error, ev.Ping})

#: Frames that open or end a connection: Connection.send checks their order.
_OPENING_OR_CLOSING = frozenset({ev.ClientHello, ev.ServerHello, ev.Bye, ev.Error})

#: The frames a role may send, by their SENDER.
_MAY_SEND: dict[str, frozenset[str]] = {
    "client": frozenset({"client", "both"}),
    "server": frozenset({"server", "both"}),
}
