"""What both front ends (the line mode and the TUI) say and parse alike.

Kept apart from either of them so neither front end imports the other: the
privacy report of ``/privacy`` (it must match docs/security.md, whichever
interface shows it), the arguments of ``/mode``, how another user's text
is made into one safe line, and how a name that mixes scripts is marked.
"""

from __future__ import annotations

import functools
import re
import shlex
from typing import Any

from ..address import format_address, is_loopback
from ..client import Client, Endpoint
from ..confusables import mixed_script
from ..errors import Local
from ..names import sanitize
from ..room import LOCK as LOCK
from ..room import Room


def invite(
    server: tuple[str, int],
    pin: str,
    room: str | None,
    *,
    secret: bool = False,
    proxy: tuple[str, int] | None = None,
) -> tuple[tuple[str, ...], str]:
    """``/invite``: (lines to show, the command others run).  The lines hold
    the command on a line of its own, quoted for a POSIX shell (``shlex``) so
    that it can be pasted as it is.

    The link carries the server's pin, so whoever runs it connects only to
    this server's key.  A secret room is never named in it: the link's room
    is joined as a public one, which would tell the server the name; the
    others are told to use ``/secret ROOM`` with the passphrase instead.
    """
    host, port = server
    public_room = None if secret else room
    words = ["anonchat"]
    if proxy is not None:
        words += ["--proxy", f"socks5://{format_address(*proxy)}"]
    if pin:
        words.append(Endpoint(host, port).invite(pin, public_room))
    else:  # no TLS, so no key to pin: say so in the flags
        words += ["--plaintext", "--server", format_address(host, port)]
        if public_room:
            words += ["--join", public_room]
    command = shlex.join(words)
    who = "others on this machine" if is_loopback(host) else "others"
    lines = [f"{who} join with this one command, quoted for a shell:", command]
    if secret and room:
        where = f"{LOCK}#{room}"
        lines.append(
            f"then /secret {room} and the passphrase of {where}, given over a safe channel "
            "(the link never names a secret room: it would tell the server)"
        )
    elif public_room:
        lines.append(f"it joins #{public_room}" + (" (and pins this server's key)" if pin else ""))
    if not pin:
        lines.append("this connection is not encrypted: no key can be pinned")
    return tuple(lines), command


#: Failures where this client (or the user) refused the server, not the other
#: way round: said so, so that nobody reads "the server refused".
CLIENT_REFUSED: dict[str, str] = {
    Local.HOST_NOT_TRUSTED: "Not connected: you did not accept the server's key",
    Local.HOST_KEY_CHANGED: "Not connected: this client refused a server key that changed",
    Local.PIN_MISMATCH: "Not connected: this client refused a key that is not the pin given",
    Local.PLAINTEXT_REFUSED: "Not connected: this client refuses unencrypted connections",
    Local.TLS_FAILED: "Not connected: the TLS handshake with the server failed",
    Local.TIMEOUT: "Not connected: no answer in time",
}


def refused_by_client(code: str, message: str) -> str | None:
    """``Not connected: <who refused what>: <message>``, or None when the
    server (or the network) is the one that said no."""
    said = CLIENT_REFUSED.get(code)
    return f"{said}: {message}" if said is not None else None


#: What a nick's short fingerprint proves, said the same in the help, README.md
#: and docs/tui.md (tests/tui/test_help_doc.py holds them to it).
FINGERPRINT_NOTE = (
    "The four characters after a nick in a secret room (alice#k3f9) tell two "
    "people's keys apart, but anyone can make a key with chosen ones in seconds: "
    "they prove nothing about who someone is; /verify compares the long "
    "fingerprint by another channel."
)

MODE_USAGE = "usage: /mode lock | unlock | slow SECONDS | history on|off"


def clean(text: str) -> str:
    """One line of terminal-safe text: newlines shown as a return mark."""
    return sanitize(text.replace("\r\n", "\n").replace("\n", " \u21b5 "))


#: Follows a nick or room name that mixes scripts (UTS #39), such as a Latin
#: name with one Cyrillic letter: the usual way to make a look-alike.
LOOKALIKE = "\u26a0"
#: The fingerprint that ends a secret room's label (``alice#k3f9``): not part of the name.
_FINGERPRINT = re.compile(r"#[0-9a-hjkmnp-tv-z]{4}$")


@functools.lru_cache(maxsize=4096)  # (the same few nicks, on every line)
def mixes_scripts(name: str) -> bool:
    """Does a nick, a secret room's ``nick#fp`` label or a room name mix scripts?"""
    return mixed_script(name[:-5] if _FINGERPRINT.search(name) else name)


def shown_name(name: str) -> str:
    """A nick or room name as one safe piece of a line, marked if it mixes scripts."""
    return clean(name) + (LOOKALIKE if mixes_scripts(name) else "")


def parse_mode(rest: str) -> dict[str, Any] | None:
    """The keywords of ``Client.set_mode`` for ``/mode ...``, or None if malformed."""
    word, _, value = rest.partition(" ")
    value = value.strip()
    if word in ("lock", "unlock"):
        return {"locked": word == "lock"}
    if word == "slow" and value.isdigit():
        return {"slow": int(value)}
    if word == "history" and value in ("on", "off"):
        return {"history": value == "on"}
    return None


