"""Reconnects, hostile text, the connect screen's errors, remembered settings."""

from __future__ import annotations

import json
import socket
import unicodedata
from pathlib import Path

from textual.widgets import Button, Input, Static

from anonchat import events as ev
from anonchat.daemon import Daemon, state
from anonchat.tui.messages import ServerEvent
from anonchat.tui.screens.chat_view import GAP_NOTE
from anonchat.tui.screens.connect import ConnectScreen
from anonchat.tui.settings import SETTINGS_FILE
from anonchat.tui.state import CONSOLE
from anonchat.tui.widgets.message_log import MessageLog
from anonchat.tui.widgets.status_bar import StatusBar

from .conftest import app_for, daemon_config, lines, type_line, until_chat, wait_for


async def test_reconnect_after_daemon_restart(tmp_path: Path) -> None:
    first = Daemon(daemon_config())
    await first.start()
    port = first.port
    alice = app_for(port, tmp_path, "alice", join=["lobby"])
    bob = app_for(port, tmp_path, "bob", join=["lobby"])
    second: Daemon | None = None
    try:
        async with alice.run_test(size=(100, 30)) as pa, bob.run_test(size=(100, 30)) as pb:
            ca, cb = await until_chat(pa), await until_chat(pb)
            await wait_for(
                pa, lambda: "lobby" in ca.state.rooms and "bob" in ca.state.rooms["lobby"].members
            )
            await first.shutdown()
            await wait_for(pa, lambda: ca.query_one(StatusBar).state == "reconnecting")
            assert "reconnecting" in ca.query_one(StatusBar).render_text().plain
            assert any("disconnected" in x for x in lines(ca, "lobby"))
            second = Daemon(daemon_config(port))
            await second.start()
            await wait_for(pa, lambda: ca.connected, timeout=10, what="alice back")
            await wait_for(pb, lambda: cb.connected, timeout=10, what="bob back")
            assert ca.query_one(StatusBar).state == "connected"
            assert any(GAP_NOTE in x for x in lines(ca, "lobby"))
            assert ca.client.nick == "alice"
            # The room was created again on the new daemon, and both are in it.
            await type_line(pb, "still here?")
            await wait_for(pa, lambda: any("still here?" in x for x in lines(ca, "lobby")))
    finally:
        await first.shutdown()
        if second is not None:
            await second.shutdown()


def screen_text(log: MessageLog) -> str:
    """Everything the log would draw, segment by segment."""
    return "".join(seg.text for strip in log.lines for seg in strip)


async def test_hostile_text_never_reaches_the_screen(daemon: Daemon, tmp_path: Path) -> None:
    alice = app_for(daemon.port, tmp_path, "alice", join=["lobby"])
    bob = app_for(daemon.port, tmp_path, "bob", join=["lobby"])
    async with alice.run_test(size=(100, 30)) as pa, bob.run_test(size=(100, 30)) as pb:
        ca, cb = await until_chat(pa), await until_chat(pb)
        await wait_for(pb, lambda: cb.state.current == "lobby")
        await wait_for(pa, lambda: ca.state.current == "lobby")
        # What the daemon lets through: bidi overrides, zero-width, markup-looking text.
        await type_line(pb, "[red]evil[/red] [link=http://x]click[/link] \u202egnp.exe \u200b")
        # Only the room's owner may set the topic; whichever of the two created it does.
        await type_line(pb, "/topic [b]bold\u202e[/b]")
        await type_line(pa, "/topic [b]bold\u202e[/b]")
        await wait_for(pa, lambda: any("evil" in x for x in lines(ca, "lobby")))
        await wait_for(pa, lambda: "bold" in ca.state.rooms["lobby"].topic)
        # What only a broken or hostile server could send: C0/C1 controls in
        # every field.  Fed through the same path as frames from the socket.
        ca.post_message(
            ServerEvent(
                ev.Msg(
                    room="lobby",
                    seq=99,
                    ts=0,
                    nick="mal\x1b[2Jlory\x07",
                    text="\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\ \x1b[31mred\x9b2J\r\x08",
                )
            )
        )
        await wait_for(pa, lambda: any("mal" in x for x in lines(ca, "lobby")))
        await pa.pause()
        log = ca.view("lobby").log_widget
        drawn = screen_text(log)
        for ch in drawn:
            assert unicodedata.category(ch) not in {"Cc", "Cf"}, repr(ch)
        assert "[red]evil[/red]" in drawn  # markup shown as typed, not applied
        assert "<U+202E>" in drawn and "^[" in drawn
        for strip in log.lines:
            for seg in strip:
                assert seg.style is None or not seg.style.link, seg
        topic = str(ca.query_one("#topic-bar", Static).render())
        assert "[b]bold<U+202E>[/b]" in topic
        svg = alice.export_screenshot()
        assert "\x1b" not in svg and "\u202e" not in svg


