"""The Textual TUI: the face of anonchat.  The only package that imports textual.

Layout (after Posting and Elia): ``app.py`` (the app and its factory),
``screens/`` (connect, chat, help, create-room, passphrase), ``widgets/``
(room list, message log, member list, input, status bar), ``messages.py``
(what workers post to the UI), ``session.py`` (helpers over the public client
API), ``state.py`` and ``render.py`` (plain data and safe text, no Textual),
``anonchat.tcss`` (the styles).
"""

from .app import AnonchatApp, make_app, run_tui

__all__ = ["AnonchatApp", "make_app", "run_tui"]
