"""Type-ahead: keys typed before anything on screen can take them.

People start ``anonchat`` and type at once, as in a shell: before the first
screen is up (a few hundred milliseconds) and, over a slow link (Tor), while
the app connects and its form takes no keys.  Those keys were lost.  Now the
app holds them while nothing can take them -- before the first screen, and
while the connect screen is connecting -- and hands them on in order:

* to the connect screen's field, when it comes up waiting for the user;
* to the message box, when the chat comes up: the lines typed ahead go to
  the room the chat lands in (see ``ChatScreen.submitted``);
* to nobody, when the connection fails: a line meant for a room must not
  become a nick or a server address.

A dialog (a new server's key to trust) is never answered by keys typed
ahead: while one is up the app holds nothing, and what it held waits.
Ctrl+Q (a priority binding) works at any time.
"""

from __future__ import annotations

from typing import Any

from textual import events

HeldEvent = events.Key | events.Paste


def copy(event: HeldEvent) -> HeldEvent:
    """A new event like ``event`` (a message is posted once)."""
    if isinstance(event, events.Paste):
        return events.Paste(event.text)
    return events.Key(event.key, event.character)


def release(app: Any, *, replay: bool) -> int:
    """Hand on (``replay``) or drop what ``app`` held; how many keys that was
    (0 for an app that holds none: the screens run in test apps too)."""
    hand_on = getattr(app, "release_type_ahead", None)
    return int(hand_on(replay=replay)) if hand_on is not None else 0
