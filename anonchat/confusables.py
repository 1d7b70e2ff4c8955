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
``anonchat/unicode/`` and read the first time they are needed
(:mod:`anonchat.unicode_data`).
"""

from __future__ import annotations

import functools
import unicodedata

from .unicode_data import Ranges, code_points, lines

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


@functools.cache
def _prototypes() -> dict[str, str]:
    """confusables.txt: each source character and its prototype (type MA, the only one)."""
    table = {}
    for source, target, *_ in lines("confusables.txt"):
        table[chr(int(source, 16))] = "".join(chr(int(cp, 16)) for cp in target.split())
    return table


def skeleton(text: str) -> str:
    """UTS #39's ``skeleton(X)``: NFD, each character to its prototype, NFD again.

    Two strings are confusable exactly when their skeletons are equal."""
    table = _prototypes()
    mapped = "".join(table.get(ch, ch) for ch in unicodedata.normalize("NFD", text))
    result = unicodedata.normalize("NFD", mapped)
    return text if result == text else result  # (the same string, not a copy: see name_key)


@functools.cache
def _scripts() -> tuple[Ranges, Ranges]:
    """Script_Extensions where it is given, else Script, in short names (``Latn``)."""
    short = {row[2]: row[1] for row in lines("PropertyValueAliases.txt") if row[0] == "sc"}
    script = [(code_points(f), frozenset({short[name]})) for f, name in lines("Scripts.txt")]
    extensions = [(code_points(f), frozenset(v.split())) for f, v in lines("ScriptExtensions.txt")]
    return Ranges(extensions), Ranges(script)


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
