"""The reconnect policy's schedule (pure: no sockets, no clock).

The daemon keeps a session resumable for ``resume_window`` seconds after its
connection is lost; a front end's tries must not step over the end of it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from anonchat.frontend.reconnect import (
    LAST_CALL_MARGIN,
    RECONNECT_DELAYS,
    backoff,
    next_delay,
)


def tries(window: float | None, horizon: float) -> list[float]:
    """When each try starts (seconds after the loss), as ``reconnect`` plans
    them, if every try failed at once."""
    at, out = 0.0, list[float]()
    for planned in backoff(RECONNECT_DELAYS):
        at += next_delay(planned, at, window)
        if at > horizon:
            return out
        out.append(at)
    raise AssertionError("unreachable")


def test_one_try_is_made_just_before_the_resume_window_ends() -> None:
    plain = tries(None, 150)
    assert not any(117 <= t < 120 for t in plain)  # 90.5, then 120.5: too late
    planned = tries(120, 150)
    assert 120 - LAST_CALL_MARGIN in planned
    early = {t for t in plain if t < 120 - LAST_CALL_MARGIN}
    assert early <= set(planned)  # the tries before it stay where they were


def test_nothing_changes_when_no_window_is_known() -> None:
    assert next_delay(30.0, 100.0, None) == 30.0


@given(
    delay=st.floats(0.1, 60),
    elapsed=st.floats(0, 600),
    window=st.floats(LAST_CALL_MARGIN + 0.1, 600),
)
def test_a_wait_is_never_longer_than_planned_nor_past_the_last_call(
    delay: float, elapsed: float, window: float
) -> None:
    wait = next_delay(delay, elapsed, window)
    assert 0 < wait <= delay
    deadline = window - LAST_CALL_MARGIN
    if elapsed < deadline:
        assert elapsed + wait <= deadline or elapsed + delay <= deadline
