"""Secret rooms end to end over real sockets: what works, what the daemon never sees,
and how every kind of tampering is reported."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from anonchat import events as ev
from anonchat.client import Client
from anonchat.crypto import STALE_MS, Identity, RoomKeys, derive_room_keys, key_proof
from anonchat.daemon import Daemon
from anonchat.errors import Code, RequestError
from anonchat.frontend import privacy_report
from anonchat.linemode import format_event
from anonchat.secret import SecretChannel, SecretMessage, SecretNotice, now_ms
from anonchat.tui.commands import PRIVACY
from anonchat.tui.render import secret_message_line

from .conftest import ClientFactory, DaemonFactory
from .helpers import dial, ident, joined_channel, kept_sealed, quiet, recording_relay, rewrite
from .processes import start_line_mode

ROOM = "Night-Owls"
PASSPHRASE = "unkempt-sherry-maroon-pebble-mousy-ravage"
TEXT = "the drop is behind the old mill at nine"


async def secret_events(client: Client, count: int, timeout: float = 10.0) -> list[SecretMessage]:
    out: list[SecretMessage] = []
    async with asyncio.timeout(timeout):
        async for event in client.events():
            if isinstance(event, SecretMessage):
                out.append(event)
                if len(out) == count:
                    return out
    raise AssertionError("connection closed")


async def test_two_members_talk_and_are_told_apart(connect: ClientFactory) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    await alice.create_secret(ROOM, PASSPHRASE)
    await bob.join_secret("  NIGHT-owls ", PASSPHRASE)  # the name is normalised
    await alice.say_secret(ROOM, TEXT)
    await bob.say_secret(ROOM, "waves", me=True)
    for client in (alice, bob):
        msgs = await secret_events(client, 2)
        assert [(m.nick, m.text, m.me) for m in msgs] == [
            ("alice", TEXT, False),
            ("bob", "waves", True),
        ]
        assert msgs[0].fingerprint == ident(alice).fingerprint
        assert msgs[1].fingerprint == ident(bob).fingerprint
        assert msgs[0].own == (client is alice)
    assert alice.secret_channel(ROOM).members() == sorted(
        [f"alice#{ident(alice).fingerprint}", f"bob#{ident(bob).fingerprint}"]
    )


async def test_same_nick_two_sessions_are_distinguishable(connect: ClientFactory) -> None:
    alice, mallory, carol = await connect("alice"), await connect("mallory"), await connect("c")
    await alice.create_secret(ROOM, PASSPHRASE)
    await mallory.join_secret(ROOM, PASSPHRASE)
    await carol.join_secret(ROOM, PASSPHRASE)
    await alice.say_secret(ROOM, "it's me")
    # Mallory seals a message under the nick "alice": nicks are whatever a member says...
    channel = mallory.secret_channel(ROOM)
    forged = channel.seal("alice", "it's me, send the files", "msg")
    await mallory._request(replace(forged, id=mallory._next_id()), ev.Ok)
    msgs = await secret_events(carol, 2)
    # ...but the fingerprint comes from the session key and cannot be chosen that way.
    assert [m.nick for m in msgs] == ["alice", "alice"]
    assert msgs[0].fingerprint == ident(alice).fingerprint
    assert msgs[1].fingerprint == ident(mallory).fingerprint != ident(alice).fingerprint


async def test_wrong_passphrase_and_missing_room_get_the_same_answer(
    connect: ClientFactory,
) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    await alice.create_secret(ROOM, PASSPHRASE)
    answers = []
    for name, passphrase in [(ROOM, PASSPHRASE + "x"), ("no-such-room", PASSPHRASE)]:
        with pytest.raises(RequestError) as info:
            await bob.join_secret(name, passphrase)
        answers.append((info.value.code, info.value.message))
    assert answers[0] == answers[1] == (Code.JOIN_DENIED, "no such room or wrong passphrase")
    with pytest.raises(RequestError) as info:
        await bob.create_secret(ROOM, PASSPHRASE)
    assert info.value.code == Code.ROOM_EXISTS


async def test_secret_rooms_are_never_listed(connect: ClientFactory, daemon: Daemon) -> None:
    alice = await connect("alice")
    await alice.create("public")
    await alice.create_secret(ROOM, PASSPHRASE)
    assert [r.room for r in (await alice.list_rooms()).rooms] == ["public"]
    assert len(daemon.secret_rooms) == 1


async def test_a_proof_for_another_servers_pin_is_refused(
    connect: ClientFactory, daemon: Daemon
) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    await alice.create_secret(ROOM, PASSPHRASE)
    other_pin = bytes(range(32))
    keys = await asyncio.to_thread(derive_room_keys, ROOM, PASSPHRASE, bob.pin_bytes)
    bob_key, bob_pin = bob.secret_identity(keys.room_id), bob.pin_bytes
    for pin, challenge in [(other_pin, bob.hello.challenge), (bob_pin, bytes(32))]:
        proof = keys.join_proof(challenge, pin)
        frame = ev.SecretJoin(
            id=bob._next_id(),
            room=keys.room_id,
            proof=proof,
            sender=bob_key.public,
            key_proof=key_proof(bob_key, keys.room_id, bob.hello.challenge, bob_pin),
        )
        with pytest.raises(RequestError) as info:
            await bob._request(frame, ev.SecretJoined)
        assert info.value.code == Code.JOIN_DENIED
    # Keys derived for another server's pin name another room entirely.
    elsewhere = await asyncio.to_thread(derive_room_keys, ROOM, PASSPHRASE, other_pin)
    assert elsewhere.room_id != keys.room_id


async def test_join_attempts_are_rate_limited(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(join_burst=3, join_interval=0.5)
    guesser = await dial(daemon, "guesser")
    keys = await asyncio.to_thread(derive_room_keys, "x", "y", guesser.pin_bytes)

    async def attempt() -> str:
        proof = keys.join_proof(guesser.hello.challenge, guesser.pin_bytes)
        frame = ev.SecretJoin(
            id=guesser._next_id(),
            room=keys.room_id,
            proof=proof,
            sender=guesser.secret_identity(keys.room_id).public,
            key_proof=key_proof(
                guesser.secret_identity(keys.room_id),
                keys.room_id,
                guesser.hello.challenge,
                guesser.pin_bytes,
            ),
        )
        with pytest.raises(RequestError) as info:
            await guesser._request(frame, ev.SecretJoined)
        return f"{info.value.code}: {info.value.message}"

    results = [await attempt() for _ in range(4)]  # the burst, then one past it
    assert results[:3] == ["join_denied: no such room or wrong passphrase"] * 3
    assert results[3].startswith("rate_limited: too many secret-room join attempts; try again")
    await asyncio.sleep(0.55)
    assert (await attempt()).startswith("join_denied")  # one more after the interval
    assert (await attempt()).startswith("rate_limited")
    await guesser.close()


async def test_members_leave_and_quit(connect: ClientFactory) -> None:
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    await alice.create_secret(ROOM, PASSPHRASE)
    await bob.join_secret(ROOM, PASSPHRASE)
    await carol.join_secret(ROOM, PASSPHRASE)
    await quiet(alice)
    await bob.leave_secret(ROOM)
    await carol.close()
    notices: list[str] = []
    async with asyncio.timeout(5):
        async for event in alice.events():
            if isinstance(event, SecretNotice) and event.kind in ("leave", "quit"):
                notices.append(event.text)
                if len(notices) == 2:
                    break
    assert notices == [
        f"bob#{ident(bob).fingerprint} left",
        f"carol#{ident(carol).fingerprint} quit",
    ]
    with pytest.raises(RequestError):
        await bob.say_secret(ROOM, "still here?")


# -- the daemon is blind ----------------------------------------------------------


@pytest.fixture
async def tap(make_daemon: DaemonFactory) -> AsyncIterator[tuple[Daemon, int, bytearray]]:
    """A plaintext daemon behind a relay that records every byte it receives."""
    daemon = await make_daemon(plaintext=True)
    received = bytearray()
    server = await recording_relay(daemon, received)
    yield daemon, server.sockets[0].getsockname()[1], received
    server.close()


async def test_the_daemon_never_sees_name_passphrase_or_text(
    tap: tuple[Daemon, int, bytearray], caplog: pytest.LogCaptureFixture
) -> None:
    daemon, port, received = tap
    caplog.set_level(logging.DEBUG, logger="anonchat")
    alice = await Client.connect("127.0.0.1", port, nick="alice", tls=False)
    bob = await Client.connect("127.0.0.1", port, nick="bob", tls=False)
    await alice.create_secret(ROOM, PASSPHRASE)
    await bob.join_secret(ROOM, PASSPHRASE)
    await alice.say_secret(ROOM, TEXT)
    assert [m.text for m in await secret_events(bob, 1)] == [TEXT]
    registry = repr(
        [
            (vars(r) if hasattr(r, "__dict__") else [getattr(r, s) for s in r.__slots__])
            for r in daemon.secret_rooms.values()
        ]
    )
    registry += repr(daemon.rooms) + repr(list(daemon.nicks))
    await alice.close()
    await bob.close()
    assert len(received) > 1000  # the tap did see the whole conversation
    secrets = [ROOM, ROOM.casefold(), PASSPHRASE, TEXT, "mill at nine"]
    for secret in secrets:
        for encoding in ("utf-8", "utf-16-le"):
            assert secret.encode(encoding) not in received, secret
        assert secret not in caplog.text and secret.lower() not in caplog.text.lower()
        assert secret not in registry
    for word in PASSPHRASE.split("-"):
        assert word.encode() not in received


# -- tampering, as a hostile daemon or member would try it ------------------------------


@pytest.fixture(scope="module")
def room_keys() -> RoomKeys:
    return derive_room_keys(ROOM, PASSPHRASE, bytes(32))


def make_pair(room_keys: RoomKeys) -> tuple[SecretChannel, SecretChannel]:
    """Two members of one room, as the daemon's join replies would make them."""
    one, two = Identity.generate(), Identity.generate()
    sender = joined_channel(ROOM, room_keys, one, [two.public])
    receiver = joined_channel(ROOM, room_keys, two, [one.public])
    return sender, receiver