VERIFY_USAGE = (
    "usage: /verify NICK#FP shows what to compare with them by another channel; "
    "/verify NICK#FP WHAT-THEY-READ marks them verified if it matches"
)


def verify_report(client: Client, room: str | None, secret: bool, rest: str) -> list[str]:
    """``/verify``: the long fingerprints and the safety number to compare, or,
    given what the other read out, mark them verified (RequestError if not)."""
    who, _, heard = rest.strip().partition(" ")
    if room is None or not secret:
        return ["/verify works in a secret room: public rooms have no keys to compare"]
    if not who:
        return [VERIFY_USAGE]
    if heard.strip():
        done = client.verify_secret_member(room, who, heard)
        return [
            f"{clean(done.label)} is verified: it matches. The member list marks them "
            "for the rest of this session (kept in memory only)"
        ]
    seen = client.secret_verification(room, who)
    state = " (verified)" if seen.verified else ""
    return [
        f"compare with {clean(seen.label)}{state} by another channel (in person, a call):",
        f"  their long fingerprint: {seen.theirs}   yours here: {seen.ours}",
        f"  or the safety number of you two (the same on both sides): {seen.safety}",
        f"then: /verify {clean(seen.label)} WHAT-THEY-READ",
    ]


def dm_verify_report(client: Client, peer: bytes, rest: str) -> list[str]:
    """``/verify`` in a conversation: both DM keys' long fingerprints and the
    safety number; given what the other read out, mark them verified."""
    seen = client.dm_verification(peer)
    words = rest.split()
    if words and "#" in words[0]:  # /verify bob#k3f9 ..., as in a secret room
        words = words[1:]
    heard = " ".join(words)
    if heard:
        done = client.verify_dm(peer, heard)
        return [
            f"{clean(done.label)} is verified: it matches. The conversation's window marks "
            "them for the rest of this session (kept in memory only)"
        ]
    state = " (verified)" if seen.verified else ""
    return [
        f"compare with {clean(seen.label)}{state} by another channel (in person, a call):",
        f"  their DM key's long fingerprint: {seen.theirs}   yours: {seen.ours}",
        f"  or the safety number of you two (the same on both sides): {seen.safety}",
        "then: /verify WHAT-THEY-READ (if it differs, the server may be in between)",
    ]


DM_PRIVACY = (
    "direct messages (/msg): end-to-end encrypted between your DM key and theirs; the "
    "server cannot read them, but it sees who writes to whom (by nick and DM key), when, "
    "and each message's size rounded up to 256/512/1024/2048/4096 bytes; it holds the "
    "last few for you, sealed and in memory only, until you resume or your session ends. "
    "It tells the recipient your public nick, except in a conversation begun in a secret "
    "room (/msg nick#fp), where neither side's public nick is shown"
)


def privacy_report(
    client: Client, room: str | None, secret: bool, direct: Room | None = None
) -> list[str]:
    """What the daemon can and cannot see about this user right now (docs/security.md)."""
    how = (
        f"TLS to a key you pinned ({client.pin})"
        if client.pin
        else "NO encryption: anyone on the network path sees everything below too"
    )
    lines = [
        f"connection: {how}",
        "the server sees: your IP address while you are connected (unless you use a proxy "
        "such as Tor), when you connect and send, your nick, and the public rooms you are in",
        "the server keeps: nothing about you on disk (only its own key), no logs of "
        "addresses or messages; recent messages of each room stay in its memory for a while "
        "(in a secret room, sealed)",
    ]
    if direct is not None:
        lines += [
            f"in the conversation with {clean(direct.shown)}: {DM_PRIVACY}",
            "the server hands out the keys: it could give you its own instead of theirs "
            "and read along; /verify compares both keys with them by another channel, and "
            "a key that changes is announced",
            "if they ignore you, your messages are still accepted: you cannot tell (and "
            "neither can the server: ignoring happens on their side only)",
        ]
        return lines
    lines.append(DM_PRIVACY)
    if room is None:
        lines.append("you are in no room")
    elif secret:
        sealed = client.sealed_nick(room)
        if sealed is None:
            nick_line = (
                "the nick inside your messages here is your public nick, which the server "
                "sees on your connection: so it knows what the members call you, and the "
                "members can link you to your public nick (use a nick of this room's own "
                "to avoid that)"
            )
        else:
            nick_line = (
                f"here you are {clean(sealed)}, a nick of this room's own, sealed: the "
                "server does not see it, and the members do not see your public nick"
            )
        lines += [
            f"in {LOCK}#{clean(room)}: end-to-end encrypted. The server cannot see the room's "
            "name, its passphrase, or what anyone says; it does see that your connection "
            "(with your public nick) is a member, under a session key used in no other room",
            nick_line,
            "it does see: an opaque room id, that your connection is in it, how many members "
            "it has, when each message is sent and its size rounded up to 256/512/1024/2048/4096 "
            "bytes; and which session keys are owners, and every owner action (kick, ban, op, "
            "mode) with its target's session key",
            "limits: anyone who knows the passphrase can read and join; there is no forward "
            "secrecy; a weak passphrase can be guessed offline by the server's operator; "
            "owners' actions are signed, but it is the server that keeps someone kicked or "
            "banned out, and they still know the passphrase",
        ]
    else:
        lines.append(
            f"in #{clean(room)}: a public room. The server and every member see what you say "
            "here, and anyone can join"
        )
    return lines
