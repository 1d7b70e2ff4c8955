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
  regularly (no gap over half of it) for ``node_timeout`` judges
  (``state.beat``): after Redis
  was away for everyone, every node has ``node_timeout`` of live stream to
  beat again before anyone is judged.  A
  node stopping cleanly appends ``down`` instead, or, while other nodes are
  alive, ``handover``: its sessions stay, resumable on any node for
  ``resume_window``, and the first beat applied past that ends those nobody
  resumed (``state.handed_over``, ``state.end_orphans``), so a rolling
  restart loses nobody's session.  A node that finds itself
  counted as gone (it could not reach Redis for too long) stops: its
  clients reconnect, to it once it is restarted or to another node.
* **Joining late.**  The live node with the smallest id writes a snapshot of
  the state and the id it was taken at every ``SNAPSHOT_INTERVAL`` seconds
  (in parts of ``SNAPSHOT_PART`` bytes, named by ``anonchat:snapshot``) and
  trims the stream up to the *previous* snapshot, so a starting node loads
  the snapshot and applies the stream from there.
* **A stream that proves it is whole.**  A stream has an identity
  (``anonchat:epoch``), set with its first entry (``begin``); appends and
  snapshots check it.  If Redis restarts empty, the first node whose write
  finds no epoch restores the stream from its own state (``_stream_lost``):
  a snapshot and a ``begin`` entry naming the point it was taken at.  A node
  that had applied exactly that much takes the new stream over
  (``_begin_entry``); any other stops (``Daemon.lose``).  A starting node
  without an epoch waits two beats for a running node to restore one
  before it begins a new service.

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
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, AuthorizationError, RedisError, ResponseError

from ..errors import ConfigError, Unavailable
from ..plural import plural
from ..wire import pack_value, unpack_value
from . import commands, snapshot, state
from .bus import BusStats
from .commands import Command
from .config import redact, safe_url
from .shared import SharedState, settings_differ

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
#: Seconds between two log lines of one outage (see Outage): the first error
#: is logged at once, then a reminder at most this often, then the recovery.
OUTAGE_REMIND = 30.0
#: Seconds a node's last batch number is kept (refreshed by every write, a
#: beat at least every node_timeout / 5): only a dead node's ever expires.
WRITTEN_TTL = 86_400

EPOCH = "anonchat:epoch"
#: Bytes of one part of a snapshot: below the smallest ``proto-max-bulk-len``
#: Redis allows (1 MB), so a snapshot of any size can be stored.
SNAPSHOT_PART = 512 * 1024
#: Parts sent or fetched in one round trip.
SNAPSHOT_BATCH = 32

#: Append a node's batch to the stream unless it was appended already (a copy
#: of a write that timed out), and only to the stream this node knows (the
#: epoch): a Redis that restarted empty takes nothing until a node restored
#: it.  KEYS: the stream, the node's last batch number, the epoch; ARGV: this
#: batch's number, its commands, WRITTEN_TTL, the epoch, the node.  The entry
#: names its node and number, so the node sees its own come back.  Returns 1 (appended),
#: 0 (a copy: appended before) or -1 (not this stream).
APPEND = """
if redis.call('GET', KEYS[3]) ~= ARGV[4] then
    return -1
end
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) <= last then
    return 0
end
redis.call('XADD', KEYS[1], '*', 'c', ARGV[2], 'n', ARGV[5], 'b', ARGV[1])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3])
return 1
"""

#: Make the snapshot whose parts were stored the current one, and trim the
#: stream before the previous one, if the epoch is still ours.  KEYS: the
#: epoch, the snapshot, the stream; ARGV: the epoch, the snapshot's header,
#: the id to trim before ('' for none).  Returns the previous header (its
#: parts are to be deleted), '' without one, or -1 (not our stream).
SET_SNAPSHOT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return -1
end
local previous = redis.call('GET', KEYS[2]) or ''
redis.call('SET', KEYS[2], ARGV[2])
if ARGV[3] ~= '' then
    redis.call('XTRIM', KEYS[3], 'MINID', ARGV[3])
end
return previous
"""

#: Begin a stream: a new service, or one restored by a running node after
#: Redis lost it.  Unless some node did first, replace stream and snapshot,
#: append the first entry and set the epoch.  KEYS: the epoch, the snapshot,
#: the stream; ARGV: the new epoch, the snapshot's header ('' for none), the
#: first entry's id, its commands.  Returns the epoch now in force.
BEGIN = """
local current = redis.call('GET', KEYS[1])
if current then
    return current
