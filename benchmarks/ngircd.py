"""Run ngircd, a C IRC daemon, as the reference: config on a free loopback port.

Install it with ``apt-get install ngircd``.  Flood protection is lifted as the
issue asks: ``MaxPenaltyTime = 0`` and ``MaxConnectionsIP = 0`` under
``[Limits]``, and senders become operators (``OPER``) and set user mode ``+F``.
DNS and ident lookups are off so connecting costs only the IRC registration.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from .procstat import raise_nofile

OPER_NAME = "bench"
OPER_PASSWORD = "bench-oper-pw"  # a throwaway daemon on 127.0.0.1 for one run
INSTALL_HINT = "ngircd is not installed; install it with: apt-get install ngircd"


def find_ngircd() -> str | None:
    exe = shutil.which("ngircd")
    if exe is None and os.path.exists("/usr/sbin/ngircd"):
        exe = "/usr/sbin/ngircd"
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_config(directory: Path, port: int) -> Path:
    motd = directory / "motd"
    motd.write_text("bench\n", encoding="utf-8")
    conf = directory / "ngircd.conf"
    conf.write_text(
        f"""[Global]
    Name = bench.local
    Info = anonchat benchmark reference
    AdminInfo1 = benchmark
    AdminInfo2 = benchmark
    AdminEMail = bench@bench.local
    Listen = 127.0.0.1
    Ports = {port}
    MotdFile = {motd}

[Limits]
    MaxConnections = 0
    MaxConnectionsIP = 0
    MaxPenaltyTime = 0
    MaxJoins = 0
    MaxNickLength = 30
    PingTimeout = 600
    PongTimeout = 120

[Options]
    DNS = no
    Ident = no
    PAM = no
    OperCanUseMode = yes

[Operator]
    Name = {OPER_NAME}
    Password = {OPER_PASSWORD}
""",
        encoding="utf-8",
    )
    return conf


class Ngircd:
    """One ngircd process listening on 127.0.0.1:``port``."""

    def __init__(self, exe: str, directory: Path) -> None:
        self.exe = exe
        self.directory = directory
        self.port = free_port()
        self.conf = write_config(directory, self.port)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 10.0) -> None:
        self.log = open(self.directory / "ngircd.log", "wb")  # noqa: SIM115
        self.proc = start_process([self.exe, "-n", "-f", str(self.conf)], self.log)
        wait_listening(self.port, self.proc, timeout)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 5)
        self.log.close()


def _raise_nofile() -> None:
    raise_nofile(65_536)


def start_process(
    cmd: list[str], log: IO[bytes], cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """A server process, its output into ``log``, allowed many open files."""
    return subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_raise_nofile,
        cwd=cwd,
    )


def stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM; SIGKILL if it is still running ``grace`` seconds later."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")
