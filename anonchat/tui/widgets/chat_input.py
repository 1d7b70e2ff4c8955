"""The input box: history on Up/Down, Tab completion, and a few keys that
belong to the message pane while the box is empty."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input

from ..commands import completions

HISTORY_MAX = 200


class ChatInput(Input):
    BINDINGS = [
        Binding("up", "history(-1)", "Previous line", show=False),
        Binding("down", "history(1)", "Next line", show=False),
        Binding("tab", "complete", "Complete", show=False),
        # A terminal without bracketed paste sends a pasted newline as LF (ctrl+j):
        # it ends a line as Enter does, never glues two lines into one.
        Binding("ctrl+j", "submit", "Send", show=False),
    ]

    @dataclass
    class ScrollRequest(Message):
        """Scroll the message pane: ``home`` or ``end``."""

        where: str

    class HelpRequested(Message):
        pass

    @dataclass
    class Line(Message):
        """A line the user sent with Enter (the box is already empty again)."""

        line: str

    @dataclass
    class Pasted(Message):
        """Several lines were pasted: each is a message of its own (the input is
        one line, and Textual's would keep only the first and drop the rest)."""

        lines: list[str]

    def __init__(self, nicks: Callable[[], list[str]]) -> None:
        super().__init__(placeholder="Message, or /help", id="chat-input", select_on_focus=False)
        self._nicks = nicks
        self.history: list[str] = []
        self._history_pos = 0
        self._draft = ""
        self._cycle: list[str] = []
        self._cycle_at = 0
        self._cycle_start = 0
        self._cycle_end = -1

    async def action_submit(self) -> None:
        """Enter: take the line and empty the box at once, in this key's turn.

        Input would post the value and leave the box to be emptied when the
        message is handled, after keys that arrived in the same burst were
        already applied to the old text ("rep alpharep beta", sent twice).
        """
        line = self.value
        self.value = ""
        self.remember(line)
        if line.strip():
            self.post_message(self.Line(line))

    def remember(self, line: str) -> None:
        if line and (not self.history or self.history[-1] != line):
            self.history.append(line)
            del self.history[:-HISTORY_MAX]
        self._history_pos = len(self.history)
        self._draft = ""

    def forget(self, line: str) -> None:
        """Take ``line`` out of the history: it was a passphrase, not a message
        (typed right after /secret, before the form had the focus); Up would
        show it in clear, and Enter send it to the room."""
        for n in range(len(self.history) - 1, -1, -1):
            if self.history[n] == line:
                del self.history[n]
                break
        self._history_pos = len(self.history)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        if self._history_pos == len(self.history):
            self._draft = self.value
        pos = max(0, min(len(self.history), self._history_pos + step))
        if pos == self._history_pos:
            return
        self._history_pos = pos
        self.value = self.history[pos] if pos < len(self.history) else self._draft
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        cursor = self.cursor_position
        if self._cycle and cursor == self._cycle_end:
            # Tab again right after a completion: the next candidate.
            self._cycle_at = (self._cycle_at + 1) % len(self._cycle)
            start = self._cycle_start
        else:
            start, self._cycle = completions(self.value, cursor, self._nicks())
            self._cycle_at = 0
            self._cycle_start = start
            if not self._cycle:
                return
        word = self._cycle[self._cycle_at]
        self.value = self.value[:start] + word + self.value[cursor:]
        self._cycle_end = start + len(word)
        self.cursor_position = self._cycle_end

    def action_home(self, select: bool = False) -> None:
        if not self.value and not select:
            self.post_message(self.ScrollRequest("home"))
        else:
            super().action_home(select)

    def action_end(self, select: bool = False) -> None:
        if not self.value and not select:
            self.post_message(self.ScrollRequest("end"))
        else:
            super().action_end(select)

    def _on_paste(self, event: events.Paste) -> None:
        lines = event.text.splitlines()
        if len(lines) <= 1:
            return  # Input's own handler inserts it at the cursor
        event.stop()
        event.prevent_default()
        cursor = self.cursor_position
        lines[0] = self.value[:cursor] + lines[0]
        lines[-1] = lines[-1] + self.value[cursor:]
        self.value = ""
        self.post_message(self.Pasted([line for line in lines if line.strip()]))

    async def _on_key(self, event: events.Key) -> None:
        if event.character == "?" and not self.value:
            event.stop()
            event.prevent_default()
            self.post_message(self.HelpRequested())
            return
        if event.key != "tab":
            self._cycle = []
        # The box's own keys (Enter, Backspace, Ctrl+U, Ctrl+W, Tab, Up, ...) are run
        # now, in this key's turn. Left to Textual, a key bound here would bubble up
        # to the app and run after the keys that followed it in the same burst had
        # already been typed into the box: "a\rb\r" would send "ab", Ctrl+U would
        # wipe what was typed after it.
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if not binding.priority:
                event.stop()
                event.prevent_default()
                await self.run_action(binding.action)
                return
        # Input's own _on_key runs after this one (Textual calls each class's handler).
