"""docs/tui.md shows the help screen as the app renders it: never a stale copy."""

from __future__ import annotations

from pathlib import Path

from anonchat.frontend.commands import COMMANDS, help_lines
from anonchat.tui.screens.help import help_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "tui.md"
REGENERATE = (
    'python -c "from anonchat.tui.screens.help import help_text; print(help_text())" '
    "and paste it into the block under 'Keys and commands'"
)


def test_docs_tui_md_holds_the_help_screen() -> None:
    assert help_text() in DOC.read_text(encoding="utf-8"), REGENERATE


def test_both_help_texts_come_from_the_one_table() -> None:
    shown = help_text(width=200)
    line_help = "\n".join(help_lines("line"))
    for cmd in COMMANDS:
        if cmd.only != "tui":
            assert cmd.usage in line_help and cmd.help in line_help, cmd.name
        assert cmd.usage in shown, cmd.name
