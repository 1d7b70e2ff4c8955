"""One reconnect policy for every front end.

:func:`reconnect` tries again with backoff after a connection was lost,
resuming the session when the daemon still holds it and otherwise joining
the old rooms again (secret ones with the keys kept in memory).  It yields
typed steps — :class:`Retrying`, then :class:`Back` or :class:`Stopped` —
that each front end shows its own way; it never prints.

What ends trying:
* a failure that another try cannot mend (:data:`FINAL_FAILURES`: the
  server's key changed or was not trusted, a plaintext connection refused):
  the user must act, so :class:`Stopped` says what happened;
* with ``give_up_after``, that many seconds of failures (a script should not
  hang forever; the TUI, watched by a person, passes None and keeps trying).

What ends a connection without a reconnect is :func:`is_final_close`: the
user quit, or (for a non-persistent front end) the daemon shut down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

from ..client import Client, Event, Rejoined
from ..errors import Code, ConnectionClosed, Local
from ..plural import plural
from .commands import Commands

#: Seconds before each attempt; the last one repeats.
RECONNECT_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)

#: Failures of an attempt that trying again cannot mend.
FINAL_FAILURES = frozenset(
    {
        Local.HOST_KEY_CHANGED,
        Local.PIN_MISMATCH,
        Local.HOST_NOT_TRUSTED,
        Local.PLAINTEXT_REFUSED,
        Code.NICK_INVALID,
        Code.UNSUPPORTED_VERSION,
    }
)

Dial = Callable[[str, Client], Awaitable[Client]]
"""Connect again as ``nick``, resuming ``old``: the front end's endpoint and options."""


@dataclass(frozen=True)
class Retrying:
    attempt: int  # 1 for the first try
    delay: float  # seconds before this try
    last_error: str  # why the connection or the previous try failed


@dataclass(frozen=True)
class Back:
    """A new connection: ``client.resumed`` says whether nothing was missed;
    otherwise ``rejoined`` says which rooms came back and which did not."""

    client: Client
    rejoined: Rejoined | None


@dataclass(frozen=True)
class Stopped:
    """No more tries: ``code`` says why (a final failure, or ``gave_up``)."""

    code: str
    message: str


Step = Retrying | Back | Stopped


def is_final_close(code: str, *, persistent: bool) -> bool:
    """Whether a connection that ended with ``code`` should not be reconnected."""
    if code in (Local.CLOSED, Local.QUIT):
        return True  # we closed it
    return code == Code.SHUTDOWN and not persistent


def backoff(delays: Sequence[float]) -> Iterator[float]:
    yield from delays
    while True:
        yield delays[-1]


#: How long before the daemon lets a session go the last try to resume it is made.
LAST_CALL_MARGIN = 3.0


def next_delay(delay: float, elapsed: float, last_call: float | None) -> float:
    """The wait before the next try: ``delay``, unless the daemon would let the
    session go (``last_call`` seconds after the loss, its resume window) before
    that try; then one more try is made just before it does.

    With waits of up to 30 s a node back at 100 s into a 120 s window was
    reached at 120.5 s: the session was gone, though it had waited for us."""
    if last_call is None:
        return delay
    deadline = last_call - LAST_CALL_MARGIN
    if elapsed < deadline < elapsed + delay:
        return deadline - elapsed
    return delay


async def reconnect(
    dial: Dial,
    old: Client,
    nick: str,
    *,
    delays: Sequence[float] = RECONNECT_DELAYS,
    give_up_after: float | None = None,
    last_call: float | None = None,
) -> AsyncIterator[Step]:
    """Try until back, stopped by a final failure, or ``give_up_after`` seconds
    passed; a try is made just before ``last_call`` (the resume window) ends."""
    assert old.closed is not None
    last = old.closed.message
    started = time.monotonic()
    for attempt, planned in enumerate(backoff(delays), start=1):
        delay = next_delay(planned, time.monotonic() - started, last_call)
        if give_up_after is not None and time.monotonic() - started + delay > give_up_after:
            yield Stopped(
                Local.GAVE_UP, f"giving up after {plural(attempt - 1, 'try', 'tries')}: {last}"
            )
            return
        yield Retrying(attempt, delay, last)
        await asyncio.sleep(delay)
        try:
            client = await _dial_keeping_nick(dial, nick, old)
            rejoined = None if client.resumed else await client.rejoin(old)
        except ConnectionClosed as exc:
            if exc.code in FINAL_FAILURES:
                yield Stopped(exc.code, exc.message)
                return
            last = exc.message
            continue
        yield Back(client, rejoined)
        return


async def _dial_keeping_nick(dial: Dial, nick: str, old: Client) -> Client:
    """Connect as ``nick``; if someone took it meanwhile, as ``nick_``."""
    try:
        return await dial(nick, old)
    except ConnectionClosed as exc:
        if exc.code != Code.NICK_TAKEN or len(nick) >= 32:
            raise
    return await dial(nick + "_", old)


def give_up_window(client: Client) -> float:
    """How long a non-persistent front end keeps trying: as long as the daemon
    keeps the session resumable, and half a minute more."""
    return max(client.hello.resume_window, 120) + 30.0


@dataclass(frozen=True)
class Lost:
    """The connection ended; ``final``: no reconnect follows."""

    code: str
    message: str
    final: bool


async def follow(
    commands: Commands,
    dial: Dial,
    on_event: Callable[[Event], None],
    on_step: Callable[[Lost | Step], None],
    *,
    persistent: bool,
    delays: Sequence[float] = RECONNECT_DELAYS,
) -> Lost | Stopped | None:
    """Pump the session's events to ``on_event``, reconnecting as the policy says.

    Returns when the session ends for good: how it ended (``Lost`` with
    ``final``, or ``Stopped``; None when the front end stopped the core itself
    before closing the client, as it does when the user quits); the command
    core is told (``back``/``stop``).
    """
    while True:
        client = commands.client
        async for event in client.events():
            on_event(event)
        if commands.stopped:
            return None  # the user quit: the front end closed the client itself
        closed = client.closed or ConnectionClosed(Local.EOF, "the connection ended")
        final = is_final_close(closed.code, persistent=persistent)
        lost = Lost(closed.code, closed.message, final)
        on_step(lost)
        if final:
            commands.stop()
            return lost
        give_up = None if persistent else give_up_window(client)
        window = float(client.hello.resume_window) if client.hello.resume_window else None
        async for step in reconnect(
            dial, client, client.nick, delays=delays, give_up_after=give_up, last_call=window
        ):
            on_step(step)
            if isinstance(step, Back):
                commands.back(step.client)
            elif isinstance(step, Stopped):
                commands.stop()
                return step
