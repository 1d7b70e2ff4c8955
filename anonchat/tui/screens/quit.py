"""Quitting a session that hosts the daemon (``anonchat --local``) asks first:
the daemon runs in this process, so quitting ends everyone's session."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


def quit_question(others: int | None) -> Text:
    """What the dialog says; ``others``: sessions connected besides ours, if known."""
    text = Text()
    text.append("This chat runs its own daemon (anonchat --local). ")
    text.append("Quitting stops it: ", style="bold")
    text.append("every session connected to it ends, not only yours.")
    if others is not None:
        if others <= 0:
            text.append("\n\nNobody else is connected now.")
        else:
            people = "session is" if others == 1 else "sessions are"
            text.append(f"\n\n{others} other {people} connected now.", style="bold")
    text.append("\n\nCtrl+Q again or Enter on Quit quits; Escape stays.")
    return text


class QuitScreen(ModalScreen[bool]):
    """Dismisses with True only when the user chose to quit."""

    BINDINGS = [Binding("escape", "stay", "Stay")]

    def __init__(self, others: int | None) -> None:
        super().__init__()
        self.others = others

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-box", classes="dialog") as box:
            box.border_title = "Quit and stop hosting?"
            yield Static(quit_question(self.others), id="quit-text")
            with Horizontal(classes="buttons"):
                yield Button("Quit", variant="error", id="quit")
                yield Button("Stay", variant="primary", id="stay")

    def on_mount(self) -> None:
        self.query_one("#stay", Button).focus()

    @on(Button.Pressed, "#quit")
    def confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#stay")
    def action_stay(self) -> None:
        self.dismiss(False)
