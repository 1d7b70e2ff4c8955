"""Daemon configuration: defaults, a TOML file, then command-line flags.

Every limit is named here with its default; ``docs/operations.md`` lists them
with what each protects.  A TOML file may set any of them at the top level or
under ``[limits]``::

    host = "0.0.0.0"
    port = 7667
    [limits]
    max_text = 2000
    idle_timeout = 300
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..events import TEXT_MAX
from ..wire import DEFAULT_MAX_FRAME

DEFAULT_PORT = 7667
#: The smallest and largest ciphertext of a direct message (padding buckets plus the tag).
DM_CT_MIN = 256 + 16
DM_CT_MAX = 4096 + 16
MIN_FRAME = 8192
#: The log levels a config may name (in any case).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


_MAY_BE_ZERO = frozenset({"resume_window", "history"})
#: The most any limit in seconds may be: past a day it is a typo, not a wish
#: (and the event loop's timers cannot take an endless one).
MAX_SECONDS = 86_400
#: The most any other limit may be, and those that size memory at start.
MAX_NUMBER = 2**62
_MAX = {"read_size": 16 * 1024 * 1024, "sendq": 1 << 30}


@dataclass(frozen=True)
class Limits:
    """Per-connection and per-daemon limits; all sizes in bytes, times in seconds."""

    max_frame: int = DEFAULT_MAX_FRAME  # largest frame body accepted or sent
    max_text: int = 3072  # UTF-8 bytes of one message's text
    sendq: int = 1024 * 1024  # bytes waiting for a slow reader before it is dropped
    max_connections: int = 20_000  # connections held at once
    max_rooms_per_session: int = 50  # rooms one connection may be in
    max_members_per_room: int = 10_000  # members of one room
    max_rooms: int = 10_000  # public rooms on the daemon
    hello_timeout: float = 10.0  # time to send hello after connecting
    ping_interval: float = 30.0  # silence after which the daemon pings
    idle_timeout: float = 90.0  # silence after which the connection is closed
    read_size: int = 65_536  # bytes read from a socket at once
    resume_window: float = 120.0  # seconds a dropped session waits to be resumed
    ring_frames: int = 512  # recent events each room keeps for resume and history
    ring_bytes: int = 512 * 1024  # ... and at most this many bytes of them
    history: int = 20  # recent messages a newcomer gets on joining (0: none)
    join_burst: int = 5  # secret-room join attempts allowed at once per connection
    join_interval: float = 10.0  # seconds per further attempt (slows passphrase guessing)
    msg_burst: int = 20  # messages (say, seal) one connection may send at once
    msg_rate: float = 10.0  # ... and then per second (rate_limited past it)
    announce_burst: int = 20  # secret-room announcements (hello, here) at once per connection
    announce_rate: float = 2.0  # ... and then per second (their own budget, not msg_burst's)
    room_join_burst: int = 50  # public-room joins and creates at once per connection
    room_join_interval: float = 1.0  # seconds per further join (bounds presence churn)
    bytes_burst: int = 256 * 1024  # bytes one connection may send at once
    bytes_rate: int = 64 * 1024  # ... and then per second (reading pauses past it)
    flood_strikes: int = 20  # refusals past which a connection is closed with flood
    max_per_address: int = 16  # connections from one IPv4 address or one IPv6 /64
    # -- hostile clients (issue 14): what one address, and everyone together,
    # can make the daemon hold or spend; docs/operations.md, "Limits".
    max_resumable_per_address: int = 16  # lost sessions awaiting resume, per address
    max_resumable: int = 20_000  # ... and on this node in all (the oldest ends first)
    nick_burst: int = 5  # nick changes one address may make at once (all its connections)
    nick_interval: float = 10.0  # seconds per further change (rate_limited past it)
    query_burst: int = 10  # list and who requests one address may make at once
    query_interval: float = 2.0  # seconds per further one (rate_limited past it)
    connect_burst: int = 20  # connections one address may open at once
    connect_interval: float = 0.5  # seconds per further one (closed unanswered past it)
    max_handshakes_per_address: int = 8  # TLS handshakes in progress per address
    max_handshakes: int = 1000  # ... and in all (more are closed unanswered)
    # -- direct messages (issue 20): per connection, apart from room messages.
    dm_burst: int = 10  # direct messages one connection may send at once
    dm_rate: float = 2.0  # ... and then per second (rate_limited past it)
    dm_max_bytes: int = 4112  # largest ciphertext of one (a padding bucket plus the 16-byte tag)
    dm_ring: int = 32  # direct messages kept per recipient for a resume (memory only)
    frame_timeout: float = 30.0  # seconds a started frame has to arrive whole
    max_unfinished: int = 32 * 1024 * 1024  # bytes of unfinished frames held in all

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_limit(f.name, f.type, getattr(self, f.name))
        if not MIN_FRAME <= self.max_frame <= DEFAULT_MAX_FRAME:
            # Clients decode with the protocol's 64 KiB ceiling: a daemon may be stricter
            # only; and the largest sealed message (4 KiB bucket plus fields) must fit.
            raise ConfigError(f"limit max_frame must be from {MIN_FRAME} to {DEFAULT_MAX_FRAME}")
        if self.max_text > TEXT_MAX:
            raise ConfigError(f"limit max_text must be at most {TEXT_MAX}")
        if self.max_text + 1024 > self.max_frame:
            raise ConfigError("limit max_text must leave 1 KiB of room below max_frame")
        if self.ping_interval >= self.idle_timeout:
            raise ConfigError("ping_interval must be shorter than idle_timeout")
        if not DM_CT_MIN <= self.dm_max_bytes <= DM_CT_MAX:
            raise ConfigError(f"limit dm_max_bytes must be from {DM_CT_MIN} to {DM_CT_MAX}")
        if self.max_unfinished < self.max_frame:
            raise ConfigError("limit max_unfinished must be at least max_frame")


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    limits: Limits = field(default_factory=Limits)
    log_level: str = "INFO"
    plaintext: bool = False  # no TLS: only for development on loopback
    state_dir: str | None = None  # where the key and certificate live (made on first start)
    cert: str | None = None  # a certificate (PEM) to use instead of the self-signed one
    key: str | None = None  # its private key (PEM)
    redis: str | None = None  # redis://HOST:PORT/DB shared by several nodes (None: one node)
    node_timeout: float = 10.0  # seconds without a heartbeat after which a node counts as gone
    metrics: str | None = None  # HOST:PORT for aggregate Prometheus metrics (None: off)

    def __post_init__(self) -> None:
        if not isinstance(self.limits, Limits):
            raise ConfigError(f"limits must be a table of limits, not {show(self.limits)}")
        for name in ("host", "log_level"):
            _check_text(name, getattr(self, name))
        for name in ("state_dir", "cert", "key", "redis", "metrics"):
            if getattr(self, name) is not None:
                _check_text(name, getattr(self, name))
        if type(self.port) is not int or not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be an integer from 0 to 65535, not {show(self.port)}")
        if self.log_level.upper() not in LOG_LEVELS:
            raise ConfigError(
                f"log_level must be one of {', '.join(LOG_LEVELS)}, not {show(self.log_level)}"
            )
        object.__setattr__(self, "log_level", self.log_level.upper())
        if type(self.plaintext) is not bool:
            raise ConfigError(f"plaintext must be true or false, not {show(self.plaintext)}")
        if (self.cert is None) != (self.key is None):
            raise ConfigError("cert and key must be given together")
        if (
            isinstance(self.node_timeout, bool)
            or not isinstance(self.node_timeout, int | float)
            or not 1 <= self.node_timeout <= 600  # (false for nan too)
        ):
            raise ConfigError(
                f"node_timeout must be a number of seconds from 1 to 600, "
                f"not {show(self.node_timeout)}"
            )
        if self.redis is not None:
            check_redis_url(self.redis)
        if self.metrics is not None:
            metrics_address(self.metrics)


def show(value: object) -> str:
    """A setting's value for a one-line message: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} must be a non-empty string, not {show(value)}")
    if "\0" in value:
        raise ConfigError(f"{name} must not contain a NUL character")


