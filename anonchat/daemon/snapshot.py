"""The shared state as bytes, so a node that starts late can load it.

Used by the Redis bus (see ``redisbus.py``): one node writes a snapshot
now and then, a starting node loads it and applies the stream from the
point the snapshot was taken.  The snapshot holds exactly what the shared
state holds (``state.py``) -- never an address, never a resume token (only
its hash), never a passphrase -- and every member in it becomes a
:class:`~anonchat.daemon.rooms.Remote` on the loading node.
"""

from __future__ import annotations

from typing import Any

from .. import events as ev
from ..acts import owner_action
from ..names import name_key
from ..wire import pack_value, unpack_value
from . import dms, state
from .rooms import Channel, Member, Remote
from .shared import SharedState

VERSION = 1


def dump(shared: SharedState, taken_at: bytes) -> bytes:
    members = [m for m in shared.members.values() if m.nick]
    rooms = [
        [r.name, r.topic, [m.uid for m in r.members], _channel(r)] for r in shared.rooms.values()
    ]
    secret = [
        [
            r.rid,
            r.auth,
            r.chain.owner,
            r.owner_tag,
            [[m.uid, key] for m, key in r.members.items()],
            _channel(r),
            r.chain.counter,
            sorted(r.chain.banned),
            [g.to_wire() for g in r.grants],
            r.mode.to_wire() if r.mode else None,
            r.closed,
        ]
        for r in shared.secret_rooms.values()
    ]
    body = {
        "v": VERSION,
        "at": taken_at,
        "nodes": shared.nodes,
        "since": shared.alive_since,
        "settings": shared.node_settings,
        "orphans": shared.orphans,
        "members": [
            [
                m.uid,
                m.node,
                m.nick,
                m.token_hash,
                m.first_uid,
                list(m.dm_card) if m.dm_card else None,
                m.dm_seq,
                m.dm_ring.entries() if m.dm_ring else [],
            ]
            for m in members
        ],
        "rooms": rooms,
        "secret": secret,
    }
    return pack_value(body)


def load(shared: SharedState, data: bytes) -> bytes:
    """Replace the shared state's tables with the snapshot's; return where it was taken."""
    body: dict[str, Any] = unpack_value(data)
    if body.get("v") != VERSION:
        raise ValueError(f"snapshot version {body.get('v')!r} is not {VERSION}")
    shared.nodes = dict(body["nodes"])
    shared.alive_since = dict(body.get("since", body["nodes"]))
    shared.node_settings = dict(body.get("settings", {}))
    shared.orphans = dict(body.get("orphans", {}))
    by_uid: dict[str, Member] = {}
    for uid, node, nick, token_hash, *rest in body["members"]:
        member: Member = Remote(shared.limits, uid, node)
        member.first_uid = rest[0] if rest else uid  # (older snapshots had none)
        if len(rest) >= 4:  # direct messages (older snapshots had none)
            card, member.dm_seq, ring = rest[1:4]
            if card:
                member.dm_card = (card[0], card[1], card[2])
                shared.dm_keys[card[0]] = member
            if ring:
                dms.inbox(member).restore(ring)
        member.token_hash = token_hash
        by_uid[uid] = member
        shared.members[uid] = member
        state.take_nick(shared, member, nick)
        if token_hash:
            shared.tokens[token_hash] = member
    for name, topic, uids, channel in body["rooms"]:
        room = shared.new_room(name, name_key(name), topic)
        for uid in uids:
            member = by_uid[uid]
            room.add(member, None)
            member.rooms[room.key] = room
        _load_channel(room, channel, by_uid)
        shared.rooms[room.key] = room
    for rid, auth, owner, tag, keyed, channel, acts, banned, grants, mode, *rest in body["secret"]:
        secret = shared.new_secret_room(rid, auth, owner, tag)
        secret.closed = bool(rest and rest[0])  # (older snapshots had no closed flag)
        for uid, key in keyed:
            member = by_uid[uid]
            secret.add(member, key)
            member.enter_secret(secret)
        _load_channel(secret, channel, by_uid)
        secret.grants = [ev.OwnerAct(**g) for g in grants]
        for grant in secret.grants:
            secret.chain.apply(owner_action(grant))
        secret.chain.counter = acts
        secret.chain.banned = set(banned)
        secret.mode = ev.OwnerAct(**mode) if mode else None
        shared.secret_rooms[rid] = secret
    taken_at: bytes = body["at"]
    return taken_at


def _channel(c: Channel) -> list[Any]:
    """What public and secret rooms share."""
    return [
        c.seq,
        c.locked,
        c.slow,
        c.history,
        [m.uid for m in c.owners],
        sorted(c.banned),
        {m.uid: ts for m, ts in c.last_said.items()},
        c.ring.entries(),
    ]


def _load_channel(c: Channel, data: list[Any], by_uid: dict[str, Member]) -> None:
    c.seq, c.locked, c.slow, c.history, owners, banned, said, ring = data
    c.owners = {by_uid[u] for u in owners}
    c.banned = set(banned)
    c.last_said = {by_uid[u]: ts for u, ts in said.items() if u in by_uid}
    c.ring.restore(ring)
