"""Pilot tests against a real daemon on loopback: no mocks."""

from __future__ import annotations

from pathlib import Path

from textual.geometry import Region
from textual.widgets import ContentSwitcher, Static

from anonchat.daemon import Daemon
from anonchat.tui.screens.chat import ChatScreen
from anonchat.tui.state import CONSOLE
from anonchat.tui.widgets.chat_input import ChatInput
from anonchat.tui.widgets.message_log import RoomView
from anonchat.tui.widgets.room_list import RoomList

from ..helpers import dial
from .conftest import app_for, lines, type_line, until_chat, wait_for


async def test_two_apps_converse(daemon: Daemon, tmp_path: Path) -> None:
    alice = app_for(daemon.port, tmp_path, "alice", join=["lobby"])
    bob = app_for(daemon.port, tmp_path, "bob", join=["lobby"])
    async with alice.run_test(size=(100, 30)) as pa, bob.run_test(size=(100, 30)) as pb:
        ca = await until_chat(pa)
        cb = await until_chat(pb)
        await wait_for(pa, lambda: ca.state.current == "lobby", what="alice in lobby")
        await wait_for(pb, lambda: cb.state.current == "lobby", what="bob in lobby")
        await type_line(pa, "hello bob")
        await wait_for(pb, lambda: any("hello bob" in line for line in lines(cb, "lobby")))
        await type_line(pb, "/me waves")
        await wait_for(pa, lambda: any("* bob waves" in line for line in lines(ca, "lobby")))
        assert any("alice  hello bob" in line for line in lines(ca, "lobby"))
        assert "bob" in ca.state.rooms["lobby"].members
        assert lines(ca, CONSOLE)


async def test_unread_count_mention_toast_and_bell(daemon: Daemon, tmp_path: Path) -> None:
    alice = app_for(daemon.port, tmp_path, "alice", join=["lobby", "dev"])
    bob = app_for(daemon.port, tmp_path, "bob", join=["lobby"])
    async with (
        alice.run_test(size=(100, 30), notifications=True) as pa,
        bob.run_test(size=(100, 30)) as pb,
    ):
        ca = await until_chat(pa)
        cb = await until_chat(pb)
        await wait_for(pa, lambda: ca.state.current == "dev", what="alice in dev")
        await wait_for(pb, lambda: cb.state.current == "lobby", what="bob in lobby")
        await wait_for(pa, lambda: "bob" in ca.state.rooms["lobby"].members, what="bob seen")
        await type_line(pb, "just chatting")
        await type_line(pb, "hey Alice, look")
        await wait_for(pa, lambda: ca.state.rooms["lobby"].unread == 2, what="2 unread")
        lobby = ca.state.rooms["lobby"]
        assert lobby.mentioned
        assert alice.bells == 1
        await pa.pause()
        toasts = list(alice.screen.query("Toast"))
        assert toasts, "no mention toast"
        assert "hey Alice, look" in str(toasts[-1].render())
        prompt = ca.query_one(RoomList).get_option("w:lobby").prompt
        assert "(2)" in str(prompt) and "@" in str(prompt)
        # Switching to the room clears the marks.
        await pa.press("alt+1")
        assert ca.state.current == "lobby"
        assert lobby.unread == 0 and not lobby.mentioned
        # Own messages and messages without the nick neither toast nor ring.
        await type_line(pa, "alice here")
        await wait_for(pa, lambda: any("alice here" in x for x in lines(ca, "lobby")))
        assert alice.bells == 1


async def test_switch_rooms_by_keys_and_click(daemon: Daemon, tmp_path: Path) -> None:
    app = app_for(daemon.port, tmp_path, "carol", join=["one", "two", "three"])
    async with app.run_test(size=(100, 30)) as pilot:
        chat = await until_chat(pilot)
        await wait_for(pilot, lambda: len(chat.state.rooms) == 3, what="3 rooms")
        await wait_for(pilot, lambda: chat.state.current == "three")
        await pilot.press("ctrl+p")
        assert chat.state.current == "two"
        await pilot.press("alt+left")
        assert chat.state.current == "one"
        await pilot.press("ctrl+n")
        assert chat.state.current == "two"
        await pilot.press("alt+right", "alt+right")
        assert chat.state.current == CONSOLE  # wraps around to the server window
        await pilot.press("alt+3")
        assert chat.state.current == "three"
        await pilot.press("alt+0")
        assert chat.state.current == CONSOLE
        # The keys work while text is being typed, and leave the text alone.
        await pilot.press("h", "i", "ctrl+n")
        assert chat.state.current == "one"
        assert chat.query_one(ChatInput).value == "hi"
        # Click: row 0 is the border, then the server window, then rooms 1, 2, 3.
        await pilot.click(RoomList, offset=(5, 3))
        assert chat.state.current == "two"
        await pilot.click(RoomList, offset=(5, 1))
        assert chat.state.current == CONSOLE
        assert chat.query_one(ChatInput).has_focus


