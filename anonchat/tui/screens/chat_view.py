"""What the chat screen shows: the daemon's events and the command core's notes.

A mixin of :class:`~.chat.ChatScreen`, kept apart from its layout, keys and
workers.  Nothing here talks to the daemon: it renders and updates
:class:`~..state.ChatState`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text

from ... import events as ev
from ...dm import DirectMessage, DmNotice, dm_key
from ...errors import Code, Local
from ...frontend.commands import (
    Commands,
    DmWindow,
    Entered,
    Failed,
    Info,
    Invite,
    Left,
    Lines,
    Listed,
    Members,
    NickSet,
    Note,
    OpenForm,
    Quit,
    RotateOffer,
    TopicShown,
)
from ...frontend.reconnect import Back, Lost, Retrying, Step, Stopped
from ...names import name_key
from ...plural import plural
from ...room import Roster, SecretRoom, secret_key
from ...secret import SecretMessage, SecretNotice, label
from ..messages import NickChosen, QuitRequested
from ..render import (
    LOCK,
    Clock,
    Unbroken,
    clean,
    dm_line,
    dm_notice_line,
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
from ..session import ConnectOptions
from ..state import CONSOLE, ChatState, RoomState
from .key_changed import KEY_FAILURES, KeyChangedScreen, KeyProblem
from .rotate import RotateScreen

if TYPE_CHECKING:
    from textual.app import App
    from textual.message import Message

    from ...client import Client, Event
    from ..widgets.status_bar import StatusBar

#: The status bar's few words for why the app stopped reconnecting.
STOPPED_BECAUSE: dict[str, str] = {
    Local.HOST_KEY_CHANGED: "server key changed",
    Local.PIN_MISMATCH: "server key does not match the pin",
    Local.HOST_NOT_TRUSTED: "you did not accept the server's key",
    Local.PLAINTEXT_REFUSED: "unencrypted connection refused",
    Code.NICK_INVALID: "nick not allowed",
    Code.UNSUPPORTED_VERSION: "server speaks another protocol version",
}

GAP_NOTE = "the server no longer held your session: messages sent while you were away are lost"


class ChatView:
    """Rendering for :class:`~.chat.ChatScreen` (a mixin: the widgets are the screen's)."""

    if TYPE_CHECKING:
        state: ChatState
        clock: Clock
        connected: bool
        options: ConnectOptions
        host: str
        port: int

        @property
        def client(self) -> Client: ...

        @property
        def status(self) -> StatusBar: ...

        commands: Commands

        app: App[Any]

        def post_message(self, message: Message) -> bool: ...

        @property
        def own_label(self) -> str: ...

        def write(self, key: str, line: Text, *, counts: bool = True) -> None: ...

        def console(self, text: Text | str, *, error: bool = False) -> None: ...

        def here(self, text: Text | str, *, error: bool = False) -> None: ...

        def switch_to(self, key: str) -> None: ...

        def refresh_chrome(self) -> None: ...

        def drop_view(self, key: str) -> None: ...

        def add_view(self, key: str) -> object: ...

        def refresh_rooms(self) -> object: ...

        def run_line(self, line: str) -> None: ...

        _invite_pending: bool

        def action_create_room(self) -> None: ...

        def _sync_secret_members(self, refresh: bool = True) -> None: ...

    # -- pushed events --------------------------------------------------------------

    def show_event(self, frame: Event) -> None:
        hidden = self.commands.hides(frame)  # /ignore: applied to the state, not shown
        if isinstance(frame, DirectMessage | DmNotice):
            self._on_dm(frame, hidden is not None)
            return
        if hidden is not None and isinstance(frame, ev.Msg):
            self.state.apply(frame)
            self.refresh_chrome()  # the topic bar counts what was hidden
            return
        if hidden is not None and isinstance(frame, SecretMessage):
            self.state.apply_secret(frame)
            self.refresh_chrome()
            return
        if isinstance(frame, SecretMessage):
            self._on_secret_msg(frame)
        elif isinstance(frame, SecretNotice):
            room = self.state.apply_secret(frame)
            if hidden is None:
                self.write(room.key, secret_notice_line(frame, self.clock), counts=False)
            self._sync_secret_members()
            if frame.kind == "removed":  # kicked or banned: the client left the room
                why = clean(frame.text).removeprefix("you were ")  # "kicked by bob#fp"
                self.removed_from(room, why)
        elif isinstance(frame, ev.Msg):
            self._on_msg(frame)
        elif isinstance(frame, ev.Presence | ev.TopicChanged):
            room = self.state.apply(frame)
            if hidden is None:
                self.write(room.key, event_line(frame, self.clock), counts=False)
            else:
                self.refresh_chrome()
            if isinstance(frame, ev.Presence) and frame.kind == "nick":
                self.status.set(nick=self.client.nick)
            if (
                isinstance(frame, ev.Presence)
                and frame.kind in ("kick", "ban")
                and name_key(frame.nick) == name_key(self.client.nick)
            ):
                verb = "kicked" if frame.kind == "kick" else "banned"
                why = f": {clean(frame.msg)}" if frame.msg else ""
                removed = f"{verb} by {clean(frame.by or 'an owner')}{why}"
                self.removed_from(room, removed)
            self.refresh_chrome()
        elif isinstance(frame, ev.ModeChanged):
            key = name_key(frame.room)
            if key in self.state.rooms:
                self.write(key, mode_line(frame, self.clock), counts=False)
        elif isinstance(frame, ev.Missed):
            key = name_key(frame.room) if frame.room else CONSOLE
            lost = frame.last - frame.first + 1
            note = f"{plural(lost, 'event was', 'events were')} said while you were away "
            note += "and " + ("are" if lost != 1 else "is") + " lost"
            self.write(
                key if key in self.state.rooms else CONSOLE,
                system_line(note, self.clock),
                counts=False,
            )
        elif isinstance(frame, ev.Bye | ev.Error):
            text = f"the server closed the connection: {clean(frame.msg)} ({clean(frame.code)})"
            self.console(text, error=True)

    def _dm_window(self, peer: bytes, nick: str) -> RoomState:
        """The conversation's window, opened (listed, not shown) if it was not."""
        key = dm_key(peer)
        conversation = self.client.conversation(peer)
        theirs = conversation.label if conversation else label(nick, peer)
        own = f"{self.client.nick}#{self.client.dm_fingerprint}"
        known = self.state.rooms.get(key)
        fresh = known is None
        if known is not None and known.name != theirs:  # they changed nick
            line = join_text(nick_text(known.name), " is now called ", nick_text(theirs))
            self.write(key, system_line(line, self.clock), counts=False)
        room = self.state.open_dm(key, theirs, own)
        if fresh:
            self.add_view(key)
            words = join_text(
                "direct messages with ",
                nick_text(theirs),
                ": end-to-end encrypted between their DM key and yours (",
                nick_text(own),
                "); the server sees who writes to whom, when and how much, not what; "
                "/verify compares the keys, /leave closes this window",
            )
            self.write(key, system_line(words, self.clock), counts=False)
            self.refresh_rooms()
        return room

    def _on_dm(self, event: DirectMessage | DmNotice, hidden: bool) -> None:
        if isinstance(event, DmNotice) and not event.peer:  # about no one conversation
            self.here(clean(event.text), error=True)
            return
        room = self._dm_window(event.peer, event.nick)
        if hidden:
            self.refresh_chrome()  # the topic bar counts what was hidden
            return
        if isinstance(event, DmNotice):
            self.write(room.key, dm_notice_line(event, self.clock), counts=False)
            if event.kind == "key_changed":
                self.app.bell()
                self.app.notify(
                    clean(event.text), title="DM key changed", severity="error", timeout=20,
                    markup=False,
                )  # fmt: skip
            self.refresh_chrome()
            return
        self.write(room.key, dm_line(event, self.clock))
        if event.own:
            self.refresh_chrome()
            return
        # A direct message is addressed to us: it counts as a mention.
        where = f"{secret_label(event.nick, event.fingerprint)} (direct message)"
        self._count(room, room.key != self.state.current, where, event.text)

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

    # -- the command core's notes ---------------------------------------------------------

    def show_note(self, note: Note) -> None:
        if isinstance(note, Info):
            line = system_line(clean(note.text), self.clock, error=note.error)
            self.write(note.key or self.state.current, line, counts=False)
        elif isinstance(note, Failed):
            text = f"{note.what} failed: {clean(note.message)} ({clean(note.code)})"
            self.here(text, error=True)
        elif isinstance(note, Entered):
            self._entered(note)
        elif isinstance(note, Left):
            self.forget_room(note.key, note.name, note.secret)
        elif isinstance(note, Listed):
            self.show_rooms(note.rooms, show=True)
        elif isinstance(note, Members):
            self._members(note.roster)
        elif isinstance(note, NickSet):
            self.post_message(NickChosen(note.nick))
            self.status.set(nick=note.nick)
            if not self.state.rooms:
                self.console(join_text("you are now known as ", nick_text(note.nick)))
            self.refresh_chrome()
        elif isinstance(note, TopicShown):
            topic = clean(note.topic) or "(none)"
            self.here(join_text("topic of ", room_text(note.room), ": ", topic))
        elif isinstance(note, Invite):
            self._invite(note)
        elif isinstance(note, Lines):
            for text in note.lines:
                self.here(text)
        elif isinstance(note, Quit):
            self.post_message(QuitRequested(note.message))
        elif isinstance(note, OpenForm):
            self.action_create_room()
        elif isinstance(note, RotateOffer):
            self.here(clean(note.text))
            key = note.key

            def answered(rotate: bool | None) -> None:
                if rotate and key in self.state.rooms:
                    self.switch_to(key)
                    self.run_line("/secret rotate")

            self.app.push_screen(RotateScreen(note.shown, note.who), answered)
        elif isinstance(note, DmWindow):
            room = self._dm_window(note.room.peer, note.room.name)
            if note.switch:
                self.switch_to(room.key)
            else:
                self.refresh_chrome()

    def _invite(self, note: Invite) -> None:
        """The command on a line of its own (no time, no prefix: it wraps least
        and copies clean), also sent to the terminal's clipboard (OSC 52)."""
        for text in note.lines:
            if text == note.command:
                self.write(self.state.current, Unbroken(clean(text), style="bold"), counts=False)
            else:
                self.here(clean(text))
        self.app.copy_to_clipboard(note.command)
        self.here("(also sent to the clipboard, where the terminal allows it)")

    def _entered(self, note: Entered) -> None:
        room = note.room
        if note.how == "already" and room.key in self.state.rooms:
            self.switch_to(room.key)
            return
        if not room.secret:
            if note.joined is not None:
                self._joined(note.joined)
            return
        members = room.announced() if isinstance(room, SecretRoom) else []
        state = self.state.enter_secret(room.name, members)
        state.joined = True
        self.add_view(state.key)
        words = join_text(
            f"you {note.how} the secret room ",
            room_text(state.name, secret=True),
            " as ",
            nick_text(room.label if isinstance(room, SecretRoom) else self.own_label),
            "; only those with the passphrase can read it; /privacy says what the server sees",
        )
        self.write(state.key, system_line(words, self.clock), counts=False)
        if note.generated:
            shown = join_text(
                "its generated passphrase (give it to the others over a safe channel): ",
                Text(clean(note.generated), style="bold"),
            )
            self.write(state.key, system_line(shown, self.clock), counts=False)
        self.switch_to(state.key)

    def _joined(self, joined: ev.Joined, *, switch: bool = True) -> None:
        room = self.state.enter(joined)
        self.add_view(room.key)
        members = ", ".join(clean(m) for m in joined.members)
        more = f" and {joined.more} more" if joined.more else ""
        text = join_text("you joined ", room_text(room.name), f"; members: {members}{more}")
        self.write(room.key, system_line(text, self.clock), counts=False)
        if joined.topic:
            topic = join_text("topic: ", clean(joined.topic))
            self.write(room.key, system_line(topic, self.clock), counts=False)
        if switch:
            self.switch_to(room.key)
        else:
            self.refresh_chrome()
        self.refresh_rooms()
        if self._invite_pending and self.state.current == room.key:
            # anonchat --local: how others join, in the room the host looks at
            # (run now, so that /invite sees this room as the current one).
            self._invite_pending = False
            self.run_line("/invite")

    def forget_room(self, key: str, name: str, secret: bool) -> None:
        """We left a room (or closed a conversation): its window closes."""
        dm = self.state.rooms.get(key)
        if dm is not None and dm.dm:
            self.state.rooms.pop(key)
            if self.state.current == key:
                self.state.current = CONSOLE
            self.console(join_text("closed the conversation with ", room_text(dm.name, dm=True)))
        else:
            self.state.forget(name, secret=secret)
            self.state.rooms.pop(key, None)
            self.console(join_text("you left ", room_text(name, secret=secret)))
        self.drop_view(key)
        self.switch_to(self.state.current if self.state.current in self.state.rooms else CONSOLE)
        self.refresh_chrome()
        self.refresh_rooms()

    def removed_from(self, room: RoomState, why: str) -> None:
        """An owner removed us (``why``: "kicked by bob: spam"): said in the room's
        window, which stays listed as not joined, and in a toast, wherever we look."""
        room.removed_by_owner(why)
        verb, _, how = why.partition(" ")  # "kicked", "by bob: spam"
        where = f"{LOCK if room.secret else ''}#{clean(room.name)}"
        if verb == "banned":
            after = "; this session cannot come back while the room exists"
        else:
            again = f"/secret {room.name}" if room.secret else f"/join {room.name}"
            after = f"; {clean(again)} to come back, /leave closes this window"
        line = Text(f"you were {verb} from {where} {how}{after}")
        self.write(room.key, system_line(line, self.clock, error=True))
        self.console(f"you were {verb} from {where} {how}", error=True)
        self.app.notify(
            f"You were {verb} from {where} {how}",
            title=verb.capitalize(),
            severity="warning",
            timeout=15,
            markup=False,
        )
        self.refresh_chrome()

    def show_rooms(self, rooms: ev.Rooms, *, show: bool) -> None:
        self.state.public = list(rooms.rooms)
        self.refresh_chrome()
        if not show:
            return
        if not rooms.rooms:
            self.here("there are no public rooms yet: /join NAME creates one")
            return
        self.here(f"{plural(len(rooms.rooms) + rooms.more, 'public room')}:")
        for info in rooms.rooms:
            line = join_text("  ", room_text(info.room), f" ({self.state.member_count(info)})")
            if info.topic:
                line.append(f" — {clean(info.topic)}")
            self.here(line)
        if rooms.more:
            self.here(f"  … and {plural(rooms.more, 'smaller room')}")

    def _members(self, roster: Roster) -> None:
        owners_of = {name_key(o) for o in roster.owners}
        names = Text(", ").join(
            join_text("@" if name_key(m) in owners_of else "", nick_text(clean(m), bold=False))
            for m in roster.members
        )
        if roster.direct:
            self.here(join_text("direct messages between ", names, " (their DM keys)"))
            return
        if not roster.secret:
            more = f" and {roster.more} more" if roster.more else ""
            self.here(join_text(room_text(roster.room), f" ({roster.count}): ", names, more))
            owned = Text(", ").join(nick_text(clean(o), bold=False) for o in roster.owners)
            self.here(join_text("owners: ", owned if roster.owners else "none here"))
            return
        self.here(
            join_text(
                room_text(roster.room, secret=True),
                f" ({roster.count}, those who announced themselves): ",
                names,
            )
        )
        owners: Text | str = "none here"
        if roster.owners:
            owners = Text(", ").join(nick_text(clean(o), bold=False) for o in roster.owners)
        self.here(join_text("owners (checked by signature): ", owners))

    # -- the connection ---------------------------------------------------------------------

    def show_step(self, step: Lost | Step) -> None:
        if isinstance(step, Lost):
            self._lost(step)
        elif isinstance(step, Retrying):
            detail = f"attempt {step.attempt} in {step.delay:g} s"
            self.status.set(state="reconnecting", detail=detail)
            if step.attempt > 1:
                self.console(
                    f"reconnect attempt {step.attempt - 1} failed: {clean(step.last_error)}"
                )
        elif isinstance(step, Back):
            self._back(step)
        elif isinstance(step, Stopped):
            self._stopped(step)

    def _stopped(self, step: Stopped) -> None:
        """No more tries: the status bar says why in a few words, the server
        window in full, and a changed key gets a dialog saying what to do."""
        why = STOPPED_BECAUSE.get(step.code, clean(step.message)[:60])
        self.status.set(state=f"stopped: {why}", detail="")
        self.console(f"not reconnecting: {clean(step.message)} ({clean(step.code)})", error=True)
        if step.code in KEY_FAILURES:
            known = self.options.endpoint.known_hosts
            problem = KeyProblem.of(step.code, step.message, self.host, self.port, known)
            self.app.push_screen(KeyChangedScreen(problem))

    def _lost(self, step: Lost) -> None:
        self.connected = False
        if step.final:
            self.status.set(state="disconnected", detail="")
            return
        self.status.set(state="reconnecting", detail="")
        if step.code == "restart":  # another node keeps our session: resume there
            self.console(f"{clean(step.message)}; reconnecting…")
        elif step.code != "shutdown":
            self.console(f"connection lost: {clean(step.message)}", error=True)
        for room in self.state.secret_rooms():
            room.joined = False
        for key in self.state.rooms:
            line = system_line("disconnected; reconnecting…", self.clock, error=True)
            self.write(key, line, counts=False)

    def _back(self, step: Back) -> None:
        client = step.client
        self.connected = True
        self.status.set(state="connected", detail="", nick=client.nick)
        for room in self.state.secret_rooms():
            room.joined = client.room_by_key(room.key) is not None
        if client.resumed:
            self.console(system_line("reconnected and resumed: nothing was missed", self.clock))
            for room in self.state.rooms.values():
                line = system_line("reconnected and resumed", self.clock)
                self.write(room.key, line, counts=False)
            self.refresh_chrome()
            return
        self.console(join_text("reconnected as ", nick_text(client.nick)))
        rejoined = step.rejoined
        for name in rejoined.secret if rejoined else []:
            line = system_line(f"rejoined; {GAP_NOTE}", self.clock)
            self.write(secret_key(name), line, counts=False)
        for joined in rejoined.joined if rejoined else []:
            room = self.state.enter(joined)
            line = system_line(f"reconnected; {GAP_NOTE}", self.clock)
            self.write(room.key, line, counts=False)
        for name, reason in rejoined.failed if rejoined else []:
            self.state.forget(name)
            self.drop_view(name_key(name))
            text = join_text("could not rejoin ", room_text(name), f": {clean(reason)}")
            self.console(text, error=True)
        self.switch_to(self.state.current)
        self.refresh_rooms()
