"""The cryptography of secret rooms (crypto v1): bytes in, bytes out.

No sockets, no files (except reading the shipped word list once), no asyncio:
the client calls these functions and puts their results in frames; the daemon
only relays :class:`Sealed` values it cannot read.  Every failure, whatever the
input, is a :class:`~anonchat.errors.CryptoError` with a :class:`CryptoCode`.

Key schedule (all parameters are constants here; a server never chooses them)::

    name   = NFKC(room).casefold().strip()          pw = NFKC(passphrase)
    salt   = SHA-256("anonchat/v1/salt" 0x00 pin 0x00 utf8(name))[:16]
    master = Argon2id(utf8(pw), salt, t=3, lanes=4, m=64 MiB, 32 bytes)
    room_id, auth_seed, enc_root, owner_mac = HKDF-SHA-256(master, salt=none, info=label)
    send_key(owner, epoch, pk) = HKDF-SHA-256(enc_root,
                   info="anonchat/v2/send" 0x00 owner(32) u32(epoch) pk(32))

``pin`` is the raw 32-byte SHA-256 of the server's SPKI (the ``sha256/<base64>``
pin, decoded); a fixed length keeps the salt and join-proof encodings
unambiguous.  A plaintext development server has no key: use ``bytes(32)``.
HKDF gets no salt because ``master`` is already uniformly random: in RFC 5869
terms the salt is "not provided", so HKDF-Extract uses 32 zero bytes (HashLen);
every output is 32 bytes (one block of HKDF-Expand).  Argon2id is version 0x13
(RFC 9106) with m = 65 536 KiB, t = 3, p = 4, no secret and no associated data.

Join proof: Ed25519 (key from ``auth_seed``) over
``"anonchat/v1/join" 0x00 room_id(32) challenge pin(32)``; the challenge is
the 32 random bytes of the server's hello (this module takes 16 to 64).

A message (all integers big-endian)::

    record    = u8 len(nick) | utf8(nick) | u64 ts_ms | utf8(body)   body = the rest
    plaintext = u16 len(record) | record | zero bytes up to 256/512/1024/2048/4096
    nonce     = counter as 12 bytes          counter = 1, 2, 3, ... per Sealer
    ad        = "anonchat/v2/msg" 0x00 room_id(32) owner(32) u32(epoch) sender(32)
                u64(counter) u8 len(kind) ascii(kind)
    ciphertext = ChaCha20-Poly1305(send_key(owner, epoch, sender), nonce, plaintext, ad)

``owner`` is the room's owner key (see "Owners" below): made afresh each time
the room is created, it names one *incarnation* of the room (same name, same
passphrase, everyone had left, someone created it again).  Binding it into the
sending key and the associated data (v2; v1 had neither) keeps a message of
one incarnation from being replayed into a later one, and keeps nonces
unique per key: a new incarnation is a new key, whose counter starts at 1.
    signature  = Ed25519(session key, ad | ciphertext)

A :class:`Sealed` carries sender, counter, kind, epoch, ciphertext and signature;
room_id comes from the room the frame travels in.  The receiver checks the
signature first (so a forged sender or a changed field fails before any
decryption), then decrypts, then decodes strictly.

Replays: per sender, the receiver remembers the highest (epoch, counter) it
accepted; anything not above it is refused.  This also refuses an honest frame
that arrives after a later one, which cannot happen through an honest daemon:
it relays one room's frames in one order over one TCP stream.  A jump ahead is
reported as :attr:`Opened.missing` (withheld or lost messages).  The first
message seen from a sender reports none, since it may have spoken before we
joined: a server can hide a sender's first messages, but not later ones.

The epoch is reserved for re-keying a long session: v1 senders use 0; a higher
epoch restarts the counter at 1, and frames of an older epoch are replays.

Only senders who know the room key can add entries to the replay table (it
changes only after a successful decryption), so outsiders cannot grow it;
sending keys are derived per message (HKDF costs microseconds, less than the
signature check) rather than cached, for the same reason.

Fingerprints: 4 Crockford base32 characters (20 bits) of
SHA-256("anonchat/v1/fp" pk) (no 0x00 after this label), shown as ``alice#k3f9``:
character i is ``ALPHABET[bits 5i .. 5i+4 of the digest]``, the digest read as
one big-endian number, most significant bit first, with the lower-case
alphabet ``0123456789abcdefghjkmnpqrstvwxyz`` (no i, l, o, u).  They tell people in a
room apart: in a room of 10 honest members two share one with probability
about 0.004 %, of 100 about 0.5 %.  They do *not* authenticate: anyone can make
a key with a chosen 4-character fingerprint in about a million tries (seconds).
:func:`long_fingerprint` gives 16 characters (80 bits) to compare out of band.

Decoded nicks and bodies are whatever an insider chose: callers validate and
render them as untrusted text.

Owners (moderation of secret rooms).  The creator makes a fresh Ed25519
*owner key* for the room and registers its public half with a binding tag::

    owner_tag = HMAC-SHA-256(owner_mac, "anonchat/v1/owner" 0x00 room_id(32) owner(32))

Only passphrase holders can make the tag, so the daemon, which hands the key
and tag to every joiner, cannot put its own key in their place.  An *owner
action* (kick, ban, op, mode) is signed by the owner key or by a session key
the owner key granted ``op`` to, directly or down a chain of grants::

    action = "anonchat/v1/owner_act" 0x00 room_id(32) owner(32) u64(counter)
             u8(kind: 1 kick, 2 ban, 3 op, 4 mode, 5 close) target(32, zeros for mode
             and close)
             u8(locked) u32(slow) u8(history)        (zeros unless mode)
    sig    = Ed25519(actor's key, action)

``counter`` numbers a room's actions from 1: the daemon accepts only the
next one and members only ones above the last they saw, so a signature
cannot be replayed in its room; ``room_id`` and ``owner`` (fresh for each
creation of a room) keep it out of every other room and every later
incarnation of this one.  :class:`OwnerChain` holds who may act.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import CryptoError

# Argon2id parameters: client constants, never negotiated.
ARGON2_ITERATIONS = 3
ARGON2_LANES = 4
ARGON2_MEMORY_KIB = 64 * 1024
KEY_SIZE = 32
SALT_SIZE = 16
PIN_SIZE = 32
PUBLIC_SIZE = 32
SIGNATURE_SIZE = 64
CHALLENGE_MIN = 16
CHALLENGE_MAX = 64

BUCKETS = (256, 512, 1024, 2048, 4096)
TAG_SIZE = 16
COUNTER_MAX = 2**64 - 1
EPOCH_MAX = 2**32 - 1
STALE_MS = 5 * 60 * 1000
KIND_RE = re.compile(r"[a-z][a-z0-9_]{0,15}")

_SALT_LABEL = b"anonchat/v1/salt"
_ROOM_ID_LABEL = b"anonchat/v1/room_id"
_AUTH_SEED_LABEL = b"anonchat/v1/auth_seed"
_ENC_ROOT_LABEL = b"anonchat/v1/enc_root"
_JOIN_LABEL = b"anonchat/v1/join"
_KEY_LABEL = b"anonchat/v1/session_key"
_SEND_LABEL = b"anonchat/v2/send"
_AD_LABEL = b"anonchat/v2/msg"
_FP_LABEL = b"anonchat/v1/fp"
_SAFETY_LABEL = b"anonchat/v2/safety"
_OWNER_LABEL = b"anonchat/v1/owner"
_OWNER_ACT_LABEL = b"anonchat/v1/owner_act"

_AD_HEAD = struct.Struct(">32s32sI32sQB")
_ACT = struct.Struct(">32s32sQB32sBIB")
_LEN = struct.Struct(">H")
_TS = struct.Struct(">Q")
_NICK_MAX_BYTES = 255
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


class CryptoCode(StrEnum):
    """Stable codes of :class:`~anonchat.errors.CryptoError`."""

    BAD_INPUT = "bad_input"  # an argument has the wrong size or range (caller's bug)
    MALFORMED = "malformed"  # a Sealed field has the wrong type, size or range
    BAD_SIGNATURE = "bad_signature"
    DECRYPT_FAILED = "decrypt_failed"
    BAD_PLAINTEXT = "bad_plaintext"
    REPLAY = "replay"
    TOO_LARGE = "too_large"
    BAD_WORDLIST = "bad_wordlist"
    BAD_TAG = "bad_tag"  # an owner key the passphrase does not vouch for
    NOT_OWNER = "not_owner"  # an owner action signed by a key with no owner rights
    BAD_KEY = "bad_key"  # a public key of small order, off the curve or not canonical


def _fail(code: CryptoCode, message: str) -> CryptoError:
    return CryptoError(code, message)


# --- normalisation and keys -------------------------------------------------


def normalize_room(name: str) -> str:
    """The form of a room name that keys derive from (case- and width-insensitive)."""
    return unicodedata.normalize("NFKC", name).casefold().strip()


def normalize_passphrase(passphrase: str) -> str:
    """NFKC only: composed and decomposed accents type the same, case still counts."""
    return unicodedata.normalize("NFKC", passphrase)


def _check_size(value: bytes, size: int, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise _fail(CryptoCode.BAD_INPUT, f"{what} must be {size} bytes")


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates, e.g. from surrogateescape
        raise _fail(CryptoCode.BAD_INPUT, f"{what} is not valid Unicode") from exc


def room_salt(room: str, server_pin: bytes) -> bytes:
    """The Argon2id salt: bound to the server so guesses cannot be precomputed."""
    _check_size(server_pin, PIN_SIZE, "the server pin")
    name = _utf8(normalize_room(room), "the room name")
    return hashlib.sha256(_SALT_LABEL + b"\0" + server_pin + b"\0" + name).digest()[:SALT_SIZE]


def _hkdf(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=info).derive(key)


@dataclass(frozen=True)
class RoomKeys:
    """What one room's passphrase gives: an id, a join key and a message root key.

    ``room_id`` and ``auth_public`` may go to the server; the rest never does
    and stays out of ``repr``.
    """

    room_id: bytes
    auth_public: bytes
    _auth_key: Ed25519PrivateKey = field(repr=False, compare=False)
    _enc_root: bytes = field(repr=False, compare=False)
    _owner_mac: bytes = field(repr=False, compare=False)

    def join_proof(self, challenge: bytes, server_pin: bytes) -> bytes:
        """Sign the server's challenge, proving we know the passphrase (create or join)."""
        return self._auth_key.sign(_join_message(self.room_id, challenge, server_pin))

    def sending_key(self, owner: bytes, epoch: int, sender: bytes) -> bytes:
        """The ChaCha20-Poly1305 key of one sender's session in one epoch of one
        incarnation of the room (named by its owner key)."""
        if not 0 <= epoch <= EPOCH_MAX:
            raise _fail(CryptoCode.BAD_INPUT, "the epoch must fit in 32 bits")
        _check_size(owner, PUBLIC_SIZE, "an owner key")
        _check_size(sender, PUBLIC_SIZE, "a sender key")
        info = _SEND_LABEL + b"\0" + owner + struct.pack(">I", epoch) + sender
        return _hkdf(self._enc_root, info)

    def owner_tag(self, owner: bytes) -> bytes:
        """Vouch, as a passphrase holder, that ``owner`` is this room's owner key."""
        _check_size(owner, PUBLIC_SIZE, "an owner key")
        message = _OWNER_LABEL + b"\0" + self.room_id + owner
        return hmac.digest(self._owner_mac, message, "sha256")

    def check_owner_tag(self, owner: bytes, tag: bytes) -> bool:
        """True only if a passphrase holder made ``tag`` for ``owner`` in this room."""
        if not isinstance(tag, bytes) or len(tag) != KEY_SIZE:
            return False
        try:
            expected = self.owner_tag(owner)
        except CryptoError:
            return False
        return hmac.compare_digest(expected, tag)


