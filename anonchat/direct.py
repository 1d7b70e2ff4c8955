"""The cryptography of direct messages (protocol v3): bytes in, bytes out.

A direct message goes from one session to another through the daemon, which
relays bytes it cannot read.  Each session makes, in memory, a *DM key pair*
for the life of its client: an Ed25519 key (its identity in direct messages:
the fingerprints people compare are of this key) and an X25519 key (for key
agreement).  The Ed25519 key vouches for the X25519 key with a *card*, and
proves to the daemon that the session holds it (all integers big-endian)::

    card_sig = Ed25519(sign, "anonchat/v3/dm_card" 0x00 dh(32))
    proof    = Ed25519(sign, "anonchat/v3/dm_proof" 0x00 dh(32) challenge(32) pin(32))

The card travels with every direct message and is what the daemon hands out
for a nick (``dm_lookup``); the proof is only for the daemon, bound to the
connection's challenge and the server's pin like a secret room's key proof.

A message from S to R (``S_sign``, ``S_dh``: S's card; ``R_...``: R's)::

    shared    = X25519(S's dh private key, R_dh)     (= X25519(R's, S_dh); all zeros: refused)
    key       = HKDF-SHA-256(shared, salt none,
                  info = "anonchat/v3/dm" 0x00 S_sign R_sign S_dh R_dh)
    ad        = "anonchat/v3/dm_msg" 0x00 S_sign(32) R_sign(32) u64(counter)
    nonce     = counter as 12 bytes                  counter = 1, 2, 3, ... per (S, R)
    plaintext = as a secret room's message: u16 len | u8 len(nick) nick u64 ts_ms body |
                zero bytes up to 256/512/1024/2048/4096
    ct        = ChaCha20-Poly1305(key, nonce, plaintext, ad)

Only S and R can compute ``key``: a message that decrypts was sealed by the
holder of the card's X25519 key, which the card's Ed25519 key vouched for --
so R knows which session sent it.  The direction is in the key and the
associated data (sender first), so a message cannot be reflected back to its
sender; both cards are in the key, so a substituted card (the daemon's own
key in place of R's) yields a key R cannot derive, and every message under
it is refused.  There is no signature per message: R could have made any
message S sent it, so R cannot prove to a third party what S wrote.

Replays and order: per peer, the receiver remembers the highest counter it
accepted and refuses anything not above it (a replay, or a reordering --
an honest daemon relays one sender's messages in order); a jump ahead is
reported as :attr:`DmOpened.missing`.  Counters are kept for the client's
life, across reconnects, so a nonce is never used twice under one key.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .crypto import (
    BUCKETS,
    CHALLENGE_MAX,
    CHALLENGE_MIN,
    COUNTER_MAX,
    KEY_SIZE,
    PIN_SIZE,
    PUBLIC_SIZE,
    SIGNATURE_SIZE,
    STALE_MS,
    TAG_SIZE,
    CryptoCode,
    Identity,
    _decode_plaintext,
    _encode_plaintext,
    _hkdf,
    _nonce,
    _verify,
    fingerprint,
    long_fingerprint,
    safety_number,
    valid_public_key,
)
from .errors import CryptoError

__all__ = [
    "DM_CIPHERTEXT_SIZES",
    "DmCard",
    "DmIdentity",
    "DmOpened",
    "DmPeers",
    "card_message",
    "fingerprint",
    "long_fingerprint",
    "pairwise_key",
    "proof_message",
    "rotation_message",
    "safety_number",
    "sealed_size",
    "verify_card",
    "verify_dm_proof",
    "verify_rotation",
]

_CARD_LABEL = b"anonchat/v3/dm_card"
_PROOF_LABEL = b"anonchat/v3/dm_proof"
_KEY_LABEL = b"anonchat/v3/dm"
_AD_LABEL = b"anonchat/v3/dm_msg"
_AD = struct.Struct(">32s32sQ")

#: Pairwise keys kept ready (derived again when needed: one X25519, well under 1 ms).
KEYS_CACHED = 1024

#: The sizes a direct message's ciphertext may have: a padding bucket plus the tag.
DM_CIPHERTEXT_SIZES = frozenset(b + TAG_SIZE for b in BUCKETS)


def _fail(code: CryptoCode, message: str) -> CryptoError:
    return CryptoError(code, message)


def card_message(dh: bytes) -> bytes:
    """What a card's signature covers."""
    return _CARD_LABEL + b"\0" + dh


