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

A command is an object of ``commands.py``, one frozen dataclass per command
(``commands.Join``, ``commands.Say``, ...); ``apply`` finds its handler by its
class (``_on`` registers them, each typed for its class).  The Redis bus
carries a command as the plain list ``[op, uid, request_id, *args]``
(``to_list``/``from_list``; ``apply_list`` applies one).  Commands are
applied to a :class:`~anonchat.daemon.shared.SharedState`, never to the
daemon: the tables every node holds, and the few callables of its node that
applying needs.
``docs/architecture.md`` shows one message's path through it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from .. import events as ev
from ..crypto import Sealed, verify_join_proof
from ..errors import Code, RequestError
from ..names import InvalidName, check_room, claim_keys, name_key
from ..plural import plural
from . import commands as cmds
from . import dms, moderation, secret_moderation
from .commands import Command, MemberCommand, UnknownCommand
from .rooms import NO_SECRET_ROOMS, Member, Remote, Room, SecretRoom, fit, member_list
from .shared import SharedState, settings_differ

log = logging.getLogger("anonchat.daemon")

C = TypeVar("C", bound=MemberCommand)
#: How a member's command is applied: (state, member, log time, command).
Handler = Callable[[SharedState, Member, int, Any], None]
_APPLY: dict[type[MemberCommand], Handler] = {}


def _on(cls: type[C], handler: Callable[[SharedState, Member, int, C], None]) -> None:
    """Apply a member's commands of class ``cls`` with ``handler`` (checked by
    mypy: the handler takes that class)."""
    _APPLY[cls] = handler


def apply(shared: SharedState, cmd: Command, ts: int) -> None:
    """Apply one command at log time ``ts`` (milliseconds)."""
    if isinstance(cmd, MemberCommand):  # (the others follow)
        member = shared.members.get(cmd.uid)
        if member is None:
            return  # gone before its command came up (ended, resumed or its node died)
        try:
            _APPLY[type(cmd)](shared, member, ts, cmd)
        except RequestError as exc:
            rid = cmd.request_id if isinstance(cmd, cmds.Request) else None
            member.send(ev.Error(code=exc.code, msg=exc.message[: ev.SHORT_MAX], id=rid))
        member.applied()
    elif isinstance(cmd, cmds.Beat):  # a node is alive; any silent too long is not
        beat(shared, cmd.node, ts, cmd.settings)
    elif isinstance(cmd, cmds.Hello):
        _hello(shared, cmd, ts)
    elif isinstance(cmd, cmds.Down):  # a node stopped
        if not shared.replaying:  # (the metrics count what happened since this node started)
            shared.stats.nodes_down += 1
        node_gone(shared, cmd.node, ts)
    elif isinstance(cmd, cmds.Handover):  # a node stopped; its sessions may resume elsewhere
        if not shared.replaying:
            shared.stats.handovers += 1
        handed_over(shared, cmd.node, ts)
    # (Begin: the Redis bus reads it, as a stream's first entry.)


def apply_list(shared: SharedState, raw: Any, ts: int) -> None:
    """Apply a command in its list form (``commands.from_list``), as the Redis
    bus reads it.  A list that is no command of this version raises
    ``MalformedCommand`` (the bus logs it and goes on), except an unknown op
    that names no member here: nothing to apply it to, nothing to say."""
    try:
        cmd = cmds.from_list(raw)
    except UnknownCommand as exc:
        if isinstance(exc.uid, str) and exc.uid in shared.members:
            raise
        return
    apply(shared, cmd, ts)


def _check_settings(shared: SharedState, node: str, settings: dict[str, Any]) -> None:
    """Another node's settings differ from ours: the newer of the two stops."""
    diff = settings_differ(shared.settings, settings)
    if not diff or node == shared.node or shared.replaying:
        return  # (a starting node checks the live nodes' when it has caught up)
    never = float("inf")
    if (shared.alive_since.get(node, never), node) < (
        shared.alive_since.get(shared.node, never),
        shared.node,
    ):
        shared.lose(f"this node's settings differ from node {node}'s ({diff})")
    elif node not in shared.mismatched:
        shared.mismatched.add(node)
        log.error("node %s has other settings than this node (%s); it stops", node, diff)


def beat(shared: SharedState, node: str, ts: int, settings: dict[str, Any] | None = None) -> None:
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
    timeout = round(shared.node_timeout * 1000)
    previous = shared.nodes.get(node)
    shared.nodes[node] = ts
    if previous is None or ts - previous > timeout // 2:
        shared.alive_since[node] = ts  # new, or back after a silence
    if settings is not None:
        if shared.node_settings.get(node) != settings:
            shared.node_settings[node] = settings
        _check_settings(shared, node, settings)
    end_orphans(shared, ts)  # handed-over sessions nobody resumed in time
    if ts - shared.alive_since.get(node, ts) < timeout:
        return
    for other, last in list(shared.nodes.items()):
        if ts - last > timeout:
            if not shared.replaying:
                shared.stats.nodes_gone += 1
            node_gone(shared, other, ts)


