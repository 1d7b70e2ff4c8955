"""docs/protocol.md cannot drift from the code.

Every ```hex block of the document must hold whole frames that the real decoder
accepts, that validate as frames of one side or the other, and that re-encode to
the same bytes; a ```json block right after it must show the same maps.  Every
registered frame type needs an example, and the generated parts of the document
must be what docs/gen_protocol_examples.py produces today.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import importlib.util
import json
import re
import struct
import subprocess
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from anonchat import events as ev
from anonchat.crypto import fingerprint, long_fingerprint, normalize_room, room_salt, safety_number
from anonchat.errors import FATAL_CODES, Code, RemoteProtocolError
from anonchat.trust import pin_bytes, pin_of_cert
from anonchat.wire import FrameDecoder, encode_frame

DOCS = Path(__file__).resolve().parent.parent / "docs"
DOC = DOCS / "protocol.md"
GENERATOR = DOCS / "gen_protocol_examples.py"

_BLOCK = re.compile(r"^```(?P<tag>[\w-]*)\n(?P<text>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str]]:
    """Every fenced block of the document as (tag, text), in order."""
    return [(m["tag"], m["text"]) for m in _BLOCK.finditer(DOC.read_text(encoding="utf-8"))]


def hex_examples() -> list[tuple[bytes, Any]]:
    """(bytes of each hex block, the JSON of the block right after it or None)."""
    found = blocks()
    out = []
    for i, (tag, text) in enumerate(found):
        if tag != "hex":
            continue
        after = found[i + 1] if i + 1 < len(found) else ("", "")
        shown = json.loads(after[1]) if after[0] == "json" else None
        out.append((bytes.fromhex(text), shown))
    return out


def validate(body: dict[str, Any]) -> ev.Frame:
    """The frame a map is, as received by the server or else by the client."""
    try:
        return ev.from_wire(body, "server")
    except RemoteProtocolError:
        return ev.from_wire(body, "client")


def example_id(data: bytes) -> str:
    """A readable test id: the frame types a block holds."""
    try:
        return "+".join(str(body["t"]) for body in FrameDecoder().feed(data))
    except RemoteProtocolError:
        return data[:16].hex()


EXAMPLES = hex_examples()


def test_the_document_has_examples() -> None:
    assert len(EXAMPLES) >= len(set(ev.frame_types().values()))


@pytest.mark.parametrize(("data", "shown"), EXAMPLES, ids=[example_id(d) for d, _ in EXAMPLES])
def test_hex_example_decodes_validates_and_reencodes(data: bytes, shown: Any) -> None:
    decoder = FrameDecoder()
    bodies = list(decoder.feed(data))
    decoder.eof()  # raises if the block ends inside a frame
    assert bodies, "a hex block must hold at least one frame"
    frames = [validate(body) for body in bodies]
    assert b"".join(encode_frame(f.to_wire()) for f in frames) == data
    if shown is not None:
        shown_bodies = [as_shown(b) for b in bodies]
        assert shown == (shown_bodies[0] if len(bodies) == 1 else shown_bodies)


def as_shown(value: Any) -> Any:
    """A map as the doc shows it in JSON: msgpack bin as "bin:<hex>"."""
    if isinstance(value, bytes):
        return "bin:" + value.hex()
    if isinstance(value, dict):
        return {k: as_shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_shown(v) for v in value]
    return value


def test_every_frame_type_has_an_example() -> None:
    shown: set[type[ev.Frame]] = set()
    for data, _ in EXAMPLES:
        shown.update(type(validate(body)) for body in FrameDecoder().feed(data))
    missing = {
        f"{name} (received by the {role})"
        for (role, name), cls in ev.frame_types().items()
        if cls not in shown
    }
    assert not missing, f"docs/protocol.md has no example of: {sorted(missing)}"


def test_generated_parts_are_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location("gen_protocol_examples", GENERATOR)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    text = DOC.read_text(encoding="utf-8")
    fresh: str = generator.render_doc(text)
    diff = difflib.unified_diff(text.splitlines(), fresh.splitlines(), "doc", "code", lineterm="")
    shown = "\n".join(list(diff)[:40])
    assert fresh == text, f"run python docs/gen_protocol_examples.py; it would change:\n{shown}"


# -- a second implementation, from the document's text alone ---------------------
#
# The tests below read the vectors of docs/protocol.md and recompute them from
# the definitions the document gives, with the primitives a second client would
# use (hashlib, hmac, the `cryptography` package), not with anonchat's code,
# so that a definition the document gets wrong fails here even when the code
# and the generated tables agree with each other.  Where a vector is also
# checked against the code, the test says so.


def region(key: str) -> str:
    """The text of one generated region of the document."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- gen:{re.escape(key)} -->\n(.*?)<!-- /gen -->", text, re.DOTALL)
    assert match, f"docs/protocol.md has no region gen:{key}"
    return match.group(1)


