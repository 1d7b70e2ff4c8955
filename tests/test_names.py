"""names.py's character rules, against unicodedata on every code point."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from anonchat.names import InvalidName, check_text, check_topic, claim_keys, name_key


def _forbidden_in_text(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return (cat == "Cc" and ch not in "\t\n") or cat == "Cs"


def _forbidden_in_topic(ch: str) -> bool:
    return unicodedata.category(ch) in {"Cc", "Cs", "Zl", "Zp"}


def _refused(check: object, ch: str) -> bool:
    try:
        check(ch)  # type: ignore[operator]
    except InvalidName:
        return True
    return False


def test_text_and_topic_rules_match_the_unicode_categories_everywhere() -> None:
    """Every code point: refused in a message (and in a topic) exactly when its
    category says so (the checks use a regular expression for speed)."""
    wrong_text, wrong_topic = [], []
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if _refused(lambda c: check_text("x" + c, 64), ch) != _forbidden_in_text(ch):
            wrong_text.append(hex(cp))
        if _refused(check_topic, ch) != _forbidden_in_topic(ch):
            wrong_topic.append(hex(cp))
    assert wrong_text == [] and wrong_topic == []


@pytest.mark.parametrize(
    "text, said",
    [("a\x00b", "U+0000"), ("tab\tand\nnewline are fine\x7f", "U+007F"), ("x\x85", "U+0085")],
)
def test_the_refusal_names_the_character(text: str, said: str) -> None:
    with pytest.raises(InvalidName) as info:
        check_text(text, 64)
    assert said in str(info.value)


def test_the_ascii_shortcut_of_name_key_is_nfkc_casefold() -> None:
    """name_key skips NFKC and casefold() for ASCII names (lower() is the same
    there): every ASCII character, alone and in a name, keys as the full rule does."""
    names = [chr(c) for c in range(128)] + ["Alice", "ALICE-42_x", "#Room.Name", "ß", "Ａｌｉｃｅ"]
    names += ["".join(chr(c) for c in range(n, 128, 7)) for n in range(7)]
    for name in names:
        assert name_key(name) == unicodedata.normalize("NFKC", name).casefold()


def test_a_name_that_is_its_own_key_is_not_copied() -> None:
    """The daemon keeps a session's nick and its keys: a nick that is its own key
    (and its own confusable skeleton) is held once, not as equal copies."""
    nick = "".join(["ali", "ce"])  # (a string made at run time, not a shared constant)
    assert name_key(nick) is nick
    assert claim_keys(nick) == (nick,) and claim_keys(nick)[0] is nick
    assert name_key("Alice") == "alice" and claim_keys("Alice") == ("alice",)
    assert claim_keys("m1") == ("rnl",)


@pytest.mark.parametrize("text", ["", " ", "\t\n ", "\u3000", "\u2003\n"])
def test_a_text_of_only_whitespace_is_empty(text: str) -> None:
    assert not text.strip()  # what check_text's test without a copy must agree with
    with pytest.raises(InvalidName, match="must not be empty"):
        check_text(text, 100)


@pytest.mark.parametrize(("text", "size"), [("a" * 10, 10), ("é" * 5, 10), ("€" * 4, 12)])
def test_a_text_at_its_byte_limit_passes_and_one_past_is_refused(text: str, size: int) -> None:
    assert check_text(text, size) == text
    with pytest.raises(InvalidName, match=f"is {size} bytes; the limit is {size - 1}"):
        check_text(text, size - 1)
