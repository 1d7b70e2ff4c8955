"""Several nodes as one service, through one Redis server.

Theory of operation.  Every node appends the commands of its sessions (see
``state.py``) to one Redis stream, ``anonchat:log``, and reads the whole
stream back, applying every node's commands in the stream's order.  Redis
gives the order -- one stream, appended to by single commands -- and the
time: a stream entry's id is Redis's clock in milliseconds, so every node
applies a command at the same ``ts``.  So all nodes hold the same rooms,
members, nicks, sequence numbers and rings, and each fans events out to the
members connected to it.  Nothing here is a protocol of our own between
nodes: they never talk to each other, only to Redis.

* **Writing.**  Commands submitted during one pass of the event loop are
  packed (msgpack) into one stream entry; one ``XADD`` is in flight at a
  time, so commands of one session stay in order and a busy node sends few,
  large entries.  Appends are idempotent: each batch of a node has a number,
  and a script (``APPEND``) appends it only if that node's last appended
  number is lower.  A write that timed out or lost its connection is sent
  again, and the copy Redis executed anyway (it was paused, say) appends
  nothing: no command is ever applied twice.
* **Timeouts.**  A write not answered within ``node_timeout`` is given up
  and sent again on a new connection (safe, as above): a connection that
  died silently must not hold the node's writes for ever.  A read waits
  ``READ_BLOCK_MS`` plus ``node_timeout``.  redis-py's own retries are off:
  the loops here retry, and log it.
* **Reading.**  ``XREAD BLOCK`` from the last applied id; every entry is
  applied in order, ours included: a session learns the outcome of its
  command (its ``ok``, or a refusal because another node was first) when
  the command comes back.
* **Liveness.**  Every node appends a ``beat`` every ``node_timeout / 5``
  seconds (never more than one waits: beats queued during an outage would
  all land at one log time).  Applying a beat at log time ``ts``, every node
  counts any node whose last beat is older than ``ts - node_timeout`` as
  gone and ends its sessions: each node decides the same at the same point
  of the stream.  Only a beat of a node whose own beats reached the stream
  without a gap for ``node_timeout`` judges (``state.beat``): after Redis
  was away for everyone, every node has ``node_timeout`` of live stream to
  beat again before anyone is judged.  A
  node stopping cleanly appends ``down`` instead, or, while other nodes are
  alive, ``handover``: its sessions stay, resumable on any node for
  ``resume_window``, and the first beat applied past that ends those nobody
  resumed (``Daemon.handed_over``, ``Daemon.end_orphans``), so a rolling
  restart loses nobody's session.  A node that finds itself
  counted as gone (it could not reach Redis for too long) stops: its
  clients reconnect, to it once it is restarted or to another node.
* **Joining late.**  The live node with the smallest id writes a snapshot of
  the state and the id it was taken at every ``SNAPSHOT_INTERVAL`` seconds
  (``anonchat:snapshot``) and trims the stream up to the *previous*
  snapshot, so a starting node loads the snapshot and applies the stream
  from there.

What Redis holds is what the daemon holds in memory: nicks, rooms, topics,
membership by session id, secret rooms' ids and public join keys, sealed
frames and the public rooms' recent messages (the rings), the hashes of
resume tokens.  No addresses; nothing a node's memory does not hold already.
``docs/operations.md`` says how to run and protect it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, AuthorizationError, RedisError, ResponseError

from ..errors import ConfigError, Unavailable
from ..wire import pack_value, unpack_value
from . import snapshot, state
from .bus import BusStats
from .config import redact, safe_url

if TYPE_CHECKING:
    from .server import Daemon

log = logging.getLogger("anonchat.daemon.redis")

STREAM = "anonchat:log"
SNAPSHOT = "anonchat:snapshot"
#: Seconds between snapshots (written by one node); the stream keeps about two of them.
SNAPSHOT_INTERVAL = 30.0
#: Entries read at once, and how long one read waits for the next (milliseconds).
READ_COUNT = 1000
READ_BLOCK_MS = 1000
#: Commands waiting to be sent past which every session waits for each of its
#: commands (messages too) before reading more: if Redis is slow or away, the
#: backlog is bounded by the number of sessions, and TCP pushes back on clients.
BACKLOG = 10_000
#: Seconds to wait before trying Redis again after an error.
RETRY = 0.5
#: Seconds a node's last batch number is kept (refreshed by every write, a
#: beat at least every node_timeout / 5): only a dead node's ever expires.
WRITTEN_TTL = 86_400

#: Append a node's batch to the stream unless it was appended already (a copy
#: of a write that timed out).  KEYS: the stream, the node's last batch
#: number; ARGV: this batch's number, its commands, WRITTEN_TTL.
APPEND = """
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) <= last then
    return 0
