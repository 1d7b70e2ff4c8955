"""The layout fits the terminal: at 80×24 the message pane gets the width (the
side panels start hidden and F5/F2 bring them back), a wide terminal shows
them, and the status bar says which hidden rooms have news."""

from __future__ import annotations

from pathlib import Path

from anonchat.client import Endpoint
from anonchat.daemon import Daemon
from anonchat.tui.screens.chat import SIDE_PANELS_FROM
from anonchat.tui.widgets.member_list import MemberList
from anonchat.tui.widgets.room_list import RoomList
from anonchat.tui.widgets.status_bar import StatusBar

from .conftest import PIN, app_for, until_chat, wait_for


async def test_at_80x24_the_message_pane_gets_the_width(daemon: Daemon, tmp_path: Path) -> None:
    app = app_for(daemon.port, tmp_path, "alice", join=["lobby", "dev"])
    async with app.run_test(size=(80, 24)) as pilot:
        chat = await until_chat(pilot)
        await wait_for(pilot, lambda: chat.state.current == "dev" and "lobby" in chat.state.rooms)
        rooms, members = chat.query_one(RoomList), chat.query_one(MemberList)
        log = chat.view("dev").log_widget
        assert not rooms.display and not members.display
        assert log.size.width >= 76, log.size  # was 32 with both panels
        # With the room list hidden, the topic bar gives the window's Alt+digit number.
        assert str(chat.query_one("#topic-bar").render()).startswith("2 #dev")
        bar = chat.query_one(StatusBar).render_text().plain
        assert "F5/F2 panels" in bar and len(bar) <= 80
        # News in a room not on screen shows in the status bar while the list is hidden.
        bob = await Endpoint("127.0.0.1", daemon.port, pin=PIN).connect("bob")
        try:
            await bob.join("lobby")
            await bob.say("lobby", "psst")
            await wait_for(pilot, lambda: chat.state.rooms["lobby"].unread == 1)
            busy = chat.query_one(StatusBar).render_text().plain
            assert "act: 1" in busy and busy.endswith("F1 help") and len(busy) <= 80, busy
        finally:
            await bob.close()
        await pilot.press("f5")
        await wait_for(pilot, lambda: rooms.display and rooms.size.width > 0)
        assert "act:" not in chat.query_one(StatusBar).render_text().plain  # the list shows it
        await pilot.press("f2")
        await wait_for(pilot, lambda: members.display and members.size.width > 0)
        await pilot.press("f5", "f2")
        await wait_for(pilot, lambda: not rooms.display and not members.display)
        # Wide enough: both panels, and the full hint.
        await pilot.resize_terminal(SIDE_PANELS_FROM + 20, 30)
        await wait_for(pilot, lambda: rooms.display and members.display)
        assert "Ctrl+Q quit" in chat.query_one(StatusBar).render_text().plain
        # Narrow again: hidden again.
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: not rooms.display and not members.display)


async def test_a_long_server_name_leaves_the_state_and_the_nick_on_the_status_bar(
    daemon: Daemon, tmp_path: Path
) -> None:
    """An onion address through a proxy is over 90 columns: at 80 the connection
    state and the nick went off the end of the line. The name gives way,
    shortened in the middle, and comes back whole when there is room."""
    onion = "p53lf57qovyuvwsc6xnrppyply3vtqm7l6pcobkmyqsiofyeznfu5uqd.onion:7667"
    label = f"{onion} via socks5 127.0.0.1:9050"
    app = app_for(daemon.port, tmp_path, "alice", join=["lobby"])
    async with app.run_test(size=(80, 24)) as pilot:
        chat = await until_chat(pilot)
        bar = chat.query_one(StatusBar)
        bar.set(server=label)  # what the app shows for --proxy and an onion --server
        await pilot.pause()
        shown = bar.render_text().plain
        assert "● connected" in shown and "alice" in shown and len(shown) <= 80, shown
        assert shown.startswith(" p53lf57") and "…" in shown
        assert "via socks5 127.0.0.1:9050" in shown  # the proxy is never cut
        await pilot.resize_terminal(200, 30)
        await wait_for(pilot, lambda: label in bar.render_text().plain)
