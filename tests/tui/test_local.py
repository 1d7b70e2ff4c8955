"""``anonchat --local`` and ``/invite``: how others join is shown where the user
looks, as one command quoted for a shell, and quitting the host asks first
(its daemon runs in this process: quitting ends everyone's session)."""

from __future__ import annotations

import io
import shlex
from pathlib import Path

from anonchat import events as ev
from anonchat.client import Endpoint
from anonchat.daemon import Daemon
from anonchat.frontend.text import invite
from anonchat.linemode import run_line_mode
from anonchat.tui.screens.quit import QuitScreen
from anonchat.tui.widgets.status_bar import StatusBar

from ..helpers import next_event
from .conftest import PIN, app_for, lines, type_line, until_chat, wait_for


def command_in(shown: list[str]) -> list[str]:
    """The shell words of the one line that is the command (``anonchat '...'``)."""
    found = [x for x in shown if x.startswith("anonchat ")]
    assert len(found) == 1, shown
    return shlex.split(found[0])


async def test_invite_shows_the_command_quoted_and_it_works(daemon: Daemon, tmp_path: Path) -> None:
    app = app_for(daemon.port, tmp_path, "alice", join=["lobby"])
    async with app.run_test(size=(80, 24)) as pilot:
        chat = await until_chat(pilot)
        await wait_for(pilot, lambda: chat.state.current == "lobby")
        await type_line(pilot, "/invite")
        await wait_for(pilot, lambda: any(x.startswith("anonchat ") for x in lines(chat, "lobby")))
        shown = lines(chat, "lobby")
        assert any("others on this machine join with" in x for x in shown)
        words = command_in(shown)
        assert words[0] == "anonchat" and len(words) == 2
        assert app.clipboard == shlex.join(words)  # and sent to the terminal's clipboard
        # A line of its own (no time stamp), folded in two rows at 80×24, never three.
        await pilot.pause()
        rows = [strip.text.rstrip() for strip in chat.view("lobby").log_widget.lines]
        first = next(i for i, row in enumerate(rows) if row.startswith("anonchat '"))
        assert rows[first] + rows[first + 1] == shlex.join(words), rows[first : first + 3]
        endpoint = Endpoint.from_url(words[1], 7667)
        assert (endpoint.host, endpoint.port, endpoint.pin, endpoint.room) == (
            "127.0.0.1",
            daemon.port,
            PIN,
            "lobby",
        )
        guest = await endpoint.connect("guest")  # pinned to this daemon's key
        try:
            await guest.join("lobby")
            await type_line(pilot, "welcome")
            msg = await next_event(guest, ev.Msg)
            assert msg.text == "welcome"
        finally:
            await guest.close()


async def test_invite_from_a_secret_room_never_names_it(daemon: Daemon, tmp_path: Path) -> None:
    app = app_for(daemon.port, tmp_path, "alice", join=["lobby"])
    async with app.run_test(size=(100, 30)) as pilot:
        chat = await until_chat(pilot)
        await wait_for(pilot, lambda: chat.state.current == "lobby")
        # Created by the core itself (no form): a generated passphrase.
        attempt = chat.commands.secret_attempt(create=True)
        assert await attempt("hideout", "orbit-lemon-staple-horse-battery-canyon", False) is None
        key = "\U0001f512hideout"
        await wait_for(pilot, lambda: chat.state.current == key)
        await type_line(pilot, "/invite")
        await wait_for(pilot, lambda: any(x.startswith("anonchat ") for x in lines(chat, key)))
        shown = lines(chat, key)
        words = command_in(shown)
        assert "hideout" not in words[1]  # the server would learn the name
        assert Endpoint.from_url(words[1], 7667).room is None
        assert any("then /secret hideout" in x for x in shown)


def test_invite_without_tls_names_the_flags() -> None:
    shown, command = invite(("chat.example.org", 7667), "", "lobby")
    assert command == "anonchat --plaintext --server chat.example.org:7667 --join lobby"
    assert command in shown and any("not encrypted" in x for x in shown)
    assert shown[0].startswith("others join with")  # not loopback: not "on this machine"


