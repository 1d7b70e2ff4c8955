"""The shared state: nicks, members, rooms, applied one command at a time.

Theory of operation.  Everything that more than one connection can see --
who holds which nick, who is in which room, a room's topic, modes, owners,
sequence numbers and recent events -- changes only here, by *commands*
applied one after another.  A session checks what it alone can check (rate
limits, the syntax of a nick or a text, a secret-room proof against its own
challenge), then submits a command to the daemon's bus
(:mod:`anonchat.daemon.bus`) and reads nothing more from its client until the
command has been applied.

* With one node (the default ``LocalBus``) a command is applied the moment it
  is submitted: the code below runs inside the session's handler.
* With several nodes (``RedisBus``) every node appends its commands to one
  Redis stream and applies *every* node's commands in the stream's order.  So
  every node holds the same state -- the same rooms, members, sequence
  numbers and rings -- and fans each event out to the members connected to
  it.  Members connected elsewhere are :class:`~anonchat.daemon.rooms.Remote`.

For every node to reach the same state, applying is deterministic: the time
is the command's log time (``ts``, milliseconds), never the local clock, and
every choice (a random nick, a resume token) is made before submitting.
Refusals found while applying (a nick taken a moment earlier on another
node, a room that was locked) are answered to the member's client, if it is
connected here.

A command is a list ``[op, uid, request_id, *args]`` of plain values, so the
Redis bus can send it as msgpack.  ``docs/architecture.md`` shows one
message's path through it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..crypto import Sealed, verify_join_proof
from ..errors import Code, RequestError
from ..names import InvalidName, check_room, claim_keys, name_key
from ..plural import plural
from . import dms, moderation, secret_moderation
from .rooms import Member, Remote, Room, SecretRoom, fit

if TYPE_CHECKING:
    from .server import Daemon

log = logging.getLogger("anonchat.daemon")

Command = list[Any]


def apply(daemon: Daemon, cmd: Command, ts: int) -> None:
    """Apply one command at log time ``ts`` (milliseconds)."""
    op, uid, request_id = cmd[0], cmd[1], cmd[2]
    handler = _APPLY.get(op)
    if handler is not None:  # a member's command (the node-level ones follow)
        member = daemon.members.get(uid)
        if member is None:
            return  # gone before its command came up (ended, resumed or its node died)
        try:
            handler(daemon, member, ts, request_id, *cmd[3:])
        except RequestError as exc:
            member.send(ev.Error(code=exc.code, msg=exc.message[: ev.SHORT_MAX], id=request_id))
        member.applied()
        return
    if op == "beat":  # a node is alive; any that has been silent too long is not
        beat(daemon, uid, ts, cmd[3] if len(cmd) > 3 else None)
        return
    if op == "down":  # a node stopped
        daemon.stats.nodes_down += 1
        daemon.node_gone(uid, ts)
        return
    if op == "handover":  # a node stopped; its sessions may resume elsewhere
        daemon.stats.handovers += 1
        daemon.handed_over(uid, ts)
        return
    if op == "hello":
        _hello(daemon, uid, ts, *cmd[3:])
        return
    if uid in daemon.members:
        raise KeyError(op)  # a command no node submits


#: The meaning of commands; a node applying them differently is refused.
VERSION = 1
#: The limits that applying commands (or a deadline in the log) uses: every node
#: of a service must have the same, or their states drift apart.
SHARED_LIMITS = (
    "max_rooms",
    "max_rooms_per_session",
    "max_members_per_room",
    "ring_frames",
    "ring_bytes",
    "resume_window",
)


def shared_settings(daemon: Daemon) -> dict[str, Any]:
    """The settings every node must agree on (sent in each beat)."""
    limits = daemon.config.limits
    settings: dict[str, Any] = {name: getattr(limits, name) for name in SHARED_LIMITS}
    settings["node_timeout"] = daemon.config.node_timeout
    settings["commands"] = VERSION
    return settings


def settings_differ(mine: dict[str, Any], theirs: dict[str, Any]) -> str:
    """The settings that differ, for a message ("" if none)."""
    names = sorted(set(mine) | set(theirs))
    return ", ".join(
        f"{n} is {mine.get(n)!r} here but {theirs.get(n)!r} there"
        for n in names
        if mine.get(n) != theirs.get(n)
    )


def _check_settings(daemon: Daemon, node: str, settings: dict[str, Any]) -> None:
    """Another node's settings differ from ours: the newer of the two stops."""
    diff = settings_differ(daemon.settings, settings)
    if not diff or node == daemon.node or daemon.replaying:
        return  # (a starting node checks the live nodes' when it has caught up)
    never = float("inf")
    if (daemon.alive_since.get(node, never), node) < (
        daemon.alive_since.get(daemon.node, never),
        daemon.node,
    ):
        daemon.lose(f"this node's settings differ from node {node}'s ({diff})")
    elif node not in daemon.mismatched:
        daemon.mismatched.add(node)
        log.error("node %s has other settings than this node (%s); it stops", node, diff)


