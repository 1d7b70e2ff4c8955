"""Rate limits: a token bucket per connection and purpose."""

from __future__ import annotations


class TokenBucket:
    """``burst`` actions at once, then one more every ``interval`` seconds.

    Time is passed in (the event loop's clock), so the bucket is easy to test
    and costs nothing between uses.
    """

    __slots__ = ("_stamp", "_tokens", "burst", "interval")

    def __init__(self, burst: int, interval: float, now: float) -> None:
        self.burst = burst
        self.interval = interval
        self._tokens = float(burst)
        self._stamp = now

    def take(self, now: float) -> float:
        """Spend a token; return 0.0 on success, else seconds until one is due."""
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) / self.interval)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) * self.interval