def proof_message(dh: bytes, challenge: bytes, pin: bytes) -> bytes:
    """What the proof of holding a DM key, for one connection, signs."""
    if not isinstance(challenge, bytes) or not CHALLENGE_MIN <= len(challenge) <= CHALLENGE_MAX:
        raise _fail(CryptoCode.BAD_INPUT, "a challenge must be 16 to 64 bytes")
    if not isinstance(pin, bytes) or len(pin) != PIN_SIZE:
        raise _fail(CryptoCode.BAD_INPUT, "the server pin must be 32 bytes")
    return _PROOF_LABEL + b"\0" + dh + challenge + pin


@dataclass(frozen=True)
class DmCard:
    """A session's public DM keys: ``sign`` (Ed25519) vouches for ``dh`` (X25519)."""

    sign: bytes
    dh: bytes
    sig: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.sign)


def _valid_dh(dh: object) -> bool:
    """32 bytes that are not one of the X25519 points of small order the
    library refuses anyway (checked again by the exchange: all-zero output)."""
    return isinstance(dh, bytes) and len(dh) == PUBLIC_SIZE


def verify_card(card: DmCard) -> bool:
    """True only if ``card.sign`` is a valid Ed25519 key that signed ``card.dh``."""
    return (
        valid_public_key(card.sign)
        and _valid_dh(card.dh)
        and isinstance(card.sig, bytes)
        and len(card.sig) == SIGNATURE_SIZE
        and _verify(card.sign, card.sig, card_message(card.dh))
    )


def verify_dm_proof(card: DmCard, challenge: bytes, pin: bytes, proof: bytes) -> bool:
    """What the daemon checks: a valid card, and its holder signed this connection's
    challenge for this server."""
    if not verify_card(card):
        return False
    try:
        message = proof_message(card.dh, challenge, pin)
    except CryptoError:
        return False
    return _verify(card.sign, proof, message)


@dataclass(frozen=True)
class DmIdentity:
    """This session's DM keys (memory only; made once per client)."""

    identity: Identity
    _dh: X25519PrivateKey = field(repr=False, compare=False)
    card: DmCard

    @classmethod
    def generate(cls) -> DmIdentity:
        return cls._make(Identity.generate(), X25519PrivateKey.generate())

    @classmethod
    def from_seeds(cls, sign_seed: bytes, dh_seed: bytes) -> DmIdentity:
        """Fixed keys from two 32-byte seeds, for tests and known-answer vectors."""
        if not isinstance(dh_seed, bytes) or len(dh_seed) != KEY_SIZE:
            raise _fail(CryptoCode.BAD_INPUT, "a seed must be 32 bytes")
        return cls._make(
            Identity.from_seed(sign_seed), X25519PrivateKey.from_private_bytes(dh_seed)
        )

    @classmethod
    def _make(cls, identity: Identity, dh: X25519PrivateKey) -> DmIdentity:
        dh_public = dh.public_key().public_bytes_raw()
        card = DmCard(identity.public, dh_public, identity.sign(card_message(dh_public)))
        return cls(identity, dh, card)

    @property
    def sign(self) -> bytes:
        return self.identity.public

    def proof(self, challenge: bytes, pin: bytes) -> bytes:
        """Prove to the daemon, on this connection, that we hold this card's keys."""
        return self.identity.sign(proof_message(self.card.dh, challenge, pin))

    def shared(self, peer_dh: bytes) -> bytes:
        try:
            secret = self._dh.exchange(X25519PublicKey.from_public_bytes(peer_dh))
        except ValueError as exc:  # a point of small order: the output would be all zeros
            raise _fail(CryptoCode.BAD_KEY, "the peer's DM key is of small order") from exc
        return secret


def pairwise_key(shared: bytes, sender: DmCard, recipient: DmCard) -> bytes:
    """The key of messages from ``sender`` to ``recipient``."""
    info = _KEY_LABEL + b"\0" + sender.sign + recipient.sign + sender.dh + recipient.dh
    return _hkdf(shared, info)


_ROTATE_LABEL = b"anonchat/v3/rotate"


def rotation_message(old: bytes, new: bytes, recipient: bytes, sender_dm: bytes) -> bytes:
    """What an owner signs, with its session key in the old room, to invite one
    member (``recipient``: its session key there) to the room that replaces it
    (``/secret rotate``), sent over direct messages from the DM key ``sender_dm``::

        "anonchat/v3/rotate" 0x00 old_room_id(32) new_room_id(32) recipient(32) sender_dm(32)
    """
    for value in (old, new, recipient, sender_dm):
        if not isinstance(value, bytes) or len(value) != KEY_SIZE:
            raise _fail(CryptoCode.BAD_INPUT, "a rotation names four 32-byte values")
    return _ROTATE_LABEL + b"\0" + old + new + recipient + sender_dm


