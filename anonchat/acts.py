"""Owner actions of secret rooms between the wire and the cryptography.

:func:`owner_action` turns a wire ``OwnerAct`` into the
:class:`~anonchat.crypto.OwnerAction` that :class:`~anonchat.crypto.OwnerChain`
checks, and :func:`owner_act` back.  Shared by the members (secret.py) and
the daemon (which checks the same actions the same way), so that neither
imports the other's modules.  Pure: no I/O.
"""

from __future__ import annotations

from . import events as ev
from .crypto import OwnerAction


def owner_action(act: ev.OwnerAct) -> OwnerAction:
    """The crypto view of a wire action (mode fields only matter for ``mode``);
    the daemon checks actions with it too."""
    return OwnerAction(
        kind=act.kind,
        counter=act.counter,
        actor=act.actor,
        signature=act.sig,
        target=act.target,
        locked=bool(act.locked),
        slow=act.slow or 0,
        history=act.history is not False,
    )


def owner_act(action: OwnerAction) -> ev.OwnerAct:
    """The wire form of a signed action."""
    mode = action.kind == "mode"
    return ev.OwnerAct(
        kind=action.kind,
        counter=action.counter,
        actor=action.actor,
        sig=action.signature,
        target=action.target,
        locked=action.locked if mode else None,
        slow=action.slow if mode else None,
        history=action.history if mode else None,
    )
