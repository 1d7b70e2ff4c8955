"""Moderation of secret rooms: owner actions the daemon checks and enforces
but cannot make.

The creator of a secret room registers an owner key (crypto.py, "Owners");
every owner action is signed by it or by a session key it granted ``op`` to,
down a chain of grants, and numbered with the room's next action counter.
The daemon verifies each action exactly as members do (:class:`OwnerChain`),
so it can enforce what owners signed (kick, ban, lock, slow mode, history,
closing the room)
but cannot act itself, and a signature is good for one place in one room
only.  Each accepted action is relayed as ``secret_acted`` to every member,
who verifies it again before showing it.

Bans are by session key and by session (never by address), for the room's
lifetime, as in public rooms.  Unlike public rooms the daemon cannot pass
ownership on when the owners leave: it holds no key to sign a grant with.
"""

from __future__ import annotations

from .. import events as ev
from ..acts import owner_action
from ..crypto import CryptoCode, Sealed, valid_public_key, verify_sealed_signature
from ..errors import Code, CryptoError, RequestError
from . import commands as cmds
from .moderation import SLOW_MAX, take_turn
from .rooms import Member, SecretRoom
from .shared import SharedState


def act(shared: SharedState, member: Member, ts: int, cmd: cmds.SecretAct) -> None:
    """Apply one owner action (see state.py): check it, enforce it, relay it."""
    room = member.secret_rooms.get(cmd.room_id)
    if room is None:
        raise RequestError(Code.NOT_MEMBER, "you are not in this secret room")
    action = ev.OwnerAct(**cmd.act)
    _check(room, action)
    if action.actor not in (room.members[member], room.chain.owner):
        # Someone else's signed action, taken from the room: only its signer may
        # use it (or anyone holding the owner key), so a key that has left
        # cannot be made to act by those who saw its signatures.
        raise RequestError(
            Code.NOT_OWNER,
            "an owner action is accepted only from the session whose key signed it",
        )
    target = _target(member, room, action)
    if action.kind == "mode" and action.slow is not None and action.slow > SLOW_MAX:
        raise RequestError(Code.BAD_MODE, f"slow mode is at most {SLOW_MAX} seconds")
    if action.kind == "op" and action.target not in room.chain.granted:
        if len(room.grants) >= ev.OWNERS_MAX:
            raise RequestError(
                Code.TOO_MANY_OWNERS, f"a secret room has at most {ev.OWNERS_MAX} owners"
            )
        room.grants.append(action)
    room.chain.apply(owner_action(action))
    if action.kind == "mode":
        room.mode = action
        room.locked, room.slow = bool(action.locked), action.slow or 0
        room.history = bool(action.history)
    elif action.kind == "ban" and target is not None:
        room.banned.add(target.first_uid)
    elif action.kind == "close":
        room.closed = room.locked = True
    # Relayed while the target is still a member, so it learns it was removed.
    room.acted(action, ts)
    if action.kind in ("kick", "ban") and target is not None:
        drop_secret(shared, target, room)
    member.send(ev.Ok(id=cmd.request_id))


def drop_secret(shared: SharedState, member: Member, room: SecretRoom) -> None:
    """Out of a secret room: left, or removed by an owner (announced already)."""
    room.remove(member)
    member.secret_rooms.pop(room.rid, None)
    shared.drop_secret_if_empty(room)


def check_keys(*keys: bytes) -> None:
    """Refuse a key that is not a valid Ed25519 public key (crypto.valid_public_key):
    with a small-order key a signature "proves" a key nobody holds."""
    if not all(valid_public_key(key) for key in keys):
        raise RequestError(
            Code.BAD_KEY,
            "a key is not a valid Ed25519 public key (small order, off the curve or not canonical)",
        )


def _check(room: SecretRoom, act: ev.OwnerAct) -> None:
    """Refuse an action that is not the room's next one or not an owner's."""
    chain = room.chain
    if act.counter != chain.counter + 1:
        raise RequestError(
            Code.BAD_ACTION,
            f"this owner action is number {act.counter}; the room's next is {chain.counter + 1}",
        )
    check_keys(act.actor, *([act.target] if act.target is not None else []))
    try:
        chain.check(owner_action(act))
    except CryptoError as exc:
        if exc.code == CryptoCode.NOT_OWNER:
            raise RequestError(Code.NOT_OWNER, "only an owner of this room may do that") from None
        raise RequestError(
            Code.BAD_ACTION, f"the owner action does not verify: {exc.message}"
        ) from None


def _target(actor: Member, room: SecretRoom, act: ev.OwnerAct) -> Member | None:
    """The member a kick, ban or op names by session key (None for mode, and
    for the ban of a granted key that is not in the room: owner rights can be
    taken back from someone who has left)."""
    if act.target is None:
        return None
    for member, key in room.members.items():
        if key == act.target:
            if member is actor and act.kind != "op":
                raise RequestError(Code.NO_SUCH_NICK, "you cannot kick yourself; leave instead")
            return member
    if act.kind == "ban" and act.target in room.chain.granted:
        return None
    raise RequestError(Code.NO_SUCH_NICK, "no member of this room has that session key")


def check_entry(member: Member, room: SecretRoom, sender: bytes) -> None:
    """Refuse a banned session or key, and anyone new to a locked room.

    Owners too, as in public rooms: a lock keeps everyone new out.
    """
    if member.first_uid in room.banned or sender in room.chain.banned:
        raise RequestError(Code.BANNED, "you are banned from this room")
    if room.locked:
        raise RequestError(Code.ROOM_LOCKED, "this room is locked: no new members")


def check_open(room: SecretRoom) -> None:
    """A closed room (``close``, after ``/secret rotate``) takes no new sealed message."""
    if room.closed:
        raise RequestError(
            Code.ROOM_CLOSED, "an owner closed this secret room: it takes no new messages"
        )


def check_slow(member: Member, room: SecretRoom, seal: Sealed, ts: int) -> None:
    """Slow mode: one message (``msg`` or ``me``) per ``room.slow`` seconds for
    members who are not owners; announcements are not slowed.  An owner is a
    member whose key has owner rights *and* who signed this seal with it (the
    key proof at the door already keeps others from entering under an owner's
    key).  ``ts`` is the log time in milliseconds."""
    if not room.slow or seal.kind not in ("msg", "me") or _signed_by_owner(room, seal):
        return
    take_turn(room, member, ts, "this room")


def _signed_by_owner(room: SecretRoom, seal: Sealed) -> bool:
    if not room.chain.may_act(seal.sender):
        return False
    return verify_sealed_signature(room.rid, room.chain.owner, seal)