def _check_limit(name: str, kind: object, value: object) -> None:
    """A limit is a finite number of its type, positive (or zero where that means
    "off"), and at most its ceiling; ``kind`` is the field's annotation."""
    what = f"limit {name}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{what} must be a positive number, not {show(value)}")
    if kind in ("int", int) and not isinstance(value, int):
        raise ConfigError(f"{what} must be a whole number, not {show(value)}")
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number, not {show(value)}")
    if value < 0 or (value == 0 and name not in _MAY_BE_ZERO):
        raise ConfigError(f"{what} must be a positive number, not {show(value)}")
    seconds = kind in ("float", float) and not name.endswith("_rate")  # (rates: per second)
    ceiling = MAX_SECONDS if seconds else _MAX.get(name, MAX_NUMBER)
    if value > ceiling:
        unit = " (seconds)" if seconds else ""
        raise ConfigError(f"{what} must be at most {ceiling}{unit}, not {show(value)}")


def check_redis_url(url: str) -> None:
    """``redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]``, ``rediss://...`` or
    ``unix://[[USER]:PASSWORD@]/PATH[?db=DB]``; the password is never shown."""
    safe = safe_url(url)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"redis must be a redis://, rediss:// or unix:// URL, not {safe!r}")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not one)
    except ValueError:
        raise ConfigError(f"redis must be a URL with a valid port, not {safe!r}") from None
    if parts.scheme == "unix":
        if not parts.path:
            raise ConfigError(f"redis must name the socket's path, not {safe!r}")
        return
    if not parts.hostname:
        raise ConfigError(f"redis must name the Redis host, not {safe!r}")
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        raise ConfigError(f"redis must end in a database number (/0), not {safe!r}")


