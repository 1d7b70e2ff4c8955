"""The slash commands, once: one table and one implementation of each.

Both front ends hand every line the user typed to :meth:`Commands.line` and
show the typed notes it produces through their :class:`Frontend`; neither
implements a command itself.  The help texts (the line mode's ``/help``, the
TUI's help screen, docs/tui.md) are generated from :data:`COMMANDS`.

Theory of operation:

* A command acts on a room through a handle from the client
  (:meth:`Client.room`): the core never branches on public/secret to pick a
  request, never reads the client's secret channels and never normalises a
  name.  ``/join`` and ``/create`` of a name that means a joined room, secret
  ones included, switch to it and send nothing.
* ``/secret`` reads its passphrase first, whatever follows: a front end whose
  passphrase comes in band (the line mode reads the next input line) has that
  line consumed by the key derivation or dropped, never sent as a message.
* Lines are run one at a time, in order, by the caller.  A message typed
  while the connection is down waits for the reconnect (up to
  ``HOLD_WHILE_OFFLINE``) and is sent once when the session is back; if it
  cannot be, the user is told it was not sent.  A message that was on its way
  when the connection broke may or may not have arrived: the user is told so,
  and told again that it did arrive if the resumed session's replay holds it
  (the daemon applied it before the connection or its node went away).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from .. import events as ev
from ..client import Client
from ..errors import Code, ConnectionClosed, RequestError
from ..names import InvalidName, check_nick, name_key
from ..passphrases import generate_passphrase, passphrase_warning
from ..plural import plural
from ..room import DirectRoom, Room, Roster, SecretRoom
from ..secret import SecretMessage
from .ignore import Ignores
from .text import (
    MODE_USAGE,
    dm_verify_report,
    invite,
    parse_mode,
    privacy_report,
    verify_report,
)

#: How often a message refused with rate_limited is tried again.
RATE_RETRIES = 30
#: Seconds a message typed while disconnected waits for the session to come back.
HOLD_WHILE_OFFLINE = 300.0
#: Messages whose fate a broken connection hid, watched for in the replay.
UNCERTAIN_MAX = 32

# -- what the core tells a front end -------------------------------------------------


@dataclass(frozen=True)
class Info:
    """A line for the user: where they look (``key`` None) or in one window."""

    text: str
    error: bool = False
    key: str | None = None


@dataclass(frozen=True)
class Failed:
    """A request the daemon (or the client, before sending) refused."""

    what: str
    code: str
    message: str


@dataclass(frozen=True)
class Entered:
    """We are in a room now: joined, created, or (``already``) switched to it.

    ``joined`` is the daemon's reply for a public room we just entered;
    ``generated`` the passphrase made for a new secret room (to show once)."""

    room: Room
    how: str  # joined, created, already
    joined: ev.Joined | None = None
    generated: str | None = None


@dataclass(frozen=True)
class DmWindow:
    """A conversation's window: open it (listed with the rooms), and with
    ``switch`` show it (``/query``); ``/msg`` opens it without switching."""

    room: DirectRoom
    switch: bool


@dataclass(frozen=True)
class RotateOffer:
    """After a kick or ban in a secret room: the removed member still knows the
    passphrase; ``/secret rotate`` would leave them behind for real (a front end
    with dialogs offers it as a choice)."""

    key: str
    shown: str
    who: str

    @property
    def text(self) -> str:
        return (
            f"{self.who} still knows the passphrase of {self.shown}: /secret rotate moves "
            "everyone else to a new room with a new one, leaving them behind"
        )


@dataclass(frozen=True)
class Left:
    key: str
    name: str
    secret: bool


@dataclass(frozen=True)
class Listed:
    rooms: ev.Rooms


@dataclass(frozen=True)
class Members:
    roster: Roster


@dataclass(frozen=True)
class NickSet:
    nick: str


@dataclass(frozen=True)
class TopicShown:
    room: str
    topic: str


@dataclass(frozen=True)
class Lines:
    """Several lines that belong together (the privacy report, the help)."""

    lines: tuple[str, ...]


@dataclass(frozen=True)
class Invite(Lines):
    """``/invite``: the lines, and among them ``command``, what others run to
    join (a front end may copy it to the clipboard)."""

    command: str = ""


@dataclass(frozen=True)
class Quit:
    message: str


@dataclass(frozen=True)
class OpenForm:
    """A front end with forms opens one (``create``: the create-room form)."""

    form: str
    name: str = ""


Note = (
    Info
    | Failed
    | Entered
    | Left
    | Listed
    | Members
    | NickSet
    | TopicShown
    | Lines
    | Invite
    | Quit
    | OpenForm
    | DmWindow
    | RotateOffer
)

Attempt = Callable[[str, str, bool], Awaitable[str | None]]
"""(room, passphrase, generated) -> None when in, else why not (for a form)."""


class Frontend(Protocol):
    """What a front end gives the core."""

    #: The front end reads passphrases as input lines (the line mode) rather
    #: than in a dialog: ``/secret`` then always consumes the next line.
    passphrase_in_band: bool
    #: ``tui`` or ``line``: which of the table's commands it offers.
    kind: str

    def show(self, note: Note) -> None: ...

    def current_key(self) -> str | None:
        """The window key of the room on screen (None: no room)."""

    async def read_passphrase(self, prompt: str) -> str | None:
        """An in-band front end: the next input line, unechoed; None at the end."""

    async def secret_form(self, name: str, create: bool, attempt: Attempt) -> None:
        """A dialog front end: ask for the passphrase, calling ``attempt`` until in."""

    def front_command(self, name: str, rest: str) -> None:
        """A command only this front end has (``theme``)."""


# -- the table -------------------------------------------------------------------------

Handler = Callable[["Commands", str], Awaitable[None]]
H = TypeVar("H", bound=Callable[..., Awaitable[None]])


@dataclass(frozen=True)
class Command:
    name: str
    args: str
    help: str
    aliases: tuple[str, ...] = ()
    owners: bool = False  # a room owner's command
    only: str = ""  # "tui": offered by that front end alone
    run: Handler | None = field(default=None, compare=False, repr=False)
    line_help: str = ""  # the line mode's words, where the TUI's (windows, keys) do not fit

    def help_for(self, frontend: str) -> str:
        return self.line_help if frontend == "line" and self.line_help else self.help

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.args}".rstrip()


COMMANDS: list[Command] = []
_BY_NAME: dict[str, Command] = {}


def command(
    name: str,
    args: str,
    help: str,
    *,
    aliases: tuple[str, ...] = (),
    owners: bool = False,
    only: str = "",
    line_help: str = "",
) -> Callable[[H], H]:
    def register(handler: H) -> H:
        cmd = Command(name, args, help, aliases, owners, only, handler, line_help)
        COMMANDS.append(cmd)
        for word in (name, *aliases):
            _BY_NAME[word] = cmd
        return handler

    return register


def lookup(name: str, frontend: str = "") -> Command | None:
    cmd = _BY_NAME.get(name.lower())
    if cmd is None or (cmd.only and frontend and cmd.only != frontend):
        return None
    return cmd


def offered(frontend: str) -> list[Command]:
    """The commands one front end offers, in the table's order."""
    return [c for c in COMMANDS if not c.only or c.only == frontend]


