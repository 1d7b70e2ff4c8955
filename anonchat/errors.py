"""The one exception tree of anonchat.

Every error a caller of this package can see is one of these; library errors
(msgpack, ssl, OSError) are translated at the boundary where they happen::

    AnonchatError
    ├── ProtocolError            the bytes on the wire broke the protocol
    │   ├── LocalProtocolError   we were about to send something invalid (our bug)
    │   └── RemoteProtocolError  the peer sent something invalid (its fault)
    ├── RequestError             the server refused one request (nick_taken, ...);
    │                            the connection stays open
    ├── ConnectionClosed         the connection is gone (EOF, reset, server bye);
    │                            carries the code and sentence of the reason
    ├── ConfigError              a config file or a command-line value is invalid
    └── CryptoError              a secret-room operation failed (bad signature,
                                 replay, ...); local, never sent on the wire

Every protocol and request error carries a stable machine ``code`` (see
:class:`Code`) and a sentence for people.  Codes never change meaning; new ones
may be added.  :class:`CryptoError` has its own codes
(:class:`anonchat.crypto.CryptoCode`), which are for the client only.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """Stable error codes sent in ``error`` frames (docs/protocol.md lists them)."""

    # Framing and schema: always fatal, the connection closes.
    FRAME_TOO_LARGE = "frame_too_large"
    EMPTY_FRAME = "empty_frame"
    BAD_FRAME = "bad_frame"
    UNKNOWN_TYPE = "unknown_type"
    BAD_FIELD = "bad_field"
    UNEXPECTED_FRAME = "unexpected_frame"
    HELLO_REQUIRED = "hello_required"
    UNSUPPORTED_VERSION = "unsupported_version"
    TRUNCATED = "truncated"
    # Timeouts and server-side conditions: fatal.
    HELLO_TIMEOUT = "hello_timeout"
    IDLE_TIMEOUT = "idle_timeout"
    SLOW_FRAME = "slow_frame"  # a frame begun was not finished in time
    SENDQ_EXCEEDED = "sendq_exceeded"
    SERVER_FULL = "server_full"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    FLOOD = "flood"
    SHUTDOWN = "shutdown"
    RESTART = "restart"  # this node stops, the service goes on: reconnect and resume
    INTERNAL = "internal"
    # Request errors: the request fails, the connection stays.
    NICK_INVALID = "nick_invalid"
    NICK_TAKEN = "nick_taken"
    ROOM_INVALID = "room_invalid"
    ROOM_EXISTS = "room_exists"
    NO_SUCH_ROOM = "no_such_room"
    NOT_MEMBER = "not_member"
    ALREADY_MEMBER = "already_member"
    TEXT_INVALID = "text_invalid"
    TEXT_TOO_LONG = "text_too_long"
    TOPIC_INVALID = "topic_invalid"
    TOO_MANY_ROOMS = "too_many_rooms"
    ROOM_FULL = "room_full"
    RATE_LIMITED = "rate_limited"
    JOIN_DENIED = "join_denied"
    NOT_OWNER = "not_owner"
    NO_SUCH_NICK = "no_such_nick"
    ROOM_LOCKED = "room_locked"
    BANNED = "banned"
    SLOW_MODE = "slow_mode"
    BAD_MODE = "bad_mode"
    BAD_PROOF = "bad_proof"
    BAD_KEY = "bad_key"  # a key that is not a valid Ed25519 public key (small order, ...)
    BAD_ACTION = "bad_action"
    TOO_MANY_OWNERS = "too_many_owners"
    RECIPIENT_LEFT = "recipient_left"  # a direct message's recipient is gone
    ROOM_CLOSED = "room_closed"  # an owner closed the secret room (it was rotated)


class Local(StrEnum):
    """Why a connection ended or could not start, as the client tells it: never
    sent on the wire (the daemon's reasons are :class:`Code`).  A
    :class:`ConnectionClosed` carries one of these or a :class:`Code`."""

    UNREACHABLE = "unreachable"  # no TCP connection (refused, no route, no such host)
    TIMEOUT = "timeout"  # no connection or no hello in time
    TLS_FAILED = "tls_failed"  # the TLS handshake failed (a plaintext daemon?)
    PROXY_FAILED = "proxy_failed"  # the SOCKS5 proxy failed or refused
    HOST_NOT_TRUSTED = "host_not_trusted"  # a new server's key was not accepted
    HOST_KEY_CHANGED = "host_key_changed"  # the key differs from the one in known_hosts
    PIN_MISMATCH = "pin_mismatch"  # the key differs from the pin given (flag or link)
    PLAINTEXT_REFUSED = "plaintext_refused"  # no TLS to a non-loopback address
    BAD_ADDRESS = "bad_address"  # not a host name or IP address (whitespace, a..b, ...)
    EOF = "eof"  # the server closed the connection
    RESET = "reset"  # the connection broke
    CLOSED = "closed"  # we closed it
    QUIT = "quit"  # we said goodbye
    EVENT_QUEUE_FULL = "event_queue_full"  # pushed events were not consumed
    GAVE_UP = "gave_up"  # the reconnect policy stopped trying


#: Codes after which the sender closes the connection.
FATAL_CODES = frozenset(
    {
        Code.FRAME_TOO_LARGE,
        Code.EMPTY_FRAME,
        Code.BAD_FRAME,
        Code.UNKNOWN_TYPE,
        Code.BAD_FIELD,
        Code.UNEXPECTED_FRAME,
        Code.HELLO_REQUIRED,
        Code.UNSUPPORTED_VERSION,
        Code.TRUNCATED,
        Code.HELLO_TIMEOUT,
        Code.IDLE_TIMEOUT,
        Code.SLOW_FRAME,
        Code.SENDQ_EXCEEDED,
        Code.SERVER_FULL,
        Code.TOO_MANY_CONNECTIONS,
        Code.FLOOD,
        Code.SHUTDOWN,
        Code.RESTART,
        Code.INTERNAL,
    }
)


class AnonchatError(Exception):
    """Base of every anonchat error."""


class _CodedError(AnonchatError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


class ProtocolError(_CodedError):
    """The protocol was broken; the connection cannot go on."""


class LocalProtocolError(ProtocolError):
    """We tried to send something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class RequestError(_CodedError):
    """The server refused a request; the connection is still usable."""


class ConnectionClosed(_CodedError):
    """The connection is closed; ``code`` says why (``eof`` if it just ended)."""


class ConfigError(AnonchatError):
    """A configuration value is invalid."""


class Unavailable(AnonchatError):
    """Something the daemon needs (Redis) cannot be reached now: a later try may work."""


class CannotListen(AnonchatError):
    """An address to listen on (the chat's, the metrics') is taken or not this machine's."""


class CryptoError(_CodedError):
    """A secret-room key, seal or open operation failed; ``code`` names the step.

    Raised for every bad input to :mod:`anonchat.crypto`, whatever it is, so a
    client can drop one bad message and go on without catching library errors.
    """