def safe_url(url: str) -> str:
    """``url`` without its user and password (``***@``), for every message and log line."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    host, slash, tail = rest.partition("/")
    if "@" in host:
        host = "***@" + host.rpartition("@")[2]
    return scheme + sep + host + slash + tail


def redact(text: str, url: str | None) -> str:
    """``text`` (an error from the Redis client, say) with ``url``'s password,
    and the URL itself, replaced: whatever a library echoes, it is not shown."""
    if not url:
        return text
    text = text.replace(url, safe_url(url))
    userinfo = url.partition("://")[2].partition("/")[0].rpartition("@")[0]
    for secret in {userinfo, userinfo.partition(":")[2], urllib.parse.unquote(userinfo)}:
        if secret and secret != ":":
            text = text.replace(secret, "***")
    return text


def metrics_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``PORT`` alone, on loopback) of the metrics endpoint."""
    if not isinstance(value, str):
        raise ConfigError(f'metrics must be a string "HOST:PORT", not {show(value)}')
    host, _, port = value.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isascii() or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"metrics must be HOST:PORT, not {show(value)}")
    return host, int(port)


_TOP_KEYS = {
    "host",
    "port",
    "log_level",
    "plaintext",
    "state_dir",
    "cert",
    "key",
    "redis",
    "node_timeout",
    "metrics",
}
_LIMIT_KEYS = {f.name for f in dataclasses.fields(Limits)}


def load_config(path: str | Path | None, **overrides: Any) -> Config:
    """Build a :class:`Config` from defaults, a TOML file, then explicit overrides.

    ``overrides`` whose value is ``None`` are ignored, so command-line flags that
    were not given leave the file's values alone.  Any mistake is a
    :class:`ConfigError` of one line naming the setting and its value.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_bytes().decode("utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"config file {path} is not UTF-8 text (byte {exc.start} is not)"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return config_from(data, str(path), {k: v for k, v in overrides.items() if v is not None})


def config_from(data: dict[str, Any], where: str, flags: dict[str, Any] | None = None) -> Config:
    """A :class:`Config` from a parsed TOML document (``where`` names it), then ``flags``."""
    top: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    _split(data, top, limits, where)
    _split(flags or {}, top, limits, "flags", override=True)
    return Config(limits=Limits(**limits), **top)


def _split(
    data: dict[str, Any],
    top: dict[str, Any],
    limits: dict[str, Any],
    where: str,
    *,
    override: bool = False,
) -> None:
    for key, value in data.items():
        if key == "limits" and top is not limits:
            if not isinstance(value, dict):
                raise ConfigError(f"limits must be a table ([limits]), not {show(value)}")
            _split(value, limits, limits, where, override=override)
        elif key in _TOP_KEYS and top is not limits:
            top[key] = value
        elif key in _LIMIT_KEYS:
            if key in limits and not override:
                # (both at the top level and under [limits]: one would be ignored)
                raise ConfigError(f"limit {key} is set twice in {where}")
            limits[key] = value
        else:
            raise ConfigError(f"unknown setting {show(key)} in {where}")
