"""Screenshots compared with approved SVGs (pytest-textual-snapshot).

Deterministic by construction: a fixed clock, a fixed nick, no latency
probe, no cursor blink, a daemon key whose pin is PIN, and a fixed display
name for the server (the daemon listens on a port the system picks, which
the screen would otherwise show).  Update after an intended change with
``pytest tests/tui/test_snapshots.py --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from anonchat.client import Client, Endpoint
from anonchat.errors import Local
from anonchat.tui import AnonchatApp, make_app
from anonchat.tui.screens.key_changed import KeyChangedScreen, KeyProblem
from anonchat.tui.session import ConnectOptions, connect

from .conftest import (
    PIN,
    ThreadedDaemon,
    app_for,
    laid_out,
    lines,
    type_line,
    until_chat,
    wait_for,
)

SIZE = (110, 32)
#: What the status bar calls the daemon, whatever port it got.
SERVER_NAME = "snapshot-daemon"

SnapCompare = Callable[..., bool]
#: Some other key's pin (any well-formed pin: the dialog only shows it).
OTHER_PIN = "sha256/" + "A" * 43 + "="


def snapshot_app(daemon: ThreadedDaemon, tmp_path: Path, nick: str, **kwargs: Any) -> AnonchatApp:
    return app_for(daemon.port, tmp_path, nick, server_name=SERVER_NAME, **kwargs)


def test_connect_screen(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = make_app(tmp_path / "s", server="127.0.0.1:7667", rng=random.Random(1))
    assert snap_compare(app, terminal_size=SIZE)


def test_help_screen(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = make_app(tmp_path / "s", server="127.0.0.1:7667", nick="alice")
    assert snap_compare(app, press=["f1"], terminal_size=(110, 48))


class Bob:
    """A second user on the threaded daemon, driven from the app's loop."""

    def __init__(self, daemon: ThreadedDaemon) -> None:
        self.daemon = daemon
        self.client: Client | None = None

    def do(self, *steps: tuple[str, Any]) -> None:
        self.daemon.call(self._do(steps))

    async def _do(self, steps: tuple[tuple[str, Any], ...]) -> None:
        if self.client is None:
            endpoint = Endpoint("127.0.0.1", self.daemon.port, pin=PIN)
            self.client = await connect(
                "127.0.0.1", self.daemon.port, "bob", ConnectOptions(endpoint)
            )
        for what, arg in steps:
            if what == "join":
                await self.client.join(arg)
            elif what == "create":
                await self.client.create(arg)
            elif what == "kick":
                room, nick, reason = arg
                await self.client.kick(room, nick, reason)
            else:
                room, text, me = arg
                await self.client.say(room, text, me=me)

    def close(self) -> None:
        if self.client is not None:
            self.daemon.call(self.client.close())


def chat_with_messages(bob: Bob) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """alice in #lobby and #dev, bob saying things: a message, an action, an unread."""

    async def run_before(pilot: Pilot[Any]) -> None:
        chat = await until_chat(pilot)
        await wait_for(pilot, lambda: chat.state.current == "dev" and "lobby" in chat.state.rooms)
        await pilot.press("alt+1")
        bob.do(("join", "lobby"), ("join", "dev"))
        bob.do(("say", ("lobby", "hi alice! welcome to [b]lobby[/b]", False)))
        await type_line(pilot, "hello bob, nice to be here")
        bob.do(("say", ("lobby", "waves", True)))
        bob.do(("say", ("dev", "the build is green", False)))
        await wait_for(pilot, lambda: chat.state.rooms["dev"].unread == 1)
        await wait_for(pilot, lambda: any("waves" in x for x in lines(chat, "lobby")))
        await wait_for(pilot, lambda: laid_out(chat, "lobby"))
        await pilot.pause()

    return run_before


def test_chat_screen_with_messages(
    snap_compare: SnapCompare, threaded_daemon: ThreadedDaemon, tmp_path: Path
) -> None:
    app = snapshot_app(threaded_daemon, tmp_path, "alice", join=["lobby", "dev"])
    bob = Bob(threaded_daemon)
    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=chat_with_messages(bob))
    finally:
        bob.close()


def test_chat_screen_at_80x24(
    snap_compare: SnapCompare, threaded_daemon: ThreadedDaemon, tmp_path: Path
) -> None:
    """At 80×24 the side panels start hidden: the message pane has 78 columns,
    and the status bar shows the unread room (act: 2) and the keys for the panels."""
    app = snapshot_app(threaded_daemon, tmp_path, "alice", join=["lobby", "dev"])
    bob = Bob(threaded_daemon)
    try:
        assert snap_compare(app, terminal_size=(80, 24), run_before=chat_with_messages(bob))
    finally:
        bob.close()


def test_kicked_notice(
    snap_compare: SnapCompare, threaded_daemon: ThreadedDaemon, tmp_path: Path
) -> None:
    """Kicked: said in the room's pane (which stays, marked not joined) and in a toast."""
    app = snapshot_app(threaded_daemon, tmp_path, "alice", join=["lobby"])
    bob = Bob(threaded_daemon)

    async def run_before(pilot: Pilot[Any]) -> None:
        chat = await until_chat(pilot)
        await wait_for(pilot, lambda: chat.state.current == "lobby")
        bob.do(("create", "club"))
        await type_line(pilot, "/join club")
        await wait_for(pilot, lambda: chat.state.current == "club")
        bob.do(("kick", ("club", "alice", "off topic, again")))
        await wait_for(pilot, lambda: bool(chat.state.rooms["club"].removed))
        await wait_for(pilot, lambda: laid_out(chat, "club"))
        await pilot.pause()

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        bob.close()


def test_key_changed_modal(snap_compare: SnapCompare, tmp_path: Path) -> None:
    """The dialog for a changed server key, with fixed contents (tests/tui/test_notices.py
    drives the real one, from a daemon that presents another key)."""
    app = make_app(tmp_path / "s", server="127.0.0.1:7667", nick="alice")
    problem = KeyProblem(
        Local.HOST_KEY_CHANGED,
        "127.0.0.1",
        7667,
        f"WARNING: the key of 127.0.0.1:7667 has changed (now {OTHER_PIN}).",
        "~/.config/anonchat/known_hosts",
        2,
    )

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(KeyChangedScreen(problem))
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_passphrase_modal(
    snap_compare: SnapCompare, threaded_daemon: ThreadedDaemon, tmp_path: Path
) -> None:
    app = snapshot_app(threaded_daemon, tmp_path, "alice", join=["lobby"])

    async def run_before(pilot: Pilot[Any]) -> None:
        chat = await until_chat(pilot)
        await wait_for(pilot, lambda: chat.state.current == "lobby")
        await type_line(pilot, "/secret hideout")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "PassphraseScreen")
        await pilot.press(*"not the passphrase")  # shown masked
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
