"""Members of the current room, each nick in its own colour."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from ...names import name_key
from ..render import nick_text
from ..state import RoomState

ELLIPSIS = "…"


def fit(line: Text, width: int) -> Text:
    """One member on one line of ``width`` cells: a line too long loses the
    middle of the nick, never its end -- in a secret room the ``#fp`` that
    tells two members apart, and the marks after it (⚠, ✓).  Left to wrap, the
    tail went to a line of its own and read as another member (``94`` under
    ``golden-walrus-83#2v``), which every random nick in a secret room did."""
    if width <= 0 or line.cell_len <= width:
        return line
    plain = line.plain
    hash_at = plain.rfind("#")
    keep_from = hash_at if hash_at > 1 else len(plain)
    while keep_from < len(plain) and plain[keep_from].isspace():
        keep_from += 1
    tail = line[keep_from:] if keep_from < len(plain) else Text()
    room = width - tail.cell_len - cell_len(ELLIPSIS)
    if room < 2:  # not even a letter of the nick: keep its start, cut the rest
        line.truncate(width, overflow="ellipsis")
        return line
    head = line[:keep_from]
    while head.cell_len > room:
        head.right_crop(1)
    return Text.assemble(head, (ELLIPSIS, "dim"), tail)


class MemberList(VerticalScroll):
    def __init__(self) -> None:
        super().__init__(id="member-list")
        self.can_focus = False
        self.border_title = "Members"
        self._body = Static("", id="member-names")
        self._shown: tuple[RoomState | None, str] | None = None

    def compose(self) -> ComposeResult:
        yield self._body

    def on_resize(self, event: events.Resize) -> None:
        if self._shown is not None:
            self.show(*self._shown)  # the lines were fitted to the old width

    def show(self, room: RoomState | None, own_nick: str) -> None:
        self._shown = (room, own_nick)
        if room is None:
            self.border_title = "Members"
            self._body.update(Text("(server window)", style="dim italic"))
            return
        if room.removed:
            self.border_title = "Members"
            self._body.update(Text("(not joined)", style="dim italic"))
            return
        self.border_title = f"Members ({room.member_count})"
        out = Text()
        width = self.scrollable_content_region.width  # 0 before the first layout
        # Owners first, marked "@" as on IRC.
        for nick in sorted(room.members, key=lambda n: (not room.is_owner(n), name_key(n))):
            if out:
                out.append("\n")
            line = Text()
            line.append("@" if room.is_owner(nick) else " ", style="bold")
            line.append_text(nick_text(nick, bold=name_key(nick) == name_key(own_nick)))
            if nick in room.verified:
                line.append(" ✓", style="bold green")
            out.append_text(fit(line, width))
        if room.more:
            out.append(f"\n… and {room.more} more", style="dim")
        self._body.update(out)