def master_key(room: str, passphrase: str, server_pin: bytes) -> bytes:
    """The room's Argon2id output (version 0x13, no secret, no associated data),
    from which every room key is derived.  Exposed for known-answer vectors."""
    salt = room_salt(room, server_pin)
    secret = _utf8(normalize_passphrase(passphrase), "the passphrase")
    return Argon2id(
        salt=salt,
        length=KEY_SIZE,
        iterations=ARGON2_ITERATIONS,
        lanes=ARGON2_LANES,
        memory_cost=ARGON2_MEMORY_KIB,
    ).derive(secret)


def derive_room_keys(room: str, passphrase: str, server_pin: bytes) -> RoomKeys:
    """Run Argon2id (about 0.2 s, 64 MiB: call it in a thread) and derive the room keys."""
    master = master_key(room, passphrase, server_pin)
    auth_key = Ed25519PrivateKey.from_private_bytes(_hkdf(master, _AUTH_SEED_LABEL))
    return RoomKeys(
        room_id=_hkdf(master, _ROOM_ID_LABEL),
        auth_public=_public_bytes(auth_key.public_key()),
        _auth_key=auth_key,
        _enc_root=_hkdf(master, _ENC_ROOT_LABEL),
        _owner_mac=_hkdf(master, _OWNER_LABEL),
    )


