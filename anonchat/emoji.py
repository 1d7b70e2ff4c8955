"""Which invisible characters belong to an emoji (UTS #51, Unicode Emoji).

A terminal-safe line (:func:`anonchat.names.sanitize`) shows every format
character as a visible ``<U+XXXX>`` code, so that nothing can hide or
reorder text.  Two of them are also how emoji are built, and showing them
breaks the emoji: ``👩<U+200D>💻`` instead of 👩‍💻.  They are kept, and only
there:

* U+200D ZERO WIDTH JOINER between two emoji (an emoji here: an
  Extended_Pictographic character, after which a variation selector U+FE0F
  and a skin-tone modifier may follow), as in 👩‍💻, 🏳️‍🌈 or 👍🏽‍… sequences;
* the tag characters U+E0020..U+E007E of a flag's tag sequence, an emoji
  followed by tags and closed by U+E007F CANCEL TAG (🏴 + "gbsct" + cancel).

Variation selectors, skin-tone modifiers, keycap marks and regional
indicators (flags) are not format characters and were never hidden.  The
Extended_Pictographic property comes from Unicode's ``emoji-data.txt``
(bundled, read on first use: only when a joiner or a tag is met).
"""

from __future__ import annotations

import functools

from .unicode_data import Ranges, code_points, lines

ZWJ = "\u200d"
_VS16 = 0xFE0F
_MODIFIERS = range(0x1F3FB, 0x1F400)
_TAG_SPECS = range(0xE0020, 0xE007F)
_CANCEL_TAG = 0xE007F
_YES = frozenset({"yes"})
#: Tags in one flag's sequence at most (real ones have 2 to 7: "gbsct"): a
#: bound, so that a long run of tags costs linear time, not quadratic.
TAGS_MAX = 32


@functools.cache
def _pictographic() -> Ranges:
    rows = [
        (code_points(field), _YES)
        for field, prop in lines("emoji-data.txt")
        if prop == "Extended_Pictographic"
    ]
    return Ranges(rows)


def pictographic(ch: str) -> bool:
    """Is ``ch`` an emoji that sequences are made of (Extended_Pictographic)?"""
    return _pictographic().get(ord(ch)) is not None


def _emoji_before(text: str, at: int) -> bool:
    """Does an emoji end just before ``at`` (with its selector and modifier)?"""
    while at > 0 and (ord(text[at - 1]) == _VS16 or ord(text[at - 1]) in _MODIFIERS):
        at -= 1
    return at > 0 and pictographic(text[at - 1])


def in_emoji(text: str, at: int) -> bool:
    """Is ``text[at]``, a format character, part of an emoji sequence (above)?"""
    cp = ord(text[at])
    if cp == 0x200D:
        return at + 1 < len(text) and pictographic(text[at + 1]) and _emoji_before(text, at)
    if cp in _TAG_SPECS or cp == _CANCEL_TAG:
        start = at
        while start > 0 and ord(text[start - 1]) in _TAG_SPECS and at - start < TAGS_MAX:
            start -= 1
        end = at if cp == _CANCEL_TAG else at + 1
        while end < len(text) and ord(text[end]) in _TAG_SPECS and end - start <= TAGS_MAX:
            end += 1
        closed = end < len(text) and ord(text[end]) == _CANCEL_TAG and 0 < end - start <= TAGS_MAX
        return closed and start > 0 and pictographic(text[start - 1])
    return False
