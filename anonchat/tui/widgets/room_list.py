"""The sidebar: the server window, joined rooms (numbered for Alt+digit,
a lock before secret ones, with unread counts and a mark for mentions), then
the public rooms."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ..render import LOCK, clean, fit_name, lookalike_mark
from ..state import CONSOLE, ChatState, RoomState

WINDOW = "w:"  # option id prefix: a window (console or joined room), then its key
PUBLIC = "p:"  # option id prefix: a public room we are not in, then its name


def _room_prompt(number: int, room: RoomState, width: int = 0) -> Text:
    """The room's entry on one line of ``width`` cells (see ``fit_name``)."""
    prefix = Text()
    prefix.append(f"{number if number < 10 else ' '} ", style="dim")
    prefix.append("● " if room.joined else "○ ", style="green" if room.joined else "dim")
    name = Text()
    suffix = Text()
    if room.dm:  # a conversation: the other's label, no member count
        name.append(f"@{clean(room.name)}", style="bold" if room.unread else "")
        lookalike_mark(name, room.name)
    else:
        lock = LOCK if room.secret else ""
        name.append(f"{lock}#{clean(room.name)}", style="bold" if room.unread else "")
        lookalike_mark(name, room.name)
        suffix.append(f" {room.member_count}", style="dim")
    if room.mentioned:
        suffix.append(" @", style="bold reverse #e05252")
    if room.unread:
        suffix.append(f" ({room.unread})", style="bold #e6a23c")
    return fit_name(prefix, name, suffix, width)


class RoomList(OptionList):
    """Click (or Enter when focused) on an entry to switch to it or join it."""

    @dataclass
    class Picked(Message):
        window: str | None  # key of a window to show, or
        public: str | None  # name of a public room to join

    def __init__(self) -> None:
        super().__init__(id="room-list")
        self.can_focus = False
        self.border_title = "Rooms"
        self._shown: ChatState | None = None

    def on_resize(self, event: events.Resize) -> None:
        if self._shown is not None:
            self.show(self._shown)  # the entries were fitted to the old width

    def show(self, state: ChatState) -> None:
        self._shown = state
        # An option's padding takes a cell on each side (0 before the first layout).
        width = max(self.scrollable_content_region.width - 2, 0)
        options: list[Option | None] = [
            Option(Text("  ✱ server", style="italic"), id=WINDOW + CONSOLE)
        ]
        for number, (key, room) in enumerate(state.rooms.items(), start=1):
            options.append(Option(_room_prompt(number, room, width), id=WINDOW + key))
        others = [info for info in state.public if state.room(info.room) is None]
        if others:
            options.append(None)
            options.append(Option(Text("Public rooms", style="bold dim"), disabled=True))
            for info in others:
                label = lookalike_mark(Text(f"  #{clean(info.room)}"), info.room)
                label.append(f" {info.members}", style="dim")
                options.append(Option(label, id=PUBLIC + info.room))
        self.set_options(options)
        self.highlighted = self.get_option_index(WINDOW + state.current)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        option_id = event.option.id or ""
        if option_id.startswith(WINDOW):
            self.post_message(self.Picked(option_id[len(WINDOW) :], None))
        elif option_id.startswith(PUBLIC):
            self.post_message(self.Picked(None, option_id[len(PUBLIC) :]))