def _forget_node(shared: SharedState, node: str) -> None:
    shared.nodes.pop(node, None)
    shared.alive_since.pop(node, None)
    shared.node_settings.pop(node, None)


def node_gone(shared: SharedState, node: str, ts: int) -> None:
    """A node stopped (or stopped beating): end every session it held."""
    _forget_node(shared, node)
    gone = [m for m in shared.members.values() if m.node == node]
    ours = node == shared.node
    if not (ours and shared.stopping()):  # (not our own clean stop)
        # Said even when it held nobody: an operator wants to know a node
        # was counted as gone.  (A node catching up applies history: not
        # news, not a warning.)
        log.log(
            logging.DEBUG if shared.replaying else logging.WARNING,
            "node %s is gone; ending its %s",
            node,
            plural(len(gone), "session"),
        )
    for member in gone:
        end(shared, member, ts)
    if ours and not shared.stopping():
        shared.lose("the other nodes count this node as gone (it fell behind)")


def handed_over(shared: SharedState, node: str, ts: int) -> None:
    """A node stopped cleanly and handed its sessions over: they stay (nick,
    rooms, place) for resume_window, to be resumed on any node, then end."""
    _forget_node(shared, node)
    deadline = ts + round(shared.limits.resume_window * 1000)
    kept = [m for m in shared.members.values() if m.node == node]
    for member in kept:
        shared.orphans[member.uid] = deadline
    if kept and node != shared.node:
        log.log(
            logging.DEBUG if shared.replaying else logging.INFO,
            "node %s restarts; its %d sessions may resume here",
            node,
            len(kept),
        )


def end_orphans(shared: SharedState, ts: int) -> None:
    """End the handed-over sessions nobody resumed in time (log time ``ts``)."""
    for uid, deadline in list(shared.orphans.items()):
        if deadline <= ts:
            del shared.orphans[uid]
            member = shared.members.get(uid)
            if member is not None:
                end(shared, member, ts)


# -- sessions ------------------------------------------------------------------


def _hello(shared: SharedState, cmd: cmds.Hello, ts: int) -> None:
    uid, nick = cmd.uid, cmd.nick
    member = shared.members.get(uid)
    if member is None:
        member = Remote(shared.limits, uid, cmd.node)
    old = shared.tokens.pop(cmd.resume_hash, None) if cmd.resume_hash else None
    if old is not None and old is not member:
        _adopt(shared, member, old)
    else:
        old = None
        taken = holder(shared, nick)
        if taken is not None:
            if not cmd.random:
                member.close(Code.NICK_TAKEN, _taken(nick, taken))
                member.applied()
                return
            nick = _free_variant(shared, nick)
        take_nick(shared, member, nick)
    member.token_hash = cmd.token_hash
    shared.tokens[cmd.token_hash] = member
    shared.members[uid] = member
    member.welcome(old is not None, cmd.seen)
    member.applied()


def _free_variant(shared: SharedState, nick: str) -> str:
    """A random nick another node took a moment earlier: the same, numbered."""
    n = 2
    while holder(shared, f"{nick}-{n}") is not None:
        n += 1
    return f"{nick}-{n}"


def _taken(nick: str, holder: Member) -> str:
    """Why ``nick`` is refused: taken, or so like a connected nick that people could
    not tell the two apart (the same confusable skeleton, ``names.claim_key``)."""
    if name_key(nick) == name_key(holder.nick):
        return f"the nick {nick} is taken"
    return f"the nick {nick} looks like {holder.nick}, which is taken"


def _adopt(shared: SharedState, new: Member, old: Member) -> None:
    """``new`` resumes ``old``: its nick, rooms, keys and place in each room."""
    shared.members.pop(old.uid, None)
    shared.orphans.pop(old.uid, None)
    shared.stop_waiting(old)
    old.abort("resumed")  # if it still has a connection here, the client knows better
    new.first_uid = old.first_uid  # the same session: its bans follow it
    take_nick(shared, new, old.nick)
    new.rooms, new.secret_rooms = old.rooms, old.secret_rooms
    old.rooms, old.secret_rooms = {}, NO_SECRET_ROOMS
    for channel in [*new.rooms.values(), *new.secret_rooms.values()]:
        channel.replace_member(old, new)
    dms.adopt(shared, new, old)
    if new.node == shared.node:
        shared.stats.resumes += 1
    log.debug("%s resumes %s", new.uid, old.uid)


