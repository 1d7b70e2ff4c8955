"""Slash commands and key bindings as data, plus Tab completion.

One table each, used by the input box (to parse and complete), by the help
screen and by ``docs/tui.md``, so the three never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..names import name_key


@dataclass(frozen=True)
class Command:
    name: str
    args: str
    help: str
    aliases: tuple[str, ...] = ()


COMMANDS: tuple[Command, ...] = (
    Command("join", "ROOM", "join a room (created if it does not exist) and switch to it", ("j",)),
    Command("create", "[ROOM [TOPIC]]", "create a public room; without ROOM opens a form"),
    Command("leave", "[ROOM]", "leave the current room (or ROOM)", ("part",)),
    Command("nick", "NICK", "change your nick"),
    Command("topic", "[TEXT]", "show the current room's topic, or set it"),
    Command("me", "ACTION", 'send an action ("* alice waves")'),
    Command("who", "[ROOM]", "list the members of the current room (or ROOM)", ("names",)),
    Command("list", "", "list the public rooms"),
    Command(
        "secret",
        "[create] [ROOM]",
        "join a secret (end-to-end encrypted) room: asks for its passphrase; "
        "/secret create ROOM makes one",
    ),
    Command("privacy", "", "what the server can and cannot see about you, in this room"),
    Command(
        "verify",
        "NICK#FP [WHAT-THEY-READ]",
        "(secret rooms) compare keys with someone by another channel; with what "
        "they read out, mark them verified for this session",
    ),
    Command("kick", "NICK [REASON]", "(owners) remove someone from the current room"),
    Command("ban", "NICK [REASON]", "(owners) remove them and keep their session out"),
    Command("op", "NICK", "(owners) make someone an owner of the current room too"),
    Command(
        "mode",
        "lock|unlock|slow N|history on|off",
        "(owners) lock the room, slow it down, or turn history on join off",
    ),
    Command("theme", "[NAME]", "list the themes, or switch to NAME (remembered)"),
    Command("help", "", "show keys and commands"),
    Command("quit", "[MESSAGE]", "leave the chat", ("exit",)),
)

_BY_NAME: dict[str, Command] = {}
for _cmd in COMMANDS:
    _BY_NAME[_cmd.name] = _cmd
    for _alias in _cmd.aliases:
        _BY_NAME[_alias] = _cmd


@dataclass(frozen=True)
class Key:
    keys: str
    help: str


KEYS: tuple[Key, ...] = (
    Key("Enter", "send the message or run the command"),
    Key("Ctrl+N / Alt+Right", "next room"),
    Key("Ctrl+P / Alt+Left", "previous room"),
    Key("Alt+1 … Alt+9", "jump to room 1…9 (Alt+0: the server window)"),
    Key("PageUp / PageDown", "scroll the messages a page"),
    Key("Home / End", "top / bottom of the messages (when the input is empty)"),
    Key("Ctrl+Home / Ctrl+End", "top / bottom of the messages (always)"),
    Key("Up / Down", "previous / next line you typed"),
    Key("Tab", "complete a nick or a /command (again: next match)"),
    Key("F1, or ? in an empty input", "this help"),
    Key("F2", "show / hide the member list"),
    Key("F3", "create a room (public or secret)"),
    Key("F4", "pick a theme"),
    Key("Ctrl+Q", "quit"),
    Key("Escape", "close a dialog"),
)

NOTES = (
    'Text not starting with "/" is sent to the current room; "//" sends a line starting with "/".',
    "Click a room to switch to it; click a public room to join it.",
    "Pasting several lines sends each as a message, as text (past 5 lines it asks first).",
    "Ctrl+B is left alone on purpose: it is tmux's prefix key.",
)


#: The help's "Privacy" section: (heading, plain words), as docs/security.md says it.
PRIVACY: tuple[tuple[str, str], ...] = (
    (
        "Everywhere",
        "The server sees your IP address while you are connected (unless you come "
        "through a proxy such as Tor), when you connect and send, and your nick. It "
        "keeps nothing on disk and logs no addresses and no messages. With TLS (the "
        "default) the network in between sees only that you talk to the server.",
    ),
    (
        "Public room",
        "The server and every member see the room's name, topic and members and "
        "everything said there, in plain text; anyone can join. Say nothing there "
        "you would not say to the server's operator.",
    ),
    (
        "Secret room 🔒",
        "End-to-end encrypted: the server cannot see the room's name, its passphrase "
        "or any message. It sees an opaque room id, which connections are in it, when "
        "each message is sent and its size rounded up to 256/512/1024/2048/4096 bytes. "
        "Your nick inside is your public nick (which it sees) unless you chose one for "
        "the room.",
    ),
    (
        "Limits",
        "Anyone who knows the passphrase can read and join; there is no forward "
        "secrecy; a weak passphrase can be guessed offline by the operator, so "
        "generate one. Nicks show a fingerprint (alice#k3f9) so two people cannot "
        "pass as each other. Owners' kicks and bans in a secret room are signed and "
        "checked by everyone, but it is the server that keeps people out: someone "
        "removed still knows the passphrase. /privacy says all this for the room you are in.",
    ),
)


def lookup(name: str) -> Command | None:
    return _BY_NAME.get(name.lower())


def parse(line: str) -> tuple[str, str] | None:
    """``"/join lobby"`` -> ``("join", "lobby")``; None for a plain message."""
    if not line.startswith("/") or line.startswith("//"):
        return None
    name, _, rest = line[1:].partition(" ")
    return name.lower(), rest.strip()


def completions(value: str, cursor: int, nicks: list[str]) -> tuple[int, list[str]]:
    """Candidates for the word before ``cursor``: (start of that word, full words).

    At the start of the line ``/xx`` completes command names; any other word
    completes nicks (case-insensitively).  A nick at the start of the line gets
    ``": "`` after it, the IRC habit for addressing someone.
    """
    start = value.rfind(" ", 0, cursor) + 1
    word = value[start:cursor]
    if start == 0 and word.startswith("/"):
        prefix = word[1:].lower()
        names = [c.name for c in COMMANDS if c.name.startswith(prefix)]
        return start, [f"/{n} " for n in names]
    if not word:
        return start, []
    key = name_key(word)
    found = sorted((n for n in nicks if name_key(n).startswith(key)), key=name_key)
    suffix = ": " if start == 0 else " "
    return start, [n + suffix for n in found]
