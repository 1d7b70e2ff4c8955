"""Members of the current room, each nick in its own colour."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from ...names import name_key
from ..render import nick_text
from ..state import RoomState


class MemberList(VerticalScroll):
    def __init__(self) -> None:
        super().__init__(id="member-list")
        self.can_focus = False
        self.border_title = "Members"
        self._body = Static("", id="member-names")

    def compose(self) -> ComposeResult:
        yield self._body

    def show(self, room: RoomState | None, own_nick: str) -> None:
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
        # Owners first, marked "@" as on IRC.
        for nick in sorted(room.members, key=lambda n: (not room.is_owner(n), name_key(n))):
            if out:
                out.append("\n")
            out.append("@" if room.is_owner(nick) else " ", style="bold")
            out.append_text(nick_text(nick, bold=name_key(nick) == name_key(own_nick)))
            if nick in room.verified:
                out.append(" ✓", style="bold green")
        if room.more:
            out.append(f"\n… and {room.more} more", style="dim")
        self._body.update(out)
