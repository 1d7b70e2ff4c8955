"""Direct messages end to end through a real daemon: delivery, nick changes,
errors, limits at and one past, resume exactly once, a blind daemon, and a
hostile one (tampered, replayed, reordered, substituted keys)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import pytest

from anonchat import events as ev
from anonchat.client import Client, Event
from anonchat.daemon import Daemon
from anonchat.daemon.state import holder
from anonchat.direct import DmIdentity
from anonchat.dm import DirectMessage, DmNotice
from anonchat.errors import Code, RequestError

from .conftest import DaemonFactory
from .helpers import (
    RawPeer,
    dial,
    hello_bytes,
    lose_connection,
    next_event,
    recording_relay,
    rewrite,
)

TEXT = "meet me at the old mill at nine"


async def dms(client: Client, count: int) -> list[DirectMessage]:
    """The next ``count`` direct messages received (our own echoes skipped)."""
    out: list[DirectMessage] = []
    while len(out) < count:
        message = await next_event(client, DirectMessage, timeout=10)
        if not message.own:
            out.append(message)
    return out


async def pair(daemon: Daemon) -> tuple[Client, Client]:
    return await dial(daemon, "alice"), await dial(daemon, "bob")


async def test_a_direct_message_arrives_decrypted_with_its_sender(
    make_daemon: DaemonFactory,
) -> None:
    daemon = await make_daemon()
    alice, bob = await pair(daemon)
    talk = await alice.open_dm("bob")
    assert talk.nick == "bob" and talk.card.sign == bob.dms.identity.sign
    own = await alice.send_dm(talk.peer, TEXT)
    assert own.own and own.text == TEXT
    assert await next_event(alice, DirectMessage, timeout=10) == own  # the echo, for the front ends
    (got,) = await dms(bob, 1)
    assert (got.text, got.nick, got.own) == (TEXT, "alice", False)
    assert got.peer == alice.dms.identity.sign and got.fingerprint == alice.dm_fingerprint
    # Bob answers in the same conversation, without a lookup.
    await bob.send_dm(got.peer, "see you there", me=True)
    (back,) = await dms(alice, 1)
    assert (back.text, back.me, back.nick) == ("see you there", True, "bob")
    await alice.close()
    await bob.close()


async def test_a_nick_change_does_not_break_the_conversation(
    make_daemon: DaemonFactory,
) -> None:
    daemon = await make_daemon()
    alice, bob = await pair(daemon)
    talk = await alice.open_dm("bob")
    await bob.set_nick("robert")
    await alice.send_dm(talk.peer, "still you?")  # by key: the nick does not matter
    (got,) = await dms(bob, 1)
    assert got.text == "still you?"
    await alice.set_nick("alicia")
    await bob.send_dm(got.peer, "yes")
    notice = await next_event(alice, DmNotice, timeout=10)
    assert notice.kind == "nick" and "robert" in notice.text
    (back,) = await dms(alice, 1)
    assert back.nick == "robert" and alice.conversation(talk.peer).nick == "robert"  # type: ignore[union-attr]
    await alice.close()
    await bob.close()


async def test_errors_no_such_nick_and_recipient_left(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon()
    alice, bob = await pair(daemon)
    with pytest.raises(RequestError) as nobody:
        await alice.open_dm("carol")
    assert nobody.value.code == Code.NO_SUCH_NICK
    with pytest.raises(RequestError) as me:
        await alice.open_dm("alice")
    assert me.value.code == Code.NO_SUCH_NICK
    talk = await alice.open_dm("bob")
    await bob.close()  # a quit ends the session at once
    with pytest.raises(RequestError) as left:
        await alice.send_dm(talk.peer, "hello?")
    assert left.value.code == Code.RECIPIENT_LEFT
    await alice.close()


async def test_the_rate_limit_at_and_one_past(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(dm_burst=3, dm_rate=0.01)
    alice, bob = await pair(daemon)
    alice.pace = False  # be refused rather than wait
    talk = await alice.open_dm("bob")
    for i in range(3):
        await alice.send_dm(talk.peer, f"m{i}")
    with pytest.raises(RequestError) as exc:
        await alice.send_dm(talk.peer, "one too many")
    assert exc.value.code == Code.RATE_LIMITED
    assert [m.text for m in await dms(bob, 3)] == ["m0", "m1", "m2"]
    # Room messages have their own budget: a conversation does not use it up.
    await alice.create("lobby")
    await alice.say("lobby", "still fine")
    await alice.close()
    await bob.close()


async def test_the_size_limit_at_and_one_past(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(dm_max_bytes=528)
    alice, bob = await pair(daemon)
    assert alice.hello.dm_max == 528
    talk = await alice.open_dm("bob")
    # 2 + 1 + len("alice") + 8 + body = 512 exactly: the 512 bucket, 528 sealed.
    await alice.send_dm(talk.peer, "x" * (512 - 16))
    (got,) = await dms(bob, 1)
    assert len(got.text) == 496
    with pytest.raises(RequestError) as exc:  # one byte more: the 1024 bucket
        await alice.send_dm(talk.peer, "x" * (512 - 15))
    assert exc.value.code == Code.TEXT_TOO_LONG
    # The daemon enforces it too, before relaying: a raw peer sends a ct one past.
    peer = await raw_with_key(daemon, "mallory")
    for size, code in ((529, Code.TEXT_TOO_LONG), (1040, Code.TEXT_TOO_LONG), (300, None)):
        await peer.send_frame(
            ev.DmSend(id=size, to=bob.dms.identity.sign, counter=1, ct=bytes(size)).to_wire()
        )
        reply = await peer.read_frame()
        assert isinstance(reply, ev.Error) and reply.id == size
        assert reply.code == (code or Code.TEXT_INVALID)  # 300 is no bucket's size
    await peer.close()
    await alice.close()
    await bob.close()


async def raw_with_key(daemon: Daemon, nick: str) -> RawPeer:
    """A raw peer that said hello and registered a DM key."""
    peer = await RawPeer.open(daemon)
    await peer.send(hello_bytes(nick))
    hello = await peer.read_frame()
    assert isinstance(hello, ev.ServerHello)
    identity = DmIdentity.generate()
    card = identity.card
    proof = identity.proof(hello.challenge, daemon.pin_bytes)
    await peer.send_frame(
        ev.DmKey(id=1, sign=card.sign, dh=card.dh, sig=card.sig, proof=proof).to_wire()
    )
    assert isinstance(await peer.read_frame(), ev.Ok)
    return peer


async def test_a_dm_key_must_be_proven_on_this_connection(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon()
    alice = await dial(daemon, "alice")
    peer = await RawPeer.open(daemon)
    await peer.send(hello_bytes("mallory"))
    assert isinstance(await peer.read_frame(), ev.ServerHello)
    # Alice's card with a proof made for alice's connection, not this one.
    card = alice.dms.identity.card
    proof = alice.dms.identity.proof(alice.hello.challenge, alice.pin_bytes)
    await peer.send_frame(
        ev.DmKey(id=1, sign=card.sign, dh=card.dh, sig=card.sig, proof=proof).to_wire()
    )
    reply = await peer.read_frame()
    assert isinstance(reply, ev.Error) and reply.code == Code.BAD_PROOF
    await peer.close()
    await alice.close()


async def test_a_resume_delivers_what_was_missed_exactly_once(
    make_daemon: DaemonFactory,
) -> None:
    daemon = await make_daemon()
    alice, bob = await pair(daemon)
    talk = await alice.open_dm("bob")
    await alice.send_dm(talk.peer, "before")
    assert [m.text for m in await dms(bob, 1)] == ["before"]
    await lose_connection(bob)  # the network goes away
    for i in range(3):
        await alice.send_dm(talk.peer, f"while away {i}")
    again = await Client.connect("127.0.0.1", daemon.port, pin=daemon.pin, resume=bob)
    assert again.resumed
    await alice.send_dm(talk.peer, "after")
    got = await dms(again, 4)
    assert [m.text for m in got] == [*(f"while away {i}" for i in range(3)), "after"]
    # Exactly once: no refusal (a replay would be one), nothing more.
    await alice.send_dm(talk.peer, "last")
    events = await until_dm(again, "last")
    assert not [e for e in events if isinstance(e, DmNotice)]
    # And bob answers with the same key and counters.
    await again.send_dm(talk.peer and got[0].peer, "back")
    assert [m.text for m in await dms(alice, 1)] == ["back"]
    await alice.close()
    await again.close()


async def until_dm(client: Client, text: str) -> list[Event]:
    seen: list[Event] = []
    async with asyncio.timeout(10):
        async for event in client.events():
            seen.append(event)
            if isinstance(event, DirectMessage) and event.text == text:
                return seen
    raise AssertionError("closed")


async def test_nothing_readable_reaches_the_daemon(
    make_daemon: DaemonFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The blind-server test for direct messages: what the daemon receives and
    holds (its state, the recipient's ring) never contains the text."""
    caplog.set_level(logging.DEBUG, logger="anonchat")
    daemon = await make_daemon(plaintext=True)
    received = bytearray()
    server = await recording_relay(daemon, received, replies=True)
    port = server.sockets[0].getsockname()[1]
    alice = await Client.connect("127.0.0.1", port, nick="alice", tls=False)
    bob = await Client.connect("127.0.0.1", port, nick="bob", tls=False)
    talk = await alice.open_dm("bob")
    await alice.send_dm(talk.peer, TEXT)
    assert [m.text for m in await dms(bob, 1)] == [TEXT]
    member = holder(daemon.shared, "bob")
    assert member is not None
    held = b"".join(d for _, _, d in member.dm_ring.entries())  # type: ignore[union-attr]
    for secret in (TEXT.encode(), TEXT.encode("utf-16-le")):
        assert secret not in received  # both directions went through the tap
        assert secret not in held
    assert TEXT not in caplog.text
    assert b"alice" in received  # (the tap does see the clear parts: the nicks)
    await alice.close()
    await bob.close()
    server.close()


