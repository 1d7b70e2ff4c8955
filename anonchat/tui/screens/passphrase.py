"""The secret-room form (/secret).

Secret rooms need daemon support that does not exist yet (see DESIGN.md,
"Secret rooms").  The form is here so the flow has its place; while the
server cannot do it, the form says so and its Join button stays disabled.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

UNAVAILABLE = "secret rooms are not available on this server yet"


class PassphraseScreen(ModalScreen[tuple[str, str] | None]):
    """Dismisses with (room, passphrase), or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, room: str = "", *, available: bool = False) -> None:
        super().__init__()
        self.room = room
        self.available = available

    def compose(self) -> ComposeResult:
        with Vertical(id="secret-box", classes="dialog") as box:
            box.border_title = "Join a secret room"
            yield Label("Room name")
            yield Input(self.room, id="secret-room", max_length=32, disabled=not self.available)
            yield Label("Passphrase")
            yield Input(password=True, id="secret-pass", disabled=not self.available)
            notice = "" if self.available else UNAVAILABLE
            yield Static(Text(notice), id="secret-notice", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Join", variant="primary", id="join", disabled=not self.available)
                yield Button("Close", id="cancel")

    def on_mount(self) -> None:
        target = "#secret-room" if self.available else "#cancel"
        self.query_one(target).focus()

    @on(Button.Pressed, "#join")
    def submit(self) -> None:
        room = self.query_one("#secret-room", Input).value.strip()
        passphrase = self.query_one("#secret-pass", Input).value
        if room and passphrase:
            self.dismiss((room, passphrase))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