def relayed(seal: ev.Seal, sender: bytes, seq: int) -> ev.Sealed:
    return ev.Sealed(
        room=seal.room,
        seq=seq,
        ts=1,
        sender=sender,
        counter=seal.counter,
        epoch=seal.epoch,
        kind=seal.kind,
        ct=seal.ct,
        sig=seal.sig,
    )


def texts(events: list[SecretMessage | SecretNotice]) -> list[str]:
    return [e.text for e in events]


def test_tampered_frames_are_dropped_and_reported(room_keys: RoomKeys) -> None:
    sender, receiver = make_pair(room_keys)
    key = sender.identity.public
    good = relayed(sender.seal("alice", "hello", "msg"), key, 1)
    flipped = bytes([good.ct[0] ^ 1]) + good.ct[1:]
    cases = {
        "ciphertext": replace(good, ct=flipped),
        "kind (associated data)": replace(good, kind="me"),
        "counter (associated data)": replace(good, counter=7),
        "epoch (associated data)": replace(good, epoch=1),
        "forged sender": replace(good, sender=Identity.generate().public),
    }
    for what, frame in cases.items():
        events, _ = receiver.receive(frame)
        assert len(events) == 1 and isinstance(events[0], SecretNotice), what
        assert events[0].kind == "dropped" and "dropped a message" in events[0].text, what
    # A frame moved into another room (the room id is in the associated data).
    other_keys = derive_room_keys("elsewhere", PASSPHRASE, bytes(32))
    elsewhere = joined_channel("elsewhere", other_keys, Identity.generate(), [key])
    moved, _ = elsewhere.receive(replace(good, room=other_keys.room_id))
    assert isinstance(moved[0], SecretNotice) and moved[0].kind == "dropped"
    events, _ = receiver.receive(good)  # the untouched frame still opens
    assert texts(events) == ["hello"]


