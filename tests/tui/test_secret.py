"""Secret rooms in the TUI, against the real TLS daemon: the passphrase and
create-room forms, conversation with fingerprints, /privacy, reconnects."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from textual.app import App
from textual.geometry import Region
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Button, Input, RadioButton, Static

from anonchat.crypto import normalize_room
from anonchat.daemon import Config, Daemon, Limits
from anonchat.passphrases import wordlist
from anonchat.tui.screens.chat import ChatScreen
from anonchat.tui.screens.create_room import GENERATED, GENERATED_AGAIN, CreateRoomScreen
from anonchat.tui.screens.passphrase import PassphraseScreen
from anonchat.tui.settings import SETTINGS_FILE
from anonchat.tui.state import CONSOLE, secret_key
from anonchat.tui.widgets.chat_input import ChatInput
from anonchat.tui.widgets.room_list import RoomList

from ..helpers import ident
from .conftest import STATE_DIR, app_for, lines, type_line, until_chat, wait_for

ROOM = "hideout"
KEY = secret_key(ROOM)
PASSPHRASE = "correct-horse-battery-staple-orbit-lemon"
DENIED = "no such room or wrong passphrase"


def top(app: App[Any]) -> object:
    """The screen on top (a call, so mypy does not keep an earlier narrowing)."""
    return app.screen


def text_of(app: App[Any], selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def open_secret(pilot: Pilot[Any], chat: ChatScreen, passphrase: str) -> None:
    """/secret ROOM, type the passphrase, Enter, and wait until the room is open."""
    app = pilot.app
    await type_line(pilot, f"/secret {ROOM}")
    assert isinstance(app.screen, PassphraseScreen)
    box = app.screen.query_one("#secret-pass", Input)
    assert box.password and box.has_focus  # masked; the room name was given
    box.value = passphrase
    await pilot.press("enter")
    await wait_for(pilot, lambda: chat.state.current == KEY, what="in the secret room")
    await wait_for(pilot, lambda: app.screen is chat, what="form closed")


async def create_secret(pilot: Pilot[Any], chat: ChatScreen, passphrase: str) -> None:
    await type_line(pilot, f"/secret create {ROOM}")
    app = pilot.app
    assert isinstance(app.screen, CreateRoomScreen)
    assert app.screen.query_one("#kind-secret", RadioButton).value  # preset to secret
    app.screen.query_one("#room-pass", Input).value = passphrase
    await pilot.press("enter")
    await wait_for(pilot, lambda: chat.state.current == KEY, what="secret room created")
    # The room is entered before the form closes itself: wait for that too.
    await wait_for(pilot, lambda: app.screen is chat, what="form closed")


@contextlib.asynccontextmanager
async def alice_made_the_room(
    daemon: Daemon, tmp_path: Path
) -> AsyncIterator[tuple[Pilot[Any], Pilot[Any], ChatScreen, ChatScreen]]:
    """Alice's and bob's apps on their chat screens, alice in the secret room she
    made: their pilots, then their chat screens."""
    alice = app_for(daemon.port, tmp_path, "alice")
    bob = app_for(daemon.port, tmp_path, "bob")
    async with alice.run_test(size=(110, 32)) as pa, bob.run_test(size=(110, 32)) as pb:
        ca, cb = await until_chat(pa), await until_chat(pb)
        await create_secret(pa, ca, PASSPHRASE)
        yield pa, pb, ca, cb


async def test_two_apps_meet_in_a_secret_room(daemon: Daemon, tmp_path: Path) -> None:
    async with alice_made_the_room(daemon, tmp_path) as (pa, pb, ca, cb):
        await open_secret(pb, cb, PASSPHRASE)
        a_label = f"alice#{ident(ca.client).fingerprint}"
        b_label = f"bob#{ident(cb.client).fingerprint}"
        await wait_for(pa, lambda: any(f"{b_label} joined" in x for x in lines(ca, KEY)))
        await type_line(pa, "hello bob, only we can read this")
        await wait_for(pb, lambda: any("only we can read this" in x for x in lines(cb, KEY)))
        assert any(f"{a_label}  hello bob" in x for x in lines(cb, KEY))
        await type_line(pb, "/me nods")
        await wait_for(pa, lambda: any(f"* {b_label} nods" in x for x in lines(ca, KEY)))
        # The lock in the room list and the header; members by label.
        prompt = str(ca.query_one(RoomList).get_option(f"w:{KEY}").prompt)
        assert f"🔒#{ROOM}" in prompt
        assert f"🔒#{ROOM}" in str(ca.query_one("#topic-bar").render())
        await wait_for(pa, lambda: b_label in ca.state.rooms[KEY].members, what="bob listed")
        assert a_label in ca.state.rooms[KEY].members
        await type_line(pa, "/who")
        assert any(b_label in x and a_label in x for x in lines(ca, KEY))
        await type_line(pa, "/topic a topic")
        assert any("secret rooms have no topic" in x for x in lines(ca, KEY))
        # /leave: the other side is told, by label.
        await type_line(pb, "/leave")
        await wait_for(pb, lambda: KEY not in cb.state.rooms, what="bob left")
        await wait_for(pa, lambda: any(f"{b_label} left" in x for x in lines(ca, KEY)))
        assert normalize_room(ROOM) not in cb.client.secret


async def test_wrong_passphrase_inline_then_right_one(daemon: Daemon, tmp_path: Path) -> None:
    async with alice_made_the_room(daemon, tmp_path) as (_, pb, _, cb):
        bob = pb.app
        await type_line(pb, f"/secret {ROOM}")
        modal = bob.screen
        assert isinstance(modal, PassphraseScreen)
        modal.query_one("#secret-pass", Input).value = "not-the-passphrase"
        # Submitted without Pilot (which waits for the worker to end): while the
        # key is derived the button is disabled and the form says so.
        modal.submit()
        await wait_for(pb, lambda: modal.query_one("#join", Button).disabled, what="busy")
        assert "deriving key" in text_of(bob, "#secret-working")
        await wait_for(pb, lambda: DENIED in text_of(bob, "#secret-error"), what="inline error")
        assert bob.screen is modal  # still open, ready for another try
        assert not modal.query_one("#join", Button).disabled
        assert text_of(bob, "#secret-working") == ""
        assert KEY not in cb.state.rooms
        modal.query_one("#secret-pass", Input).value = PASSPHRASE
        await pb.press("enter")
        await wait_for(pb, lambda: cb.state.current == KEY, what="bob in")
        assert any("you joined the secret room 🔒#hideout as bob#" in x for x in lines(cb, KEY))
        # Escape cancels the form.
        await type_line(pb, "/secret elsewhere")
        assert isinstance(bob.screen, PassphraseScreen)
        await pb.press("escape")
        assert top(bob) is cb


async def test_rate_limit_shows_inline(tmp_path: Path) -> None:
    limits = Limits(join_burst=2, join_interval=30.0)
    daemon = Daemon(Config(host="127.0.0.1", port=0, state_dir=str(STATE_DIR), limits=limits))
    await daemon.start()
    try:
        app = app_for(daemon.port, tmp_path, "mallory")
        async with app.run_test(size=(110, 32)) as pilot:
            await until_chat(pilot)
            await type_line(pilot, f"/secret {ROOM}")
            modal = app.screen
            assert isinstance(modal, PassphraseScreen)
            for guess in ("guess-one", "guess-two", "guess-three"):
                modal.query_one("#secret-pass", Input).value = guess
                await pilot.press("enter")
                await wait_for(pilot, lambda: not modal.query_one("#join", Button).disabled)
            assert "too many secret-room join attempts" in text_of(app, "#secret-error")
            assert app.screen is modal
    finally:
        await daemon.shutdown()


async def test_create_with_generated_passphrase(daemon: Daemon, tmp_path: Path) -> None:
    app = app_for(daemon.port, tmp_path, "alice")
    async with app.run_test(size=(110, 36)) as pilot:
        chat = await until_chat(pilot)
        await pilot.press("f3")
        form = app.screen
        assert isinstance(form, CreateRoomScreen)
        assert not form.query_one("#secret-fields").display  # public by default
        await pilot.click("#kind-secret")
        assert form.query_one("#secret-fields").display
        assert not form.query_one("#public-fields").display
        form.query_one("#room-name", Input).value = ROOM
        # A typed passphrase is masked and judged as it is typed.
        box = form.query_one("#room-pass", Input)
        box.focus()
        await pilot.press(*"hunter2")
        assert box.password
        assert "shorter than" in text_of(app, "#pass-warning")
        await pilot.click("#generate")
        generated = box.value
        words = generated.split("-")
        assert len(words) == 6 and all(w in wordlist() for w in words)
        assert not box.password  # in clear, to be copied
        assert GENERATED in text_of(app, "#pass-warning")
        await pilot.pause(0.3)  # a Button ignores clicks while it shows the last one
        await pilot.click("#create")
        await wait_for(pilot, lambda: chat.state.current == KEY, what="created")
        assert top(app) is chat
        shown = lines(chat, KEY)
        assert any("you created the secret room 🔒#hideout" in x for x in shown)
        assert any(generated in x for x in shown)
        assert normalize_room(ROOM) in chat.client.secret  # the keys, held by the client
        # The passphrase never reaches the settings file.
        settings = (tmp_path / "alice" / SETTINGS_FILE).read_text(encoding="utf-8")
        assert generated not in settings and ROOM not in settings


async def test_a_generated_passphrase_fits_and_tab_enter_creates_the_room(
    daemon: Daemon, tmp_path: Path
) -> None:
    """At 80×24 the longest passphrase "generate" can make shows whole (its first
    word was hidden); Tab then Enter creates the room with it, never makes
    another; asking for another one says the one before is gone."""
    longest = sorted(wordlist(), key=len)[-6:]
    made = iter(["-".join(longest), "-".join(reversed(longest))])
    app = app_for(daemon.port, tmp_path, "alice")
    async with app.run_test(size=(80, 24)) as pilot:
        chat = await until_chat(pilot)
        await type_line(pilot, f"/secret create {ROOM}")
        await wait_for(pilot, lambda: isinstance(app.screen, CreateRoomScreen), what="form")
        form = app.screen
        assert isinstance(form, CreateRoomScreen)
        form.passphrases = lambda: next(made)
        await pilot.click("#generate")
        box = form.query_one("#room-pass", Input)
        first = "-".join(longest)
        assert box.value == first and len(first) == 59
        await pilot.pause()
        assert box.scroll_offset.x == 0 and box.content_size.width > len(first), box.content_size
        whole = form.query_one("#create-box").region  # the form fits 80×24, buttons included
        assert whole.x > 0 and whole.right < 80 and whole.y >= 0 and whole.bottom <= 24, whole
        button = form.query_one("#generate", Button)
        # A button ignores presses while it shows the last one: wait for that to end.
        await wait_for(pilot, lambda: not button.has_class("-active"), what="button idle")
        await pilot.press("shift+tab")  # back to the button: asking again is said
        assert button.has_focus
        await pilot.press("enter")
        await wait_for(pilot, lambda: box.value != first)
        await wait_for(pilot, lambda: GENERATED_AGAIN in text_of(app, "#pass-warning"))
        second = box.value
        assert box.has_focus
        await pilot.press("tab")
        assert form.query_one("#create", Button).has_focus
        await pilot.press("enter")
        await wait_for(pilot, lambda: chat.state.current == KEY, what="created")
        assert box.value == second  # the one shown, not a third
        assert any(second in x for x in lines(chat, KEY))


async def test_privacy_report(daemon: Daemon, tmp_path: Path) -> None:
    app = app_for(daemon.port, tmp_path, "alice", join=["lobby"])
    async with app.run_test(size=(110, 32)) as pilot:
        chat = await until_chat(pilot)
        await wait_for(pilot, lambda: chat.state.current == "lobby")
        await type_line(pilot, "/privacy")
        public = lines(chat, "lobby")
        assert any("connection: TLS to a key you pinned (sha256/" in x for x in public)
        assert any("in #lobby: a public room. The server and every member see" in x for x in public)
        await create_secret(pilot, chat, PASSPHRASE)
        await type_line(pilot, "/privacy")
        secret = lines(chat, KEY)
        assert any("in 🔒#hideout: end-to-end encrypted" in x for x in secret)
        assert any("no forward secrecy" in x for x in secret)
        await pilot.press("alt+0")
        await type_line(pilot, "/privacy")
        assert any("you are in no room" in x for x in lines(chat, CONSOLE))


async def test_verify_marks_a_member_in_the_member_list(daemon: Daemon, tmp_path: Path) -> None:
    async with alice_made_the_room(daemon, tmp_path) as (pa, pb, ca, cb):
        await open_secret(pb, cb, PASSPHRASE)
        b_label = f"bob#{ident(cb.client).fingerprint}"
        await wait_for(pa, lambda: b_label in ca.state.rooms[KEY].members, what="bob listed")
        await type_line(pa, f"/verify {b_label}")
        seen = ca.client.secret_verification(ROOM, b_label)
        assert any(seen.safety in x for x in lines(ca, KEY))
        assert any(seen.theirs in x for x in lines(ca, KEY))
        await type_line(pa, f"/verify {b_label} 00000")
        assert any("not verified" in x for x in lines(ca, KEY))
        assert not ca.state.rooms[KEY].verified
        await type_line(pa, f"/verify {b_label} {seen.safety}")
        await wait_for(pa, lambda: b_label in ca.state.rooms[KEY].verified, what="marked")
        assert f"{b_label} ✓" in str(ca.query_one("#member-names").render())


async def test_the_start_of_a_passphrase_left_in_the_chat_input_goes_to_the_form(
    daemon: Daemon, tmp_path: Path
) -> None:
    """In a burst, the first keys of the passphrase can reach the chat input
    before the form has the focus: they move into the form's passphrase box (in
    front of what it got), and the chat input is left empty, so they are never
    sent with the next message."""
    async with alice_made_the_room(daemon, tmp_path) as (pa, pb, ca, cb):
        bob = pb.app
        box = cb.query_one(ChatInput)
        box.value = f"/secret {ROOM}"
        await box.action_submit()  # Enter, as in the burst
        box.value = PASSPHRASE[:4]  # keys applied to the chat input before the form opened
        await wait_for(pb, lambda: isinstance(bob.screen, PassphraseScreen), what="form")
        form = bob.screen
        await wait_for(
            pb, lambda: form.query_one("#secret-pass", Input).value == PASSPHRASE[:4], what="moved"
        )
        assert box.value == ""
        await pb.press(*PASSPHRASE[4:])
        assert form.query_one("#secret-pass", Input).value == PASSPHRASE
        await pb.press("enter")
        await wait_for(
            pb, lambda: cb.state.current == KEY, timeout=60, what="bob in with the whole passphrase"
        )
        await type_line(pb, "marker")
        await wait_for(pa, lambda: any("marker" in x for x in lines(ca, KEY)), what="marker")
        assert not any(PASSPHRASE[:4] in x for x in lines(ca, KEY))


async def test_a_draft_in_the_chat_input_stays_when_a_secret_form_opens_otherwise(
    daemon: Daemon, tmp_path: Path
) -> None:
    """Only keys typed after a typed /secret move: a form opened another way
    (here the core runs /secret for the start) leaves a draft where it is."""
    bob = app_for(daemon.port, tmp_path, "bob")
    async with bob.run_test(size=(110, 32)) as pb:
        cb = await until_chat(pb)
        box = cb.query_one(ChatInput)
        box.value = "a draft"
        cb.run_line(f"/secret {ROOM}")
        await wait_for(pb, lambda: isinstance(bob.screen, PassphraseScreen), what="form")
        await pb.pause()
        assert bob.screen.query_one("#secret-pass", Input).value == ""
        assert box.value == "a draft"


async def test_a_whole_passphrase_line_typed_before_the_form_mounted_waits_in_it(
    daemon: Daemon, tmp_path: Path
) -> None:
    """``/secret ROOM`` Enter, the passphrase, Enter, all before the form is on
    the screen: the held line is put into the form once it mounts (it was kept
    for on_mount and then dropped there, since ``is_mounted`` is still false
    while on_mount runs: seen in tmux as an empty form)."""
    async with alice_made_the_room(daemon, tmp_path) as (_, pb, ca, cb):
        form = await typed_before_the_form(pb, cb, f"/secret {ROOM}", PassphraseScreen)
        assert form.query_one("#secret-pass", Input).value == PASSPHRASE
        assert not any(PASSPHRASE in x for x in lines(ca, "lobby"))
        # The Enter typed after it went to the chat input: the form says it waits
        # for one of its own (it showed nothing, and looked stuck).
        hint = str(form.query_one("#secret-working", Static).render())
        assert "Enter uses it" in hint
        await pb.press("enter")
        await wait_for(pb, lambda: cb.state.current == KEY, timeout=60, what="bob in")


async def test_a_passphrase_line_typed_before_the_create_form_mounted_waits_in_it(
    daemon: Daemon, tmp_path: Path
) -> None:
    """The same for ``/secret create ROOM``: the held line is in the create form's
    passphrase box, and the form says that Enter uses it (the hint was set but
    left hidden, so the form looked stuck)."""
    bob = app_for(daemon.port, tmp_path, "bob")
    async with bob.run_test(size=(110, 32)) as pb:
        cb = await until_chat(pb)
        form = await typed_before_the_form(pb, cb, f"/secret create {ROOM}", CreateRoomScreen)
        assert form.query_one("#room-pass", Input).value == PASSPHRASE
        await pb.pause()
        hint = form.query_one("#create-working", Static)
        assert hint.display and "Enter uses it" in str(hint.render())
        await pb.press("enter")
        await wait_for(pb, lambda: cb.state.current == KEY, timeout=60, what="bob in")


async def typed_before_the_form(
    pilot: Pilot[Any], chat: ChatScreen, command: str, kind: type[Screen[Any]]
) -> Screen[Any]:
    """``command`` and the passphrase, each with its Enter, submitted before the
    form can open (as a burst does); the form once it holds the passphrase."""
    box = chat.query_one(ChatInput)
    for line in (command, PASSPHRASE):
        box.value = line
        await box.action_submit()
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, kind), what="form")
    form = pilot.app.screen
    await wait_for(pilot, lambda: PASSPHRASE in [i.value for i in form.query(Input)], what="put in")
    return form


def member_lines(chat: ChatScreen) -> list[str]:
    """The member list as it is on screen, line by line (wrapping included)."""
    body = chat.query_one("#member-names", Static)
    strips = body.render_lines(Region(0, 0, body.size.width, body.size.height))
    return [line for strip in strips if (line := strip.text.rstrip())]


async def test_a_long_label_keeps_its_fingerprint_on_one_line(
    daemon: Daemon, tmp_path: Path
) -> None:
    """A random nick and its ``#fp`` (``golden-walrus-83#2v94``) are wider than
    the member list: the middle of the nick gives way, the fingerprint stays
    whole, one member per line.  (The label wrapped: ``94`` on a line of its
    own read as a member, and the fingerprint was cut in two.)"""
    nick = "golden-walrus-83"
    app = app_for(daemon.port, tmp_path, nick)
    async with app.run_test(size=(110, 32)) as pilot:
        chat = await until_chat(pilot)
        await create_secret(pilot, chat, PASSPHRASE)
        label = next(iter(chat.state.rooms[KEY].members))
        assert label.startswith(f"{nick}#")
        fingerprint = label[len(nick) :]
        await wait_for(pilot, lambda: bool(member_lines(chat)), what="the member list")
        shown = member_lines(chat)
        assert len(shown) == 1, shown
        assert shown[0].endswith(fingerprint) and "…" in shown[0]
        assert shown[0].startswith("@golden-")
        # Wider, it is whole again.
        chat.query_one("#member-list").styles.width = 40
        await wait_for(pilot, lambda: member_lines(chat) == [f"@{label}"], what="whole")
