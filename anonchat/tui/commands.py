"""Key bindings as data, the commands this front end offers, and Tab completion.

The commands are the front-end core's table (:mod:`anonchat.frontend.commands`);
the keys are this module's.  Both feed the input box (completion), the help
screen and ``docs/tui.md``, so they never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..frontend.commands import Command, offered
from ..frontend.text import FINGERPRINT_NOTE
from ..names import name_key

#: The slash commands this front end offers: the core's one table.
COMMANDS: tuple[Command, ...] = tuple(offered("tui"))


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
    Key("F5", "show / hide the room list (both start hidden below 100 columns)"),
    Key("Ctrl+Q", "quit (hosting with --local: asks first, since it ends everyone's session)"),
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
        "Direct messages @",
        "/msg NICK TEXT or /query NICK: end-to-end encrypted between your DM key and "
        "theirs; the server cannot read them, but sees who writes to whom, when, and "
        "the size rounded up as above. It hands out the keys: /verify in the "
        "conversation compares them with the other by another channel, and a key that "
        "changes is announced.",
    ),
    (
        "Limits",
        "Anyone who knows the passphrase can read and join; there is no forward "
        "secrecy; a weak passphrase can be guessed offline by the operator, so "
        f"generate one. {FINGERPRINT_NOTE} Owners' kicks and bans in a secret room are signed and "
        "checked by everyone, but it is the server that keeps people out: someone "
        "removed still knows the passphrase. /privacy says all this for the room you are in.",
    ),
)


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
