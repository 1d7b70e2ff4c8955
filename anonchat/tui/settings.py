"""What the TUI remembers between runs: server, nick and theme.

Stored as a small JSON file, ``settings.json``, in the user's config directory:
``$ANONCHAT_CONFIG_DIR`` if set (tests point it at a temporary directory), else
``$XDG_CONFIG_HOME/anonchat``, else ``~/.config/anonchat``.  A missing or
damaged file gives the defaults; nothing else is ever written there.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

ENV_CONFIG_DIR = "ANONCHAT_CONFIG_DIR"
SETTINGS_FILE = "settings.json"
DEFAULT_THEME = "textual-dark"


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """The directory holding anonchat's client settings."""
    env = os.environ if env is None else env
    if env.get(ENV_CONFIG_DIR):
        return Path(env[ENV_CONFIG_DIR])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "anonchat"


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
            directory.mkdir(parents=True, exist_ok=True)
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


def parse_server(value: str, default_port: int) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[IPV6]:PORT`` -> (host, port); ValueError if not."""
    value = value.strip()
    host, port_text = value, ""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"unexpected text after ] in {value!r}")
            port_text = rest[1:]
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    if not host:
        raise ValueError("the server address needs a host, e.g. 127.0.0.1:7667")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"the port must be a number from 1 to 65535, not {port_text!r}")
    return host, int(port_text)


def format_server(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