async def test_click_public_room_joins_it(daemon: Daemon, tmp_path: Path) -> None:
    dave = app_for(daemon.port, tmp_path, "dave", join=["garden"])
    erin = app_for(daemon.port, tmp_path, "erin")
    async with dave.run_test(size=(100, 30)) as pd, erin.run_test(size=(100, 30)) as pe:
        cd = await until_chat(pd)
        ce = await until_chat(pe)
        await wait_for(pd, lambda: cd.state.current == "garden")
        await type_line(pe, "/list")
        await wait_for(pe, lambda: any("#garden (1)" in x for x in lines(ce, CONSOLE)))
        # Rows: border, server window, separator, heading, #garden.
        rooms = ce.query_one(RoomList)
        assert rooms.get_option("p:garden") is not None
        await pe.click(RoomList, offset=(5, 4))
        await wait_for(pe, lambda: ce.state.current == "garden", what="erin joined garden")
        await wait_for(pd, lambda: "erin" in cd.state.rooms["garden"].members)


async def test_owners_commands(daemon: Daemon, tmp_path: Path) -> None:
    """Owners are shown (header, member list, /who); a ban of someone absent says
    so; the banned member is told in the room's window and a toast, by whom and
    why, and the window stays listed, marked not joined."""
    owner = app_for(daemon.port, tmp_path, "owner", join=["club"])
    troll = app_for(daemon.port, tmp_path, "troll", join=["club"])
    async with owner.run_test(size=(110, 32)) as po:
        co = await until_chat(po)
        await wait_for(po, lambda: co.state.current == "club")
        async with troll.run_test(size=(110, 32), notifications=True) as pt:
            ct = await until_chat(pt)
            await wait_for(po, lambda: "troll" in co.state.rooms["club"].members)
            await wait_for(pt, lambda: ct.state.current == "club")
            # Who owns the room: the header, the member list ("@") and /who.
            assert "owners: owner" in str(ct.query_one("#topic-bar", Static).render())
            members = str(ct.query_one("#member-names", Static).render())
            assert "@owner" in members and " troll" in members
            await type_line(pt, "/who")
            await wait_for(
                pt, lambda: any("#club (2): @owner, troll" in x for x in lines(ct, "club"))
            )
            assert any(x.endswith("owners: owner") for x in lines(ct, "club"))
            await type_line(pt, "/kick owner")  # not an owner: refused
            await wait_for(pt, lambda: any("only an owner" in x for x in lines(ct, "club")))
            await type_line(po, "/ban ghost")  # nobody of that name: said as a ban
            await wait_for(
                po,
                lambda: any(
                    "cannot ban ghost: nobody called ghost" in x for x in lines(co, "club")
                ),
            )
            assert not any("kick" in x for x in lines(co, "club")[-1:])
            await type_line(po, "/mode slow 5")
            await wait_for(po, lambda: any("slow mode 5 s" in x for x in lines(co, "club")))
            await type_line(po, "/ban troll spamming")
            await wait_for(
                po,
                lambda: any("troll was banned by owner (spamming)" in x for x in lines(co, "club")),
            )
            await wait_for(pt, lambda: ct.state.rooms["club"].removed != "", what="troll removed")
            assert "troll" not in co.state.rooms["club"].members
            # The window stays, marked not joined, and says what happened where troll looks.
            club = ct.state.rooms["club"]
            assert not club.joined and ct.state.current == "club"
            said = "you were banned from #club by owner: spamming"
            assert any(said in x for x in lines(ct, "club")), lines(ct, "club")
            assert any(said in x for x in lines(ct, CONSOLE))
            assert "○ #club" in str(ct.query_one(RoomList).get_option("w:club").prompt)
            assert "not joined: you were banned by owner" in str(
                ct.query_one("#topic-bar", Static).render()
            )
            await pt.pause()
            toasts = [str(t.render()) for t in troll.screen.query("Toast")]
            assert any(said in t.lower() for t in toasts), toasts
            # Typed there now: not sent, and said so.
            await type_line(pt, "still here?")
            await wait_for(pt, lambda: any("not sent" in x for x in lines(ct, "club")))