def beat(daemon: Daemon, node: str, ts: int, settings: dict[str, Any] | None = None) -> None:
    """``node`` is alive at log time ``ts``; judge the silent ones if it may.

    A node judges only once its own beats (every ``node_timeout / 5``) have
    reached the stream for a whole ``node_timeout`` with no gap over half of
    it: one that is new, or was cut off itself even briefly, first watches a
    whole ``node_timeout`` of live stream.  So after an outage of Redis
    (stopped, paused, unreachable for everyone) every node has had
    ``node_timeout`` to beat again before anyone judges, and nobody is
    counted as gone for the outage itself: an outage short enough not to
    stop the judges (half of node_timeout) is too short to silence anyone
    for node_timeout (a beat interval and a retry, a tenth, added).
    """
    timeout = round(daemon.config.node_timeout * 1000)
    previous = daemon.nodes.get(node)
    daemon.nodes[node] = ts
    if previous is None or ts - previous > timeout // 2:
        daemon.alive_since[node] = ts  # new, or back after a silence
    if settings is not None:
        if daemon.node_settings.get(node) != settings:
            daemon.node_settings[node] = settings
        _check_settings(daemon, node, settings)
    daemon.end_orphans(ts)  # handed-over sessions nobody resumed in time
    if ts - daemon.alive_since.get(node, ts) < timeout:
        return
    for other, last in list(daemon.nodes.items()):
        if ts - last > timeout:
            daemon.stats.nodes_gone += 1
            daemon.node_gone(other, ts)


# -- sessions ------------------------------------------------------------------


def _hello(
    daemon: Daemon,
    uid: str,
    ts: int,
    node: str,
    nick: str,
    random: bool,
    token_hash: bytes,
    resume_hash: bytes | None,
    seen: list[list[Any]],
) -> None:
    member = daemon.members.get(uid)
    if member is None:
        member = Remote(daemon, uid, node)
    old = daemon.tokens.pop(resume_hash, None) if resume_hash else None
    if old is not None and old is not member:
        _adopt(daemon, member, old)
    else:
        old = None
        taken = holder(daemon, nick)
        if taken is not None:
            if not random:
                member.close(Code.NICK_TAKEN, _taken(nick, taken))
                member.applied()
                return
            nick = _free_variant(daemon, nick)
        take_nick(daemon, member, nick)
    member.token_hash = token_hash
    daemon.tokens[token_hash] = member
    daemon.members[uid] = member
    member.welcome(old is not None, seen)
    member.applied()


def _free_variant(daemon: Daemon, nick: str) -> str:
    """A random nick another node took a moment earlier: the same, numbered."""
    n = 2
    while holder(daemon, f"{nick}-{n}") is not None:
        n += 1
    return f"{nick}-{n}"


def _taken(nick: str, holder: Member) -> str:
    """Why ``nick`` is refused: taken, or so like a connected nick that people could
    not tell the two apart (the same confusable skeleton, ``names.claim_key``)."""
    if name_key(nick) == name_key(holder.nick):
        return f"the nick {nick} is taken"
    return f"the nick {nick} looks like {holder.nick}, which is taken"


