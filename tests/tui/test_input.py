"""The input box, the message pane's scrolling, and the dialogs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input

from anonchat.daemon import Daemon
from anonchat.tui.screens.chat import PASTE_ASK, ChatScreen
from anonchat.tui.screens.create_room import CreateRoomScreen
from anonchat.tui.screens.help import HelpScreen, help_text
from anonchat.tui.screens.paste import PasteScreen
from anonchat.tui.state import CONSOLE
from anonchat.tui.widgets.chat_input import ChatInput
from anonchat.tui.widgets.member_list import MemberList

from .conftest import app_for, lines, type_line, until_chat, wait_for


async def test_new_messages_wait_below_when_scrolled_up(daemon: Daemon, tmp_path: Path) -> None:
    alice = app_for(daemon.port, tmp_path, "alice", join=["lobby"])
    bob = app_for(daemon.port, tmp_path, "bob", join=["lobby"])
    async with alice.run_test(size=(100, 20)) as pa, bob.run_test(size=(100, 20)) as pb:
        ca, cb = await until_chat(pa), await until_chat(pb)
        await wait_for(pb, lambda: cb.state.current == "lobby")
        await wait_for(pa, lambda: ca.state.current == "lobby")
        for i in range(30):
            await type_line(pb, f"line {i}")
        await wait_for(pa, lambda: any("line 29" in x for x in lines(ca, "lobby")))
        await pa.pause()
        view = ca.view("lobby")
        log = view.log_widget
        assert log.is_vertical_scroll_end and log.follow
        await pa.press("pageup")
        await pa.pause()
        assert not log.follow
        top = log.scroll_y
        await type_line(pb, "while you read")
        await type_line(pb, "and another")
        await wait_for(pa, lambda: log.pending == 2, what="2 pending")
        await pa.pause()
        assert view.below.display
        assert "2 new messages below" in str(view.below.render())
        assert log.scroll_y == top  # did not jump
        await pa.press("end")  # the input is empty: End scrolls the pane
        await wait_for(pa, lambda: log.pending == 0 and log.follow)
        await pa.pause()
        assert not view.below.display
        await pa.press("home")
        await pa.pause()
        assert log.scroll_y == 0


async def test_history_and_tab_completion(daemon: Daemon, tmp_path: Path) -> None:
    alice = app_for(daemon.port, tmp_path, "alice", join=["lobby"])
    bob = app_for(daemon.port, tmp_path, "bobby", join=["lobby"])
    async with alice.run_test() as pa, bob.run_test() as pb:
        ca = await until_chat(pa)
        await until_chat(pb)
        await wait_for(pa, lambda: "bobby" in ca.state.rooms.get("lobby", _Empty).members)
        box = ca.query_one(ChatInput)
        await type_line(pa, "first")
        await type_line(pa, "second")
        await pa.press("up")
        assert box.value == "second"
        await pa.press("up", "up")
        assert box.value == "first"
        await pa.press("down", "down")
        assert box.value == ""
        await pa.press("B", "o", "tab")
        assert box.value == "bobby: "
        box.value = ""
        await pa.press("slash", "j", "o", "tab")
        assert box.value == "/join "
        box.value = ""
        await pa.press("slash", "l", "tab")
        assert box.value == "/leave "
        await pa.press("tab")
        assert box.value == "/list "  # Tab again: the next match


def top(app: App[Any]) -> Screen[Any]:
    """The screen on top (a call, so mypy does not keep an earlier narrowing)."""
    return app.screen


class _Empty:
    members: list[str] = []


async def test_help_screen_from_f1_and_question_mark(daemon: Daemon, tmp_path: Path) -> None:
    app = app_for(daemon.port, tmp_path, "alice")
    async with app.run_test(size=(100, 40)) as pilot:
        chat = await until_chat(pilot)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        text = help_text()
        shown = app.export_screenshot()
        assert "Commands" in shown and "Ctrl+N" in shown
        for word in ("/join", "/create", "/leave", "/nick", "/topic", "/me", "/who", "/list"):
            assert word in text
        await pilot.press("escape")
        assert top(app) is chat
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        # With text in the box, ? is just a character.
        await pilot.press("a", "question_mark")
        assert top(app) is chat
        assert chat.query_one(ChatInput).value == "a?"


async def test_create_room_dialog_and_member_toggle(daemon: Daemon, tmp_path: Path) -> None:
    app = app_for(daemon.port, tmp_path, "alice")
    async with app.run_test(size=(100, 30)) as pilot:
        chat = await until_chat(pilot)
        await pilot.press("f3")
        assert isinstance(app.screen, CreateRoomScreen)
        app.screen.query_one("#room-name", Input).value = "bad name"
        await pilot.click("#create")
        assert isinstance(app.screen, CreateRoomScreen)  # refused inline
        assert "must not contain" in str(app.screen.query_one("#create-error").render())
        app.screen.query_one("#room-name", Input).value = "garden"
        app.screen.query_one("#room-topic", Input).value = "plants and such"
        await pilot.pause(0.3)  # a Button ignores clicks while it shows the last one
        await pilot.click("#create")
        await wait_for(pilot, lambda: chat.state.current == "garden")
        assert chat.state.rooms["garden"].topic == "plants and such"
        assert chat.state.rooms["garden"].owner
        members = chat.query_one(MemberList)
        assert members.display
        await pilot.press("f2")
        assert not members.display
        await pilot.press("f2")
        assert members.display


async def test_leave_and_errors(daemon: Daemon, tmp_path: Path) -> None:
    app = app_for(daemon.port, tmp_path, "alice", join=["lobby"])
    async with app.run_test(size=(100, 30)) as pilot:
        chat = await until_chat(pilot)
        await wait_for(pilot, lambda: chat.state.current == "lobby")
        await type_line(pilot, "/bogus")
        assert any("unknown command /bogus" in x for x in lines(chat, "lobby"))
        await type_line(pilot, "/leave")
        await wait_for(pilot, lambda: not chat.state.rooms)
        assert chat.state.current == CONSOLE
        await type_line(pilot, "hello?")
        assert any("you are in no room" in x for x in lines(chat, CONSOLE))
        await type_line(pilot, "/join bad\u202ename")
        await wait_for(pilot, lambda: any("join failed" in x for x in lines(chat, CONSOLE)))


@asynccontextmanager
async def alice_and_bob_in_lobby(
    daemon: Daemon, tmp_path: Path
) -> AsyncIterator[tuple[Pilot[Any], ChatScreen, Pilot[Any], ChatScreen]]:
    """Two apps, alice and bob, both in lobby (alice's wide enough for dialogs)."""
    alice = app_for(daemon.port, tmp_path, "alice", join=["lobby"])
    bob = app_for(daemon.port, tmp_path, "bob", join=["lobby"])
    async with alice.run_test(size=(110, 32)) as pa, bob.run_test() as pb:
        ca, cb = await until_chat(pa), await until_chat(pb)
        await wait_for(pa, lambda: ca.state.current == "lobby")
        await wait_for(pb, lambda: cb.state.current == "lobby")
        yield pa, ca, pb, cb


def message_texts(chat: ChatScreen, key: str, nick: str) -> list[str]:
    prefix = f"{nick}  "
    return [line.split(prefix, 1)[1] for line in lines(chat, key) if prefix in line]


async def test_a_paste_of_a_few_lines_sends_each_line_as_text(
    daemon: Daemon, tmp_path: Path
) -> None:
    """Textual's input keeps only a paste's first line; ours sends every line, in
    order, as text (a pasted "/quit" is not a command)."""
    async with alice_and_bob_in_lobby(daemon, tmp_path) as (pa, ca, pb, cb):
        box = ca.query_one(ChatInput)
        box.focus()
        box.value, box.cursor_position = "typed, then ", len("typed, then ")
        box.post_message(events.Paste("one\n\ntwo\n/quit\n"))
        want = ["typed, then one", "two", "/quit"]
        await wait_for(pb, lambda: message_texts(cb, "lobby", "alice") == want, what="3 lines")
        assert box.value == ""
        assert ca.connected and ca.screen is pa.app.screen


async def test_a_long_paste_asks_first(daemon: Daemon, tmp_path: Path) -> None:
    async with alice_and_bob_in_lobby(daemon, tmp_path) as (pa, ca, pb, cb):
        box = ca.query_one(ChatInput)
        box.focus()
        paste = "\n".join(f"line {n}" for n in range(12))
        box.post_message(events.Paste(paste))
        await wait_for(pa, lambda: isinstance(pa.app.screen, PasteScreen), what="the question")
        await pa.press("escape")
        await wait_for(pa, lambda: pa.app.screen is ca)
        note = "the 12 pasted lines were not sent"
        await wait_for(pa, lambda: any(note in x for x in lines(ca, "lobby")), what=note)
        box.post_message(events.Paste(paste))
        await wait_for(pa, lambda: isinstance(pa.app.screen, PasteScreen), what="asked again")
        await pa.press("enter")  # Send has the focus
        want = [f"line {n}" for n in range(12)]
        await wait_for(pb, lambda: message_texts(cb, "lobby", "alice") == want, what="12 lines")


@pytest.mark.parametrize("count", [PASTE_ASK, PASTE_ASK + 1])
async def test_a_paste_at_the_limit_goes_at_once_and_one_more_asks(
    daemon: Daemon, tmp_path: Path, count: int
) -> None:
    async with alice_and_bob_in_lobby(daemon, tmp_path) as (pa, ca, pb, cb):
        want = [f"line {n}" for n in range(count)]
        ca.query_one(ChatInput).post_message(events.Paste("\n".join(want)))
        if count > PASTE_ASK:
            await wait_for(pa, lambda: isinstance(pa.app.screen, PasteScreen), what="asked")
            await pa.press("enter")
        await wait_for(pb, lambda: message_texts(cb, "lobby", "alice") == want, what="all lines")
        assert pa.app.screen is ca
