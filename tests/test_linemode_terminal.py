"""The line mode at a real terminal (tmux): incoming lines never land in what
the user is typing, and the typed line goes out whole.

With stdin and stdout on a terminal the line mode keeps its input line at the
bottom (prompt_toolkit): events are printed above it.  Piped, it prints and
reads as before (tests/test_frontends.py runs it on pipes).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from anonchat import events as ev
from anonchat.daemon import Daemon

from .conftest import DaemonFactory
from .helpers import collect, dial
from .tmux import capture, keys, tmux_session, typed


@pytest.fixture
async def plain_daemon(make_daemon: DaemonFactory) -> Daemon:
    return await make_daemon(plaintext=True)


@pytest.fixture
async def terminal(plain_daemon: Daemon, tmp_path: Path) -> AsyncIterator[str]:
    """``anonchat --plain`` in an 80x24 tmux window, joined to two rooms."""
    command = [
        sys.executable, "-m", "anonchat", "--plain", "--plaintext",
        "--server", f"127.0.0.1:{plain_daemon.port}", "--nick", "alice",
        "--join", "one", "--join", "two",
    ]  # fmt: skip
    config = str(tmp_path / "cfg")
    with tmux_session("anonchat-line", command, (80, 24), ANONCHAT_CONFIG_DIR=config) as name:
        yield name


async def screen_when(session: str, ready: Callable[[str], bool], what: str) -> str:
    """The screen once ``ready`` holds (polling the terminal; no timing asserted)."""
    screen = ""
    try:
        async with asyncio.timeout(15):
            while True:
                screen = await capture(session)
                if ready(screen):
                    return screen
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"waited for {what}; the screen:\n{screen}") from None


def lines_of(screen: str) -> list[str]:
    return [line.rstrip() for line in screen.splitlines() if line.strip()]


async def test_incoming_lines_leave_the_typed_half_line_whole(
    terminal: str, plain_daemon: Daemon
) -> None:
    await screen_when(terminal, lambda s: "you joined #two" in s, "both --join rooms")
    screen = await capture(terminal)
    assert "you joined #one" in screen  # --join given twice joins both
    bob = await dial(plain_daemon, "bob")
    await bob.join("two")
    await typed(terminal, "half a li")
    await screen_when(terminal, lambda s: lines_of(s)[-1] == "> half a li", "the typed half")
    for i in range(3):
        await bob.say("two", f"incoming {i}")
    # The prompt is drawn again just after the lines are printed: wait for both
    # (a capture between the two saw the last line without the prompt yet).
    screen = await screen_when(
        terminal,
        lambda s: "<bob> incoming 2" in s and lines_of(s)[-1] == "> half a li",
        "bob's lines, and the typed half below them",
    )
    shown = lines_of(screen)
    for i in range(3):  # and every incoming line whole, on a line of its own
        assert any(line.endswith(f"#two <bob> incoming {i}") for line in shown), shown
    assert sum("half a li" in line for line in shown) == 1
    await typed(terminal, "ne")
    await keys(terminal, "Enter")
    got = await collect(bob, ev.Msg, 4, timeout=10)  # his own three, then alice's line
    assert [(m.nick, m.text) for m in got if m.nick == "alice"] == [("alice", "half a line")]
    await bob.close()


async def test_a_passphrase_at_the_terminal_is_masked_and_not_in_the_history(
    terminal: str,
) -> None:
    passphrase = "orbit-lemon-staple-horse-battery-canyon"
    await screen_when(terminal, lambda s: "you joined #two" in s, "both --join rooms")
    await typed(terminal, "/secret create Attic")
    await keys(terminal, "Enter")
    await screen_when(terminal, lambda s: "passphrase" in lines_of(s)[-1], "the passphrase prompt")
    await typed(terminal, passphrase)
    screen = await screen_when(terminal, lambda s: "*" * 10 in s, "the masked passphrase")
    assert passphrase not in screen
    await keys(terminal, "Enter")
    screen = await screen_when(terminal, lambda s: "secret room" in s, "the room entered")
    await keys(terminal, "Up")  # the history
    screen = await screen_when(
        terminal, lambda s: lines_of(s)[-1] == "> /secret create Attic", "the previous line"
    )
    assert passphrase not in screen


async def test_a_passphrase_typed_in_the_same_burst_as_secret_is_masked_too(
    terminal: str,
) -> None:
    """``/secret ROOM``, Enter, the passphrase, Enter in one write (a paste, a slow
    link): the passphrase is read before the command has asked for it, and must
    still never be echoed or kept in the history. (It was shown in clear, and Up
    brought it back.) The line after it is an ordinary line again."""
    passphrase = "orbit-lemon-staple-horse-battery-canyon"
    await screen_when(terminal, lambda s: "you joined #two" in s, "both --join rooms")
    burst = f"/secret create Attic\r{passphrase}\rvisible again"
    await typed(terminal, burst)
    screen = await screen_when(
        terminal,
        lambda s: "secret room" in s and lines_of(s)[-1] == "> visible again",
        "the room entered, and the next line typed in clear",
    )
    assert passphrase not in screen
    await keys(terminal, "C-u", "Up")  # the history
    screen = await screen_when(
        terminal, lambda s: lines_of(s)[-1] == "> /secret create Attic", "the previous line"
    )
    assert passphrase not in screen
