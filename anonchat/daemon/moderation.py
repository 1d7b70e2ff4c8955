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

from .. import events as ev
from ..errors import Code, RequestError
from ..names import InvalidName, check_topic, claim_keys, name_key
from . import commands as cmds
from .rooms import Channel, Member, Room
from .shared import SharedState

#: The longest slow mode an owner may set, in seconds (one hour).
SLOW_MAX = 3600


def owned_room(member: Member, name: str) -> Room:
    """The room, if ``member`` is in it and owns it; else the matching error."""
    room = member.rooms.get(name_key(name))
    if room is None:
        raise RequestError(Code.NOT_MEMBER, f"you are not in {name}")
    if member not in room.owners:
        raise RequestError(Code.NOT_OWNER, f"only an owner of {room.name} may do that")
    return room


def member_by_nick(room: Room, nick: str) -> Member:
    keys = set(claim_keys(nick))  # (one nick of a look-alike set is connected at a time)
    for member in room.members:
        if keys.intersection(member.claims):
            return member
    raise RequestError(Code.NO_SUCH_NICK, f"nobody called {nick} is in {room.name}")


def kick(shared: SharedState, member: Member, ts: int, cmd: cmds.Kick) -> None:
    room = owned_room(member, cmd.name)
    target = member_by_nick(room, cmd.nick)
    ban = cmd.ban
    if target is member:
        raise RequestError(Code.NO_SUCH_NICK, "you cannot kick yourself; /leave instead")
    if ban:
        room.banned.add(target.first_uid)
    # Announced while the target is still a member, so it learns it was removed.
    room.presence(target, "ban" if ban else "kick", ts, msg=cmd.reason, by=member.nick)
    room.remove(target)
    target.rooms.pop(room.key, None)
    if not shared.drop_if_empty(room):
        after_leave(room, target, ts)
    member.send(ev.Ok(id=cmd.request_id))


def op(shared: SharedState, member: Member, ts: int, cmd: cmds.Op) -> None:
    room = owned_room(member, cmd.name)
    target = member_by_nick(room, cmd.nick)
    if target not in room.owners:
        room.owners.add(target)
        room.presence(target, "op", ts, by=member.nick)
    member.send(ev.Ok(id=cmd.request_id))


def mode(shared: SharedState, member: Member, ts: int, cmd: cmds.Mode) -> None:
    room = owned_room(member, cmd.name)
    locked, slow, history = cmd.locked, cmd.slow, cmd.history
    if slow is not None and slow > SLOW_MAX:
        raise RequestError(Code.BAD_MODE, f"slow mode is at most {SLOW_MAX} seconds")
    room.locked = room.locked if locked is None else locked
    room.slow = room.slow if slow is None else slow
    room.history = room.history if history is None else history
    room.broadcast(
        ev.ModeChanged(
            room=room.name,
            seq=room.next_seq(),
            ts=ts,
            nick=member.nick,
            locked=room.locked,
            slow=room.slow,
            history=room.history,
        )
    )
    member.send(ev.Ok(id=cmd.request_id))


def check_entry(member: Member, room: Room) -> None:
    """Refuse a newcomer to a locked room or a banned session."""
    if member.first_uid in room.banned:
        raise RequestError(Code.BANNED, f"you are banned from {room.name}")
    if room.locked:
        raise RequestError(Code.ROOM_LOCKED, f"{room.name} is locked: no new members")


def check_slow(member: Member, room: Room, ts: int) -> None:
    """Slow mode: one message per ``room.slow`` seconds for members who are not owners.

    ``ts`` is the command's log time in milliseconds, the same on every node.
    """
    if not room.slow or member in room.owners:
        return
    take_turn(room, member, ts, room.name)


def take_turn(channel: Channel, member: Member, ts: int, where: str) -> None:
    """A slowed member's message: refused until ``channel.slow`` seconds have
    passed since its last one (``ts`` in milliseconds), else noted."""
    wait = channel.last_said.get(member, -math.inf) + channel.slow * 1000 - ts
    if wait > 0:
        raise RequestError(
            Code.SLOW_MODE, f"{where} is in slow mode: wait {math.ceil(wait / 1000)} s"
        )
    channel.last_said[member] = ts


def check_topic_owner(member: Member, room: Room) -> None:
    if member not in room.owners:
        raise RequestError(Code.NOT_OWNER, f"only an owner of {room.name} may set its topic")


def after_leave(room: Room, gone: Member, ts: int) -> None:
    """Forget a member's traces; hand ownership on if the last owner left."""
    room.last_said.pop(gone, None)
    room.owners.discard(gone)
    if room.members and not room.owners:
        heir = next(iter(room.members))
        room.owners.add(heir)
        room.presence(heir, "op", ts)  # no ``by``: the daemon's rule, not a person


def reason(msg: str | None) -> str | None:
    """A kick's reason as the room will see it (dropped if it is not a valid topic)."""
    if not msg:
        return None
    try:
        return check_topic(msg) or None
    except InvalidName:
        return None
