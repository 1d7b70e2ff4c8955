"""The real app in a real terminal (tmux): do the room keys arrive as bound?

Pilot presses keys by name; a terminal sends bytes.  Ctrl+N/Ctrl+P and
Alt+digit (which terminals send as ESC then the digit) are checked here the
way a user's terminal delivers them.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from anonchat import events as ev
from anonchat.client import Client, Endpoint
from anonchat.daemon import Daemon

from ..helpers import collect, dial, next_event
from ..tmux import (
    capture,
    keys,
    kill_session,
    session_alive,
    start_session,
    tmux,
    tmux_session,
    typed,
)

APP = """
import sys
from pathlib import Path
from anonchat.client import Endpoint
from anonchat.tui import make_app
endpoint = Endpoint("127.0.0.1", int(sys.argv[2]), pin=sys.argv[3])
app = make_app(Path(sys.argv[1]), server="127.0.0.1:" + sys.argv[2], nick="keys",
               autoconnect=True, join=["one", "two", "three"], ping_interval=3600,
               endpoint=endpoint)
app.run()
"""


@pytest.fixture
async def session(daemon: Daemon, tmp_path: Path) -> AsyncIterator[str]:
    command = [sys.executable, "-c", APP, str(tmp_path / "cfg"), str(daemon.port), daemon.pin]
    with tmux_session("anonchat-test", command, (120, 35)) as name:
        yield name


def shown_room(screen: str) -> str:
    """The name in the topic bar: first line, right of the room list's border."""
    first = screen.splitlines()[0]
    return first.split("╮", 1)[1].strip().split()[0]


async def wait_room(session: str, room: str, timeout: float = 10.0) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    screen = ""
    while asyncio.get_running_loop().time() < deadline:
        screen = await capture(session)
        if screen.strip() and "╮" in screen.splitlines()[0] and shown_room(screen) == room:
            return screen
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {room} on screen, got:\n{screen}")


async def test_room_keys_in_a_real_terminal(session: str) -> None:
    await wait_room(session, "#three")
    await keys(session, "C-p")
    await wait_room(session, "#two")
    await keys(session, "C-p")
    await wait_room(session, "#one")
    await keys(session, "C-n")
    await wait_room(session, "#two")
    # Alt+digit as terminals send it: ESC, then the digit, in one write.
    await keys(session, "Escape", "3")
    await wait_room(session, "#three")
    await keys(session, "M-1")
    await wait_room(session, "#one")
    await keys(session, "Escape", "0")
    await wait_room(session, "server")
    await keys(session, "M-Right")
    screen = await wait_room(session, "#one")
    # Nothing typed into the input box along the way (no "™", "¡", ...).
    assert "Message, or /help" in screen


async def test_a_paste_in_a_real_terminal_sends_every_line(
    session: str, daemon: Daemon, tmp_path: Path
) -> None:
    """A terminal delivers a paste as one bracketed-paste sequence: every line
    must arrive as a message, not only the first."""
    await wait_room(session, "#three")
    watcher = await dial(daemon, "watcher")
    await watcher.join("three")
    pasted = tmp_path / "paste.txt"
    pasted.write_text("first line\nsecond line\nthird line\n", encoding="utf-8")
    buffer = f"paste-{session}"
    await asyncio.to_thread(tmux, "load-buffer", "-b", buffer, str(pasted))
    await asyncio.to_thread(tmux, "paste-buffer", "-p", "-d", "-b", buffer, "-t", session)
    got = [m.text for m in await collect(watcher, ev.Msg, 3, timeout=10)]
    assert got == ["first line", "second line", "third line"]
    await watcher.close()


@pytest.mark.parametrize("newline", ["\r", "\n"])
async def test_a_burst_of_lines_sends_each_once_in_order(
    session: str, daemon: Daemon, newline: str
) -> None:
    await wait_room(session, "#three")
    watcher = await dial(daemon, "watcher")
    await watcher.join("three")
    await typed(session, newline.join(["rep alpha", "rep beta", "rep gamma"]) + newline)
    # Ctrl+U (and Ctrl+W) in the same burst: what follows them still counts.
    await keys(session, "junk", "C-u", "after ctrl-u", "Enter", "one two", "C-w", "three", "Enter")
    await typed(session, "marker\r")
    got = [m.text for m in await collect(watcher, ev.Msg, 6, timeout=10)]
    assert got == ["rep alpha", "rep beta", "rep gamma", "after ctrl-u", "one three", "marker"]
    await watcher.close()


