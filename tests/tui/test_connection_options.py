"""The command line's connection options reach every connection, in both front ends.

``--proxy`` above all: through a real SOCKS5 proxy (microsocks), the client
makes no name lookup of its own and no connection but to the proxy, on the
connect screen, for a server typed there, on reconnects, and in line mode; an
unusable proxy stops the connection, never a direct one instead.  And pins:
a given pin (``--fingerprint``, a link) is followed, never written to
known_hosts, and when known_hosts remembers another one the user is told.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textual.widgets import Input, Static

from anonchat import events as ev
from anonchat.cli import client_parser, endpoint_from_args
from anonchat.client import Client, Endpoint
from anonchat.daemon import Config, Daemon
from anonchat.linemode import run_line_mode
from anonchat.paths import ENV_CONFIG_DIR
from anonchat.trust import KnownHosts
from anonchat.tui.app import AnonchatApp, app_for_endpoint
from anonchat.tui.screens.connect import ConnectScreen
from anonchat.tui.session import connect as real_connect
from anonchat.tui.state import CONSOLE
from anonchat.tui.widgets.status_bar import StatusBar

from ..helpers import free_port, next_event
from .conftest import PIN, dialog_shown, fixed_clock, lines, type_line, until_chat, wait_for

FRONT_ENDS = ["tui", "line"]
OTHER_PIN = "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


@dataclass
class NetLog:
    """Name lookups and outgoing connections made in this process."""

    lookups: list[tuple[Any, ...]] = field(default_factory=list)
    connects: list[Any] = field(default_factory=list)


@contextlib.contextmanager
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetLog]:
    """Record (and pass on) every call of the event loop's getaddrinfo and
    sock_connect, and of socket.getaddrinfo, from here on."""
    log = NetLog()
    loop = asyncio.get_running_loop()
    loop_getaddrinfo, loop_sock_connect = loop.getaddrinfo, loop.sock_connect
    socket_getaddrinfo = socket.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        log.lookups.append(("loop.getaddrinfo", host, port))
        return await loop_getaddrinfo(host, port, *args, **kwargs)

    async def sock_connect(sock: socket.socket, address: Any) -> None:
        log.connects.append(address)
        await loop_sock_connect(sock, address)

    def sync_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        log.lookups.append(("socket.getaddrinfo", host))
        return socket_getaddrinfo(host, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(loop, "getaddrinfo", getaddrinfo)
        m.setattr(loop, "sock_connect", sock_connect)
        m.setattr(socket, "getaddrinfo", sync_getaddrinfo)
        yield log


def options(argv: list[str]) -> Endpoint:
    """What ``anonchat ARGV`` connects with, read by the real command-line code."""
    parser = client_parser()
    return endpoint_from_args(parser, parser.parse_args(argv))


def tui_app(endpoint: Endpoint, tmp_path: Path, nick: str, **kwargs: Any) -> AnonchatApp:
    """The app ``anonchat`` would run for ``endpoint`` (cli -> run_tui), settings in tmp."""
    return app_for_endpoint(
        endpoint,
        nick=nick,
        settings_dir=tmp_path / "config",
        clock=fixed_clock,
        ping_interval=3600.0,
        reconnect_delays=(0.05, 0.1, 0.2),
        **kwargs,
    )


async def type_server(app: AnonchatApp, pilot: Any, text: str) -> None:
    box = app.screen.query_one("#server", Input)
    box.value = text
    box.focus()
    await pilot.press("enter")


def server_error(app: AnonchatApp) -> str:
    return str(app.screen.query_one("#server-error", Static).render())


async def line_mode(endpoint: Endpoint, nick: str, script: str = "") -> tuple[int, str]:
    """Run line mode in this process on ``script`` as stdin; (status, what it printed)."""
    out = io.StringIO()
    status = await run_line_mode(endpoint, nick=nick, stdin=io.StringIO(script), stdout=out)
    return status, out.getvalue()


@pytest.fixture(autouse=True)
def _known_hosts_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Line mode and the TUI keep known_hosts in the same (temporary) config directory."""
    monkeypatch.setenv(ENV_CONFIG_DIR, str(tmp_path / "config"))
    return tmp_path / "config" / "known_hosts"


