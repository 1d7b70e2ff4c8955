"""What the TUI remembers between runs: server, nick and theme.

Stored as a small JSON file, ``settings.json`` (mode 0600, in a 0700
directory), in the user's config directory, which :mod:`anonchat.paths`
decides.  A missing or damaged file gives the defaults; nothing else is ever
written there (the server as typed, or ``HOST:PORT`` for a pasted link: never a pin).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..paths import private_dir

SETTINGS_FILE = "settings.json"
DEFAULT_THEME = "textual-dark"


@dataclass
class Settings:
    server: str = ""
    nick: str = ""
    theme: str = DEFAULT_THEME

    @classmethod
    def load(cls, directory: Path) -> Settings:
        try:
            data = json.loads((directory / SETTINGS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and isinstance(v, str)}
        return cls(**values)

    def save(self, directory: Path) -> None:
        """Write atomically; a settings file that cannot be written is not an error."""
        with contextlib.suppress(OSError):
            private_dir(directory)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".settings-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(asdict(self), f, indent=2)
                    f.write("\n")
                os.replace(tmp, directory / SETTINGS_FILE)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
