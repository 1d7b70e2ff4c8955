"""The create-room form (F3, or /create without arguments)."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from ...names import InvalidName, check_room, check_topic


class CreateRoomScreen(ModalScreen[tuple[str, str] | None]):
    """Dismisses with (name, topic), or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="create-box", classes="dialog") as box:
            box.border_title = "Create a public room"
            yield Label("Name")
            yield Input(placeholder="e.g. lobby", id="room-name", max_length=32)
            yield Label("Topic (optional)")
            yield Input(placeholder="what is it about?", id="room-topic", max_length=300)
            yield Static("", id="create-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Create", variant="primary", id="create")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#room-name", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#create")
    def submit(self) -> None:
        name = self.query_one("#room-name", Input).value.strip().lstrip("#")
        topic = self.query_one("#room-topic", Input).value.strip()
        try:
            check_room(name)
            check_topic(topic)
        except InvalidName as exc:
            self.query_one("#create-error", Static).update(Text(str(exc)))
            return
        self.dismiss((name, topic))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
