"""Emoji sequences stay whole in a terminal-safe line; nothing else invisible survives."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonchat.emoji import TAGS_MAX, in_emoji, pictographic
from anonchat.names import sanitize
from anonchat.unicode_data import data_version

ZWJ = "\u200d"
FLAG_SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"


def test_the_emoji_data_is_unicode_14() -> None:
    assert data_version("emoji-data.txt") == "14.0"


@pytest.mark.parametrize(
    "emoji",
    [
        "\U0001f469\u200d\U0001f4bb",  # woman technologist
        "\U0001f469\U0001f3fd\u200d\U0001f4bb",  # with a skin tone
        "\U0001f3f3\ufe0f\u200d\U0001f308",  # rainbow flag: selector, then joiner
        "\u2764\ufe0f\u200d\U0001f525",  # heart on fire
        "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",  # family of four
        "\U0001f9d1\u200d\U0001f91d\u200d\U0001f9d1",  # people holding hands
        FLAG_SCOTLAND,  # a tag sequence
        "1\ufe0f\u20e3",  # keycap (never had a format character)
        "\U0001f1eb\U0001f1f7",  # a flag of regional indicators
        "\U0001f44d\U0001f3ff",  # a skin-tone modifier
    ],
)
def test_an_emoji_sequence_is_shown_whole(emoji: str) -> None:
    line = f"look {emoji} here"
    assert sanitize(line) == line


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\u200db", "a<U+200D>b"),  # a joiner between letters
        ("\U0001f469\u200d", "\U0001f469<U+200D>"),  # after an emoji, before nothing
        ("\u200d\U0001f4bb", "<U+200D>\U0001f4bb"),  # before an emoji, after nothing
        ("\U0001f469\u200da", "\U0001f469<U+200D>a"),
        ("\U0001f469\u202e\U0001f4bb", "\U0001f469<U+202E>\U0001f4bb"),  # a bidi override
        ("\U0001f469\u200b\U0001f4bb", "\U0001f469<U+200B>\U0001f4bb"),  # zero-width space
        ("x\U000e0067\U000e007f", "x<U+E0067><U+E007F>"),  # tags after a letter
        ("\U0001f3f4\U000e0067", "\U0001f3f4<U+E0067>"),  # tags never closed
        ("\U0001f3f4\U000e007f", "\U0001f3f4<U+E007F>"),  # a cancel tag alone
        ("\u2066x\u2069", "<U+2066>x<U+2069>"),  # isolates
    ],
)
def test_invisible_characters_outside_an_emoji_stay_visible(text: str, shown: str) -> None:
    assert sanitize(text) == shown


def test_a_tag_sequence_is_bounded() -> None:
    """At the bound the flag is whole; one tag more and every tag is shown as a code."""
    at = "\U0001f3f4" + "\U000e0067" * TAGS_MAX + "\U000e007f"
    assert sanitize(at) == at
    past = "\U0001f3f4" + "\U000e0067" * (TAGS_MAX + 1) + "\U000e007f"
    assert sanitize(past).count("<U+E0067>") == TAGS_MAX + 1


BIDI_CONTROLS = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}
HIDDEN = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}

#: What emoji sequences and their lookalike attacks are made of, and anything else.
PIECES = st.sampled_from(
    [
        "\U0001f469", "\U0001f4bb", "\u2764", "\U0001f3f3", "\U0001f3f4", "\U0001f3fd",
        "\ufe0f", ZWJ, "\u200b", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066",
        "\u2069", "\u061c", "\U000e0067", "\U000e007f", "\ufeff", "\u2028", "\x1b", "a", " ",
    ]
)  # fmt: skip
TEXTS = st.lists(st.one_of(PIECES, st.characters()), max_size=40).map("".join)


@settings(max_examples=500, deadline=None)
@given(TEXTS)
def test_nothing_invisible_survives_outside_an_emoji_sequence(text: str) -> None:
    shown = sanitize(text)
    for at, ch in enumerate(shown):
        assert unicodedata.bidirectional(ch) not in BIDI_CONTROLS, repr(shown)
        if unicodedata.category(ch) in HIDDEN:
            assert in_emoji(shown, at), repr(shown)
            assert ch == ZWJ or 0xE0020 <= ord(ch) <= 0xE007F, repr(shown)
    if not any(unicodedata.category(ch) in HIDDEN or ch == "\t" for ch in text):
        assert shown == text


def test_a_joiner_is_kept_only_between_pictographs() -> None:
    assert pictographic("\U0001f469") and pictographic("\u2764")
    assert not pictographic("a") and not pictographic("\U0001f3fd")  # a modifier is not one