def help_lines(frontend: str) -> list[str]:
    """The command list of ``/help`` (the TUI's help screen builds its own from COMMANDS)."""
    lines = ["Commands:"]
    rows = offered(frontend)
    width = max(len(c.usage) for c in rows) + 2
    lines += [f"  {c.usage:<{width}}{_listed(c, frontend)}" for c in rows if not c.owners]
    lines.append(
        "Owners of a room (its creator, and whoever an owner names; in a secret room every "
        "owner action is signed and checked by each member, and NICK may be nick#fingerprint):"
    )
    lines += [f"  {c.usage:<{width}}{_listed(c, frontend)}" for c in rows if c.owners]
    lines.append('Anything else is sent to the current room; a line starting with "//" sends one')
    lines.append('that begins with "/".')
    return lines


def _listed(cmd: Command, frontend: str) -> str:
    """A command's help in the list, with its other names."""
    also = f" (also {', '.join('/' + a for a in cmd.aliases)})" if cmd.aliases else ""
    return cmd.help_for(frontend) + also


def parse(line: str) -> tuple[str, str] | None:
    """``"/join lobby"`` -> ``("join", "lobby")``; None for a message (``//`` escapes)."""
    if not line.startswith("/") or line.startswith("//"):
        return None
    name, _, rest = line[1:].partition(" ")
    return name.lower(), rest.strip()


