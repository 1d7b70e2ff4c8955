"""Give freed memory back to the operating system (glibc only).

The daemon's memory comes and goes in many small pieces: frames, TLS buffers,
connections that open and close by the thousand under hostile load.  glibc's
allocator keeps freed heap memory for reuse rather than returning it, so after
a burst the daemon's RSS stays at the burst's high-water mark and, with
connections churning, creeps up for a long time: benchmarks/soak.py showed
flooders alone taking it from 45 to 70 MiB over 1,600 connections, and back to
45 MiB once ``malloc_trim(0)`` ran (no Python object was left behind).  The
daemon calls :func:`trim` every ``TRIM_INTERVAL`` seconds, so RSS shows what
it holds, which is what an operator watching it needs.  Elsewhere (musl,
macOS) there is nothing to call and :func:`trim` does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

#: Seconds between two trims (each takes a few milliseconds).
TRIM_INTERVAL = 30.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        function: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return function


_TRIM = _malloc_trim()


def trim() -> bool:
    """Return freed heap memory to the system; whether there was a way to."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
