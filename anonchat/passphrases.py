"""Passphrase advice for secret rooms: generating strong ones, warning about weak ones.

Apart from :mod:`anonchat.crypto` on purpose: this is advice for people (a
word list, a rough strength estimate), not part of the key schedule, and the
front ends may use it while they never touch the cryptography itself.
"""

from __future__ import annotations

import math
import re
import secrets
from functools import cache
from importlib import resources

from .crypto import CryptoCode, _fail, normalize_passphrase

WORDLIST_SIZE = 7776
MIN_PASSPHRASE_CHARS = 12
WEAK_BITS = 50
_SEPARATORS = re.compile(r"[\s_.,+/:;-]+")
_COMMON = (
    "password", "passwort", "passw0rd", "qwerty", "qwertz", "azerty", "letmein", "iloveyou",
    "welcome", "admin", "secret", "monkey", "dragon", "sunshine", "princess", "football",
    "baseball", "trustno1", "abc123", "123456", "111111", "anonchat", "changeme", "master",
)  # fmt: skip
_ROWS = (  # keyboards (QWERTY, AZERTY, QWERTZ) and the alphabet, to catch runs
    "1234567890qwertyuiopasdfghjklzxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn",
    "qwertzuiopasdfghjklyxcvbnm",
    "abcdefghijklmnopqrstuvwxyz",
)


@cache
def wordlist() -> tuple[str, ...]:
    """The EFF large word list (CC BY 3.0, see the header of ``wordlist.txt``)."""
    text = resources.files(__package__ or "anonchat").joinpath("wordlist.txt").read_text("utf-8")
    words = tuple(w for w in text.splitlines() if w and not w.startswith("#"))
    if len(set(words)) != WORDLIST_SIZE:
        raise _fail(CryptoCode.BAD_WORDLIST, f"wordlist.txt must hold {WORDLIST_SIZE} words")
    return words


@cache
def _wordset() -> frozenset[str]:
    return frozenset(wordlist())


def generate_passphrase(words: int = 6) -> str:
    """Random words joined by '-' (one token to copy); 6 words are 77.5 bits."""
    if not 1 <= words <= 64:
        raise _fail(CryptoCode.BAD_INPUT, "a passphrase has 1 to 64 words")
    return "-".join(secrets.choice(wordlist()) for _ in range(words))


def _count_list_words(passphrase: str) -> int | None:
    """The fewest word-list words that spell ``passphrase``, or None if it is not such a list.

    Adjacent tokens may form one hyphenated word (``t-shirt``); taking the
    fewest words keeps the estimate on the low side.
    """
    tokens = [t for t in _SEPARATORS.split(passphrase.casefold()) if t]
    best: list[int | None] = [0] + [None] * len(tokens)
    for i in range(len(tokens)):
        done = best[i]
        if done is None:
            continue
        for j, word in ((i + 1, tokens[i]), (i + 2, "-".join(tokens[i : i + 2]))):
            if j <= len(tokens) and word in _wordset():
                current = best[j]
                best[j] = done + 1 if current is None else min(current, done + 1)
    return best[-1] if tokens else None


def _nist_bits(passphrase: str) -> float:
    """NIST SP 800-63-1 appendix A: a rough guess at human-chosen secrets."""
    n = len(passphrase)
    bits = 4.0 * min(n, 1) + 2 * min(max(n - 1, 0), 7)
    bits += 1.5 * min(max(n - 8, 0), 12) + max(n - 20, 0)
    has_upper = any(c.isupper() for c in passphrase)
    has_other = any(not c.isalpha() for c in passphrase)
    return bits + (6 if has_upper and has_other else 0)


def estimate_bits(passphrase: str) -> float:
    """A simple, honest-to-its-limits strength estimate in bits.

    Words from the shipped list, separated by punctuation or spaces, count
    log2(7776) = 12.9 bits each, which is right only if they were picked at
    random (as :func:`generate_passphrase` does).  Anything else gets the NIST
    SP 800-63-1 heuristic for human-chosen secrets, which is deliberately
    pessimistic about long random strings and cannot see dictionary words,
    names or dates: it is a reason to warn, never proof of strength.
    """
    count = _count_list_words(passphrase)
    if count is not None:
        return count * math.log2(WORDLIST_SIZE)
    return _nist_bits(passphrase)


def _is_pattern(passphrase: str) -> bool:
    """A common password, a repeated chunk or a keyboard/alphabet run."""
    s = _SEPARATORS.sub("", passphrase.casefold())
    for common in _COMMON:
        s = s.replace(common, "")
    if len(s) < 4:
        return True
    if any(s == s[:k] * (len(s) // k) for k in range(1, len(s) // 2 + 1) if len(s) % k == 0):
        return True
    return any(s in row * 3 or s in row[::-1] * 3 for row in _ROWS)


def _char_classes(passphrase: str) -> int:
    tests = (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    return sum(any(test(c) for c in passphrase) for test in tests)


def passphrase_warning(passphrase: str) -> str | None:
    """A sentence saying why a passphrase is weak, or None if it looks fine.

    Anyone who can see the server's data can test guesses offline, at the
    speed of Argon2id, without the server noticing: hence the strict bar.
    """
    advice = f"a generated one of 6 words has {6 * math.log2(WORDLIST_SIZE):.1f} bits."
    p = normalize_passphrase(passphrase)
    if not p:
        return "The passphrase is empty; " + advice
    if len(p) < MIN_PASSPHRASE_CHARS:
        return f"The passphrase is shorter than {MIN_PASSPHRASE_CHARS} characters; " + advice
    if _is_pattern(p):
        return "The passphrase is a common password or a simple pattern; " + advice
    bits = estimate_bits(p)
    if bits < WEAK_BITS:
        return f"The passphrase looks guessable (rough estimate: {bits:.0f} bits); " + advice
    if _count_list_words(p) is None and _char_classes(p) < 2:
        return "The passphrase uses only one kind of character; " + advice
    return None