def _public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes_raw()


def _join_message(room_id: bytes, challenge: bytes, server_pin: bytes) -> bytes:
    _check_size(room_id, KEY_SIZE, "a room id")
    _check_size(server_pin, PIN_SIZE, "the server pin")
    if not isinstance(challenge, bytes) or not CHALLENGE_MIN <= len(challenge) <= CHALLENGE_MAX:
        raise _fail(CryptoCode.BAD_INPUT, "a challenge must be 16 to 64 bytes")
    return _JOIN_LABEL + b"\0" + room_id + challenge + server_pin


def _key_message(room_id: bytes, challenge: bytes, server_pin: bytes) -> bytes:
    return _KEY_LABEL + b"\0" + _join_message(room_id, challenge, server_pin)


def key_proof(identity: Identity, room_id: bytes, challenge: bytes, server_pin: bytes) -> bytes:
    """Prove to the daemon that we hold the session key we enter a room with:
    it signs the connection's challenge for this room on this server, so it
    cannot be taken from another member or replayed on another connection."""
    return identity.sign(_key_message(room_id, challenge, server_pin))


def verify_key_proof(
    sender: bytes, room_id: bytes, challenge: bytes, server_pin: bytes, proof: bytes
) -> bool:
    """True only if ``proof`` was made with the private half of ``sender``."""
    return _signed(sender, proof, _key_message, room_id, challenge, server_pin)


