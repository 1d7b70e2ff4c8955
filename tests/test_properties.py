"""For any input, the layers a peer can reach raise only our own exceptions.

tests/test_wire.py (the frame decoder), tests/test_events.py (frame
validation) and tests/test_crypto.py (``Opener.open``) hold the layer-by-layer
properties; these cover what sits on top of them: the sans-I/O protocol fed
any bytes, and a client's secret channel fed any frame the daemon relays.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anonchat import events as ev
from anonchat.crypto import Identity, derive_room_keys
from anonchat.errors import ProtocolError, RemoteProtocolError
from anonchat.protocol import Connection, State
from anonchat.secret import SecretChannel, SecretMessage, SecretNotice
from anonchat.wire import encode_frame

from .helpers import joined_channel

NOW_SEQ = 7


@cache
def channel_parts() -> tuple[Any, Identity, Identity]:
    keys = derive_room_keys("property room", "correct horse battery staple", bytes(32))
    return keys, Identity.from_seed(bytes([1]) * 32), Identity.from_seed(bytes([2]) * 32)


def fresh_channel() -> SecretChannel:
    keys, me, _ = channel_parts()
    return joined_channel("property room", keys, me, [Identity.from_seed(bytes([2]) * 32).public])


def honest_sealed() -> ev.Sealed:
    keys, me, them = channel_parts()
    seal = joined_channel("property room", keys, them, [me.public]).seal("bob", "hi", "msg")
    return ev.Sealed(
        room=keys.room_id,
        seq=NOW_SEQ,
        ts=0,
        sender=them.public,
        counter=seal.counter,
        epoch=seal.epoch,
        kind=seal.kind,
        ct=seal.ct,
        sig=seal.sig,
    )


# -- the protocol, fed any bytes -------------------------------------------------


@settings(max_examples=300)
@given(
    st.sampled_from(["client", "server"]),
    st.lists(st.binary(max_size=300), max_size=8),
)
def test_any_bytes_fail_the_protocol_only_with_our_error(role: str, chunks: list[bytes]) -> None:
    conn = Connection(role, max_frame=1024)  # type: ignore[arg-type]
    frames: list[ev.Frame] = []
    for chunk in chunks:
        frames += conn.receive_data(chunk)  # never raises
        assert isinstance(conn.data_to_send(), bytes)
    frames += conn.receive_data(b"")  # end of stream
    assert all(isinstance(f, ev.Frame) for f in frames)
    if conn.state is State.FAILED:
        assert isinstance(conn.error, ProtocolError)


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=60), max_size=6))
def test_any_bytes_after_a_valid_hello_too(chunks: list[bytes]) -> None:
    conn = Connection("server", max_frame=1024)
    hello = encode_frame(ev.ClientHello(v=ev.PROTOCOL_VERSION).to_wire())
    assert [type(f) for f in conn.receive_data(hello)] == [ev.ClientHello]
    for chunk in chunks:
        conn.receive_data(chunk)
    if conn.state is State.FAILED:
        assert isinstance(conn.error, RemoteProtocolError)


# -- a secret channel, fed any relayed frame ---------------------------------------

anything = st.one_of(
    st.binary(max_size=300),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.text(max_size=20),
    st.none(),
    st.booleans(),
    st.sampled_from([bytes(32), bytes(64), bytes(272), "msg", "hello", "here", 0, 1]),
)
SEALED_KEYS = [f.name for f in dataclasses.fields(ev.Sealed)]


well_typed = st.fixed_dictionaries(
    {
        "room": st.binary(min_size=32, max_size=32),
        "seq": st.integers(0, 2**63 - 1),
        "ts": st.integers(0, 2**63 - 1),
        "sender": st.binary(min_size=32, max_size=32),
        "counter": st.integers(0, 2**64 - 1),
        "epoch": st.integers(0, 2**64 - 1),
        "kind": st.sampled_from(["msg", "me", "hello", "here", "x"]),
        "ct": st.binary(max_size=600) | st.sampled_from([bytes(272), bytes(528)]),
        "sig": st.binary(min_size=64, max_size=64),
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(well_typed | st.fixed_dictionaries({}, optional={k: anything for k in SEALED_KEYS}))
def test_any_relayed_map_is_refused_by_validation_or_dropped_by_the_channel(
    body: dict[str, Any],
) -> None:
    body["t"] = "sealed"
    try:
        frame = ev.from_wire(body, "client")
    except RemoteProtocolError:
        return
    assert isinstance(frame, ev.Sealed)
    events, _ = fresh_channel().receive(frame)  # never raises
    assert events and all(isinstance(e, SecretMessage | SecretNotice) for e in events)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["sender", "counter", "epoch", "kind", "ct", "sig", "seq", "ts"]),
    st.data(),
)
def test_a_changed_field_of_a_real_message_is_dropped_not_raised(name: str, data: Any) -> None:
    sealed = honest_sealed()
    strategies: dict[str, Any] = {
        "sender": st.binary(min_size=32, max_size=32),
        "counter": st.integers(0, 2**64 - 1),
        "epoch": st.integers(0, 2**64 - 1),
        "kind": st.text(max_size=16),
        "ct": st.binary(max_size=ev.SEALED_MAX),
        "sig": st.binary(min_size=64, max_size=64),
        "seq": st.integers(0, 2**63 - 1),
        "ts": st.integers(0, 2**63 - 1),
    }
    changed = dataclasses.replace(sealed, **{name: data.draw(strategies[name])})
    events, _ = fresh_channel().receive(changed)  # never raises
    if name in ("seq", "ts") or changed == sealed:
        assert isinstance(events[-1], SecretMessage)  # the daemon's numbers are not signed
    else:
        assert [e.kind for e in events if isinstance(e, SecretNotice)] == ["dropped"]
