"""Where anonchat keeps its few files, decided here and nowhere else.

The client keeps ``known_hosts`` and the TUI's ``settings.json`` in the user's
config directory, and ``anonchat --local`` keeps the key of the daemon it
hosts in a state directory; the daemon keeps its key in its own state
directory.  Which directory that is on each platform is platformdirs'
business (``$XDG_CONFIG_HOME/anonchat`` or ``~/.config/anonchat`` on Linux,
``~/Library/Application Support/anonchat`` on macOS, ``%LOCALAPPDATA%``
on Windows); ``$ANONCHAT_CONFIG_DIR`` overrides the config directory (the
tests point it at a temporary one), systemd's ``$STATE_DIRECTORY`` the
daemon's.

Every directory anonchat creates for the user is private (0700), every file
in it 0600: what you trusted and which server you used last is nobody
else's business on a shared machine.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import platformdirs

ENV_CONFIG_DIR = "ANONCHAT_CONFIG_DIR"
KNOWN_HOSTS_FILE = "known_hosts"


def config_dir() -> Path:
    """The client's directory: known_hosts and the TUI's settings."""
    override = os.environ.get(ENV_CONFIG_DIR)
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir("anonchat", appauthor=False))


def known_hosts_file() -> Path:
    return config_dir() / KNOWN_HOSTS_FILE


def local_daemon_dir() -> Path:
    """Where ``anonchat --local`` keeps its daemon's key, so its pin (and the
    invite links given out) stay the same from one run to the next."""
    return Path(platformdirs.user_state_dir("anonchat-local", appauthor=False))


def daemon_state_dir() -> Path:
    """Where ``anonchatd`` keeps its key: systemd's ``$STATE_DIRECTORY`` if set."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    return Path(platformdirs.user_state_dir("anonchatd", appauthor=False))


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if missing; make it 0700 if it is ours.

    A directory an earlier version created 0755 is tightened too: the mode
    is checked every time, not only at creation.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: no getuid on Windows
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            path.chmod(0o700)
    return path


def open_private(path: Path, mode: str) -> int:
    """A file descriptor for ``path`` in ``mode`` ("a" or "w"), created 0600.

    An existing file that others can read (made by an earlier version, or by
    hand) is tightened to 0600 before anything is written to it.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    with contextlib.suppress(OSError, AttributeError):
        st = os.fstat(fd)
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.fchmod(fd, 0o600)
    return fd
