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
import os
import signal
import threading
from collections.abc import Callable, Iterator

#: The signals that mean the user is gone: the terminal closed, or a kill.
HANGUP_SIGNALS = (signal.SIGHUP, signal.SIGTERM)


def detach_terminal() -> None:
    """The terminal is gone: point stdin, stdout and stderr at /dev/null, so
    that what is still written on the way out (a full-screen app restoring the
    terminal) does not fail with EIO."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in (0, 1, 2):
            with contextlib.suppress(OSError):
                os.dup2(null, fd)
    finally:
        os.close(null)


#: Seconds the quit after a hang-up may take (the goodbye needs well under one)
#: before the process ends itself: Textual's shutdown can still hang on a
#: terminal that is gone (its writer thread stuck), and nobody is left to
#: press a key or Ctrl+C.
HANGUP_GRACE = 5.0


def _ending(quit: Callable[[], None], hung_up: bool) -> None:
    if hung_up:
        detach_terminal()
    timer = threading.Timer(HANGUP_GRACE, os._exit, args=(0,))
    timer.daemon = True  # a normal exit before it does not wait for it
    timer.start()
    quit()


@contextlib.contextmanager
def goodbye_on(signals: tuple[signal.Signals, ...], quit: Callable[[], None]) -> Iterator[None]:
    """Within it, each of ``signals`` calls ``quit`` in the running loop (after
    SIGHUP, with the standard streams detached from the terminal that is gone),
    and ends the process ``HANGUP_GRACE`` seconds later if it is still there."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, _ending, quit, sig == signal.SIGHUP)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
