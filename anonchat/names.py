"""What a valid nick, room name, topic and message text are.

Shared by the daemon (which enforces) and the clients (which check early to
give a clear error before a round trip).  Names are compared by a *key*:
NFKC-normalised and case-folded, so ``Alice``, ``ALICE`` and a full-width
``Ａｌｉｃｅ`` are the same nick.

Characters that could move a terminal's cursor, hide text or reverse it are
never allowed in names: control characters (Cc), format characters (Cf, which
includes U+202E RIGHT-TO-LEFT OVERRIDE and the zero-width characters), private
use, surrogates, unassigned code points, and any kind of whitespace.
"""

from __future__ import annotations

import random
import re
import unicodedata

from .confusables import skeleton
from .emoji import in_emoji
from .events import NICK_MAX, ROOM_MAX, TOPIC_MAX

_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp", "Zs"})


class InvalidName(ValueError):
    """A name broke a rule; the message says which, for people."""


def _bad_char(ch: str) -> bool:
    return unicodedata.category(ch) in _FORBIDDEN_CATEGORIES or ch.isspace()


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


def check_name(value: str, what: str, max_len: int) -> str:
    """Return ``value`` if it is a valid name, else raise :class:`InvalidName`."""
    if not value:
        raise InvalidName(f"{what} must not be empty")
    if len(value) > max_len:
        raise InvalidName(f"{what} must be at most {max_len} characters")
    for ch in value:
        if _bad_char(ch):
            raise InvalidName(f"{what} must not contain {_describe(ch)}")
    if unicodedata.combining(value[0]):
        raise InvalidName(f"{what} must not start with a combining mark")
    return value


def check_nick(nick: str) -> str:
    return check_name(nick, "a nick", NICK_MAX)


def check_room(room: str) -> str:
    return check_name(room, "a room name", ROOM_MAX)


def name_key(name: str) -> str:
    """The comparison key of a nick or room name (case- and width-insensitive)."""
    # (NFKC leaves ASCII as it is; casefold() is lower() on it.)
    key = name.lower() if name.isascii() else unicodedata.normalize("NFKC", name).casefold()
    # A name that is its own key is returned as it is, not as an equal copy: the
    # daemon keeps both for every session (its nick, and the nick's keys).
    return name if key == name else key


def claim_keys(nick: str) -> tuple[str, ...]:
    """The keys a nick is held under in the daemon: two nicks that look alike
    share one, so only one of them can be connected at a time.

    The confusable skeleton of UTS #39 (:func:`anonchat.confusables.skeleton`)
    is case-sensitive (a capital ``I`` looks like ``l``, a lower-case ``i``
    does not), and nicks are compared without case; so a nick claims two
    keys, each :func:`name_key`-ed: the skeleton of its ``name_key`` (``ALICE``,
    a Cyrillic ``аlice`` and ``a1ice`` claim ``alice``) and the skeleton of the
    nick as typed (``aIice`` with a capital I, or a Cyrillic ``НЕLLO``, claims
    what ``alice`` or ``hello`` does)."""
    folded = name_key(skeleton(name_key(nick)))
    typed = name_key(skeleton(nick))
    return (folded,) if typed == folded else (folded, typed)


#: Unicode's control characters (category Cc: C0, DEL, C1) but tab and newline,
#: and surrogates (Cs): what message text may not hold.  A regular expression
#: is the same test as ``unicodedata.category`` per character, run in C (every
#: message is checked; tests/test_names.py compares the two on every code point).
_TEXT_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
#: A topic is one line: all control characters, surrogates, and the line and
#: paragraph separators (Zl, Zp).
_TOPIC_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def check_text(text: str, max_bytes: int, what: str = "a message") -> str:
    """Message text: non-empty, at most ``max_bytes`` of UTF-8, no control characters
    other than tab and newline, no lone surrogates."""
    if not text or text.isspace():  # (as ``not text.strip()``, without a copy)
        raise InvalidName(f"{what} must not be empty")
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise TextTooLong(f"{what} is {size} bytes; the limit is {max_bytes}")
    # A printable text has no control character and no surrogate (isprintable()
    # refuses every Cc and Cs, and more): most texts need no other look.
    bad = None if text.isprintable() else _TEXT_FORBIDDEN.search(text)
    if bad:
        raise InvalidName(f"{what} must not contain {_describe(bad.group())}")
    return text


class TextTooLong(InvalidName):
    pass


def check_topic(topic: str) -> str:
    """A topic: at most TOPIC_MAX characters, one line, no control characters (may be empty)."""
    if len(topic) > TOPIC_MAX:
        raise InvalidName(f"a topic must be at most {TOPIC_MAX} characters")
    bad = _TOPIC_FORBIDDEN.search(topic)
    if bad:
        raise InvalidName(f"a topic must not contain {_describe(bad.group())}")
    return topic


_ADJECTIVES = (
    "quiet calm brave swift gentle clever bright silent merry lucky "
    "bold keen mellow nimble plucky proud quick shy sly steady sunny tidy "
    "wise witty zesty amber azure crimson golden ivory jade scarlet"
).split()
_ANIMALS = (
    "otter badger heron lynx marten owl panda puffin raven robin seal "
    "stoat swift tapir wren yak ibis koala lemur moose newt okapi quail "
    "shrew sloth toad vole walrus zebra gecko"
).split()


def random_nick(rng: random.Random | None = None) -> str:
    """A readable throwaway nick such as ``quiet-otter-42``."""
    r = rng or random.SystemRandom()
    return f"{r.choice(_ADJECTIVES)}-{r.choice(_ANIMALS)}-{r.randrange(10, 100)}"


_CARETS = {i: f"^{chr(i + 64)}" for i in range(32)}
_CARETS[0x7F] = "^?"


_SHOWN_AS_CODES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def sanitize(text: str, *, keep_newlines: bool = False) -> str:
    """Make text from another user safe to write to a terminal.

    C0 controls and DEL become caret notation (ESC -> ``^[``), C1 controls and
    format characters (bidi overrides, zero-width) become ``<U+202E>``-style codes, so
    nothing can move the cursor, change colours or reorder the line.  The one
    exception is a format character that is part of an emoji (a joiner between
    two emoji, the tags of a flag: :func:`anonchat.emoji.in_emoji`), so 👩‍💻
    stays one emoji.
    """
    out = []
    for at, ch in enumerate(text):
        cp = ord(ch)
        if keep_newlines and ch == "\n":
            out.append(ch)
        elif ch == "\t":
            out.append("    ")
        elif cp < 32 or cp == 0x7F:
            out.append(_CARETS[cp])
        elif unicodedata.category(ch) in _SHOWN_AS_CODES and not in_emoji(text, at):
            out.append(f"<U+{cp:04X}>")
        else:
            out.append(ch)
    return "".join(out)
