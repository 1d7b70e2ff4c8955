"""README.md's picture of the TUI is what scripts/screenshot.py makes from the
code of today (a real daemon, the real app): never a stale screenshot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "screenshot.py"
PICTURE = ROOT / "docs" / "tui.svg"


def test_readme_and_tui_md_show_the_picture() -> None:
    assert "](docs/tui.svg)" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](tui.svg)" in (ROOT / "docs" / "tui.md").read_text(encoding="utf-8")


def test_the_picture_is_what_the_script_makes_now(tmp_path: Path) -> None:
    # The script runs, and it is deterministic: a fresh copy is the same file...
    fresh = tmp_path / "tui.svg"
    made = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(fresh)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr
    assert "#lobby" in fresh.read_text(encoding="utf-8").replace("&#160;", " ")
    # ...and the one in docs/ is it (else: python scripts/screenshot.py).
    checked = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=300
    )
    assert checked.returncode == 0, checked.stderr
    assert fresh.read_bytes() == PICTURE.read_bytes()