def verify_join_proof(
    auth_public: bytes, room_id: bytes, challenge: bytes, server_pin: bytes, proof: bytes
) -> bool:
    """True only if ``proof`` signs this challenge for this room on this server."""
    return _signed(auth_public, proof, _join_message, room_id, challenge, server_pin)


def _signed(
    public: bytes,
    proof: bytes,
    message: Callable[[bytes, bytes, bytes], bytes],
    room_id: bytes,
    challenge: bytes,
    server_pin: bytes,
) -> bool:
    """Whether ``proof`` is ``public``'s signature of ``message(...)``; never raises."""
    try:
        data = message(room_id, challenge, server_pin)
    except CryptoError:
        return False
    return _verify(public, proof, data)


# --- public keys: only canonical points of the prime-order subgroup ----------

# Ed25519 (RFC 8032): the curve -x^2 + y^2 = 1 + d x^2 y^2 over GF(p), the
# base point's order L.  Pure Python on purpose: the library checks none of
# this (OpenSSL accepts the identity as a public key, and the signature
# R = identity, S = 0 then verifies for every message).
_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
_L = 2**252 + 27742317777372353535851937790883648493
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z
_IDENTITY: _Point = (0, 1, 1, 0)


def _decode_point(encoded: bytes) -> _Point | None:
    """RFC 8032 section 5.1.3, strictly: None for y >= p, for a point off the
    curve, and for x = 0 with the sign bit set (the non-canonical encodings)."""
    n = int.from_bytes(encoded, "little")
    sign, y = n >> 255, n & ((1 << 255) - 1)
    if y >= _P:
        return None
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    vxx = v * x * x % _P
    if vxx == (-u) % _P:
        x = x * _SQRT_M1 % _P
    elif vxx != u:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = _P - x
    return (x, y, 1, x * y % _P)


def _add(a: _Point, b: _Point) -> _Point:
    """Point addition in extended coordinates (RFC 8032 section 5.1.4)."""
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    p = (y1 - x1) * (y2 - x2) % _P
    q = (y1 + x1) * (y2 + x2) % _P
    r = 2 * _D * t1 * t2 % _P
    s = 2 * z1 * z2 % _P
    e, f, g, h = q - p, s - r, s + r, q + p
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _multiply(k: int, point: _Point) -> _Point:
    result = _IDENTITY
    while k:
        if k & 1:
            result = _add(result, point)
        point = _add(point, point)
        k >>= 1
    return result


def _is_identity(point: _Point) -> bool:
    x, y, z, _ = point
    return x % _P == 0 and (y - z) % _P == 0


@lru_cache(maxsize=4096)
def _valid_point(encoded: bytes) -> bool:
    point = _decode_point(encoded)
    if point is None:
        return False
    # Of prime order L: not one of the 8 small-order points, nor one with a
    # small-order component (no honest key is: a key is a multiple of the base point).
    return not _is_identity(point) and _is_identity(_multiply(_L, point))


def valid_public_key(public: object) -> bool:
    """Whether ``public`` is a key the protocol accepts: 32 bytes, the canonical
    encoding of a point of the prime-order subgroup (never of small order)."""
    return isinstance(public, bytes) and len(public) == PUBLIC_SIZE and _valid_point(public)


def check_public_key(public: object, what: str = "a public key") -> None:
    """Raise :attr:`CryptoCode.BAD_KEY` unless :func:`valid_public_key`."""
    if not valid_public_key(public):
        raise _fail(
            CryptoCode.BAD_KEY,
            f"{what} is not a valid Ed25519 public key (small order, off the curve or"
            " not canonical)",
        )


