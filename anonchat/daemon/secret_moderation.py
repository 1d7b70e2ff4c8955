"""Moderation of secret rooms: owner actions the daemon checks and enforces
but cannot make.

The creator of a secret room registers an owner key (crypto.py, "Owners");
every owner action is signed by it or by a session key it granted ``op`` to,
down a chain of grants, and numbered with the room's next action counter.
The daemon verifies each action exactly as members do (:class:`OwnerChain`),
so it can enforce what owners signed (kick, ban, lock, slow mode, history)
but cannot act itself, and a signature is good for one place in one room
only.  Each accepted action is relayed as ``secret_acted`` to every member,
who verifies it again before showing it.

Bans are by session key and by session (never by address), for the room's
lifetime, as in public rooms.  Unlike public rooms the daemon cannot pass
ownership on when the owners leave: it holds no key to sign a grant with.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, cast

from .. import events as ev
from ..crypto import CryptoCode, Sealed, verify_sealed_signature
from ..errors import Code, CryptoError, RequestError
from ..secret import owner_action
from .moderation import SLOW_MAX
from .rooms import SecretRoom

if TYPE_CHECKING:
    from .session import Session


def on_act(session: Session, frame: ev.SecretAct) -> None:
    # Each action may cost a signature check: it takes a token like a message.
    session.limiter.check_message(session.loop.time())
    room = session.secret_rooms.get(frame.room)
    if room is None:
        raise RequestError(Code.NOT_MEMBER, "you are not in this secret room")
    act = frame.act
    _check(room, act)
    target = _target(session, room, act)
    if act.kind == "mode" and act.slow is not None and act.slow > SLOW_MAX:
        raise RequestError(Code.BAD_MODE, f"slow mode is at most {SLOW_MAX} seconds")
    if act.kind == "op" and act.target not in room.chain.granted:
        if len(room.grants) >= ev.OWNERS_MAX:
            raise RequestError(
                Code.TOO_MANY_OWNERS, f"a secret room has at most {ev.OWNERS_MAX} owners"
            )
        room.grants.append(act)
    room.chain.apply(owner_action(act))
    if act.kind == "mode":
        room.mode = act
        room.locked, room.slow, room.history = bool(act.locked), act.slow or 0, bool(act.history)
    elif act.kind == "ban" and target is not None:
        room.banned.add(target)
    # Relayed while the target is still a member, so it learns it was removed.
    room.acted(act)
    if act.kind in ("kick", "ban") and target is not None:
        target.drop_secret(room)
    session.send(ev.Ok(id=frame.id))


def _check(room: SecretRoom, act: ev.OwnerAct) -> None:
    """Refuse an action that is not the room's next one or not an owner's."""
    chain = room.chain
    if act.counter != chain.counter + 1:
        raise RequestError(
            Code.BAD_ACTION,
            f"this owner action is number {act.counter}; the room's next is {chain.counter + 1}",
        )
    try:
        chain.check(owner_action(act))
    except CryptoError as exc:
        if exc.code == CryptoCode.NOT_OWNER:
            raise RequestError(Code.NOT_OWNER, "only an owner of this room may do that") from None
        raise RequestError(
            Code.BAD_ACTION, f"the owner action does not verify: {exc.message}"
        ) from None


def _target(session: Session, room: SecretRoom, act: ev.OwnerAct) -> Session | None:
    """The member a kick, ban or op names by session key (None for mode)."""
    if act.target is None:
        return None
    for member, key in room.members.items():
        if key == act.target:
            if member is session and act.kind != "op":
                raise RequestError(Code.NO_SUCH_NICK, "you cannot kick yourself; leave instead")
            return cast("Session", member)
    raise RequestError(Code.NO_SUCH_NICK, "no member of this room has that session key")


def check_entry(session: Session, room: SecretRoom, sender: bytes) -> None:
    """Refuse a banned session or key, and anyone new to a locked room.

    Owners too: a joiner's session key is not proven to the daemon (anyone may
    name an owner's key), so it grants nothing at the door.
    """
    if session in room.banned or sender in room.chain.banned:
        raise RequestError(Code.BANNED, "you are banned from this room")
    if room.locked:
        raise RequestError(Code.ROOM_LOCKED, "this room is locked: no new members")


def check_slow(session: Session, room: SecretRoom, seal: ev.Seal, now: float) -> None:
    """Slow mode: one message (``msg`` or ``me``) per ``room.slow`` seconds for
    members who are not owners; announcements are not slowed.  An owner is a
    member whose key has owner rights *and* who signed this seal with it: a
    member that entered under an owner's key cannot (and its seals would be
    dropped by every receiver anyway)."""
    if not room.slow or seal.kind not in ("msg", "me") or _signed_by_owner(session, room, seal):
        return
    wait = room.last_said.get(session, -math.inf) + room.slow - now
    if wait > 0:
        raise RequestError(Code.SLOW_MODE, f"this room is in slow mode: wait {math.ceil(wait)} s")
    room.last_said[session] = now


def _signed_by_owner(session: Session, room: SecretRoom, seal: ev.Seal) -> bool:
    key = room.members.get(session)
    if key is None or not room.chain.may_act(key):
        return False
    sealed = Sealed(key, seal.counter, seal.kind, seal.epoch, seal.ct, seal.sig)
    return verify_sealed_signature(room.rid, sealed)