def holder(shared: SharedState, nick: str) -> Member | None:
    """Who holds ``nick`` or a nick that looks like it (``names.claim_keys``)."""
    for key in claim_keys(nick):
        found = shared.claims.get(key)
        if found is not None:
            return found
    return None


def take_nick(shared: SharedState, member: Member, nick: str) -> None:
    """``member`` is called ``nick`` now: it holds that nick's keys, and no others."""
    _free_nick(shared, member)
    member.nick = nick
    member.nick_key = name_key(nick)
    shared.nicks[member.nick_key] = member
    member.claims = claim_keys(nick)
    for key in member.claims:
        shared.claims[key] = member


def _free_nick(shared: SharedState, member: Member) -> None:
    if shared.nicks.get(member.nick_key) is member:
        del shared.nicks[member.nick_key]
    for key in member.claims:
        if shared.claims.get(key) is member:
            del shared.claims[key]


def end(shared: SharedState, member: Member, ts: int, quit_msg: str | None = None) -> None:
    """A session is over: free its nick and leave its rooms, announcing the quit."""
    if shared.members.get(member.uid) is member:
        del shared.members[member.uid]
    shared.orphans.pop(member.uid, None)
    shared.stop_waiting(member)
    if shared.tokens.get(member.token_hash) is member:
        del shared.tokens[member.token_hash]
    _free_nick(shared, member)
    dms.forget(shared, member)
    for room in list(member.rooms.values()):
        leave_room(shared, member, room, "quit", ts, msg=quit_msg)
    for secret in list(member.secret_rooms.values()):
        leave_secret(shared, member, secret, "quit", ts)


def _end(shared: SharedState, member: Member, ts: int, cmd: cmds.End) -> None:
    end(shared, member, ts, cmd.quit_msg)


def _nick(shared: SharedState, member: Member, ts: int, cmd: cmds.Nick) -> None:
    nick = cmd.nick
    taken = holder(shared, nick)
    if taken is not None and taken is not member:
        raise RequestError(Code.NICK_TAKEN, _taken(nick, taken))
    old = member.nick
    take_nick(shared, member, nick)
    member.send(ev.Ok(id=cmd.request_id))
    if nick != old:
        for room in member.rooms.values():
            room.presence(member, "nick", ts, nick=old, new=nick)


# -- public rooms --------------------------------------------------------------


def _create(shared: SharedState, member: Member, ts: int, cmd: cmds.Create) -> None:
    name = cmd.name
    try:
        check_room(name)
    except InvalidName as exc:
        raise RequestError(Code.ROOM_INVALID, str(exc)) from None
    key = name_key(name)
    if key in shared.rooms:
        raise RequestError(Code.ROOM_EXISTS, f"the room {shared.rooms[key].name} already exists")
    if len(shared.rooms) >= shared.limits.max_rooms:
        raise RequestError(Code.TOO_MANY_ROOMS, "the server holds as many rooms as it may")
    room = shared.new_room(name, key, cmd.topic)
    shared.rooms[key] = room
    _enter(shared, member, room, ts, cmd.request_id, owner=True)


def _join(shared: SharedState, member: Member, ts: int, cmd: cmds.Join) -> None:
    room = shared.find_room(cmd.name)
    if room.key in member.rooms:
        raise RequestError(Code.ALREADY_MEMBER, f"you are already in {room.name}")
    _enter(shared, member, room, ts, cmd.request_id, owner=False)


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


def _enter(shared: SharedState, member: Member, room: Room, ts: int, rid: int, owner: bool) -> None:
    try:
        if not owner:
            moderation.check_entry(member, room)
        check_room_limits(member, len(room.members))
    except RequestError:
        shared.drop_if_empty(room)
        raise
    seq = room.presence(member, "join", ts)
    _seat(room, member, None, owner)
    member.rooms[room.key] = room
    if not member.here:
        return
    budget = member.limits.max_frame - 1024
    members, more = member_list(room, budget)
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


def _leave(shared: SharedState, member: Member, ts: int, cmd: cmds.Leave) -> None:
    leave_room(shared, member, member_room(member, cmd.name), "leave", ts)
    member.send(ev.Ok(id=cmd.request_id))


def leave_room(
    shared: SharedState, member: Member, room: Room, kind: str, ts: int, msg: str | None = None
) -> None:
    room.remove(member)
    member.rooms.pop(room.key, None)
    if not shared.drop_if_empty(room):
        room.presence(member, kind, ts, msg=msg)
        moderation.after_leave(room, member, ts)


def _topic(shared: SharedState, member: Member, ts: int, cmd: cmds.Topic) -> None:
    room = member_room(member, cmd.name)
    moderation.check_topic_owner(member, room)
    room.set_topic(member, cmd.topic, ts)
    member.send(ev.Ok(id=cmd.request_id))


