"""Both front ends, run by the same tests: what a user types never leaks a secret.

Each test runs once with the line mode (``run_line_mode`` reading a real pipe
as its stdin, as a script or a terminal feeds it) and once with the TUI (the
real app under Pilot), against a real daemon behind a relay that records every
byte the daemon receives.  The front ends share one command core
(anonchat/frontend/commands.py); these tests hold both to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static

from anonchat import events as ev
from anonchat.client import Client, Endpoint
from anonchat.daemon import Daemon
from anonchat.errors import ConnectionClosed
from anonchat.linemode import run_line_mode
from anonchat.paths import ENV_CONFIG_DIR
from anonchat.secret import SecretMessage, SecretNotice
from anonchat.tui import make_app
from anonchat.tui.screens import chat as chat_module
from anonchat.tui.screens.create_room import CreateRoomScreen
from anonchat.tui.screens.passphrase import PassphraseScreen
from anonchat.tui.screens.rotate import RotateScreen

from .conftest import DaemonFactory
from .helpers import collect
from .tui.conftest import chat_of, fixed_clock, type_line, until_chat, wait_for

ROOM = "MidnightPlans"
WIDE = "".join(chr(ord(c) + 0xFEE0) for c in ROOM)  # full-width letters: the same room
PASSPHRASE = "orbit-lemon-staple-horse-battery-canyon"

DELAYS = (0.05, 0.1, 0.2)


class Link:
    """The network between the front end and a plaintext daemon: a relay that
    records every byte the daemon receives, and can be cut (open connections
    reset, new ones held until it is restored) or frozen (bytes held both
    ways, connections left open: a daemon stopped with SIGSTOP, a stalled
    link)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.received = bytearray()
        self.up = asyncio.Event()
        self.up.set()
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.up.wait()
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.daemon.port)
        self.writers += [writer, up_writer]
        await asyncio.gather(
            self._pipe(reader, up_writer, True),
            self._pipe(up_reader, writer, False),
            return_exceptions=True,
        )

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, record: bool
    ) -> None:
        while data := await src.read(65536):
            await self.flowing.wait()
            if record:
                self.received.extend(data)
            dst.write(data)
            await dst.drain()
        dst.close()

    def cut(self) -> None:
        self.up.clear()
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    def restore(self) -> None:
        self.up.set()

    def freeze(self) -> None:
        self.flowing.clear()

    def thaw(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def link(make_daemon: DaemonFactory) -> AsyncIterator[Link]:
    relay = Link(await make_daemon(plaintext=True))
    await relay.start()
    yield relay
    relay.close()


class Front(Protocol):
    """One front end, driven as a user drives it."""

    async def type(self, line: str) -> None: ...

    async def enter_secret(self, room: str, passphrase: str, *, create: bool) -> None: ...

    def output(self) -> str: ...

    async def wait(self, text: str) -> None: ...


class LineFront:
    """The line mode reading a pipe, as a script or a slow terminal feeds it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.out = io.StringIO()
        read_fd, write_fd = os.pipe()
        self.stdin = os.fdopen(read_fd, "r", encoding="utf-8")
        self.pipe = os.fdopen(write_fd, "w", encoding="utf-8")
        self.task: asyncio.Task[int] | None = None

    async def start(self) -> None:
        endpoint = Endpoint("127.0.0.1", self.port, tls=False, known_hosts=None)
        self.task = asyncio.create_task(
            run_line_mode(
                endpoint, nick="alice", stdin=self.stdin, stdout=self.out, reconnect_delays=DELAYS
            )
        )
        await self.wait("connected to")

    async def wait(self, text: str, since: int = 0) -> None:
        """Until ``text`` was printed after ``since`` characters (polling a buffer:
        no timing is asserted)."""
        try:
            async with asyncio.timeout(10):
                while text not in self.out.getvalue()[since:]:
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise AssertionError(f"{text!r} not in:\n{self.out.getvalue()}") from None

    async def type(self, line: str) -> None:
        self.pipe.write(line + "\n")
        self.pipe.flush()

    async def enter_secret(self, room: str, passphrase: str, *, create: bool) -> None:
        mark = len(self.output())
        await self.type(f"/secret {'create ' if create else ''}{room}")
        await self.type(passphrase)
        await self.wait("\U0001f512#", mark)

    def output(self) -> str:
        return self.out.getvalue()

    async def stop(self) -> None:
        self.pipe.close()
        assert self.task is not None
        async with asyncio.timeout(10):
            assert await self.task == 0


class TuiFront:
    """The full-screen app under Pilot."""

    def __init__(self, pilot: Pilot[Any]) -> None:
        self.pilot = pilot

    async def type(self, line: str) -> None:
        await type_line(self.pilot, line)

    async def enter_secret(self, room: str, passphrase: str, *, create: bool) -> None:
        app = self.pilot.app
        await self.type(f"/secret {'create ' if create else ''}{room}")
        form = PassphraseScreen if not create else CreateRoomScreen
        await wait_for(self.pilot, lambda: isinstance(app.screen, form), what="the form")
        box = "#secret-pass" if not create else "#room-pass"
        app.screen.query_one(box, Input).value = passphrase
        await self.pilot.press("enter")
        chat = chat_of(app)  # type: ignore[arg-type]
        await wait_for(self.pilot, lambda: app.screen is chat, what="the form closed")

    def output(self) -> str:
        chat = chat_of(self.pilot.app)  # type: ignore[arg-type]
        return "\n".join("\n".join(v.log_widget.plain_lines()) for v in chat._views.values())

    async def wait(self, text: str) -> None:
        await wait_for(self.pilot, lambda: text in self.output(), 10, text)


@pytest.fixture(params=["line", "tui"])
async def front(
    request: pytest.FixtureRequest,
    link: Link,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Front]:
    monkeypatch.setenv(ENV_CONFIG_DIR, str(tmp_path / "config"))
    port = link.port
    if request.param == "line":
        line = LineFront(port)
        await line.start()
        yield line
        await line.stop()
        return
    endpoint = Endpoint("127.0.0.1", port, tls=False, known_hosts=None)
    app = make_app(
        tmp_path / "tui",
        server=f"127.0.0.1:{port}",
        nick="alice",
        autoconnect=True,
        clock=fixed_clock,
        ping_interval=3600.0,
        reconnect_delays=DELAYS,
        endpoint=endpoint,
    )
    async with app.run_test() as pilot:
        await until_chat(pilot)
        yield TuiFront(pilot)
        with contextlib.suppress(Exception):
            await chat_of(app).close_client()


async def member(port: int, nick: str) -> Client:
    return await Client.connect("127.0.0.1", port, nick=nick, tls=False)


#: Every event the helpers below took from a member, by member: nothing is dropped unseen.
SEEN: dict[int, list[object]] = {}


async def secret_texts(client: Client, count: int) -> list[str]:
    found: list[str] = []
    async with asyncio.timeout(10):
        async for event in client.events():
            SEEN.setdefault(id(client), []).append(event)
            if isinstance(event, SecretMessage) and not event.own:
                found.append(event.text)
                if len(found) == count:
                    return found
    return found


async def test_join_or_create_of_a_joined_secret_room_switches_and_sends_nothing(
    front: Front,
    link: Link,
) -> None:
    """/join NAME and /create NAME, in any case or width, while in the secret room
    NAME: the user is switched to it, the name never reaches the daemon, and what
    follows is sealed (irc habit: /join a room you are in to go there)."""
    daemon, port, received = link.daemon, link.port, link.received
    bob = await member(port, "bob")
    await front.type("/join lobby")
    await front.enter_secret(ROOM, PASSPHRASE, create=True)
    await bob.join_secret(ROOM, PASSPHRASE)
    await front.type("/join lobby")  # away from the secret room first
    await front.type(f"/join {ROOM.upper()}")
    await front.type("sealed after join")
    await front.type("/join lobby")
    await front.type(f"/create #{ROOM.lower()}")
    await front.type("sealed after create")
    await front.type("/join lobby")
    await front.type(f"/j {WIDE}")
    await front.type("sealed after j")
    assert await secret_texts(bob, 3) == [
        "sealed after join",
        "sealed after create",
        "sealed after j",
    ]
    rooms = await bob.list_rooms()
    assert [r.room for r in rooms.rooms] == ["lobby"]
    assert set(daemon.rooms) == {"lobby"}
    for secret in (ROOM, ROOM.upper(), ROOM.lower(), WIDE, "sealed after"):
        assert secret.encode() not in received, secret
    await bob.close()


async def test_secret_of_a_joined_secret_room_switches_to_it(front: Front, link: Link) -> None:
    """/secret NAME when already in NAME: no form, no request, the room comes up;
    in the line mode the passphrase line that follows is consumed, never sent."""
    port, received = link.port, link.received
    bob = await member(port, "bob")
    await front.enter_secret(ROOM, PASSPHRASE, create=True)
    await bob.join_secret(ROOM, PASSPHRASE)
    await front.type("/join lobby")
    await front.wait("you joined #lobby")
    await bob.join("lobby")
    if isinstance(front, LineFront):
        await front.enter_secret(ROOM.lower(), PASSPHRASE, create=False)
        assert "you are in \U0001f512#MidnightPlans already" in front.output()
    else:
        await front.type(f"/secret {ROOM.lower()}")
    await front.type("back in the secret room")
    assert await secret_texts(bob, 1) == ["back in the secret room"]
    assert PASSPHRASE.encode() not in received
    assert b"back in the secret room" not in received
    await bob.close()


async def test_join_with_a_key_as_on_irc_joins_nothing(front: Front, link: Link) -> None:
    """``/join den hunter2`` (IRC's keyed channel) used to join the public room
    den and drop the key: the user talked in the open, believing the room
    locked. It is refused, pointing to /secret, and nothing reaches the daemon."""
    await front.type("/join lobby")
    await front.wait("you joined #lobby")
    mark = len(link.received)
    await front.type("/join den hunter2-hunter2")
    await front.wait("/secret ROOM asks for the passphrase")
    await front.type("/list")  # a request after it: the daemon has read all before
    await front.wait("1 public room:")
    assert b"den" not in link.received[mark:] and b"hunter2" not in link.received[mark:]
    assert "you joined #den" not in front.output()


async def test_a_passphrase_line_is_never_a_message_whatever_the_command_did(link: Link) -> None:
    """Line mode: after any /secret command the next line is the passphrase, and
    goes nowhere else: not after a usage error, an invalid room name, a wrong
    passphrase, or a room we are in already."""
    port, received = link.port, link.received
    front = LineFront(port)
    await front.start()
    await front.type("/join lobby")
    await front.wait("you joined #lobby")
    watcher = await member(port, "watcher")
    await watcher.join("lobby")
    attempts = [
        ("/secret create", "passphrase one"),  # no room: usage
        ("/secret create two words", "passphrase two"),  # usage
        ("/secret create bad\u0007name", "passphrase three"),  # invalid name
        ("/secret nowhere", "passphrase four"),  # no such room or wrong passphrase
    ]
    for command, passphrase in attempts:
        await front.type(command)
        await front.type(passphrase)
    await front.type("a real message")
    msgs = await collect(watcher, ev.Msg, 1)
    assert [m.text for m in msgs] == ["a real message"]
    assert b"passphrase" not in received
    assert front.output().count("the passphrase line was not used") == 2
    await watcher.close()
    await front.stop()


async def test_lines_typed_while_reconnecting_are_sent_once_when_back(
    front: Front, link: Link
) -> None:
    """The network drops; the user goes on typing; the lines wait and are sent
    once, in order, when the session is back (resumed: nobody saw a quit)."""
    watcher = await member(link.daemon.port, "watcher")  # not through the link
    await front.type("/join lobby")
    await front.wait("you joined #lobby")
    await watcher.join("lobby")
    await front.type("before the cut")
    assert [m.text for m in await collect(watcher, ev.Msg, 1)] == ["before the cut"]
    link.cut()
    await front.wait("connection lost")
    await front.type("typed while away")
    await front.type("/me is still typing")
    await front.wait("sent once the session is back")
    link.restore()
    msgs = await collect(watcher, ev.Msg, 2)
    assert [(m.text, m.me) for m in msgs] == [
        ("typed while away", False),
        ("is still typing", True),
    ]
    await front.type("after")
    assert [m.text for m in await collect(watcher, ev.Msg, 1)] == ["after"]
    others = [e for e in watcher.events_nowait() if isinstance(e, ev.Presence)]
    assert not [p for p in others if p.nick == "alice"]  # resumed: no quit, no join
    await watcher.close()


async def test_a_server_that_stops_answering_is_left_and_the_session_resumed(
    link: Link, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon stalls (SIGSTOP, a frozen link): the TUI's ping gets no answer.
    It drops the connection without a goodbye and reconnects; once the daemon
    answers again the session is resumed: what was said meanwhile arrives, and
    nobody saw a quit. (It used to close the client with a goodbye: the status
    bar said "disconnected" for good, every line after was "not sent", and the
    daemon, reading the goodbye when it woke, ended the session.)"""
    monkeypatch.setattr(chat_module, "PING_TIMEOUT", 0.5)
    monkeypatch.setenv(ENV_CONFIG_DIR, str(tmp_path / "config"))
    port = link.port
    watcher = await member(link.daemon.port, "watcher")  # not through the link
    app = make_app(
        tmp_path / "tui",
        server=f"127.0.0.1:{port}",
        nick="alice",
        autoconnect=True,
        join=["lobby"],
        clock=fixed_clock,
        ping_interval=0.1,
        reconnect_delays=DELAYS,
        endpoint=Endpoint("127.0.0.1", port, tls=False, known_hosts=None),
    )
    async with app.run_test() as pilot:
        front = TuiFront(pilot)
        chat = await until_chat(pilot)
        await front.wait("you joined #lobby")
        await watcher.join("lobby")
        link.freeze()
        await front.wait("no answer from the server")
        await watcher.say("lobby", "said while the server was stalled")
        await wait_for(pilot, lambda: chat.status.state.startswith("reconnecting"), 10)
        link.thaw()
        await front.wait("said while the server was stalled")
        await wait_for(pilot, lambda: chat.status.state == "connected", 10)
        assert chat.client.resumed
        await front.type("after the stall")
        got = await collect(watcher, ev.Msg, 2)  # its own line, then alice's
        assert [(m.nick, m.text) for m in got][-1] == ("alice", "after the stall")
        others = [e for e in watcher.events_nowait() if isinstance(e, ev.Presence)]
        assert not [p for p in others if p.nick == "alice"]  # resumed: no quit, no join
        await chat.close_client()
    await watcher.close()


async def test_lines_typed_offline_go_to_the_room_they_were_typed_in(
    link: Link, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TUI: lines typed while the connection is down wait, in order; a room
    switched to meanwhile must not change where they go. The second line used
    to go to the room on screen when it was finally sent: typed in a secret
    room, it could go out in the clear to a public one."""
    monkeypatch.setenv(ENV_CONFIG_DIR, str(tmp_path / "config"))
    port = link.port
    watcher = await member(link.daemon.port, "watcher")  # not through the link
    app = make_app(
        tmp_path / "tui",
        server=f"127.0.0.1:{port}",
        nick="alice",
        autoconnect=True,
        join=["one", "two"],
        clock=fixed_clock,
        ping_interval=3600.0,
        reconnect_delays=DELAYS,
        endpoint=Endpoint("127.0.0.1", port, tls=False, known_hosts=None),
    )
    async with app.run_test() as pilot:
        front = TuiFront(pilot)
        chat = await until_chat(pilot)
        await front.wait("you joined #two")
        await watcher.join("one")
        await watcher.join("two")
        assert chat.state.current == "two"
        link.cut()
        await front.wait("connection lost")
        await front.type("first, for two")
        await front.type("second, for two")
        await pilot.press("ctrl+p")  # to #one, before the lines could go
        await wait_for(pilot, lambda: chat.state.current == "one")
        link.restore()
        got = await collect(watcher, ev.Msg, 2)
        assert [(m.room, m.text) for m in got] == [
            ("two", "first, for two"),
            ("two", "second, for two"),
        ]
        await front.type("now for one")
        got = await collect(watcher, ev.Msg, 1)
        assert [(m.room, m.text) for m in got] == [("one", "now for one")]
        await chat.close_client()
    await watcher.close()


async def test_passphrase_file_answers_secret_without_reading_a_line(
    make_daemon: DaemonFactory, tmp_path: Path
) -> None:
    """``--passphrase-file``: a script's /secret takes the passphrase from the
    file, so the next input line is a message again (and the file's content is
    never printed)."""
    daemon = await make_daemon()
    alice = await Client.connect("127.0.0.1", daemon.port, nick="alice", pin=daemon.pin)
    await alice.create_secret(ROOM, PASSPHRASE)
    secret_file = tmp_path / "passphrase"
    secret_file.write_text(PASSPHRASE + "\nsecond line ignored\n", encoding="utf-8")
    script = f"/secret {ROOM}\nhi from a script\n"
    argv = ["--plain", "--server", f"127.0.0.1:{daemon.port}", "--fingerprint", daemon.pin]
    argv += ["--nick", "bot", "--passphrase-file", str(secret_file)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "anonchat",
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(script.encode())
    assert proc.returncode == 0, err.decode()
    assert PASSPHRASE not in out.decode()
    assert await secret_texts(alice, 1) == ["hi from a script"]
    empty = tmp_path / "empty"
    empty.write_text("", encoding="utf-8")
    bad = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "anonchat", *argv[:-1], str(empty),
        stdin=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await bad.communicate()
    assert bad.returncode == 2 and b"is empty" in err
    await alice.close()


async def notices_of(client: Client) -> list[str]:
    """The secret-room notices a member was shown so far (without waiting)."""
    events = SEEN.pop(id(client), []) + list(client.events_nowait())
    return [e.text for e in events if isinstance(e, SecretNotice)]


def room_list_text(chat: Any) -> str:
    """What the sidebar's room list shows, one entry a line."""
    rooms = chat.query_one("#room-list", OptionList)
    return "\n".join(str(rooms.get_option_at_index(i).prompt) for i in range(rooms.option_count))


async def test_a_secret_room_tells_the_truth_after_a_reconnect(front: Front, link: Link) -> None:
    """Cut the network under a member of a secret room while it types: once back,
    nobody is told that messages are missing (nothing is), the room is shown as
    joined, and what was typed arrives once."""
    bob = await member(link.daemon.port, "bob")  # not through the link
    await front.enter_secret(ROOM, PASSPHRASE, create=True)
    await bob.join_secret(ROOM, PASSPHRASE)
    await front.type("one")
    assert await secret_texts(bob, 1) == ["one"]
    link.cut()
    await front.wait("connection lost")
    await front.type("typed while away")
    await front.wait("sent once the session is back")
    link.restore()
    assert await secret_texts(bob, 1) == ["typed while away"]
    await front.type("after")
    assert await secret_texts(bob, 1) == ["after"]
    missing = [n for n in await notices_of(bob) if "missing" in n]
    assert missing == []
    assert "missing" not in front.output()
    if isinstance(front, TuiFront):
        chat = chat_of(front.pilot.app)  # type: ignore[arg-type]
        assert all(room.joined for room in chat.state.secret_rooms())
        assert f"\u25cf \U0001f512#{ROOM}" in room_list_text(chat)  # ● joined, not ○
    await bob.close()


async def test_a_secret_room_tells_the_truth_after_a_daemon_restart(
    link: Link, make_daemon: DaemonFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon restarts (the TUI comes back as a new session, rejoining with the
    keys it holds): nobody is told of messages missing that were never sent, and
    the room is shown as joined again."""
    monkeypatch.setenv(ENV_CONFIG_DIR, str(tmp_path / "config"))
    endpoint = Endpoint("127.0.0.1", link.port, tls=False, known_hosts=None)
    app = make_app(
        tmp_path / "tui", server=f"127.0.0.1:{link.port}", nick="alice", autoconnect=True,
        clock=fixed_clock, ping_interval=3600.0, reconnect_delays=DELAYS, endpoint=endpoint,
    )  # fmt: skip
    async with app.run_test() as pilot:
        await until_chat(pilot)
        front = TuiFront(pilot)
        bob = await member(link.daemon.port, "bob")
        await front.enter_secret(ROOM, PASSPHRASE, create=True)
        await bob.join_secret(ROOM, PASSPHRASE)
        await front.type("before")
        assert await secret_texts(bob, 1) == ["before"]
        await link.daemon.shutdown()
        link.cut()
        link.daemon = await make_daemon(plaintext=True)
        link.restore()
        await front.wait("rejoined")
        bob2 = await Client.connect(
            "127.0.0.1", link.daemon.port, nick="bob", tls=False, resume=bob
        )
        await bob2.rejoin(bob)
        await front.type("after the restart")
        assert await secret_texts(bob2, 1) == ["after the restart"]
        await bob2.say_secret(ROOM, "bob is back")
        await front.wait("bob is back")
        assert [n for n in await notices_of(bob2) if "missing" in n] == []
        assert "missing" not in front.output()
        chat = chat_of(app)
        assert all(room.joined for room in chat.state.secret_rooms())
        assert f"\u25cf \U0001f512#{ROOM}" in room_list_text(chat)  # ● joined, not ○
        await bob2.close()
        await chat.close_client()


async def test_a_message_that_cannot_be_sent_uses_no_counter(link: Link) -> None:
    """Sealing happens only on an open connection: a message refused because the
    connection is gone leaves no gap in the sender's counter."""
    alice = await member(link.port, "alice")
    bob = await member(link.daemon.port, "bob")
    await alice.create_secret(ROOM, PASSPHRASE)
    await bob.join_secret(ROOM, PASSPHRASE)
    await alice.say_secret(ROOM, "one")
    sealer = alice.secret_channel(ROOM).sealer
    assert sealer is not None
    counter = sealer._counter
    link.cut()
    async with asyncio.timeout(10):
        while alice.closed is None:
            await asyncio.sleep(0.01)
    with pytest.raises(ConnectionClosed):
        await alice.say_secret(ROOM, "never sent")
    assert sealer._counter == counter
    link.restore()
    back = await Client.connect("127.0.0.1", link.port, nick="alice", tls=False, resume=alice)
    await back.say_secret(ROOM, "two")
    assert await secret_texts(bob, 2) == ["one", "two"]
    assert [n for n in await notices_of(bob) if "missing" in n] == []
    await back.close()
    await bob.close()


async def test_ignore_hides_a_public_nick_through_its_nick_changes_and_counts(
    front: Front, link: Link
) -> None:
    """/ignore NICK: their messages, actions and comings and goings are hidden in
    both front ends, under any nick they change to; /ignore counts what was
    hidden; /unignore shows them again; the daemon is never told."""
    port = link.port
    await front.type("/join lobby")
    await front.wait("you joined #lobby")
    troll, bob = await member(port, "troll"), await member(port, "bob")
    await troll.join("lobby")
    await bob.join("lobby")
    await front.wait("bob joined")
    await front.type("/ignore troll")
    await front.wait("ignoring troll in every public room")
    await troll.say("lobby", "troll speaks")
    await troll.say("lobby", "dances", me=True)
    await troll.set_nick("troll2")
    await troll.say("lobby", "troll under a new nick")
    await troll.leave("lobby")
    await bob.say("lobby", "bob after all that")
    await front.wait("bob after all that")
    for hidden in ("troll speaks", "dances", "troll2", "troll under a new nick"):
        assert hidden not in front.output(), hidden
    await front.type("/ignore")
    await front.wait("troll: 5 lines hidden")
    if isinstance(front, TuiFront):  # and the room's topic bar says so, where one looks
        bar = chat_of(front.pilot.app).query_one("#topic-bar", Static)  # type: ignore[arg-type]
        assert "5 lines hidden: /ignore" in str(bar.render())
    await front.type("/ignore bob")
    await front.type("/unignore troll")
    await front.wait("troll is shown again (5 lines were hidden)")
    await troll.join("lobby")
    await troll.say("lobby", "visible again")
    await bob.say("lobby", "bob is hidden now")
    await front.wait("visible again")
    await front.type("/ignore")
    await front.wait("bob: 1 line hidden")
    assert "bob is hidden now" not in front.output()
    assert b"ignore" not in link.received  # a local matter: nothing was sent
    await troll.close()
    await bob.close()


async def test_ignore_in_a_secret_room_hides_a_member_by_its_key(front: Front, link: Link) -> None:
    """In a secret room, /ignore names a member (nick or nick#fp) and hides that
    session key's sealed messages and comings and goings, not others'."""
    port = link.port
    await front.enter_secret(ROOM, PASSPHRASE, create=True)
    troll, bob = await member(port, "troll"), await member(port, "bob")
    await troll.join_secret(ROOM, PASSPHRASE)
    await front.wait("troll#")
    await bob.join_secret(ROOM, PASSPHRASE)
    await front.wait("bob#")
    await front.type("/ignore troll")
    await front.wait("by their key there")
    await front.type("/ignore alice")
    await front.wait("you cannot ignore yourself")
    await troll.say_secret(ROOM, "sealed troll")
    await bob.say_secret(ROOM, "sealed bob")
    await front.wait("sealed bob")
    await troll.leave_secret(ROOM)
    await bob.say_secret(ROOM, "bob again")
    await front.wait("bob again")
    assert "sealed troll" not in front.output()
    assert "troll#" not in front.output().split("by their key there")[-1]  # no "left" line
    await front.type("/ignore")
    await front.wait("in \U0001f512#MidnightPlans: 2 lines hidden")
    await troll.close()
    await bob.close()


async def test_names_that_mix_scripts_are_marked(front: Front, link: Link) -> None:
    """A nick with one Cyrillic letter among Latin ones (the way to make a
    look-alike of a nick that is not connected) is marked ⚠ wherever it is shown:
    its messages, its comings, /who, the member list; a public room name in
    /list too. An honest all-Cyrillic nick is not marked."""
    port = link.port
    mixed, honest = "b\u043eb", "\u0410\u043b\u0438\u0441\u0430"  # bоb (Cyrillic о), Алиса
    await front.type("/join lobby")
    await front.wait("you joined #lobby")
    impostor, alisa = await member(port, mixed), await member(port, honest)
    await impostor.join("lobby")
    await alisa.join("lobby")
    await impostor.create("l\u043ebby")  # lоbby
    await front.wait(f"{honest} joined")
    assert f"{mixed}\u26a0 joined" in front.output()
    await impostor.say("lobby", "trust me")
    await alisa.say("lobby", "hello")
    await front.wait("hello")
    out = front.output()
    assert f"{mixed}\u26a0" in out.split("trust me")[0].splitlines()[-1]
    assert f"{honest}\u26a0" not in out
    mark = len(front.output())
    await front.type("/who")
    await front.wait("lobby (3)")
    who = front.output()[mark:]
    assert f"{mixed}\u26a0" in who and honest in who and f"{honest}\u26a0" not in who
    await front.type("/list")
    await front.wait("l\u043ebby\u26a0")
    assert "#lobby\u26a0" not in front.output()
    if isinstance(front, TuiFront):
        chat = chat_of(front.pilot.app)  # type: ignore[arg-type]
        names = str(chat.query_one("#member-names", Static).render())
        assert f"{mixed}\u26a0" in names and f"{honest}\u26a0" not in names
        await wait_for(front.pilot, lambda: "l\u043ebby\u26a0" in room_list_text(chat))
    await impostor.close()
    await alisa.close()


async def test_who_shows_the_owners(front: Front, link: Link) -> None:
    """/who marks a public room's owners with @ and names them (the line mode
    listed the members alone, though the README says owners are shown)."""
    await front.type("/join lobby")
    await front.wait("you joined #lobby")  # we made it: we own it
    bob = await member(link.port, "bob")
    await bob.join("lobby")
    await front.wait("bob joined")
    mark = len(front.output())
    await front.type("/who")
    await front.wait("lobby (2)")
    await front.wait("owners: alice")
    who = front.output()[mark:]
    assert "@alice, bob" in who and "@bob" not in who
    await bob.close()


async def test_after_a_kick_what_is_typed_goes_to_no_other_room(front: Front, link: Link) -> None:
    """Kicked from the room on screen, a user goes on typing (an answer to the
    kick, most likely): it must not land in another room. The line mode
    quietly made the last other room the current one, so the next line went
    there."""
    owner = await member(link.port, "owner")
    await owner.create("club")
    await owner.create("other")
    await front.type("/join other")
    await front.wait("you joined #other")
    await front.type("/join club")
    await front.wait("you joined #club")
    await owner.kick("club", "alice", "off topic")
    await front.wait("kicked by owner")
    await front.type("what was that for")
    await front.wait("not sent")
    await front.type("/join other")  # back to #other, on purpose
    await front.type("said in other on purpose")
    got = await collect(owner, ev.Msg, 1)
    assert [(m.room, m.text) for m in got] == [("other", "said in other on purpose")]
    await owner.close()


async def test_emoji_sequences_stay_whole_and_tricks_stay_visible(front: Front, link: Link) -> None:
    """👩‍💻 (two emoji and a joiner) and a flag's tag sequence arrive whole in
    both front ends; a joiner between letters and a right-to-left override in
    the same message are shown as codes, as before."""
    technologist = "\U0001f469\U0001f3fd\u200d\U0001f4bb"
    scotland = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    await front.type("/join lobby")
    await front.wait("you joined #lobby")
    bob = await member(link.port, "bob")
    await bob.join("lobby")
    await bob.say("lobby", f"{technologist} ships {scotland} a\u200db \u202eevil")
    await front.wait(" ships ")
    line = next(x for x in front.output().splitlines() if " ships " in x)
    assert f"{technologist} ships {scotland} a<U+200D>b <U+202E>evil" in line
    await bob.close()


async def test_the_line_mode_tells_the_truth_after_a_daemon_restart(
    link: Link, make_daemon: DaemonFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The line mode's half of the daemon-restart check: the daemon goes away
    without a word (a crash: a clean shutdown's bye ends the line mode, which
    is not persistent) and comes back empty; back as a new session, rejoined
    with the keys it holds, the line mode warns nobody (itself included) of
    messages missing, and its own and the others' lines come through once."""
    monkeypatch.setenv(ENV_CONFIG_DIR, str(tmp_path / "config"))
    front = LineFront(link.port)
    await front.start()
    bob = await member(link.daemon.port, "bob")
    await front.enter_secret(ROOM, PASSPHRASE, create=True)
    await bob.join_secret(ROOM, PASSPHRASE)
    await front.type("before")
    assert await secret_texts(bob, 1) == ["before"]
    link.cut()
    await link.daemon.shutdown()
    link.daemon = await make_daemon(plaintext=True)
    link.restore()
    await front.wait("reconnected as alice")  # (after its rooms were rejoined)
    bob2 = await Client.connect("127.0.0.1", link.daemon.port, nick="bob", tls=False, resume=bob)
    await bob2.rejoin(bob)
    await front.type("after the restart")
    assert await secret_texts(bob2, 1) == ["after the restart"]
    await bob2.say_secret(ROOM, "bob is back")
    await front.wait("bob is back")
    assert [n for n in await notices_of(bob2) if "missing" in n] == []
    assert "missing" not in front.output()
    assert front.output().count("bob is back") == 1
    await bob2.close()
    await front.stop()


async def test_direct_messages_in_both_front_ends(front: Front, link: Link) -> None:
    """/msg opens a conversation and sends, sealed (the daemon never sees the text);
    an answer arrives in it; /query opens it; a nick change does not break it;
    /verify and /privacy speak of both DM keys; errors are said."""
    port = link.port
    bob = await member(port, "bob")
    await front.type("/msg bob meet at the old mill")
    got = await dm_texts(bob, 1)
    assert got == ["meet at the old mill"]
    assert b"old mill" not in link.received  # sealed end to end
    await front.wait("meet at the old mill")
    if isinstance(front, LineFront):
        await front.wait("[dm] -> bob#")
    bob_peer = next(iter(bob.dms.conversations))
    peer = bob_peer
    await bob.send_dm(peer, "see you there")
    await front.wait("see you there")
    if isinstance(front, LineFront):
        await front.wait("[dm] <bob#")
    elif isinstance(front, TuiFront):  # a window listed with the rooms, unread and mentioned
        chat = chat_of(front.pilot.app)  # type: ignore[arg-type]
        (room,) = [r for r in chat.state.rooms.values() if r.dm]
        assert room.name.startswith("bob#") and room.unread == 1 and room.mentioned
    await bob.set_nick("robert")
    await front.type("/query robert")
    await front.wait("robert#")
    await front.type("typed in the conversation")
    assert await dm_texts(bob, 1) == ["typed in the conversation"]
    await front.type("/verify")
    await front.wait("their DM key's long fingerprint")
    theirs = bob.dm_verification(bob_peer)
    await front.type(f"/verify {theirs.ours}")
    await front.wait("is verified: it matches")
    await front.type("/privacy")
    await front.wait("who writes to whom")
    await front.type("/who")
    await front.wait("direct messages between robert#")
    await front.type("/msg nobody hello?")
    await front.wait("nobody here is called nobody")
    await bob.close()
    await front.type("after bob left")
    await front.wait("the recipient has left the server")


async def dm_texts(client: Client, count: int) -> list[str]:
    from anonchat.dm import DirectMessage

    found: list[str] = []
    async with asyncio.timeout(10):
        async for event in client.events():
            if isinstance(event, DirectMessage) and not event.own:
                found.append(event.text)
                if len(found) == count:
                    return found
    return found


async def test_secret_rotate_in_both_front_ends(front: Front, link: Link) -> None:
    """/secret rotate (no passphrase line is read): the members follow to the new
    room, the banned one is left behind and told nothing; the passphrase never
    reaches the daemon."""
    port = link.port
    await front.enter_secret(ROOM, PASSPHRASE, create=True)
    bob, troll = await member(port, "bob"), await member(port, "troll")
    await bob.join_secret(ROOM, PASSPHRASE)
    await troll.join_secret(ROOM, PASSPHRASE)
    await front.wait("troll#")
    await front.type("/ban troll")
    await front.wait("still knows the passphrase")
    if isinstance(front, TuiFront):  # the choice, in a dialog after the ban
        app = front.pilot.app
        await wait_for(front.pilot, lambda: isinstance(app.screen, RotateScreen), what="dialog")
        await front.pilot.click("#rotate")
    else:
        await front.type("/secret rotate")
    await front.wait("not coming along: troll#")
    output = front.output()
    passphrase = output.split("the new passphrase, for whoever you invite yourself: ")[1].split()[0]
    assert passphrase.encode() not in link.received
    async with asyncio.timeout(15):
        async for event in bob.events():
            if isinstance(event, SecretNotice) and event.kind == "rotated":
                break
    await bob.say_secret(ROOM, "made it across")
    await front.wait("made it across")
    await troll.ping()
    assert not [e for e in troll.events_nowait() if "rotat" in str(getattr(e, "text", ""))]
    await front.type("still here")  # the line after /secret rotate is a message, sealed
    assert await secret_texts(bob, 1) == ["still here"]
    await bob.close()
    await troll.close()