# -- a hostile daemon: every refusal is visible --------------------------------------


async def hostile_pair(make_daemon: DaemonFactory) -> tuple[Client, Client, bytes]:
    daemon = await make_daemon()
    alice, bob = await pair(daemon)
    talk = await alice.open_dm("bob")
    return alice, bob, talk.peer


async def test_tampered_replayed_and_reordered_dms_are_refused_with_a_notice(
    make_daemon: DaemonFactory,
) -> None:
    alice, bob, peer = await hostile_pair(make_daemon)
    held: list[ev.Dm] = []

    def hostile(frame: ev.Frame) -> ev.Frame | None:
        if not isinstance(frame, ev.Dm):
            return frame
        held.append(frame)
        return None  # withheld; replayed by hand below

    dispatch = bob._dispatch  # the honest one, to replay by hand
    rewrite(bob, hostile)
    for i in range(3):
        await alice.send_dm(peer, f"m{i}")
    async with asyncio.timeout(10):
        while len(held) < 3:
            await asyncio.sleep(0.01)
    flipped = held[0].ct[:-1] + bytes([held[0].ct[-1] ^ 1])
    dispatch(dataclasses.replace(held[0], ct=flipped))  # tampered
    dispatch(held[1])  # m1 (m0 counts as missing)
    dispatch(held[1])  # replayed
    dispatch(held[0])  # reordered: m0 after m1
    dispatch(held[2])
    events = await until_dm(bob, "m2")
    shown = [(type(e).__name__, getattr(e, "kind", ""), getattr(e, "text", "")) for e in events]
    kinds = [k for _, k, _ in shown if k]
    assert kinds == ["refused", "missing", "refused", "refused"], shown
    assert "does not decrypt" in events[0].text  # type: ignore[union-attr]
    assert "out of order" in events[3].text  # type: ignore[union-attr]
    assert [e.text for e in events if isinstance(e, DirectMessage)] == ["m1", "m2"]
    await alice.close()
    await bob.close()


