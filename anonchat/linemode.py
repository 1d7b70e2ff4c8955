"""Line mode: chat from stdin to stdout, one line per event.

For scripts, bots and screen readers.  Lines read from stdin are either
commands (``/join lobby``) or text for the current room.  Every event is
written as one line::

    14:02:07 #lobby <alice> hello
    14:02:09 #lobby * alice waves
    14:02:11 #lobby -!- bob joined

Anything another user chose (nicks, text, topics, room names) passes through
:func:`anonchat.names.sanitize` first, so it can never write a control
sequence to the terminal.  At end of input the client waits until the server
accepted every message it sent, says goodbye, and exits with status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import termios
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from . import events as ev
from .client import Client, Endpoint, Event
from .crypto import generate_passphrase, normalize_room, passphrase_warning
from .dial import Confirm
from .errors import Code, ConnectionClosed, RequestError
from .frontend import LOCK, MODE_USAGE, clean, parse_mode, privacy_report, verify_report
from .names import name_key
from .secret import SecretMessage, SecretNotice

HELP = """\
Commands:
  /join ROOM          join a room (it is created if it does not exist); switch to it
  /create ROOM [TOPIC] create a public room and join it
  /leave [ROOM]       leave the current room (or ROOM)
  /nick NICK          change your nick
  /list               list the public rooms
  /who [ROOM]         list the members of the current room (or ROOM)
  /topic [TEXT]       show the topic, or set it to TEXT
  /me ACTION          send an action ("* alice waves")
  /secret ROOM        join a secret (end-to-end encrypted) room; asks for its passphrase
  /secret create ROOM create a secret room; an empty passphrase generates a strong one
  /privacy            what the server can and cannot see about you, here and now
  /verify NICK#FP [WHAT-THEY-READ]  (secret rooms) compare keys by another
                      channel; with what they read out, mark them verified
