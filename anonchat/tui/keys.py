"""Alt+digit in real terminals.

Most terminals send Alt+1 as two bytes, ESC then ``1``.  Textual 8.2 maps
those pairs to the characters macOS types for Option+digit (ESC ``2`` becomes
``™``, a printable key the input box would swallow), so the app never sees
``alt+2``.  :func:`use_alt_digits` drops exactly those ten entries from
Textual's sequence table; the parser then reports ``alt+0`` … ``alt+9`` as it
does for any other ESC-prefixed key.  This touches a private table, which is
why ``textual`` is pinned to 8.2.x in ``pyproject.toml``; ``tests/tui/test_tmux.py``
checks the effect in a real terminal (tmux).
"""

from __future__ import annotations

from typing import Any, cast

ALT_DIGIT_SEQUENCES = tuple(f"\x1b{d}" for d in "0123456789")


def use_alt_digits() -> bool:
    """Make ESC+digit arrive as ``alt+digit``; True if the table was changed."""
    try:
        from textual import _ansi_sequences
    except ImportError:  # pragma: no cover - a Textual without the table
        return False
    table = cast(dict[str, Any], _ansi_sequences.ANSI_SEQUENCES_KEYS)
    changed = False
    for seq in ALT_DIGIT_SEQUENCES:
        if isinstance(table.get(seq), str):
            del table[seq]
            changed = True
    return changed
