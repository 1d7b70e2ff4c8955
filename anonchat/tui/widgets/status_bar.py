"""The bottom line: server, connection state, latency, nick, and a hint."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..render import clean

STATE_STYLES = {
    "connected": "bold green",
    "connecting": "bold yellow",
    "reconnecting": "bold yellow",
    "disconnected": "bold red",
}


class StatusBar(Static):
    def __init__(self) -> None:
        super().__init__("", id="status-bar")
        self.server = ""
        self.state = "disconnected"
        self.detail = ""
        self.latency: float | None = None
        self.nick = ""
        self.transport = ""

    def set(
        self,
        *,
        server: str | None = None,
        state: str | None = None,
        detail: str | None = None,
        latency: float | None = None,
        nick: str | None = None,
        transport: str | None = None,
    ) -> None:
        if server is not None:
            self.server = server
        if state is not None:
            self.state = state
            if state != "connected":
                self.latency = None
        if detail is not None:
            self.detail = detail
        if latency is not None:
            self.latency = latency
        if nick is not None:
            self.nick = nick
        if transport is not None:
            self.transport = transport
        self.update(self.render_text())

    def render_text(self) -> Text:
        sep = Text(" │ ", style="dim")
        out = Text(" ")
        out.append(clean(self.server) or "no server")
        if self.transport:
            style = "green" if self.transport == "TLS" else "yellow"
            out.append(f" {self.transport}", style=style)
        out.append_text(sep)
        style = "bold red" if self.state.startswith("stopped") else ""
        out.append(f"● {self.state}", style=STATE_STYLES.get(self.state, style))
        if self.detail:
            out.append(f" ({self.detail})", style="dim")
        out.append_text(sep)
        out.append("– ms" if self.latency is None else f"{self.latency * 1000:.0f} ms")
        out.append_text(sep)
        out.append("you: ", style="dim")
        out.append(clean(self.nick), style="bold")
        out.append_text(sep)
        out.append("F1 help  F2 members  Ctrl+Q quit", style="dim")
        return out
