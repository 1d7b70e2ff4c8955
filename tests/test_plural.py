"""Counts agree with their nouns everywhere ("1 message", never "1 messages")."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from anonchat.plural import plural

PKG = Path(__file__).resolve().parent.parent / "anonchat"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ((1, "message"), "1 message"),
        ((2, "message"), "2 messages"),
        ((0, "message"), "0 messages"),
        ((1, "try", "tries"), "1 try"),
        ((3, "try", "tries"), "3 tries"),
        ((1, "event was", "events were"), "1 event was"),
        ((4, "event was", "events were"), "4 events were"),
        ((1.0, "second"), "1 second"),
        ((2.5, "second"), "2.5 seconds"),
    ],
)
def test_plural_agrees_with_its_count(args: tuple[object, ...], said: str) -> None:
    assert plural(*args) == said  # type: ignore[arg-type]


#: Nouns counted in what people read; a count put before one of these by hand
#: ("{n} messages") says "1 messages" one day.
COUNTED = re.compile(
    r"^ (?:new )?(?:messages|lines|rooms|public rooms|smaller rooms|events|members|seconds|"
    r"tries|times|owners|nicks|people|keys|minutes|hours|days)\b"
)


#: Names of strings that are not counts, seen before a plural noun.
PLACES = {"where"}


def hand_made_plurals(tree: ast.AST) -> list[str]:
    """f-strings where a computed value stands right before a plural noun.

    A constant (an upper-case name such as ``SLOW_MAX``) is a fixed number
    above one, so it may, and so may a place (``{where} owners``); anything
    else computed must go through ``plural``."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.JoinedStr):
            continue
        for value, after in zip(node.values, node.values[1:], strict=False):
            if not (isinstance(value, ast.FormattedValue) and isinstance(after, ast.Constant)):
                continue
            expr = value.value
            name = ast.unparse(expr).split(".")[-1]
            if isinstance(expr, ast.Name | ast.Attribute) and (name.isupper() or name in PLACES):
                continue
            if isinstance(after.value, str) and COUNTED.match(after.value):
                found.append(f"{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_the_scan_finds_a_hand_made_plural() -> None:
    bad = ast.parse('n = 1\nx = f"{n} messages missing"\nok = f"{SLOW_MAX} seconds"')
    assert hand_made_plurals(bad) == ["2: f'{n} messages missing'"]


def test_no_count_is_put_before_a_plural_noun_by_hand() -> None:
    found = {
        str(path.relative_to(PKG)): hand_made_plurals(ast.parse(path.read_text(encoding="utf-8")))
        for path in PKG.rglob("*.py")
    }
    assert {name: lines for name, lines in found.items() if lines} == {}