def table(key: str) -> list[list[str]]:
    """The rows of the first Markdown table of a region, cells stripped of backticks."""
    rows = []
    for line in region(key).splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
    return rows[1:]  # without the header


def inputs() -> dict[str, str]:
    """Section 10's inputs: name -> value (JSON strings decoded)."""
    out = {}
    for name, value in table("secret-inputs"):
        out[name] = json.loads(value) if value.startswith('"') else value
    return out


def _hkdf(key: bytes, info: bytes) -> bytes:
    """RFC 5869 as section 4 states it: salt "not provided" = 32 zero bytes, one block."""
    prk = hmac.digest(bytes(32), key, "sha256")
    return hmac.digest(prk, info + b"\x01", "sha256")


def _normalise(room: str) -> str:
    """Section 4, "Room names": NFKC, full case folding, whitespace stripped."""
    return unicodedata.normalize("NFKC", room).casefold().strip()


def _ed25519(seed: bytes) -> tuple[Ed25519PrivateKey, bytes]:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    return key, key.public_key().public_bytes_raw()


ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _fp_chars(public: bytes, count: int) -> str:
    """Section 4, "Fingerprints": 5 bits per character, most significant first."""
    bits = "".join(f"{b:08b}" for b in hashlib.sha256(b"anonchat/v1/fp" + public).digest())
    return "".join(ALPHABET[int(bits[5 * i : 5 * i + 5], 2)] for i in range(count))


def _safety(one: bytes, other: bytes) -> str:
    low, high = sorted((one, other))
    digest = hashlib.sha256(b"anonchat/v2/safety\x00" + low + high).digest()
    groups = [int.from_bytes(digest[5 * i : 5 * i + 5], "big") % 100000 for i in range(6)]
    return " ".join(f"{g:05d}" for g in groups)


def test_fingerprints_follow_their_definition() -> None:
    seeds = inputs()
    rows = table("fingerprints")
    assert len(rows) >= 4
    for what, public_hex, short, long in rows:
        seed = bytes.fromhex(seeds[what]) if what in seeds else bytes(range(32))
        _, public = _ed25519(seed)
        assert public.hex() == public_hex
        assert _fp_chars(public, 4) == short == fingerprint(public)  # doc, text and code
        assert long == "-".join(_fp_chars(public, 16)[i : i + 4] for i in (0, 4, 8, 12))
        assert long == long_fingerprint(public) and long.startswith(short)
    text = region("fingerprints")
    alice = _ed25519(bytes.fromhex(seeds["alice_seed"]))[1]
    bob = _ed25519(bytes.fromhex(seeds["bob_seed"]))[1]
    shown = re.search(r"Safety number of alice's and bob's keys: `([\d ]+)`", text)
    assert shown and shown.group(1) == _safety(alice, bob) == _safety(bob, alice)
    assert shown.group(1) == safety_number(alice, bob)
    digest = hashlib.sha256(b"anonchat/v1/fp" + alice).hexdigest()
    assert f"`{digest}`" in text