async def test_lines_that_arrive_in_a_hidden_room_are_wrapped_to_the_pane(
    daemon: Daemon, tmp_path: Path
) -> None:
    """A room not on screen has no width; what arrives there must still be laid
    out for the pane it is shown in (it was once wrapped one character wide)."""
    alice = app_for(daemon.port, tmp_path, "alice", join=["lobby", "dev"])
    bob = app_for(daemon.port, tmp_path, "bob", join=["lobby"])
    async with alice.run_test(size=(100, 30)) as pa, bob.run_test(size=(100, 30)) as pb:
        ca = await until_chat(pa)
        await until_chat(pb)
        await wait_for(pa, lambda: ca.state.current == "dev", what="alice in dev")
        await wait_for(pa, lambda: "bob" in ca.state.rooms["lobby"].members, what="bob seen")
        await pa.press("alt+1")  # lobby on screen (its width known), then hidden again
        await pa.pause()
        await pa.press("alt+2")
        await pa.pause()
        await type_line(pb, "said while alice looks at another room")
        await wait_for(pa, lambda: ca.state.rooms["lobby"].unread == 1, what="unread")
        await pa.press("alt+1")
        await pa.pause()
        log = ca.view("lobby").log_widget
        rendered = ["".join(seg.text for seg in strip).rstrip() for strip in log.lines]
        assert any("said while alice looks at another room" in r for r in rendered), rendered
        assert len(rendered) == len(log.plain_lines())  # one short message, one line


def shown_views(chat: ChatScreen) -> list[str]:
    """The keys of the windows whose views are displayed (one, on screen)."""
    switcher = chat.query_one("#windows", ContentSwitcher)
    return [view.key for view in switcher.children if isinstance(view, RoomView) and view.display]


async def test_a_window_opened_in_the_background_stays_hidden(
    daemon: Daemon, tmp_path: Path
) -> None:
    """A conversation opened by someone else's direct message, and rooms joined
    at start, get a view in the background: it must stay hidden until the
    user switches to it.  (It was shown under the current window, and after
    /join or /secret the new room's bar and members came with the direct
    message's log in place of the room's.)"""
    alice = app_for(daemon.port, tmp_path, "alice", join=["lobby", "dev"])
    async with alice.run_test(size=(100, 30)) as pa:
        ca = await until_chat(pa)
        await wait_for(pa, lambda: ca.state.current == "dev", what="alice in dev")
        assert shown_views(ca) == ["dev"]
        bob = await dial(daemon, "bob")
        try:
            talk = await bob.open_dm("alice")
            await bob.send_dm(talk.peer, "psst")
            await wait_for(
                pa, lambda: any(room.dm for room in ca.state.rooms.values()), what="a DM window"
            )
            await pa.pause()
            assert shown_views(ca) == ["dev"]
            await type_line(pa, "/join ops")
            await wait_for(pa, lambda: ca.state.current == "ops", what="alice in ops")
            await pa.pause()
            assert shown_views(ca) == ["ops"]
            await pa.press("alt+1")
            await pa.pause()
            assert shown_views(ca) == ["lobby"]
        finally:
            await bob.close()


def room_list_lines(chat: ChatScreen) -> list[str]:
    """The room list as it is on screen, line by line (wrapping included)."""
    rooms = chat.query_one(RoomList)
    strips = rooms.render_lines(Region(0, 0, rooms.size.width, rooms.size.height))
    inside = [strip.text.strip().strip("│").strip() for strip in strips[1:-1]]  # no border
    return [line for line in inside if line]


async def test_a_long_conversation_label_keeps_its_fingerprint_and_count_on_one_line(
    daemon: Daemon, tmp_path: Path
) -> None:
    """A conversation with a random nick (``@golden-walrus-83#jb6p``), its
    mention mark and unread count are wider than the room list: the middle of
    the nick gives way, one entry per line.  (It wrapped: the label under its
    number, the count on a line of its own.)"""
    alice = app_for(daemon.port, tmp_path, "alice", join=["lobby"])
    async with alice.run_test(size=(120, 30)) as pa:
        ca = await until_chat(pa)
        await wait_for(pa, lambda: ca.state.current == "lobby", what="alice in lobby")
        bob = await dial(daemon, "golden-walrus-83")
        try:
            talk = await bob.open_dm("alice")
            await bob.send_dm(talk.peer, "psst")
            fingerprint = f"#{bob.dm_fingerprint}"
            await wait_for(
                pa, lambda: any(room.dm for room in ca.state.rooms.values()), what="a DM window"
            )
            await pa.pause()
            shown = room_list_lines(ca)
            entry = [line for line in shown if line.startswith("2 ")]
            assert len(entry) == 1 and entry[0].endswith(f"{fingerprint} @ (1)"), shown
            assert "● @gol…#" in entry[0]  # as much of the nick as fits
            assert shown[1].startswith("1 ● #lobby") and len(shown) == 3, shown
        finally:
            await bob.close()
