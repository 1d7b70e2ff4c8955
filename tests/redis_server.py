"""A real redis-server for the tests of several nodes, on a free loopback port.

scripts/test.sh installs redis-server.  A machine without it fails these
tests loudly: they never skip.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from .helpers import free_port


@dataclass
class RedisServer:
    url: str
    proc: subprocess.Popen[bytes]
    port: int = 0
    workdir: Path = Path()
    options: tuple[str, ...] = ()

    def stop(self, *, save: bool) -> None:
        """Stop the server; with ``save``, write its data so that ``start`` loads it
        (an outage that keeps the data), else it comes back empty."""
        self.proc.send_signal(signal.SIGCONT)
        if save:
            redis.Redis.from_url(self.url).shutdown(save=True)
        else:
            self.proc.terminate()
        self.proc.wait(10)

    def start(self) -> None:
        """Start the server again on the same port (loading what ``stop`` saved)."""
        self.proc = _launch(self.port, self.workdir, self.options)
        _wait_ready(self.url, self.proc)


def _launch(port: int, workdir: Path, options: tuple[str, ...]) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run scripts/test.sh (it installs it)")
    return subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            *options,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            return
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start (exit code {proc.poll()})")
            time.sleep(0.02)


@contextlib.contextmanager
def redis_server(workdir: Path, *options: str) -> Iterator[RedisServer]:
    """Start redis-server with nothing on disk (plus ``options``); yield it (its
    URL, its process); stop it."""
    port = free_port()
    proc = _launch(port, workdir, options)
    server = RedisServer(f"redis://127.0.0.1:{port}/0", proc, port, workdir, options)
    try:
        _wait_ready(server.url, proc)
        yield server
    finally:
        server.proc.send_signal(signal.SIGCONT)  # in case a test paused it
        server.proc.terminate()
        server.proc.wait(5)
