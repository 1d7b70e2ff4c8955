"""Owners of secret rooms, over real sockets: an owner key the passphrase vouches
for, actions signed by it (or by a key it granted), checked and enforced by the
daemon and checked again by every member."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from anonchat import events as ev
from anonchat.acts import owner_act
from anonchat.client import Client
from anonchat.crypto import Identity, derive_room_keys, key_proof, sign_owner_action
from anonchat.daemon import Daemon
from anonchat.errors import Code, RequestError
from anonchat.frontend import LOCK, MODE_USAGE
from anonchat.frontend.commands import Commands
from anonchat.linemode import LineFrontend, format_event
from anonchat.room import secret_key
from anonchat.secret import SecretChannel, SecretMessage, SecretNotice, label

from .conftest import ClientFactory, DaemonFactory
from .helpers import dial, ident, lose_connection, quiet, rewrite

ROOM = "Night-Owls"
PASSPHRASE = "unkempt-sherry-maroon-pebble-mousy-ravage"
OTHER = "Day-Larks"


async def refused(coro: object) -> str:
    with pytest.raises(RequestError) as info:
        await coro  # type: ignore[misc]
    return info.value.code


async def notices(client: Client, count: int, timeout: float = 5.0) -> list[SecretNotice]:
    """The next ``count`` secret-room notices about owners (kick, ban, op, mode, ...)."""
    kinds = {"kick", "ban", "op", "mode", "removed", "forged"}
    out: list[SecretNotice] = []
    async with asyncio.timeout(timeout):
        async for event in client.events():
            if isinstance(event, SecretNotice) and event.kind in kinds:
                out.append(event)
                if len(out) == count:
                    return out
    raise AssertionError(f"closed after {len(out)} of {count} notices")


def me(client: Client) -> str:
    return label(client.nick, ident(client).public)


async def settled(*clients: Client) -> None:
    """Everyone has seen everyone's announcements (so nicks resolve)."""
    for client in clients:
        await quiet(client, 0.1)


async def room_of(owner: Client, *members: Client) -> None:
    await owner.create_secret(ROOM, PASSPHRASE)
    for member in members:
        await member.join_secret(ROOM, PASSPHRASE)
    await settled(owner, *members)


async def test_the_creator_owns_the_room_and_others_are_refused(connect: ClientFactory) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    await room_of(alice, bob)
    # Every member verified the creator's grant from the owner key.
    assert alice.secret_channel(ROOM).owners() == [me(alice)]
    assert bob.secret_channel(ROOM).owners() == [me(alice)]
    assert await refused(bob.secret_kick(ROOM, "alice")) == Code.NOT_OWNER
    assert await refused(bob.secret_kick(ROOM, "alice", ban=True)) == Code.NOT_OWNER
    assert await refused(bob.secret_op(ROOM, "bob")) == Code.NOT_OWNER
    assert await refused(bob.secret_mode(ROOM, locked=True)) == Code.NOT_OWNER
    assert await refused(alice.secret_kick(ROOM, "alice")) == Code.NO_SUCH_NICK  # not yourself
    assert await refused(alice.secret_kick(ROOM, "nobody")) == Code.NO_SUCH_NICK
    assert await quiet(bob) == []  # nothing happened


async def test_kick_is_verified_and_shown_with_both_labels(connect: ClientFactory) -> None:
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    await room_of(alice, bob, carol)
    await alice.secret_kick(ROOM, f"carol#{ident(carol).fingerprint}")
    expected = f"{me(carol)} was kicked by {me(alice)}"
    for client in (alice, bob):
        (notice,) = await notices(client, 1)
        assert (notice.kind, notice.text) == ("kick", expected)
    (notice,) = await notices(carol, 1)
    assert (notice.kind, notice.text) == ("removed", f"you were kicked by {me(alice)}")
    assert ROOM.casefold() not in carol.secret
    assert await refused(carol.say_secret(ROOM, "still here?")) == Code.NOT_MEMBER
    await alice.say_secret(ROOM, "carol cannot read this")
    assert not [e for e in await quiet(carol) if isinstance(e, SecretMessage)]
    await carol.join_secret(ROOM, PASSPHRASE)  # a kick is not a ban


