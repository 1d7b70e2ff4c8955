"""The front-end core: what the TUI and the line mode share.

* :mod:`.commands` — one table of slash commands and one implementation of
  each, run against room handles (:mod:`anonchat.room`); front ends only show
  the typed notes it produces.
* :mod:`.reconnect` — one reconnect policy, yielding typed steps.
* :mod:`.text` — the privacy report, ``/mode`` arguments, one safe line of text.

Front ends import this package and :mod:`anonchat.client`, never
``crypto``, ``trust``, ``dial`` or ``socks`` (tests/test_layers.py).
"""

from .text import (
    LOCK,
    LOOKALIKE,
    MODE_USAGE,
    clean,
    mixes_scripts,
    parse_mode,
    privacy_report,
    shown_name,
)

__all__ = [
    "LOCK",
    "LOOKALIKE",
    "MODE_USAGE",
    "clean",
    "mixes_scripts",
    "parse_mode",
    "privacy_report",
    "shown_name",
]
