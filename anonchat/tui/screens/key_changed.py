"""The server's key is not the one expected: say what happened and what to do.

Shown over whatever screen is up (the connect screen, or the chat when a
reconnect met a different key); the app does not try again by itself, since
another try cannot mend it: the user must find out whether the change is
legitimate, by another channel, before connecting again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from ...address import format_address
from ...client import KnownHosts, TrustError
from ...errors import Local
from ..render import clean

#: The failures this dialog explains.
KEY_FAILURES = frozenset({Local.HOST_KEY_CHANGED, Local.PIN_MISMATCH})


@dataclass(frozen=True)
class KeyProblem:
    """What is known about a key that was not the expected one."""

    code: str  # host_key_changed or pin_mismatch
    host: str
    port: int
    message: str  # the client's own sentence, with the pins in it
    known_hosts: str = ""  # the file that remembers the old key ("" when none)
    line: int = 0  # its line for this server (0: none)

    @classmethod
    def of(
        cls, code: str, message: str, host: str, port: int, known: KnownHosts | None
    ) -> KeyProblem:
        found = None
        if known is not None:
            try:
                found = known.lookup(host, port)
            except TrustError:
                found = None
        path = str(known.path) if known is not None else ""
        return cls(code, host, port, message, path, found[1] if found else 0)

    @property
    def new_pin(self) -> str:
        found = re.search(r"(?:now|presented key) (sha256/[A-Za-z0-9+/=]+)", self.message)
        return found.group(1) if found else ""

    def explanation(self) -> Text:
        where = format_address(self.host, self.port)
        out = Text()
        if self.code == Local.PIN_MISMATCH:
            out.append(f"{where} presented a key that is not the pin you were given ")
            out.append("(with --fingerprint or in an invite link).\n\n")
        else:
            out.append(f"{where} presented a key that is not the one remembered for it.\n\n")
        if self.new_pin:
            out.append("Its key now: ")
            out.append(clean(self.new_pin), style="bold")
            out.append("\n\n")
        out.append(
            "Someone may be impersonating the server, or its operator replaced the key. "
            "Nothing was sent to it, and the app stopped connecting.\n\n",
            style="bold",
        )
        out.append("What to do:\n", style="bold underline")
        out.append(
            "1. Ask the operator for the server's pin by another channel (in person, a "
            "call, a message you trust; anonchatd prints it when it starts) and compare it "
            "with the key above.\n"
        )
        if self.code == Local.PIN_MISMATCH:
            out.append(
                "2. If they match, the pin or link you were given is out of date: get a new "
                "one and connect with it.\n"
            )
        elif self.line:
            out.append("2. If they match, the change is legitimate: remove line ")
            out.append(str(self.line), style="bold")
            out.append(" of ")
            out.append(clean(self.known_hosts), style="bold")
            out.append(" (the old key of this server) and connect again; the new key is ")
            out.append("then shown for you to accept.\n")
        else:
            out.append(
                "2. If they match, remove this server's line from your known_hosts file "
                "and connect again.\n"
            )
        out.append("3. If they do not match, do not connect: tell the operator.")
        return out


class KeyChangedScreen(ModalScreen[None]):
    """Says what happened and what to do; closes with Escape or its button."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, problem: KeyProblem) -> None:
        super().__init__()
        self.problem = problem

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="key-box", classes="dialog") as box:
            box.border_title = (
                "The server's key does not match the pin"
                if self.problem.code == Local.PIN_MISMATCH
                else "The server's key has changed"
            )
            yield Static(self.problem.explanation(), id="key-text")
            with Horizontal(classes="buttons"):
                yield Button("Close", variant="primary", id="close")

    def on_mount(self) -> None:
        # Not scrolled to the button: on a small terminal what happened (the
        # first lines) stays in view; Enter and Escape close it all the same.
        self.query_one("#close", Button).focus(scroll_visible=False)

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)
