"""Say goodbye when the terminal goes away.

Closing the terminal window (SIGHUP), or ``kill`` (SIGTERM), used to end the
process on the spot: the daemon, told nothing, took it for a dropped
connection and kept the session for its resume window -- the nick still
listed in every room for two minutes, a ghost nobody could reach, since
only this process holds the token that resumes it.  Both front ends run
their usual quit instead, which says goodbye.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator

#: The signals that mean the user is gone: the terminal closed, or a kill.
HANGUP_SIGNALS = (signal.SIGHUP, signal.SIGTERM)


@contextlib.contextmanager
def goodbye_on(signals: tuple[signal.Signals, ...], quit: Callable[[], None]) -> Iterator[None]:
    """Within it, each of ``signals`` calls ``quit`` in the running loop."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, quit)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
