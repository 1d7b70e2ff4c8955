"""The client paces itself under the daemon's message rate (told in ``hello``)
and checks a secret room's slow mode before sealing, so that the daemon does
not refuse its messages: a refusal is a strike, and a refused sealed message
has used up its counter, which the others in the room would see as a missing
message.  Real daemon, real sockets."""

from __future__ import annotations

import asyncio

import pytest

from anonchat import events as ev
from anonchat.client import Client, Pacer
from anonchat.errors import Code, RequestError
from anonchat.secret import SecretMessage, SecretNotice

from .conftest import DaemonFactory
from .helpers import collect, dial

PASSPHRASE = "unkempt-sherry-maroon-pebble-mousy-ravage"


async def secret_events(client: Client, count: int, timeout: float = 20) -> list[object]:
    """Everything pushed until ``count`` secret messages have arrived."""
    got: list[object] = []
    async with asyncio.timeout(timeout):
        async for event in client.events():
            got.append(event)
            if sum(isinstance(e, SecretMessage) for e in got) == count:
                return got
    raise AssertionError("closed early")


def test_the_pacer_lets_the_burst_through_then_one_per_interval() -> None:
    pacer = Pacer(burst=4, interval=0.1)
    # One message of margin: three at once, then one per 0.105 s, in order.
    waits = [pacer.reserve() for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(0.105, abs=0.005)
    assert waits[4] == pytest.approx(0.210, abs=0.005)
    assert waits[5] == pytest.approx(0.315, abs=0.005)
    assert Pacer(burst=0, interval=0).reserve() == 0.0  # a daemon that did not say


async def test_hello_tells_the_message_rate(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(msg_burst=7, msg_rate=3.0)
    client = await dial(daemon, "alice")
    assert (client.hello.msg_burst, client.hello.msg_interval_us) == (7, 333_334)
    await client.close()


async def test_a_paste_into_a_public_room_is_paced_not_refused(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(msg_burst=5, msg_rate=10.0)
    alice, bob = await dial(daemon, "alice"), await dial(daemon, "bob")
    await alice.create("r")
    await bob.join("r")
    await asyncio.gather(*(alice.say("r", f"line {n}") for n in range(15)))
    got = [m.text for m in await collect(bob, ev.Msg, 15, timeout=10)]
    assert got == [f"line {n}" for n in range(15)]
    assert daemon.stats.errors[Code.RATE_LIMITED] == 0
    await alice.close()
    await bob.close()


async def test_a_paste_into_a_secret_room_loses_no_counter(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(msg_burst=5, msg_rate=10.0)
    alice, bob = await dial(daemon, "alice"), await dial(daemon, "bob")
    await alice.create_secret("den", PASSPHRASE)
    await bob.join_secret("den", PASSPHRASE)
    # Sealed one after the other, each in its turn: in order, none refused.
    await asyncio.gather(*(alice.say_secret("den", f"line {n}") for n in range(15)))
    got = await secret_events(bob, 15)
    texts = [e.text for e in got if isinstance(e, SecretMessage) and e.nick == "alice"]
    assert texts == [f"line {n}" for n in range(15)]
    assert not [e for e in got if isinstance(e, SecretNotice) and e.kind == "missing"]
    assert daemon.stats.errors[Code.RATE_LIMITED] == 0
    await alice.close()
    await bob.close()


async def test_slow_mode_in_a_secret_room_is_checked_before_sealing(
    make_daemon: DaemonFactory,
) -> None:
    daemon = await make_daemon()
    alice, bob = await dial(daemon, "alice"), await dial(daemon, "bob")
    await alice.create_secret("den", PASSPHRASE)
    await bob.join_secret("den", PASSPHRASE)
    await alice.secret_mode("den", slow=1)
    async with asyncio.timeout(5):
        while bob.secret_channel("den").slow != 1:  # bob has seen the mode change
            await asyncio.sleep(0.01)
    await bob.say_secret("den", "one")
    with pytest.raises(RequestError) as info:
        await bob.say_secret("den", "two")
    assert info.value.code == Code.SLOW_MODE and "wait 1 s" in info.value.message
    assert daemon.stats.errors[Code.SLOW_MODE] == 0  # refused here, never sealed or sent
    await asyncio.sleep(1.05)
    await bob.say_secret("den", "three")
    await alice.say_secret("den", "owners are not slowed")
    await alice.say_secret("den", "at all")
    got = await secret_events(alice, 4)
    texts = [e.text for e in got if isinstance(e, SecretMessage)]
    assert texts == ["one", "three", "owners are not slowed", "at all"]
    assert not [e for e in got if isinstance(e, SecretNotice) and e.kind == "missing"]
    await alice.close()
    await bob.close()