end
redis.call('DEL', KEYS[3])
if ARGV[2] == '' then
    redis.call('DEL', KEYS[2])
else
    redis.call('SET', KEYS[2], ARGV[2])
end
redis.call('XADD', KEYS[3], ARGV[3], 'c', ARGV[4])
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""


#: The snapshot header's format (``snapshot.VERSION`` is its body's).
HEADER_VERSION = 1


class Outage:
    """The errors of one kind of call to Redis (writing, or reading), logged
    as outages: the first error at once, then at most one reminder every
    ``OUTAGE_REMIND`` seconds with how long it has lasted and how many tries
    failed, then one line when a call works again.  (Each failed try used
    to be a line of its own: with Redis refusing connections, two lines every
    ``RETRY`` seconds on every node for as long as it lasted.)"""

    def __init__(self, doing: str, done: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.doing, self.done = doing, done  # "write to", "wrote to"
        self.clock = clock
        self.since: float | None = None  # when the outage began
        self.tries = 0  # failed tries in it
        self._said = 0.0  # when it was last logged

    def failed(self, error: str) -> None:
        now = self.clock()
        self.tries += 1
        if self.since is None:
            self.since = self._said = now
            log.warning("cannot %s Redis (%s); retrying", self.doing, error)
        elif now - self._said >= OUTAGE_REMIND:
            self._said = now
            log.warning(
                "still cannot %s Redis after %.0f s (%s; the last: %s); retrying",
                self.doing,
                now - self.since,
                plural(self.tries, "failed try", "failed tries"),
                error,
            )

    def worked(self) -> None:
        if self.since is None:
            return
        log.warning(
            "%s Redis again after %.1f s (%s)",
            self.done,
            self.clock() - self.since,
            plural(self.tries, "failed try", "failed tries"),
        )
        self.since, self.tries = None, 0


class Lost(Exception):
    """This node cannot go on with the stream in Redis (it lost its place)."""


class RedisBus:
    """The stream of commands every node applies in one order."""

    synchronous = False

    def __init__(self, shared: SharedState, url: str) -> None:
        self.shared = shared
        self.url = url
        self._pending: list[Command] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._last_id = b"0-0"  # the last entry applied
        self._before = b"0-0"  # the entry applied before it
        self._snapshot_id = b"0-0"  # where the last snapshot this node wrote was taken
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.stats = BusStats(lambda: len(self._pending), lambda: self._last_id)
        # At most one beat of this node waits to be written: a beat says "alive
        # now", and beats queued during an outage would all land at one log time.
        self._beat_pending = False
        self._beat_in_flight = False
        timeout = shared.node_timeout
        # A tenth of node_timeout at most: after an outage every node's writes
        # must be back well within the time the judges wait (state.beat).
        self._retry = min(RETRY, timeout / 10)
        try:
            self._writer: aioredis.Redis = _client(url, timeout)
            self._reader: aioredis.Redis = _client(url, READ_BLOCK_MS / 1000 + timeout)
            # Snapshots have a client of their own: a large one must not hold the
            # connection the commands go through.
            self._snapshots: aioredis.Redis = _client(url, max(timeout, 60.0))
        except ValueError as exc:  # (what the client finds wrong with the URL)
            raise ConfigError(f"redis URL {safe_url(url)!r}: {redact(str(exc), url)}") from None
        self._append = self._writer.register_script(APPEND)
        self._begin = self._writer.register_script(BEGIN)
        self._set_snapshot = self._snapshots.register_script(SET_SNAPSHOT)
        self._batch = 0  # the number of this node's last batch
        self._written_key = f"anonchat:written:{shared.node}"
        self._node_bytes = shared.node.encode()
        # Batches written but not read back yet, oldest first: if Redis loses
        # the stream, they are written again to the restored one.
        self._unread: deque[tuple[int, bytes]] = deque()
        # The stream this node reads and writes: set by its first entry (see
        # _begin_entry) or the snapshot it started from.
        self._epoch: bytes | None = None
        self._beginning: bytes | None = None  # the epoch of a stream this node restores
        self._write_outage = Outage("write to", "wrote to")
        self._read_outage = Outage("read from", "read from")

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Load the others' state, catch up with the stream, announce this node."""
        try:
            await self._writer.ping()
            await self._join_stream()
            self.shared.replaying = True
            try:
                while await self._read(block=None):
                    pass
            finally:
                self.shared.replaying = False
            if self._epoch is None:
                raise Lost("the stream in Redis does not begin where its snapshot ends")
            self._check_settings()
        except (AuthenticationError, AuthorizationError, ResponseError) as exc:
            # A wrong password or database, or a user not allowed the commands:
            # trying again will not help (exit status 2, like a config mistake).
            await self._disconnect()
            raise ConfigError(
                f"Redis at {safe_url(self.url)} refuses this node: {self._safe(exc)}"
            ) from None
        except (RedisError, OSError) as exc:
            # Not up yet, or unreachable: a later start may work (exit status 75).
            await self._disconnect()
            raise Unavailable(
                f"cannot reach Redis at {safe_url(self.url)}: {self._safe(exc)}"
            ) from None
        except ConfigError:  # (other settings than the running nodes')
            await self._disconnect()
            raise
        except Lost as exc:
            # The stream cannot be proved whole now: a later start may work.
            await self._disconnect()
            raise Unavailable(f"cannot join the service at {safe_url(self.url)}: {exc}") from None
        self._beat()
        for coro, name in (
            (self._write_loop(), "writer"),
            (self._read_loop(), "reader"),
            (self._beat_loop(), "beat"),
            (self._snapshot_loop(), "snapshot"),
        ):
            self._tasks.append(asyncio.create_task(coro, name=f"anonchatd-redis-{name}"))
        log.info("node %s joined the service at %s", self.shared.node, safe_url(self.url))

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
        await self._disconnect()

    async def _disconnect(self) -> None:
        for client in (self._writer, self._reader, self._snapshots):
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

    def submit(self, cmd: Command) -> None:
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
                data = pack_value([cmd.to_list() for cmd in batch])
                self._batch += 1
                while True:
                    try:
                        if await self._write(self._batch, data):
                            self.stats.last_write = time.monotonic()
                            self._write_outage.worked()
                            break
                        await self._stream_lost()
                        # What this node wrote to the lost stream and had not read
                        # back is in nobody's state: write it again, in order (this
                        # batch too: the loop's next try finds it written).
                        for number, unread in list(self._unread):
                            if not await self._write(number, unread, again=True):
                                raise Lost("Redis lost the service's stream again")
                    except (RedisError, OSError) as exc:
                        self.stats.write_errors += 1
                        self._write_outage.failed(self._safe(exc))
                        await asyncio.sleep(self._retry)
                    except Lost as exc:
                        self.shared.lose(str(exc))
                        self._pending = []
                        self._idle.set()
                        return
                self._beat_in_flight = False
                self._idle.set()

    async def _write(self, number: int, data: bytes, again: bool = False) -> bool:
        """Append batch ``number`` unless it was before; False: not our stream."""
        if not again and (not self._unread or self._unread[-1][0] < number):
            # Before sending: the reader may read it back before the reply comes.
            self._unread.append((number, data))
        done = await self._append(
            keys=[STREAM, self._written_key, EPOCH],
            args=[number, data, WRITTEN_TTL, self._epoch or b"", self.shared.node],
        )
        return bool(done != -1)

    async def _beat_loop(self) -> None:
        interval = max(0.2, self.shared.node_timeout / 5)
        while True:
            await asyncio.sleep(interval)
            self._beat()

    def _beat(self) -> None:
        """Say this node is alive, unless a beat of it is still on its way."""
        if self._beat_pending or self._beat_in_flight:
            return
        self._beat_pending = True
        self.submit(commands.Beat(self.shared.node, self.shared.settings))

    def _check_settings(self) -> None:
        """Refuse to join nodes that apply commands with other settings."""
        for node, settings in self.shared.node_settings.items():
            diff = settings_differ(self.shared.settings, settings)
            if diff and node in self.shared.nodes:
                raise ConfigError(
                    f"this node's settings differ from those of node {node} of the "
                    f"service: {diff}; every node must have the same "
                    f"({', '.join(self.shared.settings)})"
                )

    # -- reading ---------------------------------------------------------------

    async def _read_loop(self) -> None:
        while not self._closing:
            try:
                await self._read(block=READ_BLOCK_MS)
                self._read_outage.worked()
            except Lost as exc:
                self.shared.lose(str(exc))
                return
            except (RedisError, OSError) as exc:
                if self._closing:
                    return
                self.stats.read_errors += 1
                self._read_outage.failed(self._safe(exc))
                await asyncio.sleep(self._retry)

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
        before, self._last_id = self._last_id, entry_id
        self._before = before
        if fields.get(b"n") == self._node_bytes:
            number = int(fields.get(b"b", 0))
            while self._unread and self._unread[0][0] <= number:
                self._unread.popleft()
        ts = int(entry_id.split(b"-", 1)[0])
        try:
            batch: list[Any] = unpack_value(fields[b"c"])
        except (KeyError, ValueError):
            log.error("stream entry %s is not ours; skipped", entry_id.decode())
            return
        if batch and isinstance(batch[0], list) and batch[0][:1] == ["begin"]:
            begin = commands.from_list(batch[0])
            assert isinstance(begin, commands.Begin)
            self._begin_entry(begin.epoch, begin.taken_at)
            return
        for raw in batch:
            try:
                state.apply_list(self.shared, raw, ts)
            except Exception:
                # The same input fails the same way on every node; log it, go on.
                log.exception("cannot apply command %r", raw[:2] if isinstance(raw, list) else raw)

    # -- the stream's identity (epoch) ------------------------------------------

    def _begin_entry(self, epoch: bytes, taken_at: bytes) -> None:
        """The first entry of a stream: a new service (``taken_at`` 0-0), or a
        node restored the stream from its state as of ``taken_at`` after Redis
        lost it.  A node that had applied exactly that much holds that state:
        it goes on with the new stream; any other cannot."""
        if epoch == self._epoch:
            return  # (we began it)
        if self._before != taken_at:
            raise Lost(
                "Redis lost the service's stream and another node restored it from "
                f"a state this node does not hold (as of {taken_at.decode()}, "
                f"this node at {self._before.decode()})"
            )
        if self._epoch is not None and epoch != self._beginning:
            log.warning("Redis had lost the service's stream; another node restored it")
        self._epoch = epoch

    async def _join_stream(self) -> None:
        """Find the stream of the service (or begin one) and load its snapshot.

        A stream is whole when its epoch is set: Redis lost nothing since it
        began.  Without an epoch, Redis is new or lost everything; the running
        nodes, if any, restore it at their next write (a beat at least every
        node_timeout / 5), so wait two beats before beginning a new service."""
        epoch: Any = await self._writer.get(EPOCH)
        if epoch is None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 2 * max(0.2, self.shared.node_timeout / 5) + self._retry
            while epoch is None and loop.time() < deadline:
                await asyncio.sleep(0.1)
                epoch = await self._writer.get(EPOCH)
        if epoch is None:
            if await self._writer.exists(STREAM, SNAPSHOT):
                log.warning("Redis holds a stream no running node vouches for; starting anew")
            new = secrets.token_hex(8).encode()
            entry = pack_value([commands.Begin(self.shared.node, new, b"0-0").to_list()])
            epoch = await self._begin(keys=[EPOCH, SNAPSHOT, STREAM], args=[new, b"", "*", entry])
            if epoch == new:
                log.info("began a new service at %s", safe_url(self.url))
                return  # the catch-up reads the first entry, as any node's
        for _ in range(5):  # (a snapshot replaced while we read it: read the new one)
            header = await self._read_header()
            if header is None:
                return  # no snapshot yet: the stream from its first entry
            if header["epoch"] != epoch:
                raise Lost("the snapshot in Redis is not of the stream there")
            data = await self._read_parts(header)
            if data is not None:
                taken_at = snapshot.load(self.shared, data)
                self._last_id = self._before = taken_at
                self._epoch = epoch
                log.info("loaded the service's state as of %s", taken_at.decode())
                return
        raise Lost("the snapshot in Redis kept changing while it was read")

    async def _stream_lost(self) -> None:
        """A write found another stream than ours (or none): Redis restarted
        empty or was flushed.  Restore it from this node's state, unless
        another node did first; then this node goes on only if it holds the
        state the other node restored (``_begin_entry``)."""
        current = await self._writer.get(EPOCH)
        if current is None:
            log.warning("Redis lost the service's stream; restoring it from this node's state")
            taken_at = self._last_id
            data = snapshot.dump(self.shared, taken_at)  # no await between the two
            new = secrets.token_hex(8).encode()
            header = await self._write_parts(data, new, taken_at)
            ms = int(taken_at.split(b"-", 1)[0])
            entry = pack_value([commands.Begin(self.shared.node, new, taken_at).to_list()])
            self._beginning = new
            current = await self._begin(
                keys=[EPOCH, SNAPSHOT, STREAM], args=[new, header, f"{ms + 1}-0", entry]
            )
            if current == new:
                # Nothing was applied since the dump (the stream was empty), so the
                # reader takes the first entry as any node's; it may have already.
                self._epoch = new
                self._snapshot_id = taken_at
                return
            await self._delete_parts(header)  # another node restored it first
        # Another node began the stream: wait until the reader has read its
        # first entry (and taken it over, or found this node cannot).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2 * self.shared.node_timeout + READ_BLOCK_MS / 1000
        while self._epoch != current and not self.shared.stopping():
            if loop.time() > deadline:
                raise Lost(
                    "Redis lost the service's stream and this node cannot follow its new one"
                )
            await asyncio.sleep(0.05)

    async def probe(self) -> tuple[int, bytes] | None:
        """The stream's length and the id of its last entry (for the metrics), or
        None when Redis cannot tell now."""
        try:
            info: Any = await self._writer.xinfo_stream(STREAM)
        except (RedisError, OSError):
            return None
        return int(info["length"]), bytes(info["last-generated-id"])

    # -- snapshots ---------------------------------------------------------------

    async def _read_header(self) -> dict[str, Any] | None:
        raw: Any = await self._snapshots.get(SNAPSHOT)
        if raw is None:
            return None
        try:
            header: dict[str, Any] = unpack_value(raw)
            if (
                not isinstance(header, dict)
                or header.get("v") != HEADER_VERSION
                or not {"epoch", "at", "id", "parts", "size"} <= set(header)
            ):
                raise ValueError("not a snapshot header of this version")
        except ValueError as exc:
            raise Lost(f"the snapshot in Redis is not one this version reads ({exc})") from None
        return header

    def _part_keys(self, header: dict[str, Any]) -> list[str]:
        return [f"{SNAPSHOT}:{header['id']}:{i}" for i in range(header["parts"])]

    async def _read_parts(self, header: dict[str, Any]) -> bytes | None:
        """The snapshot's bytes, or None if a part is gone (a newer one replaced it)."""
        keys = self._part_keys(header)
        chunks: list[bytes] = []
        for i in range(0, len(keys), SNAPSHOT_BATCH):
            got: list[Any] = await self._snapshots.mget(keys[i : i + SNAPSHOT_BATCH])
            if any(part is None for part in got):
                return None
            chunks.extend(got)
        data = b"".join(chunks)
        return data if len(data) == header["size"] else None

    async def _write_parts(self, data: bytes, epoch: bytes, taken_at: bytes) -> bytes:
        """Store a snapshot's parts; return its header (not yet the current one)."""
        header = {
            "v": HEADER_VERSION,
            "epoch": epoch,
            "at": taken_at,
            "id": secrets.token_hex(8),
            "parts": max(1, -(-len(data) // SNAPSHOT_PART)),
            "size": len(data),
        }
        keys = self._part_keys(header)
        for i in range(0, len(keys), SNAPSHOT_BATCH):
            async with self._snapshots.pipeline(transaction=False) as pipe:
                for n in range(i, min(i + SNAPSHOT_BATCH, len(keys))):
                    pipe.set(keys[n], data[n * SNAPSHOT_PART : (n + 1) * SNAPSHOT_PART])
                await pipe.execute()
        return pack_value(header)

    async def _delete_parts(self, packed: bytes) -> None:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            keys = self._part_keys(unpack_value(packed))
            for i in range(0, len(keys), SNAPSHOT_BATCH):
                await self._snapshots.delete(*keys[i : i + SNAPSHOT_BATCH])

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_INTERVAL)
            nodes = self.shared.nodes
            if not nodes or min(nodes) != self.shared.node:
                continue  # another node writes them
            try:
                await self.write_snapshot()
            except (RedisError, OSError) as exc:
                # Logged every time; the commands go on through their own connection.
                self.stats.snapshot_failures += 1
                log.error(
                    "cannot write a snapshot (%s); the stream is not trimmed meanwhile",
                    self._safe(exc),
                )

    async def write_snapshot(self) -> None:
        """Store the state as of the last applied entry; trim before the previous one."""
        epoch, taken_at = self._epoch, self._last_id
        data = snapshot.dump(self.shared, taken_at)  # no await between reading and dumping
        if epoch is None:
            return
        header = await self._write_parts(data, epoch, taken_at)
        trim = self._snapshot_id if self._snapshot_id != b"0-0" else b""
        previous = await self._set_snapshot(
            keys=[EPOCH, SNAPSHOT, STREAM], args=[epoch, header, trim]
        )
        if previous == -1:  # the stream was lost meanwhile: the writer restores it
            await self._delete_parts(header)
            return
        self.stats.snapshots += 1
        self.stats.snapshot_at = time.monotonic()
        self.stats.snapshot_bytes = len(data)
        self._snapshot_id = taken_at
        if previous:
            await self._delete_parts(previous)


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
