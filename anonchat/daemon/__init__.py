"""The anonchat daemon (``anonchatd``)."""

from .config import DEFAULT_PORT, Config, Limits, load_config
from .server import Daemon

__all__ = ["DEFAULT_PORT", "Config", "Daemon", "Limits", "load_config"]
