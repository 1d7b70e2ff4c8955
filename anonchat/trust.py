"""TLS for anonchat: the daemon's own key and certificate, pins, known_hosts.

The daemon proves who it is with a key it made itself, not with a certificate
authority: clients pin the SHA-256 of its SubjectPublicKeyInfo, written
``sha256/<base64>``, on first use (like SSH) or from an invite link or flag.
A changed key stops the connection before the client sends a single frame.

TLS 1.3 only.  The client does no CA or hostname check on purpose: the pin
is the check, and it is made right after the handshake (:func:`check_pin`).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import ipaddress
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; one daemon per directory there
    fcntl = None  # type: ignore[assignment]

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .address import canonical_host, format_address
from .errors import AnonchatError, ConnectionClosed, Local
from .paths import daemon_state_dir, known_hosts_file, open_private, private_dir

PIN_PREFIX = "sha256/"
KEY_FILE = "anonchatd.key"
CERT_FILE = "anonchatd.crt"


class TrustError(AnonchatError):
    """A key, certificate or known_hosts file cannot be used."""


def default_state_dir() -> Path:
    """Where the daemon keeps its key (decided in :mod:`anonchat.paths`)."""
    return daemon_state_dir()


# -- pins ------------------------------------------------------------------


def pin_of_cert(cert_der: bytes) -> str:
    """``sha256/<base64>`` of the certificate's SubjectPublicKeyInfo."""
    cert = x509.load_der_x509_certificate(cert_der)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PIN_PREFIX + base64.b64encode(hashlib.sha256(spki).digest()).decode()


#: A SHA-256 digest, and its base64 text: 43 characters and one "=".
DIGEST_LEN = 32
PIN_BODY_LEN = 44


def pin_bytes(pin: str) -> bytes:
    """The 32 raw bytes of a pin (used to bind secret rooms to this server)."""
    return base64.b64decode(pin.removeprefix(PIN_PREFIX), validate=True)


def check_pin_syntax(pin: str) -> str:
    """Return ``pin`` if it is ``sha256/`` and the canonical base64 of 32 bytes, else raise.

    Strict: no characters outside the base64 alphabet, no missing or extra
    padding, and no second spelling of the same bytes (the unused low bits
    of the last character must be zero), so that comparing two pins as text
    is comparing the keys.
    """
    body = pin.removeprefix(PIN_PREFIX)
    ok = pin.startswith(PIN_PREFIX) and len(body) == PIN_BODY_LEN and body.isascii()
    try:
        digest = base64.b64decode(body, validate=True) if ok else b""
    except ValueError:  # binascii.Error is a ValueError
        ok = False
    else:
        ok = ok and len(digest) == DIGEST_LEN and base64.b64encode(digest).decode() == body
    if not ok:
        raise TrustError(
            f"not a pin: {pin!r} (expected sha256/ and {PIN_BODY_LEN} base64 characters)"
        )
    return pin


# -- the daemon's identity ---------------------------------------------------


@dataclass(frozen=True)
class ServerIdentity:
    cert_path: Path
    key_path: Path
    pin: str

    def context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx


def load_identity(cert_path: Path, key_path: Path) -> ServerIdentity:
    try:
        pem = cert_path.read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
    except OSError as exc:
        raise TrustError(f"cannot read certificate {cert_path}: {exc.strerror}") from None
    except ValueError as exc:
        raise TrustError(f"cannot read certificate {cert_path}: {exc}") from None
    try:
        # (Read here, not only by OpenSSL below, so that a key another user owns
        # -- copied as root into a service's state directory -- is named as such.)
        key_path.open("rb").close()
    except OSError as exc:
        raise TrustError(f"cannot read key {key_path}: {exc.strerror}") from None
    ident = ServerIdentity(
        cert_path, key_path, pin_of_cert(cert.public_bytes(serialization.Encoding.DER))
    )
    try:
        ident.context()
    except (OSError, ssl.SSLError) as exc:
        raise TrustError(f"key {key_path} does not fit certificate {cert_path}: {exc}") from None
    return ident


