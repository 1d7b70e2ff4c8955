"""Rate limits: token buckets per connection, and connections per address.

Theory of operation.  Every connection has buckets (:class:`SessionLimiter`),
each a number until it is used; two of them it shares with every other
connection of its address:

* **messages** (``say``, ``seal`` of kind msg or me, ``secret_act``): ``msg_burst``
  at once, then ``msg_rate`` per second; a message over the limit is refused with
  ``rate_limited`` before it is checked, numbered or fanned out;
* **announcements** (``seal`` of kind hello or here): ``announce_burst`` at once,
  then ``announce_rate`` per second, refused the same way: a member who floods
  a room with hellos spends its own budget, never that of its messages;
* **direct messages** (``dm_send``): ``dm_burst`` at once, then ``dm_rate``
  per second, their own budget (a conversation never slows a room, nor the
  other way round); refused with ``rate_limited`` before they are relayed;
* **public-room joins** (``join`` and ``create``): ``room_join_burst``, then one
  per ``room_join_interval``; join/leave churn would otherwise make every
  member of a room pay for presence events;
* **secret-room join attempts**: ``join_burst``, then one per ``join_interval``
  (slows passphrase guessing);
* **nick changes**: ``nick_burst``, then one per ``nick_interval``, for all the
  connections of one address together (:class:`AddressBuckets`); each change
  is a presence event for every member of every room the session is in, and
  fills the rooms' rings as a message would;
* **queries** (``list`` and ``who``): ``query_burst``, then one per
  ``query_interval``, per address too; their cost grows with the daemon's
  rooms and a room's members;
* **bytes read** from the socket, counted before they are decoded:
  ``bytes_burst``, then ``bytes_rate`` per second.  Bytes are not refused but
  *paced*: once the bucket is empty the session does not read again until it
  has refilled.  The kernel's receive buffer fills, TCP's window closes and
  the sender's writes block -- the cost lands on the sender alone, the daemon
  holds at most one ``read_size`` chunk of it, and an honest client that
  merely sent a burst is slowed, not disconnected.

Each refusal is a *strike*.  Strikes refill at ``msg_rate`` per second up to
``flood_strikes``; a connection that spends them all (it keeps sending after
being told to wait, faster than it is forgiven) is closed with ``flood``.

Connections opened per address are paced too (``connect_burst``, then one
per ``connect_interval``; see listener.py): a client refused something cannot
simply come back on a new connection, as fast as it likes, with fresh buckets.

Connections per address (:class:`AddressCounter`) are counted under a keyed
hash of the address (IPv4) or of its /64 (IPv6), with a key made at random
when the process starts, so the table never holds an address and cannot be
reversed by someone who reads the daemon's memory later; an entry is removed
when its last connection ends.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from ..bucket import TokenBucket
from ..errors import Code, RequestError

if TYPE_CHECKING:
    from .config import Limits


#: The part of a token a SessionLimiter bucket may be short and still give it
#: (the float rounding of the time of day, see SessionLimiter).
SLACK = 1e-6


class SessionLimiter:
    """The rate limits of one connection (see the module docstring).

    The ``check_*`` methods raise :class:`RequestError` with ``rate_limited``
    for a refused request, or with the fatal ``flood`` once the connection has
    run out of strikes.

    Each bucket is one number: the time at which it is full again (GCRA's
    "theoretical arrival time"), the same token bucket as
    :class:`~anonchat.bucket.TokenBucket` without an object of its own.  Its
    tokens at ``now`` are ``burst - max(0, full_at - now) / interval``: a
    bucket never used is 0.0, full (as if made at connect time and refilled
    since), and an idle connection holds a float for each bucket it has used,
    not a bucket object with four fields (issue 18: memory per connection).

    A time of day is a large float: ``now + interval - now`` is ``interval``
    give or take the clock's last bit, so a burst taken all at one instant
    could find its last token short by 1e-13 of a second.  A request is
    therefore let through when less than ``SLACK`` (a millionth) of a token is
    missing: a hundred nanoseconds early at ten messages a second.
    """

    __slots__ = (
        "announces",
        "bytes",
        "dms",
        "messages",
        "rates",
        "room_joins",
        "secret_joins",
        "strikes",
    )

    def __init__(self, limits: Limits) -> None:
        self.rates = _rates(limits)  # (burst, interval) of each, shared by every session
        self.messages = 0.0
        self.announces = 0.0
        self.dms = 0.0
        self.room_joins = 0.0
        self.secret_joins = 0.0
        self.bytes = 0.0
        self.strikes = 0.0

    def _take(self, name: str, now: float) -> float:
        """Spend a token of bucket ``name``; return 0.0, or (nothing spent) the
        seconds until one is due.  (TokenBucket.take, on the bucket's number.)"""
        rate: tuple[float, float] = getattr(self.rates, name)
        burst, interval = rate
        held: float = getattr(self, name)
        full_at = max(held, now)  # (refilled up to now)
        wait = full_at - now - (burst - 1) * interval  # > 0: less than one token left
        if wait > SLACK * interval:
            return wait
        setattr(self, name, full_at + interval)
        return 0.0

    def check_message(self, now: float) -> None:
        # (_take, inline: every message takes a token)
        burst, interval = self.rates.messages
        full_at = self.messages
        if full_at < now:
            full_at = now
        wait = full_at - now - (burst - 1) * interval
        if wait <= SLACK * interval:
            self.messages = full_at + interval
            return
        # Refused (a refused take spends nothing): count the strike, say how long to wait.
        self._refuse(wait, now, "too many messages")

    def check_announce(self, now: float) -> None:
        """A secret-room announcement (``seal`` of kind hello or here): its own
        small budget, so announcements never use up the turns of messages."""
        self._check("announces", now, "too many announcements")

    def check_dm(self, now: float) -> None:
        """A direct message: its own budget (``dm_burst``, ``dm_rate``)."""
        self._check("dms", now, "too many direct messages")

    def check_room_join(self, now: float) -> None:
        self._check("room_joins", now, "too many joins")

    def check_secret_join(self, now: float) -> None:
        self._check("secret_joins", now, "too many secret-room join attempts")

    def check_nick(self, shared: AddressBuckets, key: bytes, now: float) -> None:
        """A nick change, counted for the connection's address (``key``)."""
        self._refuse(shared.bucket("nicks", key, now).take(now), now, "too many nick changes")

    def check_query(self, shared: AddressBuckets, key: bytes, now: float) -> None:
        """A ``list`` or ``who``, counted for the connection's address (``key``)."""
        wait = shared.bucket("queries", key, now).take(now)
        self._refuse(wait, now, "too many list and who requests")

    def bytes_read(self, count: int, now: float) -> float:
        """Count bytes just read (even past the bucket: a debt); return how long
        to wait before reading more.  (TokenBucket.spend, on the bucket's number.)"""
        burst, interval = self.rates.bytes
        full_at = max(self.bytes, now) + count * interval
        self.bytes = full_at
        return max(0.0, full_at - now - burst * interval)

    def _check(self, name: str, now: float, what: str) -> None:
        self._refuse(self._take(name, now), now, what)

    def _refuse(self, wait: float, now: float, what: str) -> None:
        """Refuse a request if it must ``wait``: a strike, or ``flood`` past the last."""
        if not wait:
            return
        if self._take("strikes", now):
            raise RequestError(Code.FLOOD, f"{what}, sent after being told to wait")
        raise RequestError(Code.RATE_LIMITED, f"{what}; try again in {math.ceil(wait)} s")


class _Rates(NamedTuple):
    """(burst, interval) of each bucket of a SessionLimiter, from the limits."""

    messages: tuple[float, float]
    announces: tuple[float, float]
    dms: tuple[float, float]
    room_joins: tuple[float, float]
    secret_joins: tuple[float, float]
    bytes: tuple[float, float]
    strikes: tuple[float, float]


@functools.cache
def _rates(limits: Limits) -> _Rates:
    return _Rates(*(_BUCKETS[name](limits) for name in _Rates._fields))


#: Each bucket's (burst, interval) from the limits.
_BUCKETS: dict[str, Callable[[Limits], tuple[float, float]]] = {
    "messages": lambda lim: (lim.msg_burst, 1.0 / lim.msg_rate),
    "announces": lambda lim: (lim.announce_burst, 1.0 / lim.announce_rate),
    "dms": lambda lim: (lim.dm_burst, 1.0 / lim.dm_rate),
    "room_joins": lambda lim: (lim.room_join_burst, lim.room_join_interval),
    "secret_joins": lambda lim: (lim.join_burst, lim.join_interval),
    "bytes": lambda lim: (lim.bytes_burst, 1.0 / lim.bytes_rate),
    "nicks": lambda lim: (lim.nick_burst, lim.nick_interval),
    "queries": lambda lim: (lim.query_burst, lim.query_interval),
    "strikes": lambda lim: (lim.flood_strikes, 1.0 / lim.msg_rate),
    "connects": lambda lim: (lim.connect_burst, lim.connect_interval),
}


class AddressBuckets:
    """Token buckets shared by every connection of one address, by its keyed
    hash (see :class:`AddressCounter`): what a client could otherwise do again
    on a new connection each time it was refused -- open connections (and
    TLS handshakes), change nicks, ask for lists.  A bucket that has refilled
    is forgotten (:meth:`prune`), so the table holds only addresses active in
    the last ``burst * interval`` seconds, never an address itself.
    """

    __slots__ = ("_buckets", "limits")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._buckets: dict[tuple[str, bytes], TokenBucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def bucket(self, name: str, key: bytes, now: float) -> TokenBucket:
        bucket = self._buckets.get((name, key))
        if bucket is None:
            burst, interval = _BUCKETS[name](self.limits)
            bucket = self._buckets[name, key] = TokenBucket(burst, interval, now)
        return bucket

    def take(self, name: str, key: bytes, now: float) -> bool:
        """Spend a token of ``name`` for ``key``; False (nothing spent) if none is left."""
        return not self.bucket(name, key, now).take(now)

    def prune(self, now: float) -> None:
        """Forget the buckets that have refilled: they are as good as new ones."""
        for key in [k for k, b in self._buckets.items() if b.full(now)]:
            del self._buckets[key]


class AddressCounter:
    """Open connections per client address, held only as keyed hashes.

    IPv4 addresses (and IPv4-mapped IPv6 ones) count one by one; IPv6
    addresses count per /64, since one host is usually given a whole /64.
    """

    __slots__ = ("_counts", "_key", "_last", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._key = os.urandom(32)  # (not secrets: the protocol doc's recorder fixes that)
        self._counts: dict[bytes, int] = {}
        self._last = b""  # the key last counted, while it is counted (see key_of)

    def __len__(self) -> int:
        return len(self._counts)

    def key_of(self, host: str) -> bytes:
        """The keyed hash an address is counted under."""
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            packed = host.encode("utf-8", "replace")  # not an IP (a Unix socket): one bucket
        else:
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            packed = address.packed if address.version == 4 else address.packed[:8]
        key = hmac.new(self._key, packed, hashlib.sha256).digest()[:16]
        # The address counted last gets the bytes object its connections hold: a
        # session keeps its key, and behind a Tor onion service (or a proxy)
        # every connection comes from one address -- one object, not one each.
        return self._last if key == self._last else key

    def add(self, key: bytes) -> bool:
        """Count one more connection under ``key``; False (and not counted) if over."""
        count = self._counts.get(key, 0)
        if count >= self.limit:
            return False
        self._counts[key] = count + 1
        self._last = key
        return True

    def remove(self, key: bytes) -> None:
        count = self._counts.get(key, 0) - 1
        if count > 0:
            self._counts[key] = count
        else:
            self._counts.pop(key, None)
            if key == self._last:
                self._last = b""  # (kept no longer than the table keeps it)
