"""The main screen: rooms, messages, members, input, status.

The screen owns one chat session.  What it shows is in :mod:`.chat_view`;
what a typed line does is the front-end core's (:mod:`anonchat.frontend`),
shared with the line mode.  Theory of operation:

* ``line_worker`` runs what the user typed (and pasted, and picked with the
  mouse), one line at a time and in order, through
  :class:`~anonchat.frontend.commands.Commands`; the core's notes come back
  through :meth:`ChatScreen.show` as ``Noted`` messages.  A line typed while
  the connection is down waits in the core and is sent once it is back.
* ``session_worker`` pumps the client's events into ``ServerEvent`` messages
  and, when the connection ends, follows the one reconnect policy
  (:func:`anonchat.frontend.reconnect.follow`), reporting its steps.
* ``ping_worker`` measures latency every ``ping_interval`` seconds; a ping
  that gets no answer in ``PING_TIMEOUT`` drops the connection (no goodbye:
  the daemon keeps the session), which ends the event stream and so starts a
  reconnect that resumes it.
* Secret rooms are joined by the passphrase and create-room forms, which run
  the core's attempt and show a refusal inline.  The screen keeps no
  passphrase: the client holds the derived keys (in memory only).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Static

from ...client import Client, Event
from ...dm import dm_key
from ...errors import AnonchatError, ConnectionClosed
from ...frontend.commands import Attempt, Commands, DmWindow, Entered, Note, parse
from ...frontend.reconnect import RECONNECT_DELAYS, Lost, Step, follow
from ...names import name_key
from ...plural import plural
from ...room import DirectRoom, SecretRoom
from .. import typeahead
from ..messages import Latency, ServerEvent
from ..render import (
    ERROR_STYLE,
    LOCK,
    Clock,
    clean,
    join_text,
    nick_text,
    room_text,
    secret_label,
    system_line,
)
from ..session import ConnectOptions
from ..state import CONSOLE, ChatState, RoomState, secret_key
from ..widgets.chat_input import ChatInput
from ..widgets.member_list import MemberList
from ..widgets.message_log import RoomView
from ..widgets.room_list import RoomList
from ..widgets.status_bar import StatusBar
from .chat_view import ChatView
from .create_room import CreateRoomScreen
from .help import show_help
from .passphrase import PassphraseScreen
from .paste import PasteScreen

PING_TIMEOUT = 10.0
#: Below this many columns the room and member lists start hidden (F5, F2 show
#: them), so the message pane gets the width; at 80×24 it is 78 columns wide.
SIDE_PANELS_FROM = 100
#: Pasted lines sent without asking; a longer paste asks first (irssi asks past 5 too).
PASTE_ASK = 5
LIST_REFRESH = 30.0
E2E_HEADER = "secret room: end-to-end encrypted, the server cannot read it"
DM_HEADER = "direct messages, end-to-end encrypted"


def transport(client: Client) -> str:
    """ "TLS" when the connection is encrypted (a client that pins keys says so)."""
    return "TLS" if getattr(client, "pin", "") else "unencrypted"


@dataclass
class Noted(Message):
    """A note of the command core, shown in order with the server's events."""

    note: Note
    #: It shows the window a /join, /create or /query landed in (``landed``).
    landing: bool = False


@dataclass
class Stepped(Message):
    """A step of the reconnect policy."""

    step: Lost | Step


@dataclass(frozen=True)
class _Typed:
    line: str
    #: The window it was typed in, where it goes even if another is on screen by
    #: the time it runs (lines wait while the connection is down, or behind a
    #: paste); None: the window on screen then (clicks, forms, the start).
    window: str | None = None
    #: One of the joins the chat starts with (--join, an invite link's room).
    start: bool = False
    #: A command that opens the window it lands in (SWITCHES): the lines typed
    #: while it waits or runs go to that window (``LANDED``).
    switch: bool = False


#: The commands that open and show a window: /join and /create a room, /query
#: a conversation.  (/secret has its form, which takes what is typed next.)
SWITCHES = frozenset({"join", "j", "create", "query"})
#: The window of a line typed right after such a command, before it ran: the
#: window that command lands in, known only once it ran.
LANDED = "\0landed"