def test_replays_reordering_and_withheld_messages(room_keys: RoomKeys) -> None:
    sender, receiver = make_pair(room_keys)
    key = sender.identity.public
    frames = [relayed(sender.seal("alice", f"m{i}", "msg"), key, i) for i in range(1, 6)]
    assert texts(receiver.receive(frames[0])[0]) == ["m1"]
    replay, _ = receiver.receive(frames[0])
    assert isinstance(replay[0], SecretNotice) and replay[0].kind == "dropped"
    assert "(replay)" in replay[0].text
    # m2 and m3 are withheld; m4 arrives: the gap is reported, then m4 shown.
    events, _ = receiver.receive(frames[3])
    assert texts(events) == [f"2 messages missing from alice#{sender.identity.fingerprint}", "m4"]
    late, _ = receiver.receive(frames[1])  # reordered: older than what was accepted
    assert isinstance(late[0], SecretNotice) and late[0].kind == "dropped"
    assert texts(receiver.receive(frames[4])[0]) == ["m5"]


def sealed_at(channel: SecretChannel, ts_ms: int, text: str, seq: int) -> ev.Sealed:
    """``channel`` seals ``text`` with its clock at ``ts_ms``; the daemon numbers it ``seq``."""
    assert channel.sealer is not None
    sealed = channel.sealer.seal("alice", ts_ms, text, "msg")
    return ev.Sealed(
        room=channel.rid,
        seq=seq,
        ts=1,
        sender=channel.identity.public,
        counter=sealed.counter,
        epoch=sealed.epoch,
        kind=sealed.kind,
        ct=sealed.ciphertext,
        sig=sealed.signature,
    )


