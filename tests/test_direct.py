"""Direct-message cryptography (anonchat/direct.py): known answers recomputed
from the primitives, tampering, replays, reordering, reflection, substituted keys."""

from __future__ import annotations

import hashlib
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from anonchat.crypto import CryptoCode, Identity
from anonchat.direct import (
    DmCard,
    DmIdentity,
    DmPeers,
    pairwise_key,
    verify_card,
    verify_dm_proof,
)
from anonchat.errors import CryptoError

T0 = 1_767_268_800_000
ALICE = DmIdentity.from_seeds(bytes([1]) * 32, bytes([2]) * 32)
BOB = DmIdentity.from_seeds(bytes([3]) * 32, bytes([4]) * 32)

KAT_ALICE_SIGN = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
KAT_ALICE_DH = "ce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745ba05870e587d59"
KAT_SHARED = "09bb974ce3799959096660bdece3bb89ca106e6df31c2f701b7b8b9977047c34"
KAT_KEY = "ea74b580a357764179c1ab539a7b27442aefe47af46ab83b77c077188714bae7"
KAT_CT_SHA256 = "92be0963a8a6d734598754233ccb4f3ec4ee7a4add2397a8644707ba86153b1e"


def test_known_answers() -> None:
    assert ALICE.card.sign.hex() == KAT_ALICE_SIGN
    assert ALICE.card.dh.hex() == KAT_ALICE_DH
    shared = ALICE.shared(BOB.card.dh)
    assert shared.hex() == KAT_SHARED
    assert shared == BOB.shared(ALICE.card.dh)
    assert pairwise_key(shared, ALICE.card, BOB.card).hex() == KAT_KEY
    counter, ct = DmPeers(ALICE).seal(BOB.card, "alice", T0, "hi bob")
    assert (counter, len(ct)) == (1, 256 + 16)
    assert hashlib.sha256(ct).hexdigest() == KAT_CT_SHA256


def test_the_documented_schedule_from_the_primitives() -> None:
    """The module docstring's formulas, computed here with the libraries alone."""
    dh_a = X25519PrivateKey.from_private_bytes(bytes([2]) * 32)
    assert dh_a.public_key().public_bytes_raw() == ALICE.card.dh
    shared = dh_a.exchange(X25519PublicKey.from_public_bytes(BOB.card.dh))
    info = b"anonchat/v3/dm\0" + ALICE.card.sign + BOB.card.sign + ALICE.card.dh + BOB.card.dh
    key = HKDF(hashes.SHA256(), 32, None, info).derive(shared)
    assert key.hex() == KAT_KEY
    record = bytes([5]) + b"alice" + struct.pack(">Q", T0) + b"hi bob"
    plaintext = (struct.pack(">H", len(record)) + record).ljust(256, b"\0")
    ad = b"anonchat/v3/dm_msg\0" + ALICE.card.sign + BOB.card.sign + struct.pack(">Q", 1)
    ct = ChaCha20Poly1305(key).encrypt((1).to_bytes(12, "big"), plaintext, ad)
    assert hashlib.sha256(ct).hexdigest() == KAT_CT_SHA256
    # The card: Ed25519 over the label and the X25519 key.
    assert Identity.from_seed(bytes([1]) * 32).public == ALICE.card.sign
    assert verify_card(ALICE.card)


def test_a_message_opens_once_in_order() -> None:
    sender, receiver = DmPeers(ALICE), DmPeers(BOB)
    sent = [sender.seal(BOB.card, "alice", T0, f"m{i}") for i in range(3)]
    opened = receiver.open(ALICE.card, *sent[0], T0)
    assert (opened.body, opened.counter, opened.missing, opened.stale) == ("m0", 1, 0, False)
    with pytest.raises(CryptoError) as replay:
        receiver.open(ALICE.card, *sent[0], T0)
    assert replay.value.code == CryptoCode.REPLAY
    assert receiver.open(ALICE.card, *sent[2], T0).missing == 1  # m1 withheld
    with pytest.raises(CryptoError) as late:  # reordered: m1 after m2
        receiver.open(ALICE.card, *sent[1], T0)
    assert late.value.code == CryptoCode.REPLAY


