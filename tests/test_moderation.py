"""Moderation of public rooms: owners' powers and their refusal to everyone else."""

from __future__ import annotations

import asyncio

import pytest

from anonchat import events as ev
from anonchat.errors import Code, RequestError

from .conftest import ClientFactory, DaemonFactory
from .helpers import dial, next_event, quiet


async def refused(coro: object) -> str:
    with pytest.raises(RequestError) as info:
        await coro  # type: ignore[misc]
    return info.value.code


async def test_the_creator_owns_the_room_and_others_do_not(connect: ClientFactory) -> None:
    owner, member = await connect("owner"), await connect("member")
    created = await owner.create("club")
    joined = await member.join("club")
    assert created.owner and not joined.owner and joined.owners == ["owner"]
    assert await refused(member.kick("club", "owner")) == Code.NOT_OWNER
    assert await refused(member.kick("club", "owner", ban=True)) == Code.NOT_OWNER
    assert await refused(member.op("club", "member")) == Code.NOT_OWNER
    assert await refused(member.set_mode("club", locked=True)) == Code.NOT_OWNER
    assert await refused(member.set_topic("club", "mine")) == Code.NOT_OWNER
    await owner.set_topic("club", "owner's topic")
    assert (await member.who("club")).owners == ["owner"]


async def test_kick_and_op(connect: ClientFactory) -> None:
    owner, alice, bob = await connect("owner"), await connect("alice"), await connect("bob")
    await owner.create("club")
    await alice.join("club")
    await bob.join("club")
    await quiet(owner)
    await quiet(alice)
    await owner.kick("club", "BOB", "be nice")  # nicks are matched case-insensitively
    for c in (owner, alice, bob):
        p = await next_event(c, ev.Presence)
        assert (p.kind, p.nick, p.by, p.msg) == ("kick", "bob", "owner", "be nice")
    assert "club" not in {r.casefold() for r in bob.rooms.values()}
    assert await refused(bob.say("club", "hello?")) == Code.NOT_MEMBER
    await bob.join("club")  # a kick is not a ban
    await owner.op("club", "alice")
    p = await next_event(bob, ev.Presence)
    while p.kind != "op":
        p = await next_event(bob, ev.Presence)
    assert (p.nick, p.by) == ("alice", "owner")
    await alice.kick("club", "bob")  # alice is an owner now
    assert await refused(owner.kick("club", "nobody")) == Code.NO_SUCH_NICK
    assert await refused(owner.kick("club", "owner")) == Code.NO_SUCH_NICK


async def test_ban_is_by_session_for_the_rooms_lifetime(connect: ClientFactory) -> None:
    owner, troll = await connect("owner"), await connect("troll")
    await owner.create("club")
    await troll.join("club")
    await owner.kick("club", "troll", ban=True)
    assert await refused(troll.join("club")) == Code.BANNED
    await troll.close()
    # A new session is a new person to the daemon: it never keeps addresses.
    again = await connect("troll")
    await again.join("club")


async def test_lock_slow_mode_and_history(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(history=5)
    owner, member = await dial(daemon, "owner"), await dial(daemon, "member")
    await owner.create("club")
    await member.join("club")
    await owner.say("club", "before")
    await owner.set_mode("club", locked=True)
    changed = await next_event(member, ev.ModeChanged)
    assert (changed.nick, changed.locked, changed.slow, changed.history) == ("owner", True, 0, True)
    late = await dial(daemon, "late")
    assert await refused(late.join("club")) == Code.ROOM_LOCKED
    await owner.set_mode("club", locked=False, history=False)
    assert (await late.join("club")).locked is False
    assert [e for e in await quiet(late) if isinstance(e, ev.Msg)] == []  # no history
    await owner.set_mode("club", slow=1)
    await member.say("club", "one")
    assert await refused(member.say("club", "two")) == Code.SLOW_MODE  # one past the limit
    await owner.say("club", "owners are not slowed")
    await owner.say("club", "at all")
    await asyncio.sleep(1.05)
    await member.say("club", "two, a second later")  # at the limit
    assert await refused(owner.set_mode("club", slow=3601)) == Code.BAD_MODE
    for c in (owner, member, late):
        await c.close()


async def test_a_room_whose_owner_leaves_gets_a_new_one(connect: ClientFactory) -> None:
    owner, first, second = await connect("owner"), await connect("first"), await connect("sec")
    await owner.create("club")
    await first.join("club")
    await second.join("club")
    await quiet(second)
    await owner.leave("club")
    kinds: list[tuple[str, str, str | None]] = []
    async with asyncio.timeout(5):
        while len(kinds) < 2:
            p = await next_event(second, ev.Presence)
            kinds.append((p.kind, p.nick, p.by))
    assert kinds == [("leave", "owner", None), ("op", "first", None)]
    await first.set_topic("club", "mine now")
