"""Turning frames into terminal-safe rich ``Text``.

Every string another user chose (nick, room, topic, message) goes through
:func:`clean` and is put into a :class:`rich.text.Text` as plain text, never
into a markup string: ``[red]`` in a message stays ``[red]``, an escape byte
becomes ``^[``, a right-to-left override becomes ``<U+202E>``.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable

from rich.cells import cell_len
from rich.console import Console, JustifyMethod, OverflowMethod
from rich.containers import Lines
from rich.text import Text

from .. import events as ev
from ..dm import DirectMessage, DmNotice
from ..frontend.text import LOOKALIKE, mixes_scripts
from ..names import name_key, sanitize
from ..secret import SecretMessage, SecretNotice

#: Formats a server timestamp (ms since the epoch; None = now) for the message pane.
Clock = Callable[[int | None], str]

# Readable on both dark and light backgrounds; no pure red (used for errors).
NICK_COLOURS = (
    "#e6a23c",
    "#5fb3f6",
    "#6cc56c",
    "#d97bd9",
    "#4fc1c1",
    "#f08a5d",
    "#9d8cf2",
    "#c9b400",
    "#3fa7a0",
    "#e66f9c",
    "#7aa2f7",
    "#8fbf3f",
)
SYSTEM_STYLE = "italic dim"


class Unbroken(Text):
    """A line folded at the pane's width and never at its spaces: a shell
    command to copy (``anonchat 'anonchat://...'``) takes the fewest rows,
    not one row for ``anonchat`` and two for the link."""

    __slots__ = ()  # Text's own layout, so that copy() can make one

    def wrap(
        self,
        console: Console,
        width: int,
        *,
        justify: JustifyMethod | None = None,
        overflow: OverflowMethod | None = None,
        tab_size: int = 8,
        no_wrap: bool | None = None,
    ) -> Lines:
        offsets, used = [], 0
        for index, char in enumerate(self.plain):
            size = cell_len(char)
            if used + size > max(width, 1):
                offsets.append(index)
                used = 0
            used += size
        return self.divide(offsets)

    def copy(self) -> Text:
        # RichLog copies a line it cannot lay out yet (a window not on screen);
        # Text.copy() would make a plain Text, wrapped at its space again.
        twin = super().copy()
        twin.__class__ = Unbroken
        return twin


HISTORY_NOTE = "  (history: said before you joined)"
ERROR_STYLE = "bold #e05252"
TIME_STYLE = "dim"


def local_clock(ts_ms: int | None = None) -> str:
    t = time.localtime(ts_ms / 1000 if ts_ms is not None else None)
    return time.strftime("%H:%M", t)


def clean(text: str, *, multiline: bool = False) -> str:
    """Terminal-safe text; newlines kept only when ``multiline``."""
    text = text.replace("\r\n", "\n")
    if not multiline:
        text = text.replace("\n", " \u21b5 ")
    return sanitize(text, keep_newlines=multiline)


def nick_colour(nick: str) -> str:
    """The same colour for the same nick, in every client and every run."""
    return NICK_COLOURS[zlib.crc32(name_key(nick).encode("utf-8")) % len(NICK_COLOURS)]


LOOKALIKE_STYLE = "bold #e6a23c"


def nick_text(nick: str, *, bold: bool = True) -> Text:
    """A nick (or ``nick#fp`` label) in its colour, marked ⚠ if it mixes scripts."""
    style = f"bold {nick_colour(nick)}" if bold else nick_colour(nick)
    return lookalike_mark(Text(clean(nick), style=style), nick)


def lookalike_mark(text: Text, name: str) -> Text:
    """``text`` (showing ``name``), with ⚠ appended if the name mixes scripts."""
    if mixes_scripts(name):
        text.append(LOOKALIKE, style=LOOKALIKE_STYLE)
    return text


ELLIPSIS = "\u2026"


def fit_name(prefix: Text, name: Text, suffix: Text, width: int) -> Text:
    """``prefix``, ``name`` and ``suffix`` on one line of ``width`` cells (any
    width when it is 0: not laid out yet).  A line too long loses part of the
    name, never the prefix or the suffix (an owner's ``@``, an unread count):
    the middle of ``nick#fp`` (the fingerprint tells two members of a secret
    room apart), else its end; a ⚠ after the name stays.  Left to wrap, the
    tail went to a line of its own and read as another member or room (``94``
    under ``golden-walrus-83#2v``), which every random nick in a secret room
    did."""
    line = Text.assemble(prefix, name, suffix)
    if width <= 0 or line.cell_len <= width:
        return line
    plain = name.plain
    hash_at = plain.rfind("#")
    if hash_at > 1 and not plain.startswith(("#", LOCK)):  # nick#fp, @nick#fp
        keep_from = hash_at
    elif plain.endswith(LOOKALIKE):
        keep_from = len(plain) - len(LOOKALIKE)
    else:
        keep_from = len(plain)
    head, tail = name[:keep_from], name[keep_from:]
    room = width - prefix.cell_len - suffix.cell_len - tail.cell_len - cell_len(ELLIPSIS)
    if room < 2:  # no room for a sensible name: the line's start, cut
        line.truncate(width, overflow="ellipsis")
        return line
    while head.cell_len > room:
        head.right_crop(1)
    return Text.assemble(prefix, head, (ELLIPSIS, "dim"), tail, suffix)


def mentions(text: str, nick: str) -> bool:
    """Does ``text`` name ``nick`` as a word (case-insensitive)?"""
    if not nick:
        return False
    pattern = r"(?<![\w-])" + re.escape(name_key(nick)) + r"(?![\w-])"
    return re.search(pattern, name_key(text)) is not None


def _stamp(clock: Clock, ts: int | None) -> Text:
    return Text(f"{clock(ts)} ", style=TIME_STYLE)


def message_line(frame: ev.Msg, clock: Clock, *, own_nick: str = "") -> Text:
    line = _stamp(clock, frame.ts)
    highlight = bool(own_nick) and frame.nick != own_nick and mentions(frame.text, own_nick)
    body = Text(clean(frame.text, multiline=True), style="reverse" if highlight else "")
    if frame.me:
        line.append("* ", style="bold")
        line.append_text(nick_text(frame.nick))
        line.append(" ")
        body.stylize("italic")
    else:
        line.append_text(nick_text(frame.nick))
        line.append("  ")
    line.append_text(body)
    return line


def secret_label(nick: str, fingerprint: str) -> str:
    """``alice#k3f9``: in a secret room a nick is never shown without its key."""
    return f"{clean(nick) or '?'}#{clean(fingerprint)}"


STALE_NOTE = " (sent with a clock off by over 5 minutes)"


def secret_message_line(msg: SecretMessage, clock: Clock, *, own_nick: str = "") -> Text:
    """A secret room's message: like a public one, the nick with its fingerprint."""
    highlight = bool(own_nick) and not msg.own and mentions(msg.text, own_nick)
    line = _sealed_line(msg, clock, highlight)
    if msg.history:
        line.append(HISTORY_NOTE, style=SYSTEM_STYLE)
    return line


def _sealed_line(msg: SecretMessage | DirectMessage, clock: Clock, highlight: bool) -> Text:
    """A sealed message's line: time, ``nick#fp`` (or ``* nick#fp`` for an
    action), the text, and a note when the sender's clock is off."""
    line = _stamp(clock, msg.ts)
    who = secret_label(msg.nick, msg.fingerprint)
    body = Text(clean(msg.text, multiline=True), style="reverse" if highlight else "")
    if msg.me:
        line.append("* ", style="bold")
        line.append_text(nick_text(who))
        line.append(" ")
        body.stylize("italic")
    else:
        line.append_text(nick_text(who))
        line.append("  ")
    line.append_text(body)
    if msg.stale:
        line.append(STALE_NOTE, style=f"{ERROR_STYLE} italic")
    return line


def dm_line(msg: DirectMessage, clock: Clock) -> Text:
    """A direct message: the sender's nick with its DM key's fingerprint."""
    return _sealed_line(msg, clock, highlight=False)


def dm_notice_line(notice: DmNotice, clock: Clock) -> Text:
    """A refused, missing or re-keyed direct message: always as an error."""
    line = _stamp(clock, None)
    line.append("-!- ", style=ERROR_STYLE)
    line.append(clean(notice.text), style=ERROR_STYLE if notice.kind != "nick" else SYSTEM_STYLE)
    return line


def secret_notice_line(notice: SecretNotice, clock: Clock) -> Text:
    """Joins, leaves, gaps, owner actions and dropped forgeries in a secret room."""
    error = notice.kind in ("missing", "dropped", "forged", "removed")
    line = _stamp(clock, notice.ts)
    line.append("-!- ", style=ERROR_STYLE if error else "dim")
    line.append(clean(notice.text), style=ERROR_STYLE if error else SYSTEM_STYLE)
    return line


def system_line(text: Text | str, clock: Clock, *, error: bool = False) -> Text:
    """A line from the client itself; ``text`` must already be clean."""
    line = _stamp(clock, None)
    line.append("-!- ", style=ERROR_STYLE if error else "dim")
    body = text if isinstance(text, Text) else Text(text)
    body.stylize(ERROR_STYLE if error else SYSTEM_STYLE)
    line.append_text(body)
    return line


def event_line(frame: ev.Presence | ev.TopicChanged, clock: Clock) -> Text:
    """A presence or topic change, styled apart from messages."""
    line = _stamp(clock, frame.ts)
    line.append("-!- ", style="dim")
    body = Text(style=SYSTEM_STYLE)
    body.append_text(nick_text(frame.nick, bold=False))
    if isinstance(frame, ev.TopicChanged):
        body.append(" set the topic: ")
        body.append(clean(frame.topic))
    elif frame.kind == "join":
        body.append(" joined")
    elif frame.kind == "nick":
        body.append(" is now known as ")
        body.append_text(nick_text(frame.new or "", bold=False))
    elif frame.kind in ("kick", "ban"):
        body.append(" was kicked by " if frame.kind == "kick" else " was banned by ")
        body.append_text(nick_text(frame.by or "", bold=False))
        if frame.msg:
            body.append(f" ({clean(frame.msg)})")
    elif frame.kind == "op":
        body.append(" is now an owner")
        if frame.by:
            body.append(" (by ")
            body.append_text(nick_text(frame.by, bold=False))
            body.append(")")
    else:
        body.append(" left" if frame.kind == "leave" else " quit")
        if frame.msg:
            body.append(f" ({clean(frame.msg)})")
    line.append_text(body)
    return line


def mode_line(frame: ev.ModeChanged, clock: Clock) -> Text:
    """An owner changed the room's modes."""
    line = _stamp(clock, frame.ts)
    line.append("-!- ", style="dim")
    body = Text(style=SYSTEM_STYLE)
    body.append_text(nick_text(frame.nick, bold=False))
    modes = [
        "locked" if frame.locked else "open to newcomers",
        f"slow mode {frame.slow} s" if frame.slow else "no slow mode",
        "history on join" if frame.history else "no history on join",
    ]
    body.append(" set the modes: " + ", ".join(modes))
    line.append_text(body)
    return line


def join_text(*parts: str | Text) -> Text:
    """Concatenate our own words (str, trusted) and already-clean Text pieces."""
    out = Text()
    for part in parts:
        if isinstance(part, Text):
            out.append_text(part)
        else:
            out.append(part)
    return out


LOCK = "\U0001f512"  # 🔒 before a secret room's name


def room_text(room: str, *, secret: bool = False, dm: bool = False) -> Text:
    """``#lobby``, ``🔒#plans``, or a conversation: ``@bob#k3f9``; a room's
    name, or the other's nick, is marked ⚠ if it mixes scripts."""
    if dm:
        return lookalike_mark(Text(f"@{clean(room)}", style="bold"), room)
    return lookalike_mark(Text(f"{LOCK if secret else ''}#{clean(room)}", style="bold"), room)