def test_invite_through_a_proxy_says_so() -> None:
    _, command = invite(("abc.onion", 7667), PIN, "lobby", proxy=("127.0.0.1", 9050))
    words = shlex.split(command)
    assert words[:3] == ["anonchat", "--proxy", "socks5://127.0.0.1:9050"]
    assert Endpoint.from_url(words[3], 7667).pin == PIN


async def test_the_line_mode_has_invite_too(daemon: Daemon) -> None:
    out = io.StringIO()
    endpoint = Endpoint("127.0.0.1", daemon.port, pin=PIN, known_hosts=None)
    status = await run_line_mode(
        endpoint, nick="liner", join="lobby", stdin=io.StringIO("/invite\n"), stdout=out
    )
    assert status == 0
    shown = out.getvalue().splitlines()
    words = command_in(shown)  # a line of its own, without the system prefix
    assert Endpoint.from_url(words[1], 7667).room == "lobby"


async def test_the_host_sees_the_invite_and_quitting_asks_first(
    daemon: Daemon, tmp_path: Path
) -> None:
    app = app_for(
        daemon.port,
        tmp_path,
        "host",
        join=["lobby"],
        banner="hosting a daemon on 127.0.0.1 in this process",
        hosting=lambda: len(daemon.sessions),
    )
    async with app.run_test(size=(80, 24)) as pilot:
        chat = await until_chat(pilot)
        # Without typing anything: the command is in the room the host lands in.
        # (lines() makes a window it does not find: ask once the room is there.)
        await wait_for(pilot, lambda: "lobby" in chat.state.rooms, what="lobby")
        await wait_for(pilot, lambda: any(x.startswith("anonchat ") for x in lines(chat, "lobby")))
        assert chat.state.current == "lobby"
        words = command_in(lines(chat, "lobby"))
        assert Endpoint.from_url(words[1], 7667).room == "lobby"  # the room it is shown in
        bar = chat.query_one(StatusBar).render_text().plain
        assert " hosting │" in bar and bar.endswith("F5/F2 panels") and len(bar) <= 80, bar
        guest = await Endpoint("127.0.0.1", daemon.port, pin=PIN).connect("guest")
        try:
            await pilot.press("ctrl+q")
            await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="question")
            text = str(app.screen.query_one("#quit-text").render())
            assert "every session connected to it ends" in text
            assert "1 other session is connected now" in text
            await pilot.press("escape")  # stays: nobody's session ended
            await wait_for(pilot, lambda: app.screen is chat)
            assert app.return_code is None and daemon.sessions
            await type_line(pilot, "/quit bye all")  # /quit asks too
            await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="question")
            await pilot.press("ctrl+q")  # Ctrl+Q again: quit
            await wait_for(pilot, lambda: app.return_code == 0, what="exit")
        finally:
            await guest.close()


async def test_quitting_a_guest_does_not_ask(daemon: Daemon, tmp_path: Path) -> None:
    app = app_for(daemon.port, tmp_path, "guest", join=["lobby"])
    async with app.run_test(size=(80, 24)) as pilot:
        await until_chat(pilot)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.return_code == 0, what="exit")
        assert not isinstance(app.screen, QuitScreen)


async def test_invite_from_a_conversation_names_no_room(daemon: Daemon) -> None:
    """A window of direct messages is no room: the link would make the others
    join a public room named after the person."""
    bob = await Endpoint("127.0.0.1", daemon.port, pin=PIN).connect("bob")
    try:
        out = io.StringIO()
        endpoint = Endpoint("127.0.0.1", daemon.port, pin=PIN, known_hosts=None)
        await run_line_mode(
            endpoint, nick="liner", stdin=io.StringIO("/query bob\n/invite\n"), stdout=out
        )
        words = command_in(out.getvalue().splitlines())
        assert any("bob" in x and "direct" in x for x in out.getvalue().splitlines()), (
            out.getvalue()
        )
        assert Endpoint.from_url(words[1], 7667).room is None, out.getvalue()
    finally:
        await bob.close()
