"""The shared state as bytes, so a node that starts late can load it.

Used by the Redis bus (see ``redisbus.py``): one node writes a snapshot
now and then, a starting node loads it and applies the stream from the
point the snapshot was taken.  The snapshot holds exactly what the shared
state holds (``state.py``) -- never an address, never a resume token (only
its hash), never a passphrase -- and every member in it becomes a
:class:`~anonchat.daemon.rooms.Remote` on the loading node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..names import name_key
from ..wire import pack_value, unpack_value
from .rooms import Member, Remote, Room, SecretRoom

if TYPE_CHECKING:
    from .server import Daemon

VERSION = 1


def dump(daemon: Daemon, taken_at: bytes) -> bytes:
    members = [m for m in daemon.members.values() if m.nick]
    rooms = [
        [
            r.name,
            r.topic,
            r.seq,
            r.locked,
            r.slow,
            r.history,
            [m.uid for m in r.members],
            [m.uid for m in r.owners],
            sorted(r.banned),
            {m.uid: ts for m, ts in r.last_said.items()},
            r.ring.entries(),
        ]
        for r in daemon.rooms.values()
    ]
    secret = [
        [
            r.rid,
            r.auth,
            r.seq,
            [[m.uid, key] for m, key in r.members.items()],
            [m.uid for m in r.owners],
            r.ring.entries(),
        ]
        for r in daemon.secret_rooms.values()
    ]
    body = {
        "v": VERSION,
        "at": taken_at,
        "nodes": daemon.nodes,
        "members": [[m.uid, m.node, m.nick, m.token_hash] for m in members],
        "rooms": rooms,
        "secret": secret,
    }
    return pack_value(body)


def load(daemon: Daemon, data: bytes) -> bytes:
    """Replace the daemon's shared state with the snapshot's; return where it was taken."""
    body: dict[str, Any] = unpack_value(data)
    if body.get("v") != VERSION:
        raise ValueError(f"snapshot version {body.get('v')!r} is not {VERSION}")
    daemon.nodes = dict(body["nodes"])
    by_uid: dict[str, Member] = {}
    for uid, node, nick, token_hash in body["members"]:
        member: Member = Remote(daemon, uid, node)
        member.nick = nick
        member.nick_key = name_key(nick)
        member.token_hash = token_hash
        by_uid[uid] = member
        daemon.members[uid] = member
        daemon.nicks[member.nick_key] = member
        if token_hash:
            daemon.tokens[token_hash] = member
    for name, topic, seq, locked, slow, history, uids, owners, banned, said, ring in body["rooms"]:
        room = Room(name, name_key(name), daemon.new_ring(), topic)
        room.seq, room.locked, room.slow, room.history = seq, locked, slow, history
        room.banned = set(banned)
        for uid in uids:
            member = by_uid[uid]
            room.members[member] = None
            member.rooms[room.key] = room
        room.owners = {by_uid[u] for u in owners}
        room.last_said = {by_uid[u]: ts for u, ts in said.items() if u in by_uid}
        room.ring.restore(ring)
        daemon.rooms[room.key] = room
    for rid, auth, seq, keyed, owners, ring in body["secret"]:
        secret = SecretRoom(rid, auth, daemon.new_ring())
        secret.seq = seq
        for uid, key in keyed:
            member = by_uid[uid]
            secret.members[member] = key
            member.secret_rooms[rid] = secret
        secret.owners = {by_uid[u] for u in owners}
        secret.ring.restore(ring)
        daemon.secret_rooms[rid] = secret
    taken_at: bytes = body["at"]
    return taken_at
