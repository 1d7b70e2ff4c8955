"""Secret-room cryptography: known answers, tampering, replays, passphrases."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import re
import struct
from functools import cache
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from anonchat import crypto
from anonchat.crypto import (
    BUCKETS,
    STALE_MS,
    CryptoCode,
    Identity,
    Opener,
    RoomKeys,
    Sealed,
    Sealer,
    derive_room_keys,
    fingerprint,
    key_proof,
    long_fingerprint,
    normalize_passphrase,
    normalize_room,
    room_salt,
    verify_join_proof,
    verify_key_proof,
)
from anonchat.errors import AnonchatError, CryptoError
from anonchat.passphrases import estimate_bits, generate_passphrase, passphrase_warning, wordlist

PIN = bytes(range(32))
OTHER_PIN = bytes(range(1, 33))
ROOM = "Secret Room"
PASSPHRASE = "correct horse battery staple"
CHALLENGE = bytes(range(100, 132))
NOW = 1_700_000_000_000
# The owner key naming the incarnation of the room the messages are sealed for.
OWNER = Identity.from_seed(bytes([5]) * 32).public

# Known answers, computed once with this code and pasted here (2026: crypto v1;
# the sending key, ciphertext and signature again for v2, which binds the owner
# key into them, with the new labels "anonchat/v2/send" and "anonchat/v2/msg").
# If one of these changes, every existing room and message format has changed:
# that needs a new version label ("anonchat/v3/..."), not a new constant.
KAT_SALT = "0bd1dd28cdea763921d36321ca0ae60f"
KAT_ROOM_ID = "0b0ac9f07a82f223d99ce96ce13f099ff4b7e0838f4df068e6a5ee7737a42bdc"
KAT_AUTH_PUBLIC = "18dfeb3a4f283b48a399d02c3affb4bb86a1bae9ae39a3cf4625797210a187fc"
KAT_SENDER = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"
KAT_SEND_KEY = "fbff24a1794d4b28d160dabe961b2c10f4541d175c1779f3eac5646a63003564"
KAT_FINGERPRINT = ("c5mw", "c5mw-p9e7-kgac-fayg")
KAT_CIPHERTEXT_SHA256 = "65a29c6fb8c9b364e747a3ac884952ca8c116482617596a26e094c1ae58895d2"
KAT_SIGNATURE = (
    "5b4939d306971bd2738f2e2ced3dcf142de32120bc1e160be7fa5452aaec9b33"
    "cdae847866b3fe9c48bea2f1d513233a285abb909beb659a8127441582785f0a"
)
KAT_JOIN_PROOF = (
    "edee2c573e3491ca6033910fcebcb49921d81e0b0b79625c41d22df3b1ff022c"
    "5b5be83217b6db9a58fda17997452df57ca30f425d84e691252036c52c52bf06"
)


# Argon2id at 64 MiB costs ~0.2 s: derive each room once for the whole module.
@cache
def keys() -> RoomKeys:
    return derive_room_keys(ROOM, PASSPHRASE, PIN)


@cache
def other_keys() -> RoomKeys:
    return derive_room_keys("another room", PASSPHRASE, PIN)


@cache
def alice() -> Identity:
    return Identity.from_seed(bytes([7]) * 32)


@cache
def mallory() -> Identity:
    return Identity.from_seed(bytes([9]) * 32)


def code_of(excinfo: pytest.ExceptionInfo[CryptoError]) -> str:
    return excinfo.value.code


def reference_hkdf(key: bytes, info: bytes) -> bytes:
    """RFC 5869 with SHA-256, no salt, 32 bytes: independent of the module."""
    prk = hmac.new(bytes(32), key, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def resign(
    sealed: Sealed, identity: Identity, room_id: bytes | None = None, **changes: Any
) -> Sealed:
    """Change fields and sign again, as a sender (or someone claiming to be one) could."""
    changed = dataclasses.replace(sealed, **changes)
    ad = crypto._associated_data(
        room_id or keys().room_id,
        OWNER,
        changed.epoch,
        changed.sender,
        changed.counter,
        changed.kind,
    )
    return dataclasses.replace(changed, signature=identity.sign(ad + changed.ciphertext))


def seal_raw(plaintext: bytes, counter: int = 1, kind: str = "msg") -> Sealed:
    """Encrypt and sign arbitrary plaintext bytes as alice, bypassing the encoder."""
    sender = alice().public
    ad = crypto._associated_data(keys().room_id, OWNER, 0, sender, counter, kind)
    aead = ChaCha20Poly1305(keys().sending_key(OWNER, 0, sender))
    ciphertext = aead.encrypt(counter.to_bytes(12, "big"), plaintext, ad)
    return Sealed(sender, counter, kind, 0, ciphertext, alice().sign(ad + ciphertext))


# --- key schedule -----------------------------------------------------------


def test_argon2id_rfc9106_vector() -> None:
    """RFC 9106 section 5.3: the library computes the Argon2id we specify."""
    kdf = Argon2id(
        salt=b"\x02" * 16,
        length=32,
        iterations=3,
        lanes=4,
        memory_cost=32,
        ad=b"\x04" * 12,
        secret=b"\x03" * 8,
    )
    expected = "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
    assert kdf.derive(b"\x01" * 32).hex() == expected


def test_key_schedule_known_answers() -> None:
    assert room_salt(ROOM, PIN).hex() == KAT_SALT
    assert keys().room_id.hex() == KAT_ROOM_ID
    assert keys().auth_public.hex() == KAT_AUTH_PUBLIC
    assert alice().public.hex() == KAT_SENDER
    assert keys().sending_key(OWNER, 0, alice().public).hex() == KAT_SEND_KEY


def test_key_schedule_follows_the_design_document() -> None:
    """Recompute every step from DESIGN.md with independent code."""
    salt = hashlib.sha256(b"anonchat/v1/salt\x00" + PIN + b"\x00secret room").digest()[:16]
    assert salt == room_salt(ROOM, PIN)
    master = Argon2id(salt=salt, length=32, iterations=3, lanes=4, memory_cost=65536).derive(
        PASSPHRASE.encode()
    )
    assert keys().room_id == reference_hkdf(master, b"anonchat/v1/room_id")
    seed = reference_hkdf(master, b"anonchat/v1/auth_seed")
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    assert keys().auth_public == public
    enc_root = reference_hkdf(master, b"anonchat/v1/enc_root")
    info = b"anonchat/v2/send\x00" + OWNER + struct.pack(">I", 3) + alice().public
    assert keys().sending_key(OWNER, 3, alice().public) == reference_hkdf(enc_root, info)


def test_sealed_known_answer() -> None:
    sealed = Sealer(keys(), alice(), OWNER).seal("alice", NOW, "hello")
    assert hashlib.sha256(sealed.ciphertext).hexdigest() == KAT_CIPHERTEXT_SHA256
    assert sealed.signature.hex() == KAT_SIGNATURE
    assert keys().join_proof(CHALLENGE, PIN).hex() == KAT_JOIN_PROOF
    assert (alice().fingerprint, long_fingerprint(alice().public)) == KAT_FINGERPRINT


def test_plaintext_and_associated_data_layout() -> None:
    """The byte formats documented in the module docstring, spelled out."""
    sealed = Sealer(keys(), alice(), OWNER, epoch=2).seal("ålice", NOW, "hi", kind="me")
    record = b"\x06" + "ålice".encode() + NOW.to_bytes(8, "big") + b"hi"
    plaintext = len(record).to_bytes(2, "big") + record
    plaintext += bytes(256 - len(plaintext))
    ad = (
        b"anonchat/v2/msg\x00"
        + keys().room_id
        + OWNER
        + (2).to_bytes(4, "big")
        + alice().public
        + (1).to_bytes(8, "big")
        + b"\x02me"
    )
    aead = ChaCha20Poly1305(keys().sending_key(OWNER, 2, alice().public))
    assert aead.decrypt((1).to_bytes(12, "big"), sealed.ciphertext, ad) == plaintext
    assert verify_signature(alice().public, sealed.signature, ad + sealed.ciphertext)


def verify_signature(public: bytes, signature: bytes, data: bytes) -> bool:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    return True


def test_secrets_stay_out_of_repr() -> None:
    text = repr(keys()) + repr(alice())
    assert "_enc_root" not in text and "_auth_key" not in text and "_key" not in text
    assert "room_id" in text and "auth_public" in text


def test_pin_must_be_32_bytes() -> None:
    with pytest.raises(CryptoError) as excinfo:
        derive_room_keys(ROOM, PASSPHRASE, b"short")
    assert code_of(excinfo) == CryptoCode.BAD_INPUT


def test_unencodable_input_is_our_error() -> None:
    with pytest.raises(CryptoError):
        room_salt("room\udcff", PIN)
    with pytest.raises(CryptoError):
        derive_room_keys(ROOM, "pass\ud800", PIN)


# --- normalisation ----------------------------------------------------------


def test_normalize_room() -> None:
    assert normalize_room("  Secret Room\t") == "secret room"
    assert normalize_room("Ｓｅｃｒｅｔ") == "secret"  # full-width, NFKC
    assert normalize_room("STRASSE") == normalize_room("straße")  # casefold, not lower
    assert normalize_room("ﬁle") == "file"  # ligature


def test_normalize_passphrase_keeps_case_and_spaces() -> None:
    assert normalize_passphrase("Cafe\u0301 ") == "Café "
    assert normalize_passphrase("ABC") != normalize_passphrase("abc")


def test_equivalent_room_names_give_the_same_room() -> None:
    assert derive_room_keys("  ＳＥＣＲＥＴ room ", PASSPHRASE, PIN).room_id == keys().room_id


def test_equivalent_passphrases_give_the_same_room() -> None:
    composed = derive_room_keys(ROOM, "caf\u00e9 au lait", PIN)
    decomposed = derive_room_keys(ROOM, "cafe\u0301 au lait", PIN)
    assert composed.room_id == decomposed.room_id
    assert composed.room_id != keys().room_id


def test_salt_is_bound_to_server_and_name() -> None:
    assert room_salt(ROOM, PIN) != room_salt(ROOM, OTHER_PIN)
    assert room_salt(ROOM, PIN) != room_salt("secret room2", PIN)
    assert derive_room_keys(ROOM, PASSPHRASE, OTHER_PIN).room_id != keys().room_id


# --- join proofs --------------------------------------------------------------


def test_join_proof_verifies() -> None:
    proof = keys().join_proof(CHALLENGE, PIN)
    assert verify_join_proof(keys().auth_public, keys().room_id, CHALLENGE, PIN, proof)


@pytest.mark.parametrize(
    "field, value",
    [
        ("auth_public", "other"),
        ("room_id", bytes(32)),
        ("challenge", bytes(32)),
        ("server_pin", OTHER_PIN),
        ("proof", bytes(64)),
    ],
)
def test_join_proof_refused_when_anything_differs(field: str, value: Any) -> None:
    args: dict[str, Any] = {
        "auth_public": keys().auth_public,
        "room_id": keys().room_id,
        "challenge": CHALLENGE,
        "server_pin": PIN,
        "proof": keys().join_proof(CHALLENGE, PIN),
    }
    args[field] = other_keys().auth_public if value == "other" else value
    assert not verify_join_proof(**args)


@pytest.mark.parametrize("garbage", [b"", b"x" * 31, b"x" * 65, "text", None, 42, bytearray(32)])
def test_verify_join_proof_never_raises(garbage: Any) -> None:
    proof = keys().join_proof(CHALLENGE, PIN)
    good = [keys().auth_public, keys().room_id, CHALLENGE, PIN, proof]
    for i in range(len(good)):
        args = list(good)
        args[i] = garbage
        assert not verify_join_proof(*args)


@pytest.mark.parametrize(
    "field, value",
    [
        ("sender", "other"),
        ("room_id", bytes(32)),
        ("challenge", bytes(32)),
        ("server_pin", OTHER_PIN),
        ("proof", bytes(64)),
        ("proof", "join"),  # the join proof is not a key proof, even by the same key
    ],
)
def test_key_proof_only_for_its_key_room_challenge_and_pin(field: str, value: Any) -> None:
    me = Identity.from_seed(bytes(32))
    args: dict[str, Any] = {
        "sender": me.public,
        "room_id": keys().room_id,
        "challenge": CHALLENGE,
        "server_pin": PIN,
        "proof": key_proof(me, keys().room_id, CHALLENGE, PIN),
    }
    assert verify_key_proof(**args)
    if value == "other":
        value = Identity.from_seed(bytes([1]) * 32).public
    elif value == "join":
        value = me.sign(b"anonchat/v1/join\0" + keys().room_id + CHALLENGE + PIN)
    args[field] = value
    assert not verify_key_proof(**args)


@pytest.mark.parametrize("garbage", [b"", b"x" * 31, b"x" * 65, "text", None, 42])
def test_verify_key_proof_never_raises(garbage: Any) -> None:
    me = Identity.from_seed(bytes(32))
    good = [
        me.public,
        keys().room_id,
        CHALLENGE,
        PIN,
        key_proof(me, keys().room_id, CHALLENGE, PIN),
    ]
    for i in range(len(good)):
        args = list(good)
        args[i] = garbage
        assert not verify_key_proof(*args)


def test_join_proof_refuses_a_bad_challenge() -> None:
    with pytest.raises(CryptoError):
        keys().join_proof(b"short", PIN)
    with pytest.raises(CryptoError):
        keys().join_proof(bytes(65), PIN)


# --- identities and fingerprints --------------------------------------------


def test_fingerprints_tell_same_nicks_apart() -> None:
    one, two = Identity.generate(), Identity.generate()
    assert one.public != two.public
    assert one.fingerprint != two.fingerprint  # fails with probability 2**-20
    assert re.fullmatch(r"[0-9a-hjkmnp-tv-z]{4}", one.fingerprint)
    assert not set(one.fingerprint) & set("ilou")


def test_long_fingerprint_extends_the_short_one() -> None:
    long = long_fingerprint(alice().public)
    assert re.fullmatch(r"([0-9a-hjkmnp-tv-z]{4}-){3}[0-9a-hjkmnp-tv-z]{4}", long)
    assert long.startswith(fingerprint(alice().public))


# --- sealing and opening ----------------------------------------------------

OVERHEAD = 2 + 1 + len("alice") + 8  # length prefix, nick length, nick, timestamp


@pytest.mark.parametrize("bucket", BUCKETS)
def test_round_trip_fills_each_bucket_exactly(bucket: int) -> None:
    sealer, opener = Sealer(keys(), alice(), OWNER), Opener(keys(), OWNER)
    for size, expected in ((bucket - OVERHEAD, bucket), (bucket - OVERHEAD + 1, bucket * 2)):
        if expected > BUCKETS[-1]:
            continue
        sealed = sealer.seal("alice", NOW, "x" * size)
        assert len(sealed.ciphertext) == expected + 16
        opened = opener.open(sealed, NOW)
        assert (opened.nick, opened.ts, opened.body, opened.kind) == (
            "alice",
            NOW,
            "x" * size,
            "msg",
        )
        assert (opened.sender, opened.fingerprint) == (alice().public, alice().fingerprint)


def test_4096_bytes_is_the_limit() -> None:
    sealer = Sealer(keys(), alice(), OWNER)
    Opener(keys(), OWNER).open(sealer.seal("alice", NOW, "x" * (4096 - OVERHEAD)), NOW)
    with pytest.raises(CryptoError) as excinfo:
        sealer.seal("alice", NOW, "x" * (4096 - OVERHEAD + 1))
    assert code_of(excinfo) == CryptoCode.TOO_LARGE
    assert sealer.counter == 1  # a refused message spends no counter


def test_unicode_and_empty_bodies_round_trip() -> None:
    sealer, opener = Sealer(keys(), alice(), OWNER), Opener(keys(), OWNER)
    for body in ("", "héllo wörld 👋", "a\nb"):
        assert opener.open(sealer.seal("Älice", NOW, body), NOW).body == body


def test_counters_start_at_one_and_increase() -> None:
    sealer = Sealer(keys(), alice(), OWNER)
    assert [sealer.seal("alice", NOW, "x").counter for _ in range(3)] == [1, 2, 3]
    assert len({sealer.seal("alice", NOW, "same").ciphertext for _ in range(2)}) == 2


@pytest.mark.parametrize(
    "nick, ts, kind",
    [("", NOW, "msg"), ("n" * 256, NOW, "msg"), ("a", -1, "msg"), ("a", 2**64, "msg")]
    + [("a", NOW, kind) for kind in ("", "MSG", "m sg", "x" * 17, "é")],
)
def test_seal_refuses_bad_arguments(nick: str, ts: int, kind: str) -> None:
    with pytest.raises(CryptoError) as excinfo:
        Sealer(keys(), alice(), OWNER).seal(nick, ts, "body", kind=kind)
    assert code_of(excinfo) == CryptoCode.BAD_INPUT


def test_seal_refuses_unencodable_text() -> None:
    with pytest.raises(CryptoError):
        Sealer(keys(), alice(), OWNER).seal("alice", NOW, "bad \udcff")


def test_another_room_cannot_open() -> None:
    sealed = Sealer(keys(), alice(), OWNER).seal("alice", NOW, "hello")
    with pytest.raises(CryptoError) as excinfo:
        Opener(other_keys(), OWNER).open(sealed, NOW)
    assert code_of(excinfo) == CryptoCode.BAD_SIGNATURE


def test_tampered_ciphertext_fails() -> None:
    sealed = Sealer(keys(), alice(), OWNER).seal("alice", NOW, "hello")
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(CryptoError) as excinfo:
        Opener(keys(), OWNER).open(dataclasses.replace(sealed, ciphertext=flipped), NOW)
    assert code_of(excinfo) == CryptoCode.BAD_SIGNATURE
    # Even the sender itself cannot make altered bytes decrypt: the AEAD tag fails.
    with pytest.raises(CryptoError) as excinfo:
        Opener(keys(), OWNER).open(resign(sealed, alice(), ciphertext=flipped), NOW)
    assert code_of(excinfo) == CryptoCode.DECRYPT_FAILED


@pytest.mark.parametrize("name", ["epoch", "sender", "counter", "kind"])
def test_changed_fields_on_the_wire_fail_the_signature(name: str) -> None:
    sealed = Sealer(keys(), alice(), OWNER).seal("alice", NOW, "hello")
    values: dict[str, Any] = {"epoch": 1, "sender": mallory().public, "counter": 2, "kind": "me"}
    value = values[name]
    with pytest.raises(CryptoError) as excinfo:
        Opener(keys(), OWNER).open(dataclasses.replace(sealed, **{name: value}), NOW)
    assert code_of(excinfo) == CryptoCode.BAD_SIGNATURE


@pytest.mark.parametrize(
    "index", range(6), ids=["room_id", "owner", "epoch", "sender", "counter", "kind"]
)
def test_every_associated_data_field_is_bound_by_the_aead(index: int) -> None:
    """Encrypt under an AD with one field changed, sign the true AD: decryption fails."""
    true_fields: list[Any] = [keys().room_id, OWNER, 0, alice().public, 1, "msg"]
    fake_fields = list(true_fields)
    fake_fields[index] = [bytes(32), mallory().public, 1, mallory().public, 2, "me"][index]
    true_ad = crypto._associated_data(*true_fields)
    aead = ChaCha20Poly1305(keys().sending_key(OWNER, 0, alice().public))
    plaintext = (b"\x00\x0c\x01a" + NOW.to_bytes(8, "big") + b"hi").ljust(256, b"\0")
    ciphertext = aead.encrypt(
        (1).to_bytes(12, "big"), plaintext, crypto._associated_data(*fake_fields)
    )
    sealed = Sealed(alice().public, 1, "msg", 0, ciphertext, alice().sign(true_ad + ciphertext))
    with pytest.raises(CryptoError) as excinfo:
        Opener(keys(), OWNER).open(sealed, NOW)
    assert code_of(excinfo) == CryptoCode.DECRYPT_FAILED


def test_forged_sender_fails() -> None:
    """Mallory relabels alice's message as hers, or signs in alice's name."""
    sealed = Sealer(keys(), alice(), OWNER).seal("alice", NOW, "hello")
    with pytest.raises(CryptoError) as excinfo:
        Opener(keys(), OWNER).open(resign(sealed, alice(), sender=mallory().public), NOW)
    assert code_of(excinfo) == CryptoCode.BAD_SIGNATURE
    with pytest.raises(CryptoError) as excinfo:
        Opener(keys(), OWNER).open(resign(sealed, mallory()), NOW)
    assert code_of(excinfo) == CryptoCode.BAD_SIGNATURE
    # Relabelled and signed by mallory: the signature holds, the sending key differs.
    with pytest.raises(CryptoError) as excinfo:
        Opener(keys(), OWNER).open(resign(sealed, mallory(), sender=mallory().public), NOW)
    assert code_of(excinfo) == CryptoCode.DECRYPT_FAILED


def test_replay_is_refused_and_changes_nothing() -> None:
    sealer, opener = Sealer(keys(), alice(), OWNER), Opener(keys(), OWNER)
    first = sealer.seal("alice", NOW, "one")
    opener.open(first, NOW)
    with pytest.raises(CryptoError) as excinfo:
        opener.open(first, NOW)
    assert code_of(excinfo) == CryptoCode.REPLAY
    assert opener.open(sealer.seal("alice", NOW, "two"), NOW).missing == 0


def test_reordered_stream_is_refused() -> None:
    """A lower counter after a higher one is a replay; an honest daemon never reorders."""
    sealer, opener = Sealer(keys(), alice(), OWNER), Opener(keys(), OWNER)
    one, two = sealer.seal("alice", NOW, "one"), sealer.seal("alice", NOW, "two")
    opener.open(two, NOW)
    with pytest.raises(CryptoError) as excinfo:
        opener.open(one, NOW)
    assert code_of(excinfo) == CryptoCode.REPLAY


def test_withheld_messages_are_counted() -> None:
    sealer, opener = Sealer(keys(), alice(), OWNER), Opener(keys(), OWNER)
    sent = [sealer.seal("alice", NOW, str(i)) for i in range(6)]
    assert opener.open(sent[1], NOW).missing == 0  # first seen: may predate our join
    assert opener.open(sent[2], NOW).missing == 0
    assert opener.open(sent[5], NOW).missing == 2


def test_senders_are_tracked_separately() -> None:
    opener = Opener(keys(), OWNER)
    for identity in (alice(), mallory()):
        assert opener.open(Sealer(keys(), identity, OWNER).seal("x", NOW, "hi"), NOW).counter == 1


def test_a_new_epoch_restarts_the_counter_and_old_epochs_are_replays() -> None:
    old, new, opener = (
        Sealer(keys(), alice(), OWNER),
        Sealer(keys(), alice(), OWNER, epoch=1),
        Opener(keys(), OWNER),
    )
    stale_frame = old.seal("alice", NOW, "old")
    opener.open(old.seal("alice", NOW, "old"), NOW)
    opened = opener.open(new.seal("alice", NOW, "new"), NOW)
    assert (opened.epoch, opened.counter, opened.missing) == (1, 1, 0)
    with pytest.raises(CryptoError) as excinfo:
        opener.open(stale_frame, NOW)
    assert code_of(excinfo) == CryptoCode.REPLAY


@pytest.mark.parametrize(
    "skew, stale", [(0, False), (STALE_MS, False), (STALE_MS + 1, True), (-STALE_MS - 1, True)]
)
def test_stale_timestamps_are_flagged(skew: int, stale: bool) -> None:
    sealed = Sealer(keys(), alice(), OWNER).seal("alice", NOW + skew, "hello")
    assert Opener(keys(), OWNER).open(sealed, NOW).stale is stale


@pytest.mark.parametrize(
    "plaintext",
    [
        bytes(256),  # record of length 0
        b"\x00\x0a" + b"\x00" + b"x" * 9 + bytes(244),  # empty nick
        b"\x00\x09\x05alice" + NOW.to_bytes(8, "big")[:3] + bytes(244),  # record ends in ts
        b"\x01\x00" + bytes(254),  # length beyond the bucket
        (b"\x00\x0c\x01a" + NOW.to_bytes(8, "big") + b"hi").ljust(255, b"\0") + b"\x01",  # padding
        (b"\x00\x0c\x01a" + NOW.to_bytes(8, "big") + b"\xff\xfe").ljust(256, b"\0"),  # UTF-8
        (b"\x00\x0c\x01\xc3" + NOW.to_bytes(8, "big") + b"\xa9h").ljust(256, b"\0"),  # split char
        (b"\x00\x0c\x01a" + NOW.to_bytes(8, "big") + b"hi").ljust(300, b"\0"),  # not a bucket
    ],
)
def test_malformed_plaintext_is_refused(plaintext: bytes) -> None:
    with pytest.raises(CryptoError) as excinfo:
        Opener(keys(), OWNER).open(seal_raw(plaintext), NOW)
    assert code_of(excinfo) in (CryptoCode.BAD_PLAINTEXT, CryptoCode.MALFORMED)


def test_well_formed_raw_plaintext_opens() -> None:
    """The control for the test above: the same helper with a valid plaintext."""
    plaintext = (b"\x00\x0c\x01a" + NOW.to_bytes(8, "big") + b"hi").ljust(256, b"\0")
    assert Opener(keys(), OWNER).open(seal_raw(plaintext), NOW).body == "hi"


SEALED_FIELDS = [f.name for f in dataclasses.fields(Sealed)]
anything = st.one_of(
    st.binary(max_size=4200),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=20),
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, 2**32, 2**64, 272, 528]),
    st.sampled_from([bytes(32), bytes(64), bytes(272), bytes(4112)]),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.fixed_dictionaries({name: anything for name in SEALED_FIELDS}))
def test_arbitrary_sealed_values_raise_only_our_error(values: dict[str, Any]) -> None:
    with pytest.raises(CryptoError):
        Opener(keys(), OWNER).open(Sealed(**values), NOW)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(SEALED_FIELDS), value=anything)
def test_one_changed_field_raises_only_our_error(name: str, value: Any) -> None:
    sealed = Sealer(keys(), alice(), OWNER).seal("alice", NOW, "hello")
    assume(getattr(sealed, name) != value)
    with pytest.raises(CryptoError):
        Opener(keys(), OWNER).open(dataclasses.replace(sealed, **{name: value}), NOW)


def test_crypto_error_is_in_our_tree() -> None:
    assert issubclass(CryptoError, AnonchatError)


# --- passphrases ------------------------------------------------------------


def test_wordlist_is_the_eff_large_list() -> None:
    words = wordlist()
    assert len(words) == len(set(words)) == 7776
    assert words[0] == "abacus" and words[-1] == "zoom"
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)?", w) for w in words)


def test_generated_passphrases() -> None:
    phrase = generate_passphrase()
    assert len(phrase.split("-")) >= 6  # a few words contain a hyphen themselves
    assert estimate_bits(phrase) == pytest.approx(6 * math.log2(7776))
    assert passphrase_warning(phrase) is None
    assert generate_passphrase() != phrase
    assert estimate_bits(generate_passphrase(3)) == pytest.approx(3 * math.log2(7776))
    with pytest.raises(CryptoError):
        generate_passphrase(0)


def test_hyphenated_list_words_count_once() -> None:
    assert estimate_bits("t-shirt yo-yo") == pytest.approx(2 * math.log2(7776))


@pytest.mark.parametrize(
    "passphrase, reason",
    [
        ("", "empty"),
        ("hunter2", "shorter"),
        ("password1234", "common"),
        ("passwordpasswordpassword", "common"),
        ("abcabcabcabcabcabc", "pattern"),
        ("qwertyuiopasdfghjkl", "pattern"),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "pattern"),
        ("Summer2024!!", "guessable"),
        ("thinning-engaged-protrude", "guessable"),
        ("thequickbrownfoxjumpsoverthelazydog", "one kind"),
    ],
)
def test_weak_passphrases_are_warned_about(passphrase: str, reason: str) -> None:
    warning = passphrase_warning(passphrase)
    assert warning is not None and reason in warning
    assert "77.5 bits" in warning


@pytest.mark.parametrize(
    "passphrase",
    ["I met Kim at the Dunes Cafe, 9 June!", "wildland-darling-brittle-proven-abacus"],
)
def test_reasonable_passphrases_pass(passphrase: str) -> None:
    assert passphrase_warning(passphrase) is None


def test_estimate_is_pessimistic_for_human_strings() -> None:
    assert estimate_bits("") == 0
    assert estimate_bits("a") == 4
    assert estimate_bits("Tr0ub4dor&3") < 30


# --- owners ------------------------------------------------------------------


@cache
def owner() -> Identity:
    return Identity.from_seed(bytes([5]) * 32)


def test_owner_tag_follows_the_design_document() -> None:
    """owner_tag = HMAC-SHA-256(HKDF(master, "anonchat/v1/owner"), label 0 room_id owner)."""
    salt = room_salt(ROOM, PIN)
    master = Argon2id(salt=salt, length=32, iterations=3, lanes=4, memory_cost=65536).derive(
        PASSPHRASE.encode()
    )
    mac_key = reference_hkdf(master, b"anonchat/v1/owner")
    message = b"anonchat/v1/owner\x00" + keys().room_id + owner().public
    expected = hmac.new(mac_key, message, hashlib.sha256).digest()
    assert keys().owner_tag(owner().public) == expected
    assert keys().check_owner_tag(owner().public, expected)


@pytest.mark.parametrize(
    "case", ["another key", "another room", "a flipped bit", "short", "not bytes", "bad key"]
)
def test_owner_tag_refused_when_anything_differs(case: str) -> None:
    tag = keys().owner_tag(owner().public)
    key, room_keys, given_tag = owner().public, keys(), tag
    if case == "another key":
        key = mallory().public
    elif case == "another room":
        room_keys = other_keys()
    elif case == "a flipped bit":
        given_tag = bytes([tag[0] ^ 1]) + tag[1:]
    elif case == "short":
        given_tag = tag[:31]
    elif case == "not bytes":
        given_tag = tag.hex()  # type: ignore[assignment]
    else:
        key = b"\x00" * 31
    assert room_keys.check_owner_tag(key, given_tag) is False


def test_owner_action_layout() -> None:
    rid, own, target = keys().room_id, owner().public, alice().public
    kick = crypto.owner_action_message(rid, own, "kick", 7, target)
    assert kick == b"anonchat/v1/owner_act\x00" + struct.pack(
        ">32s32sQB32sBIB", rid, own, 7, 1, target, 0, 0, 0
    )
    mode = crypto.owner_action_message(rid, own, "mode", 8, locked=True, slow=30, history=False)
    assert mode == b"anonchat/v1/owner_act\x00" + struct.pack(
        ">32s32sQB32sBIB", rid, own, 8, 4, bytes(32), 1, 30, 0
    )


def _signed(as_kind: str = "kick", **changes: Any) -> crypto.OwnerAction:
    target = None if as_kind == "mode" else alice().public
    action = crypto.sign_owner_action(
        owner(), keys().room_id, owner().public, as_kind, 3, target, locked=True, slow=5
    )
    return dataclasses.replace(action, **changes)


@pytest.mark.parametrize(
    ("kind", "changes"),
    [
        ("kick", {"kind": "ban"}),
        ("kick", {"kind": "op"}),
        ("kick", {"counter": 4}),
        ("kick", {"target": bytes(32)}),
        ("kick", {"actor": bytes(range(32))}),
        ("mode", {"locked": False}),
        ("mode", {"slow": 6}),
        ("mode", {"history": False}),
        ("mode", {"kind": "kick", "target": bytes(32)}),
    ],
)
def test_owner_action_signature_binds_every_field(kind: str, changes: dict[str, Any]) -> None:
    assert crypto.verify_owner_action(keys().room_id, owner().public, _signed(kind))
    changed = _signed(kind, **changes)
    assert not crypto.verify_owner_action(keys().room_id, owner().public, changed)


def test_owner_action_is_bound_to_its_room_and_owner_key() -> None:
    action = _signed()
    assert not crypto.verify_owner_action(other_keys().room_id, owner().public, action)
    assert not crypto.verify_owner_action(keys().room_id, mallory().public, action)


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "topic"},
        {"kind": 3},
        {"counter": 0},
        {"counter": 2**64},
        {"counter": True},
        {"target": None},
        {"target": b"short"},
        {"kind": "mode", "target": bytes(32)},
        {"kind": "mode", "target": None, "slow": 2**32},
        {"kind": "mode", "target": None, "slow": -1},
        {"kind": "mode", "target": None, "locked": 1},
        {"actor": b"short"},
        {"signature": b"short"},
        {"signature": "not bytes"},
    ],
)
def test_bad_owner_actions_never_verify_and_never_raise(fields: dict[str, Any]) -> None:
    action = _signed(**fields)
    assert crypto.verify_owner_action(keys().room_id, owner().public, action) is False
    chain = crypto.OwnerChain(keys().room_id, owner().public)
    with pytest.raises(CryptoError):
        chain.check(action)


def test_signing_a_bad_action_is_our_error() -> None:
    with pytest.raises(CryptoError) as info:
        crypto.sign_owner_action(owner(), keys().room_id, owner().public, "kick", 1)
    assert code_of(info) == CryptoCode.MALFORMED


def test_owner_chain_grants_replays_and_bans() -> None:
    rid, own = keys().room_id, owner().public
    bob, carol = Identity.from_seed(bytes([11]) * 32), Identity.from_seed(bytes([12]) * 32)
    chain = crypto.OwnerChain(rid, own)

    def act(signer: Identity, kind: str, counter: int, target: Identity) -> crypto.OwnerAction:
        return crypto.sign_owner_action(signer, rid, own, kind, counter, target.public)

    with pytest.raises(CryptoError) as info:
        chain.check(act(bob, "kick", 1, carol))
    assert code_of(info) == CryptoCode.NOT_OWNER
    grant_bob = act(owner(), "op", 1, bob)
    chain.accept(grant_bob)
    with pytest.raises(CryptoError) as info:
        chain.check(grant_bob)  # the same action again
    assert code_of(info) == CryptoCode.REPLAY
    chain.accept(act(bob, "op", 2, carol))  # a granted key grants in turn
    assert chain.may_act(carol.public) and chain.counter == 2
    forged = dataclasses.replace(act(mallory(), "kick", 3, bob), actor=carol.public)
    with pytest.raises(CryptoError) as info:
        chain.check(forged)
    assert code_of(info) == CryptoCode.BAD_SIGNATURE
    chain.accept(act(carol, "ban", 3, bob))
    assert not chain.may_act(bob.public)  # a banned key may no longer act
    with pytest.raises(CryptoError) as info:
        chain.check(act(bob, "kick", 4, carol))
    assert code_of(info) == CryptoCode.NOT_OWNER
    # A newcomer rebuilds the owners from the grants alone, in any order, and
    # refuses a grant that does not chain up to the owner key.
    rogue = act(mallory(), "op", 4, mallory())
    newcomer = crypto.OwnerChain(rid, own)
    grants = [chain.granted[carol.public], rogue, chain.granted[bob.public]]
    assert newcomer.load_grants(grants) == [rogue]
    assert newcomer.may_act(bob.public) and newcomer.may_act(carol.public)
    assert not newcomer.may_act(mallory().public)


def test_the_daemon_can_check_a_sealed_signature_without_the_room_key() -> None:
    sealed = Sealer(keys(), alice(), OWNER).seal("alice", NOW, "hi")
    assert crypto.verify_sealed_signature(keys().room_id, OWNER, sealed)
    assert not crypto.verify_sealed_signature(other_keys().room_id, OWNER, sealed)
    assert not crypto.verify_sealed_signature(
        keys().room_id, OWNER, dataclasses.replace(sealed, sender=mallory().public)
    )
    assert not crypto.verify_sealed_signature(
        keys().room_id, OWNER, dataclasses.replace(sealed, counter=0)
    )
    # Another incarnation of the room (another owner key): the signature does not cover it.
    assert not crypto.verify_sealed_signature(keys().room_id, mallory().public, sealed)
    assert not crypto.verify_sealed_signature(b"short", OWNER, sealed)


# --- public keys: small order and non-canonical encodings (audit hole 1) ------

# The eight points of small order, canonically encoded (order 1, 2, 4, 4, 8, 8, 8, 8).
SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",  # the identity
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # (0, -1)
    "0000000000000000000000000000000000000000000000000000000000000000",  # (sqrt(-1), 0)
    "0000000000000000000000000000000000000000000000000000000000000080",  # (-sqrt(-1), 0)
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
]
# Encodings RFC 8032 refuses to decode, or that name a point another way.
NON_CANONICAL = [
    "0100000000000000000000000000000000000000000000000000000000000080",  # x = 0, sign 1
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # x = 0, sign 1
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p + 1 (= 1)
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = 2**255 - 1
    "0200000000000000000000000000000000000000000000000000000000000000",  # y = 2: off the curve
]
P25519 = 2**255 - 19
L25519 = 2**252 + 27742317777372353535851937790883648493


def _encode(point: tuple[int, int, int, int]) -> bytes:
    x, y, z, _ = point
    inverse = pow(z, P25519 - 2, P25519)
    x, y = x * inverse % P25519, y * inverse % P25519
    return (y | (x & 1) << 255).to_bytes(32, "little")


def test_the_eight_small_order_points_are_the_whole_torsion() -> None:
    """The list above is right: each point has order dividing 8, and together
    they are the 8 multiples of a point of order 8."""
    points = [crypto._decode_point(bytes.fromhex(h)) for h in SMALL_ORDER]
    assert None not in points
    for point in points:
        assert point is not None and crypto._is_identity(crypto._multiply(8, point))
    generator = crypto._decode_point(bytes.fromhex(SMALL_ORDER[4]))
    assert generator is not None
    multiples = {_encode(crypto._multiply(k, generator)).hex() for k in range(8)}
    assert multiples == set(SMALL_ORDER)


def test_the_library_alone_accepts_a_signature_under_the_identity() -> None:
    """Why the check exists: with the identity as public key, R = identity and
    S = 0 verify for every message in the library we use."""
    identity = bytes.fromhex(SMALL_ORDER[0])
    universal = identity + bytes(32)
    assert verify_signature(identity, universal, b"any message at all")
    assert not crypto._verify(identity, universal, b"any message at all")


@pytest.mark.parametrize("encoded", SMALL_ORDER + NON_CANONICAL)
def test_small_order_and_non_canonical_keys_are_refused_everywhere(encoded: str) -> None:
    bad = bytes.fromhex(encoded)
    assert not crypto.valid_public_key(bad)
    with pytest.raises(CryptoError) as info:
        crypto.check_public_key(bad)
    assert code_of(info) == CryptoCode.BAD_KEY
    universal = bytes.fromhex(SMALL_ORDER[0]) + bytes(32)  # R = identity, S = 0
    rid = keys().room_id
    # sender (key proof), auth (join proof)
    assert not verify_key_proof(bad, rid, CHALLENGE, PIN, universal)
    assert not verify_join_proof(bad, rid, CHALLENGE, PIN, universal)
    # sender of a sealed message
    sealed = Sealer(keys(), alice(), OWNER).seal("alice", NOW, "hi")
    forged = dataclasses.replace(sealed, sender=bad, signature=universal)
    with pytest.raises(CryptoError) as info:
        Opener(keys(), OWNER).open(forged, NOW)
    assert code_of(info) == CryptoCode.BAD_KEY
    assert not crypto.verify_sealed_signature(rid, OWNER, forged)
    # owner_key, actor, target of an owner action
    act = crypto.OwnerAction("mode", 1, bad, universal, locked=True)
    assert not crypto.verify_owner_action(rid, owner().public, act)
    assert not crypto.verify_owner_action(rid, bad, dataclasses.replace(act, actor=bad))
    chain = crypto.OwnerChain(rid, bad)
    assert not chain.may_act(bad)
    with pytest.raises(CryptoError) as info:
        chain.check(dataclasses.replace(act, actor=bad))
    assert code_of(info) == CryptoCode.BAD_KEY
    with pytest.raises(CryptoError) as info:
        crypto.sign_owner_action(owner(), rid, owner().public, "kick", 1, bad)
    assert code_of(info) == CryptoCode.BAD_KEY


def test_a_key_with_a_small_order_component_is_refused() -> None:
    """An honest key plus a point of order 8: on the curve, canonical, not of prime order."""
    honest = crypto._decode_point(alice().public)
    torsion = crypto._decode_point(bytes.fromhex(SMALL_ORDER[4]))
    assert honest is not None and torsion is not None
    mixed = _encode(crypto._add(honest, torsion))
    assert crypto._decode_point(mixed) is not None
    assert not crypto.valid_public_key(mixed)


def test_honest_keys_are_valid() -> None:
    for seed in range(64):
        public = Identity.from_seed(bytes([seed]) * 32).public
        assert crypto.valid_public_key(public)
        point = crypto._decode_point(public)
        assert point is not None and _encode(point) == public
    assert crypto.valid_public_key(keys().auth_public)
    assert not crypto.valid_public_key(alice().public[:31])
    assert not crypto.valid_public_key("not bytes")


# --- fingerprints and safety numbers: vectors for other implementations ---------

# For the keys of seeds 07..07 (alice, KAT_FINGERPRINT above) and 09..09
# (mallory), as docs/protocol.md ("Fingerprints") gives them.
KAT_MALLORY_FINGERPRINT = ("4cy8", "4cy8-s2pz-fext-dvtp")
KAT_SAFETY = "03959 47042 19299 33068 32649 59094"


def test_fingerprint_follows_its_definition() -> None:
    """SHA-256("anonchat/v1/fp" | key) read as a 256-bit big-endian number; the
    characters are its 5-bit groups from the top, in Crockford's alphabet."""
    for seed in (7, 9, 11):
        public = Identity.from_seed(bytes([seed]) * 32).public
        n = int.from_bytes(hashlib.sha256(b"anonchat/v1/fp" + public).digest(), "big")
        bits = format(n, "0256b")
        alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
        chars = "".join(alphabet[int(bits[5 * i : 5 * i + 5], 2)] for i in range(16))
        assert fingerprint(public) == chars[:4]
        assert long_fingerprint(public) == "-".join(chars[i : i + 4] for i in range(0, 16, 4))
    assert (fingerprint(mallory().public), long_fingerprint(mallory().public)) == (
        KAT_MALLORY_FINGERPRINT
    )


def test_safety_number_follows_its_definition() -> None:
    one, two = alice().public, mallory().public
    number = crypto.safety_number(one, two)
    assert number == crypto.safety_number(two, one)  # the same on both sides
    digest = hashlib.sha256(b"anonchat/v2/safety\x00" + min(one, two) + max(one, two)).digest()
    groups = [int.from_bytes(digest[5 * i : 5 * i + 5], "big") % 100_000 for i in range(6)]
    assert number == " ".join(f"{g:05d}" for g in groups)
    assert number == KAT_SAFETY
    assert crypto.safety_number(one, owner().public) != number