# -- the proxy ---------------------------------------------------------------------


@pytest.mark.parametrize("front_end", FRONT_ENDS)
async def test_through_the_proxy_no_local_lookup_and_no_direct_connection(
    front_end: str,
    daemon: Daemon,
    socks_proxy: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = f"socks5://127.0.0.1:{socks_proxy}"
    server = f"localhost:{daemon.port}"  # a name: a local lookup would show
    observer = await Client.connect("127.0.0.1", daemon.port, pin=PIN, nick="observer")
    await observer.join_or_create("lobby")
    with recording(monkeypatch) as net:
        if front_end == "line":
            endpoint = options(
                ["--plain", "--server", server, "--fingerprint", PIN, "--proxy", proxy]
            )
            status, out = await line_mode(endpoint, "tor", "/join lobby\nhello through tor\n")
            assert status == 0, out
            assert f"connected to {server} via socks5 127.0.0.1:{socks_proxy}" in out
            msg = await next_event(observer, ev.Msg)
        else:
            # No --server: the connect screen asks, and the server is typed there.
            endpoint = options(["--proxy", proxy, "--accept-new-host"])
            app = tui_app(endpoint, tmp_path, "tor", join=["lobby"])
            async with app.run_test(size=(110, 32)) as pilot:
                assert isinstance(app.screen, ConnectScreen)
                via = str(app.screen.query_one("#via", Static).render())
                assert f"through the proxy socks5 127.0.0.1:{socks_proxy}" in via
                await type_server(app, pilot, server)
                chat = await until_chat(pilot)
                bar = chat.query_one(StatusBar).render_text().plain
                assert f"{server} via socks5 127.0.0.1:{socks_proxy} TLS" in bar
                await wait_for(pilot, lambda: chat.state.current == "lobby", what="lobby")
                await type_line(pilot, "hello through tor")
                msg = await next_event(observer, ev.Msg)
                await app.action_quit()
    assert (msg.nick, msg.text) == ("tor", "hello through tor")
    assert net.lookups == []
    assert net.connects and set(net.connects) == {("127.0.0.1", socks_proxy)}
    await observer.close()


@pytest.mark.parametrize("front_end", FRONT_ENDS)
async def test_reconnects_go_through_the_proxy_too(
    front_end: str,
    daemon: Daemon,
    socks_proxy: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = f"localhost:{daemon.port}"
    argv = [
        "--server",
        server,
        "--fingerprint",
        PIN,
        "--proxy",
        f"socks5://127.0.0.1:{socks_proxy}",
    ]

    async def drop() -> None:
        """The network drops the connection (between the proxy and the daemon)."""
        (session,) = [s for s in daemon.sessions if s.nick == "tor"]
        session.transport.abort()

    with recording(monkeypatch) as net:
        if front_end == "line":
            await _line_mode_through_a_drop(options(["--plain", *argv]), drop)
        else:
            app = tui_app(options(argv), tmp_path, "tor", join=["lobby"])
            async with app.run_test(size=(110, 32)) as pilot:
                chat = await until_chat(pilot)
                await wait_for(pilot, lambda: chat.state.current == "lobby", what="lobby")
                first = chat.client
                await drop()
                await wait_for(
                    pilot,
                    lambda: chat.client is not first and chat.connected,
                    timeout=10,
                    what="reconnected",
                )
                assert chat.client.resumed
                bar = chat.query_one(StatusBar)
                assert f"{server} via socks5 127.0.0.1:{socks_proxy}" in bar.render_text().plain
                await app.action_quit()
    assert net.lookups == []
    assert len(net.connects) == 2 and set(net.connects) == {("127.0.0.1", socks_proxy)}


async def _line_mode_through_a_drop(endpoint: Endpoint, drop: Any) -> None:
    """Line mode on a pipe: connected, the connection dropped, reconnected, /quit."""
    read_fd, write_fd = os.pipe()
    stdin, feed = os.fdopen(read_fd, "r"), os.fdopen(write_fd, "w")
    out = io.StringIO()
    task = asyncio.create_task(
        run_line_mode(endpoint, nick="tor", stdin=stdin, stdout=out, reconnect_delays=(0.05,) * 50)
    )
    try:
        await until(lambda: "connected to" in out.getvalue() or task.done(), "connected")
        await drop()
        await until(lambda: "reconnected" in out.getvalue() or task.done(), "reconnected")
        assert "reconnected and resumed" in out.getvalue()
        feed.write("/quit\n")
        feed.flush()
        async with asyncio.timeout(10):
            assert await task == 0, out.getvalue()
    finally:
        feed.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        stdin.close()
    assert f"connected to localhost:{endpoint.port} via socks5" in out.getvalue()


async def until(condition: Any, what: str, timeout: float = 10.0) -> None:
    """Wait for ``condition()`` (no app to run: the event loop only)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
    assert condition(), what


@pytest.mark.parametrize("front_end", FRONT_ENDS)
async def test_an_unusable_proxy_stops_the_connection(
    front_end: str, daemon: Daemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = free_port()  # nothing listens there
    server = f"127.0.0.1:{daemon.port}"
    argv = ["--server", server, "--fingerprint", PIN, "--proxy", f"socks5://127.0.0.1:{dead}"]
    with recording(monkeypatch) as net:
        if front_end == "line":
            status, out = await line_mode(options(["--plain", *argv]), "tor")
            assert status == 1
            said = out
        else:
            app = tui_app(options(argv), tmp_path, "tor")
            async with app.run_test(size=(110, 32)) as pilot:
                await wait_for(pilot, lambda: "proxy" in server_error(app), what="the error")
                said = server_error(app)
                assert app.chat is None
    assert f"cannot reach the proxy socks5 127.0.0.1:{dead}" in said
    assert "no direct connection is tried instead" in said
    assert set(net.connects) == {("127.0.0.1", dead)}  # never the daemon itself
    assert not daemon.sessions


def test_a_pin_applies_only_to_the_server_it_was_given_for() -> None:
    from anonchat.tui.session import ConnectOptions

    given = options(["--server", "localhost:7000", "--fingerprint", PIN, "--proxy", "socks5://h:1"])
    opts = ConnectOptions(given)
    assert opts.for_target("LocalHost.", 7000).pin == PIN  # the same server, spelled otherwise
    for other in (("127.0.0.1", 7000), ("localhost", 7001), ("evil.example", 7000)):
        aimed = opts.for_target(*other)
        assert aimed.pin is None and aimed.proxy == ("h", 1)
    linked = opts.aimed_at(Endpoint.parse(f"anonchat://other.example/r?pin={OTHER_PIN}", 7667))
    assert (linked.endpoint.host, linked.endpoint.pin, linked.endpoint.room) == (
        "other.example",
        OTHER_PIN,
        "r",
    )
    assert linked.endpoint.proxy == ("h", 1)
    assert linked.label == "other.example:7667 via socks5 h:1"


# -- pins given on the command line or in a link --------------------------------------


async def connect_with(
    front_end: str, endpoint: Endpoint, tmp_path: Path, nick: str
) -> tuple[str, list[str]]:
    """Connect, look at the server window (or line mode's output), leave."""
    if front_end == "line":
        status, out = await line_mode(endpoint, nick)
        assert status == 0, out
        return out, out.splitlines()
    app = tui_app(endpoint, tmp_path, nick)
    async with app.run_test(size=(110, 32)) as pilot:
        chat = await until_chat(pilot)
        await wait_for(
            pilot,
            lambda: any("/help lists the commands" in x for x in lines(chat, CONSOLE)),
            what="the server window",
        )
        if endpoint.room:  # leaving while the join is under way is another matter
            await wait_for(pilot, lambda: chat.state.current == endpoint.room, what="the room")
        shown = lines(chat, CONSOLE)
        await app.action_quit()
    return "\n".join(shown), shown


@pytest.mark.parametrize("front_end", FRONT_ENDS)
async def test_a_given_pin_is_never_written_to_known_hosts(
    front_end: str, daemon: Daemon, tmp_path: Path, _known_hosts_in_tmp: Path
) -> None:
    server = f"127.0.0.1:{daemon.port}"
    link = Endpoint("127.0.0.1", daemon.port).invite(PIN, "lobby")
    for argv in (["--server", server, "--fingerprint", PIN], [link]):
        if front_end == "line":
            argv = ["--plain", *argv]
        text, _ = await connect_with(front_end, options(argv), tmp_path, "pinned")
        assert f"key {PIN}" in text
        assert not _known_hosts_in_tmp.exists()


@pytest.mark.parametrize("front_end", FRONT_ENDS)
async def test_a_given_pin_over_a_different_remembered_one_is_followed_and_said(
    front_end: str, daemon: Daemon, tmp_path: Path, _known_hosts_in_tmp: Path
) -> None:
    KnownHosts(_known_hosts_in_tmp).add("127.0.0.1", daemon.port, OTHER_PIN)
    before = _known_hosts_in_tmp.read_bytes()
    argv = ["--server", f"127.0.0.1:{daemon.port}", "--fingerprint", PIN]
    if front_end == "line":
        argv = ["--plain", *argv]
    _, shown = await connect_with(front_end, options(argv), tmp_path, "pinned")
    note = [x for x in shown if "checked against the pin you gave" in x]
    assert len(note) == 1, shown
    assert f"line 1 of {_known_hosts_in_tmp}" in note[0]
    assert _known_hosts_in_tmp.read_bytes() == before  # neither replaced nor added to


async def test_a_stale_given_pin_says_it_is_the_remembered_key(
    daemon: Daemon, _known_hosts_in_tmp: Path
) -> None:
    KnownHosts(_known_hosts_in_tmp).add("127.0.0.1", daemon.port, PIN)
    endpoint = options(
        ["--plain", "--server", f"127.0.0.1:{daemon.port}", "--fingerprint", OTHER_PIN]
    )
    status, out = await line_mode(endpoint, "stale")
    assert status == 1
    assert "(pin_mismatch)" in out and "is the pin you were given out of date?" in out


# -- the connect screen's server field ------------------------------------------------


async def test_an_invite_link_pasted_in_the_server_field_is_a_link(
    daemon: Daemon, tmp_path: Path, _known_hosts_in_tmp: Path
) -> None:
    app = tui_app(options([]), tmp_path, "linked")
    link = Endpoint("127.0.0.1", daemon.port).invite(PIN, "from-link")
    async with app.run_test(size=(110, 32)) as pilot:
        await type_server(app, pilot, f"  {link} ")
        chat = await until_chat(pilot)  # no trust dialog: the link's pin is the check
        await wait_for(pilot, lambda: chat.state.current == "from-link", what="the link's room")
        assert chat.client.pin == PIN
        await app.action_quit()
    assert not _known_hosts_in_tmp.exists()
    settings = (tmp_path / "config" / "settings.json").read_text()
    assert f'"server": "127.0.0.1:{daemon.port}"' in settings  # the server, not the link
    assert "sha256" not in settings


async def test_a_link_with_the_wrong_pin_is_refused_on_the_connect_screen(
    daemon: Daemon, tmp_path: Path
) -> None:
    app = tui_app(options([]), tmp_path, "linked")
    async with app.run_test(size=(110, 32)) as pilot:
        link = Endpoint("127.0.0.1", daemon.port).invite(OTHER_PIN, "x")
        await type_server(app, pilot, link)
        # The dialog says what happened and what to do; behind it, the field says who refused.
        await wait_for(pilot, lambda: dialog_shown(app), what="dialog")
        assert "get a new one" in str(app.screen.query_one("#key-text", Static).render())
        await pilot.press("escape")
        assert "refused a key that is not the pin given" in server_error(app)
        assert app.chat is None and not daemon.sessions


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a..b:7700", "not a valid host name: 'a..b'"),
        ("chat..example.org", "not a valid host name"),
        ("[::1]junk", "unexpected 'junk' after ']'"),
        ("host:", "no port after ':'"),
        ("anonchat://trusted.example@evil.example/lobby", "user part"),
        (f"anonchat://h/?pin={PIN}&pin={PIN}", "one pin, not several"),
        ("anonchat://chat..example.org/lobby", "not a valid host name"),
    ],
)
async def test_a_bad_address_is_an_inline_error(
    text: str, error: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tui_app(options([]), tmp_path, "typo")
    with recording(monkeypatch) as net:
        async with app.run_test(size=(110, 32)) as pilot:
            await type_server(app, pilot, text)
            await wait_for(pilot, lambda: bool(server_error(app)), what="the error")
            assert error in server_error(app)
            assert isinstance(app.screen, ConnectScreen)
            assert app.screen.query_one("#connect").disabled is False
    assert net.lookups == [] and net.connects == []


# -- files --------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_first_contact_in_the_tui_keeps_its_files_private(
    daemon: Daemon, tmp_path: Path, _known_hosts_in_tmp: Path
) -> None:
    endpoint = options(["--server", f"127.0.0.1:{daemon.port}", "--accept-new-host"])
    await connect_with("tui", endpoint, tmp_path, "first")
    config = _known_hosts_in_tmp.parent
    assert _mode(config) == 0o700
    assert _mode(config / "settings.json") == 0o600
    assert _mode(_known_hosts_in_tmp) == 0o600
    assert _known_hosts_in_tmp.read_text() == f"127.0.0.1:{daemon.port} {PIN}\n"


# -- any text in the server field ------------------------------------------------------

ADDRESSY = st.from_regex(r"(anonchat://)?\[?[a-z0-9.:_\[\]-]{0,24}(:[0-9]{0,6})?(/[a-z#]{0,5})?")


@given(st.lists(st.one_of(st.text(max_size=40), ADDRESSY), min_size=1, max_size=6))
@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_in_the_server_field_is_an_attempt_or_an_inline_error(texts: list[str]) -> None:
    """Typed (pasted) into the server field and Enter: either the client tries to
    connect to what the parser read, or the field shows an error; never a crash.
    Every attempt goes to a proxy nobody listens on, so nothing leaves the machine."""
    asyncio.run(_type_each(texts))


async def _type_each(texts: list[str]) -> None:
    import anonchat.tui.screens.connect as connect_screen

    dead = free_port()
    attempts: list[tuple[str, int]] = []

    async def connect(host: str, port: int, *args: Any, **kwargs: Any) -> Client:
        attempts.append((host, port))
        return await real_connect(host, port, *args, **kwargs)

    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as m:
        m.setattr(connect_screen, "connect", connect)
        app = tui_app(options(["--proxy", f"socks5://127.0.0.1:{dead}"]), Path(tmp), "anyone")
        async with app.run_test(size=(110, 32)) as pilot:
            button = app.screen.query_one("#connect")
            for text in texts:
                before = len(attempts)
                try:
                    target: Endpoint | None = Endpoint.parse(text, 7667)
                except ValueError:
                    target = None
                await type_server(app, pilot, text)
                await wait_for(
                    pilot,
                    lambda: bool(server_error(app)) and not button.disabled,
                    what=f"the outcome of {text!r}",
                )
                assert isinstance(app.screen, ConnectScreen)
                if target is None:
                    assert len(attempts) == before, text
                else:
                    assert attempts[before:] == [(target.host, target.port)], text
                    assert "cannot reach the proxy" in server_error(app)


async def test_plaintext_without_a_server_holds_for_the_server_typed_later(
    tmp_path: Path,
) -> None:
    plain = Daemon(Config(host="127.0.0.1", port=0, plaintext=True))
    await plain.start()
    try:
        app = tui_app(options(["--plaintext"]), tmp_path, "dev")
        async with app.run_test(size=(110, 32)) as pilot:
            await type_server(app, pilot, f"127.0.0.1:{plain.port}")
            chat = await until_chat(pilot)
            await wait_for(
                pilot,
                lambda: any("unencrypted" in x for x in lines(chat, CONSOLE)),
                what="the server window",
            )
            assert "unencrypted" in chat.query_one(StatusBar).render_text().plain
            await app.action_quit()
    finally:
        await plain.shutdown()


async def test_keys_typed_while_connecting_do_not_change_the_nick_or_reconnect(
    tmp_path: Path,
) -> None:
    """Over a slow link (Tor) people type their first message while the app
    connects. It replaced the nick (selected in its box), and its Enter
    cancelled the connection and made a new one under that text, sent to the
    server as the nick. Now the form takes no keys while it connects: the app
    holds them for the chat (tui/typeahead.py), and when the connection fails
    it drops them and says so -- never typed into a field, never an Enter that
    connects again."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # a server that never answers: the attempt stays open

    sink = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = sink.sockets[0].getsockname()[1]
    endpoint = Endpoint("127.0.0.1", port, tls=False, known_hosts=None)
    app = app_for_endpoint(endpoint, nick="gina", settings_dir=tmp_path / "s")
    try:
        async with app.run_test() as pilot:
            screen = app.screen
            assert isinstance(screen, ConnectScreen)
            await wait_for(pilot, lambda: len(accepted) == 1, what="the attempt")
            await pilot.press(*"hithere", "enter")
            await pilot.pause()
            assert screen.query_one("#nick", Input).value == "gina"
            assert len(accepted) == 1  # no second attempt
            assert len(app.type_ahead) == 8  # held for the chat
            accepted[0].close()  # the server hangs up: the attempt fails
            status = screen.query_one("#connect-status", Static)
            await wait_for(pilot, lambda: "not sent" in str(status.render()), what="the note")
            assert screen.query_one("#nick", Input).value == "gina"
            assert screen.query_one("#server", Input).value == f"127.0.0.1:{port}"
            assert app.type_ahead == []
            await pilot.pause()
            assert len(accepted) == 1  # its Enter made no new attempt
    finally:
        for writer in accepted:
            writer.close()
        sink.close()


async def test_the_empty_server_field_shows_a_hint_not_an_address(tmp_path: Path) -> None:
    """A first start has no server: the empty field's greyed text must not
    read as one filled in.  (It showed ``127.0.0.1:7667``; Enter on it said
    "no server address".)"""
    app = AnonchatApp(settings_dir=tmp_path / "fresh", nick="newcomer")
    async with app.run_test(size=(110, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectScreen), what="the form")
        field = app.screen.query_one("#server", Input)
        assert field.value == ""
        hint = str(field.placeholder)
        assert hint.startswith("e.g. ")
        with pytest.raises(ValueError):
            Endpoint.parse(hint, 7667)
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(server_error(app)), what="the error")
        assert "no server address" in server_error(app)


async def test_keys_that_come_in_after_a_refusal_are_said_to_be_dropped(tmp_path: Path) -> None:
    """A server that refuses at once fails the attempt before the keys typed
    at launch come in: they reach the Connect button, where they do nothing.
    They went nowhere without a word; now the form says they were not sent,
    as it does for keys held while connecting, and they are in no field."""
    port = free_port()  # nothing listens: refused at once
    endpoint = Endpoint("127.0.0.1", port, tls=False, known_hosts=None)
    app = app_for_endpoint(endpoint, nick="gina", settings_dir=tmp_path / "s")
    async with app.run_test() as pilot:
        screen = app.screen
        assert isinstance(screen, ConnectScreen)
        status = screen.query_one("#connect-status", Static)
        await wait_for(pilot, lambda: "tries again" in str(status.render()), what="the failure")
        assert "not sent" not in str(status.render())
        await pilot.press(*"hi")
        await wait_for(pilot, lambda: "not sent" in str(status.render()), what="the note")
        assert screen.query_one("#nick", Input).value == "gina"
        assert screen.query_one("#server", Input).value == f"127.0.0.1:{port}"
