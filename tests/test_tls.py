"""TLS, pinning, invite links, plaintext rules and SOCKS5, over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from anonchat.client import Client, Endpoint
from anonchat.daemon import Config, Daemon
from anonchat.daemon.cli import daemon_main
from anonchat.daemon.tls import ServerTLS
from anonchat.dm import DmNotice
from anonchat.errors import ConnectionClosed, RequestError
from anonchat.trust import (
    CERT_FILE,
    KEY_FILE,
    KnownHosts,
    TrustError,
    client_context,
    ensure_identity,
)
from anonchat.tui.settings import SETTINGS_FILE, Settings

from .conftest import DaemonFactory
from .helpers import RawPeer, dial, free_port

PIN = "sha256/9n+FhHRzzXJEGNt0M5KWYE9pA/+1I+rMk/fQtSd3qnc="


async def test_openssl_sees_the_pin_the_daemon_prints(
    daemon: Daemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.config.state_dir is not None
    assert daemon_main(["--state-dir", daemon.config.state_dir, "--print-pin"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == daemon.pin
    s_client = await asyncio.create_subprocess_exec(
        "openssl",
        "s_client",
        "-connect",
        f"127.0.0.1:{daemon.port}",
        "-tls1_3",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await s_client.communicate()
    assert b"TLSv1.3" in out
    cert_pem = out[out.index(b"-----BEGIN CERTIFICATE-----") :]
    cert_pem = cert_pem[: cert_pem.index(b"-----END CERTIFICATE-----") + 25]
    pubkey = await _openssl(["x509", "-pubkey", "-noout"], cert_pem)
    der = await _openssl(["pkey", "-pubin", "-outform", "der"], pubkey)
    digest = await _openssl(["dgst", "-sha256", "-binary"], der)
    b64 = await _openssl(["base64"], digest)
    assert "sha256/" + b64.decode().strip() == printed


async def _openssl(args: list[str], data: bytes) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        "openssl", *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate(data)
    assert proc.returncode == 0
    return out


def test_state_dir_holds_only_key_and_certificate(tmp_path: Path) -> None:
    ident = ensure_identity(tmp_path / "state")
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [CERT_FILE, KEY_FILE]
    assert stat.S_IMODE((tmp_path / "state" / KEY_FILE).stat().st_mode) == 0o600
    assert ensure_identity(tmp_path / "state").pin == ident.pin  # reused, not remade


async def test_first_use_stores_the_pin_then_checks_it(daemon: Daemon, tmp_path: Path) -> None:
    known = KnownHosts(tmp_path / "known_hosts")
    asked: list[tuple[str, int, str]] = []

    async def confirm(host: str, port: int, pin: str) -> bool:
        asked.append((host, port, pin))
        return True

    c = await Client.connect("127.0.0.1", daemon.port, known_hosts=known, confirm=confirm)
    assert asked == [("127.0.0.1", daemon.port, daemon.pin)] and c.pin == daemon.pin
    assert known.lookup("127.0.0.1", daemon.port) == (daemon.pin, 1)
    await c.close()
    c = await Client.connect("127.0.0.1", daemon.port, known_hosts=known, confirm=confirm)
    assert len(asked) == 1  # known now: not asked again
    await c.close()


async def test_declining_a_new_host_stores_nothing(daemon: Daemon, tmp_path: Path) -> None:
    known = KnownHosts(tmp_path / "known_hosts")

    async def no(host: str, port: int, pin: str) -> bool:
        return False

    with pytest.raises(ConnectionClosed) as info:
        await Client.connect("127.0.0.1", daemon.port, known_hosts=known, confirm=no)
    assert info.value.code == "host_not_trusted"
    assert not known.path.exists()


@pytest.fixture
async def impostor(tmp_path: Path) -> AsyncIterator[tuple[int, list[bytes]]]:
    """A TLS server with a different key that records every byte it receives."""
    ident = ensure_identity(tmp_path / "impostor")
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            received.append(data)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ident.context())
    yield server.sockets[0].getsockname()[1], received
    server.close()


async def test_changed_key_is_refused_before_any_frame(
    impostor: tuple[int, list[bytes]], tmp_path: Path, daemon: Daemon
) -> None:
    port, received = impostor
    known = KnownHosts(tmp_path / "known_hosts")
    known.add("127.0.0.1", port, daemon.pin)  # what we trusted before
    with pytest.raises(ConnectionClosed) as info:
        await Client.connect("127.0.0.1", port, known_hosts=known, accept_new_host=True)
    assert info.value.code == "host_key_changed"
    assert f"remove line 1 of {known.path}" in info.value.message
    await asyncio.sleep(0.1)
    assert b"".join(received) == b""  # not one frame left the client


async def test_pin_from_flag_or_link_is_honoured(
    daemon: Daemon, impostor: tuple[int, list[bytes]]
) -> None:
    link = Endpoint("127.0.0.1", daemon.port).invite(daemon.pin, "lobby")
    endpoint = Endpoint.from_url(link, 7667)
    assert (endpoint.host, endpoint.port, endpoint.room, endpoint.pin) == (
        "127.0.0.1",
        daemon.port,
        "lobby",
        daemon.pin,
    )
    c = await Endpoint.from_url(link, 7667).connect("linked")
    assert c.pin == daemon.pin
    await c.close()
    port, received = impostor
    with pytest.raises(ConnectionClosed) as info:
        await Client.connect("127.0.0.1", port, pin=daemon.pin)
    assert info.value.code == "pin_mismatch"
    assert b"".join(received) == b""


async def test_a_given_pin_is_followed_not_stored_and_a_difference_is_told(
    daemon: Daemon, tmp_path: Path
) -> None:
    known = KnownHosts(tmp_path / "config" / "known_hosts")
    c = await Client.connect("127.0.0.1", daemon.port, pin=daemon.pin, known_hosts=known)
    assert (c.pin, c.trust_note) == (daemon.pin, "")
    await c.close()
    assert not known.path.exists() and not known.path.parent.exists()  # nothing on disk
    # known_hosts remembers another key: the given pin wins, and the user is told.
    other = "sha256/" + "A" * 43 + "="
    known.add("127.0.0.1", daemon.port, other)
    c = await Client.connect("127.0.0.1", daemon.port, pin=daemon.pin, known_hosts=known)
    assert c.pin == daemon.pin
    assert "not the different one remembered on line 1 of" in c.trust_note
    await c.close()
    assert known.path.read_text() == f"127.0.0.1:{daemon.port} {other}\n"  # untouched
    # The same stored key without the given pin: refused, as always.
    with pytest.raises(ConnectionClosed) as info:
        await Client.connect("127.0.0.1", daemon.port, known_hosts=known, accept_new_host=True)
    assert info.value.code == "host_key_changed"


async def test_a_known_hosts_that_cannot_be_read_or_written_stops_with_a_sentence(
    daemon: Daemon, tmp_path: Path
) -> None:
    unreadable = KnownHosts(tmp_path / "dir")
    unreadable.path.mkdir()  # a directory where the file should be
    binary = KnownHosts(tmp_path / "binary")
    binary.path.write_bytes(b"\xff\xfe not utf-8\n")
    for known in (unreadable, binary):
        with pytest.raises(ConnectionClosed) as info:
            await Client.connect("127.0.0.1", daemon.port, known_hosts=known, accept_new_host=True)
        assert info.value.code == "host_not_trusted"
        assert f"cannot read {known.path}" in info.value.message
    # Where the file cannot be made, nothing is trusted without being remembered.
    blocked = KnownHosts(tmp_path / "file" / "known_hosts")
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ConnectionClosed) as info:
        await Client.connect("127.0.0.1", daemon.port, known_hosts=blocked, accept_new_host=True)
    assert info.value.code == "host_not_trusted"
    assert info.value.message.startswith(f"cannot read {blocked.path}: Not a directory")
    with pytest.raises(TrustError, match="cannot write"):
        blocked.add("127.0.0.1", daemon.port, daemon.pin)


@pytest.mark.parametrize("first", ["known_hosts", "settings"])
def test_known_hosts_and_its_directory_are_private_whoever_creates_them(
    first: str, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    old = os.umask(0)  # the most permissive umask: the modes come from the code
    try:
        if first == "settings":
            Settings(server="example.org").save(config)
            assert stat.S_IMODE((config / SETTINGS_FILE).stat().st_mode) == 0o600
        KnownHosts(config / "known_hosts").add("example.org", 7667, PIN)
    finally:
        os.umask(old)
    assert stat.S_IMODE(config.stat().st_mode) == 0o700
    assert stat.S_IMODE((config / "known_hosts").stat().st_mode) == 0o600


def test_files_an_earlier_version_left_readable_are_tightened(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir(mode=0o755)
    (config / "known_hosts").write_text(f"example.org:7667 {PIN}\n")
    os.chmod(config, 0o755)
    os.chmod(config / "known_hosts", 0o644)
    KnownHosts(config / "known_hosts").add("example.net", 7667, PIN)
    assert stat.S_IMODE(config.stat().st_mode) == 0o700
    assert stat.S_IMODE((config / "known_hosts").stat().st_mode) == 0o600
    os.chmod(config, 0o755)
    Settings().save(config)
    assert stat.S_IMODE(config.stat().st_mode) == 0o700


def test_known_hosts_lines_end_at_newline_only(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    # A line holding characters str.splitlines() would break at: still one line,
    # and never a key of its own.
    path.write_text(f"# note\x85evil.example:7667 {PIN}\nexample.org:7667 {PIN}\n")
    known = KnownHosts(path)
    assert known.lookup("evil.example", 7667) is None
    assert known.lookup("example.org", 7667) == (PIN, 2)
    assert known.lookup("EXAMPLE.org.", 7667) == (PIN, 2)
    for host in ("evil.example\nexample.org", "a b", "evil\x85example"):
        with pytest.raises(TrustError):
            known.add(host, 7667, PIN)
    assert path.read_text().count("\n") == 2  # nothing was added


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/",
        "anonchat://host/room?pin=sha256/short",
        "anonchat://host/room?passphrase=hunter2",
        "anonchat://host:notaport/room",
    ],
)
def test_bad_links_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        Endpoint.from_url(url, 7667)


async def test_plaintext_rules(make_daemon: DaemonFactory) -> None:
    with pytest.raises(ConnectionClosed) as info:  # refused before any connection attempt
        await Client.connect("192.0.2.1", 7667, tls=False)
    assert info.value.code == "plaintext_refused"
    plain = await make_daemon(plaintext=True)
    assert plain.pin == ""
    c = await Client.connect("127.0.0.1", plain.port, tls=False)  # loopback: allowed
    await c.close()
    with pytest.raises(ConnectionClosed) as info:
        await Client.connect("127.0.0.1", plain.port, accept_new_host=True)
    assert info.value.code == "tls_failed" and "--plaintext" in info.value.message
    tls = await make_daemon()
    with pytest.raises(ConnectionClosed) as info:
        await Client.connect("127.0.0.1", tls.port, tls=False)
    assert "leave out --plaintext" in info.value.message


async def test_a_tls_terminator_in_front_of_a_plaintext_daemon_breaks_secret_rooms(
    make_daemon: DaemonFactory, tmp_path: Path
) -> None:
    """docs/operations.md, "Plaintext": a TLS terminator (a proxy that ends TLS
    with a key of its own and passes plain bytes on) in front of ``--plaintext``
    carries public rooms, but secret rooms' join proofs are bound to the key the
    client sees, which the plaintext daemon does not know: they are refused."""
    plain = await make_daemon(plaintext=True)
    front = ensure_identity(tmp_path / "terminator")

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def terminate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        back_reader, back_writer = await asyncio.open_connection("127.0.0.1", plain.port)
        await asyncio.gather(pipe(reader, back_writer), pipe(back_reader, writer))

    server = await asyncio.start_server(terminate, "127.0.0.1", 0, ssl=front.context())
    port = server.sockets[0].getsockname()[1]
    clients: list[Client] = []
    try:
        alice = await Client.connect("127.0.0.1", port, nick="alice", pin=front.pin)
        clients.append(alice)
        assert (await alice.join_or_create("lobby")).room == "lobby"  # public rooms work
        with pytest.raises(RequestError) as info:
            await alice.create_secret("spies", "unkempt-sherry-maroon-pebble-mousy-ravage")
        assert info.value.code == "bad_proof"
        async with asyncio.timeout(10):  # and direct messages: the DM key is refused
            async for event in alice.events():
                if isinstance(event, DmNotice) and event.kind == "refused":
                    break
    finally:
        for client in clients:
            await client.close()
        server.close()


async def test_stalled_tls_handshake_is_closed(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(hello_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
    async with asyncio.timeout(5):
        assert await reader.read() == b""  # closed by the daemon, no handshake sent
    writer.close()
    assert daemon.sessions == {}


async def test_tls_and_frames_are_checked_from_the_first_byte(daemon: Daemon) -> None:
    peer = await RawPeer.open(daemon)
    assert isinstance(peer.writer.get_extra_info("ssl_object"), ssl.SSLObject)
    await peer.send(b"\xff\xff\xff\xff")
    frames = await peer.read_until_closed()
    assert [getattr(f, "code", None) for f in frames] == ["frame_too_large"]


async def test_through_a_socks5_proxy_the_proxy_resolves_names(
    daemon: Daemon, socks_proxy: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_local_dns(host: object, *args: object, **kwargs: object) -> object:
        if host == "localhost":
            raise AssertionError("the client resolved the name itself")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", no_local_dns)
    c = await Client.connect(
        "localhost", daemon.port, pin=daemon.pin, proxy=("127.0.0.1", socks_proxy), nick="tor"
    )
    direct = await dial(daemon, "direct")
    await direct.create("r")
    await c.join("r")
    await c.say("r", "via the proxy")
    from anonchat import events as ev

    from .helpers import next_event

    msg = await next_event(direct, ev.Msg)
    assert (msg.nick, msg.text) == ("tor", "via the proxy")
    await c.close()
    await direct.close()


async def test_proxy_failure_is_clear(daemon: Daemon, socks_proxy: int) -> None:
    with pytest.raises(ConnectionClosed) as info:
        await Client.connect(
            "127.0.0.1", free_port(), pin=daemon.pin, proxy=("127.0.0.1", socks_proxy)
        )
    assert info.value.code in {"proxy_failed", "eof", "unreachable"}


def test_daemon_refuses_half_a_certificate(tmp_path: Path) -> None:
    assert daemon_main(["--cert", str(tmp_path / "x.pem"), "--print-pin"]) == 2


async def test_daemon_with_given_cert_and_key(tmp_path: Path) -> None:
    ident = ensure_identity(tmp_path / "elsewhere")
    config = Config(
        host="127.0.0.1",
        port=0,
        cert=str(ident.cert_path),
        key=str(ident.key_path),
        state_dir=str(tmp_path / "unused"),
    )
    daemon = Daemon(config)
    await daemon.start()
    try:
        assert daemon.pin == ident.pin
        assert not os.path.exists(tmp_path / "unused")
    finally:
        await daemon.shutdown()


class _Echo(asyncio.BufferedProtocol):
    """An application over the daemon's TLS layer that answers each read
    with ``got N`` and keeps the connection open after the peer's end."""

    def __init__(self) -> None:
        self.buf = bytearray(65536)
        self.transport: asyncio.Transport | None = None
        self.eofs = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self.buf)

    def buffer_updated(self, nbytes: int) -> None:
        assert self.transport is not None
        self.transport.write(b"got %d\n" % nbytes)

    def eof_received(self) -> bool:
        self.eofs += 1
        return True


