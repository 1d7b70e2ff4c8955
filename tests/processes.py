"""anonchatd and the line mode as real subprocesses of a test.

Every process started here is listed in :data:`STARTED`; tests/conftest.py
kills those still running after each test, so that a failing test leaves
none behind.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from anonchat.client import Client
from anonchat.daemon import Daemon

from .helpers import free_port

PY = sys.executable

STARTED: list[asyncio.subprocess.Process] = []


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


async def anonchatd_to_the_end(*args: str, timeout: float = 60) -> tuple[int, str]:
    """Run ``python -m anonchat.daemon ARGS`` until it exits (a start that must
    fail): its exit status and what it wrote to stdout and stderr together."""
    proc = await asyncio.create_subprocess_exec(
        PY,
        "-m",
        "anonchat.daemon",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    STARTED.append(proc)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def start_line_mode(daemon: Daemon, *args: str, **pipes: Any) -> asyncio.subprocess.Process:
    """``anonchat --plain ARGS`` at the test's daemon, its stdin and stdout piped
    (``pipes``: more for create_subprocess_exec, such as ``stderr``)."""
    proc = await asyncio.create_subprocess_exec(
        PY,
        *plain_args(daemon),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        **pipes,
    )
    STARTED.append(proc)
    return proc


def plain_args(daemon: Daemon) -> list[str]:
    """``python``'s arguments for ``anonchat --plain`` at the test's daemon, pinned."""
    return [
        "-m",
        "anonchat",
        "--plain",
        "--server",
        f"127.0.0.1:{daemon.port}",
        "--fingerprint",
        daemon.pin,
    ]
