"""A program in a real terminal: a detached tmux session, its screen and its keys.

scripts/test.sh installs tmux.  A machine without it fails these tests
loudly: they never skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", *args], check=True, capture_output=True, text=True, timeout=10
    ).stdout


def start_session(prefix: str, command: list[str], size: tuple[int, int], **env: str) -> str:
    """Run ``command`` (with this checkout importable, ``TERM=xterm-256color``
    and ``env``) in a detached tmux session of ``size`` (columns, lines); return
    the session's name."""
    assert shutil.which("tmux"), "tmux is needed: scripts/test.sh installs it"
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", **env}
    width, height = size
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", name, "-x", str(width), "-y", str(height), *command],
        check=True,
        env=environ,
        timeout=10,
    )
    return name


def kill_session(name: str) -> None:
    subprocess.run(["tmux", "kill-session", "-t", name], check=False, timeout=10)


def session_alive(name: str) -> bool:
    found = subprocess.run(["tmux", "has-session", "-t", name], capture_output=True, timeout=10)
    return found.returncode == 0


@contextlib.contextmanager
def tmux_session(
    prefix: str, command: list[str], size: tuple[int, int], **env: str
) -> Iterator[str]:
    """:func:`start_session`, killed at the end."""
    name = start_session(prefix, command, size, **env)
    try:
        yield name
    finally:
        kill_session(name)


async def capture(session: str) -> str:
    """What the session's terminal shows now."""
    return await asyncio.to_thread(tmux, "capture-pane", "-p", "-t", session)


async def keys(session: str, *names: str) -> None:
    """Keys by tmux's names (``Enter``, ``C-u``, ``M-1``), one write each."""
    await asyncio.to_thread(tmux, "send-keys", "-t", session, *names)


async def typed(session: str, text: str) -> None:
    """``text`` as one write to the terminal, as a slow link or a paste without
    bracketed paste delivers it (tmux send-keys -l)."""
    await asyncio.to_thread(tmux, "send-keys", "-t", session, "-l", text)