async def test_the_daemons_tls_layer_answers_after_close_notify_and_holds_nothing_after_it(
    tmp_path: Path,
) -> None:
    """daemon/tls.py over a real socket: the peer's close_notify reaches the
    application once, after the data before it; the application can still
    write (TLS 1.3 half-close) and the peer reads it; bytes the peer sends
    after its close_notify are dropped, never held."""
    ident = ensure_identity(tmp_path / "state")
    app = _Echo()
    tls = ServerTLS(ident.context(), lambda: app, bytearray(65536))
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    await asyncio.get_running_loop().connect_accepted_socket(lambda: tls, ours)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    peer = client_context().wrap_bio(incoming, outgoing)
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()

    async def pump() -> None:
        if outgoing.pending:
            await loop.sock_sendall(theirs, outgoing.read())
        with contextlib.suppress(BlockingIOError):
            data = theirs.recv(65536)
            if data:
                incoming.write(data)

    async with asyncio.timeout(10):
        while True:
            try:
                peer.do_handshake()
                break
            except ssl.SSLWantReadError:
                await pump()
                await asyncio.sleep(0.001)
        await pump()  # the client's Finished
        await tls.handshake
        peer.write(b"hello")
        with contextlib.suppress(ssl.SSLWantReadError):
            peer.unwrap()  # our close_notify, right behind the data
        await pump()
        while app.eofs == 0:
            await asyncio.sleep(0.001)
        await loop.sock_sendall(theirs, os.urandom(256 * 1024))  # after the end: dropped
        assert app.transport is not None
        app.transport.write(b"still here\n")
        received = b""
        while b"still here\n" not in received:
            await pump()
            with contextlib.suppress(ssl.SSLWantReadError):
                received += peer.read(65536)
            await asyncio.sleep(0.001)
    assert received == b"got 5\nstill here\n"
    assert app.eofs == 1
    assert tls._incoming.pending == 0  # nothing after the close_notify was kept
    app.transport.close()
    theirs.close()
