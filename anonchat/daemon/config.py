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
import tomllib
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


_MAY_BE_ZERO = frozenset({"resume_window", "history"})


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
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"limit {f.name} must be a positive number, not {value!r}")
            if value == 0 and f.name not in _MAY_BE_ZERO:
                raise ConfigError(f"limit {f.name} must be a positive number, not {value!r}")
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
        if (self.cert is None) != (self.key is None):
            raise ConfigError("cert and key must be given together")
        if isinstance(self.node_timeout, bool) or not isinstance(self.node_timeout, int | float):
            raise ConfigError(f"node_timeout must be a number, not {self.node_timeout!r}")
        if not 1 <= self.node_timeout <= 600:
            raise ConfigError("node_timeout must be from 1 to 600 seconds")
        if self.redis is not None and not self.redis.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ConfigError(
                f"redis must be a redis://, rediss:// or unix:// URL, not {self.redis!r}"
            )
        if self.metrics is not None:
            metrics_address(self.metrics)


def metrics_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``PORT`` alone, on loopback) of the metrics endpoint."""
    host, _, port = value.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"metrics must be HOST:PORT, not {value!r}")
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
    were not given leave the file's values alone.
    """
    top: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        _split(data, top, limits, str(path))
    _split({k: v for k, v in overrides.items() if v is not None}, top, limits, "flags")
    try:
        return Config(limits=Limits(**limits), **top)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def _split(data: dict[str, Any], top: dict[str, Any], limits: dict[str, Any], where: str) -> None:
    for key, value in data.items():
        if key == "limits" and isinstance(value, dict):
            _split(value, limits, limits, where)
        elif key in _TOP_KEYS and top is not limits:
            top[key] = value
        elif key in _LIMIT_KEYS:
            limits[key] = value
        else:
            raise ConfigError(f"unknown setting {key!r} in {where}")
    if "port" in top and (type(top["port"]) is not int or not 0 <= top["port"] <= 65535):
        raise ConfigError(f"port must be an integer from 0 to 65535, not {top['port']!r}")
