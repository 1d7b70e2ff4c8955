"""Counts in words that agree with them: ``1 message``, ``2 messages``.

One helper for every count a person reads, in the daemon's refusals and in
both front ends, so none says "1 messages".  Pure: the daemon and the clients
both import it (tests/test_plural.py also checks that no f-string puts a
count before a plural noun by hand).
"""

from __future__ import annotations


def plural(count: float, one: str, many: str | None = None) -> str:
    """``count`` and the words that agree with it.

    ``many`` defaults to ``one`` + "s"; give it when that is wrong, or to make
    a verb agree too: ``plural(n, "event was", "events were")``.
    """
    shown = f"{count:g}" if isinstance(count, float) else str(count)
    words = one if count == 1 else (many if many is not None else one + "s")
    return f"{shown} {words}"
