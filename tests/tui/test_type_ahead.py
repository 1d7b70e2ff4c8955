"""Keys typed before anything on screen takes them (anonchat/tui/typeahead.py).

People type as soon as they start the app, and over a slow link while it
connects. Those keys are held and handed on in order: to the chat (its line
to the room the start lands in), never to a dialog as its answer, and never
to the connect form after a failed connection (test_connection_options.py).
The terminal's side (keys sent before the app reads its input) is in
test_tmux.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from textual.widgets import Input

from anonchat import events as ev
from anonchat.client import Endpoint
from anonchat.daemon import Daemon
from anonchat.tui.app import AnonchatApp
from anonchat.tui.screens.connect import ConnectScreen
from anonchat.tui.screens.trust import TrustScreen

from ..helpers import dial, next_event
from .conftest import app_for, until_chat, wait_for


class HeldLink:
    """A relay in front of the daemon that passes nothing until ``release()``:
    a connection that takes as long as the test wants (a slow link, Tor)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.accepted = 0
        self._go = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def release(self) -> None:
        self._go.set()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        await self._go.wait()
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.daemon.port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@contextlib.asynccontextmanager
async def held_link(daemon: Daemon) -> AsyncIterator[HeldLink]:
    link = HeldLink(daemon)
    link.server = await asyncio.start_server(link._relay, "127.0.0.1", 0)
    try:
        yield link
    finally:
        link.release()
        link.server.close()


def connecting(app: AnonchatApp) -> bool:
    screen = app.screen
    return isinstance(screen, ConnectScreen) and screen.busy


async def test_keys_typed_while_connecting_reach_the_room(daemon: Daemon, tmp_path: Path) -> None:
    watcher = await dial(daemon, "watcher")
    await watcher.create("lobby")
    async with held_link(daemon) as link:
        app = app_for(link.port, tmp_path, "eager", join=["lobby"])
        async with app.run_test(size=(110, 32)) as pilot:
            await wait_for(pilot, lambda: link.accepted == 1 and connecting(app))
            await pilot.press(*"hi there", "enter", *"and")
            assert len(app.type_ahead) == 12  # held: the form takes no keys
            connect_screen = app.screen
            assert isinstance(connect_screen, ConnectScreen)
            assert connect_screen.query_one("#nick", Input).value == "eager"
            link.release()
            chat = await until_chat(pilot)
            said = await next_event(watcher, ev.Msg, timeout=10)
            assert (said.nick, said.text) == ("eager", "hi there")
            box = chat.query_one("#chat-input", Input)
            await wait_for(pilot, lambda: box.value == "and", what="the rest in the box")
            assert app.type_ahead == []
    await watcher.close()


async def test_keys_typed_ahead_never_answer_the_trust_dialog(
    daemon: Daemon, tmp_path: Path
) -> None:
    """A new server's key is shown for the user to decide: keys typed before the
    dialog came up (an Enter, a space: either presses its focused button) wait
    for the chat; they do not answer it."""
    watcher = await dial(daemon, "watcher")
    await watcher.create("lobby")
    async with held_link(daemon) as link:
        endpoint = Endpoint("127.0.0.1", link.port)  # no pin: trust on first use
        app = app_for(link.port, tmp_path, "wary", endpoint=endpoint, join=["lobby"])
        async with app.run_test(size=(110, 32)) as pilot:
            await wait_for(pilot, lambda: link.accepted == 1 and connecting(app))
            await pilot.press("space", *"ok", "enter")
            link.release()
            await wait_for(pilot, lambda: isinstance(app.screen, TrustScreen), what="the dialog")
            await pilot.pause()
            assert isinstance(app.screen, TrustScreen)  # still asking
            assert len(app.type_ahead) == 4
            await pilot.click("#trust")
            await until_chat(pilot)
            said = await next_event(watcher, ev.Msg, timeout=10)
            assert (said.nick, said.text) == ("wary", " ok")
    await watcher.close()
