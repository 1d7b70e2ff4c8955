"""Line mode: chat from stdin to stdout, one line per event.

For scripts, bots and screen readers.  Lines read from stdin are either
commands (``/join lobby``) or text for the current room, run one at a time by
the front-end core (:mod:`anonchat.frontend.commands`), exactly as the TUI
runs them.  Every event is written as one line::

    14:02:07 #lobby <alice> hello
    14:02:09 #lobby * alice waves
    14:02:11 #lobby -!- bob joined

Anything another user chose (nicks, text, topics, room names) passes through
:func:`anonchat.names.sanitize` first, so it can never write a control
sequence to the terminal.  After ``/secret`` the next input line is always
the passphrase (unless ``--passphrase-file`` gave it): it goes to the key
derivation or is dropped, never into a room.  At end of input the client
waits until the server accepted every message it sent, says goodbye, and
exits with status 0.  On a terminal, what the user is typing stays on its own
input line below the incoming ones (:mod:`anonchat.lineinput`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO

from . import events as ev
from .client import Client, Confirm, Endpoint, Event
from .dm import DM_MARK, DirectMessage, DmNotice
from .errors import Code, ConnectionClosed, Local
from .frontend import LOCK, clean, shown_name
from .frontend.commands import (
    Attempt,
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
    help_lines,
    passphrase_follows,
)
from .frontend.hangup import HANGUP_SIGNALS, goodbye_on
from .frontend.reconnect import RECONNECT_DELAYS, Back, Lost, Retrying, Step, Stopped, follow
from .frontend.text import refused_by_client
from .lineinput import LineInput, PipeInput, TerminalInput, on_a_terminal, printing_above
from .names import name_key
from .plural import plural
from .secret import SecretMessage, SecretNotice

HELP = "\n".join(help_lines("line"))


def clock(ts_ms: int | None = None) -> str:
    t = time.localtime(ts_ms / 1000 if ts_ms is not None else None)
    return time.strftime("%H:%M:%S", t)


def format_event(frame: Event) -> str | None:
    """The line printed for a pushed event, or None for events not shown."""
    if isinstance(frame, DirectMessage):
        who = f"{clean(frame.nick) or '?'}#{frame.fingerprint}"
        stale = " [sent with a clock off by over 5 minutes]" if frame.stale else ""
        where = f"{clock(frame.ts)} [dm]"
        if frame.own:  # to whom, by nick and fingerprint
            where = f"{where} -> {clean(frame.to)}:"
        if frame.me:
            return f"{where} * {who} {clean(frame.text)}{stale}"
        return f"{where} <{who}> {clean(frame.text)}{stale}"
    if isinstance(frame, DmNotice):
        return f"{clock()} [dm] -!- {clean(frame.text)}"
    if isinstance(frame, SecretMessage):
        where = f"{clock(frame.ts)} {LOCK}#{clean(frame.room)}"
        who = f"{shown_name(frame.nick) or '?'}#{frame.fingerprint}"
        stale = " [sent with a clock off by over 5 minutes]" if frame.stale else ""
        if frame.history:
            stale = " [history: said before you joined]"
        if frame.me:
            return f"{where} * {who} {clean(frame.text)}{stale}"
        return f"{where} <{who}> {clean(frame.text)}{stale}"
    if isinstance(frame, SecretNotice):
        return f"{clock(frame.ts)} {LOCK}#{clean(frame.room)} -!- {frame.text}"
    if isinstance(frame, ev.Msg):
        where = f"{clock(frame.ts)} #{clean(frame.room)}"
        if frame.me:
            return f"{where} * {shown_name(frame.nick)} {clean(frame.text)}"
        return f"{where} <{shown_name(frame.nick)}> {clean(frame.text)}"
    if isinstance(frame, ev.Presence):
        where = f"{clock(frame.ts)} #{clean(frame.room)} -!-"
        nick = shown_name(frame.nick)
        reason = f" ({clean(frame.msg)})" if frame.msg else ""
        if frame.kind == "join":
            return f"{where} {nick} joined"
        if frame.kind == "leave":
            return f"{where} {nick} left{reason}"
        if frame.kind == "quit":
            return f"{where} {nick} quit{reason}"
        by = shown_name(frame.by or "")
        if frame.kind in ("kick", "ban"):
            verb = "kicked" if frame.kind == "kick" else "banned"
            return f"{where} {nick} was {verb} by {by}{reason}"
        if frame.kind == "op":
            return f"{where} {nick} is now an owner" + (f" (by {by})" if by else "")
        return f"{where} {nick} is now known as {shown_name(frame.new or '')}"
    if isinstance(frame, ev.TopicChanged):
        return (
            f"{clock(frame.ts)} #{clean(frame.room)} -!- {shown_name(frame.nick)} "
            f"set the topic: {clean(frame.topic)}"
        )
    if isinstance(frame, ev.ModeChanged):
        modes = [
            "locked" if frame.locked else "open to newcomers",
            f"slow mode {frame.slow} s" if frame.slow else "no slow mode",
            "history on join" if frame.history else "no history on join",
        ]
        return (
            f"{clock(frame.ts)} #{clean(frame.room)} -!- {shown_name(frame.nick)} set the modes: "
            + ", ".join(modes)
        )
    if isinstance(frame, ev.Missed):
        where = f"#{clean(frame.room)}" if frame.room else f"{LOCK}room"
        return system(
            f"{where}: {plural(frame.last - frame.first + 1, 'event was', 'events were')} lost "
            "while you were away"
        )
    if isinstance(frame, ev.Bye | ev.Error):
        return system(f"disconnected: {clean(frame.msg)} ({clean(frame.code)})")
    return None


def system(text: str) -> str:
    return f"{clock()} -!- {text}"


Ask = Callable[[str], Awaitable[str | None]]


class LineFrontend:
    """What the line mode shows of the core's notes, and where it is."""

    kind = "line"
    passphrase_in_band = True

    def __init__(
        self,
        out: Callable[[str], None],
        ask: Ask | None = None,
        passphrase: str | None = None,
    ) -> None:
        self.out = out
        self.ask = ask
        self.passphrase = passphrase  # from --passphrase-file: no line is read
        self.current: str | None = None  # window key of the current room
        self.order: list[tuple[str, str]] = []  # (key, shown) of joined rooms, oldest first
        self.quitting = False
        self.quit_msg = ""

    def say_system(self, text: str) -> None:
        self.out(system(text))

    def current_key(self) -> str | None:
        return self.current

    async def read_passphrase(self, prompt: str) -> str | None:
        if self.passphrase is not None:
            return self.passphrase
        if self.ask is None:
            self.say_system("no way to read a passphrase here")
            return None
        return await self.ask(prompt)

    async def secret_form(self, name: str, create: bool, attempt: Attempt) -> None:
        self.say_system("usage: /secret ROOM or /secret create ROOM")

    def front_command(self, name: str, rest: str) -> None:
        self.say_system(f"/{name} is for the full-screen client")

    def _switch(self, key: str, shown: str) -> None:
        self.current = key
        if key not in (k for k, _ in self.order):
            self.order.append((key, shown))

    def show(self, note: Note) -> None:
        if isinstance(note, Info):
            self.say_system(("error: " if note.error else "") + clean(note.text))
        elif isinstance(note, Failed):
            self.say_system(f"error: {clean(note.message)} ({clean(note.code)})")
        elif isinstance(note, Entered):
            self._entered(note)
        elif isinstance(note, Left):
            self._left(note)
        elif isinstance(note, Listed):
            self._listed(note.rooms)
        elif isinstance(note, Members):
            r = note.roster
            owned = {name_key(o) for o in r.owners}
            names = ", ".join(
                ("@" if name_key(m) in owned else "")
                + shown_name(m)
                + (" (verified)" if m in r.verified else "")
                for m in r.members
            )
            if r.direct:
                self.say_system(f"direct messages between {names} (their DM keys)")
            elif r.secret:
                where = f"{LOCK}#{clean(r.room)}"
                self.say_system(f"{where} (those who announced themselves): {names}")
                owners = ", ".join(shown_name(o) for o in r.owners) or "none here"
                self.say_system(f"{where} owners (checked by signature): {owners}")
            else:
                more = f" and {r.more} more" if r.more else ""
                where = f"#{clean(r.room)}"
                self.say_system(f"{where} ({r.count}): {names}{more}")
                owners = ", ".join(shown_name(o) for o in r.owners) or "none here"
                self.say_system(f"{where} owners: {owners}")
        elif isinstance(note, NickSet):
            self.say_system(f"you are now known as {clean(note.nick)}")
        elif isinstance(note, TopicShown):
            self.say_system(f"topic of #{clean(note.room)}: {clean(note.topic) or '(none)'}")
        elif isinstance(note, Invite):  # the command alone on its line: copied as it is
            for line in note.lines:
                if line == note.command:
                    self.out(line)
                else:
                    self.say_system(line)
        elif isinstance(note, Lines):
            for line in note.lines:
                self.say_system(line)
        elif isinstance(note, Quit):
            self.quitting, self.quit_msg = True, note.message
        elif isinstance(note, OpenForm):
            self.say_system("usage: /create ROOM [TOPIC]")
        elif isinstance(note, DmWindow):
            self._dm_window(note)
        elif isinstance(note, RotateOffer):
            self.say_system(clean(note.text))

    def _dm_window(self, note: DmWindow) -> None:
        room = note.room
        shown = clean(room.shown)
        if not note.switch:
            if room.key not in (k for k, _ in self.order):
                self.order.append((room.key, shown))
            return
        self._switch(room.key, shown)
        self.say_system(
            f"now talking with {shown} in direct messages, end-to-end encrypted (your DM "
            f"key: {clean(room.client.nick)}#{room.client.dm_fingerprint}); /verify compares "
            "keys, /privacy says what the server sees, /leave closes the conversation"
        )

    def _entered(self, note: Entered) -> None:
        room = note.room
        shown = f"{LOCK if room.secret else ''}#{clean(room.name)}"
        self._switch(room.key, shown)
        if note.how == "already":
            self.say_system(f"now talking in {shown}")
        elif room.secret:
            label = clean(room.client.own_secret_label(room.name))
            self.say_system(
                f"you {note.how} the secret room {shown} as {label}; "
                "/privacy says what the server can see"
            )
            if note.generated:
                self.say_system(f"generated passphrase (give it to the others): {note.generated}")
        elif note.joined is not None:
            joined = note.joined
            members = ", ".join(shown_name(m) for m in joined.members)
            more = f" and {joined.more} more" if joined.more else ""
            self.say_system(f"you joined #{clean(joined.room)}; members: {members}{more}")
            if joined.topic:
                self.say_system(f"topic of #{clean(joined.room)}: {clean(joined.topic)}")

    def _left(self, note: Left) -> None:
        shown = dict(self.order).get(note.key, "")
        self.order = [(k, s) for k, s in self.order if k != note.key]
        if note.key.startswith(DM_MARK):
            self.say_system(f"closed the conversation with {shown or clean(note.name)}")
        else:
            self.say_system(f"you left {LOCK if note.secret else ''}#{clean(note.name)}")
        if self.current == note.key:
            self.current = None
            if self.order:
                self.current = self.order[-1][0]
                self.say_system(f"now talking in {self.order[-1][1]}")

    def _listed(self, reply: ev.Rooms) -> None:
        if not reply.rooms:
            self.say_system("there are no public rooms yet: /join NAME creates one")
            return
        self.say_system(f"{plural(len(reply.rooms) + reply.more, 'public room')}:")
        for info in reply.rooms:
            topic = f" - {clean(info.topic)}" if info.topic else ""
            self.say_system(f"  #{shown_name(info.room)} ({info.members}){topic}")
        if reply.more:
            self.say_system(f"  ... and {plural(reply.more, 'smaller room')}")

    def removed(self, room: str, secret: bool) -> None:
        """An owner removed us from a room.  If it was the current one, it stays
        current: what is typed next (an answer to the kick, most likely) is
        refused as "not sent", never sent to another room chosen quietly."""
        from .room import public_key, secret_key

        key = secret_key(room) if secret else public_key(room)
        self.order = [(k, s) for k, s in self.order if k != key]
        if self.current == key:
            where = f"{LOCK if secret else ''}#{clean(room)}"
            self.say_system(
                f"you are no longer in {where}: what you type is not sent until you /join a room"
            )

    def step(self, step: Lost | Step) -> None:
        """What the reconnect policy did."""
        if isinstance(step, Lost):
            if not step.final:
                self.say_system(f"connection lost ({clean(step.message)}); reconnecting")
        elif isinstance(step, Retrying):
            if step.attempt > 1:
                self.say_system(f"reconnect failed: {clean(step.last_error)}")
        elif isinstance(step, Back):
            client = step.client
            if client.resumed:
                self.say_system("reconnected and resumed: what was said meanwhile follows")
                return
            self.say_system(
                f"reconnected as {clean(client.nick)}; messages sent while you were away are lost"
            )
            for room, reason in step.rejoined.failed if step.rejoined else []:
                self.say_system(f"could not rejoin #{clean(room)}: {clean(reason)}")
        elif isinstance(step, Stopped):
            said = refused_by_client(step.code, clean(step.message)) or clean(step.message)
            self.say_system(f"giving up: {said} ({clean(step.code)})")