def verify_rotation(
    signer: bytes, sig: bytes, old: bytes, new: bytes, recipient: bytes, sender_dm: bytes
) -> bool:
    """True only if ``signer`` signed this invitation for this recipient, sent by this DM key."""
    try:
        message = rotation_message(old, new, recipient, sender_dm)
    except CryptoError:
        return False
    return _verify(signer, sig, message)


def sealed_size(nick: str, body: str) -> int:
    """The size of the ciphertext a message would seal to (0: too large for any bucket)."""
    size = 2 + 1 + len(nick.encode("utf-8", "replace")) + 8 + len(body.encode("utf-8", "replace"))
    bucket = next((b for b in BUCKETS if size <= b), None)
    return 0 if bucket is None else bucket + TAG_SIZE


def _associated_data(sender: bytes, recipient: bytes, counter: int) -> bytes:
    return _AD_LABEL + b"\0" + _AD.pack(sender, recipient, counter)


@dataclass(frozen=True)
class DmOpened:
    """A direct message that decrypted, with what the UI should say about it."""

    nick: str  # as the sender sealed it: untrusted text
    ts: int
    body: str
    counter: int
    missing: int  # messages of this sender never received (a gap in the counters)
    stale: bool  # its time disagrees with ours by more than 5 minutes


class DmPeers:
    """Seals to and opens from every peer of one :class:`DmIdentity`, keeping
    the counters (sent and highest received) for the client's life."""

    def __init__(self, own: DmIdentity) -> None:
        self.own = own
        self._sent: dict[bytes, int] = {}  # peer sign key -> last counter used
        self._highest: dict[bytes, int] = {}  # peer sign key -> highest counter accepted
        self._keys: dict[tuple[bytes, bytes, bool], ChaCha20Poly1305] = {}

    def _aead(self, peer: DmCard, outgoing: bool) -> ChaCha20Poly1305:
        cache = (peer.sign, peer.dh, outgoing)
        aead = self._keys.get(cache)
        if aead is None:
            if not verify_card(peer):
                raise _fail(CryptoCode.BAD_SIGNATURE, "the peer's DM card does not verify")
            shared = self.own.shared(peer.dh)
            sender, recipient = (self.own.card, peer) if outgoing else (peer, self.own.card)
            if len(self._keys) >= KEYS_CACHED:  # (cards are cheap to make: stay bounded)
                self._keys.clear()
            aead = self._keys[cache] = ChaCha20Poly1305(pairwise_key(shared, sender, recipient))
        return aead

    def seal(self, peer: DmCard, nick: str, ts_ms: int, body: str) -> tuple[int, bytes]:
        """Encrypt and pad one message to ``peer``; return (counter, ciphertext).
        The counter is spent only on success."""
        aead = self._aead(peer, outgoing=True)
        counter = self._sent.get(peer.sign, 0) + 1
        if counter > COUNTER_MAX:
            raise _fail(CryptoCode.TOO_LARGE, "2**64-1 messages were sent to this peer")
        plaintext = _encode_plaintext(nick, ts_ms, body)
        ad = _associated_data(self.own.sign, peer.sign, counter)
        ciphertext = aead.encrypt(_nonce(counter), plaintext, ad)
        self._sent[peer.sign] = counter
        return counter, ciphertext

    def open(self, peer: DmCard, counter: int, ciphertext: bytes, now_ms: int) -> DmOpened:
        """Check and decrypt a message from ``peer``, or raise CryptoError
        (``malformed``, ``bad_signature`` for a card that does not verify,
        ``decrypt_failed``, ``replay``, ``bad_plaintext``); state changes only
        on success."""
        if type(counter) is not int or not 1 <= counter <= COUNTER_MAX:
            raise _fail(CryptoCode.MALFORMED, "a DM counter is 1 to 2**64-1")
        if not isinstance(ciphertext, bytes) or len(ciphertext) not in DM_CIPHERTEXT_SIZES:
            raise _fail(CryptoCode.MALFORMED, "a DM ciphertext has a wrong size")
        aead = self._aead(peer, outgoing=False)
        highest = self._highest.get(peer.sign, 0)
        if counter <= highest:
            raise _fail(
                CryptoCode.REPLAY, "this direct message was received already, or out of order"
            )
        ad = _associated_data(peer.sign, self.own.sign, counter)
        try:
            plaintext = aead.decrypt(_nonce(counter), ciphertext, ad)
        except InvalidTag as exc:
            raise _fail(CryptoCode.DECRYPT_FAILED, "the direct message does not decrypt") from exc
        nick, ts, body = _decode_plaintext(plaintext)
        self._highest[peer.sign] = counter
        return DmOpened(
            nick=nick,
            ts=ts,
            body=body,
            counter=counter,
            missing=counter - 1 - highest,
            stale=abs(ts - now_ms) > STALE_MS,
        )
