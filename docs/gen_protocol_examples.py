"""Regenerate the generated parts of ``docs/protocol.md`` from the code.

Run from the repository root::

    python docs/gen_protocol_examples.py          # rewrite docs/protocol.md in place
    python docs/gen_protocol_examples.py --check  # exit 1 if the document is stale

The document marks each generated part with a pair of HTML comments::

    <!-- gen:KIND:ARG -->
    ...replaced on every run...
    <!-- /gen -->

Kinds:

``example:NAME``
    a hex dump of one or more frames from :data:`EXAMPLES`, encoded by
    ``anonchat.wire.encode_frame(frame.to_wire())``, and the decoded map as JSON;
``fields:CLASS``
    the field table of a frame or record class of :mod:`anonchat.events`;
``codes``, ``limits``, ``schema-limits``
    the error-code and limit tables (from :mod:`anonchat.errors` and
    :class:`anonchat.daemon.config.Limits`);
``malformed``
    what the server's protocol object answers to broken input;
``transcript``, ``secret-transcript``
    a conversation with a real in-process daemon on loopback (clock and the
    hello's random ``challenge`` fixed), in a public room and in a secret room
    (real keys, proofs and ciphertext; fixed session keys and timestamps).

Everything else in the document is prose and is left alone.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import itertools
import json
import re
import struct
import sys
import unicodedata
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, get_args, get_origin
from unittest import mock

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from anonchat import __version__
from anonchat import events as ev
from anonchat.acts import owner_act
from anonchat.crypto import (
    Identity,
    Sealer,
    derive_room_keys,
    fingerprint,
    key_proof,
    long_fingerprint,
    master_key,
    normalize_room,
    room_salt,
    safety_number,
    sign_owner_action,
)
from anonchat.daemon import Config, Daemon, Limits, bus, session
from anonchat.daemon.session import SEAL_KINDS
from anonchat.direct import DmIdentity, DmPeers
from anonchat.errors import FATAL_CODES, Code, RemoteProtocolError
from anonchat.protocol import Connection
from anonchat.wire import HEADER, HEADER_SIZE, FrameDecoder, encode_frame

DOC = Path(__file__).resolve().parent / "protocol.md"

#: A fixed clock for examples: 2026-01-01T12:00:00Z in milliseconds.
T0 = 1_767_268_800_000

CLIENT_NAME = f"anonchat/{__version__}"
SERVER_NAME = f"anonchatd/{__version__}"

# --------------------------------------------------------------------------
# Example frames: every frame class has at least one.

# Fixed stand-ins for keys and ciphertext, so the examples never change; real
# ones come from anonchat/crypto.py and look just as random.
CHALLENGE = bytes(range(32))
TOKEN = bytes(range(200, 216))
TOKEN2 = bytes(range(216, 232))
ROOM_ID = bytes.fromhex("2385bcb0d12cdc78de05a24d98959fea00689185d3108194153ccaae1876cc5d")
AUTH_KEY = bytes(range(32, 64))
SESSION_KEY = bytes(range(64, 96))
OTHER_KEY = bytes(range(96, 128))
PROOF = bytes(range(128, 192))
SIG = bytes(range(192, 256))
KEY_PROOF = bytes(range(64, 128))
OWNER_KEY = bytes(range(160, 192))
OWNER_TAG = bytes(range(224, 256))
GRANT = ev.OwnerAct(kind="op", counter=1, actor=OWNER_KEY, sig=PROOF, target=SESSION_KEY)
KICK_ACT = ev.OwnerAct(kind="kick", counter=2, actor=SESSION_KEY, sig=SIG, target=OTHER_KEY)
MODE_ACT = ev.OwnerAct(
    kind="mode", counter=3, actor=SESSION_KEY, sig=SIG, locked=True, slow=10, history=True
)
SEALED_256 = bytes((7 * i) % 256 for i in range(256 + 16))

# Direct messages: real keys from fixed seeds, a real sealed message (section 4,
# "Direct messages", gives the same vector; tests/test_direct.py checks it).
DM_ALICE = DmIdentity.from_seeds(bytes([1]) * 32, bytes([2]) * 32)
DM_BOB = DmIdentity.from_seeds(bytes([3]) * 32, bytes([4]) * 32)
DM_COUNTER, DM_CT = DmPeers(DM_ALICE).seal(DM_BOB.card, "alice", T0, "hi bob")

EXAMPLES: dict[str, list[ev.Frame]] = {
    "ping": [ev.Ping(n=1)],
    "pong": [ev.Pong(n=1)],
    "bye-client": [ev.Bye(code="quit", msg="see you")],
    "bye-server": [ev.Bye(code=Code.SHUTDOWN, msg="the server is shutting down")],
    "hello-client": [ev.ClientHello(v=ev.PROTOCOL_VERSION, client=CLIENT_NAME, nick="alice")],
    "hello-client-minimal": [ev.ClientHello(v=ev.PROTOCOL_VERSION)],
    "nick": [ev.SetNick(id=4, nick="alice_")],
    "list": [ev.ListRooms(id=2)],
    "create": [ev.Create(id=1, room="lobby", topic="say hi")],
    "join": [ev.Join(id=1, room="lobby")],
    "leave": [ev.Leave(id=6, room="lobby")],
    "topic": [ev.SetTopic(id=5, room="lobby", topic="general chat")],
    "who": [ev.Who(id=3, room="lobby")],
    "say": [ev.Say(id=7, room="lobby", text="héllo, wörld")],
    "say-me": [ev.Say(id=8, room="lobby", text="waves", me=True)],
    "hello-server": [
        ev.ServerHello(
            v=ev.PROTOCOL_VERSION,
            server=SERVER_NAME,
            nick="alice",
            max_frame=Limits().max_frame,
            max_text=Limits().max_text,
            ping_interval=int(Limits().ping_interval),
            challenge=CHALLENGE,
            token=TOKEN,
            resume_window=int(Limits().resume_window),
            msg_burst=Limits().msg_burst,
            msg_interval_us=round(1_000_000 / Limits().msg_rate),
        )
    ],
    "hello-server-resumed": [
        ev.ServerHello(
            v=ev.PROTOCOL_VERSION,
            server=SERVER_NAME,
            nick="alice",
            max_frame=Limits().max_frame,
            max_text=Limits().max_text,
            ping_interval=int(Limits().ping_interval),
            challenge=CHALLENGE,
            token=TOKEN2,
            resumed=True,
            resume_window=int(Limits().resume_window),
        )
    ],
    "hello-client-resume": [
        ev.ClientHello(
            v=ev.PROTOCOL_VERSION,
            client=CLIENT_NAME,
            resume=TOKEN,
            seen=[
                ev.Seen(seq=42, room="lobby"),
                ev.Seen(seq=4, secret=ROOM_ID),
                ev.Seen(seq=3, dm=True),
            ],
        )
    ],
    "dm_key": [
        ev.DmKey(
            id=2,
            sign=DM_ALICE.card.sign,
            dh=DM_ALICE.card.dh,
            sig=DM_ALICE.card.sig,
            proof=DM_ALICE.proof(CHALLENGE, bytes(32)),
        )
    ],
    "dm_lookup": [ev.DmLookup(id=16, nick="bob")],
    "dm_lookup-member": [ev.DmLookup(id=17, room=ROOM_ID, member=OTHER_KEY)],
    "dm_card": [
        ev.DmCard(id=16, nick="bob", sign=DM_BOB.card.sign, dh=DM_BOB.card.dh, sig=DM_BOB.card.sig)
    ],
    "dm_send": [ev.DmSend(id=18, to=DM_BOB.card.sign, counter=DM_COUNTER, ct=DM_CT)],
    "dm": [
        ev.Dm(
            seq=1,
            ts=T0,
            nick="alice",
            sign=DM_ALICE.card.sign,
            dh=DM_ALICE.card.dh,
            sig=DM_ALICE.card.sig,
            counter=DM_COUNTER,
            ct=DM_CT,
        )
    ],
    "missed-dm": [ev.Missed(first=1, last=2, dm=True)],
    "missed": [ev.Missed(first=43, last=97, room="lobby")],
    "kick": [ev.Kick(id=12, room="lobby", nick="troll", msg="no spam here")],
    "kick-ban": [ev.Kick(id=13, room="lobby", nick="troll", ban=True)],
    "op": [ev.Op(id=14, room="lobby", nick="bob")],
    "mode": [ev.RoomMode(id=15, room="lobby", locked=True, slow=10)],
    "mode_changed": [
        ev.ModeChanged(
            room="lobby",
            seq=47,
            ts=T0 + 15_000,
            nick="alice",
            locked=True,
            slow=10,
            history=True,
        )
    ],
    "presence-kick": [
        ev.Presence(
            room="lobby",
            seq=48,
            ts=T0 + 16_000,
            kind="kick",
            nick="troll",
            msg="no spam here",
            by="alice",
        )
    ],
    "ok": [ev.Ok(id=4)],
    "ok-say": [ev.Ok(id=7, seq=42)],
    "error-request": [ev.Error(code=Code.NICK_TAKEN, msg="the nick bob is taken", id=4)],
    "error-fatal": [ev.Error(code=Code.IDLE_TIMEOUT, msg="no frame received for 90 seconds")],
    "rooms": [
        ev.Rooms(
            id=2,
            rooms=[
                ev.RoomInfo(room="lobby", members=12, topic="say hi"),
                ev.RoomInfo(room="rust", members=3, topic=""),
            ],
        )
    ],
    "joined-create": [
        ev.Joined(id=1, room="lobby", topic="say hi", members=["alice"], seq=1, owner=True)
    ],
    "joined": [ev.Joined(id=1, room="lobby", topic="say hi", members=["alice", "bob"], seq=2)],
    "members": [ev.Members(id=3, room="lobby", members=["alice", "bob", "carol"])],
    "msg": [ev.Msg(room="lobby", seq=42, ts=T0, nick="alice", text="héllo, wörld")],
    "msg-me": [ev.Msg(room="lobby", seq=43, ts=T0 + 2_500, nick="alice", text="waves", me=True)],
    "presence-join": [ev.Presence(room="lobby", seq=2, ts=T0, kind="join", nick="bob")],
    "presence-nick": [
        ev.Presence(room="lobby", seq=44, ts=T0 + 4_000, kind="nick", nick="alice", new="alice_")
    ],
    "presence-quit": [
        ev.Presence(room="lobby", seq=45, ts=T0 + 9_000, kind="quit", nick="bob", msg="see you")
    ],
    "secret_create": [
        ev.SecretCreate(
            id=9,
            room=ROOM_ID,
            auth=AUTH_KEY,
            proof=PROOF,
            sender=SESSION_KEY,
            key_proof=KEY_PROOF,
            owner_key=OWNER_KEY,
            owner_tag=OWNER_TAG,
        )
    ],
    "secret_join": [
        ev.SecretJoin(id=9, room=ROOM_ID, proof=PROOF, sender=SESSION_KEY, key_proof=KEY_PROOF)
    ],
    "secret_leave": [ev.SecretLeave(id=11, room=ROOM_ID)],
    "seal": [ev.Seal(id=10, room=ROOM_ID, counter=1, epoch=0, kind="msg", ct=SEALED_256, sig=SIG)],
    "secret_joined": [
        ev.SecretJoined(
            id=9,
            room=ROOM_ID,
            seq=3,
            members=[OTHER_KEY, SESSION_KEY],
            owner_key=OWNER_KEY,
            owner_tag=OWNER_TAG,
            acts=1,
            grants=[GRANT],
        )
    ],
    "secret_act": [ev.SecretAct(id=12, room=ROOM_ID, act=KICK_ACT)],
    "secret_act-mode": [ev.SecretAct(id=13, room=ROOM_ID, act=MODE_ACT)],
    "secret_acted": [ev.SecretActed(room=ROOM_ID, seq=6, ts=T0 + 2_000, act=KICK_ACT)],
    "sealed": [
        ev.Sealed(
            room=ROOM_ID,
            seq=4,
            ts=T0,
            sender=SESSION_KEY,
            counter=1,
            epoch=0,
            kind="msg",
            ct=SEALED_256,
            sig=SIG,
        )
    ],
    "secret_presence": [
        ev.SecretPresence(room=ROOM_ID, seq=5, ts=T0 + 1_000, kind="quit", sender=OTHER_KEY)
    ],
    "topic_changed": [
        ev.TopicChanged(room="lobby", seq=46, ts=T0 + 12_000, nick="alice", topic="general chat")
    ],
}

# --------------------------------------------------------------------------
# Rendering helpers


def hex_lines(frame_bytes: bytes) -> str:
    """One frame as hex: the 4 length bytes on a line, then the body 16 bytes a line."""
    head, body = frame_bytes[:HEADER_SIZE], frame_bytes[HEADER_SIZE:]
    lines = [head.hex(" ")]
    lines += [body[i : i + 16].hex(" ") for i in range(0, len(body), 16)]
    return "\n".join(lines)


def split_frames(data: bytes) -> Iterator[bytes]:
    """Cut a byte stream of complete frames into single frames (prefix included)."""
    pos = 0
    while pos < len(data):
        (length,) = HEADER.unpack_from(data, pos)
        yield data[pos : pos + HEADER_SIZE + length]
        pos += HEADER_SIZE + length


def _bin(value: Any) -> str:
    """msgpack bin shown in JSON (which has no bytes) as "bin:<hex>"."""
    if isinstance(value, bytes):
        return "bin:" + value.hex()
    raise TypeError(f"not JSON: {value!r}")


def as_json(bodies: list[dict[str, Any]]) -> str:
    if len(bodies) == 1:
        return json.dumps(bodies[0], ensure_ascii=False, default=_bin)
    inner = ",\n".join("  " + json.dumps(b, ensure_ascii=False, default=_bin) for b in bodies)
    return f"[\n{inner}\n]"


def dump(data: bytes) -> str:
    """A ```hex block of the frames in ``data`` and a ```json block of their maps."""
    frames = list(split_frames(data))
    hexed = "\n\n".join(hex_lines(f) for f in frames)
    bodies = [ev.from_wire(_decode(f), _receiver(f)).to_wire() for f in frames]
    return f"```hex\n{hexed}\n```\n\n```json\n{as_json(bodies)}\n```"


def _decode(frame_bytes: bytes) -> dict[str, Any]:
    (body,) = FrameDecoder().feed(frame_bytes)
    return body


def _receiver(frame_bytes: bytes) -> ev.Role:
    body = _decode(frame_bytes)
    for role in ("server", "client"):
        try:
            ev.from_wire(body, role)
        except RemoteProtocolError:
            continue
        return role
    raise ValueError(f"not a valid frame for either side: {body!r}")


def render_example(name: str) -> str:
    data = b"".join(encode_frame(f.to_wire()) for f in EXAMPLES[name])
    return dump(data)


# -- field tables -------------------------------------------------------------


def _type_name(kind: Any) -> str:
    if kind is bool:
        return "bool"
    if kind is int:
        return "int"
    if kind is str:
        return "str"
    if kind is bytes:
        return "bin"
    if get_origin(kind) is list:
        (item,) = get_args(kind)
        return f"array of {_type_name(item)}"
    if isinstance(kind, type) and issubclass(kind, ev.Record):
        return f"map ({kind.__name__})"
    raise TypeError(f"no msgpack name for {kind!r}")


def _limit(cls: type, spec: Any) -> str:
    kind = spec.kind
    if kind is int:
        return "0 … 2⁶³−1"
    if kind is bool:
        return "—"
    if kind is str:
        text = f"≤ {spec.max} characters"
        if cls is ev.Presence and spec.name == "kind":
            text += "; one of " + ", ".join(f"`{k}`" for k in sorted(ev.PRESENCE_KINDS))
        if cls is ev.SecretPresence and spec.name == "kind":
            text += "; one of `join`, `leave`, `quit`"  # SecretPresence.__post_init__
        if cls in (ev.Seal, ev.Sealed) and spec.name == "kind":
            kinds = ", ".join(f"`{k}`" for k in sorted(SEAL_KINDS))
            text += f"; the daemon relays {kinds}"
        return text
    if kind is bytes:
        return f"exactly {spec.max} bytes" if spec.exact else f"≤ {spec.max} bytes"
    if get_origin(kind) is list:
        (item,) = get_args(kind)
        each = f", each ≤ {ev.NICK_MAX} characters" if item is str else ""
        if item is bytes:
            each = f", each exactly {ev.KEY_SIZE} bytes"
        return f"≤ {spec.max} items{each}"
    return "see its table"


def _presence(spec: Any) -> str:
    if spec.required:
        return "required"
    if spec.default is None:
        return "optional, left out when unset"
    shown = "false" if spec.default is False else repr(spec.default)
    return f"optional, left out when {shown}"


def render_fields(class_name: str) -> str:
    cls = getattr(ev, class_name)
    rows = ["| field | msgpack type | presence | limit |", "|---|---|---|---|"]
    if issubclass(cls, ev.Frame):
        rows.append(f'| `t` | str | required | `"{cls.TYPE}"` |')
    for spec in cls._FIELDS:
        kind = _type_name(spec.kind)
        rows.append(f"| `{spec.name}` | {kind} | {_presence(spec)} | {_limit(cls, spec)} |")
    if issubclass(cls, ev.Frame):
        who = {"client": "client → server", "server": "server → client", "both": "either side"}
        rows.append("")
        rows.append(f"Sent by: {who[cls.SENDER]}.")
        if cls.TYPE in REQUEST_ERRORS and cls.SENDER == "client":
            rows.append("")
            rows.append(f"Request errors (section 4): {_codes(REQUEST_ERRORS[cls.TYPE])}.")
    return "\n".join(rows)


def render_owner_act_fields() -> str:
    rows = ["| `kind` | must carry | must leave out |", "|---|---|---|"]
    optional = [s.name for s in ev.OwnerAct._FIELDS if not s.required]
    for kind, wanted in ev.OWNER_ACT_FIELDS.items():
        left = [f"`{f}`" for f in optional if f not in wanted]
        carried = ", ".join(f"`{f}`" for f in wanted) or "—"
        rows.append(f"| `{kind}` | {carried} | {', '.join(left)} |")
    return "\n".join(rows)


# -- requests: replies and errors, one table for sections 4, 7 and 8 ---------------

C = Code
#: Each request: its success reply, what else happens, and the request errors
#: the daemon may answer it with, in the order it checks them (anonchat/daemon:
#: session.py, state.py, moderation.py, secret_moderation.py).  Section 4's
#: table, the "Request errors" line of each request in section 7 and the
#: "answers" column of section 8 are all made from this one table.
REQUESTS: list[tuple[type[ev.Frame], str, str, list[Code]]] = [
    (
        ev.SetNick,
        "`ok`",
        "a `presence` of kind `nick` in every room you are in (you get it too), after the "
        "`ok`. `rate_limited`: more than `nick_burst` changes, then one per `nick_interval`, "
        "counted for all the connections of your address together; asking for the nick you "
        "have costs nothing",
        [C.NICK_INVALID, C.RATE_LIMITED, C.NICK_TAKEN],
    ),
    (
        ev.ListRooms,
        "`rooms`",
        "— (`rate_limited`: `list` and `who` together, for all the connections of your "
        "address: `query_burst`, then one per `query_interval`)",
        [C.RATE_LIMITED],
    ),
    (
        ev.Create,
        "`joined` with `owner: true`",
        "the room exists, you are its only member; your join takes `seq` 1",
        [C.RATE_LIMITED, C.TOPIC_INVALID, C.ROOM_INVALID, C.ROOM_EXISTS, C.TOO_MANY_ROOMS],
    ),
    (
        ev.Join,
        "`joined`, then up to `history` recent `msg` frames",
        "a `presence` `join` to the other members, before your `joined` "
        "(a room that does not exist costs no `rate_limited` token)",
        [
            C.RATE_LIMITED,
            C.NO_SUCH_ROOM,
            C.ALREADY_MEMBER,
            C.BANNED,
            C.ROOM_LOCKED,
            C.TOO_MANY_ROOMS,
            C.ROOM_FULL,
        ],
    ),
    (
        ev.Leave,
        "`ok`",
        "a `presence` `leave` to the remaining members; an empty room is forgotten",
        [C.NOT_MEMBER],
    ),
    (
        ev.SetTopic,
        "`ok`",
        "a `topic_changed` to every member, you too, before the `ok`",
        [C.TOPIC_INVALID, C.NOT_MEMBER, C.NOT_OWNER],
    ),
    (
        ev.Who,
        "`members`",
        "— (works for rooms you are not in; `rate_limited` as for `list`)",
        [C.RATE_LIMITED, C.NO_SUCH_ROOM],
    ),
    (
        ev.Say,
        "`ok` with `seq`",
        "a `msg` to every member, you too, before the `ok`",
        [C.RATE_LIMITED, C.TEXT_INVALID, C.TEXT_TOO_LONG, C.NOT_MEMBER, C.SLOW_MODE],
    ),
    (
        ev.Kick,
        "`ok`",
        "a `presence` `kick` (or `ban`) with `by` to every member, the target too; "
        "then the target is out",
        [C.NOT_MEMBER, C.NOT_OWNER, C.NO_SUCH_NICK],
    ),
    (
        ev.Op,
        "`ok`",
        "a `presence` `op` with `by` to every member",
        [C.NOT_MEMBER, C.NOT_OWNER, C.NO_SUCH_NICK],
    ),
    (
        ev.RoomMode,
        "`ok`",
        "a `mode_changed` to every member",
        [C.BAD_MODE, C.NOT_MEMBER, C.NOT_OWNER],
    ),
    (
        ev.SecretCreate,
        "`secret_joined` with `owner: true`",
        "the secret room exists, you are its only member; your join takes `seq` 1",
        [C.RATE_LIMITED, C.BAD_KEY, C.BAD_PROOF, C.ROOM_EXISTS, C.TOO_MANY_ROOMS],
    ),
    (
        ev.SecretJoin,
        "`secret_joined`, then up to `history` recent `sealed` frames",
        "a `secret_presence` `join` to the other members, before your `secret_joined`",
        [
            C.RATE_LIMITED,
            C.BAD_KEY,
            C.BAD_PROOF,
            C.JOIN_DENIED,
            C.ALREADY_MEMBER,
            C.BANNED,
            C.ROOM_LOCKED,
            C.TOO_MANY_ROOMS,
            C.ROOM_FULL,
        ],
    ),
    (
        ev.SecretLeave,
        "`ok`",
        "a `secret_presence` `leave` to the remaining members; an empty room is forgotten",
        [C.NOT_MEMBER],
    ),
    (
        ev.Seal,
        "`ok` with `seq`",
        "a `sealed` to every member, you too, before the `ok` (`rate_limited`: kinds `hello` "
        "and `here` from the announcement budget, the others from the message budget; "
        "`text_invalid`: a `kind` the daemon does not relay)",
        [C.RATE_LIMITED, C.NOT_MEMBER, C.TEXT_INVALID, C.ROOM_CLOSED, C.SLOW_MODE],
    ),
    (
        ev.SecretAct,
        "`ok`",
        "a `secret_acted` to every member, you and a kicked target too, before the `ok`; "
        "then a kicked or banned target is out (`rate_limited`: it takes a token from the "
        "message budget)",
        [
            C.RATE_LIMITED,
            C.NOT_MEMBER,
            C.BAD_ACTION,
            C.BAD_KEY,
            C.NOT_OWNER,
            C.NO_SUCH_NICK,
            C.BAD_MODE,
            C.TOO_MANY_OWNERS,
        ],
    ),
    (
        ev.DmKey,
        "`ok`",
        "the session can receive direct messages: `dm_lookup` hands its card out",
        [C.BAD_KEY, C.BAD_PROOF],
    ),
    (
        ev.DmLookup,
        "`dm_card`",
        "— (`rate_limited`: as for `list` and `who`, from the same budget)",
        [C.RATE_LIMITED, C.NOT_MEMBER, C.NO_SUCH_NICK],
    ),
    (
        ev.DmSend,
        "`ok`",
        "a `dm` to the session holding the key `to`, numbered in its own sequence "
        "(`rate_limited`: `dm_burst`, then `dm_rate` per second, a budget of its own)",
        [C.RATE_LIMITED, C.TEXT_TOO_LONG, C.TEXT_INVALID, C.BAD_KEY, C.RECIPIENT_LEFT],
    ),
]
REQUEST_ERRORS: dict[str, list[Code]] = {cls.TYPE: errors for cls, _, _, errors in REQUESTS}


def _codes(codes: list[Code]) -> str:
    return ", ".join(f"`{c.value}`" for c in codes)


def render_requests() -> str:
    rows = [
        "| request | success reply | what else happens "
        "| request errors, in the order first checked |",
        "|---|---|---|---|",
    ]
    for cls, reply, more, errors in REQUESTS:
        rows.append(f"| `{cls.TYPE}` | {reply} | {more} | {_codes(errors)} |")
    return "\n".join(rows)


def _answers(code: Code) -> str:
    names = [f"`{name}`" for name, errors in REQUEST_ERRORS.items() if code in errors]
    if code in (Code.NICK_INVALID, Code.NICK_TAKEN):
        names.insert(0, "`hello`")
    return ", ".join(names) or "—"


# -- error codes and limits ----------------------------------------------------------

CODE_MEANINGS: dict[Code, str] = {
    Code.NOT_OWNER: "the request needs an owner of the room (topic, kick, op, mode); "
    "`secret_act`: the key that signed the action has no owner rights in the room",
    Code.NO_SUCH_NICK: "nobody with that nick is in the room (or you tried to kick yourself); "
    "`secret_act`: no member of the room has the target session key; `dm_lookup`: nobody "
    "holds that nick (or is that member of the secret room), or that session registered no "
    "DM key",
    Code.ROOM_LOCKED: "the room is locked: no new members",
    Code.BANNED: "an owner banned this session (in a secret room: this session or this "
    "session key) from the room for the room's lifetime",
    Code.SLOW_MODE: "slow mode (`say`; `seal` of kind `msg` or `me`): the sentence says "
    "how many seconds to wait",
    Code.BAD_MODE: "a mode value out of range (slow mode is at most 3600 seconds)",
    Code.FRAME_TOO_LARGE: "a length prefix above the receiver's `max_frame`; "
    "refused before the body is read",
    Code.EMPTY_FRAME: "a length prefix of 0",
    Code.BAD_FRAME: "the body is not one valid msgpack map with a str `t` "
    "(bad msgpack, trailing bytes, ext type, not a map, no `t`)",
    Code.UNKNOWN_TYPE: "`t` names no frame type of this version",
    Code.BAD_FIELD: "a field is missing, unknown, of the wrong type or over its limit",
    Code.UNEXPECTED_FRAME: "a frame type the receiver's side never accepts "
    "(e.g. a client sending `ok`), or a second `hello`",
    Code.HELLO_REQUIRED: "a frame other than `hello`/`bye` before the peer's `hello`",
    Code.UNSUPPORTED_VERSION: f"`hello.v` is not {ev.PROTOCOL_VERSION}",
    Code.TRUNCATED: "the connection ended in the middle of a frame",
    Code.HELLO_TIMEOUT: "no `hello` within `hello_timeout` seconds of connecting",
    Code.IDLE_TIMEOUT: "no frame received for `idle_timeout` seconds",
    Code.SLOW_FRAME: "a frame was not received whole within `frame_timeout` seconds of "
    "its first byte, or its unfinished bytes would take the daemon past `max_unfinished` "
    "(held for all connections together): send each frame whole",
    Code.SENDQ_EXCEEDED: "the client read too slowly (more than `sendq` bytes waiting); "
    "the connection is aborted at once, so this code is only logged, never sent",
    Code.SERVER_FULL: "`max_connections` reached; sent instead of a `hello`, then close",
    Code.TOO_MANY_CONNECTIONS: "`max_per_address` connections are open from the client's "
    "IPv4 address or IPv6 /64; sent instead of a `hello`, then close",
    Code.FLOOD: "the connection went on sending after more than `flood_strikes` "
    "`rate_limited` refusals (they are forgiven at `msg_rate` per second)",
    Code.SHUTDOWN: "the daemon is stopping; sent in a `bye` frame, not an `error`",
    Code.RESTART: (
        "a node of a service of several is stopping (a rolling restart, or all "
        "of them at once), or lost touch with the others; sent in a `bye`. A "
        "stopping node's session is kept for `resume_window` seconds: reconnect "
        "(to this address or another node) and resume it"
    ),
    Code.INTERNAL: "a bug in the daemon while handling this connection",
    Code.NICK_INVALID: "the nick breaks the nick rules (empty, too long, whitespace, "
    "control or format characters, ...)",
    Code.NICK_TAKEN: "another connection holds a nick with the same key, or one that looks "
    "like it (a claim in common: section 7, nick rules)",
    Code.ROOM_INVALID: "`create`: the room name breaks the name rules",
    Code.ROOM_EXISTS: "`create`: a room with the same key exists; `secret_create`: "
    "a secret room with the same id (same name and passphrase) exists",
    Code.NO_SUCH_ROOM: "`join`/`who`: no room with that key",
    Code.NOT_MEMBER: "you are not in that room (`dm_lookup`: the secret room it names)",
    Code.ALREADY_MEMBER: "`join`/`secret_join`: you are in that room already",
    Code.TEXT_INVALID: "`say`: text empty or blank, or with control characters "
    "other than tab and newline; `seal`: a `kind` the daemon does not relay; `dm_send`: "
    "a `ct` whose size is not a padding bucket plus 16 (272, 528, 1040, 2064 or 4112)",
    Code.TEXT_TOO_LONG: "`say`: text longer than `max_text` UTF-8 bytes; `dm_send`: a `ct` "
    "longer than `dm_max_bytes`",
    Code.TOPIC_INVALID: "`create`/`topic`: a control or line-separator character in the topic",
    Code.TOO_MANY_ROOMS: "`create`/`join`/`secret_create`/`secret_join`: you are in "
    "`max_rooms_per_session` rooms (public and secret together), or (`create`, "
    "`secret_create`) the daemon holds `max_rooms` rooms of that sort",
    Code.ROOM_FULL: "`join`/`secret_join`: the room has `max_members_per_room` members",
    Code.RATE_LIMITED: "`say`/`seal`/`secret_act`: more than `msg_burst` messages, then "
    "`msg_rate` per second (a `seal` of kind `hello` or `here`: more than `announce_burst` "
    "announcements, then `announce_rate` per second); "
    "`join`/`create`: more than `room_join_burst`, then one per "
    "`room_join_interval`; "
    "`secret_create`/`secret_join`: more than `join_burst` attempts, then one per "
    "`join_interval`; `nick`: more than `nick_burst` changes, then one per `nick_interval`; "
    "`list`/`who`/`dm_lookup`: more than `query_burst`, then one per `query_interval`; "
    "`dm_send`: more than `dm_burst`, then `dm_rate` per second; "
    "the sentence says when to try again",
    Code.JOIN_DENIED: "`secret_join`: no such room or wrong passphrase; the daemon gives "
    "both the same answer",
    Code.BAD_PROOF: "`secret_create` with a `proof` that does not verify under its own "
    "`auth`; `secret_create`/`secret_join` with a `key_proof` that does not verify under "
    "its `sender` for this room, this connection's challenge and this server's pin; "
    "`dm_key`: a card whose `sig` or `proof` does not verify under its `sign` (the proof "
    "for this connection's challenge and this server's pin)",
    Code.BAD_KEY: "`secret_create` (`auth`, `sender`, `owner_key`), `secret_join` "
    "(`sender`) or `secret_act` (`actor`, `target`): a key that is not a valid Ed25519 "
    "public key -- not 32 bytes encoding a point of the prime-order subgroup (security.md, "
    "small-order keys); judged right after the rate limit in `secret_create` and "
    "`secret_join`, after membership and the counter in `secret_act`; `dm_key`: a `sign` "
    "that is not a valid Ed25519 key, or this session has another DM key already, or "
    "another session holds this one; `dm_send`: the sender sent no `dm_key`",
    Code.BAD_ACTION: "`secret_act`: the action's `counter` is not the room's next one "
    "(replayed, or another owner acted first: sign again), or its signature does not "
    "verify for this room, this owner key and these fields",
    Code.TOO_MANY_OWNERS: "`secret_act` of kind `op`: the secret room has "
    "`OWNERS_MAX` = 64 owner grants already",
    Code.ROOM_CLOSED: "`seal`: an owner closed the secret room (an owner action of kind "
    "`close`, sent by `/secret rotate`): it takes no new sealed message",
    Code.RECIPIENT_LEFT: "`dm_send`: no session holds the DM key `to` any more (it quit, "
    "or its resume window ran out)",
}


def render_codes() -> str:
    missing = set(Code) ^ set(CODE_MEANINGS)
    assert not missing, f"describe these codes in CODE_MEANINGS: {sorted(missing)}"
    rows = ["| code | fatal | answers | meaning |", "|---|---|---|---|"]
    for code in Code:
        if code in FATAL_CODES:
            fatal = "yes"
        elif code in (Code.NICK_INVALID, Code.NICK_TAKEN):
            fatal = "no (yes in reply to `hello`)"
        else:
            fatal = "no"
        answers = "— (fatal)" if code in FATAL_CODES else _answers(code)
        rows.append(f"| `{code.value}` | {fatal} | {answers} | {CODE_MEANINGS[code]} |")
    return "\n".join(rows)


SCHEMA_LIMITS: dict[str, str] = {
    "NICK_MAX": "characters of a nick (every `nick`/`new` field, every item of `members`)",
    "ROOM_MAX": "characters of a room name",
    "TOPIC_MAX": "characters of a topic",
    "TEXT_MAX": "characters of a message text (the daemon's `max_text` is tighter, in bytes)",
    "SHORT_MAX": "characters of `client`, `server`, `code`, `msg` of `bye`/`error`/`presence`",
    "LIST_MAX": "items of `members` and `rooms`",
    "KEY_SIZE": "bytes of a secret room id, a join key (`auth`), a session key "
    "(`sender`, every item of `secret_joined.members`) and of the hello's `challenge`",
    "SIG_SIZE": "bytes of a join `proof` and of a message signature `sig`",
    "SEALED_MAX": "bytes of a ciphertext `ct`: the largest padding bucket (4096) "
    "plus the 16-byte tag",
    "OWNERS_MAX": "owner grants of a secret room (items of `secret_joined.grants`); the "
    "daemon refuses an `op` of a key not yet granted past it with `too_many_owners`",
}


def render_schema_limits() -> str:
    rows = ["| constant | value | bounds |", "|---|---|---|"]
    for name, what in SCHEMA_LIMITS.items():
        rows.append(f"| `events.{name}` | {getattr(ev, name)} | {what} |")
    return "\n".join(rows)


DAEMON_LIMITS: dict[str, str] = {
    "max_frame": "largest frame body accepted or sent, bytes (advertised in `hello`)",
    "max_text": "UTF-8 bytes of one message text (advertised in `hello`)",
    "sendq": "bytes waiting for a slow reader before it is dropped",
    "max_connections": "connections held at once; more get `server_full`",
    "max_rooms_per_session": "rooms one connection may be in",
    "max_members_per_room": "members of one room",
    "max_rooms": "public rooms on the daemon; secret rooms are counted apart, with the same limit",
    "hello_timeout": "seconds to send `hello` after connecting",
    "ping_interval": "seconds of silence before the daemon pings (advertised in `hello`, "
    "as a whole number)",
    "idle_timeout": "seconds of silence before the daemon closes with `idle_timeout`",
    "read_size": "bytes read from a socket at once (not visible on the wire)",
    "resume_window": "seconds a session that lost its connection keeps its nick and rooms, "
    "waiting to be resumed (advertised in `hello`; 0 turns resuming off)",
    "ring_frames": "recent events each room keeps in memory, for resuming and for history",
    "ring_bytes": "bytes those recent events may take per room",
    "history": "recent messages a newcomer receives right after joining (0: none)",
    "join_burst": "secret-room join or create attempts allowed at once per connection",
    "join_interval": "seconds per further attempt once the burst is spent (`rate_limited`)",
    "msg_burst": "messages (`say`, `seal` of kind `msg`/`me`, `secret_act`) one "
    "connection may send at once",
    "msg_rate": "messages per second once the burst is spent (`rate_limited`)",
    "announce_burst": "announcements (`seal` of kind `hello`/`here`) one connection may "
    "send at once: their own budget, apart from messages (not in `hello`: a client "
    "stays under the default)",
    "announce_rate": "announcements per second once the burst is spent (`rate_limited`)",
    "room_join_burst": "public-room `join`s and `create`s one connection may make at once",
    "room_join_interval": "seconds per further join once the burst is spent (`rate_limited`)",
    "bytes_burst": "bytes one connection may send at once (not visible on the wire)",
    "bytes_rate": "bytes per second once the burst is spent; the daemon stops reading "
    "from the connection until it is due (nothing is refused)",
    "flood_strikes": "`rate_limited` refusals (forgiven at `msg_rate` per second) after "
    "which the connection is closed with `flood`",
    "max_per_address": "connections from one IPv4 address or IPv6 /64; more get "
    "`too_many_connections`",
    "max_resumable_per_address": "sessions that lost their connection and wait to be "
    "resumed (each with its nick and rooms), per IPv4 address or IPv6 /64; past it the "
    "address's oldest one ends",
    "max_resumable": "such sessions on one node in all; past it the oldest one ends",
    "nick_burst": "nick changes one address may make at once (all its connections together)",
    "nick_interval": "seconds per further nick change once the burst is spent (`rate_limited`)",
    "query_burst": "`list` and `who` requests one address may make at once (all its "
    "connections together)",
    "query_interval": "seconds per further `list` or `who` once the burst is spent "
    "(`rate_limited`)",
    "max_handshakes_per_address": "TLS handshakes in progress from one IPv4 address or "
    "IPv6 /64; more are closed before the handshake (not visible as a frame)",
    "max_handshakes": "TLS handshakes in progress in all; more are closed before the handshake",
    "connect_burst": "connections one IPv4 address or IPv6 /64 may open at once; more are "
    "closed before the handshake (not visible as a frame)",
    "connect_interval": "seconds per further connection once the burst is spent",
    "dm_burst": "direct messages (`dm_send`) one connection may send at once (advertised in "
    "`hello`)",
    "dm_rate": "direct messages per second once the burst is spent (`rate_limited`; advertised "
    "in `hello` as `dm_interval_us`)",
    "dm_max_bytes": "largest `ct` of a `dm_send`, bytes, 272 to 4112 (`text_too_long`; "
    "advertised in `hello` as `dm_max`)",
    "dm_ring": "direct messages kept per recipient, in memory, for a resume; older ones are "
    "reported as `missed` with `dm`",
    "frame_timeout": "seconds a frame has, from its first byte, to arrive whole; else `slow_frame`",
    "max_unfinished": "bytes of unfinished frames the daemon holds for all connections "
    "together; a connection whose unfinished frame would pass it gets `slow_frame`",
}


def render_limits() -> str:
    fields = dataclasses.fields(Limits)
    missing = {f.name for f in fields} ^ set(DAEMON_LIMITS)
    assert not missing, f"describe these limits in DAEMON_LIMITS: {sorted(missing)}"
    rows = ["| limit | default | meaning |", "|---|---|---|"]
    for f in fields:
        default = f.default
        shown = f"{default:,}" if isinstance(default, int) else f"{default:g}"
        rows.append(f"| `{f.name}` | {shown} | {DAEMON_LIMITS[f.name]} |")
    return "\n".join(rows)


# -- malformed input -------------------------------------------------------------

HELLO = encode_frame(ev.ClientHello(v=ev.PROTOCOL_VERSION).to_wire())


def _raw(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


MALFORMED: list[tuple[str, bytes, bool]] = [
    # (what, bytes after a valid client hello or from the start, hello first?)
    ("length 0", b"\x00\x00\x00\x00", True),
    ("length 65 537 (body never read)", b"\x00\x01\x00\x01", True),
    ("body is not msgpack", _raw(b"\xc1"), True),
    ("body is nil, not a map", _raw(b"\xc0"), True),
    ("two objects in one body", _raw(b"\x81\xa1t\xa4list\x01"), True),
    ("an ext value", _raw(b"\x83\xa1t\xa4list\xa2id\x01\xa1x\xd4\x05\x00"), True),
    ("map without `t`", _raw(b"\x81\xa2id\x01"), True),
    ('`{"t": "dance"}`', _raw(b"\x81\xa1t\xa5dance"), True),
    ('`{"t": "ok", "id": 1}` from a client', _raw(b"\x82\xa1t\xa2ok\xa2id\x01"), True),
    ('`{"t": "list"}` (no `id`)', _raw(b"\x81\xa1t\xa4list"), True),
    ('`{"t": "list", "id": -1}`', _raw(b"\x82\xa1t\xa4list\xa2id\xff"), True),
    ('`{"t": "list", "id": 1, "x": 1}`', _raw(b"\x83\xa1t\xa4list\xa2id\x01\xa1x\x01"), True),
    (
        '`{"t": "say", …, "me": nil}`',
        _raw(b"\x85\xa1t\xa3say\xa2id\x01\xa4room\xa1r\xa4text\xa1x\xa2me\xc0"),
        True,
    ),
    ('`{"t": "list", "id": 1}` before `hello`', _raw(b"\x82\xa1t\xa4list\xa2id\x01"), False),
    ('`{"t": "hello", "v": 1}`', _raw(b"\x82\xa1t\xa5hello\xa1v\x01"), False),
    ("a second `hello`", HELLO, True),
    ("end of stream after 2 bytes of a prefix", b"\x00\x00", True),
]


def render_malformed() -> str:
    rows = ["| input | bytes | error frame queued by the server |", "|---|---|---|"]
    for what, data, hello_first in MALFORMED:
        conn = Connection("server")
        if hello_first:
            conn.receive_data(HELLO)
        conn.receive_data(data)
        if data == b"\x00\x00":
            conn.receive_data(b"")
        (reply,) = (ev.from_wire(_decode(f), "client") for f in split_frames(conn.data_to_send()))
        assert isinstance(reply, ev.Error) and reply.id is None
        rows.append(f"| {what} | `{data.hex(' ')}` | `{reply.code}`: {reply.msg} |")
    return "\n".join(rows)


# -- a real conversation ---------------------------------------------------------


class _Peer:
    """A raw loopback connection driven by the sans-I/O client Connection."""

    def __init__(self, name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.name = name
        self.reader = reader
        self.writer = writer
        self.conn = Connection("client")
        self.buf = bytearray()

    async def send(self, *frames: ev.Frame) -> bytes:
        for frame in frames:
            self.conn.send(frame)
        data = self.conn.data_to_send()
        self.writer.write(data)
        await self.writer.drain()
        return data

    async def expect(self, count: int) -> bytes:
        """Read until ``count`` whole frames arrived; return exactly their bytes."""
        async with asyncio.timeout(5):
            while True:
                frames = _whole_frames(bytes(self.buf))
                if len(frames) >= count:
                    data = b"".join(frames[:count])
                    del self.buf[: len(data)]
                    self.conn.receive_data(data)
                    assert self.conn.error is None, self.conn.error
                    return data
                chunk = await self.reader.read(65536)
                assert chunk, f"{self.name}: connection closed early"
                self.buf += chunk

    async def expect_eof(self) -> None:
        async with asyncio.timeout(5):
            assert not self.buf and not await self.reader.read(65536)


def _whole_frames(data: bytes) -> list[bytes]:
    frames = []
    pos = 0
    while len(data) - pos >= HEADER_SIZE:
        (length,) = HEADER.unpack_from(data, pos)
        if len(data) - pos - HEADER_SIZE < length:
            break
        frames.append(data[pos : pos + HEADER_SIZE + length])
        pos += HEADER_SIZE + length
    return frames


#: A step of a conversation: a title, then (direction, bytes written) in order;
#: empty bytes make the direction a remark shown instead of a dump.
Step = tuple[str, list[tuple[str, bytes]]]


def _fixed_challenges() -> Callable[[int], bytes]:
    """Stand-in for ``secrets.token_bytes``: a fixed, different challenge per connection."""
    counter = itertools.count(1)

    def token_bytes(n: int) -> bytes:
        return hashlib.sha256(b"anonchat docs challenge %d" % next(counter)).digest()[:n]

    return token_bytes


async def _converse(script: Callable[[Daemon], Awaitable[list[Step]]]) -> list[Step]:
    ticks = iter(range(T0, T0 + 1_000_000, 1_500))
    clock: Callable[[], int] = lambda: next(ticks)  # noqa: E731
    with (
        mock.patch.object(bus, "now_ms", clock),
        mock.patch.object(session, "now_ms", clock),  # (a say is applied there at once)
        # Session.__init__ draws the hello's challenge with secrets.token_bytes.
        mock.patch("anonchat.daemon.session.secrets.token_bytes", _fixed_challenges()),
    ):
        daemon = Daemon(Config(host="127.0.0.1", port=0, **_plain()))
        await daemon.start()
        try:
            return await script(daemon)
        finally:
            await daemon.shutdown()


def _plain() -> dict[str, Any]:
    """Plain TCP for the recording, where the daemon can do TLS: frames are the same."""
    names = {f.name for f in dataclasses.fields(Config)}
    return {"plaintext": True} if "plaintext" in names else {}


async def _script(daemon: Daemon) -> list[Step]:
    steps: list[Step] = []

    async def peer(name: str) -> _Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
        return _Peer(name, reader, writer)

    alice, bob = await peer("alice"), await peer("bob")
    hello = ev.PROTOCOL_VERSION
    sent = await alice.send(
        ev.ClientHello(v=hello, client=CLIENT_NAME, nick="alice"),
        ev.Create(id=1, room="lobby", topic="say hi"),
    )
    got = await alice.expect(2)
    steps.append(
        (
            "alice connects and creates a room, pipelining `create` after `hello` in one write",
            [("alice → daemon", sent), ("daemon → alice", got)],
        )
    )
    sent = await bob.send(
        ev.ClientHello(v=hello, client=CLIENT_NAME, nick="bob"), ev.Join(id=1, room="lobby")
    )
    got = await bob.expect(2)
    seen = await alice.expect(1)
    steps.append(
        (
            "bob connects and joins; alice sees him arrive (he does not see his own join)",
            [("bob → daemon", sent), ("daemon → bob", got), ("daemon → alice", seen)],
        )
    )
    sent = await bob.send(ev.Say(id=2, room="lobby", text="hi alice"))
    got = await bob.expect(2)
    seen = await alice.expect(1)
    steps.append(
        (
            "bob says something: every member gets the same `msg`, "
            "bob's echo comes before his `ok`",
            [("bob → daemon", sent), ("daemon → bob", got), ("daemon → alice", seen)],
        )
    )
    sent = await alice.send(ev.SetTopic(id=2, room="lobby", topic="general chat"))
    got = await alice.expect(2)
    seen = await bob.expect(1)
    steps.append(
        (
            "alice changes the topic",
            [("alice → daemon", sent), ("daemon → alice", got), ("daemon → bob", seen)],
        )
    )
    sent = await alice.send(ev.Ping(n=1))
    got = await alice.expect(1)
    steps.append(
        ("alice measures the round trip", [("alice → daemon", sent), ("daemon → alice", got)])
    )
    sent = await bob.send(ev.Bye(code="quit", msg="see you"))
    await bob.expect_eof()
    seen = await alice.expect(1)
    steps.append(
        (
            "bob quits with a message; the daemon closes his connection without a frame",
            [("bob → daemon", sent), ("daemon → alice", seen)],
        )
    )
    stopping = asyncio.create_task(daemon.shutdown())
    got = await alice.expect(1)
    await alice.expect_eof()
    await stopping
    steps.append(("the daemon shuts down", [("daemon → alice", got)]))
    for p in (alice, bob):
        p.writer.close()
    return steps


#: The secret room of the recording, and the seeds of the members' session keys.
#: Public on purpose: the document prints them, so anyone can re-derive the bytes.
ATTIC = "attic"
ATTIC_WORDS = "cobalt-anvil-lantern-mosaic-pebble-thistle"  # the passphrase
ALICE_SEED = bytes([0xA1]) * 32
OWNER_SEED = bytes([0x0E]) * 32  # the room's owner key, made by alice's client
BOB_SEED = bytes([0xB0]) * 32


SAME = "daemon → {0}: the same bytes as the `sealed` frame {1} got, byte for byte"
SAME_ACT = "daemon → {0}: the same bytes as the `secret_acted` frame alice got, byte for byte"


def _seal(sealer: Sealer, id_: int, rid: bytes, nick: str, text: str, kind: str) -> ev.Seal:
    """What the reference client sends (anonchat/secret.py), with a fixed timestamp."""
    sealed = sealer.seal(nick, T0, text, kind)
    return ev.Seal(
        id=id_,
        room=rid,
        counter=sealed.counter,
        epoch=sealed.epoch,
        kind=sealed.kind,
        ct=sealed.ciphertext,
        sig=sealed.signature,
    )


async def _script_secret(daemon: Daemon) -> list[Step]:
    steps: list[Step] = []
    pin = bytes(32)  # a --plaintext daemon has no key: the pin is 32 zero bytes
    keys = derive_room_keys(ATTIC, ATTIC_WORDS, pin)
    wrong = derive_room_keys(ATTIC, ATTIC_WORDS + "!", pin)
    alice_id, bob_id = Identity.from_seed(ALICE_SEED), Identity.from_seed(BOB_SEED)
    owner_id = Identity.from_seed(OWNER_SEED)
    owner = owner_id.public
    alice_sealer, bob_sealer = Sealer(keys, alice_id, owner), Sealer(keys, bob_id, owner)
    rid = keys.room_id

    async def peer(name: str) -> tuple[_Peer, ev.ServerHello]:
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
        p = _Peer(name, reader, writer)
        await p.send(ev.ClientHello(v=ev.PROTOCOL_VERSION, client=CLIENT_NAME, nick=name))
        got = await p.expect(1)
        server_hello = ev.from_wire(_decode(got), "client")
        assert isinstance(server_hello, ev.ServerHello)
        return p, server_hello

    alice, alice_hello = await peer("alice")
    sent = await alice.send(
        ev.SecretCreate(
            id=1,
            room=rid,
            auth=keys.auth_public,
            proof=keys.join_proof(alice_hello.challenge, pin),
            sender=alice_id.public,
            key_proof=key_proof(alice_id, rid, alice_hello.challenge, pin),
            owner_key=owner_id.public,
            owner_tag=keys.owner_tag(owner_id.public),
        )
    )
    got = await alice.expect(1)
    steps.append(
        (
            "alice (connected as in the conversation above; her server `hello` carried "
            f"`challenge` {alice_hello.challenge.hex()}) derives the keys of the room "
            f"`{ATTIC}` and creates it, registering a new owner key and its tag",
            [("alice → daemon", sent), ("daemon → alice", got)],
        )
    )
    grant = sign_owner_action(owner_id, rid, owner_id.public, "op", 1, alice_id.public)
    sent = await alice.send(ev.SecretAct(id=2, room=rid, act=owner_act(grant)))
    got = await alice.expect(2)
    steps.append(
        (
            "alice's client grants her session key owner rights with the owner key, "
            "so she can act (and be shown) as herself",
            [("alice → daemon", sent), ("daemon → alice", got)],
        )
    )
    sent = await alice.send(_seal(alice_sealer, 3, rid, "alice", "", "hello"))
    got = await alice.expect(2)
    steps.append(
        (
            "alice announces herself with a sealed `hello` (nobody else is there yet); "
            "like every member she gets her own `sealed` before the `ok`",
            [("alice → daemon", sent), ("daemon → alice", got)],
        )
    )
    bob, bob_hello = await peer("bob")
    sent = await bob.send(
        ev.SecretJoin(
            id=1,
            room=wrong.room_id,
            proof=wrong.join_proof(bob_hello.challenge, pin),
            sender=bob_id.public,
            key_proof=key_proof(bob_id, wrong.room_id, bob_hello.challenge, pin),
        )
    )
    got = await bob.expect(1)
    steps.append(
        (
            f"bob connects the same way (his `challenge` is {bob_hello.challenge.hex()}) and "
            "mistypes the passphrase: that gives another room id, one the daemon does not hold",
            [("bob → daemon", sent), ("daemon → bob", got)],
        )
    )
    sent = await bob.send(
        ev.SecretJoin(
            id=2,
            room=rid,
            proof=keys.join_proof(bob_hello.challenge, pin),
            sender=bob_id.public,
            key_proof=key_proof(bob_id, rid, bob_hello.challenge, pin),
        )
    )
    got = await bob.expect(1)
    seen = await alice.expect(1)
    steps.append(
        (
            "bob joins with the right passphrase; alice sees his session key arrive",
            [("bob → daemon", sent), ("daemon → bob", got), ("daemon → alice", seen)],
        )
    )
    sent = await bob.send(_seal(bob_sealer, 3, rid, "bob", "", "hello"))
    got = await bob.expect(2)
    seen = await alice.expect(1)
    assert got.startswith(seen)
    steps.append(
        (
            "bob announces himself",
            [("bob → daemon", sent), ("daemon → bob", got), (SAME.format("alice", "bob"), b"")],
        )
    )
    sent = await alice.send(_seal(alice_sealer, 4, rid, "alice", "", "here"))
    got = await alice.expect(2)
    seen = await bob.expect(1)
    assert got.startswith(seen)
    steps.append(
        (
            "alice answers bob's `hello` with a sealed `here`, so bob learns her nick",
            [("alice → daemon", sent), ("daemon → alice", got), (SAME.format("bob", "alice"), b"")],
        )
    )
    sent = await bob.send(_seal(bob_sealer, 4, rid, "bob", "hi alice", "msg"))
    got = await bob.expect(2)
    seen = await alice.expect(1)
    assert got.startswith(seen)
    steps.append(
        (
            "bob says something",
            [("bob → daemon", sent), ("daemon → bob", got), (SAME.format("alice", "bob"), b"")],
        )
    )
    mode = sign_owner_action(alice_id, rid, owner_id.public, "mode", 2, locked=True, slow=0)
    sent = await alice.send(ev.SecretAct(id=5, room=rid, act=owner_act(mode)))
    got = await alice.expect(2)
    seen = await bob.expect(1)
    assert got.startswith(seen)
    steps.append(
        (
            "alice locks the room with an owner action signed by her session key; bob "
            "verifies it against her grant and the owner key the passphrase vouches for",
            [("alice → daemon", sent), ("daemon → alice", got), (SAME_ACT.format("bob"), b"")],
        )
    )
    sent = await bob.send(ev.SecretLeave(id=5, room=rid))
    got = await bob.expect(1)
    seen = await alice.expect(1)
    steps.append(
        (
            "bob leaves the room",
            [("bob → daemon", sent), ("daemon → bob", got), ("daemon → alice", seen)],
        )
    )
    for p in (alice, bob):
        p.writer.close()
    return steps


def render_steps(steps: list[Step]) -> str:
    parts = []
    for n, (title, blocks) in enumerate(steps, 1):
        parts.append(f"**{n}. {title}.**")
        for direction, data in blocks:
            if not data:  # a remark instead of a dump
                parts.append(f"{direction}.")
                continue
            parts.append(f"{direction}:")
            parts.append(dump(data))
    return "\n\n".join(parts)


def render_transcript() -> str:
    return render_steps(asyncio.run(_converse(_script)))


def render_secret_transcript() -> str:
    return render_steps(asyncio.run(_converse(_script_secret)))


# --------------------------------------------------------------------------
# Vectors of the secret rooms' cryptography: regenerable from what they print.


def _hexcell(data: bytes) -> str:
    return f"`{data.hex()}`"


def _shown(text: str) -> str:
    """A string as an unambiguous JSON literal (non-ASCII as \\u escapes)."""
    return "`" + json.dumps(text, ensure_ascii=True) + "`"


def _ranges(points: list[int]) -> str:
    spans: list[tuple[int, int]] = []
    for cp in points:
        if spans and spans[-1][1] == cp - 1:
            spans[-1] = (spans[-1][0], cp)
        else:
            spans.append((cp, cp))
    return ", ".join(f"U+{a:04X}" if a == b else f"U+{a:04X}–U+{b:04X}" for a, b in spans)


#: Every code point that the strip of room-name normalisation removes at
#: either end: Python's ``str.isspace`` (general category Zs, or bidirectional
#: class WS, B or S).
STRIPPED = [cp for cp in range(0x110000) if chr(cp).isspace()]


def render_unicode() -> str:
    return (
        f"Unicode version: **{unicodedata.unidata_version}** (the reference takes it "
        "from Python's `unicodedata.unidata_version`).\n\n"
        f"Whitespace removed at either end ({len(STRIPPED)} code points): "
        f"{_ranges(STRIPPED)}."
    )


#: Typed room names and what they become; equal salts mean the same room.
ROOM_NAMES = [
    "Attic",
    "\uff21\uff34\uff34\uff29\uff23",  # full-width ＡＴＴＩＣ
    " attic\u3000",  # a space and an ideographic space around it
    "Straße",
    "STRASSE",
    "ΧΑΟΣ",
    "χαος",  # with a final sigma
    "\ufb01re",  # the ligature ﬁ
    "İstanbul",  # capital I with dot above
    "Ⅻ",  # roman numeral twelve
]


def render_room_names() -> str:
    rows = [
        "| typed (JSON) | normalised name (JSON) | its UTF-8 | salt, pin = 32 zero bytes |",
        "|---|---|---|---|",
    ]
    for typed in ROOM_NAMES:
        name = normalize_room(typed)
        salt = room_salt(typed, bytes(32))
        rows.append(
            f"| {_shown(typed)} | {_shown(name)} | `{name.encode().hex(' ')}` | {_hexcell(salt)} |"
        )
    return "\n".join(rows)


def render_key_schedule() -> str:
    pin = bytes(32)
    master = master_key(ATTIC, ATTIC_WORDS, pin)
    keys = derive_room_keys(ATTIC, ATTIC_WORDS, pin)
    alice, owner = Identity.from_seed(ALICE_SEED), Identity.from_seed(OWNER_SEED)
    auth_seed = HKDF(hashes.SHA256(), 32, None, b"anonchat/v1/auth_seed").derive(master)
    rows = [
        "| value | bytes (hex) |",
        "|---|---|",
        f"| `salt` | {_hexcell(room_salt(ATTIC, pin))} |",
        f"| `master` | {_hexcell(master)} |",
        f"| `room_id` | {_hexcell(keys.room_id)} |",
        f"| `auth_seed` | {_hexcell(auth_seed)} |",
        f"| `auth` | {_hexcell(keys.auth_public)} |",
        f"| `enc_root` | {_hexcell(keys._enc_root)} |",
        f"| `owner_mac` | {_hexcell(keys._owner_mac)} |",
        f"| `owner` (public key of `owner_seed`) | {_hexcell(owner.public)} |",
        f"| `owner_tag` | {_hexcell(keys.owner_tag(owner.public))} |",
        f"| `alice` (public key of `alice_seed`) | {_hexcell(alice.public)} |",
        "| `send_key(owner, 0, alice)` "
        f"| {_hexcell(keys.sending_key(owner.public, 0, alice.public))} |",
    ]
    return "\n".join(rows)


def render_secret_inputs() -> str:
    rows = [
        "| input | value |",
        "|---|---|",
        f"| `room` | {_shown(ATTIC)} |",
        f"| `passphrase` | {_shown(ATTIC_WORDS)} |",
        f"| `pin` | {_hexcell(bytes(32))} |",
        f"| `alice_seed` | {_hexcell(ALICE_SEED)} |",
        f"| `bob_seed` | {_hexcell(BOB_SEED)} |",
        f"| `owner_seed` | {_hexcell(OWNER_SEED)} |",
        f"| `ts_ms` | `{T0}` |",
        f"| daemon clock (`ts` of events) | `{T0}` at its first reading, 1500 ms more at each |",
        "| the daemon's random bytes | draw *n* (*n* = 1, 2, …: challenges and tokens in the "
        'order drawn) is SHA-256(`"anonchat docs challenge "` *n* in decimal), cut to the '
        "size drawn |",
    ]
    return "\n".join(rows)


#: Keys whose fingerprints the document shows: (what, seed).
FINGERPRINT_SEEDS = [
    ("`alice_seed`", ALICE_SEED),
    ("`bob_seed`", BOB_SEED),
    ("`owner_seed`", OWNER_SEED),
    ("00 01 02 … 1f", bytes(range(32))),
]


def render_fingerprints() -> str:
    rows = [
        "| seed | public key | fingerprint | long fingerprint |",
        "|---|---|---|---|",
    ]
    for what, seed in FINGERPRINT_SEEDS:
        public = Identity.from_seed(seed).public
        rows.append(
            f"| {what} | {_hexcell(public)} | `{fingerprint(public)}` | "
            f"`{long_fingerprint(public)}` |"
        )
    alice = Identity.from_seed(ALICE_SEED).public
    bob = Identity.from_seed(BOB_SEED).public
    digest = hashlib.sha256(b"anonchat/v1/fp" + alice).digest()
    bits = format(int.from_bytes(digest[:10], "big"), "080b")
    groups = [bits[i : i + 5] for i in range(0, 80, 5)]
    worked = " ".join(f"{g}={int(g, 2)}" for g in groups[:4])
    rows += [
        "",
        f"Worked through for alice's key: SHA-256(`anonchat/v1/fp` | key) = "
        f"{_hexcell(digest)}; its first 20 bits in groups of five are {worked}, "
        f"which the alphabet spells `{fingerprint(alice)}`.",
        "",
        f"Safety number of alice's and bob's keys: `{safety_number(alice, bob)}`.",
    ]
    return "\n".join(rows)


# --------------------------------------------------------------------------
# The document

_REGION = re.compile(r"(<!-- gen:(?P<key>[\w:-]+) -->\n).*?(<!-- /gen -->)", re.DOTALL)


def render(key: str) -> str:
    kind, _, arg = key.partition(":")
    simple: dict[str, Callable[[], str]] = {
        "codes": render_codes,
        "limits": render_limits,
        "schema-limits": render_schema_limits,
        "malformed": render_malformed,
        "transcript": render_transcript,
        "secret-transcript": render_secret_transcript,
        "requests": render_requests,
        "owner-act-fields": render_owner_act_fields,
        "unicode": render_unicode,
        "room-names": render_room_names,
        "key-schedule": render_key_schedule,
        "secret-inputs": render_secret_inputs,
        "fingerprints": render_fingerprints,
    }
    if kind == "example":
        return render_example(arg)
    if kind == "fields":
        return render_fields(arg)
    return simple[kind]()


def render_doc(text: str) -> str:
    """The document with every generated region brought up to date."""
    return _REGION.sub(lambda m: f"{m.group(1)}{render(m.group('key'))}\n{m.group(3)}", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="only report whether it is stale")
    parser.add_argument("path", nargs="?", type=Path, default=DOC)
    args = parser.parse_args(argv)
    old = args.path.read_text(encoding="utf-8")
    new = render_doc(old)
    if args.check:
        if new != old:
            print(
                f"{args.path} is stale: run python docs/gen_protocol_examples.py", file=sys.stderr
            )
            return 1
        return 0
    if new != old:
        args.path.write_text(new, encoding="utf-8")
        print(f"updated {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
