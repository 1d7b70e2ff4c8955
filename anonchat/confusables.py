"""Names that look alike: the confusable skeleton and mixed scripts (UTS #39).

A Cyrillic ``аlice`` is not ``alice`` to a computer and is to a person.  The
Unicode Consortium's answer (Unicode Technical Standard #39, "Unicode
Security Mechanisms") is the *skeleton*: every character replaced by the
prototype of the characters it can be confused with (``confusables.txt``),
so two strings that look alike have the same skeleton.  The daemon refuses a
nick whose skeleton another connected nick has (``names.claim_key``), and
the front ends mark a name that mixes scripts, Latin with Cyrillic say, the
usual way to make such a look-alike (:func:`mixed_script`).

The data are Unicode's own files, bundled verbatim with their licence in
``anonchat/unicode/`` and read the first time they are needed.  Pure: no I/O
but reading those package files.
"""

from __future__ import annotations

import bisect
import functools
import unicodedata
from importlib import resources

#: Scripts that stand for every script (UTS #39 section 5.1: Common, Inherited).
_ANY = frozenset({"Zyyy", "Zinh"})
#: The augmented script sets of UTS #39 section 5.1: a Japanese name mixes Han,
#: Hiragana and Katakana, a Korean one Han and Hangul, and neither is "mixed".
_AUGMENT = {
    "Hani": ("Hanb", "Jpan", "Kore"),
    "Hira": ("Jpan",),
    "Kana": ("Jpan",),
    "Hang": ("Kore",),
    "Bopo": ("Hanb",),
}


def _lines(name: str) -> list[list[str]]:
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
    for line in text.splitlines()[:12]:
        if line.startswith("# Version:"):
            return line.split(":", 1)[1].strip()
        if line.startswith("# ") and line.endswith(".txt") and "-" in line:
            return line.rsplit("-", 1)[1].removesuffix(".txt")
    raise ValueError(f"{name} names no version")


def _code_points(field: str) -> range:
    first, _, last = field.partition("..")
    return range(int(first, 16), int(last or first, 16) + 1)


@functools.cache
def _prototypes() -> dict[str, str]:
    """confusables.txt: each source character and its prototype (type MA, the only one)."""
    table = {}
    for source, target, *_ in _lines("confusables.txt"):
        table[chr(int(source, 16))] = "".join(chr(int(cp, 16)) for cp in target.split())
    return table


def skeleton(text: str) -> str:
    """UTS #39's ``skeleton(X)``: NFD, each character to its prototype, NFD again.

    Two strings are confusable exactly when their skeletons are equal."""
    table = _prototypes()
    mapped = "".join(table.get(ch, ch) for ch in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", mapped)


class _Ranges:
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


@functools.cache
def _scripts() -> tuple[_Ranges, _Ranges]:
    """Script_Extensions where it is given, else Script, in short names (``Latn``)."""
    short = {row[2]: row[1] for row in _lines("PropertyValueAliases.txt") if row[0] == "sc"}
    script = [(_code_points(f), frozenset({short[name]})) for f, name in _lines("Scripts.txt")]
    extensions = [
        (_code_points(f), frozenset(v.split())) for f, v in _lines("ScriptExtensions.txt")
    ]
    return _Ranges(extensions), _Ranges(script)


def _augmented(ch: str) -> frozenset[str] | None:
    """The augmented script set of one character; None for Common and Inherited (any)."""
    extensions, script = _scripts()
    found = extensions.get(ord(ch)) or script.get(ord(ch)) or frozenset({"Zzzz"})
    if found & _ANY:
        return None
    extra = [more for name in found for more in _AUGMENT.get(name, ())]
    return found | frozenset(extra)


def mixed_script(text: str) -> bool:
    """UTS #39 section 5.1: the resolved script set of ``text`` is empty.

    ``аlice`` (a Cyrillic а among Latin letters) is mixed; ``alice``, ``Ελένη``,
    ``山田たろう`` (Han with Hiragana) and ``bob_42`` (digits and ``_`` are
    Common) are not."""
    resolved: frozenset[str] | None = None
    for ch in text:
        scripts = _augmented(ch)
        if scripts is None:
            continue
        resolved = scripts if resolved is None else resolved & scripts
        if not resolved:
            return True
    return False
