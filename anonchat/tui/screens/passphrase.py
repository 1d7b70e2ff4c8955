"""The secret-room form (/secret ROOM): room name and passphrase, masked.

The form does the join itself, through the ``attempt`` the chat screen hands
it, so a wrong passphrase (the server says "no such room or wrong
passphrase") or a rate limit is shown here and the form stays open for
another try.  Deriving the key takes a fifth of a second in a thread; the
form says so and disables its button meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, Static

from ...room import secret_name_problem
from ..render import clean

#: Joins (or creates) a secret room: (room, passphrase) -> None, or the reason it failed.
Attempt = Callable[[str, str], Awaitable[str | None]]

WORKING = "deriving key…"


room_problem = secret_name_problem


#: Shown when a line typed before the form opened waits in its passphrase box:
#: the Enter typed after it was the chat input's, so the form needs one of its own.
HELD = "the line typed after /secret is in the box above: Enter uses it"


def prefill(
    form: Screen[Any], box_id: str, text: str, ready: bool, hint_id: str = ""
) -> str | None:
    """Put a line typed in the chat input before ``form`` opened into its
    passphrase box; it waits there, masked, for the user's Enter (nothing is
    sent before), and the ``hint_id`` line says so.  Returns what to keep for
    ``on_mount`` if the form is not ``ready`` (its ``on_mount`` has not begun:
    ``is_mounted`` is still false while it runs, so it cannot tell)."""
    if not ready:
        return text
    if hint_id:
        hint = form.query_one(hint_id, Static)
        hint.update(Text(HELD))
        hint.display = True  # (the create form hides it while empty)
    box = form.query_one(box_id, Input)
    box.select_on_focus = False  # selected, the next key typed would replace it
    box.value = text
    box.cursor_position = len(text)
    box.focus()
    return None


def take_stray(form: Screen[Any], box_id: str, stray: Callable[[], str] | None) -> None:
    """Put the start of a passphrase that landed in the chat input into ``form``.

    Keys typed in one burst with ``/secret ROOM`` (a paste without bracketed
    paste, a slow link) reach the chat input until the form has the focus: the
    first characters of the passphrase would stay in the message box, to be
    sent with the next message.  ``stray`` takes them out of the box; they go in
    front of what the passphrase box already holds.
    """
    text = stray() if stray is not None else ""
    if not text:
        return
    box = form.query_one(box_id, Input)
    box.select_on_focus = False  # the rest of the burst goes after it, not over it
    box.value = text + box.value
    box.cursor_position = len(box.value)
    box.focus()


async def run_attempt(attempt: Attempt, room: str, passphrase: str) -> str | None:
    """Run ``attempt`` so that closing the form does not cut a join in half."""
    task = asyncio.ensure_future(attempt(room, passphrase))
    return await asyncio.shield(task)


class PassphraseScreen(ModalScreen[str | None]):
    """Dismisses with the room's name once joined, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, room: str, attempt: Attempt) -> None:
        super().__init__()
        self._prefill: str | None = None
        self._ready = False  # on_mount has begun
        self.stray: Callable[[], str] | None = None  # see take_stray
        self.room = room
        self.attempt = attempt

    def compose(self) -> ComposeResult:
        with Vertical(id="secret-box", classes="dialog") as box:
            box.border_title = "Join a secret room"
            yield Label("Room name")
            yield Input(self.room, id="secret-room", max_length=32)
            yield Label("Passphrase")
            yield Input(password=True, id="secret-pass", placeholder="as the others gave it to you")
            yield Static("", id="secret-working", classes="working")
            yield Static("", id="secret-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Join", variant="primary", id="join")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self._ready = True
        target = "#secret-pass" if self.room else "#secret-room"
        self.query_one(target, Input).focus()
        if self._prefill is not None:
            self.prefill_passphrase(self._prefill)
        take_stray(self, "#secret-pass", self.stray)

    def prefill_passphrase(self, text: str) -> None:
        self._prefill = prefill(self, "#secret-pass", text, self._ready, "#secret-working")

    def _error(self, text: str) -> None:
        self.query_one("#secret-error", Static).update(Text(clean(text)))

    @on(Input.Submitted, "#secret-room")
    def room_entered(self) -> None:
        if not self.query_one("#secret-pass", Input).value:
            self.query_one("#secret-pass", Input).focus()  # Enter moves on, as in a form
        else:
            self.submit()

    @on(Input.Submitted, "#secret-pass")
    @on(Button.Pressed, "#join")
    def submit(self) -> None:
        if self.query_one("#join", Button).disabled:
            return  # a join is running
        room = self.query_one("#secret-room", Input).value.strip().lstrip("#")
        passphrase = self.query_one("#secret-pass", Input).value
        problem = room_problem(room)
        if problem is not None:
            self._error(problem)
            self.query_one("#secret-room", Input).focus()
            return
        if not passphrase:
            self._error("type the room's passphrase")
            self.query_one("#secret-pass", Input).focus()
            return
        self.join(room, passphrase)

    @work(exclusive=True, group="secret-join")
    async def join(self, room: str, passphrase: str) -> None:
        button = self.query_one("#join", Button)
        working = self.query_one("#secret-working", Static)
        button.disabled = True
        working.update(Text(WORKING))
        self._error("")
        # Cancelled (Escape) while waiting: the form is gone, leave it alone.
        problem = await run_attempt(self.attempt, room, passphrase)
        button.disabled = False
        working.update("")
        if problem is None:
            self.dismiss(room)
            return
        self._error(problem)
        box = self.query_one("#secret-pass", Input)
        box.focus()
        box.select_all()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
