"""F1 (or ? in an empty input): every key, every command, and what the server sees."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..commands import COMMANDS, KEYS, NOTES, PRIVACY


def help_renderable() -> Table:
    """Keys and commands as one table (also used by docs/tui.md)."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row(Text("Keys", style="bold underline"), "")
    # Text, never a markup string: "[create]" in a usage line is not a tag.
    for key in KEYS:
        table.add_row(Text(key.keys), Text(key.help))
    table.add_row("", "")
    table.add_row(Text("Commands", style="bold underline"), "")
    for cmd in COMMANDS:
        usage = f"/{cmd.name} {cmd.args}".rstrip()
        aliases = ", ".join(f"/{a}" for a in cmd.aliases)
        words = ("(owners) " if cmd.owners else "") + cmd.help
        table.add_row(Text(usage), Text(words + (f" (also {aliases})" if aliases else "")))
    table.add_row("", "")
    for note in NOTES:
        table.add_row("", Text(note, style="dim"))
    table.add_row("", "")
    table.add_row(Text("Privacy", style="bold underline"), "what the server can and cannot see")
    for heading, words in PRIVACY:
        table.add_row(Text(heading), Text(words))
    return table


def help_text(width: int = 100) -> str:
    """The help as plain text (for docs/tui.md and tests)."""
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(help_renderable())
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,f1,q,question_mark", "dismiss", "Close", priority=True),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box") as box:
            box.border_title = "anonchat help"
            box.border_subtitle = "Esc to close"
            yield Static(help_renderable(), id="help-text")


def show_help(app: App[Any]) -> None:
    """Open the help over whatever is on screen (once: F1 twice does not stack it)."""
    if not isinstance(app.screen, HelpScreen):
        app.push_screen(HelpScreen())
