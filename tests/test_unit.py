"""contrib/anonchatd.service against the daemon it runs: systemd accepts the
unit, and a real daemon -- TLS, a client, Redis, metrics, a clean stop --
does nothing under strace that the unit's hardening forbids: no system call
outside its filter, no memory both writable and executable, nothing in /proc
but its own process, no socket family it does not allow.

scripts/test.sh installs strace and systemd-analyze; without them these
tests fail loudly (they never skip)."""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from anonchat.client import Client

from .helpers import free_port
from .redis_server import RedisServer, redis_server

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "contrib" / "anonchatd.service"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/test.sh (it installs it)")
    return path


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@functools.cache
def syscalls(group: str) -> frozenset[str]:
    """The system calls of a systemd set such as @system-service, sets expanded."""
    out = subprocess.run(
        [tool("systemd-analyze"), "syscall-filter", group],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names: set[str] = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        names |= syscalls(item) if item.startswith("@") else {item}
    return frozenset(names)


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # (ExecStart pointed at this checkout's anonchatd, which exists here.)
    anonchatd = Path(sys.executable).parent / "anonchatd"
    assert anonchatd.exists(), "pip install -e . makes it"
    text = UNIT.read_text(encoding="utf-8").replace(
        "/opt/anonchat/.venv/bin/anonchatd", str(anonchatd)
    )
    unit = tmp_path / "anonchatd.service"
    unit.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [tool("systemd-analyze"), "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    settings = unit_settings()
    assert settings["Restart"] == ["on-failure"] and settings["RestartPreventExitStatus"] == ["2"]
    assert settings["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    for key in ("MemoryDenyWriteExecute", "PrivateUsers", "ProtectKernelLogs", "PrivateMounts"):
        assert settings[key] == ["yes"], key
    assert settings["ProtectProc"] == ["invisible"] and settings["ProcSubset"] == ["pid"]
    assert settings["UMask"] == ["0077"]


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


async def test_the_daemon_does_nothing_the_unit_forbids(tmp_path: Path, redis: RedisServer) -> None:
    trace = tmp_path / "trace"
    metrics = free_port()
    proc = await asyncio.create_subprocess_exec(
        tool("strace"),
        *("-f", "-qq", "-s", "64", "-o", str(trace), "--"),
        sys.executable,
        *("-m", "anonchat.daemon", "--port", "0", "--state-dir", str(tmp_path / "state")),
        *("--redis", redis.url, "--metrics", f"127.0.0.1:{metrics}"),
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(120):
            while b"(TLS, pin " not in (line := await proc.stderr.readline()):
                assert line, "anonchatd exited"
            start = line.decode()
            port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", start)[1])  # type: ignore[index]
            pin = start.rpartition("pin ")[2].strip().rstrip(")")
            alice = await Client.connect("127.0.0.1", port, nick="alice", pin=pin)
            await alice.create("lobby")
            await alice.say("lobby", "hello")
            await alice.create_secret("den", "unkempt-sherry-maroon-pebble-mousy-ravage")
            await alice.say_secret("den", "sealed")
            reader, writer = await asyncio.open_connection("127.0.0.1", metrics)
            writer.write(b"GET /metrics HTTP/1.1\r\n\r\n")
            page = await reader.read()
            assert b"process_resident_memory_bytes" in page
            assert b'loop="uvloop"' in page  # (the fast extra: the loop a unit runs)
            writer.close()
            await alice.close()
            # The daemon, not strace (which would let it go on untraced), is stopped.
            daemon_pid = int(trace.read_text(encoding="utf-8").split(None, 1)[0])
            os.kill(daemon_pid, signal.SIGTERM)
            await proc.stderr.read()
            assert await proc.wait() == 0  # (strace exits with the daemon's status)
    finally:
        if proc.returncode is None:
            proc.kill()
    text = trace.read_text(encoding="utf-8", errors="replace")
    assert re.search(r'execve\("[^"]*python', text)

    allowed = syscalls("@system-service") - syscalls("@privileged") - syscalls("@resources")
    used = set(re.findall(r"^\d+ +([a-z_0-9]+)\(", text, re.M))
    assert {"accept4", "bind", "listen", "connect"} <= used  # it served, and reached Redis
    assert used <= allowed, f"outside SystemCallFilter: {sorted(used - allowed)}"

    # MemoryDenyWriteExecute: nothing mapped writable and executable, nothing
    # made executable later.
    assert not re.search(r"mmap\([^)]*PROT_WRITE\|PROT_EXEC", text)
    assert not re.search(r"mprotect\([^)]*PROT_EXEC", text)

    # ProcSubset=pid, ProtectProc=invisible: /proc of its own process only.
    # Two reads elsewhere are tried and done without, as they are under
    # ProcSubset=pid: libuv's of /proc/version_signature (an Ubuntu file), and
    # prometheus_client's of /proc/stat when it is imported (for its own
    # process collector, which the daemon does not use: metrics.py reads
    # /proc/self and os.times).
    opened = re.findall(r'open(?:at)?\([^"]*"(/(?:proc|dev)/[^"]*)"', text)
    foreign = {
        p
        for p in opened
        if p.startswith("/proc/") and not re.match(r"/proc/(self|thread-self|\d+)(/|$)", p)
    }
    assert foreign <= {"/proc/version_signature", "/proc/stat"}, foreign
    # PrivateDevices: only the pseudo-devices it keeps.
    devices = {p for p in opened if p.startswith("/dev/")}
    assert devices <= {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}

    # RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX.
    families = set(re.findall(r"\bsocket\((AF_[A-Z0-9]+)", text))
    assert families <= {"AF_INET", "AF_INET6", "AF_UNIX"}, families


def test_operations_md_shows_the_unit_as_shipped() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    shown = doc.split("# /etc/systemd/system/anonchatd.service\n", 1)[1].split("```", 1)[0]
    unit = UNIT.read_text(encoding="utf-8")
    assert shown == unit[unit.index("[Unit]") :]