Owners of a room (its creator, and whoever an owner names; in a secret room
every owner action is signed and checked by each member, and NICK may be
written nick#fingerprint):
  /kick NICK [REASON] remove someone from the room
  /ban NICK [REASON]  remove them and keep their session out for the room's lifetime
  /op NICK            make someone an owner too
  /mode lock|unlock   close or open the room to newcomers
  /mode slow SECONDS  one message per SECONDS for those who are not owners (0: off)
  /mode history on|off whether newcomers see the recent messages
  /topic TEXT         (owners of a public room only) set the topic
  /help               this text
  /quit [MESSAGE]     leave the chat
Anything else is sent as a message to the current room.
A line starting with "//" sends a message that begins with "/".\
"""


def clock(ts_ms: int | None = None) -> str:
    t = time.localtime(ts_ms / 1000 if ts_ms is not None else None)
    return time.strftime("%H:%M:%S", t)


#: How often a message refused with rate_limited is tried again.
RATE_RETRIES = 30


def format_event(frame: Event) -> str | None:
    """The line printed for a pushed event, or None for events not shown."""
    if isinstance(frame, SecretMessage):
        where = f"{clock(frame.ts)} {LOCK}#{clean(frame.room)}"
        who = f"{clean(frame.nick) or '?'}#{frame.fingerprint}"
        stale = " [sent with a clock off by over 5 minutes]" if frame.stale else ""
        if frame.me:
            return f"{where} * {who} {clean(frame.text)}{stale}"
        return f"{where} <{who}> {clean(frame.text)}{stale}"
    if isinstance(frame, SecretNotice):
        return f"{clock(frame.ts)} {LOCK}#{clean(frame.room)} -!- {frame.text}"
    if isinstance(frame, ev.Msg):
        where = f"{clock(frame.ts)} #{clean(frame.room)}"
        if frame.me:
            return f"{where} * {clean(frame.nick)} {clean(frame.text)}"
        return f"{where} <{clean(frame.nick)}> {clean(frame.text)}"
    if isinstance(frame, ev.Presence):
        where = f"{clock(frame.ts)} #{clean(frame.room)} -!-"
        nick = clean(frame.nick)
        reason = f" ({clean(frame.msg)})" if frame.msg else ""
        if frame.kind == "join":
            return f"{where} {nick} joined"
        if frame.kind == "leave":
            return f"{where} {nick} left{reason}"
        if frame.kind == "quit":
            return f"{where} {nick} quit{reason}"
        by = clean(frame.by or "")
        if frame.kind in ("kick", "ban"):
            verb = "kicked" if frame.kind == "kick" else "banned"
            return f"{where} {nick} was {verb} by {by}{reason}"
        if frame.kind == "op":
            return f"{where} {nick} is now an owner" + (f" (by {by})" if by else "")
        return f"{where} {nick} is now known as {clean(frame.new or '')}"
    if isinstance(frame, ev.TopicChanged):
        return (
            f"{clock(frame.ts)} #{clean(frame.room)} -!- {clean(frame.nick)} "
            f"set the topic: {clean(frame.topic)}"
        )
    if isinstance(frame, ev.ModeChanged):
        modes = [
            "locked" if frame.locked else "open to newcomers",
            f"slow mode {frame.slow} s" if frame.slow else "no slow mode",
            "history on join" if frame.history else "no history on join",
        ]
        return (
            f"{clock(frame.ts)} #{clean(frame.room)} -!- {clean(frame.nick)} set the modes: "
            + ", ".join(modes)
        )
    if isinstance(frame, ev.Missed):
        where = f"#{clean(frame.room)}" if frame.room else f"{LOCK}room"
        return system(
            f"{where}: {frame.last - frame.first + 1} events were lost while you were away"
        )
    if isinstance(frame, ev.Bye | ev.Error):
        return system(f"disconnected: {clean(frame.msg)} ({clean(frame.code)})")
    return None


def system(text: str) -> str:
    return f"{clock()} -!- {text}"


@dataclass
class LineSession:
    """The state of one line-mode run: the client, the current room, the output."""

    client: Client
    out: Callable[[str], None]
    ask: Ask | None = None  # reads a passphrase (without echo on a terminal)
    current: str | None = None
    current_secret: bool = False
    joined: list[str] = field(default_factory=list)
    secret_rooms: list[str] = field(default_factory=list)
    quitting: bool = False
    quit_msg: str = ""

    def say_system(self, text: str) -> None:
        self.out(system(text))

    async def handle_line(self, line: str) -> None:
        line = line.rstrip("\r\n")
        if not line.strip():
            return
        try:
            if line.startswith("/") and not line.startswith("//"):
                await self.command(line)
            else:
                await self.message(line[1:] if line.startswith("//") else line)
        except RequestError as exc:
            self.say_system(f"error: {clean(exc.message)} ({exc.code})")

    async def message(self, text: str, me: bool = False) -> None:
        if self.current is None:
            self.say_system("you are in no room: /join NAME first, or /list to see the rooms")
            return
        for _ in range(RATE_RETRIES):
            try:
                if self.current_secret:
                    await self.client.say_secret(self.current, text, me=me)
                else:
                    await self.client.say(self.current, text, me=me)
                return
            except RequestError as exc:
                if exc.code != Code.RATE_LIMITED:
                    raise
                # A script pasting faster than the server's message rate: wait as told.
                found = re.search(r"try again in (\d+) s", exc.message)
                await asyncio.sleep(int(found.group(1)) if found else 1)
        self.say_system(f"not sent, the server keeps refusing it: {clean(text)}")

    def _switch(self, room: str, secret: bool) -> None:
        self.current, self.current_secret = room, secret
        self.say_system(f"now talking in {self._shown(room, secret)}")

    @staticmethod
    def _shown(room: str, secret: bool) -> str:
        return f"{LOCK if secret else ''}#{clean(room)}"

    async def command(self, line: str) -> None:
        name, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        handler = _COMMANDS.get(name.lower())
        if handler is None:
            self.say_system(f"unknown command /{clean(name)}; /help lists the commands")
            return
        await handler(self, rest)

    async def cmd_join(self, rest: str) -> None:
        room = rest.split(" ", 1)[0].lstrip("#")
        if not room:
            self.say_system("usage: /join ROOM")
            return
        # The client knows which rooms we are really in (a kick removes one).
        self.joined = [r for r in self.joined if name_key(r) in self.client.rooms]
        if name_key(room) in self.client.rooms:
            self._switch(self.client.rooms[name_key(room)], False)
            return
        self._entered(await self.client.join_or_create(room))

    async def cmd_create(self, rest: str) -> None:
        room, _, topic = rest.partition(" ")
        room = room.lstrip("#")
        if not room:
            self.say_system("usage: /create ROOM [TOPIC]")
            return
        self._entered(await self.client.create(room, topic.strip() or None))

    def _entered(self, joined: ev.Joined) -> None:
        self.joined.append(joined.room)
        self.current, self.current_secret = joined.room, False
        members = ", ".join(clean(m) for m in joined.members)
        more = f" and {joined.more} more" if joined.more else ""
        self.say_system(f"you joined #{clean(joined.room)}; members: {members}{more}")
        if joined.topic:
            self.say_system(f"topic of #{clean(joined.room)}: {clean(joined.topic)}")

    async def cmd_leave(self, rest: str) -> None:
        room = rest.split(" ", 1)[0].lstrip("#") or self.current
        if room is None:
            self.say_system("you are in no room")
            return
        secret = self.current_secret if not rest else self._find(self.secret_rooms, room)
        if secret:
            await self.client.leave_secret(room)
            self.secret_rooms = [
                r for r in self.secret_rooms if normalize_room(r) != normalize_room(room)
            ]
        else:
            await self.client.leave(room)
            self.joined = [r for r in self.joined if r.casefold() != room.casefold()]
        self.say_system(f"you left {self._shown(room, secret)}")
        if self.current is not None and self.current.casefold() == room.casefold():
            if self.joined:
                self._switch(self.joined[-1], False)
            elif self.secret_rooms:
                self._switch(self.secret_rooms[-1], True)
            else:
                self.current = None

    @staticmethod
    def _find(rooms: list[str], room: str) -> bool:
        return normalize_room(room) in {normalize_room(r) for r in rooms}

    async def cmd_secret(self, rest: str) -> None:
        words = rest.split()
        create = bool(words) and words[0] == "create"
        if create:
            words = words[1:]
        if len(words) != 1:
            self.say_system("usage: /secret ROOM (join) or /secret create ROOM")
            return
        room = words[0].lstrip("#")
        # The client knows which secret rooms we are really in (a kick removes one).
        self.secret_rooms = [
            r for r in self.secret_rooms if normalize_room(r) in self.client.secret
        ]
        if self._find(self.secret_rooms, room):
            self._switch(
                next(r for r in self.secret_rooms if normalize_room(r) == normalize_room(room)),
                True,
            )
            return
        passphrase = await self._passphrase(room, create)
        if passphrase is None:
            return
        if create:
            await self.client.create_secret(room, passphrase)
        else:
            await self.client.join_secret(room, passphrase)
        self.secret_rooms.append(room)
        self.current, self.current_secret = room, True
        verb = "created" if create else "joined"
        self.say_system(
            f"you {verb} the secret room {LOCK}#{clean(room)} as "
            f"{clean(self.client.own_secret_label(room))}; "
            "/privacy says what the server can see"
        )

    async def _passphrase(self, room: str, create: bool) -> str | None:
        if self.ask is None:
            self.say_system("no way to read a passphrase here")
            return None
        prompt = f"passphrase for {LOCK}#{room}"
        if create:
            prompt += " (empty: generate a strong one)"
        passphrase = await self.ask(prompt + ": ")
        if passphrase is None:
            return None
        if create and not passphrase:
            passphrase = generate_passphrase()
            self.say_system(f"generated passphrase (give it to the others): {passphrase}")
        elif create:
            warning = passphrase_warning(passphrase)
            if warning:
                self.say_system(f"warning: {warning}")
        return passphrase

    async def _owner_room(self) -> str | None:
        if self.current is None:
            self.say_system("moderation commands work in the current room; you are in none")
        return self.current

    async def cmd_kick(self, rest: str, ban: bool = False) -> None:
        nick, _, reason = rest.partition(" ")
        room = await self._owner_room()
        if room is None:
            return
        if not nick:
            self.say_system(f"usage: /{'ban' if ban else 'kick'} NICK [REASON]")
            return
        if not self.current_secret:
            await self.client.kick(room, nick, reason.strip() or None, ban=ban)
            return
        if reason.strip():
            self.say_system("the reason is not sent in a secret room: the server would read it")
        await self.client.secret_kick(room, nick, ban=ban)

    async def cmd_ban(self, rest: str) -> None:
        await self.cmd_kick(rest, ban=True)

    async def cmd_op(self, rest: str) -> None:
        room = await self._owner_room()
        if room is not None and rest:
            nick = rest.split()[0]
            if self.current_secret:
                await self.client.secret_op(room, nick)
            else:
                await self.client.op(room, nick)
        elif room is not None:
            self.say_system("usage: /op NICK")

    async def cmd_mode(self, rest: str) -> None:
        room = await self._owner_room()
        if room is None:
            return
        modes = parse_mode(rest)
        if modes is None:
            self.say_system(MODE_USAGE)
        elif self.current_secret:
            await self.client.secret_mode(room, **modes)
        else:
            await self.client.set_mode(room, **modes)

    async def cmd_verify(self, rest: str) -> None:
        for line in verify_report(self.client, self.current, self.current_secret, rest):
            self.say_system(line)

    async def cmd_privacy(self, rest: str) -> None:
        for line in privacy_report(self.client, self.current, self.current_secret):
            self.say_system(line)

    async def cmd_nick(self, rest: str) -> None:
        if not rest:
            self.say_system(f"you are {clean(self.client.nick)}; usage: /nick NEWNICK")
            return
        await self.client.set_nick(rest)
        if not self.joined:
            self.say_system(f"you are now known as {clean(rest)}")

    async def cmd_list(self, rest: str) -> None:
        reply = await self.client.list_rooms()
        if not reply.rooms:
            self.say_system("there are no public rooms yet: /join NAME creates one")
            return
        self.say_system(f"{len(reply.rooms) + reply.more} public rooms:")
        for info in reply.rooms:
            topic = f" - {clean(info.topic)}" if info.topic else ""
            self.say_system(f"  #{clean(info.room)} ({info.members}){topic}")
        if reply.more:
            self.say_system(f"  ... and {reply.more} smaller rooms")

    async def cmd_who(self, rest: str) -> None:
        room = rest.split(" ", 1)[0].lstrip("#") or self.current
        if room is None:
            self.say_system("usage: /who ROOM")
            return
        if (not rest and self.current_secret) or (rest and self._find(self.secret_rooms, room)):
            channel = self.client.secret_channel(room)
            names = ", ".join(f"{m} (verified)" if ok else m for m, ok in channel.member_list())
            self.say_system(f"{LOCK}#{clean(room)} (those who announced themselves): {names}")
            owners = ", ".join(channel.owners()) or "none here"
            self.say_system(f"{LOCK}#{clean(room)} owners (checked by signature): {owners}")
            return
        reply = await self.client.who(room)
        more = f" and {reply.more} more" if reply.more else ""
        names = ", ".join(clean(m) for m in reply.members)
        self.say_system(f"#{clean(reply.room)} ({len(reply.members) + reply.more}): {names}{more}")

    async def cmd_topic(self, rest: str) -> None:
        if self.current is None:
            self.say_system("you are in no room")
            return
        if self.current_secret:
            self.say_system("secret rooms have no topic: the server would see it")
            return
        if not rest:
            rooms = await self.client.list_rooms()
            topic = next(
                (r.topic for r in rooms.rooms if r.room.casefold() == self.current.casefold()), ""
            )
            self.say_system(f"topic of #{clean(self.current)}: {clean(topic) or '(none)'}")
            return
        await self.client.set_topic(self.current, rest)

    async def cmd_me(self, rest: str) -> None:
        if not rest:
            self.say_system("usage: /me ACTION")
            return
        await self.message(rest, me=True)

    async def cmd_help(self, rest: str) -> None:
        for line in HELP.splitlines():
            self.say_system(line)

    async def cmd_quit(self, rest: str) -> None:
        self.quitting = True
        self.quit_msg = rest


_COMMANDS: dict[str, Callable[[LineSession, str], Awaitable[None]]] = {
    "join": LineSession.cmd_join,
    "j": LineSession.cmd_join,
    "create": LineSession.cmd_create,
    "leave": LineSession.cmd_leave,
    "part": LineSession.cmd_leave,
    "nick": LineSession.cmd_nick,
    "list": LineSession.cmd_list,
    "who": LineSession.cmd_who,
    "names": LineSession.cmd_who,
    "topic": LineSession.cmd_topic,
    "me": LineSession.cmd_me,
    "help": LineSession.cmd_help,
    "quit": LineSession.cmd_quit,
    "exit": LineSession.cmd_quit,
    "secret": LineSession.cmd_secret,
    "kick": LineSession.cmd_kick,
    "ban": LineSession.cmd_ban,
    "op": LineSession.cmd_op,
    "mode": LineSession.cmd_mode,
    "privacy": LineSession.cmd_privacy,
    "verify": LineSession.cmd_verify,
}

Ask = Callable[[str], Awaitable[str | None]]


def _start_stdin_reader(
    stream: TextIO, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]
) -> None:
    """Read lines in a thread (stdin may be a file, a pipe or a terminal)."""

    def run() -> None:
        try:
            for line in stream:
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=run, name="anonchat-stdin", daemon=True).start()


def _writer(stream: TextIO) -> Callable[[str], None]:
    def out(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    return out


async def run_line_mode(
    endpoint: Endpoint,
    *,
    nick: str | None = None,
    join: str | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Run the line-mode client until EOF or /quit; return the exit status."""
    out = _writer(stdout or sys.stdout)
    stdin = stdin or sys.stdin
    try:
        client = await endpoint.connect(nick, confirm=_terminal_confirm(stdin))
    except ConnectionClosed as exc:
        out(system(f"error: {clean(exc.message)} ({exc.code})"))
        return 1
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    session = LineSession(client, out)
    how = f"TLS, key {client.pin}" if client.pin else "UNENCRYPTED"
    out(
        system(
            f"connected to {endpoint.label} ({how}) as {clean(client.nick)}; "
            "/help lists the commands"
        )
    )
    printer = asyncio.create_task(_print_events(client, out))
    _start_stdin_reader(stdin, asyncio.get_running_loop(), queue)
    session.ask = _asker(stdin, queue, lambda: printer)
    room = join or endpoint.room
    lines: list[str] = [f"/join {room}"] if room else []
    while not session.quitting:
        line = lines.pop(0) if lines else await _next_line(queue, printer)
        if line is not None:
            try:
                await session.handle_line(line)
                continue
            except ConnectionClosed:
                out(system(f"not sent, the connection was lost: {clean(line)}"))
        elif not printer.done():
            break  # end of input
        await _stop(printer)
        lost = session.client.closed
        if lost is None or lost.code in _FINAL:
            break
        new = await _reconnect(endpoint, session.client, out)
        if new is None:
            return 1
        session.client = new
        printer = asyncio.create_task(_print_events(new, out))
    lost = session.client.closed
    await session.client.close(session.quit_msg)
    await _stop(printer)
    return 1 if lost is not None and lost.code not in _FINAL else 0


#: Connection ends after which line mode does not try to reconnect.
_FINAL = frozenset({Code.SHUTDOWN, "closed", "quit"})
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


async def _stop(printer: asyncio.Task[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await printer


async def _reconnect(endpoint: Endpoint, old: Client, out: Callable[[str], None]) -> Client | None:
    """Reconnect with backoff; resume the session, or else rejoin its rooms."""
    assert old.closed is not None
    out(system(f"connection lost ({clean(old.closed.message)}); reconnecting"))
    for delay in RECONNECT_DELAYS:
        await asyncio.sleep(delay)
        try:
            new = await endpoint.connect(old.nick, resume=old)
        except ConnectionClosed as exc:
            out(system(f"reconnect failed: {clean(exc.message)} ({exc.code})"))
            continue
        if new.resumed:
            out(system("reconnected and resumed: what was said meanwhile follows"))
            return new
        failed = (await new.rejoin(old)).failed
        out(system(f"reconnected as {clean(new.nick)}; messages sent while you were away are lost"))
        for room, reason in failed:
            out(system(f"could not rejoin #{clean(room)}: {clean(reason)}"))
        return new
    out(system("giving up: the server cannot be reached"))
    return None


def _asker(
    stdin: TextIO, queue: asyncio.Queue[str | None], printer: Callable[[], asyncio.Task[None]]
) -> Ask:
    """Read the next input line as a secret: without echo when a person types it."""

    async def ask(prompt: str) -> str | None:
        echo = _EchoOff(stdin) if stdin.isatty() else None
        if echo is not None:
            sys.stderr.write(prompt)
            sys.stderr.flush()
            echo.__enter__()
        try:
            line = await _next_line(queue, printer())
        finally:
            if echo is not None:
                echo.__exit__()
                sys.stderr.write("\n")
        return None if line is None else line.rstrip("\r\n")

    return ask


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


async def _next_line(queue: asyncio.Queue[str | None], printer: asyncio.Task[None]) -> str | None:
    """The next input line, or None at EOF or when the connection ended."""
    getter = asyncio.ensure_future(queue.get())
    await asyncio.wait([getter, printer], return_when=asyncio.FIRST_COMPLETED)
    if getter.done():
        return getter.result()
    getter.cancel()
    return None


async def _print_events(client: Client, out: Callable[[str], None]) -> None:
    async for frame in client.events():
        line = format_event(frame)
        if line is not None:
            out(line)