def test_tampering_is_refused_and_changes_nothing() -> None:
    sender, receiver = DmPeers(ALICE), DmPeers(BOB)
    counter, ct = sender.seal(BOB.card, "alice", T0, "hello")
    flipped = bytes([ct[0] ^ 1]) + ct[1:]
    for bad_counter, bad_ct in ((counter, flipped), (counter + 1, ct)):
        with pytest.raises(CryptoError) as exc:
            receiver.open(ALICE.card, bad_counter, bad_ct, T0)
        assert exc.value.code == CryptoCode.DECRYPT_FAILED
    assert receiver.open(ALICE.card, counter, ct, T0).body == "hello"  # still opens
    with pytest.raises(CryptoError) as size:
        receiver.open(ALICE.card, 2, ct[:-1], T0)
    assert size.value.code == CryptoCode.MALFORMED


def test_a_message_cannot_be_reflected_to_its_sender() -> None:
    counter, ct = DmPeers(ALICE).seal(BOB.card, "alice", T0, "to bob")
    with pytest.raises(CryptoError) as exc:
        DmPeers(ALICE).open(BOB.card, counter, ct, T0)
    assert exc.value.code == CryptoCode.DECRYPT_FAILED


def test_substituted_cards_are_refused() -> None:
    """The daemon hands out its own card for bob, or puts its own on alice's message."""
    mallory = DmIdentity.generate()
    counter, ct = DmPeers(ALICE).seal(BOB.card, "alice", T0, "secret")
    # Its own card as the sender's: a different key, the message does not decrypt.
    with pytest.raises(CryptoError) as whole:
        DmPeers(BOB).open(mallory.card, counter, ct, T0)
    assert whole.value.code == CryptoCode.DECRYPT_FAILED
    # Alice's signing key with its own X25519 key: the card does not verify.
    forged = DmCard(ALICE.card.sign, mallory.card.dh, ALICE.card.sig)
    assert not verify_card(forged)
    with pytest.raises(CryptoError) as card:
        DmPeers(BOB).open(forged, counter, ct, T0)
    assert card.value.code == CryptoCode.BAD_SIGNATURE
    # What mallory can read is only what was sealed to mallory's card.
    counter, ct = DmPeers(ALICE).seal(mallory.card, "alice", T0, "to the wrong key")
    assert DmPeers(mallory).open(ALICE.card, counter, ct, T0).body == "to the wrong key"
    with pytest.raises(CryptoError):
        DmPeers(BOB).open(ALICE.card, counter, ct, T0)


def test_small_order_dh_keys_are_refused() -> None:
    zero = DmCard(
        ALICE.card.sign, bytes(32), ALICE.identity.sign(b"anonchat/v3/dm_card\0" + bytes(32))
    )
    assert verify_card(zero)  # the signature is fine ...
    with pytest.raises(CryptoError) as exc:  # ... the agreement is not
        DmPeers(BOB).seal(zero, "bob", T0, "x")
    assert exc.value.code == CryptoCode.BAD_KEY


def test_the_proof_binds_the_connection() -> None:
    challenge, pin = bytes(range(32)), bytes(32)
    proof = ALICE.proof(challenge, pin)
    assert verify_dm_proof(ALICE.card, challenge, pin, proof)
    assert not verify_dm_proof(ALICE.card, bytes(32), pin, proof)
    assert not verify_dm_proof(ALICE.card, challenge, bytes([1]) * 32, proof)
    assert not verify_dm_proof(BOB.card, challenge, pin, proof)


def test_stale_and_too_large() -> None:
    counter, ct = DmPeers(ALICE).seal(BOB.card, "alice", T0, "old")
    assert DmPeers(BOB).open(ALICE.card, counter, ct, T0 + 10 * 60_000).stale
    with pytest.raises(CryptoError) as exc:
        DmPeers(ALICE).seal(BOB.card, "alice", T0, "x" * 5000)
    assert exc.value.code == CryptoCode.TOO_LARGE
