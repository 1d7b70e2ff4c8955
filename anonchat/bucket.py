"""A token bucket: ``burst`` actions at once, then one every ``interval`` seconds.

Pure (no clock of its own, no I/O): the daemon's rate limits use it
(``daemon/limits.py``), and the client mirrors the daemon's message limit with
it so that it waits instead of being refused (``client.Pacer``).
"""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """``burst`` actions at once, then one more every ``interval`` seconds.

    Time is passed in (the event loop's clock), so the bucket is easy to test
    and costs nothing between uses.
    """

    __slots__ = ("_stamp", "_tokens", "burst", "interval")

    def __init__(self, burst: float, interval: float, now: float) -> None:
        self.burst = burst
        self.interval = interval
        self._tokens = float(burst)
        self._stamp = now

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) / self.interval)
        self._stamp = now

    def take(self, now: float) -> float:
        """Spend a token; return 0.0 on success, else seconds until one is due."""
        # (_refill, inline: every message takes a token)
        tokens = min(self.burst, self._tokens + (now - self._stamp) / self.interval)
        self._stamp = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return 0.0
        self._tokens = tokens
        return (1.0 - tokens) * self.interval

    def take_up_to(self, count: int, now: float) -> int:
        """Spend up to ``count`` tokens at once; return how many were spent: as
        many as ``count`` calls of :meth:`take` at the same ``now`` would grant
        (taking 1.0 from a float of at least 1.0 is exact, so the tokens left
        are the same too)."""
        tokens = self._tokens + (now - self._stamp) / self.interval
        if not tokens < self.burst:  # (min(burst, tokens) without the call)
            tokens = self.burst
        self._stamp = now
        granted = min(count, int(tokens)) if tokens >= 1.0 else 0
        self._tokens = tokens - granted
        return granted

    def full(self, now: float) -> bool:
        """Whether the bucket has refilled to its burst (it can be forgotten)."""
        return self._tokens + (now - self._stamp) / self.interval >= self.burst

    def spend(self, amount: float, now: float) -> float:
        """Spend ``amount`` tokens even if that leaves a debt (for what has
        already happened, like bytes read); return seconds until the debt is paid."""
        # (_refill, inline: every read spends)
        tokens = self._tokens + (now - self._stamp) / self.interval
        if not tokens < self.burst:  # (min(burst, tokens) without the call)
            tokens = self.burst
        tokens -= amount
        self._stamp = now
        self._tokens = tokens
        return -tokens * self.interval if tokens < 0 else 0.0