def test_room_names_follow_their_definition() -> None:
    rows = table("room-names")
    salts: dict[str, str] = {}
    for typed_json, name_json, utf8, salt in rows:
        typed, name = json.loads(typed_json), json.loads(name_json)
        assert _normalise(typed) == name == normalize_room(typed)  # text and code
        assert bytes.fromhex(utf8) == name.encode("utf-8")
        expected = hashlib.sha256(b"anonchat/v1/salt\x00" + bytes(32) + b"\x00" + name.encode())
        assert salt == expected.hexdigest()[:32] == room_salt(typed, bytes(32)).hex()
        salts[typed] = salt
    # The pairs the document promises name one room each...
    for one, other in [
        ("Attic", "\uff21\uff34\uff34\uff29\uff23"),
        ("Attic", " attic\u3000"),
        ("Straße", "STRASSE"),
        ("ΧΑΟΣ", "χαος"),
    ]:
        assert salts[one] == salts[other], (one, other)
    # ... which lower-casing, as other languages do it, would not.
    assert "Straße".lower() != "STRASSE".lower()
    assert "ΧΑΟΣ".lower() != normalize_room("ΧΑΟΣ") == normalize_room("χαος")
    assert "İstanbul".casefold() != "istanbul"  # no Turkic special case


def test_the_stripped_whitespace_is_what_the_document_lists() -> None:
    text = region("unicode")
    assert f"**{unicodedata.unidata_version}**" in text
    listed: set[int] = set()
    for first, last in re.findall(r"U\+([0-9A-F]{4,6})(?:–U\+([0-9A-F]{4,6}))?", text):
        listed.update(range(int(first, 16), int(last or first, 16) + 1))
    for cp in listed:
        assert normalize_room(f"{chr(cp)}a{chr(cp)}") == "a", hex(cp)
    # Look-alikes of whitespace that are not stripped (format characters and the
    # Mongolian vowel separator, whitespace before Unicode 6.3); the room rules
    # then refuse the name.
    for cp in (0x200B, 0x180E, 0xFEFF, 0x2060):
        assert cp not in listed and normalize_room(f"{chr(cp)}a") == f"{chr(cp)}a"
    assert len(listed) == int(re.search(r"\((\d+) code points\)", text).group(1))  # type: ignore[union-attr]


def test_owner_action_fields_per_kind_are_enforced() -> None:
    """Section 2: a ``mode`` action without ``slow: 0`` is a fatal bad_field, etc."""
    rows = table("owner-act-fields")
    assert {row[0] for row in rows} == set(ev.OWNER_ACT_FIELDS)
    values = {"target": bytes(32), "locked": False, "slow": 0, "history": False}
    for kind, carry, leave_out in rows:
        wanted = [f.strip().strip("`") for f in carry.split(",") if f.strip() != "—"]
        others = [f.strip().strip("`") for f in leave_out.split(",")]
        act = {"kind": kind, "counter": 1, "actor": bytes(32), "sig": bytes(64)}
        act.update({f: values[f] for f in wanted})
        frame = {"t": "secret_act", "id": 1, "room": bytes(32), "act": act}
        assert isinstance(ev.from_wire(frame, "server"), ev.SecretAct)
        for missing in wanted:
            short = {**frame, "act": {k: v for k, v in act.items() if k != missing}}
            with pytest.raises(RemoteProtocolError) as info:
                ev.from_wire(short, "server")
            assert info.value.code == Code.BAD_FIELD, (kind, missing)
        for extra in others:
            with pytest.raises(RemoteProtocolError) as info:
                ev.from_wire({**frame, "act": {**act, extra: values[extra]}}, "server")
            assert info.value.code == Code.BAD_FIELD, (kind, extra)


def test_the_pin_vector_of_section_1() -> None:
    found = blocks()
    pem = next(text for tag, text in found if tag == "pem")
    command = next(text for tag, text in found if tag == "sh" and "openssl x509" in text)
    text = DOC.read_text(encoding="utf-8")
    pin = re.search(r"has the pin `(sha256/[A-Za-z0-9+/=]{44})`", text)
    raw = re.search(
        r"32\s+raw bytes \(what secret rooms bind to, section 4\) are\s+`([0-9a-f]{64})`", text
    )
    assert pin and raw
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    assert pin_of_cert(der) == pin.group(1)  # the code
    assert pin_bytes(pin.group(1)).hex() == raw.group(1)
    # The document's own OpenSSL recipe gives the same pin.
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "cert.pem").write_text(pem)
        out = subprocess.run(
            ["bash", "-c", command], cwd=tmp, capture_output=True, text=True, check=True
        )
    assert "sha256/" + out.stdout.strip() == pin.group(1)


