"""docs/tui.md shows the help screen as the app renders it: never a stale copy."""

from __future__ import annotations

from pathlib import Path

from anonchat.frontend.commands import COMMANDS, help_lines
from anonchat.frontend.text import FINGERPRINT_NOTE
from anonchat.tui.screens.help import help_text

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "tui.md"
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
            assert cmd.usage in line_help and cmd.help_for("line") in line_help, cmd.name
        assert cmd.usage in shown, cmd.name


def flat(text: str) -> str:
    return " ".join(text.split())


def test_one_sentence_on_what_a_short_fingerprint_proves() -> None:
    """The help, README and docs/tui.md say the same, honest thing: the four
    characters tell keys apart and prove nothing about who someone is."""
    assert "prove nothing" in FINGERPRINT_NOTE
    assert FINGERPRINT_NOTE in flat(help_text(width=1000))
    for doc in (ROOT / "README.md", DOC):
        assert FINGERPRINT_NOTE in flat(doc.read_text(encoding="utf-8")), doc
    for doc in (ROOT / "README.md", DOC, ROOT / "docs" / "security.md"):
        assert "cannot pass as each other" not in flat(doc.read_text(encoding="utf-8")), doc


def test_the_line_modes_help_speaks_of_no_windows_or_keys() -> None:
    """The line mode has no windows, no screen and no keys: its /help says what
    it does instead (it said "opens a window", "show keys and commands")."""
    text = "\n".join(help_lines("line"))
    for tui_only in ("window", "on screen", "keys and commands"):
        assert tui_only not in text, tui_only
    assert "printed as [dm] lines" in text and "(also /exit)" in text