def test_stale_timestamps_are_marked(room_keys: RoomKeys) -> None:
    sender, receiver = make_pair(room_keys)
    ahead = now_ms() + STALE_MS + 60_000  # a sender's clock 6 minutes fast
    (message,), _ = receiver.receive(sealed_at(sender, ahead, "from the future", 1))
    assert isinstance(message, SecretMessage) and message.stale


def test_a_message_sealed_before_we_joined_is_history_never_live(room_keys: RoomKeys) -> None:
    """Audit hole 4: a daemon replaying a member's old message to someone who has
    not seen that member yet, as if it were new."""
    sender, receiver = make_pair(room_keys)
    receiver.join_seq = 10  # our join reply was seq 10
    old = sealed_at(sender, receiver.joined_at - STALE_MS - 1_000, "said an hour ago", 11)
    (notice,), _ = receiver.receive(old)
    assert isinstance(notice, SecretNotice) and notice.kind == "dropped"
    assert "sealed before we joined" in notice.text
    # The same message as history (numbered before our join) is shown as history:
    # old by nature, so not flagged for its clock.
    (message,), _ = receiver.receive(replace(old, seq=9))
    assert isinstance(message, SecretMessage) and message.history and not message.stale
    line = format_event(message) or ""
    assert "[history: said before you joined]" in line and "clock" not in line
    shown = secret_message_line(message, lambda ts: "12:00").plain
    assert "history: said before you joined" in shown and "clock" not in shown
    # Within the clock-skew allowance it is taken as live (docs/security.md says so).
    recent = sealed_at(sender, receiver.joined_at - STALE_MS + 60_000, "a minute ago", 12)
    (message,), _ = receiver.receive(recent)
    assert isinstance(message, SecretMessage) and message.text == "a minute ago"


def test_messages_from_keys_that_are_not_members_are_refused(room_keys: RoomKeys) -> None:
    """Audit hole 4: someone who left (or never came) spoke, as the daemon tells it."""
    _, receiver = make_pair(room_keys)
    stranger = joined_channel(ROOM, room_keys, Identity.generate(), [])
    frame = relayed(stranger.seal("eve", "I never joined", "msg"), stranger.identity.public, 5)
    (notice,), _ = receiver.receive(frame)
    assert isinstance(notice, SecretNotice) and notice.kind == "dropped"
    assert "not a member" in notice.text
    # Once the daemon says they joined, their (fresh) messages are taken.
    receiver.presence(
        ev.SecretPresence(room=receiver.rid, seq=6, ts=1, kind="join", sender=frame.sender)
    )
    assert texts(receiver.receive(replace(frame, seq=7))[0]) == ["I never joined"]
    # After they leave, nothing more of theirs is.
    receiver.presence(
        ev.SecretPresence(room=receiver.rid, seq=8, ts=1, kind="leave", sender=frame.sender)
    )
    late = relayed(stranger.seal("eve", "after leaving", "msg"), stranger.identity.public, 9)
    (notice,), _ = receiver.receive(late)
    assert isinstance(notice, SecretNotice) and "not a member" in notice.text


