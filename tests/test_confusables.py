"""Look-alike names: UTS #39 skeletons, claim keys and mixed scripts, on Unicode's data."""

from __future__ import annotations

import subprocess
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anonchat.confusables import mixed_script, skeleton
from anonchat.names import claim_keys, name_key
from anonchat.unicode_data import data_version

BUNDLED = ("confusables.txt", "Scripts.txt", "ScriptExtensions.txt", "PropertyValueAliases.txt")


def test_the_bundled_files_are_one_unicode_version() -> None:
    """Unicode's files, verbatim, all of the version Python 3.11's unicodedata has."""
    assert {data_version(name) for name in BUNDLED} == {"14.0.0"}


def test_the_data_is_read_when_first_needed_not_at_import() -> None:
    code = (
        "import anonchat.daemon.server, anonchat.names, anonchat.confusables as c;"
        "print(c._prototypes.cache_info().currsize, c._scripts.cache_info().currsize);"
        "anonchat.names.claim_keys('x'); c.mixed_script('x');"
        "print(c._prototypes.cache_info().currsize, c._scripts.cache_info().currsize)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "0", "1", "1"]


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("alice", "\u0430lice"),  # Cyrillic а
        ("alice", "ALIC\u0415"),  # Cyrillic Е, and case
        ("alice", "a1ice"),  # digit one for l
        ("alice", "aIice"),  # capital I for l
        ("hello", "\u041d\u0415LLO"),  # Cyrillic Н and Е, in capitals
        ("paypal", "\u0440\u0430ypal"),  # Cyrillic р and а
        ("mallory", "rnallory"),  # rn for m
        ("bob", "\uff42\uff4f\uff42"),  # full width
        ("bobo", "bob0"),  # zero for o
        ("scope", "\u0455\u0441\u043e\u0440\u0435"),  # all Cyrillic
    ],
)
def test_look_alikes_claim_one_key(one: str, other: str) -> None:
    assert set(claim_keys(one)) & set(claim_keys(other))


@pytest.mark.parametrize(
    ("one", "other"),
    [("alice", "alicee"), ("bob", "rob"), ("Алиса", "alice"), ("ελένη", "elene"), ("ab", "ba")],
)
def test_different_names_claim_different_keys(one: str, other: str) -> None:
    assert not set(claim_keys(one)) & set(claim_keys(other))


def test_skeleton_follows_uts39() -> None:
    """NFD, each character to its prototype, NFD again (UTS #39 section 4)."""
    assert skeleton("\u0430") == "a"
    assert skeleton("m") == "rn"
    assert skeleton("\u00e9") == skeleton("e\u0301")  # composed or not, one skeleton


@given(st.text(max_size=32))
def test_the_same_name_claims_the_same_key(name: str) -> None:
    """Whatever the daemon already called one nick (case, width) stays one claim."""
    same = unicodedata.normalize("NFKC", name).upper().lower()
    assert claim_keys(name)[0] == claim_keys(same)[0] == claim_keys(name_key(name))[0]


@pytest.mark.parametrize(
    ("name", "mixed"),
    [
        ("alice", False),
        ("\u0430lice", True),  # Cyrillic а among Latin
        ("alic\u0435", True),
        ("\u0440aypal", True),
        ("\u0410\u043b\u0438\u0441\u0430", False),  # all Cyrillic
        ("\u0395\u03bb\u03ad\u03bd\u03b7", False),  # all Greek
        ("\u5c71\u7530\u305f\u308d\u3046", False),  # Han with Hiragana: Japanese
        ("\ud55c\uad6d\u6f22\u5b57", False),  # Hangul with Han: Korean
        ("bob_42", False),  # digits and _ are Common
        ("e\u0301t\u00e9", False),  # a combining accent is Inherited
        ("ab\u0640", True),  # the Arabic tatweel is no Latin letter
        ("a\u03b1", True),  # Latin a, Greek alpha
    ],
)
def test_mixed_script(name: str, mixed: bool) -> None:
    assert mixed_script(name) is mixed