def _writer(stream: TextIO | None) -> Callable[[str], None]:
    """Print a line to ``stream``, or to whatever sys.stdout is at the time (on
    a terminal, prompt_toolkit's, which prints above the input line)."""

    def out(line: str) -> None:
        to = stream or sys.stdout
        to.write(line + "\n")
        to.flush()

    return out


async def run_line_mode(
    endpoint: Endpoint,
    *,
    nick: str | None = None,
    join: str | Sequence[str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    passphrase: str | None = None,
    reconnect_delays: Sequence[float] = RECONNECT_DELAYS,
) -> int:
    """Run the line-mode client until EOF or /quit; return the exit status.

    ``passphrase`` (from ``--passphrase-file``) answers every ``/secret``
    without reading a line from stdin.
    """
    terminal = stdin is None and stdout is None and on_a_terminal(sys.stdin, sys.stdout)
    out = _writer(stdout)
    stdin = stdin or sys.stdin
    try:
        client = await endpoint.connect(nick, confirm=_terminal_confirm(stdin))
    except ConnectionClosed as exc:
        refused = refused_by_client(exc.code, clean(exc.message))  # who refused what
        out(system(f"error: {refused or clean(exc.message)} ({exc.code})"))
        return 1
    source: LineInput = PipeInput(stdin)
    if terminal:  # a line typed after /secret is masked as it is typed, burst or not
        source = TerminalInput(passphrase_follows if passphrase is None else lambda line: False)
    with printing_above(terminal):
        try:
            return await _converse(
                endpoint, client, source, out, join, passphrase, reconnect_delays
            )
        finally:
            source.stop()


async def _converse(
    endpoint: Endpoint,
    client: Client,
    source: LineInput,
    out: Callable[[str], None],
    join: str | Sequence[str] | None,
    passphrase: str | None,
    reconnect_delays: Sequence[float],
) -> int:
    """Connected: print events, run the lines typed, follow reconnects, until the end."""
    queue = source.queue
    ui = LineFrontend(out, passphrase=passphrase)
    commands = Commands(client, ui, server=(endpoint.host, endpoint.port))
    how = f"TLS, key {client.pin}" if client.pin else "UNENCRYPTED"
    out(
        system(
            f"connected to {endpoint.label} ({how}) as {clean(client.nick)}; "
            "/help lists the commands"
        )
    )
    if client.trust_note:
        out(system(clean(client.trust_note)))

    def on_event(event: Event) -> None:
        hidden = commands.hides(event) is not None  # /ignore: counted, not printed
        line = None if hidden else format_event(event)
        if line is not None:
            out(line)
        if isinstance(event, SecretNotice) and event.kind == "removed":
            ui.removed(event.room, True)
        elif (
            isinstance(event, ev.Presence)
            and event.kind in ("kick", "ban")
            and event.nick == commands.client.nick
        ):
            ui.removed(event.room, False)

    async def dial(as_nick: str, old: Client) -> Client:
        return await endpoint.connect(as_nick, resume=old)

    session = asyncio.create_task(
        follow(commands, dial, on_event, ui.step, persistent=False, delays=reconnect_delays)
    )
    source.start()
    ui.ask = _asker(source, lambda: session)
    rooms = [join] if isinstance(join, str) else list(join or [])
    if not rooms and endpoint.room:
        rooms = [endpoint.room]
    pending = [f"/join {room}" for room in rooms]
    with goodbye_on(HANGUP_SIGNALS, lambda: queue.put_nowait(None)):  # as at end of input
        while not ui.quitting:
            line = pending.pop(0) if pending else await _next_line(queue, session)
            if line is None:
                break  # end of input, or the session ended for good
            await commands.line(line)
    ended = session.result() if session.done() else None
    commands.stop()
    await commands.client.close(ui.quit_msg)
    with contextlib.suppress(asyncio.CancelledError):
        await session
    if isinstance(ended, Stopped):
        return 1
    if isinstance(ended, Lost) and ended.code not in (Code.SHUTDOWN, Local.CLOSED, Local.QUIT):
        return 1
    return 0


def _asker(source: LineInput, printer: Callable[[], asyncio.Task[Any]]) -> Ask:
    """Read the next input line as a secret: masked, or without echo, when a person types it."""

    async def ask(prompt: str) -> str | None:
        source.secret(prompt)
        try:
            return await _next_line(source.queue, printer())
        finally:
            source.secret(None)

    return ask


def _terminal_confirm(stdin: TextIO) -> Confirm | None:
    """First contact with a server: ask at a prompt when a person is there."""
    if not stdin.isatty():
        return None  # a script: it must pass --fingerprint or --accept-new-host

    async def confirm(host: str, port: int, pin: str) -> bool:
        prompt = (
            f"First connection to {host}:{port}. Its key is\n  {pin}\n"
            "Compare it with the one its operator gave you (anonchatd prints it).\n"
            "Trust this key and remember it? [y/N] "
        )
        sys.stderr.write(prompt)
        sys.stderr.flush()
        answer = await asyncio.to_thread(stdin.readline)
        return answer.strip().lower() in {"y", "yes"}

    return confirm


async def _next_line(queue: asyncio.Queue[str | None], printer: asyncio.Task[Any]) -> str | None:
    """The next input line, or None at EOF or when the connection ended."""
    getter = asyncio.ensure_future(queue.get())
    await asyncio.wait([getter, printer], return_when=asyncio.FIRST_COMPLETED)
    if getter.done():
        return getter.result()
    getter.cancel()
    return None