def test_a_message_of_another_incarnation_of_the_room_is_refused(room_keys: RoomKeys) -> None:
    """Audit hole 4: the room was made again (same name, same passphrase, a new
    owner key); a message of the old incarnation replayed into it does not verify."""
    sender, receiver = make_pair(room_keys)
    old = relayed(sender.seal("alice", "in the old room", "msg"), sender.identity.public, 1)
    again = Identity.generate()
    receiver.joined(
        ev.SecretJoined(
            id=1,
            room=receiver.rid,
            seq=0,
            members=[sender.identity.public, receiver.identity.public],
            owner_key=again.public,
            owner_tag=room_keys.owner_tag(again.public),
        )
    )
    (notice,), _ = receiver.receive(old)
    assert isinstance(notice, SecretNotice) and notice.kind == "dropped"
    assert "signature does not match" in notice.text


async def test_line_mode_secret_room(daemon: Daemon, connect: ClientFactory) -> None:
    alice = await connect("alice")
    await alice.create_secret(ROOM, PASSPHRASE)
    fp = ident(alice, ROOM).fingerprint
    script = (
        f"/secret {ROOM}\nwrong\n/secret {ROOM}\n{PASSPHRASE}\nhi from a script\n/privacy\n"
        f"/verify #{fp}\n/verify #{fp} 1234\n"
    )
    proc = await start_line_mode(daemon, "--nick", "bot")
    out, _ = await proc.communicate(script.encode())
    text = out.decode()
    assert proc.returncode == 0
    assert "error: no such room or wrong passphrase (join_denied)" in text
    assert "you joined the secret room" in text
    assert "end-to-end encrypted. The server cannot see the room's name" in text
    assert PASSPHRASE not in text  # never echoed back
    seen = alice.secret_channel(ROOM).verification(f"#{fp}")  # (alice's own key)
    assert f"their long fingerprint: {seen.ours}" in text
    assert "not verified (someone in between, or a typo?) (bad_proof)" in text
    (msg,) = await secret_events(alice, 1)
    assert (msg.nick, msg.text) == ("bot", "hi from a script")


async def test_leaving_and_joining_again_never_repeats_a_nonce(connect: ClientFactory) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    await alice.create_secret(ROOM, PASSPHRASE)
    await bob.join_secret(ROOM, PASSPHRASE)
    await bob.say_secret(ROOM, "first visit")
    sealer = bob.secret_channel(ROOM).sealer
    assert sealer is not None
    first = sealer.counter
    await bob.leave_secret(ROOM)
    await bob.join_secret(ROOM, PASSPHRASE)  # the same session key, so the same sending key
    channel = bob.secret_channel(ROOM)
    assert channel.sealer is sealer and sealer.counter > first  # counting on, not from 1
    await bob.say_secret(ROOM, "second visit")
    msgs = await secret_events(alice, 2)
    assert [m.text for m in msgs] == ["first visit", "second visit"]  # not dropped as replays