def _verify(public: bytes, signature: bytes, data: bytes) -> bool:
    """The one Ed25519 check every signature of the protocol goes through."""
    if not valid_public_key(public) or not isinstance(signature, bytes):
        return False
    if len(signature) != SIGNATURE_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- session identities and fingerprints ------------------------------------


def _fingerprint_chars(public: bytes, count: int) -> str:
    digest = int.from_bytes(hashlib.sha256(_FP_LABEL + public).digest(), "big")
    return "".join(_CROCKFORD[(digest >> (251 - 5 * i)) & 31] for i in range(count))


def fingerprint(public: bytes) -> str:
    """Four characters that tell people apart in a room (not an authenticator)."""
    return _fingerprint_chars(public, 4)


def long_fingerprint(public: bytes) -> str:
    """80 bits as ``xxxx-xxxx-xxxx-xxxx`` to compare out of band; starts like the short one."""
    chars = _fingerprint_chars(public, 16)
    return "-".join(chars[i : i + 4] for i in range(0, 16, 4))


def safety_number(one: bytes, other: bytes) -> str:
    """The same 30 digits for two keys whichever side computes them, to read
    to each other by another channel (as messengers do)::

        digest = SHA-256("anonchat/v2/safety" 0x00 min(one, other) max(one, other))
        groups = for i in 0..5: u40(digest[5i : 5i+5]) mod 100000, 5 digits each

    six groups of 5 decimal digits joined by spaces (about 99.7 bits)."""
    _check_size(one, PUBLIC_SIZE, "a public key")
    _check_size(other, PUBLIC_SIZE, "a public key")
    low, high = sorted((one, other))
    digest = hashlib.sha256(_SAFETY_LABEL + b"\0" + low + high).digest()
    groups = (int.from_bytes(digest[5 * i : 5 * i + 5], "big") % 100_000 for i in range(6))
    return " ".join(f"{g:05d}" for g in groups)