async def test_connect_errors_are_shown_inline(daemon: Daemon, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    app = app_for(dead, tmp_path, "alice")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, ConnectScreen)
        error = screen.query_one("#server-error", Static)
        await wait_for(pilot, lambda: bool(str(error.render())), what="server error")
        assert "Cannot reach" in str(error.render())
        assert screen.query_one("#connect", Button).has_focus  # not a field: see below
        # Now a reachable server, but the nick is taken.
    holder = app_for(daemon.port, tmp_path, "taken")
    second = app_for(daemon.port, tmp_path, "taken")
    async with holder.run_test() as ph, second.run_test() as ps:
        await until_chat(ph)
        screen = second.screen
        assert isinstance(screen, ConnectScreen)
        nick_error = screen.query_one("#nick-error", Static)
        await wait_for(ps, lambda: bool(str(nick_error.render())), what="nick error")
        assert "taken" in str(nick_error.render())
        # The focus is on the button, not in the field: a burst typed now (here
        # "/secret x" and a passphrase, as over a slow link) replaced the selected
        # nick, and its Enter sent the passphrase to the server as a nick.
        assert screen.query_one("#connect", Button).has_focus
        await ps.press(*"/secret x", "enter", *"pass-word", "enter")
        await wait_for(ps, lambda: not screen.query_one("#connect", Button).disabled)
        assert screen.query_one("#nick", Input).value == "taken"
        assert isinstance(second.screen, ConnectScreen)  # still here: nobody connected
        assert state.holder(daemon.shared, "pass-word") is None  # the daemon never saw it
        # A look-alike (Cyrillic а) is refused too, and the form says what it looks like.
        screen.query_one("#nick", Input).value = "t\u0430ken"
        screen.query_one("#nick", Input).focus()
        await ps.press("enter")
        await wait_for(
            ps, lambda: "looks like taken" in str(nick_error.render()), what="look-alike"
        )
        # Pick another nick and connect from the form (Enter in the nick field).
        screen.query_one("#nick", Input).value = "free"
        screen.query_one("#nick", Input).focus()
        await ps.press("enter")
        chat = await until_chat(ps)
        assert chat.client.nick == "free"


async def test_settings_remembered_between_runs(daemon: Daemon, tmp_path: Path) -> None:
    settings = tmp_path / "remember"
    first = app_for(daemon.port, tmp_path, "alice")
    first.settings_dir = settings
    async with first.run_test() as pilot:
        chat = await until_chat(pilot)
        await type_line(pilot, "/theme nord")
        await wait_for(pilot, lambda: first.theme == "nord")
        await type_line(pilot, "/nick alicia")
        await wait_for(pilot, lambda: chat.client.nick == "alicia")
        await pilot.pause()
    saved = json.loads((settings / SETTINGS_FILE).read_text())
    assert saved == {"server": f"127.0.0.1:{daemon.port}", "nick": "alicia", "theme": "nord"}
    from anonchat.tui import make_app

    again = make_app(settings)
    async with again.run_test() as pilot:
        screen = again.screen
        assert isinstance(screen, ConnectScreen)
        assert screen.query_one("#server", Input).value == f"127.0.0.1:{daemon.port}"
        assert screen.query_one("#nick", Input).value == "alicia"
        assert again.theme == "nord"


async def test_random_nick_default_is_readable(tmp_path: Path) -> None:
    import random

    from anonchat.tui import make_app

    app = make_app(tmp_path / "fresh", rng=random.Random(7))
    async with app.run_test() as pilot:
        screen = app.screen
        assert isinstance(screen, ConnectScreen)
        nick = screen.query_one("#nick", Input).value
        assert nick.count("-") == 2 and nick.split("-")[2].isdigit()
        await pilot.click("#reroll")
        assert screen.query_one("#nick", Input).value != ""
    assert CONSOLE == ""


async def test_a_dropped_connection_resumes_without_losing_messages(
    daemon: Daemon, tmp_path: Path
) -> None:
    alice = app_for(daemon.port, tmp_path, "alice", join=["lobby"])
    bob = app_for(daemon.port, tmp_path, "bob", join=["lobby"])
    async with alice.run_test(size=(100, 30)) as pa, bob.run_test(size=(100, 30)) as pb:
        ca, cb = await until_chat(pa), await until_chat(pb)
        await wait_for(pa, lambda: "bob" in ca.state.rooms["lobby"].members)
        (session,) = [s for s in daemon.sessions if s.nick == "alice"]
        session.transport.abort()  # the network drops alice's connection
        await type_line(pb, "said while alice was away")
        await wait_for(pa, lambda: any("resumed" in x for x in lines(ca, "lobby")), timeout=10)
        await wait_for(
            pa, lambda: any("said while alice was away" in x for x in lines(ca, "lobby"))
        )
        assert ca.client.nick == "alice" and ca.client.resumed
        # bob never saw alice leave.
        assert not any("alice quit" in x or "alice left" in x for x in lines(cb, "lobby"))


async def test_quitting_at_once_or_with_a_join_on_its_way_ends_cleanly(
    daemon: Daemon, tmp_path: Path
) -> None:
    """Ctrl+Q the moment the chat opens (its first join still on the way), and
    again right after typing a command: the app exits with status 0."""
    for n, typed in enumerate(("", "/join elsewhere")):
        app = app_for(daemon.port, tmp_path, f"quick{n}", join=["lobby", "two", "three"])
        async with app.run_test() as pilot:
            await until_chat(pilot)
            if typed:
                await type_line(pilot, typed)
            await pilot.press("ctrl+q")
        assert app.return_code == 0
