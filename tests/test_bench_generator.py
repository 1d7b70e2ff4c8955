"""The C fan-out load generator (benchmarks/fanout.c, driven by benchmarks/cgen.py)
counts what it is meant to count: built with the system's C compiler and run
against a real anonchatd and the real raw relay on 127.0.0.1 port 0 for a
bounded number of messages, every message reaches every other member and is
counted once.  (No speed is measured here: benchmarks/run.py does that.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from anonchat.daemon import Daemon
from anonchat.trust import ensure_identity
from benchmarks import cgen, run
from benchmarks.ngircd import INSTALL_HINT, Ngircd, find_ngircd
from benchmarks.relay import Member, Relay

from .conftest import DaemonFactory

pytestmark = pytest.mark.skipif(
    cgen.compiler() is None, reason="no C compiler (cc) to build benchmarks/fanout.c"
)

MEMBERS = 10
SENDERS = 3
LIMIT = 200  # messages per sender


@pytest.fixture
def exe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """fanout.c built now, into a cache of the test's own (outside the repository)."""
    monkeypatch.setenv("ANONCHAT_BENCH_CACHE", str(tmp_path / "cache"))
    built = cgen.build()
    assert built.parent == tmp_path / "cache"
    assert built == cgen.build()  # built once per version of the source
    return built


@pytest.fixture
async def relay() -> AsyncIterator[int]:
    """benchmarks/relay.py's relay, in this process, on port 0."""
    shared = Relay()
    server = await asyncio.get_running_loop().create_server(lambda: Member(shared), "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def check_exact(status: int, report: dict[str, object]) -> None:
    """Every sender sent LIMIT messages; every member received each message of the
    others once: the receivers SENDERS x LIMIT, each sender (SENDERS - 1) x LIMIT."""
    assert status == 0, report
    assert report["sent_by"] == [LIMIT] * SENDERS
    assert report["sent"] == SENDERS * LIMIT
    assert report["received"] == [(SENDERS - 1) * LIMIT] * SENDERS + [SENDERS * LIMIT] * (
        MEMBERS - SENDERS
    )
    assert report["deliveries"] == SENDERS * LIMIT * (MEMBERS - 1)
    assert report["lost"] == 0
    assert report["unanswered_pings"] == 0
    assert report["write_errors"] == 0


async def test_against_anonchatd_every_message_is_delivered_to_every_other_member_once(
    exe: Path, make_daemon: DaemonFactory
) -> None:
    """anonchatd sends a sender its own messages and an ``ok`` for each: neither
    is counted; the watcher frees each sender's window of 4 as it sees them."""
    daemon: Daemon = await make_daemon(plaintext=True)
    plan = cgen.Plan("anonchat", "127.0.0.1", daemon.port, MEMBERS, SENDERS, limit=LIMIT)
    status, report = await asyncio.to_thread(cgen.run_bounded, exe, plan)
    check_exact(status, report)
    assert plan.socks == []  # this process's copies of the sockets are closed


async def test_over_tls_every_message_is_delivered_to_every_other_member_once(
    exe: Path, make_daemon: DaemonFactory
) -> None:
    """With OpenSSL, the program makes each member's TLS handshake itself, checks
    the daemon's pin and sends the hello and join Python encoded for it."""
    if not cgen.has_tls(exe):
        pytest.skip("fanout.c was built without TLS: OpenSSL's headers (libssl-dev) are missing")
    daemon: Daemon = await make_daemon()
    assert daemon.pin
    plan = cgen.Plan(
        "anonchat",
        "127.0.0.1",
        daemon.port,
        MEMBERS,
        SENDERS,
        tls=True,
        pin=daemon.pin,
        limit=LIMIT,
    )
    status, report = await asyncio.to_thread(cgen.run_bounded, exe, plan)
    check_exact(status, report)


async def test_over_tls_a_daemon_whose_key_is_not_its_pin_is_refused(
    exe: Path, make_daemon: DaemonFactory, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    if not cgen.has_tls(exe):
        pytest.skip("fanout.c was built without TLS: OpenSSL's headers (libssl-dev) are missing")
    daemon: Daemon = await make_daemon()
    other = ensure_identity(tmp_path / "another").pin
    assert other != daemon.pin
    plan = cgen.Plan("anonchat", "127.0.0.1", daemon.port, 4, 1, tls=True, pin=other, limit=LIMIT)
    with pytest.raises(RuntimeError, match="exited"):
        await asyncio.to_thread(cgen.run_bounded, exe, plan)
    assert "fanout: the server's key does not match its pin" in capfd.readouterr().err


def test_against_ngircd_every_message_is_delivered_to_every_other_member_once(
    exe: Path, tmp_path: Path
) -> None:
    """IRC: senders are operators with +F, ngircd does not echo a sender's lines,
    the sockets re-arm TCP_QUICKACK after every read (ngircd sets no TCP_NODELAY)."""
    found = find_ngircd()
    if found is None:
        pytest.fail(f"{INSTALL_HINT} (scripts/test.sh installs it)")
    server = Ngircd(found, tmp_path)
    server.start()
    try:
        plan = cgen.Plan("irc", "127.0.0.1", server.port, MEMBERS, SENDERS, limit=LIMIT)
        cgen.prepare(plan)
        assert "--quickack" in plan.args
        gen = cgen.Generator(exe, plan)
        gen.go()
        status, report = gen.wait(plan.timeout + 10)
    finally:
        server.stop()
    check_exact(status, report)


async def test_against_the_raw_relay_every_message_is_delivered_to_every_other_member_once(
    exe: Path, relay: int
) -> None:
    plan = cgen.Plan("raw", "127.0.0.1", relay, MEMBERS, SENDERS, limit=LIMIT)
    status, report = await asyncio.to_thread(cgen.run_bounded, exe, plan)
    check_exact(status, report)


async def test_the_generator_answers_the_daemons_pings(
    exe: Path, make_daemon: DaemonFactory
) -> None:
    """A member silent for ``ping_interval`` is pinged, and closed at
    ``idle_timeout`` unless it answers; a second ping to every member comes only
    after its pong was received (the daemon pings once per silence)."""
    daemon: Daemon = await make_daemon(plaintext=True, ping_interval=1.0, idle_timeout=5.0)
    plan = cgen.Plan("anonchat", "127.0.0.1", daemon.port, 4, 1)
    await asyncio.to_thread(cgen.prepare, plan)
    gen = cgen.Generator(exe, plan)
    try:
        async with asyncio.timeout(60):
            while (snap := await asyncio.to_thread(gen.snapshot))["pings"] < 2 * 4:
                assert snap["lost"] == 0, snap
                await asyncio.sleep(0.1)
        assert snap["unanswered_pings"] == 0
        assert snap["lost"] == 0
        assert snap["deliveries"] == 0  # pings and pongs are not messages
    finally:
        await asyncio.to_thread(gen.stop)


def test_without_a_compiler_the_benchmark_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("ANONCHAT_BENCH_CACHE", str(tmp_path / "cache"))
    assert run.main(["--only", "fanout", "--no-ngircd", "--rounds", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "benchmarks: no C compiler found (cc): install one (apt-get install gcc), "
        "or use --generator python"
    )
    assert not (tmp_path / "cache").exists()