@dataclass(frozen=True)
class Identity:
    """One session's signing key: every message it sends is signed with it."""

    public: bytes
    _key: Ed25519PrivateKey = field(repr=False, compare=False)

    @classmethod
    def generate(cls) -> Identity:
        return cls._from_key(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """A fixed identity from 32 bytes, for tests and known-answer vectors."""
        _check_size(seed, KEY_SIZE, "a seed")
        return cls._from_key(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def _from_key(cls, key: Ed25519PrivateKey) -> Identity:
        return cls(public=_public_bytes(key.public_key()), _key=key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)


# --- owners of a secret room ------------------------------------------------

#: The kinds of owner action and their code in the signed message.
OWNER_KINDS = {"kick": 1, "ban": 2, "op": 3, "mode": 4, "close": 5}
SLOW_LIMIT = 2**32 - 1
_NO_TARGET = bytes(PUBLIC_SIZE)


@dataclass(frozen=True)
class OwnerAction:
    """One signed moderation step of a secret room.

    ``target`` is a member's session key (kick, ban, op); a ``mode`` action
    instead carries the room's whole new mode: ``locked``, ``slow``, ``history``.
    """

    kind: str
    counter: int
    actor: bytes
    signature: bytes
    target: bytes | None = None
    locked: bool = False
    slow: int = 0
    history: bool = True


def owner_action_message(
    room_id: bytes,
    owner: bytes,
    kind: str,
    counter: int,
    target: bytes | None = None,
    locked: bool = False,
    slow: int = 0,
    history: bool = True,
) -> bytes:
    """The bytes an owner action's signature covers (see the module docstring)."""
    _check_size(room_id, KEY_SIZE, "a room id")
    check_public_key(owner, "the owner key")
    code = OWNER_KINDS.get(kind) if isinstance(kind, str) else None
    if code is None:
        raise _fail(CryptoCode.MALFORMED, f"an owner action kind is one of {sorted(OWNER_KINDS)}")
    if type(counter) is not int or not 1 <= counter <= COUNTER_MAX:
        raise _fail(CryptoCode.MALFORMED, "an owner action counter is 1 to 2**64-1")
    if kind == "mode":
        if target is not None or type(slow) is not int or not 0 <= slow <= SLOW_LIMIT:
            raise _fail(CryptoCode.MALFORMED, "a mode action has no target and a 32-bit slow")
        if type(locked) is not bool or type(history) is not bool:
            raise _fail(CryptoCode.MALFORMED, "a mode action's locked and history are booleans")
        tail = (_NO_TARGET, int(locked), slow, int(history))
    elif kind == "close":
        if target is not None:
            raise _fail(CryptoCode.MALFORMED, "a close action has no target")
        tail = (_NO_TARGET, 0, 0, 0)
    else:
        if target is None:
            raise _fail(CryptoCode.MALFORMED, f"a {kind} action needs a target key")
        check_public_key(target, "the target key")
        tail = (target, 0, 0, 0)
    head = _ACT.pack(room_id, owner, counter, code, *tail)
    return _OWNER_ACT_LABEL + b"\0" + head


def sign_owner_action(
    signer: Identity,
    room_id: bytes,
    owner: bytes,
    kind: str,
    counter: int,
    target: bytes | None = None,
    *,
    locked: bool = False,
    slow: int = 0,
    history: bool = True,
) -> OwnerAction:
    """Sign one owner action with ``signer`` (the owner key or a granted session key)."""
    message = owner_action_message(room_id, owner, kind, counter, target, locked, slow, history)
    return OwnerAction(
        kind=kind,
        counter=counter,
        actor=signer.public,
        signature=signer.sign(message),
        target=target,
        locked=locked,
        slow=slow,
        history=history,
    )


def verify_owner_action(room_id: bytes, owner: bytes, action: OwnerAction) -> bool:
    """True only if ``action.actor`` signed exactly this action for this room and owner."""
    try:
        message = owner_action_message(
            room_id,
            owner,
            action.kind,
            action.counter,
            action.target,
            action.locked,
            action.slow,
            action.history,
        )
    except CryptoError:
        return False
    return _verify(action.actor, action.signature, message)


class OwnerChain:
    """Who may moderate one secret room: its owner key, then every session key
    granted ``op`` by a key that could; and the last action counter accepted.

    The daemon and every member keep one and feed it the same actions, so they
    agree on who is an owner without trusting each other.  A banned key may no
    longer act (its grants to others stay valid: there is no taking rights back).
    """

    def __init__(self, room_id: bytes, owner: bytes) -> None:
        _check_size(room_id, KEY_SIZE, "a room id")
        _check_size(owner, PUBLIC_SIZE, "an owner key")
        self.room_id = room_id
        self.owner = owner
        self.granted: dict[bytes, OwnerAction] = {}  # session key -> its op grant
        self.banned: set[bytes] = set()
        self.counter = 0  # the last action accepted

    def may_act(self, key: bytes) -> bool:
        """An owner key that is not a valid public key may do nothing (see
        :func:`valid_public_key`), and neither may any key it would grant."""
        return (
            (key == self.owner or key in self.granted)
            and key not in self.banned
            and valid_public_key(key)
        )

    def check(self, action: OwnerAction) -> None:
        """Raise CryptoError unless ``action`` is new and signed by someone who may act."""
        if type(action.counter) is not int or action.counter <= self.counter:
            raise _fail(CryptoCode.REPLAY, "this owner action is not newer than the last one")
        check_public_key(action.actor, "the actor key")
        if action.target is not None:
            check_public_key(action.target, "the target key")
        if not self.may_act(action.actor):
            raise _fail(CryptoCode.NOT_OWNER, "the key that signed this action is not an owner")
        if not verify_owner_action(self.room_id, self.owner, action):
            raise _fail(CryptoCode.BAD_SIGNATURE, "the owner action's signature does not verify")

    def apply(self, action: OwnerAction) -> None:
        """Record a checked action: its counter, a grant or a ban."""
        self.counter = action.counter
        if action.kind == "op" and action.target is not None:
            self.granted.setdefault(action.target, action)
        elif action.kind == "ban" and action.target is not None:
            self.banned.add(action.target)

    def accept(self, action: OwnerAction) -> None:
        self.check(action)
        self.apply(action)

    def load_grants(self, grants: list[OwnerAction]) -> list[OwnerAction]:
        """A newcomer's view: take the grants (in counter order) that chain up to
        the owner key; return those that do not.  Counters are not checked
        (the grants are older than the actions the newcomer will see)."""
        refused = []
        for grant in sorted(grants, key=lambda g: g.counter if type(g.counter) is int else 0):
            ok = grant.kind == "op" and grant.target is not None and self.may_act(grant.actor)
            if (
                ok
                and grant.target is not None
                and verify_owner_action(self.room_id, self.owner, grant)
            ):
                self.granted.setdefault(grant.target, grant)
                continue
            refused.append(grant)
        return refused


# --- sealing ----------------------------------------------------------------


@dataclass(frozen=True)
class Sealed:
    """One encrypted message exactly as it goes on the wire (room_id aside)."""

    sender: bytes
    counter: int
    kind: str
    epoch: int
    ciphertext: bytes
    signature: bytes


@dataclass(frozen=True)
class Opened:
    """A verified, decrypted message, plus what the UI should say about it."""

    nick: str
    ts: int
    body: str
    kind: str
    sender: bytes
    fingerprint: str
    counter: int
    epoch: int
    missing: int
    stale: bool


def _associated_data(
    room_id: bytes, owner: bytes, epoch: int, sender: bytes, counter: int, kind: str
) -> bytes:
    raw_kind = kind.encode("ascii")
    head = _AD_HEAD.pack(room_id, owner, epoch, sender, counter, len(raw_kind))
    return _AD_LABEL + b"\0" + head + raw_kind


def _encode_plaintext(nick: str, ts_ms: int, body: str) -> bytes:
    raw_nick = _utf8(nick, "the nick")
    if not 1 <= len(raw_nick) <= _NICK_MAX_BYTES:
        raise _fail(CryptoCode.BAD_INPUT, "a nick must be 1 to 255 bytes of UTF-8")
    if not 0 <= ts_ms <= COUNTER_MAX:
        raise _fail(CryptoCode.BAD_INPUT, "a timestamp must fit in 64 bits")
    record = bytes([len(raw_nick)]) + raw_nick + _TS.pack(ts_ms) + _utf8(body, "the body")
    size = _LEN.size + len(record)
    bucket = next((b for b in BUCKETS if size <= b), None)
    if bucket is None:
        raise _fail(CryptoCode.TOO_LARGE, f"message of {size} bytes exceeds {BUCKETS[-1]}")
    return (_LEN.pack(len(record)) + record).ljust(bucket, b"\0")


class Sealer:
    """Encrypts and signs one session's messages to one incarnation of a room
    (``owner``: its owner key), counting from 1."""

    def __init__(self, keys: RoomKeys, identity: Identity, owner: bytes, epoch: int = 0) -> None:
        self._room_id = keys.room_id
        self._owner = owner
        self._identity = identity
        self._epoch = epoch
        self._aead = ChaCha20Poly1305(keys.sending_key(owner, epoch, identity.public))
        self._counter = 0

    @property
    def owner(self) -> bytes:
        """The owner key naming the incarnation this sealer seals for."""
        return self._owner

    @property
    def counter(self) -> int:
        """The counter of the last sealed message (0 before the first)."""
        return self._counter

    def seal(self, nick: str, ts_ms: int, body: str, kind: str = "msg") -> Sealed:
        """Encrypt, pad and sign one message; the counter is spent only on success."""
        if not isinstance(kind, str) or not KIND_RE.fullmatch(kind):
            raise _fail(CryptoCode.BAD_INPUT, "a kind must match [a-z][a-z0-9_]{0,15}")
        if self._counter >= COUNTER_MAX:
            raise _fail(CryptoCode.TOO_LARGE, "this session has sent 2**64-1 messages")
        plaintext = _encode_plaintext(nick, ts_ms, body)
        counter = self._counter + 1
        ad = _associated_data(
            self._room_id, self._owner, self._epoch, self._identity.public, counter, kind
        )
        ciphertext = self._aead.encrypt(_nonce(counter), plaintext, ad)
        self._counter = counter
        return Sealed(
            sender=self._identity.public,
            counter=counter,
            kind=kind,
            epoch=self._epoch,
            ciphertext=ciphertext,
            signature=self._identity.sign(ad + ciphertext),
        )


def _nonce(counter: int) -> bytes:
    return counter.to_bytes(12, "big")


# --- opening ----------------------------------------------------------------


def _check_shape(sealed: Sealed) -> None:
    """Refuse wrong types and ranges before they reach struct or the libraries."""
    ok = (
        isinstance(sealed.sender, bytes)
        and len(sealed.sender) == PUBLIC_SIZE
        and isinstance(sealed.signature, bytes)
        and len(sealed.signature) == SIGNATURE_SIZE
        and type(sealed.counter) is int
        and 1 <= sealed.counter <= COUNTER_MAX
        and type(sealed.epoch) is int
        and 0 <= sealed.epoch <= EPOCH_MAX
        and isinstance(sealed.kind, str)
        and KIND_RE.fullmatch(sealed.kind) is not None
        and isinstance(sealed.ciphertext, bytes)
        and len(sealed.ciphertext) in _CIPHERTEXT_SIZES
    )
    if not ok:
        raise _fail(CryptoCode.MALFORMED, "a sealed message field has a wrong type or size")


_CIPHERTEXT_SIZES = frozenset(b + TAG_SIZE for b in BUCKETS)


def _verify_signature(sealed: Sealed, ad: bytes) -> None:
    check_public_key(sealed.sender, "the sender key")
    if not _verify(sealed.sender, sealed.signature, ad + sealed.ciphertext):
        raise _fail(CryptoCode.BAD_SIGNATURE, "the signature does not match the sender")


def _decode_plaintext(plaintext: bytes) -> tuple[str, int, str]:
    """Strictly undo :func:`_encode_plaintext`; any other byte string is refused."""
    try:
        (size,) = _LEN.unpack_from(plaintext)
        record, padding = plaintext[2 : 2 + size], plaintext[2 + size :]
        if len(record) != size or padding.strip(b"\0") or record[0] == 0:
            raise ValueError("bad length or padding")
        nick_end = 1 + record[0]
        nick = record[1:nick_end].decode("utf-8")
        (ts,) = _TS.unpack_from(record, nick_end)
        body = record[nick_end + _TS.size :].decode("utf-8")
    except (ValueError, IndexError, struct.error) as exc:  # UnicodeDecodeError too
        raise _fail(CryptoCode.BAD_PLAINTEXT, "the decrypted message is malformed") from exc
    return nick, ts, body


def verify_sealed_signature(room_id: bytes, owner: bytes, sealed: Sealed) -> bool:
    """True only if ``sealed.sender``'s key signed this sealed message for this room.

    What the daemon can check without the room key: that a member holds the
    session key it entered with (it spares owners' keys from slow mode).
    """
    try:
        _check_size(room_id, KEY_SIZE, "a room id")
        _check_size(owner, PUBLIC_SIZE, "an owner key")
        _check_shape(sealed)
        ad = _associated_data(
            room_id, owner, sealed.epoch, sealed.sender, sealed.counter, sealed.kind
        )
        _verify_signature(sealed, ad)
    except CryptoError:
        return False
    return True


class Opener:
    """Verifies, decrypts and de-duplicates the messages of one incarnation of a
    room (``owner``: its owner key) from every sender."""

    def __init__(self, keys: RoomKeys, owner: bytes) -> None:
        _check_size(owner, PUBLIC_SIZE, "an owner key")
        self._keys = keys
        self._owner = owner
        self._highest: dict[bytes, tuple[int, int]] = {}

    @property
    def owner(self) -> bytes:
        return self._owner

    def open(self, sealed: Sealed, now_ms: int, not_before: int | None = None) -> Opened:
        """Return the message or raise CryptoError; state changes only on success.

        ``not_before`` (ms): refuse, as a replay, a message its sender sealed
        earlier than that (the receiver joined later, yet it came as new)."""
        _check_shape(sealed)
        ad = _associated_data(
            self._keys.room_id,
            self._owner,
            sealed.epoch,
            sealed.sender,
            sealed.counter,
            sealed.kind,
        )
        _verify_signature(sealed, ad)
        missing = self._gap(sealed)
        try:
            key = self._keys.sending_key(self._owner, sealed.epoch, sealed.sender)
            plaintext = ChaCha20Poly1305(key).decrypt(_nonce(sealed.counter), sealed.ciphertext, ad)
        except InvalidTag as exc:
            raise _fail(CryptoCode.DECRYPT_FAILED, "the message does not decrypt") from exc
        nick, ts, body = _decode_plaintext(plaintext)
        if not_before is not None and ts < not_before:
            raise _fail(CryptoCode.REPLAY, "this message was sealed before we joined (replay)")
        self._highest[sealed.sender] = (sealed.epoch, sealed.counter)
        return Opened(
            nick=nick,
            ts=ts,
            body=body,
            kind=sealed.kind,
            sender=sealed.sender,
            fingerprint=fingerprint(sealed.sender),
            counter=sealed.counter,
            epoch=sealed.epoch,
            missing=missing,
            stale=abs(ts - now_ms) > STALE_MS,
        )

    def _gap(self, sealed: Sealed) -> int:
        """How many of this sender's messages we never saw; raise on a replay."""
        highest = self._highest.get(sealed.sender)
        if highest is None:
            return 0  # they may have spoken before we joined: not a gap
        if (sealed.epoch, sealed.counter) <= highest:
            raise _fail(CryptoCode.REPLAY, "this message was already received (replay)")
        epoch, counter = highest
        return sealed.counter - 1 - (counter if sealed.epoch == epoch else 0)