def _frames_of(key: str) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    for tag, text in _blocks_in(region(key)):
        if tag == "hex":
            bodies.extend(FrameDecoder().feed(bytes.fromhex(text)))
    return bodies


def _blocks_in(text: str) -> list[tuple[str, str]]:
    return [(m["tag"], m["text"]) for m in _BLOCK.finditer(text)]


def test_the_secret_transcript_is_made_again_from_the_document_alone() -> None:
    """Every key, proof, tag, signature and ciphertext of section 10's secret room,
    from section 10's inputs and section 4's definitions."""
    given = inputs()
    pin = bytes.fromhex(given["pin"])
    name = _normalise(given["room"]).encode()
    salt = hashlib.sha256(b"anonchat/v1/salt\x00" + pin + b"\x00" + name).digest()[:16]
    pw = unicodedata.normalize("NFKC", given["passphrase"]).encode()
    master = Argon2id(salt=salt, length=32, iterations=3, lanes=4, memory_cost=65536).derive(pw)
    room_id = _hkdf(master, b"anonchat/v1/room_id")
    auth_key, auth = _ed25519(_hkdf(master, b"anonchat/v1/auth_seed"))
    enc_root = _hkdf(master, b"anonchat/v1/enc_root")
    owner_mac = _hkdf(master, b"anonchat/v1/owner")
    keys = {
        name: _ed25519(bytes.fromhex(given[f"{name}_seed"])) for name in ("alice", "bob", "owner")
    }
    owner = keys["owner"][1]
    owner_tag = hmac.digest(owner_mac, b"anonchat/v1/owner\x00" + room_id + owner, "sha256")

    def send_key(sender: bytes) -> bytes:
        return _hkdf(enc_root, b"anonchat/v2/send\x00" + owner + struct.pack(">I", 0) + sender)

    schedule = dict(table("key-schedule"))
    assert schedule["salt"] == salt.hex() and schedule["master"] == master.hex()
    assert schedule["room_id"] == room_id.hex() and schedule["auth"] == auth.hex()
    assert schedule["enc_root"] == enc_root.hex() and schedule["owner_mac"] == owner_mac.hex()
    assert schedule["owner_tag"] == owner_tag.hex()
    assert schedule["send_key(owner, 0, alice)"] == send_key(keys["alice"][1]).hex()

    titles = region("secret-transcript")
    challenges = re.findall(r"`?challenge`?(?: is| carried `challenge`)? ([0-9a-f]{64})", titles)
    assert len(challenges) == 2
    alice_challenge, bob_challenge = (bytes.fromhex(c) for c in challenges)
    draws = {hashlib.sha256(b"anonchat docs challenge %d" % n).digest() for n in range(1, 20)}
    assert {alice_challenge, bob_challenge} <= draws  # as the inputs table says
    join = b"anonchat/v1/join\x00" + room_id

    frames = _frames_of("secret-transcript")
    checked = {"create": 0, "join": 0, "seal": 0, "sealed": 0, "act": 0}
    by_key = {public: (who, key) for who, (key, public) in keys.items()}
    for body in frames:
        if body["t"] == "secret_create":
            signed = join + alice_challenge + pin
            assert body["room"] == room_id and body["auth"] == auth
            assert body["proof"] == auth_key.sign(signed)
            assert body["sender"] == keys["alice"][1]
            assert body["key_proof"] == keys["alice"][0].sign(
                b"anonchat/v1/session_key\x00" + signed
            )
            assert body["owner_key"] == owner and body["owner_tag"] == owner_tag
            checked["create"] += 1
        elif body["t"] == "secret_join" and body["room"] == room_id:
            signed = join + bob_challenge + pin
            assert body["proof"] == auth_key.sign(signed)
            assert body["key_proof"] == keys["bob"][0].sign(b"anonchat/v1/session_key\x00" + signed)
            checked["join"] += 1
        elif body["t"] in ("seal", "sealed"):
            # A seal is alice's or bob's by the connection; a sealed names its sender.
            sender = body.get("sender")
            candidates = [sender] if sender else [keys["alice"][1], keys["bob"][1]]
            assert any(
                _opens(body, s, room_id, owner, send_key(s), by_key, given) for s in candidates
            )
            checked[body["t"]] += 1
        elif body["t"] in ("secret_act", "secret_acted"):
            act = body["act"]
            kinds = {"kick": 1, "ban": 2, "op": 3, "mode": 4}
            message = (
                b"anonchat/v1/owner_act\x00"
                + room_id
                + owner
                + struct.pack(
                    ">QB32sBIB",
                    act["counter"],
                    kinds[act["kind"]],
                    act.get("target", bytes(32)),
                    int(act.get("locked", False)),
                    act.get("slow", 0),
                    int(act.get("history", False)),
                )
            )
            who, signer = by_key[act["actor"]]
            assert act["sig"] == signer.sign(message), who
            checked["act"] += 1
    assert all(checked.values()), checked


