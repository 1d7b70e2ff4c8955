"""The message pane of one room: a log that follows new lines unless the
user scrolled up, and then counts what waits below."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.events import Resize
from textual.message import Message
from textual.widgets import RichLog, Static

from ...plural import plural

MAX_LINES = 2000


class MessageLog(RichLog):
    """A RichLog that keeps its lines as Text so it can re-wrap them on resize."""

    @dataclass
    class Pending(Message):
        log: MessageLog
        count: int

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(wrap=True, min_width=1, max_lines=MAX_LINES, auto_scroll=False, id=id)
        self.can_focus = False
        self.follow = True
        self.pending = 0
        self._texts: deque[Text] = deque(maxlen=MAX_LINES)
        self._width = 0
        self._shown_width = 0  # the text width when last on screen

    def add(self, text: Text, *, counts: bool = True) -> None:
        """Append a line; if the user scrolled up, count it as waiting below."""
        self._texts.append(text)
        width = self.scrollable_content_region.width
        if width:
            self._shown_width = width
            self.write(text, scroll_end=self.follow)
        else:
            # A room not on screen has no width: lay the line out for the width
            # it had when last shown (RichLog would wrap it one character wide).
            self.write(text, width=self._shown_width or None, scroll_end=self.follow)
        if not self.follow and counts:
            self._set_pending(self.pending + 1)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value >= self.max_scroll_y:
            self.follow = True
            self._set_pending(0)
        elif new_value < old_value:
            self.follow = False

    def on_resize(self, event: Resize) -> None:
        # RichLog's own handler runs after this one and renders the first writes.
        width = event.size.width
        if width:
            self._shown_width = self.scrollable_content_region.width or width
        if self._size_known and width != self._width and self._texts:
            self.clear()
            for text in self._texts:
                self.write(text, scroll_end=self.follow)
        self._width = width

    def jump_to_end(self) -> None:
        self.follow = True
        self.scroll_end(animate=False)
        self._set_pending(0)

    def _set_pending(self, count: int) -> None:
        if count != self.pending:
            self.pending = count
            self.post_message(self.Pending(self, count))

    def plain_lines(self) -> list[str]:
        """The text of every line kept, for tests and accessibility."""
        return [t.plain for t in self._texts]


class RoomView(Vertical):
    """One window: the log plus a "N new messages below" bar."""

    def __init__(self, key: str, *, id: str) -> None:
        super().__init__(id=id, classes="room-view")
        self.key = key
        self.log_widget = MessageLog()
        self.below = Static("", classes="new-below")

    def compose(self) -> ComposeResult:
        yield self.log_widget
        yield self.below

    def on_mount(self) -> None:
        self.below.display = False

    def on_message_log_pending(self, event: MessageLog.Pending) -> None:
        event.stop()
        self.below.display = event.count > 0
        self.below.update(Text(f"↓ {plural(event.count, 'new message')} below — End to jump"))
