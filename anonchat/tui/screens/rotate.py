"""After a kick or ban in a secret room: rotate it now, to shut them out for real?"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from ..render import clean


class RotateScreen(ModalScreen[bool]):
    """Dismisses with True only when the user chose to rotate the room."""

    BINDINGS = [Binding("escape", "cancel", "Not now")]

    def __init__(self, where: str, who: str) -> None:
        super().__init__()
        self.where, self.who = where, who

    def compose(self) -> ComposeResult:
        with Vertical(id="rotate-box", classes="dialog") as box:
            box.border_title = "Shut them out for real?"
            text = Text()
            text.append(f"{clean(self.who)}", style="bold")
            text.append(f" is out of {clean(self.where)}, but still knows its passphrase.\n\n")
            text.append(
                "Rotate moves everyone else to a new room of the same name with a new "
                "passphrase, sent to each of them end to end; the old room is closed. "
                "Their clients follow by themselves."
            )
            yield Static(text, id="rotate-text")
            with Horizontal(classes="buttons"):
                yield Button("Rotate the room", variant="warning", id="rotate")
                yield Button("Not now", variant="primary", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#rotate")
    def rotate(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
