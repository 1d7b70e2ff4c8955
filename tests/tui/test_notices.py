"""Notices that say what happened: a changed server key (a dialog saying what
to do, and a status bar that says the app stopped), who refused a connection,
and dialogs drawn where the eye goes (centred)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from textual.widgets import Static

from anonchat.client import Endpoint
from anonchat.daemon import Config, Daemon
from anonchat.errors import Code, Local
from anonchat.trust import create_identity
from anonchat.tui.screens.connect import describe_failure
from anonchat.tui.screens.trust import TrustScreen
from anonchat.tui.state import CONSOLE
from anonchat.tui.widgets.status_bar import StatusBar

from .conftest import PIN, app_for, daemon_config, dialog_shown, lines, until_chat, wait_for


def other_key_config(port: int) -> Config:
    """A daemon on ``port`` with a key that is not PIN's (an impostor, or a new key)."""
    state = Path(tempfile.mkdtemp(prefix="anonchat-other-key-"))
    create_identity(state, ec.derive_private_key(0xBAD5EED, ec.SECP256R1()))
    return Config(host="127.0.0.1", port=port, state_dir=str(state))


def known_hosts_endpoint(port: int) -> Endpoint:
    """Trust on first use: the app's own known_hosts beside its settings."""
    return Endpoint("127.0.0.1", port)


async def test_a_changed_key_on_reconnect_stops_and_says_what_to_do(tmp_path: Path) -> None:
    first = Daemon(daemon_config())
    await first.start()
    port = first.port
    settings = tmp_path / "alice"
    settings.mkdir()
    (settings / "known_hosts").write_text(f"# mine\n127.0.0.1:{port} {PIN}\n")
    alice = app_for(port, tmp_path, "alice", join=["lobby"], endpoint=known_hosts_endpoint(port))
    second: Daemon | None = None
    try:
        async with alice.run_test(size=(100, 30)) as pa:
            ca = await until_chat(pa)
            await wait_for(pa, lambda: "lobby" in ca.state.rooms)
            await first.shutdown()
            await wait_for(pa, lambda: ca.query_one(StatusBar).state == "reconnecting")
            second = Daemon(other_key_config(port))
            await second.start()
            await wait_for(pa, lambda: dialog_shown(alice), timeout=10, what="dialog")
            bar = ca.query_one(StatusBar)
            assert bar.state == "stopped: server key changed"
            assert "stopped: server key changed" in bar.render_text().plain
            text = str(alice.screen.query_one("#key-text", Static).render())
            assert second.pin in text  # the key it presents now
            assert "impersonating" in text and "another channel" in text
            assert f"remove line 2 of {settings / 'known_hosts'}" in " ".join(text.split())
            assert any("not reconnecting" in x for x in lines(ca, CONSOLE))
            await pa.press("escape")
            await wait_for(pa, lambda: alice.screen is ca)
            # It stays stopped: no further attempt is made or announced.
            assert bar.state == "stopped: server key changed"
            assert not ca.connected
    finally:
        await first.shutdown()
        if second is not None:
            await second.shutdown()


async def test_a_changed_key_at_connect_shows_the_dialog(tmp_path: Path) -> None:
    impostor = Daemon(other_key_config(0))
    await impostor.start()
    try:
        port = impostor.port
        settings = tmp_path / "bob"
        settings.mkdir()
        (settings / "known_hosts").write_text(f"127.0.0.1:{port} {PIN}\n")
        bob = app_for(port, tmp_path, "bob", endpoint=known_hosts_endpoint(port))
        async with bob.run_test(size=(80, 24)) as pb:
            await wait_for(pb, lambda: dialog_shown(bob), what="dialog")
            text = " ".join(str(bob.screen.query_one("#key-text", Static).render()).split())
            assert impostor.pin in text and "remove line 1 of" in text
            box = bob.screen.query_one("#key-box")
            assert box.region.x > 0 and box.region.right < 80  # centred, all of it on screen
            await pb.press("escape")
            error = str(bob.screen.query_one("#server-error", Static).render())
            assert error.startswith("Not connected: this client refused a server key that changed")
            assert "The server refused" not in error
        assert bob.chat is None
    finally:
        await impostor.shutdown()


async def test_the_trust_dialog_is_centred(daemon: Daemon, tmp_path: Path) -> None:
    app = app_for(daemon.port, tmp_path, "newcomer", endpoint=known_hosts_endpoint(daemon.port))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, TrustScreen), what="trust dialog")
        await pilot.pause()
        box = app.screen.query_one("#trust-box").region
        left, right = box.x, 80 - box.right
        top, bottom = box.y, 24 - box.bottom
        assert abs(left - right) <= 1 and left > 0, box
        assert abs(top - bottom) <= 1 and top > 0, box


@pytest.mark.parametrize(
    ("code", "who"),
    [
        (Local.HOST_NOT_TRUSTED, "you did not accept the server's key"),
        (Local.HOST_KEY_CHANGED, "this client refused a server key that changed"),
        (Local.PIN_MISMATCH, "this client refused a key that is not the pin given"),
        (Local.PLAINTEXT_REFUSED, "this client refuses unencrypted connections"),
        (Local.TLS_FAILED, "the TLS handshake with the server failed"),
        (Local.EOF, "Not connected"),
        (Code.SERVER_FULL, "The server refused the connection"),
    ],
)
def test_a_failure_says_who_refused_what(code: str, who: str) -> None:
    field, sentence = describe_failure(code, "details", "127.0.0.1:7667")
    assert field == "server"
    assert who in sentence and "details" in sentence
    if isinstance(code, Local):
        assert "The server refused" not in sentence
