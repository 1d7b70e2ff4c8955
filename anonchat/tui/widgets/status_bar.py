"""The bottom line: server, connection state, latency, nick, and a hint."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..render import clean

MENTION_STYLE = "bold reverse #e05252"  # as the room list marks a mention

STATE_STYLES = {
    "connected": "bold green",
    "connecting": "bold yellow",
    "reconnecting": "bold yellow",
    "disconnected": "bold red",
}


#: The fewest characters of the server's name the status bar keeps.
MIN_SERVER = 16


def shorten(text: str, width: int) -> str:
    """``text`` in ``width`` characters, the middle replaced by an ellipsis."""
    if len(text) <= width:
        return text
    head = (width - 1 + 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


class StatusBar(Static):
    def __init__(self) -> None:
        super().__init__("", id="status-bar")
        self.server = ""
        self.state = "disconnected"
        self.detail = ""
        self.latency: float | None = None
        self.nick = ""
        self.transport = ""
        self.hosting = False
        self.narrow = False  # side panels hidden: a shorter hint
        self.activity: list[tuple[int, bool]] = []  # (window number, mentioned)

    def set(
        self,
        *,
        server: str | None = None,
        state: str | None = None,
        detail: str | None = None,
        latency: float | None = None,
        nick: str | None = None,
        transport: str | None = None,
        hosting: bool | None = None,
        narrow: bool | None = None,
        activity: list[tuple[int, bool]] | None = None,
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
        if hosting is not None:
            self.hosting = hosting
        if narrow is not None:
            self.narrow = narrow
        if activity is not None:
            self.activity = activity
        self.update(self.render_text())

    def on_resize(self) -> None:
        self.update(self.render_text())

    def render_text(self) -> Text:
        rest = self._rest()
        server = clean(self.server) or "no server"
        room = self.size.width - 1 - len(server) - rest.cell_len
        if self.size.width and room < 0:
            # A long server name (an onion address and the proxy: over 90 columns)
            # would push the connection state and the nick off the line.  First
            # the key hints go (F1 still works); then the server's own name gives
            # way, shortened in the middle, but never "via PROXY": that the
            # connection goes through the proxy is what a Tor user checks here.
            rest = self._rest(hints=False)
            room = self.size.width - 1 - len(server) - rest.cell_len
            if room < 0:
                host, via, proxy = server.partition(" via ")
                keep = len(via) + len(proxy)
                if via and len(host) + room >= MIN_SERVER:
                    server = shorten(host, len(host) + room) + via + proxy
                else:
                    server = shorten(server, max(MIN_SERVER + keep, len(server) + room))
        out = Text(" ")
        out.append(server)
        out.append_text(rest)
        return out

    def _rest(self, hints: bool = True) -> Text:
        sep = Text(" │ ", style="dim")
        out = Text()
        if self.transport:
            style = "green" if self.transport == "TLS" else "yellow"
            out.append(f" {self.transport}", style=style)
        if self.hosting:  # narrow: the pane shows /invite's command already
            out.append(" hosting" if self.narrow else " hosting (/invite)", style="bold")
        out.append_text(sep)
        style = "bold red" if self.state.startswith("stopped") else ""
        out.append(f"● {self.state}", style=STATE_STYLES.get(self.state, style))
        if self.detail:
            out.append(f" ({self.detail})", style="dim")
        out.append_text(sep)
        out.append("– ms" if self.latency is None else f"{self.latency * 1000:.0f} ms")
        out.append_text(sep)
        if not self.narrow:
            out.append("you: ", style="dim")
        out.append(clean(self.nick), style="bold")
        if self.activity:
            out.append_text(sep)
            out.append("act: ", style="dim")
            for i, (number, mentioned) in enumerate(self.activity):
                if i:
                    out.append(",", style="dim")
                out.append(str(number), style=MENTION_STYLE if mentioned else "bold #e6a23c")
        if not hints:
            return out
        out.append_text(sep)
        # Narrow: the keys that bring the hidden panels back (F1 lists the rest),
        # unless the room activity needs the room: 80 columns hold one or the other.
        if self.narrow:
            hint = "F1 help" if self.activity else "F1 help F5/F2 panels"
        else:
            hint = "F1 help  F2 members  Ctrl+Q quit"
        out.append(hint, style="dim")
        return out