def say(
    shared: SharedState, member: Member, ts: int, rid: int, name: str, text: str, me: bool
) -> None:
    """A message to a public room (on one node, Session.on_say calls this itself)."""
    room = member.rooms.get(name_key(name))
    if room is None:
        raise RequestError(Code.NOT_MEMBER, f"you are not in {name}")
    if room.slow:
        moderation.check_slow(member, room, ts)
    seq = room.say(member, text, me, ts)
    shared.stats.message(member.node, ts)
    member.ok(rid, seq)


# -- secret rooms --------------------------------------------------------------


def _secret_create(shared: SharedState, member: Member, ts: int, cmd: cmds.SecretCreate) -> None:
    room_id = cmd.room_id
    if room_id in shared.secret_rooms:
        raise RequestError(Code.ROOM_EXISTS, "a secret room with this name and passphrase exists")
    if len(shared.secret_rooms) >= shared.limits.max_rooms:
        raise RequestError(Code.TOO_MANY_ROOMS, "the server holds as many rooms as it may")
    room = shared.new_secret_room(room_id, cmd.auth, cmd.owner_key, cmd.owner_tag)
    shared.secret_rooms[room_id] = room
    _enter_secret(shared, member, room, ts, cmd.request_id, cmd.sender, owner=True)


def _secret_join(shared: SharedState, member: Member, ts: int, cmd: cmds.SecretJoin) -> None:
    room_id, sender = cmd.room_id, cmd.sender
    room = shared.secret_rooms.get(room_id)
    # A missing room and a wrong passphrase must look the same.
    if room is None or not verify_join_proof(
        room.auth, room_id, cmd.challenge, shared.pin_bytes, cmd.proof
    ):
        raise RequestError(Code.JOIN_DENIED, "no such room or wrong passphrase")
    if room_id in member.secret_rooms:
        raise RequestError(Code.ALREADY_MEMBER, "you are already in this room")
    if sender in room.members.values():
        # Two members under one key could speak for each other's presence.
        raise RequestError(Code.ALREADY_MEMBER, "that session key is already in this room")
    secret_moderation.check_entry(member, room, sender)
    _enter_secret(shared, member, room, ts, cmd.request_id, sender, owner=False)


def _enter_secret(
    shared: SharedState,
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
        shared.drop_secret_if_empty(room)
        raise
    seq = room.presence(sender, "join", ts)
    _seat(room, member, sender, owner)
    member.enter_secret(room)
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


def _secret_leave(shared: SharedState, member: Member, ts: int, cmd: cmds.SecretLeave) -> None:
    leave_secret(shared, member, secret_room(member, cmd.room_id), "leave", ts)
    member.send(ev.Ok(id=cmd.request_id))


def leave_secret(shared: SharedState, member: Member, room: SecretRoom, kind: str, ts: int) -> None:
    sender = room.members[member]
    secret_moderation.drop_secret(shared, member, room)
    if room.members:
        room.presence(sender, kind, ts)


def _seal(shared: SharedState, member: Member, ts: int, cmd: cmds.Seal) -> None:
    counter, epoch, kind, ct, sig = cmd.counter, cmd.epoch, cmd.kind, cmd.ct, cmd.sig
    room = secret_room(member, cmd.room_id)
    secret_moderation.check_open(room)
    if room.slow:
        sealed = Sealed(room.members[member], counter, kind, epoch, ct, sig)
        secret_moderation.check_slow(member, room, sealed, ts)
    seq = room.relay(member, [counter, epoch, kind, ct, sig], ts)
    if kind in ("msg", "me"):
        shared.stats.message(member.node, ts, sealed=True)
    elif member.node == shared.node:
        shared.stats.announcements += 1  # (hello, here: not messages)
    member.ok(cmd.request_id, seq)


def _say(shared: SharedState, member: Member, ts: int, cmd: cmds.Say) -> None:
    say(shared, member, ts, cmd.request_id, cmd.name, cmd.text, cmd.me)


_on(cmds.End, _end)
_on(cmds.Nick, _nick)
_on(cmds.Create, _create)
_on(cmds.Join, _join)
_on(cmds.Leave, _leave)
_on(cmds.Topic, _topic)
_on(cmds.Say, _say)
_on(cmds.Kick, moderation.kick)
_on(cmds.Op, moderation.op)
_on(cmds.Mode, moderation.mode)
_on(cmds.SecretCreate, _secret_create)
_on(cmds.SecretJoin, _secret_join)
_on(cmds.SecretLeave, _secret_leave)
_on(cmds.Seal, _seal)
_on(cmds.SecretAct, secret_moderation.act)
_on(cmds.DmKey, dms.register)
_on(cmds.Dm, dms.relay)
