"""Moderation without identities: what a room's owners may do.

The creator of a public room is its first owner.  Owners may kick a member,
ban a member's session for the room's lifetime (never an address: the daemon
keeps none), make another member an owner, set the topic, lock the room to
newcomers, set a slow mode and turn history on join off.  A room whose last
owner leaves passes ownership to the member who has been there longest, so
no room is left without anyone to moderate it.

Every action is announced to the room as a numbered event (``presence`` of
kind ``kick``, ``ban`` or ``op`` with ``by``, or ``mode_changed``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, cast

from .. import events as ev
from ..errors import Code, RequestError
from ..names import InvalidName, check_topic, name_key
from .rooms import Room, now_ms

if TYPE_CHECKING:
    from .session import Session

#: The longest slow mode an owner may set, in seconds (one hour).
SLOW_MAX = 3600


def owned_room(session: Session, name: str) -> Room:
    """The room, if ``session`` is in it and owns it; else the matching error."""
    room = session.rooms.get(name_key(name))
    if room is None:
        raise RequestError(Code.NOT_MEMBER, f"you are not in {name}")
    if session not in room.owners:
        raise RequestError(Code.NOT_OWNER, f"only an owner of {room.name} may do that")
    return room


def member_by_nick(room: Room, nick: str) -> Session:
    key = name_key(nick)
    for member in room.members:
        if member.nick_key == key:
            return cast("Session", member)
    raise RequestError(Code.NO_SUCH_NICK, f"nobody called {nick} is in {room.name}")


def on_kick(session: Session, frame: ev.Kick) -> None:
    room = owned_room(session, frame.room)
    target = member_by_nick(room, frame.nick)
    if target is session:
        raise RequestError(Code.NO_SUCH_NICK, "you cannot kick yourself; /leave instead")
    reason = _reason(frame.msg)
    kind = "ban" if frame.ban else "kick"
    if frame.ban:
        room.banned.add(target)
    # Announced while the target is still a member, so it learns it was removed.
    room.presence(target, kind, msg=reason, by=session.nick)
    target.drop_room(room)
    session.send(ev.Ok(id=frame.id))


def on_op(session: Session, frame: ev.Op) -> None:
    room = owned_room(session, frame.room)
    target = member_by_nick(room, frame.nick)
    if target not in room.owners:
        room.owners.add(target)
        room.presence(target, "op", by=session.nick)
    session.send(ev.Ok(id=frame.id))


def on_mode(session: Session, frame: ev.RoomMode) -> None:
    room = owned_room(session, frame.room)
    if frame.slow is not None and frame.slow > SLOW_MAX:
        raise RequestError(Code.BAD_MODE, f"slow mode is at most {SLOW_MAX} seconds")
    room.locked = room.locked if frame.locked is None else frame.locked
    room.slow = room.slow if frame.slow is None else frame.slow
    room.history = room.history if frame.history is None else frame.history
    room.broadcast(
        ev.ModeChanged(
            room=room.name,
            seq=room.next_seq(),
            ts=now_ms(),
            nick=session.nick,
            locked=room.locked,
            slow=room.slow,
            history=room.history,
        )
    )
    session.send(ev.Ok(id=frame.id))


def check_entry(session: Session, room: Room) -> None:
    """Refuse a newcomer to a locked room or a banned session."""
    if session in room.banned:
        raise RequestError(Code.BANNED, f"you are banned from {room.name}")
    if room.locked:
        raise RequestError(Code.ROOM_LOCKED, f"{room.name} is locked: no new members")


def check_slow(session: Session, room: Room, now: float) -> None:
    """Slow mode: one message per ``room.slow`` seconds for members who are not owners."""
    if not room.slow or session in room.owners:
        return
    wait = room.last_said.get(session, -math.inf) + room.slow - now
    if wait > 0:
        raise RequestError(Code.SLOW_MODE, f"{room.name} is in slow mode: wait {math.ceil(wait)} s")
    room.last_said[session] = now


def check_topic_owner(session: Session, room: Room) -> None:
    if session not in room.owners:
        raise RequestError(Code.NOT_OWNER, f"only an owner of {room.name} may set its topic")


def after_leave(room: Room, gone: Session) -> None:
    """Forget a member's traces; hand ownership on if the last owner left."""
    room.last_said.pop(gone, None)
    room.owners.discard(gone)
    if room.members and not room.owners:
        heir = next(iter(room.members))
        room.owners.add(heir)
        room.presence(heir, "op")  # no ``by``: the daemon's rule, not a person


def _reason(msg: str | None) -> str | None:
    if not msg:
        return None
    try:
        return check_topic(msg) or None
    except InvalidName:
        return None