def landed(note: Note) -> str | None:
    """The window a command's note shows, if it shows one: a room entered
    (joined, created, or already in it), or a conversation opened to be shown."""
    if isinstance(note, Entered):
        name = note.room.name
        return secret_key(name) if note.room.secret else name_key(name)
    if isinstance(note, DmWindow) and note.switch:
        return dm_key(note.room.peer)
    return None


@dataclass(frozen=True)
class _Pasted:
    lines: list[str]
    key: str


class ChatScreen(ChatView, Screen[None]):
    kind = "tui"  # which of the core's commands it offers
    passphrase_in_band = False  # passphrases go into a dialog, never the input line

    BINDINGS = [
        Binding("ctrl+n,alt+right", "step(1)", "Next room", priority=True),
        Binding("ctrl+p,alt+left", "step(-1)", "Previous room", priority=True),
        *[
            Binding(f"alt+{n}", f"jump({n})", f"Room {n}", priority=True, show=False)
            for n in range(10)
        ],
        Binding("f1", "help", "Help", priority=True),
        Binding("f2", "toggle_members", "Members", priority=True),
        Binding("f5", "toggle_rooms", "Rooms", priority=True),
        Binding("f3", "create_room", "Create room", priority=True),
        Binding("f4", "app.change_theme", "Theme", priority=True),
        Binding("pageup", "scroll('page_up')", "Scroll up", priority=True, show=False),
        Binding("pagedown", "scroll('page_down')", "Scroll down", priority=True, show=False),
        Binding("ctrl+home", "scroll('home')", "Top", priority=True, show=False),
        Binding("ctrl+end", "scroll('end')", "Bottom", priority=True, show=False),
    ]

    def __init__(
        self,
        client: Client,
        host: str,
        port: int,
        *,
        server_label: str,
        clock: Clock,
        join: Sequence[str] = (),
        banner: str = "",
        ping_interval: float = 5.0,
        reconnect_delays: Sequence[float] = RECONNECT_DELAYS,
        options: ConnectOptions | None = None,
        hosting: bool = False,
    ) -> None:
        super().__init__(id="chat")
        self.host, self.port = host, port
        self.server_label = server_label
        self.clock = clock
        self.initial_joins = list(join)
        self.banner = banner
        self.ping_interval = ping_interval
        self.reconnect_delays = tuple(reconnect_delays)
        self.options = options or ConnectOptions()
        self.hosting = hosting  # this process hosts the daemon (anonchat --local)
        self._invite_pending = hosting  # /invite, once the first room is on screen
        self.state = ChatState()
        self.wanted_nick = client.nick
        self.quitting = False
        self.connected = True
        self._views: dict[str, RoomView] = {}
        self._view_ids = 0
        self.commands = Commands(client, self, server=(host, port))
        self._typed: asyncio.Queue[_Typed | _Pasted] = asyncio.Queue()
        self._secret_pending = False  # a /secret line waits for its form
        self._window: str | None = None  # while a typed line runs: where it was typed
        self._switching = 0  # lines of SWITCHES typed and not yet run to their end
        self._running_switch = False  # one of them runs now
        self._landed: str | None = None  # the window the last of them landed in
        self._landed_by = ""  # (that line, to say so if it landed nowhere)
        self._landing = 0  # such windows noted and not yet shown
        self._switch_typed = ""  # the last such line typed (for the paste dialog)
        self._starting = 0  # the start's joins not yet run
        self._held: list[str] = []  # lines typed meanwhile
        self._holds = 0  # lines ever held (to tell a passphrase's start from a later line)
        self._form: PassphraseScreen | CreateRoomScreen | None = None
        self.ready = False
        self._narrow: bool | None = None  # the side panels' layout was set for this

    # -- layout ----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield RoomList()
            with Vertical(id="center"):
                yield Static("", id="topic-bar")
                yield ContentSwitcher(id="windows")
            yield MemberList()
        yield ChatInput(self.state.all_nicks)
        yield StatusBar()

    def on_mount(self) -> None:
        self.add_view(CONSOLE)
        self.switch_to(CONSOLE)
        self.status.set(
            server=self.server_label,
            state="connected",
            nick=self.client.nick,
            transport=transport(self.client),
            hosting=self.hosting,
        )
        hello = self.client.hello
        pin = getattr(self.client, "pin", "")
        how = f"TLS, key {clean(pin)}" if pin else "unencrypted"
        self.console(
            join_text(
                f"connected to {self.server_label} ({clean(hello.server)}, {how}) as ",
                nick_text(self.client.nick),
                "; /help lists the commands",
            )
        )
        if self.banner:
            self.console(self.banner)
        for room in self.initial_joins:
            self._typed.put_nowait(_Typed(f"/join {room}", start=True))
        self._starting = len(self.initial_joins)
        self.refresh_rooms()
        self.line_worker()
        self.session_worker()
        self.ping_worker()
        self.set_interval(LIST_REFRESH, self.refresh_rooms)
        # Members of secret rooms announce themselves without an event: look again.
        self.set_interval(1.0, self._sync_secret_members)
        self.query_one(ChatInput).focus()
        # Keys typed before the chat was up go to the message box now, after
        # the focus (typeahead.py); their lines go where the start lands.
        typeahead.release(self.app, replay=True)
        self.ready = True  # composed and mounted: its windows can be asked for

    @property
    def client(self) -> Client:
        """The session's connection now (a reconnect replaces it)."""
        return self.commands.client

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    # -- windows ---------------------------------------------------------------

    def add_view(self, key: str) -> RoomView:
        view = self._views.get(key)
        if view is None:
            self._view_ids += 1
            view = RoomView(key, id=f"view-{self._view_ids}")
            # Hidden until switched to: a ContentSwitcher hides only the children
            # it had at its mount, and a view opened in the background (someone's
            # direct message) was shown under the current one, then in place of it.
            view.display = False
            self._views[key] = view
            self.query_one(ContentSwitcher).mount(view)
        return view

    def view(self, key: str) -> RoomView:
        return self._views.get(key) or self.add_view(key)

    def write(self, key: str, line: Text, *, counts: bool = True) -> None:
        self.view(key).log_widget.add(line, counts=counts)

    def console(self, text: Text | str, *, error: bool = False) -> None:
        self.write(CONSOLE, system_line(text, self.clock, error=error), counts=False)

    def here(self, text: Text | str, *, error: bool = False) -> None:
        """A system line in the window on screen."""
        self.write(self.state.current, system_line(text, self.clock, error=error), counts=False)

    def switch_to(self, key: str) -> None:
        if not self.state.switch(key):
            return
        view = self.view(key)
        self.query_one(ContentSwitcher).current = view.id
        self.refresh_chrome()

    def refresh_chrome(self) -> None:
        """Sidebar, member list and topic bar from the state."""
        state = self.state
        self._sync_secret_members(refresh=False)
        self.query_one(RoomList).show(state)
        room = state.rooms.get(state.current)
        self.query_one(MemberList).show(
            room, self.own_label if room and room.secret else self.client.nick
        )
        self.query_one("#topic-bar", Static).update(self.header(room))
        rooms_hidden = not self.query_one(RoomList).display
        self.status.set(activity=self.state.activity() if rooms_hidden else [])

    def header(self, room: RoomState | None) -> Text:
        """The line above the messages: the room, its topic and owners, or why we are out
        (and, while the room list is hidden, the window's Alt+digit number)."""
        bar = Text()
        if not self.query_one(RoomList).display:
            order = self.state.windows()
            key = room.key if room is not None else CONSOLE
            if key in order and order.index(key) < 10:
                bar.append(f"{order.index(key)} ", style="dim")
        if room is None:
            bar.append("server window", style="bold")
            bar.append(f" — {clean(self.server_label)}", style="dim")
            return bar
        bar.append_text(room_text(room.name, secret=room.secret, dm=bool(room.dm)))
        if room.dm:
            handle = self.client.room_by_key(room.key)
            verified = isinstance(handle, DirectRoom) and handle.verified
            bar.append(f" — {DM_HEADER}; you are ", style="dim")
            bar.append_text(nick_text(f"{self.client.nick}#{self.client.dm_fingerprint}"))
            bar.append(" · verified" if verified else " · not verified: /verify", style="dim")
        if room.removed:
            bar.append(f" — not joined: you were {clean(room.removed)}", style=ERROR_STYLE)
            return bar
        if room.dm:
            pass
        elif room.secret:
            bar.append(f" — {E2E_HEADER}; you are ", style="dim")
            bar.append_text(nick_text(self.own_label))
        elif room.topic:
            bar.append(" — ")
            bar.append(clean(room.topic))
        if room.owners:
            bar.append(" · owners: ", style="dim")
            bar.append_text(Text(", ").join(nick_text(o, bold=False) for o in sorted(room.owners)))
        hidden = self.commands.ignores.hidden_in(room.key)
        if hidden:
            bar.append(f"  [{plural(hidden, 'line')} hidden: /ignore]", style="italic")
        return bar

    @property
    def own_label(self) -> str:
        """How the others see us in a secret room: ``alice#k3f9``."""
        handle = self.client.room_by_key(self.state.current) if self.state.current else None
        if isinstance(handle, SecretRoom):
            return handle.label
        return secret_label(self.client.nick, "?")

    def _sync_secret_members(self, refresh: bool = True) -> None:
        """Members of secret rooms: those who announced themselves to us."""
        changed = False
        for room in self.state.secret_rooms():
            handle = self.client.room_by_key(room.key)
            members = handle.announced() if isinstance(handle, SecretRoom) else []
            verified = set(handle.verified()) if isinstance(handle, SecretRoom) else set()
            owners = set(handle.channel.owners()) if isinstance(handle, SecretRoom) else set()
            if room.removed:
                continue  # out of it: nothing more to learn there
            if (members, verified, owners) != (room.members, room.verified, room.owners):
                room.members, room.verified, room.owners = members, verified, owners
                changed = True
        if changed and refresh:
            self.refresh_chrome()

    # -- keys --------------------------------------------------------------------

    def action_step(self, delta: int) -> None:
        self.switch_to(self.state.step(delta))

    def action_jump(self, number: int) -> None:
        order = self.state.windows()
        if number < len(order):
            self.switch_to(order[number])

    def action_help(self) -> None:
        show_help(self.app)

    def action_toggle_members(self) -> None:
        members = self.query_one(MemberList)
        members.display = not members.display

    def action_toggle_rooms(self) -> None:
        rooms = self.query_one(RoomList)
        rooms.display = not rooms.display
        self.refresh_chrome()  # the status bar shows activity while the list is hidden

    def on_resize(self, event: Resize) -> None:
        """Narrow terminals give the message pane the width: below
        SIDE_PANELS_FROM columns both side panels hide (F5 and F2 bring them
        back); crossing that width again lays them out anew."""
        narrow = event.size.width < SIDE_PANELS_FROM
        if narrow == self._narrow:
            return
        self._narrow = narrow
        self.query_one(RoomList).display = not narrow
        self.query_one(MemberList).display = not narrow
        self.status.set(narrow=narrow)
        self.refresh_chrome()

    def action_create_room(self) -> None:
        def created(result: tuple[str, str] | None) -> None:
            if result is not None:
                name, topic = result
                self.run_line(f"/create {name} {topic}".rstrip())

        attempt = self.commands.secret_attempt(create=True)
        self.app.push_screen(CreateRoomScreen(create_secret=attempt), created)

    def action_scroll(self, where: str) -> None:
        log = self.view(self.state.current).log_widget
        if where == "page_up":
            log.scroll_page_up(animate=False)
        elif where == "page_down":
            log.scroll_page_down(animate=False)
        elif where == "home":
            log.scroll_home(animate=False)
        else:
            log.jump_to_end()

    @on(ChatInput.ScrollRequest)
    def scroll_request(self, event: ChatInput.ScrollRequest) -> None:
        self.action_scroll(event.where)

    @on(ChatInput.HelpRequested)
    def help_request(self) -> None:
        self.action_help()

    @on(RoomList.Picked)
    def picked(self, event: RoomList.Picked) -> None:
        if event.window is not None:
            self.switch_to(event.window)
        elif event.public is not None:
            self.run_line(f"/join {event.public}")
        self.query_one(ChatInput).focus()

    # -- input -------------------------------------------------------------------

    @on(ChatInput.Line)
    def submitted(self, event: ChatInput.Line) -> None:
        line = event.line
        form_up = self._form is not None and self._form in self.app.screen_stack
        if self._secret_pending or form_up:
            # Typed right after /secret, before its form had the focus (a burst, a
            # slow link): most likely the passphrase. It goes to the form, never
            # the room, nor to the history.
            if not self._held:
                self.query_one(ChatInput).forget(line)
            self._held.append(line)
            self._holds += 1
            if not self._secret_pending:
                self._secret_done()
            return
        name = (parse(line) or ("", ""))[0]
        if name == "secret":
            self._secret_pending = True
        if self._switching or self._landing:
            # Typed after /join, /create or /query, before it ran or before its
            # window was shown (a burst, a paste without bracketed paste, a slow
            # link): meant for the window it opens.
            window: str | None = LANDED
        elif self._starting:
            # Typed while the start's joins have not all run (typed ahead, before
            # the chat was up): for the room the start lands in, not the server window.
            window = None
        else:
            window = self.state.current
        switch = name in SWITCHES
        if switch:
            self._switching += 1
            self._switch_typed = line
        self._typed.put_nowait(_Typed(line, window, switch=switch))

    @on(ChatInput.Pasted)
    def pasted(self, event: ChatInput.Pasted) -> None:
        """Several lines pasted: a message each, in order, at the server's pace;
        past PASTE_ASK lines, only once the user says so."""
        lines = event.lines
        if not lines:
            return
        if self._switching or self._landing:
            # Pasted right after /join, /create or /query, before its window was
            # on screen: for that window, as a line typed then would be.
            key, where = LANDED, f"the window {self._switch_typed} opens"
        else:
            room = self.state.rooms.get(self.state.current)
            if room is None:
                self.here("you are in no room here: /join NAME first, or /list to see the rooms")
                return
            key, where = room.key, f"{LOCK if room.secret else ''}#{room.name}"
        if len(lines) <= PASTE_ASK:
            self._typed.put_nowait(_Pasted(lines, key))
            return

        def answered(send: bool | None) -> None:
            if send:
                self._typed.put_nowait(_Pasted(lines, key))
            else:
                self.here(f"the {len(lines)} pasted lines were not sent")

        self.app.push_screen(PasteScreen(where, lines), answered)

    def run_line(self, line: str) -> None:
        """Run ``line`` as if typed (the room list's clicks, the forms, the start)."""
        self._typed.put_nowait(_Typed(line))

    @work(exclusive=True, group="lines")
    async def line_worker(self) -> None:
        while not self.quitting:
            item = await self._typed.get()
            try:
                await self._run(item)
            except AnonchatError as exc:  # never let one line end the app
                self.here(f"not done: {clean(str(exc))}", error=True)

    async def _run(self, item: _Typed | _Pasted) -> None:
        if isinstance(item, _Pasted):
            key = self._landed if item.key == LANDED else item.key
            if key is None:
                self.here(
                    join_text(
                        f"not sent: {plural(len(item.lines), 'pasted line')}, after ",
                        Text(clean(self._landed_by)),
                        ", which opened no window",
                    ),
                    error=True,
                )
                return
            await self.commands.say_lines(item.lines, key)
            return
        self._form = None
        window = item.window
        if window == LANDED:
            window = self._landed
            if window is None and not item.switch:
                # The command before it opened no window (a room that does not
                # exist, a nick that is not here): not for the window on screen.
                self.here(
                    join_text(
                        "not sent: typed after ",
                        Text(clean(self._landed_by)),
                        ", which opened no window: ",
                        Text(clean(item.line)),
                    ),
                    error=True,
                )
                return
        self._window = window
        if item.switch:
            self._landed, self._landed_by = None, item.line
            self._running_switch = True
        try:
            await self.commands.line(item.line)
        finally:
            self._window = None
            self._running_switch = False
            if item.switch:
                self._switching -= 1
            if item.start:
                self._starting -= 1
        if (parse(item.line) or ("", ""))[0] == "secret":
            self._secret_done()

    def _secret_done(self) -> None:
        """A /secret line ran: what was typed meanwhile goes to its form, or nowhere."""
        self._secret_pending = False
        held, self._held = self._held, []
        if not held:
            return
        first, rest = held[0], held[1:]
        if self._form is not None:
            self._form.prefill_passphrase(first)
        else:
            self.here("the line typed right after /secret was not sent: it may be a passphrase")
        for line in rest:
            self._typed.put_nowait(_Typed(line))

    # -- what the core asks of a front end ------------------------------------------

    def show(self, note: Note) -> None:
        landing = False
        if self._running_switch:
            shown = landed(note)
            if shown is not None:
                self._landed = shown
                self._landing += 1
                landing = True
        self.post_message(Noted(note, landing))

    def on_noted(self, event: Noted) -> None:
        if not self.quitting:  # the screen goes away: nothing more to show on it
            self.show_note(event.note)
        if event.landing:
            self._landing -= 1

    def current_key(self) -> str | None:
        """The window the line being run was typed in, else the one on screen."""
        current = self.state.current if self._window is None else self._window
        return current if current != CONSOLE else None

    async def read_passphrase(self, prompt: str) -> str | None:
        return None  # never in band: the forms ask

    async def secret_form(self, name: str, create: bool, attempt: Attempt) -> None:
        form: PassphraseScreen | CreateRoomScreen
        if create:
            form = CreateRoomScreen(name, secret=True, create_secret=attempt)
        else:
            form = PassphraseScreen(name, lambda room, passphrase: attempt(room, passphrase, False))
        self._form = form
        holds = self._holds
        box = self.query_one(ChatInput)
        typed = self._secret_pending  # the /secret line was typed (not a click, the start)

        def stray() -> str:
            # What the chat input holds when the form takes the focus was typed
            # after /secret: the start of the passphrase, unless a whole line (the
            # passphrase) was held first, when it is a later line and stays.
            if not typed or self._holds != holds or self._held:
                return ""
            text, box.value = box.value, ""
            return text

        form.stray = stray
        self.app.push_screen(form)

    def front_command(self, name: str, rest: str) -> None:
        if name == "help":
            self.action_help()
        elif name == "theme":
            self._theme(rest)

    def _theme(self, rest: str) -> None:
        themes = sorted(self.app.available_themes)
        if not rest:
            self.here(f"themes: {', '.join(themes)} (now: {self.app.theme}); F4 picks one")
        elif rest in themes:
            self.app.theme = rest
            self.here(f"theme: {rest}")
        else:
            self.here(f"no theme called {clean(rest)}; /theme lists them", error=True)

    def drop_view(self, key: str) -> None:
        view = self._views.pop(key, None)
        if view is not None:
            view.remove()

    @work(group="list")
    async def refresh_rooms(self) -> None:
        """The public rooms for the sidebar (quietly: a failure shows nothing)."""
        with contextlib.suppress(ConnectionClosed, Exception):
            rooms = await self.commands.client.list_rooms()
            self.show_rooms(rooms, show=False)

    # -- the session -------------------------------------------------------------------

    @work(exclusive=True, group="session")
    async def session_worker(self) -> None:
        async def dial(nick: str, old: Client) -> Client:
            endpoint = self.options.for_target(self.host, self.port)
            return await endpoint.connect(nick, confirm=self.options.confirm, resume=old)

        def on_event(event: Event) -> None:
            self.post_message(ServerEvent(event))

        def on_step(step: Lost | Step) -> None:
            self.post_message(Stepped(step))

        await follow(
            self.commands,
            dial,
            on_event,
            on_step,
            persistent=True,
            delays=self.reconnect_delays,
        )

    def on_server_event(self, event: ServerEvent) -> None:
        if not self.quitting:
            self.show_event(event.frame)

    def on_stepped(self, event: Stepped) -> None:
        if not self.quitting:
            self.show_step(event.step)

    @work(exclusive=True, group="ping")
    async def ping_worker(self) -> None:
        while not self.quitting:
            await asyncio.sleep(self.ping_interval)
            client = self.commands.client
            if client.closed is not None:
                continue
            try:
                rtt = await asyncio.wait_for(client.ping(), PING_TIMEOUT)
            except TimeoutError:
                # No answer: the connection is dead. Dropped, not closed: a goodbye
                # would end the session on the daemon (a stalled one reads it
                # later) and is a final close that nobody reconnects after.
                client.abort(f"no answer from the server for {PING_TIMEOUT:g} s")
                continue
            except ConnectionClosed:
                continue
            self.post_message(Latency(rtt))

    def on_latency(self, event: Latency) -> None:
        self.status.set(latency=event.seconds)

    async def close_client(self, msg: str = "") -> None:
        self.quitting = True
        self.commands.stop()
        with contextlib.suppress(Exception):
            await self.commands.client.close(msg, timeout=2.0)
