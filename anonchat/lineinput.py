"""Where the line mode's input lines come from, and how a passphrase is read.

* **A pipe or a file** (a script, a bot, a screen reader's helper): a thread
  reads lines as they come and nothing is drawn; a passphrase is the next
  line, read without echo if stdin is a terminal.
* **A terminal** (stdin and stdout both are): prompt_toolkit keeps an input
  line at the bottom.  Incoming lines are printed above it
  (``patch_stdout``), so they never land in the middle of what the user is
  typing, and the half-typed line stays whole below them; the usual line
  editing keys and an in-memory history of the session's lines come with it.
  A passphrase is read at the same line, masked, and never enters the
  history.

Both put each line (without its newline) on one queue, and ``None`` at the
end of input (EOF, Ctrl+D, Ctrl+C).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.filters import Condition
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout

PROMPT = "> "
#: The prompt of a passphrase typed before its command has asked for it.
ASKING = "passphrase: "


class PipeInput:
    """Lines from a file, a pipe, or a terminal that nothing is drawn on."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._echo: _EchoOff | None = None

    def start(self) -> None:
        loop, queue, stream = asyncio.get_running_loop(), self.queue, self.stream

        def run() -> None:  # (in a thread: stdin may be a file, a pipe or a terminal)
            try:
                for line in stream:
                    loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\r\n"))
            except (OSError, ValueError):
                pass
            finally:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=run, name="anonchat-stdin", daemon=True).start()

    def secret(self, prompt: str | None) -> None:
        """The next line is a passphrase (``prompt`` shown, echo off) or, with
        None, an ordinary line again."""
        if not self.stream.isatty():
            return
        if prompt is not None:
            sys.stderr.write(prompt)
            sys.stderr.flush()
            self._echo = _EchoOff(self.stream)
            self._echo.__enter__()
        elif self._echo is not None:
            self._echo.__exit__()
            self._echo = None
            sys.stderr.write("\n")

    def stop(self) -> None:
        """Nothing to stop: the reading thread ends with its input."""


class _SessionHistory(InMemoryHistory):
    """The lines typed in this session, never a passphrase, never on disk."""

    def __init__(self, secret: Callable[[], bool]) -> None:
        super().__init__()
        self._secret = secret

    def append_string(self, string: str) -> None:
        if not self._secret():
            super().append_string(string)


class TerminalInput:
    """An input line that incoming lines are printed above (prompt_toolkit).

    ``passphrase_follows(line)`` says whether the line after ``line`` is a
    passphrase.  The reader decides it the moment a line is entered, not when
    the command runs: keys typed in one burst (``/secret ROOM``, Enter, the
    passphrase, Enter: a paste, a slow link) are read as the next line before
    the command has even started, and would otherwise be echoed in clear and
    kept in the history.
    """

    def __init__(self, passphrase_follows: Callable[[str], bool] = lambda line: False) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._asking: str | None = None  # the passphrase prompt while one is read
        self._masked = False  # the line being read now is a passphrase
        self._follows = passphrase_follows
        masked = Condition(lambda: self._masked or self._asking is not None)
        self.session: PromptSession[str] = PromptSession(
            message=lambda: self._asking or (ASKING if self._masked else PROMPT),
            is_password=masked,
            history=_SessionHistory(lambda: self._masked or self._asking is not None),
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                line = await self.session.prompt_async()
                self._masked = not self._masked and self._follows(line)
                self.queue.put_nowait(line)
        except (EOFError, KeyboardInterrupt):
            self.queue.put_nowait(None)

    def secret(self, prompt: str | None) -> None:
        self._asking = prompt.strip() + " " if prompt else None
        if self.session.app.is_running:
            self.session.app.invalidate()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


LineInput = PipeInput | TerminalInput


def on_a_terminal(stdin: TextIO, stdout: TextIO) -> bool:
    """Is a person typing at a terminal that shows our output too?"""
    try:
        return stdin.isatty() and stdout.isatty()
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def printing_above(use: bool) -> Iterator[None]:
    """Within it, what is written to sys.stdout appears above the input line."""
    if not use:
        yield
        return
    with patch_stdout():
        yield


class _EchoOff:
    """Turn a terminal's echo off (for a passphrase) and back on."""

    def __init__(self, stream: TextIO) -> None:
        self.fd = stream.fileno()
        self.saved: list[Any] | None = None

    def __enter__(self) -> None:
        with contextlib.suppress(termios.error, OSError):
            self.saved = termios.tcgetattr(self.fd)
            quiet = termios.tcgetattr(self.fd)
            quiet[3] &= ~termios.ECHO
            termios.tcsetattr(self.fd, termios.TCSANOW, quiet)

    def __exit__(self, *_: object) -> None:
        if self.saved is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self.fd, termios.TCSANOW, self.saved)
