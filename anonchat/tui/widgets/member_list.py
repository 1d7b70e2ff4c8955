"""Members of the current room, each nick in its own colour."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from ...names import name_key
from ..render import fit_name, nick_text
from ..state import RoomState


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
            mark = Text("@" if room.is_owner(nick) else " ", style="bold")
            name = nick_text(nick, bold=name_key(nick) == name_key(own_nick))
            verified = Text(" ✓", style="bold green") if nick in room.verified else Text()
            out.append_text(fit_name(mark, name, verified, width))
        if room.more:
            out.append(f"\n… and {room.more} more", style="dim")
        self._body.update(out)
