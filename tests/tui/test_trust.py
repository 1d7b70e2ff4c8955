"""First contact with a TLS daemon in the TUI: the pin is shown, and trusting it
remembers it; refusing connects to nothing and remembers nothing."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button, Static

from anonchat.client import Endpoint
from anonchat.daemon import Daemon
from anonchat.tui.screens.trust import TrustScreen

from .conftest import app_for, until_chat, wait_for


async def test_first_contact_asks_and_trusting_remembers(daemon: Daemon, tmp_path: Path) -> None:
    endpoint = Endpoint("127.0.0.1", daemon.port)  # no pin given: trust on first use
    app = app_for(daemon.port, tmp_path, "newcomer", endpoint=endpoint, join=["lobby"])
    async with app.run_test(size=(110, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, TrustScreen), what="trust dialog")
        shown = str(app.screen.query_one("#trust-text", Static).render())
        assert daemon.pin in shown
        assert app.screen.focused is app.screen.query_one("#refuse", Button)  # safe default
        await pilot.click("#trust")
        await until_chat(pilot)
    known = (tmp_path / "newcomer" / "known_hosts").read_text()
    assert known == f"127.0.0.1:{daemon.port} {daemon.pin}\n"


async def test_refusing_a_new_key_connects_to_nothing(daemon: Daemon, tmp_path: Path) -> None:
    endpoint = Endpoint("127.0.0.1", daemon.port)
    app = app_for(daemon.port, tmp_path, "careful", endpoint=endpoint)
    async with app.run_test(size=(110, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, TrustScreen), what="trust dialog")
        await pilot.press("escape")
        await wait_for(
            pilot,
            lambda: (
                "not seen before" in str(app.screen.query_one("#server-error", Static).render())
            ),
            what="the refusal on the connect screen",
        )
        assert app.chat is None
    assert not (tmp_path / "careful" / "known_hosts").exists()
    assert all(s.nick != "careful" for s in daemon.sessions)