async def test_substituted_keys_are_refused_or_announced(make_daemon: DaemonFactory) -> None:
    alice, bob, peer = await hostile_pair(make_daemon)
    mallory = DmIdentity.generate()
    own = {"sign": mallory.card.sign, "dh": mallory.card.dh, "sig": mallory.card.sig}
    # What the hostile daemon changes in the frames of each type it sends.
    changes: dict[type[ev.Frame], dict[str, Any]] = {}

    def hostile(frame: ev.Frame) -> ev.Frame | None:
        change = changes.get(type(frame))
        return dataclasses.replace(frame, **change) if change else frame  # type: ignore[type-var]

    rewrite(bob, hostile)
    rewrite(alice, hostile)
    # 1. Its own card on alice's message: the message does not decrypt.
    changes[ev.Dm] = own
    await alice.send_dm(peer, "for bob only")
    notice = await next_event(bob, DmNotice, timeout=10)
    assert notice.kind == "refused" and "does not decrypt" in notice.text
    # 2. Its own X25519 key under alice's signing key: the card does not verify.
    changes[ev.Dm] = {"dh": mallory.card.dh}
    await alice.send_dm(peer, "again")
    notice = await next_event(bob, DmNotice, timeout=10)
    assert notice.kind == "refused" and "bad_signature" in notice.text
    # 3. Its own card for alice's lookup of bob: announced loudly.
    changes[ev.DmCard] = own
    talk = await alice.open_dm("bob")
    assert talk.peer == mallory.sign
    warning = await next_event(alice, DmNotice, timeout=10)
    assert warning.kind == "key_changed" and "WARNING" in warning.text
    # 4. A card that does not verify: refused before anything is sealed.
    changes[ev.DmCard] = {"dh": bytes(32)}
    with pytest.raises(RequestError) as exc:
        await alice.open_dm("bob")
    assert exc.value.code == Code.BAD_KEY
    await alice.close()
    await bob.close()