async def test_a_line_typed_after_create_in_one_burst_goes_to_the_new_room(
    session: str, daemon: Daemon
) -> None:
    """``/create #four`` and a message in one burst (a paste without bracketed
    paste): the message is for the room the command opens, not #three."""
    await wait_room(session, "#three")
    watcher = await dial(daemon, "watcher")
    await watcher.join("three")
    await typed(session, "/create #four\rfor four\r/join #three\rfor three\r")
    got = [m.text for m in await collect(watcher, ev.Msg, 1, timeout=10)]
    assert got == ["for three"]  # and "for four" never came to #three
    assert [data for _, _, data in daemon.rooms["four"].ring.entries() if b"for four" in data]
    await watcher.close()


async def test_a_passphrase_typed_in_the_same_burst_as_secret_is_never_sent(
    session: str, daemon: Daemon
) -> None:
    """``/secret ROOM`` and the passphrase typed at once (before the form can open):
    the passphrase goes into the form — typed there, or held and put there —
    masked, and never to the room."""
    await wait_room(session, "#three")
    watcher = await dial(daemon, "watcher")
    await watcher.join("three")
    await typed(session, "/secret hideout\rhunter2-hunter2\r")
    await screen_shows(session, "Join a secret room")
    await keys(session, "Escape")
    # Once "marker" shows in the input box, the box has the focus again.
    await screen_shows(session, "Message, or /help", gone="Join a secret room")
    await typed(session, "marker")
    screen = await screen_shows(session, "marker")
    assert "hunter2" not in screen
    await keys(session, "Enter")
    got = [m.text for m in await collect(watcher, ev.Msg, 1, timeout=10)]
    assert got == ["marker"]  # and no passphrase before it
    await watcher.close()


async def test_a_passphrase_typed_in_the_same_burst_as_secret_is_not_in_the_history(
    session: str,
) -> None:
    """The passphrase line held for the form is not kept in the input's history:
    Up would bring it back in clear, one Enter from the room. (It was.)"""
    await wait_room(session, "#three")
    await typed(session, "/secret hideout\rhunter2-hunter2\r")
    await screen_shows(session, "Join a secret room")
    await keys(session, "Escape")
    await screen_shows(session, "Message, or /help", gone="Join a secret room")
    await typed(session, "marker")
    await screen_shows(session, "marker")
    await keys(session, "C-u", "Up")  # the last line typed: /secret, not the passphrase
    screen = await screen_shows(session, "/secret hideout", gone="marker")
    await keys(session, "Up")  # nothing before it
    await keys(session, "Down", "Down")
    screen += await screen_shows(session, "Message, or /help")
    assert "hunter2" not in screen


async def launched_in_lobby(daemon: Daemon, tmp_path: Path, nick: str) -> tuple[Client, str]:
    """A watcher in #lobby, then ``anonchat --join lobby`` as ``nick`` in a
    terminal (started, not waited for): the watcher and the tmux session."""
    command = [
        sys.executable, "-m", "anonchat", "--server", f"127.0.0.1:{daemon.port}",
        "--fingerprint", daemon.pin, "--nick", nick, "--join", "lobby",
    ]  # fmt: skip
    watcher = await dial(daemon, "watcher")
    await watcher.create("lobby")
    name = start_session(
        f"anonchat-{nick}", command, (100, 30), ANONCHAT_CONFIG_DIR=str(tmp_path / "cfg")
    )
    return watcher, name


async def test_closing_the_terminal_says_goodbye(daemon: Daemon, tmp_path: Path) -> None:
    """The terminal window closed (tmux kill-session: SIGHUP): the app quits as
    with Ctrl+Q, saying goodbye. It died on the spot, and the daemon kept the
    session for its resume window: a ghost listed in the room for two minutes."""
    watcher, name = await launched_in_lobby(daemon, tmp_path, "hangup")
    pid = int(tmux("display", "-p", "-t", name, "#{pane_pid}").strip())
    try:
        came = await next_event(watcher, ev.Presence, timeout=20)
        assert (came.kind, came.nick) == ("join", "hangup")
    finally:
        kill_session(name)
    went = await next_event(watcher, ev.Presence, timeout=20)
    assert (went.kind, went.nick) == ("quit", "hangup")
    await watcher.close()
    # And the process ends: Textual's shutdown could hang on the vanished
    # terminal, leaving a process behind after every closed window.
    async with asyncio.timeout(30):
        while process_alive(pid):
            await asyncio.sleep(0.1)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def screen_shows(session: str, text: str, gone: str = "") -> str:
    """The screen once ``text`` is on it (and ``gone`` is not)."""
    deadline = asyncio.get_running_loop().time() + 10
    screen = ""
    while text not in screen or (gone and gone in screen):
        assert asyncio.get_running_loop().time() < deadline, screen
        screen = await capture(session)
    return screen