def _opens(
    body: dict[str, Any],
    sender: bytes,
    room_id: bytes,
    owner: bytes,
    key: bytes,
    by_key: dict[bytes, tuple[str, Ed25519PrivateKey]],
    given: dict[str, str],
) -> bool:
    """Section 4, "A sealed message": check one seal or sealed against a sender."""
    kind = body["kind"].encode()
    ad = (
        b"anonchat/v2/msg\x00"
        + room_id
        + owner
        + struct.pack(">I", body["epoch"])
        + sender
        + struct.pack(">Q", body["counter"])
        + bytes([len(kind)])
        + kind
    )
    nonce = body["counter"].to_bytes(12, "big")
    try:
        plaintext = ChaCha20Poly1305(key).decrypt(nonce, body["ct"], ad)
    except InvalidTag:
        return False
    who, signer = by_key[sender]
    assert body["sig"] == signer.sign(ad + body["ct"])
    size = int.from_bytes(plaintext[:2], "big")
    record, padding = plaintext[2 : 2 + size], plaintext[2 + size :]
    assert len(plaintext) in (256, 512, 1024, 2048, 4096) and padding == bytes(len(padding))
    assert len(plaintext) == min(b for b in (256, 512, 1024, 2048, 4096) if b >= 2 + size)
    nick = record[1 : 1 + record[0]].decode()
    ts = int.from_bytes(record[1 + record[0] : 9 + record[0]], "big")
    body_text = record[9 + record[0] :].decode()
    assert nick == who and ts == int(given["ts_ms"])
    assert (body_text == "") == (body["kind"] in ("hello", "here"))
    return True


def test_error_meanings_name_only_requests_that_get_them() -> None:
    """Sections 4, 7 and 8 come from one table (REQUESTS); the prose of section 8
    must not name a request that the table says never gets the code."""
    generator = _generator()
    requests = set(generator.REQUEST_ERRORS)
    for code, meaning in generator.CODE_MEANINGS.items():
        text = re.sub(r"kinds? `[a-z_]+`( or `[a-z_]+`)?", "", meaning)  # kinds, not requests
        named = set(re.findall(r"`([a-z_]+)`", text)) & requests
        for name in named - {"hello"}:
            assert code in generator.REQUEST_ERRORS[name], (code, name)
    for name, codes in generator.REQUEST_ERRORS.items():
        assert not set(codes) & FATAL_CODES, name
        assert len(set(codes)) == len(codes), name


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_protocol_examples", GENERATOR)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    return generator


@pytest.mark.parametrize(
    "doc",
    ["docs/security.md", "docs/protocol.md", "README.md", "docs/tui.md", "docs/operations.md"],
)
def test_every_test_a_document_names_exists(doc: str) -> None:
    """security.md names, for each guarantee, the test that holds it: a renamed
    or deleted test must not leave a claim without one."""
    root = DOCS.parent
    text = (root / doc).read_text(encoding="utf-8")
    sources = {p.relative_to(root).as_posix(): p.read_text() for p in root.glob("tests/**/*.py")}
    everywhere = "\n".join(sources.values())
    current: str | None = None
    missing = []
    for m in re.finditer(r"(tests/[\w/]+\.py)?(::)?(?<![\w/])(test_\w+)(?!\w|\.py)", text):
        path, sep, name = m.groups()
        if path:
            current = path
        source = sources.get(current or "", "") if (path or sep) else everywhere
        if not re.search(rf"def {name}\b", source):
            missing.append(f"{path or current or '?'}::{name}")
    assert not missing, f"{doc} names tests that do not exist: {missing}"
