"""Resume after a lost connection, the rooms' rings, and history on join."""

from __future__ import annotations

import asyncio

import pytest

from anonchat import events as ev
from anonchat.client import Client, Event
from anonchat.daemon import Config, Daemon
from anonchat.errors import Code, RequestError
from anonchat.secret import SecretMessage

from .conftest import DaemonFactory
from .helpers import collect, dial, ident, quiet

PASSPHRASE = "unkempt-sherry-maroon-pebble-mousy-ravage"


async def resume(daemon_port: int, pin: str, old: Client) -> Client:
    return await Client.connect("127.0.0.1", daemon_port, pin=pin, resume=old)


def drop(client: Client) -> None:
    """The connection dies without a goodbye (the network went away)."""
    client._writer.transport.abort()


async def until_closed(client: Client) -> None:
    async with asyncio.timeout(5):
        while client.closed is None:
            await asyncio.sleep(0.01)


def texts(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, ev.Msg | SecretMessage)]


async def test_resume_within_the_window_misses_nothing(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon()
    alice, bob = await dial(daemon, "alice"), await dial(daemon, "bob")
    await alice.create("lobby")
    await bob.join("lobby")
    await alice.create_secret("den", PASSPHRASE)
    await bob.join_secret("den", PASSPHRASE)
    await alice.say("lobby", "before")
    await alice.say_secret("den", "sealed before")
    await collect(bob, ev.Msg, 1)
    async with asyncio.timeout(10):  # and the sealed one after it
        async for event in bob.events():
            if isinstance(event, SecretMessage):
                break
    bob.events_nowait()
    alice.events_nowait()

    drop(bob)
    await until_closed(bob)
    for i in range(5):
        await alice.say("lobby", f"public {i}")
        await alice.say_secret("den", f"secret {i}")
    again = await resume(daemon.port, daemon.pin, bob)
    assert again.resumed and again.nick == "bob"
    await alice.say("lobby", "after")
    await alice.say_secret("den", "sealed after")
    got = texts(await quiet(again, 0.3))
    assert [t for t in got if t.startswith("public") or t == "after"] == [
        *(f"public {i}" for i in range(5)),
        "after",
    ]
    assert [t for t in got if t.startswith("secret") or t == "sealed after"] == [
        *(f"secret {i}" for i in range(5)),
        "sealed after",
    ]
    # The others saw no quit and no join: for them bob never left.
    assert not [e for e in await quiet(alice) if isinstance(e, ev.Presence)]
    assert (await alice.who("lobby")).members == ["alice", "bob"]
    # And bob keeps talking in the secret room with the same key and counter.
    await again.say_secret("den", "I'm back")
    (msg,) = [e for e in await quiet(alice) if isinstance(e, SecretMessage)]
    assert (msg.nick, msg.text, msg.fingerprint) == ("bob", "I'm back", ident(bob).fingerprint)
    await alice.close()
    await again.close()


async def test_resume_takes_over_a_connection_the_daemon_still_thinks_open(
    make_daemon: DaemonFactory,
) -> None:
    daemon = await make_daemon()
    alice, bob = await dial(daemon, "alice"), await dial(daemon, "bob")
    await alice.create("lobby")
    await bob.join("lobby")
    await quiet(alice)  # bob's join
    again = await resume(daemon.port, daemon.pin, bob)  # bob's old socket is still open
    assert again.resumed
    await until_closed(bob)  # the daemon cut the old connection off
    await alice.say("lobby", "hi bob")
    assert texts(await quiet(again)) == ["hi bob"]
    assert not [e for e in await quiet(alice) if isinstance(e, ev.Presence)]
    await alice.close()
    await again.close()


async def test_beyond_the_window_nothing_is_resumed_and_rooms_are_rejoined(
    make_daemon: DaemonFactory,
) -> None:
    daemon = await make_daemon(resume_window=0.3)
    alice, bob = await dial(daemon, "alice"), await dial(daemon, "bob")
    await alice.create("lobby")
    await bob.join("lobby")
    await alice.create_secret("den", PASSPHRASE)
    await bob.join_secret("den", PASSPHRASE)
    drop(bob)
    await asyncio.sleep(0.6)
    quits = [e for e in await quiet(alice) if isinstance(e, ev.Presence) and e.kind == "quit"]
    assert [q.nick for q in quits] == ["bob"]
    again = await Client.connect("127.0.0.1", daemon.port, pin=daemon.pin, nick="bob", resume=bob)
    assert not again.resumed
    result = await again.rejoin(bob)
    assert result.failed == [] and result.secret == ["den"]
    assert [j.room for j in result.joined] == ["lobby"]
    assert (await alice.who("lobby")).members == ["alice", "bob"]
    await alice.say_secret("den", "welcome back")
    assert texts(await quiet(again)) == ["welcome back"]
    await alice.close()
    await again.close()


async def test_events_gone_from_the_ring_are_reported_missed(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(ring_frames=5)
    alice, bob = await dial(daemon, "alice"), await dial(daemon, "bob")
    await alice.create("lobby")
    joined = await bob.join("lobby")
    drop(bob)
    await until_closed(bob)
    seqs = [await alice.say("lobby", f"m{i}") for i in range(20)]
    again = await resume(daemon.port, daemon.pin, bob)
    events = await quiet(again)
    missed = [e for e in events if isinstance(e, ev.Missed)]
    assert len(missed) == 1 and missed[0].room == "lobby"
    assert (missed[0].first, missed[0].last) == (joined.seq + 1, seqs[-6])
    assert texts(events) == [f"m{i}" for i in range(15, 20)]  # the ring's five
    await alice.close()
    await again.close()


async def test_a_resume_that_missed_more_than_sendq_gets_the_newest_and_is_told_the_rest(
    make_daemon: DaemonFactory,
) -> None:
    """Three busy rooms, each ring full, hold far more than the client's
    sendq: the replay, all queued in one pass, used to pass sendq, so the
    resuming client was dropped (sendq_exceeded) at every try.  Now each room
    gets an even part of what fits, its newest events, and a missed for the
    older ones; the client stays."""
    daemon = await make_daemon(sendq=256 * 1024, ring_bytes=256 * 1024, max_text=3072)
    alice, bob = await dial(daemon, "alice"), await dial(daemon, "bob")
    rooms = ["one", "two", "three"]
    joined = {}
    for room in rooms:
        await alice.create(room)
        joined[room] = (await bob.join(room)).seq
    drop(bob)
    await until_closed(bob)
    last = {}
    for i in range(100):
        for room in rooms:
            last[room] = await alice.say(room, f"{room} {i:03d} " + "x" * 3000)
    again = await resume(daemon.port, daemon.pin, bob)
    assert again.resumed
    events = await quiet(again, 0.5)
    await again.ping()  # still connected: it was not dropped
    assert again.closed is None
    replayed = 0
    for room in rooms:
        (missed,) = [e for e in events if isinstance(e, ev.Missed) and e.room == room]
        msgs = [e for e in events if isinstance(e, ev.Msg) and e.room == room]
        assert msgs, f"{room} got nothing"
        assert missed.first == joined[room] + 1
        assert [m.seq for m in msgs] == list(range(missed.last + 1, last[room] + 1))
        replayed += sum(len(m.text) for m in msgs)
    assert replayed <= 256 * 1024
    await alice.close()
    await again.close()


async def test_history_on_join_at_the_limit(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(history=3)
    alice = await dial(daemon, "alice")
    await alice.create("lobby")
    for i in range(5):
        await alice.say("lobby", f"old {i}")
    carol = await dial(daemon, "carol")
    joined = await carol.join("lobby")
    history = [e for e in await quiet(carol) if isinstance(e, ev.Msg)]
    assert [m.text for m in history] == ["old 2", "old 3", "old 4"]
    assert all(m.seq < joined.seq for m in history)
    await alice.close()
    await carol.close()


async def test_history_off(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(history=0)
    alice = await dial(daemon, "alice")
    await alice.create("lobby")
    await alice.say("lobby", "old")
    carol = await dial(daemon, "carol")
    await carol.join("lobby")
    assert texts(await quiet(carol)) == []
    await alice.close()
    await carol.close()


async def test_secret_history_is_sealed_and_readable_by_the_newcomer(
    make_daemon: DaemonFactory,
) -> None:
    daemon = await make_daemon()
    alice = await dial(daemon, "alice")
    await alice.create_secret("den", PASSPHRASE)
    await alice.say_secret("den", "said before you came")
    carol = await dial(daemon, "carol")
    await carol.join_secret("den", PASSPHRASE)
    assert texts(await quiet(carol)) == ["said before you came"]
    await alice.close()
    await carol.close()


async def test_after_a_daemon_restart_everyone_meets_again(
    make_daemon: DaemonFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    first = await make_daemon()
    port, state = first.port, first.config.state_dir
    alice, bob = await dial(first, "alice"), await dial(first, "bob")
    for c in (alice, bob):
        await (c.create if c is alice else c.join)("lobby")
    await alice.create_secret("den", PASSPHRASE)
    await bob.join_secret("den", PASSPHRASE)
    await first.shutdown()
    await until_closed(alice)
    await until_closed(bob)
    config = Config(host="127.0.0.1", port=port, state_dir=state, limits=first.config.limits)
    second = Daemon(config)  # same key, same port, empty memory
    await second.start()
    try:
        new_alice = await resume(port, second.pin, alice)
        new_bob = await resume(port, second.pin, bob)
        assert not new_alice.resumed and not new_bob.resumed
        results = await asyncio.gather(new_alice.rejoin(alice), new_bob.rejoin(bob))
        for result in results:
            assert result.failed == [] and result.secret == ["den"]
        await new_bob.say_secret("den", "we meet again")
        await new_bob.say("lobby", "and here")
        got = texts(await quiet(new_alice, 0.3))
        assert "we meet again" in got and "and here" in got
        await new_alice.close()
        await new_bob.close()
    finally:
        await second.shutdown()


async def test_a_ban_follows_a_resumed_session(make_daemon: DaemonFactory) -> None:
    """Audit hole 7: the ban was kept by the connection's uid, which a resume
    replaces; now it is by session, public and secret rooms alike."""
    daemon = await make_daemon()
    alice, troll = await dial(daemon, "alice"), await dial(daemon, "troll")
    await alice.create("lobby")
    await troll.join("lobby")
    await alice.create_secret("den", PASSPHRASE)
    await troll.join_secret("den", PASSPHRASE)
    await quiet(alice, 0.1)
    await alice.kick("lobby", "troll", ban=True)
    await alice.secret_kick("den", f"troll#{ident(troll, 'den').fingerprint}", ban=True)
    await quiet(troll, 0.1)
    for hops in range(2):  # resumed once, then again: the ban stays
        drop(troll)
        await until_closed(troll)
        troll = await resume(daemon.port, daemon.pin, troll)
        assert troll.resumed, hops
        with pytest.raises(RequestError) as info:
            await troll.join("lobby")
        assert info.value.code == Code.BANNED
        with pytest.raises(RequestError) as info:
            await troll.join_secret("den", PASSPHRASE)
        assert info.value.code == Code.BANNED
        # A fresh session key does not help either: the ban is on the session too.
        troll._identities.clear()
        with pytest.raises(RequestError) as info:
            await troll.join_secret("den", PASSPHRASE)
        assert info.value.code == Code.BANNED
    await alice.close()
    await troll.close()