#: ``/join ROOM KEY`` (IRC's keyed channel): refused, nothing sent.
JOIN_KEY_REFUSED = Info(
    "usage: /join ROOM (one room, no key): not joined. A room kept to those who know "
    "a passphrase is a secret room: /secret ROOM asks for the passphrase (never put it "
    "on the command line)",
    error=True,
)


def is_rotate(rest: str) -> bool:
    """``/secret rotate``: the one /secret that reads no passphrase line
    (a room named rotate is ``/secret #rotate``)."""
    return [w.lower() for w in rest.split()] == ["rotate"]


def passphrase_follows(line: str) -> bool:
    """Whether, in band (the line mode without ``--passphrase-file``), the
    line typed after ``line`` is a passphrase: after any /secret but
    /secret rotate, whatever else happens (see :meth:`Commands.cmd_secret`)."""
    parsed = parse(line)
    return parsed is not None and parsed[0] == "secret" and not is_rotate(parsed[1])


def _first_word(rest: str) -> str:
    return rest.split(" ", 1)[0].lstrip("#") if rest else ""


# -- the core ----------------------------------------------------------------------------


class Commands:
    """Runs lines for one chat session; ``client`` is replaced on reconnect."""

    def __init__(
        self, client: Client, ui: Frontend, *, server: tuple[str, int] | None = None
    ) -> None:
        self.client = client
        self.ui = ui
        self.server = server  # (host, port) as this session dials it: for /invite
        self._changed = asyncio.Event()  # set when the connection came back or ended
        self.stopped = False  # the session ended for good: nothing more can be sent
        self.ignores = Ignores()  # /ignore: in memory only, never sent
        # (window key, text) of messages that were on their way when the
        # connection broke: the user was told they may not have arrived.
        self._uncertain: list[tuple[str, str]] = []

    def hides(self, event: object) -> str | None:
        """Whether the front end hides ``event`` (someone ignored): the window
        whose count of hidden lines went up, or None to show it.  (Every event
        passes here: a replayed message of ours that was in doubt is noted.)"""
        if self._uncertain:
            self._arrived(event)
        return self.ignores.hides(event)

    def _arrived(self, event: object) -> None:
        if isinstance(event, ev.Msg):
            mine, text = event.nick == self.client.nick, event.text
        elif isinstance(event, SecretMessage):
            mine, text = event.own, event.text
        else:
            return
        if not mine:
            return
        for n, (key, doubted) in enumerate(self._uncertain):
            if doubted == text:
                del self._uncertain[n]
                self.ui.show(Info(f"it did arrive after all: {text}", key=key))
                return

    # -- the session's connection, as the reconnect policy changes it ----------

    def back(self, client: Client) -> None:
        self.client = client
        self._changed.set()

    def stop(self) -> None:
        self.stopped = True
        self._changed.set()

    # -- lines -------------------------------------------------------------------

    async def line(self, line: str) -> None:
        """Run one typed line: a command, or a message to the room on screen."""
        line = line.rstrip("\r\n")
        if not line.strip():
            return
        parsed = parse(line)
        if parsed is None:
            await self.say(line[1:] if line.startswith("//") else line)
            return
        name, rest = parsed
        cmd = lookup(name, self.ui.kind)
        if cmd is None or cmd.run is None:
            self.ui.show(Info(f"unknown command /{name}; /help lists the commands", error=True))
            return
        try:
            await cmd.run(self, rest)
        except RequestError as exc:
            self.ui.show(Failed(cmd.name, exc.code, exc.message))
        except ConnectionClosed as exc:
            self.ui.show(Failed(cmd.name, "not_connected", f"not connected ({exc.message})"))

    def current(self) -> Room | None:
        key = self.ui.current_key()
        return self.client.room_by_key(key) if key else None

    async def say(self, text: str, *, me: bool = False, key: str | None = None) -> None:
        """Send ``text`` to the room on screen (or of ``key``), held through a reconnect."""
        key = key if key is not None else self.ui.current_key()
        if not key:
            self.ui.show(Info("you are in no room: /join NAME first, or /list to see the rooms"))
            return
        if not await self._wait_online():
            self.ui.show(Info(f"not sent, the connection is gone: {text}", error=True))
            return
        room = self.client.room_by_key(key)
        if room is None:
            self.ui.show(Info(f"not sent, you are not in that room: {text}", error=True, key=key))
            return
        try:
            await self._send(room, text, me)
        except RequestError as exc:
            self.ui.show(Failed("say", exc.code, f"{exc.message}; not sent: {text}"))
        except ConnectionClosed:
            self.ui.show(
                Info(
                    f"the connection was lost while sending; it may not have arrived: {text}",
                    error=True,
                    key=key,
                )
            )
            self._uncertain = [*self._uncertain[-(UNCERTAIN_MAX - 1) :], (key, text)]

    async def say_lines(self, lines: list[str], key: str) -> None:
        """Pasted lines: each a message, in order, as text (never a command)."""
        for n, text in enumerate(lines):
            if not await self._wait_online():
                self.ui.show(Info(f"{len(lines) - n} pasted lines not sent", error=True))
                return
            room = self.client.room_by_key(key)
            if room is None:
                self.ui.show(Info(f"{len(lines) - n} pasted lines not sent", error=True))
                return
            try:
                await self._send(room, text, False)
            except (RequestError, ConnectionClosed) as exc:
                message = getattr(exc, "message", str(exc))
                code = getattr(exc, "code", "not_connected")
                left = len(lines) - n
                self.ui.show(
                    Failed("say", code, f"{message} ({left} of {len(lines)} pasted lines not sent)")
                )
                return

    async def _send(self, room: Room, text: str, me: bool) -> None:
        for _ in range(RATE_RETRIES):
            try:
                await room.say(text, me=me)
                return
            except RequestError as exc:
                if exc.code != Code.RATE_LIMITED:
                    raise
                # Faster than the server's message rate: wait as told, then again.
                found = re.search(r"try again in (\d+) s", exc.message)
                await asyncio.sleep(int(found.group(1)) if found else 1)
        raise RequestError(Code.RATE_LIMITED, "the server keeps refusing it")

    async def _wait_online(self) -> bool:
        """True once connected (at once if we are), False if the session ended."""
        if self.stopped or self.client.closed is None:
            return not self.stopped
        self.ui.show(Info("not connected: the line is kept and sent once the session is back"))
        try:
            async with asyncio.timeout(HOLD_WHILE_OFFLINE):
                while not self.stopped and self.client.closed is not None:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        return not self.stopped

    # -- commands ------------------------------------------------------------------

    @command("join", "ROOM", "join a room (created if it does not exist) and switch to it",
             aliases=("j",))  # fmt: skip
    async def cmd_join(self, rest: str) -> None:
        name = _first_word(rest)
        if not name:
            self.ui.show(Info("usage: /join ROOM", error=True))
            return
        if len(rest.split()) > 1:
            # IRC's "/join #room key": joining the public room and dropping the key
            # would leave the user talking in the open, believing the room locked.
            self.ui.show(JOIN_KEY_REFUSED)
            return
        room, joined = await self.client.join_room(name)
        self.ui.show(Entered(room, "already" if joined is None else "joined", joined))

    @command("create", "[ROOM [TOPIC]]", "create a public room; without ROOM opens a form")
    async def cmd_create(self, rest: str) -> None:
        name, _, topic = rest.partition(" ")
        name = name.lstrip("#")
        if not name:
            if self.ui.kind == "tui":
                self.ui.show(OpenForm("create"))
            else:
                self.ui.show(Info("usage: /create ROOM [TOPIC]", error=True))
            return
        room, joined = await self.client.create_room(name, topic.strip() or None)
        self.ui.show(Entered(room, "already" if joined is None else "created", joined))

    @command("leave", "[ROOM]", "leave the current room (or ROOM)", aliases=("part",))
    async def cmd_leave(self, rest: str) -> None:
        name = _first_word(rest)
        room = self.client.room(name) if name else self.current()
        if room is None:
            key = None if name else self.ui.current_key()
            if key:  # a window whose room did not come back after a reconnect
                self.ui.show(Left(key, key, key != key.lstrip("\U0001f512")))
                return
            self.ui.show(Info("you are not in that room" if name else "you are in no room"))
            return
        await room.leave()
        self.ui.show(Left(room.key, room.name, room.secret))

    @command("nick", "NICK", "change your nick")
    async def cmd_nick(self, rest: str) -> None:
        if not rest:
            self.ui.show(Info(f"you are {self.client.nick}; usage: /nick NEWNICK"))
            return
        await self.client.set_nick(rest)
        self.ui.show(NickSet(self.client.nick))

    @command("topic", "[TEXT]", "show the current room's topic, or set it")
    async def cmd_topic(self, rest: str) -> None:
        room = self.current()
        if room is None:
            self.ui.show(Info("you are in no room", error=True))
        elif room.secret:
            self.ui.show(Info("secret rooms have no topic: the server would see it"))
        elif not rest:
            self.ui.show(TopicShown(room.name, room.topic))
        else:
            await room.set_topic(rest)

    @command("me", "ACTION", 'send an action ("* alice waves")')
    async def cmd_me(self, rest: str) -> None:
        if not rest:
            self.ui.show(Info("usage: /me ACTION", error=True))
            return
        await self.say(rest, me=True)

    @command("who", "[ROOM]", "list the members of the current room (or ROOM)",
             aliases=("names",))  # fmt: skip
    async def cmd_who(self, rest: str) -> None:
        name = _first_word(rest)
        room = self.client.room(name) if name else self.current()
        if room is not None:
            self.ui.show(Members(await room.roster()))
        elif name:  # a public room we are not in
            reply = await self.client.who(name)
            owners = tuple(reply.owners or ())
            self.ui.show(
                Members(Roster(reply.room, False, list(reply.members), reply.more, owners))
            )
        else:
            self.ui.show(Info("usage: /who ROOM", error=True))

    @command("list", "", "list the public rooms")
    async def cmd_list(self, rest: str) -> None:
        self.ui.show(Listed(await self.client.list_rooms()))

    @command("secret", "[create] ROOM | rotate",
             "join a secret (end-to-end encrypted) room: asks for its passphrase; "
             "/secret create ROOM makes one (no passphrase: a strong one is made); "
             "/secret rotate (owners) moves the members of the room on screen to a new "
             "room with a new passphrase, leaving the banned behind",
             line_help="join a secret (end-to-end encrypted) room: the next line is its "
             "passphrase; /secret create ROOM makes one (an empty line: a strong one is "
             "made and shown); /secret rotate (owners) moves the members of the current "
             "room to a new room with a new passphrase, leaving the banned behind")  # fmt: skip
    async def cmd_secret(self, rest: str) -> None:
        words = rest.split()
        if is_rotate(rest):
            await self._rotate()
            return
        create = bool(words) and words[0].lower() == "create"
        if create:
            words = words[1:]
        name = words[0].lstrip("#") if len(words) == 1 else ""
        # In band, the passphrase line is read now, whatever comes next: it must
        # never be taken for a message, even when this command goes no further.
        typed = None
        if self.ui.passphrase_in_band:
            shown = f"\U0001f512#{name}" if name else "the secret room"
            prompt = f"passphrase for {shown}" + (" (empty: generate one)" if create else "")
            typed = await self.ui.read_passphrase(prompt + ": ")
            if typed is None:
                return
        dropped = " (the passphrase line was not used)" if typed is not None else ""
        if len(words) != 1 or not name:
            if not words and self.ui.kind == "tui":
                await self.ui.secret_form("", create, self.secret_attempt(create=create))
                return
            self.ui.show(Info(f"usage: /secret ROOM or /secret create ROOM{dropped}", error=True))
            return
        found = self.client.room(name)
        if isinstance(found, SecretRoom):
            self.ui.show(Entered(found, "already"))
            if dropped:
                self.ui.show(Info(f"you are in {found.shown} already{dropped}"))
            return
        if typed is None:
            await self.ui.secret_form(name, create, self.secret_attempt(create=create))
            return
        generated = create and not typed
        if generated:
            typed = generate_passphrase()
        elif create:
            warning = passphrase_warning(typed)
            if warning:
                self.ui.show(Info(f"warning: {warning}"))
        problem = await self.secret_attempt(create=create)(name, typed, generated)
        if problem is not None:
            self.ui.show(Failed("secret", Code.JOIN_DENIED, problem))

    async def _rotate(self) -> None:
        """``/secret rotate``: no passphrase is read (a new one is generated)."""
        room = self.current()
        if not isinstance(room, SecretRoom):
            self.ui.show(Info("/secret rotate works in a secret room you own", error=True))
            return
        self.ui.show(Info(f"rotating {room.shown}: closing it and inviting its members..."))
        done = await self.client.rotate_secret(room.name)
        moved = ", ".join(done.moved) or "nobody"
        left = ", ".join(done.left) or "nobody"
        self.ui.show(
            Lines(
                (
                    f"{room.shown} now is a new room with a new passphrase; the old one is "
                    "closed. Invited over direct messages (their clients follow): " + moved,
                    f"not coming along: {left}",
                    f"the new passphrase, for whoever you invite yourself: {done.passphrase}",
                )
            )
        )

    def secret_attempt(self, *, create: bool) -> Attempt:
        """Enter a secret room with a passphrase: for a form, None when in, else why not."""

        async def attempt(name: str, passphrase: str, generated: bool) -> str | None:
            try:
                room, how = await self.client.enter_secret(name, passphrase, create=create)
            except RequestError as exc:
                return exc.message
            except ConnectionClosed as exc:
                return f"not connected ({exc.message})"
            self.ui.show(Entered(room, how, generated=passphrase if generated else None))
            return None

        return attempt

    @command("invite", "", "show the command others run to join this server and room, quoted")
    async def cmd_invite(self, rest: str) -> None:
        if self.server is None:
            self.ui.show(Info("no server to invite to", error=True))
            return
        room = self.current()
        if room is not None and room.direct:
            room = None  # a conversation is no room to invite to: the server only
        lines, command = invite(
            self.server,
            self.client.pin,
            room.name if room is not None else None,
            secret=room is not None and room.secret,
            proxy=self.client.proxy,
        )
        self.ui.show(Invite(lines, command))

    @command("msg", "NICK TEXT",
             "send a direct message, end-to-end encrypted (in a secret room NICK may be "
             "nick#fp: that member); opens a window for the conversation",
             aliases=("m",),
             line_help="send a direct message, end-to-end encrypted (in a secret room "
             "NICK may be nick#fp: that member); printed as [dm] lines")  # fmt: skip
    async def cmd_msg(self, rest: str) -> None:
        who, _, text = rest.partition(" ")
        if not who or not text.strip():
            self.ui.show(Info("usage: /msg NICK TEXT", error=True))
            return
        room = await self._conversation(who)
        if room is None:
            return
        self.ui.show(DmWindow(room, switch=False))
        await self.say(text, key=room.key)

    @command("query", "NICK",
             "open (and switch to) a window of direct messages with NICK, sending nothing "
             "(in a secret room NICK may be nick#fp)",
             line_help="make the conversation with NICK the current one: lines you type "
             "go to NICK, sealed, until /join or /query switches again")  # fmt: skip
    async def cmd_query(self, rest: str) -> None:
        who = rest.split(" ", 1)[0]
        if not who:
            self.ui.show(Info("usage: /query NICK", error=True))
            return
        room = await self._conversation(who)
        if room is not None:
            self.ui.show(DmWindow(room, switch=True))

    async def _conversation(self, who: str) -> DirectRoom | None:
        """The conversation with ``who``: in a secret room on screen, a member
        named ``nick#fp`` there (by its session key); else a public nick."""
        room = self.current()
        in_secret = room is not None and room.secret and "#" in who
        if room is not None and room.direct and name_key(who) == name_key(room.name):
            assert isinstance(room, DirectRoom)
            return room
        if not in_secret and "#" in who:
            self.ui.show(
                Info(f"{who}: nick#fp names a member of the secret room on screen", error=True)
            )
            return None
        conversation = await self.client.open_dm(who, room.name if in_secret and room else None)
        found = self.client.room_by_key(conversation.key)
        assert isinstance(found, DirectRoom)
        return found

    @command("privacy", "", "what the server can and cannot see about you, in this room")
    async def cmd_privacy(self, rest: str) -> None:
        room = self.current()
        if room is not None and room.direct:
            self.ui.show(Lines(tuple(privacy_report(self.client, None, False, direct=room))))
            return
        name = room.name if room is not None else None
        secret = room is not None and room.secret
        self.ui.show(Lines(tuple(privacy_report(self.client, name, secret))))

    @command("verify", "NICK#FP [WHAT-THEY-READ]",
             "(secret rooms and conversations) compare keys with someone by another "
             "channel; with what they read out, mark them verified for this session")  # fmt: skip
    async def cmd_verify(self, rest: str) -> None:
        room = self.current()
        if isinstance(room, DirectRoom):
            self.ui.show(Lines(tuple(dm_verify_report(self.client, room.peer, rest))))
            return
        name = room.name if room is not None else None
        secret = room is not None and room.secret
        self.ui.show(Lines(tuple(verify_report(self.client, name, secret, rest))))

    async def _owned(self) -> Room | None:
        room = self.current()
        if room is None:
            self.ui.show(Info("owners' commands work in the current room; you are in none"))
        return room

    @command("kick", "NICK [REASON]", "remove someone from the current room", owners=True)
    async def cmd_kick(self, rest: str, ban: bool = False) -> None:
        nick, _, reason = rest.partition(" ")
        room = await self._owned()
        if room is None:
            return
        if not nick:
            self.ui.show(Info(f"usage: /{'ban' if ban else 'kick'} NICK [REASON]", error=True))
            return
        if room.secret and reason.strip():
            self.ui.show(Info("the reason is not sent in a secret room: the server would read it"))
        verb = "ban" if ban else "kick"
        try:
            await room.kick(nick, reason.strip() or None, ban=ban)
            if room.secret:
                self.ui.show(RotateOffer(room.key, room.shown, nick))
        except RequestError as exc:
            if exc.code != Code.NO_SUCH_NICK:
                self.ui.show(Failed(verb, exc.code, exc.message))
            elif not room.secret and name_key(nick) == name_key(self.client.nick):
                self.ui.show(Info(f"you cannot {verb} yourself; /leave instead", error=True))
            else:  # said as what was asked: a ban, not "kick failed"
                only = " (a ban removes someone who is in the room)" if ban else ""
                self.ui.show(Info(f"cannot {verb} {nick}: {exc.message}{only}", error=True))

    @command("ban", "NICK [REASON]", "remove them and keep their session out", owners=True)
    async def cmd_ban(self, rest: str) -> None:
        await self.cmd_kick(rest, ban=True)

    @command("op", "NICK", "make someone an owner of the current room too", owners=True)
    async def cmd_op(self, rest: str) -> None:
        room = await self._owned()
        if room is None:
            return
        if not rest.split():
            self.ui.show(Info("usage: /op NICK", error=True))
            return
        await room.op(rest.split()[0])

    @command("mode", "lock|unlock|slow N|history on|off",
             "lock the room, slow it down (one message per N s), or turn history on join off",
             owners=True)  # fmt: skip
    async def cmd_mode(self, rest: str) -> None:
        room = await self._owned()
        if room is None:
            return
        modes = parse_mode(rest)
        if modes is None:
            self.ui.show(Info(MODE_USAGE, error=True))
            return
        await room.set_mode(**modes)

    @command("ignore", "[NICK | NICK#FP]",
             "hide someone's messages and comings and goings for this session (a count "
             "shows what was hidden; the server is not told); alone: who is ignored")  # fmt: skip
    async def cmd_ignore(self, rest: str) -> None:
        who = rest.strip()
        if not who:
            self._list_ignored()
            return
        room = self.current()
        if room is not None and room.secret:
            try:
                key, label, own = self.client.secret_member(room.name, who)
            except RequestError as exc:
                self.ui.show(Failed("ignore", exc.code, exc.message))
                return
            if own:
                self.ui.show(Info("you cannot ignore yourself", error=True))
                return
            shown, where = label, f"in {room.shown} (by their key there, whatever nick they seal)"
            if self.ignores.add_key(room.key, key, f"{label} in {room.shown}") is None:
                self.ui.show(Info(f"you ignore {label} in {room.shown} already"))
                return
        else:
            nick = who.split()[0]
            try:
                check_nick(nick)
            except InvalidName as exc:
                self.ui.show(Info(f"/ignore {nick}: {exc}", error=True))
                return
            if name_key(nick) == name_key(self.client.nick):
                self.ui.show(Info("you cannot ignore yourself", error=True))
                return
            if self.ignores.add_nick(nick) is None:
                self.ui.show(Info(f"you ignore {nick} already"))
                return
            shown, where = nick, "in every public room, under any nick they change to"
        self.ui.show(
            Info(
                f"ignoring {shown} {where}: their messages and comings and goings are hidden "
                f"for this session and counted; the server is not told. /unignore {who} to undo"
            )
        )

    def _list_ignored(self) -> None:
        if not self.ignores.people:
            self.ui.show(Info("you ignore nobody; /ignore NICK hides someone for this session"))
            return
        lines = ["you ignore (for this session, kept here only):"]
        for entry in self.ignores.people:
            count = entry.total()
            lines.append(f"  {entry.label}: {plural(count, 'line')} hidden")
        self.ui.show(Lines(tuple(lines)))

    @command("unignore", "NICK | NICK#FP", "show someone you ignored again")
    async def cmd_unignore(self, rest: str) -> None:
        who = rest.strip()
        if not who:
            self.ui.show(Info("usage: /unignore NICK | NICK#FP", error=True))
            return
        room = self.current()
        entry = None
        if room is not None and room.secret:
            try:
                key, _, _ = self.client.secret_member(room.name, who)
            except RequestError:
                key = b""
            entry = self.ignores.remove_key(room.key, key) if key else None
        if entry is None:
            entry = self.ignores.remove_nick(who.split()[0].split("#")[0])
        if entry is None:
            self.ui.show(Info(f"you do not ignore {who}; /ignore lists whom you do", error=True))
            return
        hidden = plural(entry.total(), "line was", "lines were")
        self.ui.show(Info(f"{entry.label} is shown again ({hidden} hidden)"))

    @command("theme", "[NAME]", "list the themes, or switch to NAME (remembered)", only="tui")
    async def cmd_theme(self, rest: str) -> None:
        self.ui.front_command("theme", rest)

    @command("help", "", "show keys and commands", line_help="show the commands")
    async def cmd_help(self, rest: str) -> None:
        if self.ui.kind == "tui":
            self.ui.front_command("help", rest)
        else:
            self.ui.show(Lines(tuple(help_lines(self.ui.kind))))

    @command("quit", "[MESSAGE]", "leave the chat", aliases=("exit",))
    async def cmd_quit(self, rest: str) -> None:
        self.ui.show(Quit(rest))
