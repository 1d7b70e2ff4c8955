"""Unicode's data files bundled in ``anonchat/unicode/``, read on first use.

Verbatim copies of Unicode 14.0.0 files (``anonchat/unicode/README.md`` lists
them, with their licence): the confusables and scripts of
:mod:`anonchat.confusables`, the emoji properties of :mod:`anonchat.emoji`.
Pure: no I/O but reading those package files, and only when asked.
"""

from __future__ import annotations

import bisect
from importlib import resources


def lines(name: str) -> list[list[str]]:
    """The data lines of a bundled UCD-style file, split on ``;``, comments dropped."""
    text = resources.files("anonchat").joinpath("unicode", name).read_text(encoding="utf-8-sig")
    rows = []
    for line in text.splitlines():
        data = line.split("#", 1)[0].strip()
        if data:
            rows.append([field.strip() for field in data.split(";")])
    return rows


def data_version(name: str = "confusables.txt") -> str:
    """The Unicode version a bundled file says it is (its ``Version:`` or file-name line)."""
    text = resources.files("anonchat").joinpath("unicode", name).read_text(encoding="utf-8-sig")
    head = text.splitlines()[:12]
    for line in head:
        if line.startswith("# Version:"):
            return line.split(":", 1)[1].strip()
    first = head[0] if head else ""  # "# Scripts-14.0.0.txt"
    if first.startswith("# ") and first.endswith(".txt") and "-" in first:
        return first.rsplit("-", 1)[1].removesuffix(".txt")
    raise ValueError(f"{name} names no version")


def code_points(field: str) -> range:
    """``0041`` or ``0041..005A`` as a range of code points."""
    first, _, last = field.partition("..")
    return range(int(first, 16), int(last or first, 16) + 1)


class Ranges:
    """Code point ranges and a value each, found by bisection (a few thousand
    ranges, not a dict of every code point)."""

    def __init__(self, rows: list[tuple[range, frozenset[str]]]) -> None:
        rows.sort(key=lambda row: row[0].start)
        self.starts = [cps.start for cps, _ in rows]
        self.rows = rows

    def get(self, cp: int) -> frozenset[str] | None:
        at = bisect.bisect_right(self.starts, cp) - 1
        if at >= 0 and cp in self.rows[at][0]:
            return self.rows[at][1]
        return None
