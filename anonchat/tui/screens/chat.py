"""The main screen: rooms, messages, members, input, status.

The screen owns one chat session.  Its workers talk to the daemon through
:class:`~anonchat.client.Client` and post :mod:`..messages`; the handlers here
update :class:`~..state.ChatState` and the widgets.  Theory of operation:

* ``session_worker`` pumps ``client.events()`` into ``ServerEvent`` messages.
  When the stream ends (the server went away, or a ping timed out and we
  closed the client), it reconnects with backoff, joins the rooms again and
  posts ``Reconnected``; then it pumps the new client.
* ``ping_worker`` measures latency every ``ping_interval`` seconds; a ping
  that gets no answer in ``PING_TIMEOUT`` closes the client, which ends the
  event stream and so starts a reconnect.
* Requests (join, say, ...) each run in a short worker of group ``requests``
  and post their outcome; a failed request becomes an error line.
* Secret rooms are joined by the passphrase and create-room forms, which run
  :meth:`ChatScreen.secret_attempt` and show a refusal inline.  The screen
  keeps no passphrase: the client holds the derived keys (in memory only), and
  after a reconnect it resumes the session or rejoins with those keys.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Input, Static

from ... import events as ev
from ...client import Client
from ...crypto import normalize_room
from ...errors import Code, ConnectionClosed, RequestError
from ...frontend import MODE_USAGE, parse_mode, privacy_report, verify_report
from ...names import name_key
from ...secret import SecretMessage, SecretNotice
from .. import commands as cmds
from ..messages import (
    ConnectionLost,
    Latency,
    MembersListed,
    NickChanged,
    Reconnected,
    Reconnecting,
    RequestFailed,
    RoomJoined,
    RoomLeft,
    RoomsListed,
    SecretEntered,
    ServerEvent,
)
from ..render import (
    LOCK,
    Clock,
    clean,
    event_line,
    join_text,
    mentions,
    message_line,
    mode_line,
    nick_text,
    room_text,
    secret_label,
    secret_message_line,
    secret_notice_line,
    system_line,
)
from ..session import (
    RECONNECT_DELAYS,
    ConnectOptions,
    backoff,
    enter_secret,
    reconnect_once,
)
from ..state import CONSOLE, ChatState, RoomState, secret_key
from ..widgets.chat_input import ChatInput
from ..widgets.member_list import MemberList
from ..widgets.message_log import RoomView
from ..widgets.room_list import RoomList
from ..widgets.status_bar import StatusBar
from .create_room import CreateRoomScreen
from .passphrase import PassphraseScreen
from .paste import PasteScreen

if TYPE_CHECKING:
    from ..app import AnonchatApp

PING_TIMEOUT = 10.0
#: Pasted lines sent without asking; a longer paste asks first (irssi asks past 5 too).
PASTE_ASK = 5
LIST_REFRESH = 30.0
GAP_NOTE = "the server no longer held your session: messages sent while you were away are lost"
E2E_HEADER = "secret room: end-to-end encrypted, the server cannot read it"


def transport(client: Client) -> str:
    """ "TLS" when the connection is encrypted (a client that pins keys says so)."""
    return "TLS" if getattr(client, "pin", "") else "unencrypted"


class ChatScreen(Screen[None]):
    BINDINGS = [
        Binding("ctrl+n,alt+right", "step(1)", "Next room", priority=True),
        Binding("ctrl+p,alt+left", "step(-1)", "Previous room", priority=True),
        *[
            Binding(f"alt+{n}", f"jump({n})", f"Room {n}", priority=True, show=False)
            for n in range(10)
        ],
        Binding("f1", "help", "Help", priority=True),
        Binding("f2", "toggle_members", "Members", priority=True),
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
    ) -> None:
        super().__init__(id="chat")
        self.client = client
        self.host, self.port = host, port
        self.server_label = server_label
        self.clock = clock
        self.initial_joins = list(join)
        self.banner = banner
        self.ping_interval = ping_interval
        self.reconnect_delays = tuple(reconnect_delays)
        self.options = options or ConnectOptions()
        self.state = ChatState()
        self.wanted_nick = client.nick
        self.quitting = False
        self.connected = True
        self._views: dict[str, RoomView] = {}
        self._view_ids = 0
        # Secret rooms' passphrases by window key: in memory only, for rejoining.

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
        self._add_view(CONSOLE)
        self.switch_to(CONSOLE)
        self.status.set(
            server=self.server_label,
            state="connected",
            nick=self.client.nick,
            transport=transport(self.client),
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
            self.request_join(room)
        self.request_list(show=False)
        self.session_worker()
        self.ping_worker()
        self.set_interval(LIST_REFRESH, lambda: self.request_list(show=False))
        # Members of secret rooms announce themselves without an event: look again.
        self.set_interval(1.0, self._sync_secret_members)
        self.query_one(ChatInput).focus()

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def chat_app(self) -> AnonchatApp:
        from ..app import AnonchatApp

        app = self.app
        assert isinstance(app, AnonchatApp)
        return app

    # -- windows ---------------------------------------------------------------

    def _add_view(self, key: str) -> RoomView:
        view = self._views.get(key)
        if view is None:
            self._view_ids += 1
            view = RoomView(key, id=f"view-{self._view_ids}")
            self._views[key] = view
            self.query_one(ContentSwitcher).mount(view)
        return view

    def view(self, key: str) -> RoomView:
        return self._views.get(key) or self._add_view(key)

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
        own = self.own_label(room.name) if room and room.secret else ""
        self.query_one(MemberList).show(room, own)
        bar = Text()
        if room is None:
            bar.append("server window", style="bold")
            bar.append(f" — {clean(self.server_label)}", style="dim")
        elif room.secret:
            bar.append_text(room_text(room.name, secret=True))
            bar.append(f" — {E2E_HEADER}; you are ", style="dim")
            bar.append_text(nick_text(self.own_label(room.name)))
        else:
            bar.append_text(room_text(room.name))
            if room.topic:
                bar.append(" — ")
                bar.append(clean(room.topic))
        self.query_one("#topic-bar", Static).update(bar)

    def own_label(self, room: str) -> str:
        """How the others see us in a secret room: ``alice#k3f9``."""
        return self.client.own_secret_label(room)

    def _sync_secret_members(self, refresh: bool = True) -> None:
        """Members of secret rooms: those who announced themselves to us."""
        changed = False
        for room in self.state.secret_rooms():
            channel = self.client.secret.get(normalize_room(room.name))
            listed = channel.member_list() if channel is not None else []
            members = [m for m, _ in listed]
            verified = {m for m, ok in listed if ok}
            if members != room.members or verified != room.verified:
                room.members, room.verified = members, verified
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
        self.chat_app.action_show_help()

    def action_toggle_members(self) -> None:
        members = self.query_one(MemberList)
        members.display = not members.display

    def action_create_room(self) -> None:
        def created(result: tuple[str, str] | None) -> None:
            if result is not None:
                self.request_create(*result)

        self.app.push_screen(CreateRoomScreen(create_secret=self._create_secret), created)

    async def _create_secret(self, room: str, passphrase: str, generated: bool) -> str | None:
        return await self.secret_attempt(room, passphrase, create=True, generated=generated)

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
            self.request_join(event.public)
        self.query_one(ChatInput).focus()

    # -- input -------------------------------------------------------------------

    @on(Input.Submitted, "#chat-input")
    def submitted(self, event: Input.Submitted) -> None:
        box = self.query_one(ChatInput)
        line = event.value
        box.remember(line)
        box.value = ""
        if line.strip():
            self.handle_line(line)

    @on(ChatInput.Pasted)
    def pasted(self, event: ChatInput.Pasted) -> None:
        """Several lines pasted: a message each, in order, at the server's pace;
        past PASTE_ASK lines, only once the user says so."""
        lines = event.lines
        room = self.state.rooms.get(self.state.current)
        if not lines:
            return
        if room is None:
            self.here("you are in no room here: /join NAME first, or /list to see the rooms")
            return
        if len(lines) <= PASTE_ASK:
            self.send_lines(room, lines)
            return

        def answered(send: bool | None) -> None:
            if send:
                self.send_lines(room, lines)
            else:
                self.here(f"the {len(lines)} pasted lines were not sent")

        where = f"{LOCK if room.secret else ''}#{room.name}"
        self.app.push_screen(PasteScreen(where, lines), answered)

    def send_lines(self, room: RoomState, lines: list[str]) -> None:
        target, secret = room.name, room.secret

        async def send_all(client: Client) -> None:
            for n, line in enumerate(lines):
                try:
                    if secret:
                        await client.say_secret(target, line)
                    else:
                        await client.say(target, line)
                except RequestError as exc:
                    left = len(lines) - n
                    raise RequestError(
                        exc.code, f"{exc.message} ({left} of {len(lines)} pasted lines not sent)"
                    ) from None

        self.request("say", send_all)

    def handle_line(self, line: str) -> None:
        parsed = cmds.parse(line)
        if parsed is None:
            self.send_text(line[1:] if line.startswith("//") else line)
            return
        name, rest = parsed
        command = cmds.lookup(name)
        if command is None:
            self.here(f"unknown command /{clean(name)}; /help lists the commands", error=True)
            return
        handler: Callable[[str], None] = getattr(self, f"cmd_{command.name}")
        handler(rest)

    def send_text(self, text: str, me: bool = False) -> None:
        room = self.state.rooms.get(self.state.current)
        if room is None:
            self.here("you are in no room here: /join NAME first, or /list to see the rooms")
            return
        target = room.name
        if room.secret:
            self.request("say", lambda c: c.say_secret(target, text, me=me))
        else:
            self.request("say", lambda c: c.say(target, text, me=me))

    def cmd_join(self, rest: str) -> None:
        name = rest.split(" ", 1)[0].lstrip("#")
        if not name:
            self.here("usage: /join ROOM", error=True)
        elif self.state.room(name) is not None:
            self.switch_to(name_key(name))
        else:
            self.request_join(name)

    def cmd_create(self, rest: str) -> None:
        name, _, topic = rest.partition(" ")
        if not name:
            self.action_create_room()
        else:
            self.request_create(name.lstrip("#"), topic.strip())

    def find_room(self, name: str) -> RoomState | None:
        """The room ``name`` means: the current one if it matches, else a public
        one, else a secret one.  No name: the current room."""
        current = self.state.rooms.get(self.state.current)
        if not name:
            return current
        if current is not None and (
            name_key(name) == name_key(current.name)
            or normalize_room(name) == normalize_room(current.name)
        ):
            return current
        return self.state.room(name) or self.state.room(name, secret=True)

    def cmd_leave(self, rest: str) -> None:
        name = rest.split(" ", 1)[0].lstrip("#")
        room = self.find_room(name)
        if room is None:
            self.here("you are not in that room" if name else "this is not a room", error=True)
            return
        target = room.name
        if not room.secret:
            self.request("leave", lambda c: c.leave(target), lambda _: RoomLeft(target))
        elif normalize_room(target) in self.client.secret:
            self.request(
                "leave", lambda c: c.leave_secret(target), lambda _: RoomLeft(target, secret=True)
            )
        else:  # not joined on this connection (a rejoin failed): just close the window
            self.post_message(RoomLeft(target, secret=True))

    def cmd_nick(self, rest: str) -> None:
        if not rest:
            self.here(join_text("you are ", nick_text(self.client.nick), "; usage: /nick NEWNICK"))
            return
        self.request("nick", lambda c: c.set_nick(rest), lambda _: NickChanged(rest))

    def cmd_topic(self, rest: str) -> None:
        room = self.state.rooms.get(self.state.current)
        if room is None:
            self.here("this is not a room", error=True)
        elif room.secret:
            self.here("secret rooms have no topic: the server would see it")
        elif not rest:
            self.here(
                join_text("topic of ", room_text(room.name), ": ", clean(room.topic) or "(none)")
            )
        else:
            target = room.name
            self.request("topic", lambda c: c.set_topic(target, rest))

    def _owned_room(self) -> RoomState | None:
        """The current room, for an owner's command (public or secret)."""
        room = self.state.rooms.get(self.state.current)
        if room is None:
            self.here("owners' commands work in the current room", error=True)
        return room

    def cmd_kick(self, rest: str, ban: bool = False) -> None:
        nick, _, reason = rest.partition(" ")
        room = self._owned_room()
        if room is None:
            return
        if not nick:
            self.here(f"usage: /{'ban' if ban else 'kick'} NICK [REASON]", error=True)
            return
        target, why = room.name, reason.strip() or None
        if not room.secret:
            self.request("kick", lambda c: c.kick(target, nick, why, ban=ban))
            return
        if why:
            self.here("the reason is not sent in a secret room: the server would read it")
        self.request("kick", lambda c: c.secret_kick(target, nick, ban=ban))

    def cmd_ban(self, rest: str) -> None:
        self.cmd_kick(rest, ban=True)

    def cmd_op(self, rest: str) -> None:
        room = self._owned_room()
        if room is not None and rest.split():
            target, nick = room.name, rest.split()[0]
            if room.secret:
                self.request("op", lambda c: c.secret_op(target, nick))
            else:
                self.request("op", lambda c: c.op(target, nick))
        elif room is not None:
            self.here("usage: /op NICK", error=True)

    def cmd_mode(self, rest: str) -> None:
        room = self._owned_room()
        if room is None:
            return
        target, modes = room.name, parse_mode(rest)
        if modes is None:
            self.here(MODE_USAGE, error=True)
        elif room.secret:
            self.request("mode", lambda c: c.secret_mode(target, **modes))
        else:
            self.request("mode", lambda c: c.set_mode(target, **modes))

    def cmd_me(self, rest: str) -> None:
        if not rest:
            self.here("usage: /me ACTION", error=True)
        else:
            self.send_text(rest, me=True)

    def cmd_who(self, rest: str) -> None:
        name = rest.split(" ", 1)[0].lstrip("#")
        room = self.find_room(name)
        if room is not None and room.secret:
            self._who_secret(room)
            return
        target = name or (room.name if room else "")
        if not target:
            self.here("usage: /who ROOM", error=True)
            return
        self.request("who", lambda c: c.who(target), MembersListed)

    def _who_secret(self, room: RoomState) -> None:
        try:
            channel = self.client.secret_channel(room.name)
        except RequestError as exc:
            self.here(clean(exc.message), error=True)
            return
        members, owners = channel.members(), channel.owners()
        names = Text(", ").join(nick_text(m, bold=False) for m in members)
        self.here(
            join_text(
                room_text(room.name, secret=True),
                f" ({len(members)}, those who announced themselves): ",
                names,
            )
        )
        shown = Text(", ").join(nick_text(m, bold=False) for m in owners) if owners else "none here"
        self.here(join_text("owners (checked by signature): ", shown))

    def cmd_list(self, rest: str) -> None:
        self.request_list(show=True)

    def cmd_secret(self, rest: str) -> None:
        words = rest.split()
        create = bool(words) and words[0].lower() == "create"
        if create:
            words = words[1:]
        if len(words) > 1:
            self.here("usage: /secret ROOM (join) or /secret create ROOM", error=True)
            return
        name = words[0].lstrip("#") if words else ""
        room = self.state.room(name, secret=True) if name else None
        if room is not None and normalize_room(room.name) in self.client.secret:
            self.switch_to(room.key)  # already in it
        elif create:
            self.app.push_screen(
                CreateRoomScreen(name, secret=True, create_secret=self._create_secret)
            )
        else:
            self.app.push_screen(PassphraseScreen(name, self._join_secret))

    async def _join_secret(self, room: str, passphrase: str) -> str | None:
        return await self.secret_attempt(room, passphrase, create=False)

    async def secret_attempt(
        self, room: str, passphrase: str, *, create: bool, generated: bool = False
    ) -> str | None:
        """Join or create a secret room for a form: None when in, else the
        server's sentence (a wrong passphrase, a rate limit, ...)."""
        try:
            how = await enter_secret(self.client, room, passphrase, create)
        except RequestError as exc:
            return exc.message
        except ConnectionClosed as exc:
            return f"not connected ({exc.message})"
        self.post_message(SecretEntered(room, passphrase, how, generated))
        return None

    def cmd_verify(self, rest: str) -> None:
        room = self.state.rooms.get(self.state.current)
        name = room.name if room is not None else None
        try:
            lines = verify_report(self.client, name, room is not None and room.secret, rest)
        except RequestError as exc:
            self.here(clean(exc.message), error=True)
            return
        for line in lines:
            self.here(line)
        self._sync_secret_members()

    def cmd_privacy(self, rest: str) -> None:
        room = self.state.rooms.get(self.state.current)
        name = room.name if room is not None else None
        for line in privacy_report(self.client, name, room is not None and room.secret):
            self.here(line)

    def cmd_theme(self, rest: str) -> None:
        themes = sorted(self.app.available_themes)
        if not rest:
            self.here(f"themes: {', '.join(themes)} (now: {self.app.theme}); F4 picks one")
        elif rest in themes:
            self.app.theme = rest
            self.here(f"theme: {rest}")
        else:
            self.here(f"no theme called {clean(rest)}; /theme lists them", error=True)

    def cmd_help(self, rest: str) -> None:
        self.action_help()

    def cmd_quit(self, rest: str) -> None:
        self.chat_app.quit_chat(rest)

    # -- requests ------------------------------------------------------------------

    def request_join(self, name: str) -> None:
        self.request("join", lambda c: c.join_or_create(name), RoomJoined)

    def request_create(self, name: str, topic: str) -> None:
        self.request("create", lambda c: c.create(name, topic or None), RoomJoined)

    def request_list(self, show: bool) -> None:
        self.request(
            "list", lambda c: c.list_rooms(), lambda r: RoomsListed(r, show), quiet=not show
        )

    @work(group="requests")
    async def request(
        self,
        what: str,
        call: Callable[[Client], Awaitable[Any]],
        done: Callable[[Any], Message] | None = None,
        quiet: bool = False,
    ) -> None:
        """Run one request on the current client; post ``done(result)`` or a failure."""
        try:
            result = await call(self.client)
        except RequestError as exc:
            self.post_message(RequestFailed(what, exc.code, exc.message))
            return
        except ConnectionClosed as exc:
            if not quiet:
                self.post_message(
                    RequestFailed(what, "not_connected", f"not connected ({exc.message})")
                )
            return
        if done is not None:
            self.post_message(done(result))

    # -- the session -----------------------------------------------------------------

    @work(exclusive=True, group="session")
    async def session_worker(self) -> None:
        client = self.client
        while True:
            async for frame in client.events():
                self.post_message(ServerEvent(frame))
            if self.quitting:
                return
            lost = client.closed or ConnectionClosed("eof", "the connection ended")
            self.post_message(ConnectionLost(lost.code, lost.message))
            client = await self._reconnect(lost.message, client)

    async def _reconnect(self, reason: str, old: Client) -> Client:
        last = reason
        for attempt, delay in enumerate(backoff(self.reconnect_delays), start=1):
            self.post_message(Reconnecting(attempt, delay, last))
            await asyncio.sleep(delay)
            try:
                client = await reconnect_once(
                    self.host, self.port, self.wanted_nick, self.options, old
                )
            except ConnectionClosed as exc:
                last = exc.message
                continue
            if client.resumed:  # the daemon kept our session: every room, nothing missed
                self.post_message(Reconnected(client, [], []))
                return client
            try:
                result = await client.rejoin(old)
            except ConnectionClosed as exc:
                last = exc.message
                continue
            self.post_message(Reconnected(client, result.joined, result.failed, result.secret))
            return client
        raise AssertionError("backoff() never ends")

    @work(exclusive=True, group="ping")
    async def ping_worker(self) -> None:
        while not self.quitting:
            await asyncio.sleep(self.ping_interval)
            client = self.client
            if client.closed is not None:
                continue
            try:
                rtt = await asyncio.wait_for(client.ping(), PING_TIMEOUT)
            except TimeoutError:
                # No answer: treat the connection as dead; closing it ends the
                # event stream and the session worker reconnects.
                await client.close(timeout=1.0)
                continue
            except ConnectionClosed:
                continue
            self.post_message(Latency(rtt))

    async def close_client(self, msg: str = "") -> None:
        self.quitting = True
        with contextlib.suppress(Exception):
            await self.client.close(msg, timeout=2.0)

    # -- what the workers report ---------------------------------------------------------

    def on_server_event(self, event: ServerEvent) -> None:
        frame = event.frame
        if isinstance(frame, SecretMessage):
            self._on_secret_msg(frame)
        elif isinstance(frame, SecretNotice):
            room = self.state.apply_secret(frame)
            self.write(room.key, secret_notice_line(frame, self.clock), counts=False)
            self._sync_secret_members()
            if frame.kind == "removed":  # kicked or banned: the client left the room
                why = clean(frame.text).removeprefix("you were ")  # "kicked by bob#fp"
                self.post_message(RoomLeft(frame.room, secret=True, removed=why))
        elif isinstance(frame, ev.Msg):
            self._on_msg(frame)
        elif isinstance(frame, ev.Presence | ev.TopicChanged):
            room = self.state.apply(frame)
            self.write(room.key, event_line(frame, self.clock), counts=False)
            if isinstance(frame, ev.Presence) and frame.kind == "nick":
                self.status.set(nick=self.client.nick)
            if (
                isinstance(frame, ev.Presence)
                and frame.kind in ("kick", "ban")
                and name_key(frame.nick) == name_key(self.client.nick)
            ):
                verb = "kicked" if frame.kind == "kick" else "banned"
                why = f" ({clean(frame.msg)})" if frame.msg else ""
                removed = f"{verb} by {clean(frame.by or 'an owner')}{why}"
                self.post_message(RoomLeft(frame.room, removed=removed))
            self.refresh_chrome()
        elif isinstance(frame, ev.ModeChanged):
            key = name_key(frame.room)
            if key in self.state.rooms:
                self.write(key, mode_line(frame, self.clock), counts=False)
        elif isinstance(frame, ev.Missed):
            key = name_key(frame.room) if frame.room else CONSOLE
            lost = frame.last - frame.first + 1
            note = f"{lost} events were said while you were away and are lost"
            self.write(
                key if key in self.state.rooms else CONSOLE,
                system_line(note, self.clock),
                counts=False,
            )
        elif isinstance(frame, ev.Bye | ev.Error):
            text = f"the server closed the connection: {clean(frame.msg)} ({clean(frame.code)})"
            self.console(text, error=True)

    def _on_msg(self, frame: ev.Msg) -> None:
        room = self.state.apply(frame)
        own = self.client.nick
        self.write(room.key, message_line(frame, self.clock, own_nick=own))
        mentioned = name_key(frame.nick) != name_key(own) and mentions(frame.text, own)
        where = f"{clean(frame.nick)} in #{clean(frame.room)}"
        self._count(room, mentioned, where, frame.text)

    def _on_secret_msg(self, msg: SecretMessage) -> None:
        room = self.state.apply_secret(msg)
        own = self.client.nick
        self.write(room.key, secret_message_line(msg, self.clock, own_nick=own))
        mentioned = not msg.own and mentions(msg.text, own)
        where = f"{secret_label(msg.nick, msg.fingerprint)} in {LOCK}#{clean(room.name)}"
        self._count(room, mentioned, where, msg.text)

    def _count(self, room: RoomState, mentioned: bool, where: str, text: str) -> None:
        """Unread marks for a room not shown, and a bell and toast for a mention."""
        if room.key != self.state.current:
            room.unread += 1
            room.mentioned = room.mentioned or mentioned
        if mentioned:
            self.app.bell()
            self.app.notify(
                f"{where}: {clean(text)[:200]}", title="You were mentioned", markup=False
            )
        self.refresh_chrome()

    def on_secret_entered(self, event: SecretEntered) -> None:
        channel = self.client.secret.get(normalize_room(event.room))
        room = self.state.enter_secret(event.room, channel.members() if channel else [])
        room.joined = True
        self._add_view(room.key)
        shown = room_text(room.name, secret=True)
        if event.how == "rejoined":
            text = join_text("rejoined ", shown, f"; {GAP_NOTE}")
            self.write(room.key, system_line(text, self.clock), counts=False)
            self.refresh_chrome()
            return
        words = join_text(
            f"you {event.how} the secret room ",
            shown,
            " as ",
            nick_text(self.own_label(event.room)),
            "; only those with the passphrase can read it; /privacy says what the server sees",
        )
        self.write(room.key, system_line(words, self.clock), counts=False)
        if event.generated:
            note = join_text(
                "its generated passphrase (give it to the others over a safe channel): ",
                Text(clean(event.passphrase), style="bold"),
            )
            self.write(room.key, system_line(note, self.clock), counts=False)
        self.switch_to(room.key)

    def on_room_joined(self, event: RoomJoined) -> None:
        joined = event.joined
        room = self.state.enter(joined)
        self._add_view(room.key)
        members = ", ".join(clean(m) for m in joined.members)
        more = f" and {joined.more} more" if joined.more else ""
        self.write(
            room.key,
            system_line(
                join_text("you joined ", room_text(room.name), f"; members: {members}{more}"),
                self.clock,
            ),
            counts=False,
        )
        if joined.topic:
            self.write(
                room.key,
                system_line(join_text("topic: ", clean(joined.topic)), self.clock),
                counts=False,
            )
        if event.switch:
            self.switch_to(room.key)
        else:
            self.refresh_chrome()
        self.request_list(show=False)

    def on_room_left(self, event: RoomLeft) -> None:
        key = secret_key(event.room) if event.secret else name_key(event.room)
        self.state.forget(event.room, secret=event.secret)
        view = self._views.pop(key, None)
        if view is not None:
            view.remove()
        shown = room_text(event.room, secret=event.secret)
        if event.removed:
            self.console(join_text("you were removed from ", shown, f": {event.removed}"))
        else:
            self.console(join_text("you left ", shown))
        self.switch_to(self.state.current)
        self.refresh_chrome()
        self.request_list(show=False)

    def on_rooms_listed(self, event: RoomsListed) -> None:
        self.state.public = list(event.rooms.rooms)
        self.refresh_chrome()
        if not event.show:
            return
        rooms = event.rooms
        if not rooms.rooms:
            self.here("there are no public rooms yet: /join NAME creates one")
            return
        self.here(f"{len(rooms.rooms) + rooms.more} public rooms:")
        for info in rooms.rooms:
            line = join_text("  ", room_text(info.room), f" ({self.state.member_count(info)})")
            if info.topic:
                line.append(f" — {clean(info.topic)}")
            self.here(line)
        if rooms.more:
            self.here(f"  … and {rooms.more} smaller rooms")

    def on_members_listed(self, event: MembersListed) -> None:
        reply = event.members
        names = Text(", ").join(nick_text(m, bold=False) for m in reply.members)
        more = f" and {reply.more} more" if reply.more else ""
        count = len(reply.members) + reply.more
        self.here(join_text(room_text(reply.room), f" ({count}): ", names, more))

    def on_nick_changed(self, event: NickChanged) -> None:
        self.wanted_nick = event.nick
        self.chat_app.remember_nick(event.nick)
        self.status.set(nick=event.nick)
        if not self.state.rooms:
            self.console(join_text("you are now known as ", nick_text(event.nick)))
        self.refresh_chrome()

    def on_request_failed(self, event: RequestFailed) -> None:
        self.here(f"{event.what} failed: {clean(event.message)} ({clean(event.code)})", error=True)

    def on_latency(self, event: Latency) -> None:
        self.status.set(latency=event.seconds)

    def on_connection_lost(self, event: ConnectionLost) -> None:
        self.connected = False
        self.status.set(state="reconnecting", detail="")
        if event.code == Code.RESTART:  # another node keeps our session: resume there
            self.console(f"{clean(event.message)}; reconnecting…")
        elif event.code != Code.SHUTDOWN:
            self.console(f"connection lost: {clean(event.message)}", error=True)
        for room in self.state.secret_rooms():
            room.joined = False
        for key in self.state.rooms:
            self.write(
                key,
                system_line("disconnected; reconnecting…", self.clock, error=True),
                counts=False,
            )

    def on_reconnecting(self, event: Reconnecting) -> None:
        detail = f"attempt {event.attempt} in {event.delay:g} s"
        self.status.set(state="reconnecting", detail=detail)
        if event.attempt > 1:
            self.console(f"reconnect attempt {event.attempt - 1} failed: {clean(event.last_error)}")

    def on_reconnected(self, event: Reconnected) -> None:
        self.client = event.client
        self.connected = True
        self.status.set(
            state="connected",
            detail="",
            nick=event.client.nick,
            transport=transport(event.client),
        )
        if event.client.resumed:
            self.console(system_line("reconnected and resumed: nothing was missed", self.clock))
            for room in self.state.rooms.values():
                self.write(
                    room.key, system_line("reconnected and resumed", self.clock), counts=False
                )
            return
        self.console(join_text("reconnected as ", nick_text(event.client.nick)))
        for name in event.secret:
            self.write(
                secret_key(name), system_line(f"rejoined; {GAP_NOTE}", self.clock), counts=False
            )
        for joined in event.joined:
            room = self.state.enter(joined)
            self.write(room.key, system_line(f"reconnected; {GAP_NOTE}", self.clock), counts=False)
        for name, reason in event.failed:
            self.state.forget(name)
            view = self._views.pop(name_key(name), None)
            if view is not None:
                view.remove()
            self.console(
                join_text("could not rejoin ", room_text(name), f": {clean(reason)}"), error=True
            )
        self.switch_to(self.state.current)
        self.request_list(show=False)
