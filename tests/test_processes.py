"""The real programs as subprocesses: anonchatd's shutdown and logs, line mode, --local."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from anonchat import events as ev
from anonchat.client import Client, Endpoint
from anonchat.daemon import Daemon
from anonchat.wire import encode_body

from .conftest import ClientFactory, DaemonFactory
from .helpers import (
    collect,
    dial,
    free_port,
    half_closing_client,
    hello_bytes,
    next_event,
    quiet,
)

PY = sys.executable


STARTED: list[asyncio.subprocess.Process] = []


@pytest.fixture(autouse=True)
def _no_daemon_left_behind() -> Iterator[None]:
    """A failing test must not leave its anonchatd running."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()


class Daemond:
    """An anonchatd subprocess and what a client needs to reach it."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, pin: str) -> None:
        self.proc, self.port, self.pin = proc, port, pin
        STARTED.append(proc)

    async def dial(self, nick: str) -> Client:
        return await Client.connect("127.0.0.1", self.port, nick=nick, pin=self.pin)


async def start_daemon(state_dir: Path, *args: str) -> Daemond:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        PY,
        "-m",
        "anonchat.daemon",
        "--port",
        str(port),
        "--log-level",
        "DEBUG",
        "--state-dir",
        str(state_dir),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(10):
        while b"(TLS, pin " not in (line := await proc.stdout.readline()):
            assert line, "anonchatd exited"
    pin = line.decode().rpartition("pin ")[2].strip().rstrip(")")
    return Daemond(proc, port, pin)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
async def test_graceful_shutdown(sig: signal.Signals, tmp_path: Path) -> None:
    d = await start_daemon(tmp_path)
    proc = d.proc
    alice = await d.dial("alice")
    bob = await d.dial("bob")
    await alice.create("lobby")
    await bob.join("lobby")
    proc.send_signal(sig)
    for client in (alice, bob):
        bye = await next_event(client, ev.Bye)
        assert bye.code == "shutdown" and "shutting down" in bye.msg
    async with asyncio.timeout(10):
        assert await proc.wait() == 0
    for client in (alice, bob):
        assert client.closed is not None and client.closed.code == "shutdown"
        await client.close()


async def test_a_clean_stop_logs_no_warning(tmp_path: Path) -> None:
    """A lone daemon (no --redis) stopped by SIGTERM while it holds open
    sessions and a resumable one logs nothing at WARNING or above: its own
    clean stop is not "node ... is gone" (issue 14)."""
    d = await start_daemon(tmp_path)
    proc = d.proc
    assert proc.stdout is not None
    alice = await d.dial("alice")
    bob = await d.dial("bob")
    await alice.create("lobby")
    await bob.join("lobby")
    bob._writer.transport.abort()  # bob's session stays resumable
    log = b""
    async with asyncio.timeout(10):
        while b"closed: reset" not in log and b"closed: eof" not in log:
            line = await proc.stdout.readline()
            assert line, "anonchatd exited"
            log += line
    proc.send_signal(signal.SIGTERM)
    await next_event(alice, ev.Bye)
    log += await proc.stdout.read()
    assert await proc.wait() == 0
    text = log.decode()
    assert "shutting down; 1 sessions" in text and "stopped" in text  # the log was read
    assert " WARNING " not in text and " ERROR " not in text and " CRITICAL " not in text
    assert "is gone" not in text
    await alice.close()


async def test_a_client_that_half_closes_gets_its_replies_from_the_real_daemon(
    tmp_path: Path,
) -> None:
    """anonchatd as shipped (on uvloop when installed, as here): a TLS client
    sends its requests and ends its side at once, by close_notify or by a TCP
    FIN, and still reads every reply."""
    d = await start_daemon(tmp_path)
    asks = b"".join(encode_body({"t": "list", "id": i}) for i in range(1, 4))
    for n, how in enumerate(["close_notify", "fin"]):
        frames = await asyncio.to_thread(
            half_closing_client, d.port, hello_bytes(f"half{n}") + asks, how
        )
        assert [type(f) for f in frames] == [ev.ServerHello, ev.Rooms, ev.Rooms, ev.Rooms]
    d.proc.send_signal(signal.SIGTERM)
    assert await d.proc.wait() == 0


async def test_logs_hold_no_address_and_no_text(tmp_path: Path) -> None:
    d = await start_daemon(tmp_path)
    proc, port = d.proc, d.port
    secret_text = "the-password-is-hunter2"
    alice = await d.dial("alice")
    bob = await d.dial("bob")
    await alice.create("lobby")
    await bob.join("lobby")
    await alice.say("lobby", secret_text)
    await collect(bob, ev.Msg, 1)
    local_ports = [c._writer.get_extra_info("sockname")[1] for c in (alice, bob)]
    await alice.close()
    bob._writer.transport.abort()
    await asyncio.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout is not None
    log = (await proc.stdout.read()).decode()
    assert await proc.wait() == 0
    assert "session 1 opened" in log  # DEBUG logging was on, and it was read
    assert secret_text not in log
    for p in local_ports:
        assert str(p) not in log
    assert "127.0.0.1" not in log.replace(f"listening on 127.0.0.1:{port}", "")


def plain_args(daemon: Daemon) -> list[str]:
    return [
        "-m",
        "anonchat",
        "--plain",
        "--server",
        f"127.0.0.1:{daemon.port}",
        "--fingerprint",
        daemon.pin,
    ]


async def run_plain(daemon: Daemon, stdin: str, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        PY,
        *plain_args(daemon),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(20):
        out, err = await proc.communicate(stdin.encode())
    assert proc.returncode is not None
    assert not err, err.decode()
    return proc.returncode, out.decode()


async def test_line_mode_end_to_end(connect: ClientFactory, daemon: Daemon) -> None:
    watcher = await connect("watcher")
    await watcher.create("lobby", topic="welcome")
    lines = [
        "/join lobby",
        "hello there",
        "/me waves",
        "//slash at the start",
        "/who",
        "/list",
        "/nick robot2",
        "/topic new topic",
        "/bogus",
        "/help",
    ]
    lines += [f"line {i}" for i in range(200)]
    status, out = await run_plain(daemon, "\n".join(lines) + "\n", "--nick", "robot")
    assert status == 0
    msgs = await collect(watcher, ev.Msg, 203)  # delivered before the client exited
    assert [m.text for m in msgs[:3]] == ["hello there", "waves", "/slash at the start"]
    assert msgs[1].me
    assert [m.text for m in msgs[3:]] == [f"line {i}" for i in range(200)]
    assert "connected to" in out and "as robot" in out
    assert "you joined #lobby; members: watcher, robot" in out
    assert "topic of #lobby: welcome" in out
    assert "#lobby <robot> hello there" in out
    assert "#lobby * robot waves" in out
    assert "#lobby (2): @watcher, robot" in out and "#lobby owners: watcher" in out
    assert "#lobby (2) - welcome" in out
    assert "robot is now known as robot2" in out
    assert "error: only an owner of lobby may set its topic (not_owner)" in out
    assert "unknown command /bogus" in out
    assert "/quit [MESSAGE]" in out
    quit_ = await next_event(watcher, ev.Presence)
    while quit_.kind != "quit":
        quit_ = await next_event(watcher, ev.Presence)
    assert quit_.nick == "robot2"


async def test_line_mode_never_writes_control_characters(
    connect: ClientFactory, daemon: Daemon
) -> None:
    evil = await connect("evil")
    await evil.create("lobby")
    await evil.set_topic("lobby", "topic \u202eevil")

    async def talk() -> None:
        while len(daemon.rooms["lobby"].members) < 2:  # the line mode has joined
            await asyncio.sleep(0.01)
        await evil.say("lobby", "bold \u200b zw \u202e rtl\nsecond line")

    talker = asyncio.create_task(talk())
    proc = await asyncio.create_subprocess_exec(
        PY,
        *plain_args(daemon),
        "--join",
        "lobby",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    async with asyncio.timeout(10):
        while b"second line" not in (line := await proc.stdout.readline()):
            assert line
    await talker
    proc.stdin.close()
    out = line + await proc.stdout.read()
    assert await proc.wait() == 0
    text = out.decode()
    assert "<U+202E>" in text and "<U+200B>" in text and "\u21b5 second line" in text
    for ch in out.decode():
        assert ch == "\n" or (ord(ch) >= 32 and ch not in "\u202e\u200b\x7f"), repr(ch)


async def test_line_mode_errors(daemon: Daemon) -> None:
    status, out = await run_plain(daemon, "hello?\n/join bad name\n/nick \n")
    assert status == 0
    assert "you are in no room: /join NAME first" in out
    # On IRC the second word is the room's key: refused (a key would be dropped,
    # the room joined in the open), pointing to /secret.
    assert "you joined #bad" not in out and "/secret ROOM asks for the passphrase" in out
    assert "usage: /nick NEWNICK" in out
    proc = await asyncio.create_subprocess_exec(
        PY,
        "-m",
        "anonchat",
        "--plain",
        "--server",
        f"127.0.0.1:{free_port()}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    out_bytes, _ = await proc.communicate()
    assert proc.returncode == 1 and b"cannot connect to" in out_bytes


async def test_line_mode_refuses_an_unknown_server_without_a_person_to_ask(
    daemon: Daemon, tmp_path: Path
) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    base = ["-m", "anonchat", "--plain", "--server", f"127.0.0.1:{daemon.port}"]
    proc = await asyncio.create_subprocess_exec(
        PY, *base, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, env=env
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 1
    assert b"was not seen before" in out and b"(host_not_trusted)" in out
    # Nobody was asked, and the way a script trusts a new server is named.
    assert b"there is nobody to ask" in out and b"--accept-new-host" in out
    # Who refused what: the client did not accept the key; the server refused nothing.
    assert b"Not connected: you did not accept the server's key" in out
    assert b"server refused" not in out
    assert not (tmp_path / "anonchat" / "known_hosts").exists()
    proc = await asyncio.create_subprocess_exec(
        PY,
        *base,
        "--accept-new-host",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out
    assert daemon.pin.encode() in out
    known = (tmp_path / "anonchat" / "known_hosts").read_text()
    assert known == f"127.0.0.1:{daemon.port} {daemon.pin}\n"


async def test_line_mode_exits_when_the_server_goes(daemon: Daemon) -> None:
    proc = await asyncio.create_subprocess_exec(
        PY, *plain_args(daemon), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    async with asyncio.timeout(10):
        await proc.stdout.readline()
    await daemon.shutdown()
    async with asyncio.timeout(10):
        out = await proc.stdout.read()
        assert await proc.wait() == 0
    assert b"disconnected: the server is shutting down (shutdown)" in out


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
async def test_line_mode_says_goodbye_when_its_terminal_goes(
    connect: ClientFactory, daemon: Daemon, sig: signal.Signals
) -> None:
    """The terminal closed (SIGHUP) or a kill (SIGTERM): the line mode quits as at
    end of input, saying goodbye. It used to die on the spot, and the daemon kept
    the session for its resume window: the nick listed as present for two
    minutes, a ghost nobody could reach."""
    watcher = await connect("watcher")
    await watcher.create("lobby")
    proc = await asyncio.create_subprocess_exec(
        PY, *plain_args(daemon), "--nick", "hangup", "--join", "lobby",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    came = await next_event(watcher, ev.Presence)
    assert (came.kind, came.nick) == ("join", "hangup")
    proc.send_signal(sig)
    went = await next_event(watcher, ev.Presence)
    assert (went.kind, went.nick) == ("quit", "hangup")
    async with asyncio.timeout(10):
        assert await proc.wait() == 0


async def test_local_hosts_a_daemon_others_can_join(tmp_path: Path) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        PY,
        "-m",
        "anonchat",
        "--local",
        "--plain",
        "--port",
        str(port),
        "--nick",
        "host",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path)},
    )
    assert proc.stdin is not None and proc.stdout is not None
    async with asyncio.timeout(10):
        first = (await proc.stdout.readline()).decode()
        assert "quitting ends the session of everyone" in first, first
        assert "others on this machine join with" in (await proc.stdout.readline()).decode()
        # The command on a line of its own, quoted for a shell: pasted as it is.
        line = (await proc.stdout.readline()).decode()
        command = shlex.split(line)
        assert command[0] == "anonchat" and len(command) == 2, line
        link = command[1]
        assert link.startswith(f"anonchat://127.0.0.1:{port}/lobby?pin=sha256/"), line
        while b"you joined #lobby" not in await proc.stdout.readline():
            pass
    assert list((tmp_path / "anonchat-local").iterdir())  # its key stayed in the state dir
    endpoint = Endpoint.from_url(link, 7667)
    guest = await endpoint.connect("guest")
    await guest.join("lobby")
    proc.stdin.write(b"welcome, guest\n")
    await proc.stdin.drain()
    msg = await next_event(guest, ev.Msg)
    assert (msg.nick, msg.text) == ("host", "welcome, guest")
    await guest.say("lobby", "thanks")
    async with asyncio.timeout(10):
        while b"<guest> thanks" not in await proc.stdout.readline():
            pass
    proc.stdin.close()
    async with asyncio.timeout(10):
        assert await proc.wait() == 0
    await guest.close()


async def test_line_mode_resumes_after_a_lost_connection(
    daemon: Daemon, connect: ClientFactory
) -> None:
    watcher = await connect("watcher")
    await watcher.create("lobby")
    proc = await asyncio.create_subprocess_exec(
        PY,
        *plain_args(daemon),
        "--nick",
        "roamer",
        "--join",
        "lobby",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    async with asyncio.timeout(10):
        while b"you joined #lobby" not in await proc.stdout.readline():
            pass
    await next_event(watcher, ev.Presence)
    (roamer,) = [s for s in daemon.sessions if s.nick == "roamer"]
    roamer.transport.abort()  # the network drops the line mode's connection
    await watcher.say("lobby", "said while you were away")
    async with asyncio.timeout(15):
        while b"reconnected and resumed" not in (line := await proc.stdout.readline()):
            assert line
        while b"said while you were away" not in await proc.stdout.readline():
            pass
    proc.stdin.write(b"back again\n")
    proc.stdin.close()
    msg = await next_event(watcher, ev.Msg)
    while msg.nick != "roamer":
        msg = await next_event(watcher, ev.Msg)
    assert msg.text == "back again"
    async with asyncio.timeout(10):
        assert await proc.wait() == 0
    presences = [e for e in await quiet(watcher) if isinstance(e, ev.Presence)]
    assert [p.kind for p in presences] == ["quit"]  # the /quit at the end, nothing before


async def test_line_mode_paces_itself_under_the_message_rate(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(msg_burst=5, msg_rate=20.0)
    watcher = await dial(daemon, "watcher")
    await watcher.create("lobby")
    lines = "\n".join(f"line {i}" for i in range(40)) + "\n"
    status, out = await run_plain(daemon, lines, "--join", "lobby")
    assert status == 0, out
    assert "not sent" not in out and "rate_limited" not in out
    msgs = await collect(watcher, ev.Msg, 40)
    assert [m.text for m in msgs] == [f"line {i}" for i in range(40)]
    await watcher.close()
