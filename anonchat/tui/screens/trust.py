"""First contact with a TLS server: show its key pin and ask before trusting it."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from ..render import clean


class TrustScreen(ModalScreen[bool]):
    """Dismisses with True only when the user chose to trust the key."""

    BINDINGS = [Binding("escape", "refuse", "Cancel")]

    def __init__(self, host: str, port: int, pin: str) -> None:
        super().__init__()
        self.host, self.port, self.pin = host, port, pin

    def compose(self) -> ComposeResult:
        with Vertical(id="trust-box", classes="dialog") as box:
            box.border_title = "A server not seen before"
            text = Text()
            text.append(f"First connection to {clean(self.host)}:{self.port}. Its key is\n\n")
            text.append(f"  {clean(self.pin)}\n\n", style="bold")
            text.append(
                "Compare it with the one its operator gave you (anonchatd prints it). "
                "If you trust it, it is remembered in known_hosts and checked every time."
            )
            yield Static(text, id="trust-text")
            with Horizontal(classes="buttons"):
                yield Button("Trust and remember", variant="warning", id="trust")
                yield Button("Cancel", variant="primary", id="refuse")

    def on_mount(self) -> None:
        self.query_one("#refuse", Button).focus()

    @on(Button.Pressed, "#trust")
    def trust(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#refuse")
    def action_refuse(self) -> None:
        self.dismiss(False)
