"""/secret rotate: removing someone from a secret room for real (issue 20, part 3).

The owner closes the room (a signed ``close``), makes a fresh room of the same
name with a new passphrase, and invites each remaining member over direct
messages; their clients follow.  A banned member keeps the old passphrase and
learns nothing of the new room."""

from __future__ import annotations

import asyncio
from typing import TypeVar

import pytest

from anonchat import events as ev
from anonchat.client import Client
from anonchat.daemon import Daemon
from anonchat.dm import DirectMessage, DmNotice, Invite
from anonchat.errors import Code, RequestError
from anonchat.secret import SecretMessage, SecretNotice

from .conftest import DaemonFactory
from .helpers import dial

E = TypeVar("E")
ROOM = "den"
PASSPHRASE = "unkempt-sherry-maroon-pebble-mousy-ravage"


async def in_the_room(daemon: Daemon, *nicks: str) -> list[Client]:
    """Clients of ``nicks`` in the secret room: the first made it, the others joined."""
    people = [await dial(daemon, n) for n in nicks]
    await people[0].create_secret(ROOM, PASSPHRASE)
    for person in people[1:]:
        await person.join_secret(ROOM, PASSPHRASE)
    return people


async def notice(client: Client, kind: str, timeout: float = 15.0) -> SecretNotice:
    async with asyncio.timeout(timeout):
        async for event in client.events():
            if isinstance(event, SecretNotice) and event.kind == kind:
                return event
    raise AssertionError(f"closed before a {kind} notice")


async def said(client: Client, text: str) -> SecretMessage:
    async with asyncio.timeout(10):
        async for event in client.events():
            if isinstance(event, SecretMessage) and event.text == text:
                return event
    raise AssertionError(f"closed before {text!r}")


async def test_rotate_leaves_the_banned_member_behind(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon()
    alice, bob, troll = await in_the_room(daemon, "alice", "bob", "troll")
    channel = alice.secret_channel(ROOM)
    async with asyncio.timeout(10):
        while len([n for n in channel.nicks.values() if n]) < 3:
            await asyncio.sleep(0.01)
    old = channel.rid
    await alice.secret_kick(ROOM, "troll", ban=True)
    await notice(troll, "removed")
    troll.events_nowait()

    rotated = await alice.rotate_secret(ROOM)
    assert rotated.passphrase != PASSPHRASE
    assert [m.split("#")[0] for m in rotated.moved] == ["bob"]
    assert any("banned" in who for who in rotated.left)
    moved = await notice(bob, "rotated")
    assert "alice#" in moved.text and "banned" in moved.text
    new = bob.secret_channel(ROOM).rid
    assert new != old and new == alice.secret_channel(ROOM).rid
    await alice.say_secret(ROOM, "only the two of us now")
    assert (await said(bob, "only the two of us now")).room == ROOM
    # The old room was closed, then everyone left it and it is gone: the old
    # passphrase leads nowhere (a room made again with it is empty).
    assert old not in daemon.secret_rooms
    with pytest.raises(RequestError) as gone:
        await troll.join_secret(ROOM, PASSPHRASE)
    assert gone.value.code == Code.JOIN_DENIED
    carol = await dial(daemon, "carol")
    await carol.create_secret(ROOM, PASSPHRASE)
    assert carol.secret_channel(ROOM).rid == old and len(daemon.secret_rooms[old].members) == 1
    # The banned session learned nothing of the new room: no invitation, no key.
    await troll.ping()
    leaked = [e for e in troll.events_nowait() if isinstance(e, DirectMessage | DmNotice)]
    assert not leaked and new not in troll._secret_by_id
    assert all(m is not daemon.nicks["troll"] for m in daemon.secret_rooms[new].members)
    for client in (alice, bob, troll, carol):
        await client.close()


async def test_a_closed_room_takes_no_new_message(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon()
    alice, bob = await in_the_room(daemon, "alice", "bob")
    await alice._owner_act(alice.secret_channel(ROOM), "close")
    closed = await notice(bob, "close")
    assert "closed this room" in closed.text
    with pytest.raises(RequestError) as exc:
        await bob.say_secret(ROOM, "anyone?")
    assert exc.value.code == Code.ROOM_CLOSED
    # Only an owner may close a room.
    with pytest.raises(RequestError) as not_owner:
        await bob._owner_act(bob.secret_channel(ROOM), "close")
    assert not_owner.value.code == Code.NOT_OWNER
    await alice.close()
    await bob.close()


async def test_an_invitation_not_signed_by_an_owner_is_refused(
    make_daemon: DaemonFactory,
) -> None:
    """A member who is no owner sends a rotation invitation: the others refuse it
    with a notice and stay where they are."""
    daemon = await make_daemon()
    alice, bob, mallory = await in_the_room(daemon, "alice", "bob", "mallory")
    channel = mallory.secret_channel(ROOM)
    bob_key = bob.secret_channel(ROOM).identity.public
    async with asyncio.timeout(10):
        while bob_key not in channel.nicks:
            await asyncio.sleep(0.01)
    conversation = await mallory._member_card(channel, bob_key)
    keys = await mallory._room_keys(ROOM, "a-trap-of-mallorys-own-making")
    from anonchat.direct import rotation_message

    message = rotation_message(channel.rid, keys.room_id, bob_key, mallory.dms.identity.sign)
    invite = Invite(
        ROOM, "a-trap-of-mallorys-own-making", channel.rid, keys.room_id,
        channel.identity.public, channel.identity.sign(message), (),
    )  # fmt: skip
    await mallory._send_dm_body(conversation, invite.body())
    forged = await notice(bob, "forged")
    assert "not signed by an owner" in forged.text
    assert bob.secret_channel(ROOM).rid == channel.rid  # still in the room
    for client in (alice, bob, mallory):
        await client.close()


def test_an_invitation_is_parsed_strictly() -> None:
    good = Invite("den", "p", bytes(32), bytes(32), bytes(32), bytes(64), ("troll#abcd",))
    assert Invite.parse(good.body()) == good
    for bad in (good.body()[:-1], "\x02{}", '\x02{"room": 1}', "\x02[]"):
        with pytest.raises(ValueError):
            Invite.parse(bad)
    assert ev.OwnerAct(kind="close", counter=1, actor=bytes(32), sig=bytes(64)).kind == "close"