async def test_ban_is_by_session_and_key_for_the_rooms_lifetime(
    connect: ClientFactory, daemon: Daemon
) -> None:
    alice, troll = await connect("alice"), await connect("troll")
    await room_of(alice, troll)
    await alice.secret_kick(ROOM, "troll", ban=True)
    (notice,) = await notices(alice, 1)
    assert notice.text == f"{me(troll)} was banned by {me(alice)}"
    assert await refused(troll.join_secret(ROOM, PASSPHRASE)) == Code.BANNED
    # The same session with a fresh session key: still the banned session.
    keys = await asyncio.to_thread(derive_room_keys, ROOM, PASSPHRASE, troll.pin_bytes)
    fresh_key = Identity.generate()
    fresh = ev.SecretJoin(
        id=troll._next_id(),
        room=keys.room_id,
        proof=keys.join_proof(troll.hello.challenge, troll.pin_bytes),
        sender=fresh_key.public,
        key_proof=key_proof(fresh_key, keys.room_id, troll.hello.challenge, troll.pin_bytes),
    )
    assert await refused(troll._request(fresh, ev.SecretJoined)) == Code.BANNED
    # The same session key on a new connection (the client keeps it across reconnects).
    await troll.close()
    again = await Client.connect("127.0.0.1", daemon.port, pin=daemon.pin, resume=troll)
    assert not again.resumed
    assert again.secret_identity(keys.room_id) == troll.secret_identity(keys.room_id)
    assert await refused(again.join_secret(ROOM, PASSPHRASE)) == Code.BANNED
    await again.close()
    # A new session with a new key is a new person: the daemon keeps no addresses.
    newcomer = await connect("troll")
    await newcomer.join_secret(ROOM, PASSPHRASE)


async def test_op_chains_and_newcomers_verify_the_grants(connect: ClientFactory) -> None:
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    await room_of(alice, bob, carol)
    await alice.secret_op(ROOM, "bob")
    for client in (alice, bob, carol):
        (notice,) = await notices(client, 1)
        assert (notice.kind, notice.text) == ("op", f"{me(bob)} is now an owner (by {me(alice)})")
    await bob.secret_op(ROOM, "carol")  # granted rights can grant in turn
    await bob.secret_kick(ROOM, "alice")
    await notices(carol, 1)
    (notice,) = await notices(carol, 1)
    assert notice.text == f"{me(alice)} was kicked by {me(bob)}"
    dave = await connect("dave")
    await dave.join_secret(ROOM, PASSPHRASE)
    await settled(dave, bob, carol)
    channel = dave.secret_channel(ROOM)
    assert channel.owner_trusted
    assert channel.owners() == sorted([me(bob), me(carol)])  # alice left, her grant stands
    assert channel.is_owner(ident(alice).public)
    assert await refused(dave.secret_kick(ROOM, "bob")) == Code.NOT_OWNER


