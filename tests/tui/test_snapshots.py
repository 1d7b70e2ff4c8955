"""Screenshots compared with approved SVGs (pytest-textual-snapshot).

Deterministic by construction: a fixed clock, a fixed nick, no latency
probe, no cursor blink, and a daemon on a fixed loopback port (the port is
shown in the status bar).  Update after an intended change with
``pytest tests/tui/test_snapshots.py --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from anonchat.client import Client, Endpoint
from anonchat.daemon import Daemon
from anonchat.tui import make_app
from anonchat.tui.session import ConnectOptions, connect

from .conftest import (
    PIN,
    ThreadedDaemon,
    app_for,
    daemon_config,
    lines,
    type_line,
    until_chat,
    wait_for,
)

SNAPSHOT_PORT = 47667
SIZE = (110, 32)

SnapCompare = Callable[..., bool]


class FixedPortDaemon(ThreadedDaemon):
    def __init__(self) -> None:
        super().__init__()
        self.daemon = Daemon(daemon_config(SNAPSHOT_PORT))


@pytest.fixture
def fixed_daemon() -> Iterator[ThreadedDaemon]:
    d = FixedPortDaemon()
    try:
        d.__enter__()
    except OSError as exc:
        d.loop.call_soon_threadsafe(d.loop.stop)
        raise AssertionError(f"the snapshot port {SNAPSHOT_PORT} must be free: {exc}") from None
    try:
        yield d
    finally:
        d.__exit__()


def test_connect_screen(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = make_app(tmp_path / "s", server="127.0.0.1:7667", rng=random.Random(1))
    assert snap_compare(app, terminal_size=SIZE)


def test_help_screen(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = make_app(tmp_path / "s", server="127.0.0.1:7667", nick="alice")
    assert snap_compare(app, press=["f1"], terminal_size=(110, 48))


def test_chat_screen_with_messages(
    snap_compare: SnapCompare, fixed_daemon: ThreadedDaemon, tmp_path: Path
) -> None:
    app = app_for(SNAPSHOT_PORT, tmp_path, "alice", join=["lobby", "dev"])
    bob: list[Client] = []

    async def bob_does(*steps: tuple[str, Any]) -> None:
        if not bob:
            bob.append(
                await connect(
                    "127.0.0.1",
                    SNAPSHOT_PORT,
                    "bob",
                    ConnectOptions(Endpoint("127.0.0.1", SNAPSHOT_PORT, pin=PIN)),
                )
            )
        for what, arg in steps:
            if what == "join":
                await bob[0].join(arg)
            else:
                room, text, me = arg
                await bob[0].say(room, text, me=me)

    async def run_before(pilot: Pilot[Any]) -> None:
        chat = await until_chat(pilot)
        await wait_for(pilot, lambda: chat.state.current == "dev" and "lobby" in chat.state.rooms)
        await pilot.press("alt+1")
        fixed_daemon.call(bob_does(("join", "lobby"), ("join", "dev")))
        fixed_daemon.call(bob_does(("say", ("lobby", "hi alice! welcome to [b]lobby[/b]", False))))
        await type_line(pilot, "hello bob, nice to be here")
        fixed_daemon.call(bob_does(("say", ("lobby", "waves", True))))
        fixed_daemon.call(bob_does(("say", ("dev", "the build is green", False))))
        await wait_for(pilot, lambda: chat.state.rooms["dev"].unread == 1)
        await wait_for(pilot, lambda: any("waves" in x for x in lines(chat, "lobby")))
        await pilot.pause(0.2)

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        if bob:
            fixed_daemon.call(bob[0].close())


def test_passphrase_modal(
    snap_compare: SnapCompare, fixed_daemon: ThreadedDaemon, tmp_path: Path
) -> None:
    app = app_for(SNAPSHOT_PORT, tmp_path, "alice", join=["lobby"])

    async def run_before(pilot: Pilot[Any]) -> None:
        chat = await until_chat(pilot)
        await wait_for(pilot, lambda: chat.state.current == "lobby")
        await type_line(pilot, "/secret hideout")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "PassphraseScreen")
        await pilot.press(*"not the passphrase")  # shown masked
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
