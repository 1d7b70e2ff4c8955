"""The anonchat Textual app and its factory.

``make_app()`` builds the app with everything a test needs to make it
deterministic (settings directory, clock, random source, timings, the
server's display name);
``run_tui()`` is what ``anonchat`` runs.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from textual import events
from textual.app import App
from textual.binding import Binding

from ..address import format_address
from ..client import Client, Endpoint, KnownHosts
from ..frontend.hangup import HANGUP_SIGNALS, goodbye_on
from ..frontend.reconnect import RECONNECT_DELAYS
from ..names import random_nick
from ..paths import config_dir
from .keys import use_alt_digits
from .messages import ChatReady, NickChosen, QuitRequested
from .render import Clock, local_clock
from .screens.chat import ChatScreen
from .screens.connect import ConnectScreen
from .screens.help import show_help
from .screens.quit import QuitScreen
from .session import ConnectOptions
from .settings import Settings
from .typeahead import HeldEvent, copy


class AnonchatApp(App[int]):
    CSS_PATH = "anonchat.tcss"
    TITLE = "anonchat"
    # Ctrl+P belongs to "previous room"; themes have F4 and /theme.
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        *,
        settings_dir: Path | None = None,
        server: str | None = None,
        nick: str | None = None,
        join: Sequence[str] = (),
        autoconnect: bool = False,
        banner: str = "",
        clock: Clock = local_clock,
        rng: random.Random | None = None,
        ping_interval: float = 5.0,
        reconnect_delays: Sequence[float] = RECONNECT_DELAYS,
        endpoint: Endpoint | None = None,
        hosting: Callable[[], int] | None = None,
        server_name: str | None = None,
    ) -> None:
        super().__init__()
        use_alt_digits()
        self.settings_dir = settings_dir if settings_dir is not None else config_dir()
        self.settings = Settings.load(self.settings_dir)
        self.rng = rng
        self.initial_server = server or self.settings.server
        self.initial_nick = nick or self.settings.nick or self.random_nick()
        self.join = list(join)
        self.autoconnect = autoconnect and bool(self.initial_server)
        self.banner = banner
        self.clock = clock
        self.ping_interval = ping_interval
        self.reconnect_delays = tuple(reconnect_delays)
        self.options = ConnectOptions(self._with_known_hosts(endpoint or Endpoint("", 0)))
        self.chat: ChatScreen | None = None
        self.bells = 0
        # anonchat --local: the daemon runs in this process; this says how many
        # sessions it has (ours included), and quitting asks first.
        self.hosting = hosting
        # How the status bar and the server window name the server (default:
        # HOST:PORT and the proxy); the snapshot tests give a fixed one.
        self.server_name = server_name
        # Keys typed before anything can take them (typeahead.py).
        self.type_ahead: list[HeldEvent] = []

    def _with_known_hosts(self, endpoint: Endpoint) -> Endpoint:
        """Pins remembered beside the settings (None stays None: nothing to remember)."""
        if endpoint.known_hosts is None:
            return endpoint
        return replace(endpoint, known_hosts=KnownHosts(self.settings_dir / "known_hosts"))

    def bell(self) -> None:
        self.bells += 1  # counted, so tests can see a bell rang in headless mode
        super().bell()

    def random_nick(self) -> str:
        return random_nick(self.rng)

    def holding_keys(self) -> bool:
        """Nothing on screen takes keys: the first screen is not up yet, or the
        connect screen is connecting (see typeahead.py)."""
        stack = self.screen_stack
        if len(stack) <= 1:
            return True
        screen = stack[-1]
        return isinstance(screen, ConnectScreen) and screen.busy

    async def on_event(self, event: events.Event) -> None:
        if (
            isinstance(event, (events.Key, events.Paste))
            and not event.is_forwarded
            and self.holding_keys()
        ):
            if isinstance(event, events.Key) and await self._check_bindings(
                event.key, priority=True
            ):
                return  # Ctrl+Q works at any time
            self.type_ahead.append(event)
            return
        await super().on_event(event)

    def release_type_ahead(self, *, replay: bool) -> int:
        """Hand the held keys on to what now has the focus, in order (``replay``),
        or drop them; how many there were."""
        held, self.type_ahead = self.type_ahead, []
        if replay:
            for event in held:
                self.post_message(copy(event))
        return len(held)

    def on_mount(self) -> None:
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        self.theme_changed_signal.subscribe(self, lambda theme: self._remember_theme(theme.name))
        self.push_screen(
            ConnectScreen(
                self.initial_server,
                self.initial_nick,
                options=self.options,
                autoconnect=self.autoconnect,
                nick_maker=self.random_nick,
            )
        )

    def _remember_theme(self, name: str) -> None:
        if name != self.settings.theme:
            self.settings.theme = name
            self.settings.save(self.settings_dir)

    def on_nick_chosen(self, message: NickChosen) -> None:
        self.settings.nick = message.nick
        self.settings.save(self.settings_dir)

    def on_chat_ready(self, message: ChatReady) -> None:
        self.start_chat(message.client, message.options, message.server_text)

    def on_quit_requested(self, message: QuitRequested) -> None:
        self.confirm_quit(message.message)

    def confirm_quit(self, msg: str = "") -> None:
        """Quit; when hosting the daemon, only once the user said so (Ctrl+Q
        in the dialog says so too)."""
        if self.hosting is None:
            self.quit_chat(msg)
            return
        if isinstance(self.screen, QuitScreen):
            self.screen.dismiss(True)
            return
        others = max(self.hosting() - (1 if self.chat is not None else 0), 0)

        def answered(yes: bool | None) -> None:
            if yes:
                self.quit_chat(msg)

        self.push_screen(QuitScreen(others), answered)

    def start_chat(self, client: Client, options: ConnectOptions, server_text: str) -> None:
        """The connect screen got a client: remember the choice, open the chat.

        ``options`` are the ones for this server (its pin, its room if it came
        from a pasted link); every reconnect uses them.
        """
        self.settings.server = server_text
        self.settings.nick = client.nick
        self.settings.save(self.settings_dir)
        endpoint = options.endpoint
        room = endpoint.room
        join = self.join if room is None or room in self.join else [*self.join, room]
        # The server window says what the user must know: --local's invitation,
        # and a given pin followed over a different one in known_hosts.
        banner = "\n".join(filter(None, [self.banner, client.trust_note]))
        self.chat = ChatScreen(
            client,
            endpoint.host,
            endpoint.port,
            server_label=self.server_name or options.label,
            clock=self.clock,
            join=join,
            banner=banner,
            ping_interval=self.ping_interval,
            reconnect_delays=self.reconnect_delays,
            options=options,
            hosting=self.hosting is not None,
        )
        self.switch_screen(self.chat)

    def action_show_help(self) -> None:
        show_help(self)

    def quit_chat(self, msg: str = "") -> None:
        self.run_worker(self._quit(msg), group="quit", exclusive=True)

    async def _quit(self, msg: str) -> None:
        if self.chat is not None:
            await self.chat.close_client(msg)
        self.exit(0)

    async def action_quit(self) -> None:
        self.confirm_quit("")


def app_for_endpoint(
    endpoint: Endpoint | None,
    *,
    nick: str | None = None,
    join: Sequence[str] | None = None,
    banner: str = "",
    **kwargs: Any,
) -> AnonchatApp:
    """The app ``anonchat`` runs for what the command line said (the tests
    build it the same way, with their own ``settings_dir`` and timings)."""
    rooms = list(join or ([endpoint.room] if endpoint and endpoint.room else []))
    named = endpoint is not None and bool(endpoint.host)
    return AnonchatApp(
        server=format_address(endpoint.host, endpoint.port) if endpoint and named else None,
        nick=nick,
        join=rooms,
        autoconnect=named,
        banner=banner,
        endpoint=endpoint,
        **kwargs,
    )


def make_app(settings_dir: Path, **kwargs: Any) -> AnonchatApp:
    """The app factory the tests use: settings always in ``settings_dir``;
    other keywords as for :class:`AnonchatApp`."""
    return AnonchatApp(settings_dir=settings_dir, **kwargs)


async def run_tui(
    endpoint: Endpoint | None = None,
    *,
    nick: str | None = None,
    join: Sequence[str] | None = None,
    banner: str = "",
    hosting: Callable[[], int] | None = None,
) -> int:
    """Run the TUI in the running event loop; return the exit status.

    With an ``endpoint`` that names a server (from flags or an invite link)
    it connects at once; without one (or with host ""), the connect screen
    waits, prefilled with what was used last time.  Either way every
    connection uses the endpoint's options: proxy, TLS, trust.
    """
    app = app_for_endpoint(endpoint, nick=nick, join=join, banner=banner, hosting=hosting)
    # Log records would be written over the screen; keep them out while it runs.
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [logging.NullHandler()]
    try:
        with goodbye_on(HANGUP_SIGNALS, app.quit_chat):
            status = await app.run_async()
    finally:
        root.handlers = saved
    return status or 0
