"""A paste of many lines: ask before sending them as that many messages."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from ...plural import plural
from ..render import clean

#: Pasted lines shown in the question.
SHOWN = 3


class PasteScreen(ModalScreen[bool]):
    """Dismisses with True only when the user chose to send the lines."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, where: str, lines: list[str]) -> None:
        super().__init__()
        self.where, self.lines = where, lines

    def compose(self) -> ComposeResult:
        with Vertical(id="paste-box", classes="dialog") as box:
            box.border_title = f"Paste {plural(len(self.lines), 'line')}?"
            text = Text()
            text.append(f"Send {plural(len(self.lines), 'line')} to {clean(self.where)}, ")
            text.append("one message each, as they are (a line starting with / is text):\n\n")
            for line in self.lines[:SHOWN]:
                text.append(f"  {clean(line)[:56]}\n", style="bold")
            if len(self.lines) > SHOWN:
                text.append(f"  … and {len(self.lines) - SHOWN} more\n", style="dim")
            yield Static(text, id="paste-text")
            with Horizontal(classes="buttons"):
                yield Button("Send", variant="warning", id="send")
                yield Button("Cancel", variant="primary", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#send", Button).focus()

    @on(Button.Pressed, "#send")
    def send(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