async def test_a_hello_storm_costs_one_here_and_never_delays_messages(
    make_daemon: DaemonFactory,
) -> None:
    """Audit hole 2: a member sending hello after hello made every member queue a
    ``here`` behind its messages.  Now a key's hello is answered once, a room has
    at most one ``here`` on its way, and announcements have their own turns."""
    # Messages: 3 at once, then one per 100 s: a message that waited behind an
    # announcement would never come within the test's timeout.
    daemon = await make_daemon(msg_burst=3, msg_rate=0.01, announce_burst=40)
    alice, bob, mallory = [await dial(daemon, n) for n in ("alice", "bob", "mallory")]
    await alice.create_secret(ROOM, PASSPHRASE)
    await bob.join_secret(ROOM, PASSPHRASE)
    heres = kept_sealed(alice, "here")
    await mallory.join_secret(ROOM, PASSPHRASE)
    mallory.pace = False
    channel = mallory.secret_channel(ROOM)
    for _ in range(30):
        hello = replace(channel.seal("mallory", "", "hello"), id=mallory._next_id())
        await mallory._request(hello, ev.Ok)
    async with asyncio.timeout(10):
        await bob.say_secret(ROOM, "not delayed")
        await bob.say_secret(ROOM, "nor this")
        # An owner action does not wait behind the ``here`` alice owes either.
        mallory_key = ident(mallory, ROOM).public
        await alice.secret_kick(ROOM, mallory_key)
    got = await secret_events(alice, 2)
    assert [m.text for m in got] == ["not delayed", "nor this"]
    assert mallory_key not in alice.secret_channel(ROOM).nicks
    await quiet(alice, 0.2)
    from_bob = [f for f in heres if f.sender == ident(bob, ROOM).public]
    assert len(from_bob) == 1  # one answer to mallory's key, however many hellos


@pytest.mark.parametrize(
    "sealed_nick", ["alice#m0hf>", "alice bob", "<alice>", "a\u202ename", "x" * 33, "\u0301a"]
)
def test_a_sealed_nick_breaking_the_nick_rules_is_shown_as_a_question_mark(
    room_keys: RoomKeys, sealed_nick: str
) -> None:
    """Audit hole 3: any UTF-8 up to 255 bytes was shown, so a member could make
    a line read as someone else's."""
    sender, receiver = make_pair(room_keys)
    fp = sender.identity.fingerprint
    (message,), _ = receiver.receive(
        relayed(sender.seal(sealed_nick, "hi", "msg"), sender.identity.public, 1)
    )
    assert isinstance(message, SecretMessage) and message.nick == "?"
    assert receiver.members() == sorted([f"?#{fp}", f"?#{receiver.identity.fingerprint}"])
    # An honest one is shown as sealed (after a rename notice from "?").
    (rename, message), _ = receiver.receive(
        relayed(sender.seal("Zoë", "hi", "msg"), sender.identity.public, 2)
    )
    assert isinstance(message, SecretMessage) and message.nick == "Zoë"
    assert rename.text == f"?#{fp} is now known as Zoë#{fp}"


async def test_a_nick_of_its_own_inside_a_secret_room(connect: ClientFactory) -> None:
    """Audit hole 9: one key per room per session, and a nick other than the public one."""
    alice, bob = await connect("alice"), await connect("bob")
    await alice.create_secret(ROOM, PASSPHRASE)
    await alice.create_secret("other", PASSPHRASE)
    await bob.join_secret(ROOM, PASSPHRASE, nick="owl")
    await bob.join_secret("other", PASSPHRASE)
    assert ident(bob, ROOM).public != ident(bob, "other").public  # not linkable by key
    assert bob.own_secret_label(ROOM) == f"owl#{ident(bob, ROOM).fingerprint}"
    await bob.say_secret(ROOM, "hoot")
    await bob.say_secret("other", "hello")
    got = await secret_events(alice, 2)
    assert [(m.room, m.nick, m.text) for m in got] == [
        (ROOM, "owl", "hoot"),
        ("other", "bob", "hello"),
    ]
    with pytest.raises(RequestError) as info:
        await bob.join_secret("third", PASSPHRASE, nick="owl#k3f9")
    assert info.value.code == Code.NICK_INVALID
    await bob.set_secret_nick(ROOM, "night-owl")
    await bob.say_secret(ROOM, "renamed")
    (msg,) = await secret_events(alice, 1)
    assert (msg.nick, msg.text) == ("night-owl", "renamed")