def _adopt(daemon: Daemon, new: Member, old: Member) -> None:
    """``new`` resumes ``old``: its nick, rooms, keys and place in each room."""
    daemon.members.pop(old.uid, None)
    daemon.orphans.pop(old.uid, None)
    daemon.stop_waiting(old)
    old.abort("resumed")  # if it still has a connection here, the client knows better
    new.first_uid = old.first_uid  # the same session: its bans follow it
    take_nick(daemon, new, old.nick)
    new.rooms, new.secret_rooms = old.rooms, old.secret_rooms
    old.rooms, old.secret_rooms = {}, {}
    for channel in [*new.rooms.values(), *new.secret_rooms.values()]:
        channel.replace_member(old, new)
    dms.adopt(daemon, new, old)
    if new.node == daemon.node:
        daemon.stats.resumes += 1
    log.debug("%s resumes %s", new.uid, old.uid)


def holder(daemon: Daemon, nick: str) -> Member | None:
    """Who holds ``nick`` or a nick that looks like it (``names.claim_keys``)."""
    for key in claim_keys(nick):
        found = daemon.claims.get(key)
        if found is not None:
            return found
    return None


def take_nick(daemon: Daemon, member: Member, nick: str) -> None:
    """``member`` is called ``nick`` now: it holds that nick's keys, and no others."""
    _free_nick(daemon, member)
    member.nick = nick
    member.nick_key = name_key(nick)
    daemon.nicks[member.nick_key] = member
    member.claims = claim_keys(nick)
    for key in member.claims:
        daemon.claims[key] = member


def _free_nick(daemon: Daemon, member: Member) -> None:
    if daemon.nicks.get(member.nick_key) is member:
        del daemon.nicks[member.nick_key]
    for key in member.claims:
        if daemon.claims.get(key) is member:
            del daemon.claims[key]


def end(daemon: Daemon, member: Member, ts: int, quit_msg: str | None = None) -> None:
    """A session is over: free its nick and leave its rooms, announcing the quit."""
    if daemon.members.get(member.uid) is member:
        del daemon.members[member.uid]
    daemon.orphans.pop(member.uid, None)
    daemon.stop_waiting(member)
    if daemon.tokens.get(member.token_hash) is member:
        del daemon.tokens[member.token_hash]
    _free_nick(daemon, member)
    dms.forget(daemon, member)
    for room in list(member.rooms.values()):
        leave_room(daemon, member, room, "quit", ts, msg=quit_msg)
    for secret in list(member.secret_rooms.values()):
        leave_secret(daemon, member, secret, "quit", ts)


def _end(daemon: Daemon, member: Member, ts: int, _rid: None, quit_msg: str | None) -> None:
    end(daemon, member, ts, quit_msg)


def _nick(daemon: Daemon, member: Member, ts: int, rid: int, nick: str) -> None:
    taken = holder(daemon, nick)
    if taken is not None and taken is not member:
        raise RequestError(Code.NICK_TAKEN, _taken(nick, taken))
    old = member.nick
    take_nick(daemon, member, nick)
    member.send(ev.Ok(id=rid))
    if nick != old:
        for room in member.rooms.values():
            room.presence(member, "nick", ts, nick=old, new=nick)


# -- public rooms --------------------------------------------------------------


def _create(daemon: Daemon, member: Member, ts: int, rid: int, name: str, topic: str) -> None:
    try:
        check_room(name)
    except InvalidName as exc:
        raise RequestError(Code.ROOM_INVALID, str(exc)) from None
    key = name_key(name)
    if key in daemon.rooms:
        raise RequestError(Code.ROOM_EXISTS, f"the room {daemon.rooms[key].name} already exists")
    if len(daemon.rooms) >= daemon.config.limits.max_rooms:
        raise RequestError(Code.TOO_MANY_ROOMS, "the server holds as many rooms as it may")
    room = Room(daemon, name, key, topic)
    daemon.rooms[key] = room
    _enter(daemon, member, room, ts, rid, owner=True)


def _join(daemon: Daemon, member: Member, ts: int, rid: int, name: str) -> None:
    room = daemon.find_room(name)
    if room.key in member.rooms:
        raise RequestError(Code.ALREADY_MEMBER, f"you are already in {room.name}")
    _enter(daemon, member, room, ts, rid, owner=False)


