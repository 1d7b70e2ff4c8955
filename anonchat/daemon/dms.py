"""Direct messages in the shared state: DM cards, and relaying sealed bytes.

The daemon never reads a direct message (anonchat/direct.py): it keeps each
session's DM card (two public keys and a signature), hands it out for a nick
or a secret-room member (``dm_lookup``), and relays ``dm_send`` to the
session holding the key it names.  What it learns: who writes to whom, when,
and the padded size (a bucket of 256 to 4096 bytes).

A recipient's direct messages are numbered by its own sequence (``dm.seq``)
and the last ``dm_ring`` are kept, in memory, in its ring: a client that
resumes its session names the last one it received (``seen`` with ``dm``)
and gets those after it, once.  Like everything in ``state.py``, these are
commands every node applies in one order, so a message crosses nodes.
"""

from __future__ import annotations

from .. import events as ev
from ..errors import Code, RequestError
from ..names import name_key
from ..wire import encode_frame
from . import commands as cmds
from .rooms import Member, Ring
from .shared import SharedState


def register(shared: SharedState, member: Member, ts: int, cmd: cmds.DmKey) -> None:
    """``dm_key``: the session's card (proven by the session: Session.on_dm_key).
    One card per session: the same one again changes nothing."""
    sign = cmd.sign
    if member.dm_card is not None and member.dm_card[0] != sign:
        raise RequestError(Code.BAD_KEY, "this session has a DM key already")
    holder = shared.dm_keys.get(sign)
    if holder is not None and holder is not member:
        raise RequestError(Code.BAD_KEY, "that DM key is in use by another session")
    member.dm_card = (sign, cmd.dh, cmd.sig)
    shared.dm_keys[sign] = member
    member.send(ev.Ok(id=cmd.request_id))


def forget(shared: SharedState, member: Member) -> None:
    """The session ended: its key leaves with it (and what was kept for it)."""
    if member.dm_card is not None and shared.dm_keys.get(member.dm_card[0]) is member:
        del shared.dm_keys[member.dm_card[0]]
    member.dm_ring = None


def adopt(shared: SharedState, new: Member, old: Member) -> None:
    """A resumed session keeps its card, its sequence and its ring."""
    new.dm_card, new.dm_seq, new.dm_ring = old.dm_card, old.dm_seq, old.dm_ring
    old.dm_card, old.dm_ring = None, None
    if new.dm_card is not None:
        shared.dm_keys[new.dm_card[0]] = new


def relay(shared: SharedState, member: Member, ts: int, cmd: cmds.Dm) -> None:
    """``dm_send``: number the message in the recipient's sequence, keep it in
    its ring, hand it to its connection if it is on this node, answer ``ok``."""
    if member.dm_card is None:
        raise RequestError(Code.BAD_KEY, "send dm_key before direct messages")
    recipient = shared.dm_keys.get(cmd.to)
    if recipient is None:
        raise RequestError(Code.RECIPIENT_LEFT, "the recipient has left the server")
    recipient.dm_seq += 1
    sign, dh, sig = member.dm_card
    frame = ev.Dm(
        seq=recipient.dm_seq,
        ts=ts,
        nick="" if cmd.hide_nick else member.nick,
        sign=sign,
        dh=dh,
        sig=sig,
        counter=cmd.counter,
        ct=cmd.ct,
    )
    data = encode_frame(frame.to_wire())
    inbox(recipient).add(recipient.dm_seq, True, data)
    recipient.deliver(data)
    if member.node == shared.node:
        shared.stats.direct += 1  # (counted where it was sent, as the others)
    member.send(ev.Ok(id=cmd.request_id))


def inbox(member: Member) -> Ring:
    if member.dm_ring is None:
        limits = member.limits
        member.dm_ring = Ring(limits.dm_ring, limits.dm_ring * (limits.dm_max_bytes + 512))
    return member.dm_ring


def card_of(shared: SharedState, asker: Member, frame: ev.DmLookup) -> ev.DmCard:
    """The answer to ``dm_lookup``, from this node's copy of the shared state."""
    target: Member | None
    if frame.nick is not None:
        # The nick itself, never a look-alike of it (those are claims, not names).
        target = shared.nicks.get(name_key(frame.nick))
        who = frame.nick
    else:
        room = asker.secret_rooms.get(frame.room or b"")
        if room is None:
            raise RequestError(Code.NOT_MEMBER, "you are not in this secret room")
        target = next((m for m, key in room.members.items() if key == frame.member), None)
        who = "that member"
    if target is None:
        raise RequestError(Code.NO_SUCH_NICK, f"nobody here is called {who}")
    if target.dm_card is None:
        raise RequestError(Code.NO_SUCH_NICK, f"{who} cannot receive direct messages")
    sign, dh, sig = target.dm_card
    # A secret-room member is known there by its session key (and a nick of the
    # room's own, maybe): its public nick is not told.
    nick = target.nick if frame.nick is not None else ""
    return ev.DmCard(id=frame.id, nick=nick, sign=sign, dh=dh, sig=sig)