def test_in_slow_mode_announcements_rename_no_faster_than_messages(room_keys: RoomKeys) -> None:
    """Audit hole 8: talking through the nick of ``here`` announcements, which the
    daemon cannot read, went around slow mode."""
    sender, receiver = make_pair(room_keys)
    receiver.slow = 10  # as a verified mode action would set it
    key = sender.identity.public
    fp = sender.identity.fingerprint

    def at(ts: int, seq: int, nick: str, kind: str) -> ev.Sealed:
        return replace(
            relayed(sender.seal(nick, "" if kind == "here" else "hi", kind), key, seq), ts=ts
        )

    texts(receiver.receive(at(1_000, 1, "troll", "msg"))[0])
    for seq, nick in enumerate(["buy", "cheap", "pills"], start=2):  # within 10 s
        events, _ = receiver.receive(at(1_000 + seq * 1000, seq, nick, "here"))
        assert events == []  # held back: no rename notice, the nick stays
        assert receiver.nicks[key] == "troll"
    events, _ = receiver.receive(at(11_000, 9, "later", "here"))  # 10 s after its last message
    assert texts(events) == [f"troll#{fp} is now known as later#{fp}"]
    # Without slow mode, an announcement renames at once.
    receiver.slow = 0
    assert texts(receiver.receive(at(11_500, 10, "again", "here"))[0]) == [
        f"later#{fp} is now known as again#{fp}"
    ]


async def test_privacy_says_when_the_public_nick_is_sealed(connect: ClientFactory) -> None:
    """Audit holes 9 and 10: /privacy and the help must not claim the server cannot
    see the nick in a secret room while the public nick is what is sealed there."""
    bob = await connect("bob")
    await bob.create_secret(ROOM, PASSPHRASE)
    await bob.create_secret("other", PASSPHRASE, nick="owl")
    public = " ".join(privacy_report(bob, ROOM, True))
    assert "the nick inside your messages here is your public nick" in public
    own = " ".join(privacy_report(bob, "other", True))
    assert "here you are owl, a nick of this room's own" in own
    assert "public nick, which the server sees" not in own
    help_text = " ".join(text for _, text in PRIVACY)
    assert "the nicks in it" not in help_text and "unless you chose one" in help_text


async def test_old_messages_replayed_into_a_later_incarnation_or_to_a_newcomer_are_refused(
    connect: ClientFactory,
) -> None:
    """Audit hole 4, end to end: a hostile daemon keeps alice's sealed message and
    replays it as new to a newcomer, and into the room made again later."""
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    kept = kept_sealed(bob, "msg")
    await alice.create_secret(ROOM, PASSPHRASE)
    await bob.join_secret(ROOM, PASSPHRASE)
    await alice.say_secret(ROOM, "the drop is at nine")
    await secret_events(bob, 1)
    (old,) = kept
    # To a newcomer who never saw alice speak (no history on join here): alice is
    # a member, the message is hers and well signed, but sealed before carol joined.
    await alice.secret_mode(ROOM, history=False)
    # (The daemon also withholds the members' ``here`` answers, whose counters
    # would show the old message up as a replay.)
    rewrite(carol, lambda f: None if isinstance(f, ev.Sealed) and f.kind == "here" else f)
    await carol.join_secret(ROOM, PASSPHRASE)
    await quiet(carol, 0.1)
    channel = carol.secret_channel(ROOM)
    channel.joined_at += STALE_MS + 1  # (as if carol came a while later: no sleeping)
    carol._dispatch(replace(old, seq=old.seq + 100))
    notices = [e for e in await quiet(carol, 0.1) if isinstance(e, SecretNotice | SecretMessage)]
    assert [getattr(e, "kind", "message") for e in notices] == ["dropped"]
    assert "sealed before we joined" in notices[0].text
    # Everyone leaves; bob makes the room again (same name and passphrase): a new
    # incarnation, with a new owner key.  Alice's old message does not verify in it.
    for client in (alice, bob, carol):
        await client.leave_secret(ROOM)
    await bob.create_secret(ROOM, PASSPHRASE)
    await alice.join_secret(ROOM, PASSPHRASE)  # alice is a member again, same key
    await carol.join_secret(ROOM, PASSPHRASE)
    await quiet(carol, 0.1)
    again = carol.secret_channel(ROOM)
    assert again.rid == channel.rid and again.opener is not None
    assert channel.opener is not None and again.opener.owner != channel.opener.owner
    carol._dispatch(replace(old, seq=old.seq + 200))  # fresh enough, from a member...
    notices = [e for e in await quiet(carol, 0.1) if isinstance(e, SecretNotice | SecretMessage)]
    assert [getattr(e, "kind", "message") for e in notices] == ["dropped"]
    assert "signature does not match" in notices[0].text  # ...of another incarnation