def check_room_limits(member: Member, members: int) -> None:
    limits = member.limits
    count = len(member.rooms) + len(member.secret_rooms)
    if count >= limits.max_rooms_per_session:
        raise RequestError(
            Code.TOO_MANY_ROOMS,
            f"you are in {plural(count, 'room')}; the limit is {limits.max_rooms_per_session}",
        )
    if members >= limits.max_members_per_room:
        raise RequestError(Code.ROOM_FULL, "the room is full")


def _enter(daemon: Daemon, member: Member, room: Room, ts: int, rid: int, owner: bool) -> None:
    try:
        if not owner:
            moderation.check_entry(member, room)
        check_room_limits(member, len(room.members))
    except RequestError:
        daemon.drop_if_empty(room)
        raise
    seq = room.presence(member, "join", ts)
    _seat(room, member, None, owner)
    member.rooms[room.key] = room
    if not member.here:
        return
    budget = member.limits.max_frame - 1024
    members, more = daemon.member_list(room, budget)
    joined = ev.Joined(
        id=rid,
        room=room.name,
        topic=room.topic,
        members=members,
        seq=seq,
        owner=owner,
        more=more,
        owners=room.owner_nicks()[:100],
        locked=room.locked,
        slow=room.slow,
    )
    send_with_history(member, room, joined, room.history)


def _seat(channel: Room | SecretRoom, member: Member, value: Any, owner: bool) -> None:
    """A newcomer takes the last place in the member list (``value``: its key, if any)."""
    channel.add(member, value)
    if owner:
        channel.owners.add(member)


def send_with_history(
    member: Member, channel: Room | SecretRoom, reply: ev.Frame, history: bool
) -> None:
    """The join reply, then the room's last messages (older than the reply's seq)."""
    member.send(reply)
    for data in channel.ring.history(member.limits.history if history else 0):
        member.deliver(data)


def member_room(member: Member, name: str) -> Room:
    room = member.rooms.get(name_key(name))
    if room is None:
        raise RequestError(Code.NOT_MEMBER, f"you are not in {name}")
    return room


def _leave(daemon: Daemon, member: Member, ts: int, rid: int, name: str) -> None:
    leave_room(daemon, member, member_room(member, name), "leave", ts)
    member.send(ev.Ok(id=rid))


def leave_room(
    daemon: Daemon, member: Member, room: Room, kind: str, ts: int, msg: str | None = None
) -> None:
    room.remove(member)
    member.rooms.pop(room.key, None)
    if not daemon.drop_if_empty(room):
        room.presence(member, kind, ts, msg=msg)
        moderation.after_leave(room, member, ts)


def _topic(daemon: Daemon, member: Member, ts: int, rid: int, name: str, topic: str) -> None:
    room = member_room(member, name)
    moderation.check_topic_owner(member, room)
    room.set_topic(member, topic, ts)
    member.send(ev.Ok(id=rid))


def say(daemon: Daemon, member: Member, ts: int, rid: int, name: str, text: str, me: bool) -> None:
    """A message to a public room (on one node, Session.on_say calls this itself)."""
    room = member.rooms.get(name_key(name))
    if room is None:
        raise RequestError(Code.NOT_MEMBER, f"you are not in {name}")
    if room.slow:
        moderation.check_slow(member, room, ts)
    seq = room.say(member, text, me, ts)
    daemon.stats.message(member.node, ts)
    member.ok(rid, seq)


# -- secret rooms --------------------------------------------------------------


def _secret_create(
    daemon: Daemon,
    member: Member,
    ts: int,
    rid: int,
    room_id: bytes,
    auth: bytes,
    sender: bytes,
    owner_key: bytes,
    owner_tag: bytes,
) -> None:
    if room_id in daemon.secret_rooms:
        raise RequestError(Code.ROOM_EXISTS, "a secret room with this name and passphrase exists")
    if len(daemon.secret_rooms) >= daemon.config.limits.max_rooms:
        raise RequestError(Code.TOO_MANY_ROOMS, "the server holds as many rooms as it may")
    room = SecretRoom(daemon, room_id, auth, owner_key, owner_tag)
    daemon.secret_rooms[room_id] = room
    _enter_secret(daemon, member, room, ts, rid, sender, owner=True)