def ensure_identity(state_dir: Path) -> ServerIdentity:
    """Load the daemon's key and self-signed certificate, creating them on first start.

    Two daemons started at once on one state directory (two nodes of a service
    on one machine, or ``--print-pin`` next to the daemon) make one key, not two
    halves of two: the check and the creation happen under a lock on the
    directory itself (``flock``, so nothing else is written there).  A
    directory that cannot be made or used is a :class:`TrustError` of one line.
    """
    key_path, cert_path = state_dir / KEY_FILE, state_dir / CERT_FILE
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(state_dir):
            if not key_path.exists() and not cert_path.exists():
                create_identity(state_dir)
    except OSError as exc:
        raise TrustError(f"cannot use state directory {state_dir}: {exc.strerror or exc}") from None
    return load_identity(cert_path, key_path)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory`` (where there is flock)."""
    if fcntl is None:
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # (releases the lock)


def create_identity(state_dir: Path, key: ec.EllipticCurvePrivateKey | None = None) -> None:
    """Write a new key (mode 0600) and a self-signed certificate for it.

    ``key`` is for tests that need a fixed pin; a daemon always makes a fresh one.
    """
    key_path, cert_path = state_dir / KEY_FILE, state_dir / CERT_FILE
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "anonchatd")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("anonchatd"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


# -- the client side ---------------------------------------------------------


def client_context() -> ssl.SSLContext:
    """TLS 1.3, no CA check: the pin, checked by :func:`check_pin`, is the check."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class KnownHosts:
    """``known_hosts``: one ``HOST:PORT sha256/...`` per line, like SSH's.

    Only pins the user accepted on first contact (or with ``--accept-new-host``)
    are written here; a pin given with ``--fingerprint`` or in an invite link
    never is.  The file is created 0600 in a 0700 directory.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or known_hosts_file()

    @staticmethod
    def key(host: str, port: int) -> str:
        """The address as known_hosts spells it (see :func:`~anonchat.address.canonical_host`).

        Raises TrustError for a host that is not one (whitespace or a control
        character would break the file's lines).
        """
        try:
            return format_address(canonical_host(host), port)
        except ValueError as exc:
            raise TrustError(str(exc)) from None

    def lookup(self, host: str, port: int) -> tuple[str, int] | None:
        """The pinned key of a server and its line number, or None."""
        want = self.key(host, port)
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TrustError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        except UnicodeError:
            raise TrustError(f"cannot read {self.path}: it is not UTF-8 text") from None
        # Lines end at "\n" only: str.splitlines() would also end them at \x1c,
        # \x85, \u2028 and others, which a line of this file must not be split at.
        for number, line in enumerate(text.split("\n"), 1):
            parts = line.split()
            if len(parts) >= 2 and parts[0] == want and not line.startswith("#"):
                return parts[1], number
        return None

    def add(self, host: str, port: int, pin: str) -> None:
        line = f"{self.key(host, port)} {check_pin_syntax(pin)}\n"
        try:
            private_dir(self.path.parent)
            with os.fdopen(open_private(self.path, "a"), "a", encoding="utf-8") as f:
                f.write(line)
        except OSError as exc:
            raise TrustError(f"cannot write {self.path}: {exc.strerror or exc}") from None


def check_pin(
    host: str, port: int, pin: str, expected: str | None, known: KnownHosts | None
) -> tuple[bool, str]:
    """Decide about a server's pin right after the handshake.

    Returns (trusted, note).  ``trusted`` is True when the pin is already
    trusted (given up front, or in known_hosts), False when this is a first
    contact the user must confirm.  ``note`` is a sentence for the user, or
    "": a given pin is followed even when known_hosts remembers another one
    for the address, and the user is told so.  A given pin is never written
    to known_hosts.  Raises :class:`ConnectionClosed` (``host_key_changed`` /
    ``pin_mismatch``) when the key differs from what was expected: there is
    no "continue anyway".
    """
    found = known.lookup(host, port) if known is not None else None
    path = known.path if known is not None else None
    where = format_address(host, port)
    if expected is not None:
        if pin != expected:
            hint = ""
            if found is not None and found[0] == pin:
                hint = (
                    f" (it is the key remembered on line {found[1]} of {path}:"
                    " is the pin you were given out of date?)"
                )
            raise ConnectionClosed(
                Local.PIN_MISMATCH,
                f"{where} presented key {pin}, not the expected {expected}; "
                f"someone may be impersonating the server{hint}",
            )
        note = ""
        if found is not None and found[0] != pin:
            note = (
                f"note: {where} was checked against the pin you gave, not the different "
                f"one remembered on line {found[1]} of {path}; if the "
                "operator really replaced the key, delete that line"
            )
        return True, note
    if found is None:
        return False, ""
    stored, line = found
    if stored != pin:
        raise ConnectionClosed(
            Local.HOST_KEY_CHANGED,
            f"WARNING: the key of {where} has changed (now {pin}). Someone may be "
            f"impersonating the server, or its operator replaced the key. If you are sure "
            f"it is legitimate, remove line {line} of {path} and connect again.",
        )
    return True, ""
