"""The first screen: where to connect and as whom."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Static

from ...address import format_address
from ...client import Endpoint
from ...errors import Code, ConnectionClosed, Local
from ...frontend.text import refused_by_client
from ...names import InvalidName, check_nick, random_nick
from .. import typeahead
from ..messages import ChatReady, Connected, ConnectFailed
from ..render import clean
from ..session import ConnectOptions, connect
from .key_changed import KEY_FAILURES, KeyChangedScreen, KeyProblem
from .trust import TrustScreen

DEFAULT_PORT = 7667


def describe_failure(code: str, message: str, server: str) -> tuple[str, str]:
    """(which field, sentence) for a failed connection: who refused what."""
    said = clean(message)
    if code == Local.PROXY_FAILED:
        return "server", f"Through the proxy: {said}"
    if code == Local.BAD_ADDRESS:
        return "server", said
    if code == Code.NICK_TAKEN:
        return "nick", f"{said[:1].upper()}{said[1:]}: pick another (or roll a new one)."
    if code == Code.NICK_INVALID:
        return "nick", f"That nick is not allowed: {said}"
    if code == Local.UNREACHABLE:
        return "server", f"Cannot reach {clean(server)}: {said}. Is the daemon running?"
    refused = refused_by_client(code, said)
    if refused is not None:
        return "server", refused
    if code in {c.value for c in Local}:
        return "server", f"Not connected: {said} ({clean(code)})"
    return "server", f"The server refused the connection: {said} ({clean(code)})"


#: What the empty server field shows (greyed): how to fill it in.
SERVER_HINT = "e.g. chat.example.org:7667, or an invite link"


class ConnectScreen(Screen[None]):
    BINDINGS = [Binding("f1", "app.show_help", "Help")]

    def __init__(
        self,
        server: str,
        nick: str,
        *,
        options: ConnectOptions | None = None,
        autoconnect: bool = False,
        nick_maker: Callable[[], str] = random_nick,
    ) -> None:
        super().__init__(id="connect")
        self.nick_maker = nick_maker
        self.options = options or ConnectOptions()
        self.server = server
        self.nick = nick
        self.autoconnect = autoconnect
        self.target = ("", 0)
        self.aimed = self.options  # the options for the server being connected to
        self.busy = False  # connecting: the form takes no keys, the app holds them
        self.failed = False  # the last attempt failed (and the status says what now)

    def compose(self) -> ComposeResult:
        with Center(), Vertical(id="connect-box", classes="dialog") as box:
            box.border_title = "anonchat"
            yield Static(
                Text("No account: pick a nick and talk. Nothing is stored on the server."),
                id="tagline",
            )
            yield Label("Server (HOST:PORT, or an invite link)")
            # A hint, not an address: "127.0.0.1:7667" here read as a value
            # filled in, and Enter on it said "no server address".
            yield Input(self.server, placeholder=SERVER_HINT, id="server")
            yield Static("", id="server-error", classes="error")
            via = self.options.endpoint.via
            note = Static(Text(f"every connection goes through the proxy {via}"), id="via")
            note.display = bool(via)
            yield note
            yield Label("Nick")
            with Horizontal(id="nick-row"):
                yield Input(self.nick, placeholder="your nick", id="nick", max_length=32)
                yield Button("🎲", id="reroll", tooltip="a new random nick")
            yield Static("", id="nick-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Connect", variant="primary", id="connect")
            yield Static("", id="connect-status")

    def on_mount(self) -> None:
        self.query_one("#server" if not self.server else "#nick", Input).focus()
        if self.autoconnect:
            self.submit()  # keys typed ahead wait for the chat
        else:
            typeahead.release(self.app, replay=True)  # they were meant for this form

    @on(Button.Pressed, "#reroll")
    def reroll(self) -> None:
        nick = self.query_one("#nick", Input)
        nick.value = self.nick_maker()
        nick.focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#connect")
    def submit(self) -> None:
        if self.query_one("#connect", Button).disabled:
            return  # a connection is being made: an Enter typed meanwhile is not a new one
        self.show_error("server", "")
        self.show_error("nick", "")
        server = self.query_one("#server", Input).value.strip()
        nick = self.query_one("#nick", Input).value.strip()
        try:
            target = Endpoint.parse(server, DEFAULT_PORT)
        except ValueError as exc:
            self.show_error("server", clean(str(exc)))
            return
        try:
            check_nick(nick)
        except InvalidName as exc:
            self.show_error("nick", clean(str(exc)))
            return
        host, port = self.target = (target.host, target.port)
        self.aimed = self.options.aimed_at(target)
        # What is remembered and shown: a link's server, never its pin.
        link = server.lower().startswith("anonchat:")
        self.server = format_address(host, port) if link else server
        self.nick = nick
        self.set_busy(True)
        self.failed = False
        self.query_one("#connect-status", Static).update(
            Text(f"connecting to {clean(self.aimed.label)}…")
        )
        self.connect_worker(host, port, nick)

    @work(exclusive=True, group="connect")
    async def connect_worker(self, host: str, port: int, nick: str) -> None:
        options = replace(self.aimed, confirm=self.ask_trust)
        try:
            client = await connect(host, port, nick, options)
        except ConnectionClosed as exc:
            self.post_message(ConnectFailed(exc.code, exc.message))
            return
        self.post_message(Connected(client))

    async def ask_trust(self, host: str, port: int, pin: str) -> bool:
        """Called by the client, inside the connect worker, for a new server."""
        return await self.app.push_screen_wait(TrustScreen(host, port, pin))

    def on_connect_failed(self, event: ConnectFailed) -> None:
        self.set_busy(False)
        # What was typed while connecting was meant for a room: never for the form.
        dropped = typeahead.release(self.app, replay=False)
        self.query_one("#connect-status", Static).update("")
        field, sentence = describe_failure(event.code, event.message, self.server)
        self.show_error(field, sentence)
        # The focus goes to the button, not the field: a burst typed meanwhile
        # (the first message, or "/secret ROOM" and a passphrase, over a slow
        # link) would replace the selected field's text and, with its Enter,
        # connect under it -- a passphrase sent to the server as a nick.  Keys
        # do nothing on a button; Enter tries again, Shift+Tab or a click
        # reaches the field.
        self.query_one("#connect", Button).focus()
        self.failed = True
        self.show_status(not_sent=bool(dropped))
        if event.code in KEY_FAILURES:
            host, port = self.target
            known = self.aimed.endpoint.known_hosts
            problem = KeyProblem.of(event.code, event.message, host, port, known)
            self.app.push_screen(KeyChangedScreen(problem))

    def show_status(self, *, not_sent: bool) -> None:
        """After a failure: what Enter does, and whether keys typed went nowhere."""
        status = "Enter tries again; Shift+Tab or a click to change the fields"
        if not_sent:
            status += " (what you typed was not sent)"
        self.query_one("#connect-status", Static).update(Text(status))

    def on_key(self, event: events.Key) -> None:
        """Text typed on the Connect button goes nowhere (the button has the focus
        after a failure so that it never lands in a field): say so, as for the
        keys held while connecting.  Typed at launch against a server that
        refuses at once, the keys come in just after the failure: they were
        dropped without a word."""
        on_button = self.focused is self.query_one("#connect", Button)
        # (A space presses the button: it tries again.)
        if self.failed and on_button and event.is_printable and event.key != "space":
            self.show_status(not_sent=True)

    def on_connected(self, event: Connected) -> None:
        event.stop()
        self.post_message(ChatReady(event.client, self.aimed, self.server))

    def set_busy(self, busy: bool) -> None:
        """While a connection is made, the form takes no keys: over a slow link
        (Tor) people type their first message meanwhile, which replaced the nick
        (selected in its box) and, with its Enter, cancelled the connection and
        made a new one under that text -- sent to the server as a nick."""
        self.busy = busy
        for widget in ("#connect", "#server", "#nick", "#reroll"):
            self.query_one(widget).disabled = busy

    def show_error(self, field: str, sentence: str) -> None:
        widget = self.query_one(f"#{field}-error", Static)
        widget.update(Text(sentence))
        widget.display = bool(sentence)