def _secret_join(
    daemon: Daemon,
    member: Member,
    ts: int,
    rid: int,
    room_id: bytes,
    proof: bytes,
    challenge: bytes,
    sender: bytes,
) -> None:
    room = daemon.secret_rooms.get(room_id)
    # A missing room and a wrong passphrase must look the same.
    if room is None or not verify_join_proof(
        room.auth, room_id, challenge, daemon.pin_bytes, proof
    ):
        raise RequestError(Code.JOIN_DENIED, "no such room or wrong passphrase")
    if room_id in member.secret_rooms:
        raise RequestError(Code.ALREADY_MEMBER, "you are already in this room")
    if sender in room.members.values():
        # Two members under one key could speak for each other's presence.
        raise RequestError(Code.ALREADY_MEMBER, "that session key is already in this room")
    secret_moderation.check_entry(member, room, sender)
    _enter_secret(daemon, member, room, ts, rid, sender, owner=False)


def _enter_secret(
    daemon: Daemon,
    member: Member,
    room: SecretRoom,
    ts: int,
    rid: int,
    sender: bytes,
    owner: bool,
) -> None:
    try:
        check_room_limits(member, len(room.members))
    except RequestError:
        daemon.drop_secret_if_empty(room)
        raise
    seq = room.presence(sender, "join", ts)
    _seat(room, member, sender, owner)
    member.secret_rooms[room.rid] = room
    if not member.here:
        return
    # The grants (at most OWNERS_MAX, ~190 bytes each) take up to 12 KiB.
    budget = member.limits.max_frame - 1024 - 200 * (len(room.grants) + 1)
    keys, more = fit(room.members.values(), budget, lambda k: 34)
    reply = ev.SecretJoined(
        id=rid,
        room=room.rid,
        seq=seq,
        members=keys,
        owner_key=room.chain.owner,
        owner_tag=room.owner_tag,
        owner=owner,
        more=more,
        acts=room.chain.counter,
        grants=list(room.grants) or None,
        mode=room.mode,
    )
    send_with_history(member, room, reply, room.history)


def secret_room(member: Member, room_id: bytes) -> SecretRoom:
    room = member.secret_rooms.get(room_id)
    if room is None:
        raise RequestError(Code.NOT_MEMBER, "you are not in this secret room")
    return room


def _secret_leave(daemon: Daemon, member: Member, ts: int, rid: int, room_id: bytes) -> None:
    leave_secret(daemon, member, secret_room(member, room_id), "leave", ts)
    member.send(ev.Ok(id=rid))


def leave_secret(daemon: Daemon, member: Member, room: SecretRoom, kind: str, ts: int) -> None:
    sender = room.members[member]
    secret_moderation.drop_secret(daemon, member, room)
    if room.members:
        room.presence(sender, kind, ts)


def _seal(
    daemon: Daemon,
    member: Member,
    ts: int,
    rid: int,
    room_id: bytes,
    counter: int,
    epoch: int,
    kind: str,
    ct: bytes,
    sig: bytes,
) -> None:
    room = secret_room(member, room_id)
    secret_moderation.check_open(room)
    if room.slow:
        sealed = Sealed(room.members[member], counter, kind, epoch, ct, sig)
        secret_moderation.check_slow(member, room, sealed, ts)
    seq = room.relay(member, [counter, epoch, kind, ct, sig], ts)
    if kind in ("msg", "me"):
        daemon.stats.message(member.node, ts, sealed=True)
    elif member.node == daemon.node:
        daemon.stats.announcements += 1  # (hello, here: not messages)
    member.ok(rid, seq)


_APPLY: dict[str, Callable[..., None]] = {
    "end": _end,
    "nick": _nick,
    "create": _create,
    "join": _join,
    "leave": _leave,
    "topic": _topic,
    "say": say,
    "kick": moderation.kick,
    "op": moderation.op,
    "mode": moderation.mode,
    "s_create": _secret_create,
    "s_join": _secret_join,
    "s_leave": _secret_leave,
    "seal": _seal,
    "s_act": secret_moderation.act,
    "dm_key": dms.register,
    "dm": dms.relay,
}