async def test_lock_slow_mode_and_history(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(history=5)
    owner, member = await dial(daemon, "owner"), await dial(daemon, "member")
    await room_of(owner, member)
    await owner.say_secret(ROOM, "before")
    await owner.secret_mode(ROOM, locked=True)
    (notice,) = await notices(member, 1)
    assert notice.text == (f"{me(owner)} set the modes: locked, no slow mode, history on join")
    late = await dial(daemon, "late")
    assert await refused(late.join_secret(ROOM, PASSPHRASE)) == Code.ROOM_LOCKED
    await owner.secret_mode(ROOM, locked=False, history=False)
    await late.join_secret(ROOM, PASSPHRASE)
    assert [e for e in await quiet(late) if isinstance(e, SecretMessage)] == []  # no history
    channel = late.secret_channel(ROOM)  # the newcomer verified the signed mode
    assert (channel.locked, channel.slow, channel.history) == (False, 0, False)
    await owner.secret_mode(ROOM, slow=1)
    await member.say_secret(ROOM, "one")
    assert await refused(member.say_secret(ROOM, "two")) == Code.SLOW_MODE
    await owner.say_secret(ROOM, "owners are not slowed")
    await owner.say_secret(ROOM, "at all")
    await asyncio.sleep(1.05)
    await member.say_secret(ROOM, "two, a second later")
    assert await refused(owner.secret_mode(ROOM, slow=3601)) == Code.BAD_MODE
    for c in (owner, member, late):
        await c.close()


async def test_owner_rights_survive_a_lost_connection(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon()
    alice, bob = await dial(daemon, "alice"), await dial(daemon, "bob")
    await room_of(alice, bob)
    await lose_connection(alice)  # the network drops alice
    again = await Client.connect("127.0.0.1", daemon.port, pin=daemon.pin, resume=alice)
    assert again.resumed
    await again.secret_kick(ROOM, "bob")
    (notice,) = await notices(bob, 1)
    assert notice.kind == "removed"
    for c in (again, bob):
        await c.close()


async def test_owner_of_a_recreated_room_is_its_new_creator(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(resume_window=0)
    alice, bob = await dial(daemon, "alice"), await dial(daemon, "bob")
    await room_of(alice, bob)
    first_owner = alice.secret_channel(ROOM).chain
    assert first_owner is not None
    await alice.leave_secret(ROOM)
    await bob.close()  # the daemon forgets the room
    again = await Client.connect("127.0.0.1", daemon.port, pin=daemon.pin, nick="bob", resume=bob)
    result = await again.rejoin(bob)  # recreates it, with a fresh owner key
    assert result.secret == [ROOM]
    channel = again.secret_channel(ROOM)
    assert channel.holds_owner_key and channel.chain is not None
    assert channel.chain.owner != first_owner.owner
    await alice.join_secret(ROOM, PASSPHRASE)
    await settled(alice, again)
    assert alice.secret_channel(ROOM).owners() == [me(again)]
    for c in (alice, again):
        await c.close()


# -- forgeries the daemon refuses -------------------------------------------------


def act_for(client: Client, act: ev.OwnerAct, room: str = ROOM) -> ev.SecretAct:
    return ev.SecretAct(id=client._next_id(), room=client.secret_channel(room).rid, act=act)


async def test_forged_owner_actions_are_refused_by_the_daemon(connect: ClientFactory) -> None:
    alice, bob, mallory = await connect("alice"), await connect("bob"), await connect("mallory")
    await room_of(alice, bob, mallory)
    await alice.create_secret(OTHER, PASSPHRASE)
    await bob.join_secret(OTHER, PASSPHRASE)
    await mallory.join_secret(OTHER, PASSPHRASE)
    await settled(alice, bob, mallory)
    channel = mallory.secret_channel(ROOM)
    assert channel.chain is not None
    bob_key = ident(bob, ROOM).public
    # Signed with a key that was never granted (mallory's own).
    own = channel.sign_act("kick", bob_key)
    assert await refused(mallory._request(act_for(mallory, own), ev.Ok)) == Code.NOT_OWNER
    # Claiming to be alice, signed by mallory: the signature does not verify.
    claimed = replace(own, actor=ident(alice, ROOM).public)
    assert await refused(mallory._request(act_for(mallory, claimed), ev.Ok)) == Code.BAD_ACTION
    # Claiming to be the owner key, with a signature by another key.
    chain = channel.chain
    fake = owner_act(
        sign_owner_action(Identity.generate(), channel.rid, chain.owner, "kick", 2, bob_key)
    )
    fake = replace(fake, actor=chain.owner)
    assert await refused(mallory._request(act_for(mallory, fake), ev.Ok)) == Code.BAD_ACTION
    # A real action of alice's, replayed: its number is spent.
    await alice.secret_mode(ROOM, slow=5)
    assert [n.kind for n in await notices(mallory, 1)] == ["mode"]
    first = alice.secret_channel(ROOM).sign_act("mode", slow=0)
    await alice._request(act_for(alice, first), ev.Ok)
    await notices(mallory, 1)
    assert await refused(mallory._request(act_for(mallory, first), ev.Ok)) == Code.BAD_ACTION
    # Alice's signature for the next action in ROOM, sent into OTHER (same number there).
    other = alice.secret_channel(OTHER)
    assert other.chain is not None and chain.counter == 3
    while other.chain.counter < chain.counter:  # bring OTHER to the same number
        await alice.secret_mode(OTHER, history=True)
    for_room = alice.secret_channel(ROOM).sign_act("kick", bob_key)
    assert for_room.counter == other.chain.counter + 1
    moved = ev.SecretAct(id=alice._next_id(), room=other.rid, act=for_room)
    # Alice's key in ROOM is not hers in OTHER (one session key per room): no owner there.
    assert await refused(alice._request(moved, ev.Ok)) == Code.NOT_OWNER
    assert ident(bob, OTHER).public in bob.secret_channel(OTHER).nicks  # nobody was kicked
    assert ROOM.casefold() in bob.secret and OTHER.casefold() in bob.secret


# -- forgeries a member refuses -------------------------------------------------------


def relayed(act: ev.OwnerAct, room: bytes, seq: int = 50) -> ev.SecretActed:
    return ev.SecretActed(room=room, seq=seq, ts=1, act=act)


async def test_a_member_rejects_relayed_actions_that_do_not_verify(
    connect: ClientFactory,
) -> None:
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    await room_of(alice, bob, carol)
    channel = bob.secret_channel(ROOM)
    assert channel.chain is not None
    owner, rid, carol_key = channel.chain.owner, channel.rid, ident(carol).public
    counter = channel.chain.counter + 1
    daemon_key = Identity.generate()  # what a hostile daemon would sign with
    forged = {
        "a key with no owner rights": owner_act(
            sign_owner_action(daemon_key, rid, owner, "kick", counter, carol_key)
        ),
        "a signature that is not the actor's": replace(
            owner_act(sign_owner_action(daemon_key, rid, owner, "kick", counter, carol_key)),
            actor=ident(alice).public,
        ),
        "alice's signature for another room": owner_act(
            sign_owner_action(ident(alice), bytes(32), owner, "kick", counter, carol_key)
        ),
        "a changed target": replace(
            alice.secret_channel(ROOM).sign_act("kick", carol_key), target=ident(alice).public
        ),
        "a changed number": replace(
            alice.secret_channel(ROOM).sign_act("kick", carol_key), counter=counter + 1
        ),
        "a replay of alice's grant": owner_act(channel.chain.granted[ident(alice).public]),
    }
    for what, act in forged.items():
        events, removed = channel.acted(relayed(act, rid))
        assert not removed, what
        assert [e.kind for e in events] == ["forged"], what
        assert events[0].text.startswith("ignored an owner action the server relayed"), what
    assert channel.chain.counter == counter - 1  # nothing was accepted
    # Injected into the real client as if the daemon had sent it: flagged, not shown as alice's.
    bob._dispatch(relayed(forged["a key with no owner rights"], rid))
    (notice,) = await notices(bob, 1)
    assert notice.kind == "forged" and "not an owner" in notice.text
    # A forged kick of ourselves: the daemon removed us, and we say it was not an owner.
    me_key = ident(bob).public
    fake = owner_act(sign_owner_action(daemon_key, rid, owner, "ban", counter, me_key))
    events, removed = channel.acted(relayed(fake, rid))
    assert removed and events[0].kind == "removed"
    assert "does not verify" in events[0].text
    # The genuine action still verifies afterwards.
    good = alice.secret_channel(ROOM).sign_act("kick", carol_key)
    events, _ = carol.secret_channel(ROOM).acted(relayed(good, rid))
    assert [e.kind for e in events] == ["removed"]
    assert events[0].text == f"you were kicked by {me(alice)}"


async def test_a_substituted_owner_key_is_detected_by_the_joiner(
    connect: ClientFactory,
) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    await alice.create_secret(ROOM, PASSPHRASE)
    channel = alice.secret_channel(ROOM)
    assert channel.chain is not None and channel.owner_trusted
    keys = channel.keys
    real = ev.SecretJoined(
        id=1,
        room=keys.room_id,
        seq=2,
        members=[],
        owner_key=channel.chain.owner,
        owner_tag=keys.owner_tag(channel.chain.owner),
    )
    daemon_key = Identity.generate()
    cases = {
        "the daemon's own key, with the real tag": replace(real, owner_key=daemon_key.public),
        "the daemon's own key, with a made-up tag": replace(
            real, owner_key=daemon_key.public, owner_tag=bytes(32)
        ),
        "a tag from another room": replace(
            real,
            owner_tag=derive_room_keys(OTHER, PASSPHRASE, bytes(32)).owner_tag(channel.chain.owner),
        ),
    }
    for what, frame in cases.items():
        joiner = SecretChannel.open_room(ROOM, keys, Identity.generate())
        (warning,) = joiner.joined(frame)
        assert warning.kind == "forged" and "does not vouch" in warning.text, what
        assert not joiner.owner_trusted, what
        # ...and then nothing the substituted key signs is believed.
        act = owner_act(
            sign_owner_action(daemon_key, keys.room_id, frame.owner_key, "mode", 1, locked=True)
        )
        events, _ = joiner.acted(relayed(act, keys.room_id))
        assert [e.kind for e in events] == ["forged"], what
        assert not joiner.locked
    honest = SecretChannel.open_room(ROOM, keys, Identity.generate())
    assert honest.joined(real) == [] and honest.owner_trusted
    # End to end: a creator whose tag does not match (what the daemon would hand out
    # if it swapped the key) makes every joiner warn.
    mallory = await connect("mallory")
    keys2 = await asyncio.to_thread(derive_room_keys, OTHER, PASSPHRASE, mallory.pin_bytes)
    create = ev.SecretCreate(
        id=mallory._next_id(),
        room=keys2.room_id,
        auth=keys2.auth_public,
        proof=keys2.join_proof(mallory.hello.challenge, mallory.pin_bytes),
        sender=mallory.secret_identity(keys2.room_id).public,
        key_proof=key_proof(
            mallory.secret_identity(keys2.room_id),
            keys2.room_id,
            mallory.hello.challenge,
            mallory.pin_bytes,
        ),
        owner_key=daemon_key.public,
        owner_tag=keys2.owner_tag(Identity.generate().public),
    )
    await mallory._request(create, ev.SecretJoined)
    await bob.join_secret(OTHER, PASSPHRASE)
    (warning,) = await notices(bob, 1)
    assert warning.kind == "forged" and "does not vouch" in warning.text
    assert not bob.secret_channel(OTHER).owner_trusted


async def test_a_member_drops_messages_of_a_banned_key(connect: ClientFactory) -> None:
    alice, bob, troll = await connect("alice"), await connect("bob"), await connect("troll")
    await room_of(alice, bob, troll)
    channel = bob.secret_channel(ROOM)
    troll_channel = troll.secret_channel(ROOM)
    await alice.secret_kick(ROOM, "troll", ban=True)
    await notices(bob, 1)
    # A daemon that let the banned key back in: its messages are not shown.
    seal = troll_channel.seal("troll", "I'm back", "msg")
    frame = ev.Sealed(
        room=channel.rid,
        seq=99,
        ts=1,
        sender=ident(troll).public,
        counter=seal.counter,
        epoch=seal.epoch,
        kind=seal.kind,
        ct=seal.ct,
        sig=seal.sig,
    )
    events, _ = channel.receive(frame)
    assert [e.kind for e in events if isinstance(e, SecretNotice)] == ["dropped"]
    assert "banned" in events[0].text


# -- the line mode ---------------------------------------------------------------------


async def test_line_mode_moderates_a_secret_room(connect: ClientFactory) -> None:
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    out: list[str] = []

    async def ask(prompt: str) -> str:
        return PASSPHRASE

    session = Commands(alice, LineFrontend(out.append, ask))
    await session.line(f"/secret create {ROOM}")
    await bob.join_secret(ROOM, PASSPHRASE)
    await carol.join_secret(ROOM, PASSPHRASE)
    await settled(alice, bob, carol)
    bobs_view = LineFrontend(out.append, ask)
    bobs_view.current = secret_key(ROOM)
    bobs = Commands(bob, bobs_view)
    await bobs.line("/kick alice")
    assert out[-1].endswith("error: only an owner of this room may do that (not_owner)")
    await session.line("/op bob")
    await session.line("/mode slow 10")
    await session.line("/kick carol spamming")
    assert any("the reason is not sent in a secret room" in line for line in out)
    await session.line("/who")
    assert out[-1].endswith(
        f"owners (checked by signature): {', '.join(sorted([me(alice), me(bob)]))}"
    )
    await session.line("/mode sideways")
    assert out[-1].endswith(MODE_USAGE)
    shown = [format_event(n) or "" for n in await notices(bob, 3)]
    assert shown[0].endswith(f"-!- {me(bob)} is now an owner (by {me(alice)})")
    assert shown[1].endswith(
        f"-!- {me(alice)} set the modes: open to newcomers, slow mode 10 s, history on join"
    )
    assert shown[2].endswith(f"-!- {me(carol)} was kicked by {me(alice)}")
    assert LOCK in shown[2]


async def test_an_owners_key_claimed_by_someone_else_gets_no_privilege(
    make_daemon: DaemonFactory,
) -> None:
    """Naming an owner's session key without holding it is refused at the door
    (``key_proof``), and an owner returning is not let into a locked room."""
    daemon = await make_daemon()
    alice, bob, mallory = [await dial(daemon, n) for n in ("alice", "bob", "mallory")]
    await room_of(alice, bob)
    await alice.secret_op(ROOM, "bob")
    bob_key = ident(bob).public
    await bob.leave_secret(ROOM)
    await alice.secret_mode(ROOM, locked=True, slow=60)
    assert await refused(bob.join_secret(ROOM, PASSPHRASE)) == Code.ROOM_LOCKED  # owners too
    await alice.secret_mode(ROOM, locked=False)
    keys = await asyncio.to_thread(derive_room_keys, ROOM, PASSPHRASE, mallory.pin_bytes)
    challenge, pin = mallory.hello.challenge, mallory.pin_bytes
    for proof in (
        # her key, not bob's
        key_proof(mallory.secret_identity(keys.room_id), keys.room_id, challenge, pin),
        bytes(64),
    ):
        join = ev.SecretJoin(
            id=mallory._next_id(),
            room=keys.room_id,
            proof=keys.join_proof(challenge, pin),
            sender=bob_key,  # bob's key, granted owner rights; mallory cannot sign with it
            key_proof=proof,
        )
        assert await refused(mallory._request(join, ev.SecretJoined)) == Code.BAD_PROOF
    # The real owner, signing with her own key, is not slowed.
    await alice.say_secret(ROOM, "one")
    await alice.say_secret(ROOM, "two")
    for c in (alice, bob, mallory):
        await c.close()


# -- keys of small order (audit hole 1) -------------------------------------------------

IDENTITY_POINT = bytes([1]) + bytes(31)  # with it, R = identity and S = 0 sign anything
UNIVERSAL_SIG = IDENTITY_POINT + bytes(32)
SMALL_KEYS = [
    IDENTITY_POINT,
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes(32),
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    bytes.fromhex("0100000000000000000000000000000000000000000000000000000000000080"),
]


async def test_the_daemon_refuses_keys_of_small_order(make_daemon: DaemonFactory) -> None:
    """Nobody enters under, registers as owner, or names as target a key nobody holds."""
    daemon = await make_daemon(join_burst=30)
    alice, mallory = await dial(daemon, "alice"), await dial(daemon, "mallory")
    await room_of(alice)
    keys = await asyncio.to_thread(derive_room_keys, ROOM, PASSPHRASE, mallory.pin_bytes)
    others = await asyncio.to_thread(derive_room_keys, OTHER, PASSPHRASE, mallory.pin_bytes)
    challenge, pin = mallory.hello.challenge, mallory.pin_bytes
    for bad in SMALL_KEYS:
        join = ev.SecretJoin(
            id=mallory._next_id(),
            room=keys.room_id,
            proof=keys.join_proof(challenge, pin),
            sender=bad,
            key_proof=UNIVERSAL_SIG,
        )
        assert await refused(mallory._request(join, ev.SecretJoined)) == Code.BAD_KEY
        real = mallory.secret_identity(others.room_id)
        create = ev.SecretCreate(
            id=mallory._next_id(),
            room=others.room_id,
            auth=others.auth_public,
            proof=others.join_proof(challenge, pin),
            sender=real.public,
            key_proof=key_proof(real, others.room_id, challenge, pin),
            owner_key=bad,  # a passphrase holder can make the tag for any key
            owner_tag=others.owner_tag(bad),
        )
        assert await refused(mallory._request(create, ev.SecretJoined)) == Code.BAD_KEY
        act = replace(alice.secret_channel(ROOM).sign_act("op", ident(alice).public), target=bad)
        assert await refused(alice._request(act_for(alice, act), ev.Ok)) == Code.BAD_KEY
    await mallory.join_secret(ROOM, PASSPHRASE)  # with a real key, mallory gets in


async def test_members_refuse_keys_of_small_order(connect: ClientFactory) -> None:
    """What a hostile daemon (or an insider it helps) could relay with a key nobody holds."""
    alice, bob = await connect("alice"), await connect("bob")
    await room_of(alice, bob)
    channel = bob.secret_channel(ROOM)
    keys, rid = channel.keys, channel.rid
    assert channel.chain is not None
    # A member whose key is the identity: every signature "verifies" in the library.
    honest = channel.seal("bob", "hi", "msg")
    forged = ev.Sealed(
        room=rid, seq=90, ts=1, sender=IDENTITY_POINT, counter=1, epoch=0, kind="msg",
        ct=honest.ct, sig=UNIVERSAL_SIG,
    )  # fmt: skip
    events, _ = channel.receive(forged)  # live: not a member (nobody can enter with it)
    assert [e.kind for e in events if isinstance(e, SecretNotice)] == ["dropped"]
    assert "not a member" in events[0].text
    events, _ = channel.receive(replace(forged, seq=1))  # as history: the key is refused
    assert [e.kind for e in events if isinstance(e, SecretNotice)] == ["dropped"]
    assert "not a valid Ed25519 public key" in events[0].text
    channel.presence(ev.SecretPresence(room=rid, seq=91, ts=1, kind="join", sender=bytes(32)))
    assert bytes(32) not in channel.nicks
    # An owner action "signed" by the identity, as actor or as a granted key.
    for act in (
        ev.OwnerAct(kind="mode", counter=channel.chain.counter + 1, actor=IDENTITY_POINT,
                    sig=UNIVERSAL_SIG, locked=True, slow=0, history=True),
        ev.OwnerAct(kind="op", counter=channel.chain.counter + 1, actor=IDENTITY_POINT,
                    sig=UNIVERSAL_SIG, target=IDENTITY_POINT),
    ):  # fmt: skip
        acted, removed = channel.acted(relayed(act, rid))
        assert [e.kind for e in acted] == ["forged"] and not removed
    assert not channel.locked
    # A room whose owner key is the identity, with a tag a passphrase holder made.
    joiner = SecretChannel.open_room(ROOM, keys, Identity.generate())
    frame = ev.SecretJoined(
        id=1, room=rid, seq=2, members=[], owner_key=IDENTITY_POINT,
        owner_tag=keys.owner_tag(IDENTITY_POINT),
    )  # fmt: skip
    (warning,) = joiner.joined(frame)
    assert warning.kind == "forged" and "not a valid public key" in warning.text
    mode = ev.OwnerAct(kind="mode", counter=1, actor=IDENTITY_POINT, sig=UNIVERSAL_SIG,
                       locked=True, slow=0, history=True)  # fmt: skip
    notices_, _ = joiner.acted(relayed(mode, rid))
    assert [e.kind for e in notices_] == ["forged"] and not joiner.locked


# -- owner rights taken back (audit hole 6) ----------------------------------------------


async def test_an_absent_owner_can_be_banned_and_a_signature_used_only_by_its_signer(
    connect: ClientFactory,
) -> None:
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    await room_of(alice, bob, carol)
    await alice.secret_op(ROOM, "bob")
    bob_key = ident(bob, ROOM)
    await notices(carol, 1)
    # An action bob signed, that carol (who is no owner) submits: refused, though
    # it verifies: only the session whose key signed it may use it.
    signed = bob.secret_channel(ROOM).sign_act("mode", locked=True)
    assert await refused(carol._request(act_for(carol, signed), ev.Ok)) == Code.NOT_OWNER
    # Bob leaves, keeping owner rights: alice takes them back by banning his key.
    await bob.leave_secret(ROOM)
    await quiet(alice, 0.1)
    assert await refused(alice.secret_kick(ROOM, bob_key.public)) == Code.NO_SUCH_NICK
    await alice.secret_kick(ROOM, f"#{bob_key.fingerprint}", ban=True)
    (notice,) = await notices(carol, 1)
    assert notice.kind == "ban" and f"#{bob_key.fingerprint} was banned" in notice.text
    channel = carol.secret_channel(ROOM)
    assert channel.chain is not None and not channel.chain.may_act(bob_key.public)
    # What his key signs is worth nothing now, whoever submits it.
    fresh = owner_act(
        sign_owner_action(
            bob_key, channel.rid, channel.chain.owner, "mode", channel.chain.counter + 1,
            locked=True,
        )
    )  # fmt: skip
    assert await refused(alice._request(act_for(alice, fresh), ev.Ok)) == Code.NOT_OWNER
    # He cannot come back under that key either.
    assert await refused(bob.join_secret(ROOM, PASSPHRASE)) == Code.BANNED


async def test_spent_owner_actions_stay_spent_for_a_returning_member(
    connect: ClientFactory,
) -> None:
    """Audit hole 5: the daemon tells a returning member the room's action counter
    is lower than it was, then replays an action the member saw before."""
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    await room_of(alice, bob, carol)
    seen: list[ev.SecretActed] = []

    def keep(frame: ev.Frame) -> ev.Frame:
        if isinstance(frame, ev.SecretActed):
            seen.append(frame)
        if isinstance(frame, ev.SecretJoined):
            return replace(frame, acts=0)  # the hostile daemon rolls the counter back
        return frame

    rewrite(bob, keep)
    await alice.secret_kick(ROOM, "carol")
    await notices(bob, 1)
    channel = bob.secret_channel(ROOM)
    assert channel.chain is not None
    spent = channel.chain.counter
    await bob.leave_secret(ROOM)
    await bob.join_secret(ROOM, PASSPHRASE)
    (warning,) = await notices(bob, 1)
    assert warning.kind == "forged" and "rolled the room back" in warning.text
    rejoined = bob.secret_channel(ROOM)
    assert rejoined is not channel and rejoined.chain is not None
    assert rejoined.chain.counter == spent  # what bob saw, not what the daemon said
    # The kick bob saw before, replayed as new: refused as spent, carol not "kicked" again.
    bob._dispatch(replace(seen[-1], seq=99))
    (refusal,) = await notices(bob, 1)
    assert refusal.kind == "forged" and "not newer" in refusal.text


async def test_owner_grants_at_and_one_past_owners_max(make_daemon: DaemonFactory) -> None:
    """A secret room holds at most OWNERS_MAX grants (each goes to every joiner in
    secret_joined); the one past it is refused with too_many_owners and changes
    nothing, while a grant to a key granted already costs no place."""
    daemon = await make_daemon(join_burst=200, msg_burst=200, announce_burst=200)
    alice, bob = await dial(daemon, "alice"), await dial(daemon, "bob")
    await room_of(alice)  # grant 1: alice's own session key, by the owner key
    keys = await asyncio.to_thread(derive_room_keys, ROOM, PASSPHRASE, bob.pin_bytes)
    challenge, pin = bob.hello.challenge, bob.pin_bytes
    granted: list[bytes] = []
    for i in range(ev.OWNERS_MAX):  # grants 2 .. OWNERS_MAX, then one more
        who = Identity.generate()  # a new session of bob's each time (raw frames)
        join = ev.SecretJoin(
            id=bob._next_id(),
            room=keys.room_id,
            proof=keys.join_proof(challenge, pin),
            sender=who.public,
            key_proof=key_proof(who, keys.room_id, challenge, pin),
        )
        await bob._request(join, ev.SecretJoined)
        if i < ev.OWNERS_MAX - 1:
            await alice.secret_op(ROOM, who.public)
            granted.append(who.public)
        else:
            assert await refused(alice.secret_op(ROOM, who.public)) == Code.TOO_MANY_OWNERS
            await alice.secret_op(ROOM, ident(alice, ROOM).public)  # granted: no new place
        await bob._request(ev.SecretLeave(id=bob._next_id(), room=keys.room_id), ev.Ok)
    room = daemon.secret_rooms[keys.room_id]
    assert len(room.grants) == ev.OWNERS_MAX
    assert who.public not in room.chain.granted and set(granted) <= set(room.chain.granted)
    # A newcomer gets every grant in its secret_joined, within the frame limit.
    carol = await dial(daemon, "carol")
    await carol.join_secret(ROOM, PASSPHRASE)
    chain = carol.secret_channel(ROOM).chain
    assert chain is not None and set(granted) <= set(chain.granted)
    for c in (alice, bob, carol):
        await c.close()