async def test_local_in_a_real_terminal_at_80x24(tmp_path: Path) -> None:
    """``anonchat --local`` at 80×24: the message pane has the width, the
    command others run is on screen in two rows that paste back into one
    working command, and quitting asks first while someone else is connected."""
    command = [sys.executable, "-m", "anonchat", "--local", "--port", "0", "--nick", "host"]
    home = str(tmp_path)
    size = (80, 24)
    name = start_session("anonchat-local", command, size, XDG_CONFIG_HOME=home, XDG_STATE_HOME=home)
    guest = None
    try:
        screen = await screen_shows(name, "anonchat 'anonchat://")
        rows = [row.strip() for row in screen.splitlines()]
        first = next(i for i, row in enumerate(rows) if row.startswith("anonchat 'anonchat://"))
        assert rows[first + 1].endswith("'"), screen  # two rows, no more
        words = shlex.split(rows[first] + rows[first + 1])
        assert words[0] == "anonchat" and len(words) == 2, screen
        # No side panels: the topic bar starts at the left edge, the pane is the width.
        assert rows[0].startswith("1 #lobby"), screen  # and its Alt+digit number
        # The status bar fits: hosting, and the keys that bring the panels back.
        assert "TLS hosting │" in rows[-1] and rows[-1].endswith("F5/F2 panels"), screen
        guest = await Endpoint.from_url(words[1], 7667).connect("guest")
        await guest.join("lobby")
        await guest.say("lobby", "hello host, the link works")
        await screen_shows(name, "hello host, the link works")
        await keys(name, "C-q")
        screen = await screen_shows(name, "1 other session is connected now")
        assert "Quit and stop hosting?" in screen
        await keys(name, "Escape")
        await screen_shows(name, "F5/F2 panels", gone="Quit and stop hosting?")
        await guest.say("lobby", "still here")
        await screen_shows(name, "still here")
        await keys(name, "C-q")
        await screen_shows(name, "Quit and stop hosting?")
        await keys(name, "C-q")  # Ctrl+Q again: quit, and the daemon with it
        await next_event(guest, ev.Bye, timeout=10)
        deadline = asyncio.get_running_loop().time() + 10
        while session_alive(name):
            assert asyncio.get_running_loop().time() < deadline, "the host did not exit"
            await asyncio.sleep(0.05)
    finally:
        if guest is not None:
            await guest.close()
        kill_session(name)


async def test_a_conversation_window_in_a_real_terminal(session: str, daemon: Daemon) -> None:
    """A direct message opens a window listed after the rooms, with an unread
    count and a mention mark; Alt+4 shows it, its bar names both DM keys, and a
    line typed there goes to the sender alone, sealed."""
    from anonchat.dm import DirectMessage

    await wait_room(session, "#three")
    bob = await dial(daemon, "bob")
    talk = await bob.open_dm("keys")
    await bob.send_dm(talk.peer, "psst, over here")
    label = f"@bob#{bob.dm_fingerprint}"
    screen = await screen_shows(session, label)
    entry = next(line for line in screen.splitlines() if label in line)
    assert "4" in entry.split(label)[0] and "@ (1)" in entry.split(label)[1]
    await keys(session, "Escape", "4")
    screen = await wait_room(session, label)
    assert "psst, over here" in screen and "direct messages, end-to-end" in screen
    assert f"keys#{talk.card.fingerprint}" in screen  # our side's fingerprint too
    await typed(session, "right here\r")
    async with asyncio.timeout(10):
        async for event in bob.events():
            if isinstance(event, DirectMessage) and not event.own:
                assert event.text == "right here"
                break
    await bob.close()


async def test_keys_typed_at_launch_reach_the_room(daemon: Daemon, tmp_path: Path) -> None:
    """``anonchat ... --join lobby`` and typing at once, as in a shell: the keys
    reach the terminal before the app reads them, and while it connects. The
    line goes to the room the start lands in, the rest waits in the box. (They
    were lost: nothing on screen took keys for the first moments.)"""
    watcher, name = await launched_in_lobby(daemon, tmp_path, "early")
    try:
        await typed(name, "hello early\rand more")
        got = await next_event(watcher, ev.Msg, timeout=20)
        assert (got.nick, got.text) == ("early", "hello early")
        await screen_shows(name, "and more")
    finally:
        kill_session(name)
    await watcher.close()


async def test_keys_typed_at_launch_reach_the_connect_form(tmp_path: Path) -> None:
    """``anonchat`` with nothing remembered: the form waits for a server, and
    what is typed at once, before the app is up, goes into its field."""
    command = [sys.executable, "-m", "anonchat"]
    name = start_session(
        "anonchat-form", command, (100, 30), ANONCHAT_CONFIG_DIR=str(tmp_path / "cfg")
    )
    try:
        await typed(name, "127.0.0.1:7999")
        # In the field (the terminal's own echo, before the app is up, is not).
        await screen_shows(name, "▊  127.0.0.1:7999")
    finally:
        kill_session(name)