async def test_verify_a_member_by_another_channel(connect: ClientFactory) -> None:
    """/verify: a long fingerprint and a safety number both sides compute alike;
    a member whose words match is marked verified for the session, in memory."""
    alice, bob = await connect("alice"), await connect("bob")
    await alice.create_secret(ROOM, PASSPHRASE)
    await bob.join_secret(ROOM, PASSPHRASE)
    await quiet(alice, 0.1)
    await quiet(bob, 0.1)
    a_fp, b_fp = ident(alice, ROOM).fingerprint, ident(bob, ROOM).fingerprint
    mine = alice.secret_verification(ROOM, f"bob#{b_fp}")
    theirs = bob.secret_verification(ROOM, f"#{a_fp}")
    assert mine.safety == theirs.safety and re.fullmatch(r"(\d{5} ){5}\d{5}", mine.safety)
    assert (mine.theirs, mine.ours) == (theirs.ours, theirs.theirs)
    assert mine.theirs.startswith(b_fp) and not mine.verified
    with pytest.raises(RequestError) as info:
        alice.verify_secret_member(ROOM, "bob", "0000-0000-0000-0000")
    assert info.value.code == Code.BAD_PROOF
    assert alice.secret_channel(ROOM).member_list() == sorted(
        [(f"alice#{a_fp}", False), (f"bob#{b_fp}", False)]
    )
    # What bob reads out: his long fingerprint (any case and spacing), or the safety number.
    done = alice.verify_secret_member(ROOM, "bob", mine.theirs.upper().replace("-", " "))
    assert done.verified
    assert bob.verify_secret_member(ROOM, "alice", theirs.safety).verified
    assert (f"bob#{b_fp}", True) in alice.secret_channel(ROOM).member_list()
    # Kept for the session (leaving and joining again), in memory only.
    await alice.leave_secret(ROOM)
    await alice.join_secret(ROOM, PASSPHRASE)
    await quiet(alice, 0.1)
    assert (f"bob#{b_fp}", True) in alice.secret_channel(ROOM).member_list()


async def test_seen_in_a_resume_is_the_highest_seq_the_join_reply_included(
    make_daemon: DaemonFactory,
) -> None:
    """protocol.md section 3: history arrives after the join reply with lower
    seqs, so what a resume names is the highest seq received, not the last."""
    daemon = await make_daemon()
    alice, bob = await dial(daemon, "alice"), await dial(daemon, "bob")
    await alice.create_secret(ROOM, PASSPHRASE)
    for i in range(3):
        await alice.say_secret(ROOM, f"history {i}")
    got: list[ev.Frame] = []

    def history_only(frame: ev.Frame) -> ev.Frame | None:
        """Withhold every live event, so the last frame bob gets is history."""
        joined = next((f for f in got if isinstance(f, ev.SecretJoined)), None)
        live = joined is not None and isinstance(frame, ev.Sealed) and frame.seq > joined.seq
        if live or isinstance(frame, ev.SecretPresence | ev.SecretActed):
            return None
        got.append(frame)
        return frame

    rewrite(bob, history_only)
    await bob.join_secret(ROOM, PASSPHRASE)
    await quiet(bob)
    joined = next(f for f in got if isinstance(f, ev.SecretJoined))
    events = [f for f in got if isinstance(f, ev.SecretJoined | ev.Sealed)]
    history = [f.seq for f in events if isinstance(f, ev.Sealed)]
    assert len(history) == 3 and max(history) < joined.seq and events[-1].seq in history
    assert [(s.secret, s.seq) for s in bob.seen() if not s.dm] == [(joined.room, joined.seq)]
    await alice.close()
    await bob.close()