async def test_verify_compares_both_dm_keys(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon()
    alice, bob = await pair(daemon)
    talk = await alice.open_dm("bob")
    seen = alice.dm_verification(talk.peer)
    await alice.send_dm(talk.peer, "hi")
    (got,) = await dms(bob, 1)
    theirs = bob.dm_verification(got.peer)
    assert seen.safety == theirs.safety and seen.theirs == theirs.ours
    with pytest.raises(RequestError) as exc:
        alice.verify_dm(talk.peer, "0000-0000-0000-0000")
    assert exc.value.code == Code.BAD_PROOF
    assert alice.verify_dm(talk.peer, theirs.ours).verified
    await alice.close()
    await bob.close()


def test_the_limits_are_named_in_the_config() -> None:
    from anonchat.daemon import Limits
    from anonchat.errors import ConfigError

    limits: dict[str, Any] = {"dm_burst": 1, "dm_rate": 1.0, "dm_ring": 1}
    Limits(**limits, dm_max_bytes=272)
    Limits(**limits, dm_max_bytes=4112)
    for bad in (271, 4113):
        with pytest.raises(ConfigError, match="dm_max_bytes"):
            Limits(dm_max_bytes=bad)


async def test_a_secret_room_member_by_its_session_key(make_daemon: DaemonFactory) -> None:
    """In a secret room, /msg nick#fp: the daemon is asked for the DM key of the
    member with that session key there; only members of the room may ask."""
    daemon = await make_daemon()
    alice, bob = await pair(daemon)
    carol = await dial(daemon, "carol")
    passphrase = "unkempt-sherry-maroon-pebble-mousy-ravage"
    await alice.create_secret("den", passphrase)
    await bob.join_secret("den", passphrase, nick="shadow")
    channel = alice.secret_channel("den")
    async with asyncio.timeout(10):  # until bob's hello announced "shadow"
        while "shadow" not in channel.nicks.values():
            await asyncio.sleep(0.01)
    seen_by_alice: list[ev.Frame] = []

    def record(frame: ev.Frame) -> ev.Frame:
        seen_by_alice.append(frame)
        return frame

    rewrite(alice, record)
    talk = await alice.open_dm("shadow", room="den")
    assert talk.peer == bob.dms.identity.sign and talk.nick == "shadow"
    await alice.send_dm(talk.peer, "psst")
    (got,) = await dms(bob, 1)
    assert got.text == "psst"
    await bob.send_dm(got.peer, "who's asking?")
    (back,) = await dms(alice, 1)
    assert (back.text, back.nick) == ("who's asking?", "shadow")
    # Bob's public nick never reached alice: not in the card, not in the message.
    cards = [f for f in seen_by_alice if isinstance(f, ev.DmCard | ev.Dm)]
    assert len(cards) == 2 and all(f.nick == "" for f in cards)
    with pytest.raises(RequestError) as me:
        await alice.open_dm(alice.own_secret_label("den"), room="den")
    assert me.value.code == Code.NO_SUCH_NICK
    # Someone outside the room cannot look its members up.
    member = bob.secret_channel("den").identity.public
    with pytest.raises(RequestError) as outsider:
        await carol._request(
            ev.DmLookup(id=carol._next_id(), room=channel.rid, member=member), ev.DmCard
        )
    assert outsider.value.code == Code.NOT_MEMBER
    for client in (alice, bob, carol):
        await client.close()


async def test_a_new_key_under_a_known_nick_is_announced(make_daemon: DaemonFactory) -> None:
    """Bob's client restarts (a new DM key) and writes to alice, who talked with
    the old one: the message is shown, with a loud warning; a lookup too."""
    daemon = await make_daemon()
    alice, bob = await pair(daemon)
    talk = await alice.open_dm("bob")
    await alice.send_dm(talk.peer, "hi old bob")
    await dms(bob, 1)
    await bob.close()
    new_bob = await dial(daemon, "bob")
    again = await new_bob.open_dm("alice")
    await new_bob.send_dm(again.peer, "it is me, really")
    warning = await next_event(alice, DmNotice, timeout=10)
    assert warning.kind == "key_changed" and "WARNING" in warning.text
    assert (await dms(alice, 1))[0].text == "it is me, really"
    await alice.close()
    await new_bob.close()


async def test_the_ring_for_a_resume_at_and_one_past(make_daemon: DaemonFactory) -> None:
    """``dm_ring`` messages sent while the recipient was away all arrive on its
    resume; one more and the oldest is gone, said as missed."""
    daemon = await make_daemon(dm_ring=3)
    alice, bob = await pair(daemon)
    talk = await alice.open_dm("bob")
    for count, lost in ((3, 0), (4, 1)):
        await lose_connection(bob)
        for i in range(count):
            await alice.send_dm(talk.peer, f"{count}/{i}")
        bob = await Client.connect("127.0.0.1", daemon.port, pin=daemon.pin, resume=bob)
        assert bob.resumed
        await alice.send_dm(talk.peer, f"marker {count}")
        events = await until_dm(bob, f"marker {count}")
        texts = [e.text for e in events if isinstance(e, DirectMessage)]
        assert texts == [*(f"{count}/{i}" for i in range(lost, count)), f"marker {count}"]
        notices = [e for e in events if isinstance(e, DmNotice)]
        if lost:
            assert [n.kind for n in notices] == ["missing", "missing"]  # the daemon's, the gap's
            assert "gone from the server's memory" in notices[0].text
        else:
            assert not notices
    await alice.close()
    await bob.close()


async def test_a_lookup_finds_a_nick_held_under_its_look_alike_key(
    make_daemon: DaemonFactory,
) -> None:
    """A nick whose look-alike claim differs from it ('g0' claims 'go') is
    found by the nick as its holder typed it; a look-alike of it is not."""
    daemon = await make_daemon()
    alice, g0 = await dial(daemon, "alice"), await dial(daemon, "g0")
    talk = await alice.open_dm("g0")
    assert talk.peer == g0.dms.identity.sign and talk.nick == "g0"
    with pytest.raises(RequestError) as refused:
        await alice.open_dm("go")  # looks like g0, is not g0: /msg never reaches a look-alike
    assert refused.value.code == Code.NO_SUCH_NICK
    await alice.close()
    await g0.close()
