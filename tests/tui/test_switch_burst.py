"""Lines typed right after /join, /create or /query, before it ran.

A burst ("/create #dev", Enter, "hello", Enter, faster than the server
answers), a paste without bracketed paste, or a slow link: the user means
the line for the window the command opens, not the one on screen when it was
typed.  It goes there; if the command opened no window (a room that does
not exist), it goes nowhere and the user is told.  A line typed in a window
the user is looking at still goes to that window, even if another is on
screen by the time it runs (test_chat.py, test_resilience.py).

The bursts are made by handing the screen the lines of several Enters
before any of them runs (``ChatScreen.submitted``, what Enter posts); the
terminal's own burst, keys and all, is in test_tmux.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from anonchat import events as ev
from anonchat.client import Client
from anonchat.daemon import Daemon
from anonchat.dm import DirectMessage
from anonchat.tui.screens.chat import ChatScreen
from anonchat.tui.widgets.chat_input import ChatInput

from ..helpers import dial, next_event
from .conftest import app_for, lines, until_chat, wait_for


def burst(chat: ChatScreen, *typed: str) -> None:
    """Enter pressed after each line, all before the first has run."""
    for line in typed:
        chat.submitted(ChatInput.Line(line))


@asynccontextmanager
async def alice_in_lobby(
    daemon: Daemon, tmp_path: Path, *rooms: str
) -> AsyncIterator[tuple[Client, Pilot[Any], ChatScreen]]:
    """bob makes ``rooms`` (lobby first) and stays; alice's app joins lobby."""
    bob = await dial(daemon, "bob")
    for room in rooms:
        await bob.create(room)
    app = app_for(daemon.port, tmp_path, "alice", join=["lobby"])
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            chat = await until_chat(pilot)
            await wait_for(pilot, lambda: chat.state.current == "lobby")
            yield bob, pilot, chat
    finally:
        await bob.close()


async def test_a_line_typed_after_create_goes_to_the_new_room(
    daemon: Daemon, tmp_path: Path
) -> None:
    async with alice_in_lobby(daemon, tmp_path, "lobby") as (bob, pilot, chat):
        burst(chat, "/create #dev", "in dev", "/topic for dev only")
        await wait_for(pilot, lambda: chat.state.current == "dev", what="#dev on screen")
        await wait_for(
            pilot, lambda: any("in dev" in x for x in lines(chat, "dev")), what="the line in #dev"
        )
        await wait_for(pilot, lambda: chat.state.rooms["dev"].topic == "for dev only")
        assert [data for _, _, data in daemon.rooms["dev"].ring.entries() if b"in dev" in data]
        # bob, in #lobby all along, never saw the line: the next thing there is
        # alice's message typed in #lobby, after the burst.
        chat.submitted(ChatInput.Line("/join #lobby"))
        await wait_for(pilot, lambda: chat.state.current == "lobby")
        chat.submitted(ChatInput.Line("in lobby"))
        said = await next_event(bob, ev.Msg)
        assert (said.room, said.text) == ("lobby", "in lobby")
        assert not any("in dev" in x for x in lines(chat, "lobby"))


async def test_lines_after_join_go_to_the_room_joined_each_in_turn(
    daemon: Daemon, tmp_path: Path
) -> None:
    async with alice_in_lobby(daemon, tmp_path, "lobby", "dev", "ops") as (bob, pilot, chat):
        burst(chat, "/join #dev", "one", "/j ops", "two", "/join lobby", "three")
        got = [await next_event(bob, ev.Msg) for _ in range(3)]
        said = [(m.room, m.text) for m in got]
        assert said == [("dev", "one"), ("ops", "two"), ("lobby", "three")]
        await wait_for(pilot, lambda: chat.state.current == "lobby")


async def test_a_line_after_a_join_that_failed_is_not_sent_anywhere(
    daemon: Daemon, tmp_path: Path
) -> None:
    async with alice_in_lobby(daemon, tmp_path, "lobby") as (bob, _, chat):
        # (A room that does not exist is made by /join, as in IRC: a name that
        # cannot be a room's is refused.)
        burst(chat, "/join bad\u202ename", "meant for it", "/leave", "/join #lobby", "after")
        said = await next_event(bob, ev.Msg)
        # Neither the line nor the /leave ran in #lobby; the /join after them did.
        assert (said.room, said.text) == ("lobby", "after")
        assert chat.state.current == "lobby" and chat.state.rooms["lobby"].joined
        shown = "\n".join(x for key in chat.state.windows() for x in lines(chat, key))
        assert "which opened no window: meant for it" in shown
        assert "/leave" in shown


async def test_a_line_after_query_goes_to_the_conversation(daemon: Daemon, tmp_path: Path) -> None:
    async with alice_in_lobby(daemon, tmp_path, "lobby") as (bob, _, chat):
        burst(chat, "/query bob", "just between us")
        direct = await next_event(bob, DirectMessage)
        assert direct.text == "just between us"
        assert not any("just between us" in x for x in lines(chat, "lobby"))


async def test_a_paste_right_after_join_goes_to_the_room_joined(
    daemon: Daemon, tmp_path: Path
) -> None:
    """A bracketed paste (its lines are text, never commands) right after a
    /join that has not run yet: for the room joined, as a typed line would be."""
    async with alice_in_lobby(daemon, tmp_path, "lobby", "dev") as (bob, _, chat):
        await bob.leave("lobby")
        chat.submitted(ChatInput.Line("/join #dev"))
        chat.pasted(ChatInput.Pasted(["first pasted", "/not a command"]))
        got = [await next_event(bob, ev.Msg) for _ in range(2)]
        assert [(m.room, m.text) for m in got] == [
            ("dev", "first pasted"),
            ("dev", "/not a command"),
        ]