end
redis.call('XADD', KEYS[1], '*', 'c', ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3])
return 1
"""


class RedisBus:
    """The stream of commands every node applies in one order."""

    synchronous = False

    def __init__(self, daemon: Daemon, url: str) -> None:
        self.daemon = daemon
        self.url = url
        self._pending: list[state.Command] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._last_id = b"0-0"  # the last entry applied
        self._snapshot_id = b"0-0"  # where the last snapshot this node wrote was taken
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.stats = BusStats(lambda: len(self._pending), lambda: self._last_id)
        # At most one beat of this node waits to be written: a beat says "alive
        # now", and beats queued during an outage would all land at one log time.
        self._beat_pending = False
        self._beat_in_flight = False
        timeout = daemon.config.node_timeout
        try:
            self._writer: aioredis.Redis = _client(url, timeout)
            self._reader: aioredis.Redis = _client(url, READ_BLOCK_MS / 1000 + timeout)
        except ValueError as exc:  # (what the client finds wrong with the URL)
            raise ConfigError(f"redis URL {safe_url(url)!r}: {redact(str(exc), url)}") from None
        self._append = self._writer.register_script(APPEND)
        self._batch = 0  # the number of this node's last batch
        self._written_key = f"anonchat:written:{daemon.node}"

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Load the others' state, catch up with the stream, announce this node."""
        try:
            await self._writer.ping()
            await self._load_snapshot()
            while await self._read(block=None):
                pass
        except (AuthenticationError, AuthorizationError, ResponseError) as exc:
            # A wrong password or database, or a user not allowed the commands:
            # trying again will not help (exit status 2, like a config mistake).
            raise ConfigError(
                f"Redis at {safe_url(self.url)} refuses this node: {self._safe(exc)}"
            ) from None
        except (RedisError, OSError) as exc:
            # Not up yet, or unreachable: a later start may work (exit status 75).
            raise Unavailable(
                f"cannot reach Redis at {safe_url(self.url)}: {self._safe(exc)}"
            ) from None
        self._beat()
        for coro, name in (
            (self._write_loop(), "writer"),
            (self._read_loop(), "reader"),
            (self._beat_loop(), "beat"),
            (self._snapshot_loop(), "snapshot"),
        ):
            self._tasks.append(asyncio.create_task(coro, name=f"anonchatd-redis-{name}"))
        log.info("node %s joined the service at %s", self.daemon.node, safe_url(self.url))

    async def close(self) -> None:
        """Send what is waiting (at most a few seconds), then stop."""
        self._closing = True
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained(), 3.0)
        # A blocked XREAD does not always give way to cancellation: close its
        # connection under it, and the reader ends on the error.
        with contextlib.suppress(RedisError, OSError):
            await self._reader.connection_pool.disconnect()
        for task in self._tasks:
            task.cancel()
        _, stuck = await asyncio.wait(self._tasks, timeout=2.0)
        if stuck:
            log.warning("%d Redis tasks did not stop", len(stuck))
        for client in (self._writer, self._reader):
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    def _safe(self, exc: BaseException) -> str:
        """An error of the Redis client for a message or a log line: never the password."""
        return redact(str(exc) or type(exc).__name__, self.url)

    async def _drained(self) -> None:
        while self._pending or not self._idle.is_set():
            await self._idle.wait()
            await asyncio.sleep(0)

    # -- writing ---------------------------------------------------------------

    @property
    def backlogged(self) -> bool:
        return len(self._pending) > BACKLOG

    def submit(self, cmd: state.Command) -> None:
        self._pending.append(cmd)
        self._wake.set()

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending, []
                self._beat_in_flight, self._beat_pending = self._beat_pending, False
                self._idle.clear()
                data = pack_value(batch)
                self._batch += 1
                while True:
                    try:
                        await self._append(
                            keys=[STREAM, self._written_key],
                            args=[self._batch, data, WRITTEN_TTL],
                        )
                        self.stats.last_write = time.monotonic()
                        break
                    except (RedisError, OSError) as exc:
                        self.stats.write_errors += 1
                        log.warning("cannot write to Redis (%s); retrying", self._safe(exc))
                        await asyncio.sleep(RETRY)
                self._beat_in_flight = False
                self._idle.set()

    async def _beat_loop(self) -> None:
        interval = max(0.2, self.daemon.config.node_timeout / 5)
        while True:
            await asyncio.sleep(interval)
            self._beat()

    def _beat(self) -> None:
        """Say this node is alive, unless a beat of it is still on its way."""
        if self._beat_pending or self._beat_in_flight:
            return
        self._beat_pending = True
        self.submit(["beat", self.daemon.node, None])

    # -- reading ---------------------------------------------------------------

    async def _read_loop(self) -> None:
        while not self._closing:
            try:
                await self._read(block=READ_BLOCK_MS)
            except (RedisError, OSError) as exc:
                if self._closing:
                    return
                self.stats.read_errors += 1
                log.warning("cannot read from Redis (%s); retrying", self._safe(exc))
                await asyncio.sleep(RETRY)

    async def _read(self, block: int | None) -> int:
        """Apply the next entries of the stream; return how many there were."""
        reply: Any = await self._reader.xread(
            {STREAM: self._last_id}, count=READ_COUNT, block=block
        )
        if not reply:
            return 0
        entries: list[tuple[bytes, dict[bytes, bytes]]] = reply[0][1]
        for entry_id, fields in entries:
            self._apply_entry(entry_id, fields)
        return len(entries)

    def _apply_entry(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        self._last_id = entry_id
        ts = int(entry_id.split(b"-", 1)[0])
        try:
            batch: list[Any] = unpack_value(fields[b"c"])
        except (KeyError, ValueError):
            log.error("stream entry %s is not ours; skipped", entry_id.decode())
            return
        for cmd in batch:
            try:
                state.apply(self.daemon, cmd, ts)
            except Exception:
                # The same input fails the same way on every node; log it, go on.
                log.exception("cannot apply command %r", cmd[:2])

    async def probe(self) -> tuple[int, bytes] | None:
        """The stream's length and the id of its last entry (for the metrics), or
        None when Redis cannot tell now."""
        try:
            info: Any = await self._writer.xinfo_stream(STREAM)
        except (RedisError, OSError):
            return None
        return int(info["length"]), bytes(info["last-generated-id"])

    # -- snapshots ---------------------------------------------------------------

    async def _load_snapshot(self) -> None:
        data: Any = await self._writer.get(SNAPSHOT)
        if data is None:
            return
        taken_at = snapshot.load(self.daemon, data)
        self._last_id = taken_at
        log.info("loaded the service's state as of %s", taken_at.decode())

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_INTERVAL)
            nodes = self.daemon.nodes
            if not nodes or min(nodes) != self.daemon.node:
                continue  # another node writes them
            try:
                await self.write_snapshot()
            except (RedisError, OSError) as exc:
                self.stats.snapshot_failures += 1
                log.warning("cannot write a snapshot (%s)", self._safe(exc))

    async def write_snapshot(self) -> None:
        """Store the state as of the last applied entry; trim before the previous one."""
        taken_at = self._last_id
        data = snapshot.dump(self.daemon, taken_at)  # no await between reading and dumping
        await self._writer.set(SNAPSHOT, data)
        self.stats.snapshots += 1
        self.stats.snapshot_at = time.monotonic()
        self.stats.snapshot_bytes = len(data)
        previous, self._snapshot_id = self._snapshot_id, taken_at
        if previous != b"0-0":
            await self._writer.xtrim(STREAM, minid=previous)


def _client(url: str, timeout: float) -> aioredis.Redis:
    """A Redis client whose commands time out after ``timeout`` seconds and are
    not retried by redis-py (the bus's loops retry, idempotently)."""
    return aioredis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        socket_keepalive=True,
        retry=Retry(NoBackoff(), 0),
    )
