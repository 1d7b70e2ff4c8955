"""The C load generator (benchmarks/fanout.c, driven by benchmarks/cgen.py)
counts what it is meant to count: built with the system's C compiler and run
against a real anonchatd, ngircd and the real raw relay on 127.0.0.1 port 0
for a bounded number of messages, every message reaches every other member
and is counted once; in the latency workload every other member reads each
message's send time once, a sender never its own.  (No speed is measured
here: benchmarks/run.py does that.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from anonchat import events as ev
from anonchat.daemon import Daemon
from anonchat.trust import ensure_identity
from anonchat.wire import encode_frame
from benchmarks import cgen, run
from benchmarks.common import stamp_text
from benchmarks.ngircd import INSTALL_HINT, Ngircd, find_ngircd
from benchmarks.relay import Member, Relay

from .conftest import DaemonFactory

pytestmark = pytest.mark.skipif(
    cgen.compiler() is None, reason="no C compiler (cc) to build benchmarks/fanout.c"
)

MEMBERS = 10
SENDERS = 3
LIMIT = 200  # messages per sender
RATE = 2000.0  # latency: messages a second per sender (the count is what is checked)


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


@pytest.fixture
def ngircd(tmp_path: Path) -> Iterator[Ngircd]:
    """A running ngircd (scripts/test.sh installs it: a missing one fails)."""
    found = find_ngircd()
    if found is None:
        pytest.fail(f"{INSTALL_HINT} (scripts/test.sh installs it)")
    server = Ngircd(found, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def check_exact(status: int, report: dict[str, Any]) -> None:
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
    exe: Path, ngircd: Ngircd
) -> None:
    """IRC: senders are operators with +F, ngircd does not echo a sender's lines,
    the sockets re-arm TCP_QUICKACK after every read (ngircd sets no TCP_NODELAY)."""
    plan = cgen.Plan("irc", "127.0.0.1", ngircd.port, MEMBERS, SENDERS, limit=LIMIT)
    cgen.prepare(plan)
    assert "--quickack" in plan.args
    gen = cgen.Generator(exe, plan)
    gen.go()
    check_exact(*gen.wait(plan.timeout + 10))


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


def check_latency(status: int, report: dict[str, Any], elapsed_ns: int) -> None:
    """Every sender sent LIMIT stamped messages; every member read the send time
    of each message of the others once (a sender: (SENDERS - 1) x LIMIT, never
    its own, which anonchatd sends back), and each was kept as a sample: the
    time from its sending to its read, more than 0 and less than the whole run."""
    check_exact(status, report)
    others = [(SENDERS - 1) * LIMIT] * SENDERS + [SENDERS * LIMIT] * (MEMBERS - SENDERS)
    assert report["stamped"] == others
    assert report["bad_stamps"] == 0
    samples = report["latencies"].tolist()
    assert report["samples"] == len(samples) == SENDERS * LIMIT * (MEMBERS - 1)
    assert 0 < min(samples) == report["sample_min_ns"]
    assert max(samples) == report["sample_max_ns"] < elapsed_ns


async def run_latency(exe: Path, plan: cgen.Plan) -> tuple[int, dict[str, Any], int]:
    t0 = time.monotonic_ns()
    status, report = await asyncio.to_thread(cgen.run_bounded, exe, plan)
    return status, report, time.monotonic_ns() - t0


def latency_plan(kind: str, port: int, **extra: Any) -> cgen.Plan:
    return cgen.Plan(kind, "127.0.0.1", port, MEMBERS, SENDERS, limit=LIMIT, rate=RATE, **extra)


async def test_latency_against_anonchatd_every_other_member_reads_each_send_time_once(
    exe: Path, make_daemon: DaemonFactory
) -> None:
    """anonchatd sends each sender its own messages back: they are not samples."""
    daemon: Daemon = await make_daemon(plaintext=True)
    plan = latency_plan("anonchat", daemon.port)
    await asyncio.to_thread(cgen.prepare, plan)
    assert "--rate" in plan.args
    assert not any(a.startswith("w:") for a in plan.args)  # paced: no watcher
    stamp = bytes.fromhex(plan.args[plan.args.index("--stamp") + 1])
    assert stamp == b"\xa4text\xd9\x64"  # "text": then a str 8 of 100 bytes
    gen = cgen.Generator(exe, plan)
    t0 = time.monotonic_ns()
    gen.measuring(True)
    gen.go()
    status, report = await asyncio.to_thread(gen.wait, plan.timeout + 10)
    check_latency(status, report, time.monotonic_ns() - t0)


async def test_latency_over_tls_every_other_member_reads_each_send_time_once(
    exe: Path, make_daemon: DaemonFactory
) -> None:
    if not cgen.has_tls(exe):
        pytest.skip("fanout.c was built without TLS: OpenSSL's headers (libssl-dev) are missing")
    daemon: Daemon = await make_daemon()
    assert daemon.pin
    check_latency(
        *await run_latency(exe, latency_plan("anonchat", daemon.port, tls=True, pin=daemon.pin))
    )


def test_latency_against_ngircd_every_other_member_reads_each_send_time_once(
    exe: Path, ngircd: Ngircd
) -> None:
    """IRC: the send time follows " PRIVMSG #bench :"; quick ACKs, as in fan-out."""
    plan = latency_plan("irc", ngircd.port)
    cgen.prepare(plan)
    assert "--quickack" in plan.args
    assert bytes.fromhex(plan.args[plan.args.index("--stamp") + 1]) == b" PRIVMSG #bench :"
    t0 = time.monotonic_ns()
    gen = cgen.Generator(exe, plan)
    gen.measuring(True)
    gen.go()
    status, report = gen.wait(plan.timeout + 10)
    check_latency(status, report, time.monotonic_ns() - t0)


async def test_latency_against_the_raw_relay_every_other_member_reads_each_send_time_once(
    exe: Path, relay: int
) -> None:
    check_latency(*await run_latency(exe, latency_plan("raw", relay)))


async def test_latency_samples_are_kept_only_while_measuring(
    exe: Path, make_daemon: DaemonFactory
) -> None:
    """Without 'm' every send time is read (the run ends when all are) and none
    is kept; a snapshot says how many are kept so far."""
    daemon: Daemon = await make_daemon(plaintext=True)
    plan = latency_plan("anonchat", daemon.port)
    await asyncio.to_thread(cgen.prepare, plan)
    gen = cgen.Generator(exe, plan)
    gen.measuring(True)
    gen.measuring(False)
    assert (await asyncio.to_thread(gen.snapshot))["samples"] == 0
    gen.go()
    status, report = await asyncio.to_thread(gen.wait, plan.timeout + 10)
    check_exact(status, report)
    assert report["stamped"] == [(SENDERS - 1) * LIMIT] * SENDERS + [SENDERS * LIMIT] * (
        MEMBERS - SENDERS
    )
    assert report["samples"] == 0
    assert len(report["latencies"]) == 0


def test_the_latency_template_has_the_send_time_where_the_generator_writes_it() -> None:
    """The offset given for each sender is its text's first byte, 20 digits that
    the C program overwrites (same length: the frame's length stays right)."""
    text = stamp_text()
    say = encode_frame(ev.Say(id=2, room="bench", text=text).to_wire())
    at = cgen.stamp_at(say, text)
    assert say[at : at + 20] == text[:20].encode() and text[:20].isdigit()
    assert say[:at].endswith(cgen.stamp_prefix("anonchat", "bench", text))
    line = f"PRIVMSG #bench :{text}\r\n".encode()
    assert line[: cgen.stamp_at(line, text)] == b"PRIVMSG #bench :"


def test_the_latency_rows_are_c_driven_but_for_secret_rooms(exe: Path, tmp_path: Path) -> None:
    for variant in ("plain", "tls", "secret"):
        (tmp_path / variant).mkdir()
    plain = run.Anonchatd(tmp_path / "plain", "plain")
    tls = run.Anonchatd(tmp_path / "tls", "tls")
    secret = run.Anonchatd(tmp_path / "secret", "secret")
    relay_server = run.RelayServer(tmp_path)
    for mode in ("fanout", "latency"):
        assert run.c_generated(plain, mode, exe)
        assert run.c_generated(relay_server, mode, exe)
        assert run.c_generated(tls, mode, exe) == cgen.has_tls(exe)
        assert not run.c_generated(secret, mode, exe)
    assert not run.c_generated(plain, "fanout-ok", exe)
    assert not run.c_generated(plain, "capacity", exe)
