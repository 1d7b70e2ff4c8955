"""Fixtures for the TUI tests: a real daemon on loopback, apps built by the factory."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input

from anonchat.client import Endpoint
from anonchat.daemon import Config, Daemon
from anonchat.paths import ENV_CONFIG_DIR
from anonchat.trust import create_identity, ensure_identity
from anonchat.tui import AnonchatApp, make_app
from anonchat.tui.screens.chat import ChatScreen


def fixed_clock(ts: int | None = None) -> str:
    return "12:34"


@pytest.fixture(autouse=True)
def _config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never read or write the real user's settings."""
    path = tmp_path / "config"
    monkeypatch.setenv(ENV_CONFIG_DIR, str(path))
    return path


@pytest.fixture(autouse=True)
def _no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    """A blinking cursor makes screenshots depend on timing (as Harlequin does)."""
    monkeypatch.setattr(Input, "cursor_blink", False)


#: One fixed key for every daemon of the TUI tests: a restarted daemon keeps its
#: pin, and the pin shown on screen is the same in every run (snapshots).
STATE_DIR = Path(tempfile.mkdtemp(prefix="anonchat-tui-state-"))
create_identity(STATE_DIR, ec.derive_private_key(0x5EED, ec.SECP256R1()))
PIN = ensure_identity(STATE_DIR).pin


def daemon_config(port: int = 0) -> Config:
    """A loopback TLS daemon, with the key whose pin is PIN."""
    return Config(host="127.0.0.1", port=port, state_dir=str(STATE_DIR))


@pytest.fixture
async def daemon() -> AsyncIterator[Daemon]:
    d = Daemon(daemon_config())
    await d.start()
    try:
        yield d
    finally:
        await d.shutdown()


def app_for(port: int, settings_dir: Path, nick: str, **kwargs: Any) -> AnonchatApp:
    """An app that connects at once to 127.0.0.1:port as ``nick``."""
    kwargs.setdefault("clock", fixed_clock)
    kwargs.setdefault("ping_interval", 3600.0)
    kwargs.setdefault("reconnect_delays", (0.05, 0.1, 0.2))
    kwargs.setdefault("endpoint", Endpoint("127.0.0.1", port, pin=PIN))
    return make_app(
        settings_dir / nick,
        server=f"127.0.0.1:{port}",
        nick=nick,
        autoconnect=True,
        **kwargs,
    )


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 5.0, what: str = ""
) -> None:
    """Let the app run until ``condition()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.02)


def dialog_shown(app: App[Any]) -> bool:
    """The changed-key dialog is up and composed (pushed is not enough: its
    widgets are made a little later, and a query in between finds nothing)."""
    from anonchat.tui.screens.key_changed import KeyChangedScreen

    screen = app.screen
    return isinstance(screen, KeyChangedScreen) and bool(screen.query("#key-text"))


def chat_of(app: AnonchatApp) -> ChatScreen:
    assert app.chat is not None
    return app.chat


async def until_chat(pilot: Pilot[Any]) -> ChatScreen:
    app = pilot.app
    assert isinstance(app, AnonchatApp)
    # On screen and mounted (its on_mount done), so its widgets and windows exist.
    await wait_for(
        pilot,
        lambda: app.chat is not None and app.screen is app.chat and app.chat.ready,
        what="chat",
    )
    return chat_of(app)


async def type_line(pilot: Pilot[Any], text: str) -> None:
    """Type into the focused input and press Enter."""
    app = pilot.app
    box = app.screen.query_one("#chat-input", Input)
    box.focus()
    box.value = text
    box.cursor_position = len(text)
    await pilot.press("enter")


def lines(chat: ChatScreen, key: str) -> list[str]:
    return chat.view(key).log_widget.plain_lines()


def laid_out(chat: ChatScreen, key: str) -> bool:
    """Every line a window holds is laid out for the screen: RichLog defers
    writes until it knows its size, so holding a line is not showing it yet."""
    log = chat.view(key).log_widget
    return not log._deferred_renders and len(log.lines) >= len(log.plain_lines())


class ThreadedDaemon:
    """A real daemon on its own event loop in a thread, for the synchronous
    snapshot fixture (which runs the app in a loop of its own)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.daemon = Daemon(daemon_config())
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedDaemon:
        self._thread.start()
        self.call(self.daemon.start())
        return self

    def call(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(_wrap(coro), self.loop).result(10)

    def __exit__(self, *exc: object) -> None:
        self.call(self.daemon.shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    @property
    def port(self) -> int:
        return self.daemon.port


async def _wrap(aw: Awaitable[Any]) -> Any:
    return await aw


@pytest.fixture
def threaded_daemon() -> Iterator[ThreadedDaemon]:
    with ThreadedDaemon() as d:
        yield d
