"""The anonchat load generator (also for the raw relay): one worker process of a workload point.

Fan-out (``fanout``, the primary workload, and ``fanout-ok``).  Senders of a
public room are lean: the same ``say`` frame, encoded once, written again and
again.  A sender keeps ``window`` messages in flight.  In ``fanout`` a message
stops being in flight when *another member* has received it: one receiver of
the worker (its *watcher*) counts each sender's messages by the bytes of its
nick (``"nick": "s3"``) and frees that many places in the sender's window --
what a user waits for, whatever the daemon answers.  In ``fanout-ok`` (the
secondary row) the daemon's ``ok`` frees the place instead.  In a secret room
senders are full :class:`anonchat.client.Client` sessions sealing through the
client's :class:`~anonchat.secret.SecretChannel`, ``window`` requests at a
time, gated the same way (the watcher counts the sender's session key).

Receivers are lean: they connect and join through the sans-I/O
:class:`anonchat.protocol.Connection` (hello, join, secret-room join proof),
then count the bytes that open every message frame (``"t": "msg"``, or
``"t": "sealed"``) with ``bytes.count``, as the IRC receivers count
`` PRIVMSG `` lines (benchmarks/ircload.py): no per-frame Python on either
side.  A delivery is a message received by a member other than its sender
(the daemon also sends a sender its own message; IRC does not; neither is
counted).  In the latency workload receivers decode every frame
(:class:`anonchat.wire.FrameDecoder`) to read its send time.  Receivers in a
secret room do not decrypt (Ed25519 verification alone would cost ~60 µs a
frame, far more than the daemon spends relaying it); the Argon2id derivation
is done once per worker and its keys reused for every receiver's join proof.

With ``raw`` (the raw relay, benchmarks/relay.py) there is no hello and no
join: the same lean receivers and senders, whose frames (shaped like the
daemon's ``msg`` frames) the relay passes on as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from functools import partial
from typing import Any

from anonchat import events as ev
from anonchat.client import Client
from anonchat.crypto import Identity, RoomKeys, derive_room_keys, key_proof
from anonchat.protocol import Connection
from anonchat.trust import client_context, pin_bytes, pin_of_cert
from anonchat.wire import FrameDecoder, encode_frame

from .common import (
    RING,
    Shared,
    Spec,
    Stats,
    TokenCounter,
    Watch,
    Watcher,
    gather_limited,
    in_two_halves,
    nick_token,
    on_schedule,
    peer_paced,
    run_worker,
    sent_at,
    stamp_text,
    wait_event,
)

READ_SIZE = 256 * 1024
ROOM_EVENTS = frozenset({"msg", "sealed"})
#: How a msg (sealed) frame's body begins after its map header: "t": "msg".
MSG_TOKEN = b"\xa1t\xa3msg"
SEALED_TOKEN = b"\xa1t\xa6sealed"
OK_TOKEN = b"\xa1t\xa2ok"
#: How a sealed frame names its sender's session key: "sender": bin 32.
SENDER_TOKEN = b"\xa6sender\xc4\x20"


def raw_frame(n: int, room: str, text: str | None = None) -> bytes:
    """What a sender writes to the raw relay: a frame shaped like the daemon's ``msg``."""
    text = stamp_text() if text is None else text
    body = {"t": "msg", "room": room, "seq": 0, "ts": 0, "nick": f"s{n}", "text": text}
    return encode_frame(body)


class FixedIdentity(dict[bytes, Identity]):
    """One known session key in every secret room (the benchmark tells senders
    apart by it)."""

    def __init__(self, identity: Identity) -> None:
        super().__init__()
        self.identity = identity

    def __missing__(self, room_id: bytes) -> Identity:
        return self.identity


def sender_identity(n: int) -> Identity:
    """A fixed session key per sender, so receivers can find a sealed frame's send time."""
    return Identity.from_seed(bytes([n + 1]) * 32)


class Receiver:
    """A lean member: connects, joins, then counts frames."""

    def __init__(self, spec: Spec, stats: Stats, nick: str) -> None:
        self.spec = spec
        self.stats = stats
        self.nick = nick
        self.conn = Connection("client")
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter
        self.hello: ev.ServerHello

    async def connect(self) -> None:
        spec = self.spec
        self.reader, self.writer = await asyncio.open_connection(
            spec.host,
            spec.port,
            ssl=client_context() if spec.tls else None,
            server_hostname="" if spec.tls else None,
            limit=READ_SIZE,
        )
        if spec.raw:
            return
        if spec.tls:
            cert = self.writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            if pin_of_cert(cert) != spec.pin:
                raise RuntimeError("the daemon's key does not match its pin")
        self.conn.send(ev.ClientHello(v=ev.PROTOCOL_VERSION, client="bench", nick=self.nick))
        frame = await self._request(None, ev.ServerHello)
        assert isinstance(frame, ev.ServerHello)
        self.hello = frame

    async def _request(self, frame: ev.Frame | None, expect: type[ev.Frame]) -> ev.Frame:
        if frame is not None:
            self.conn.send(frame)
        self.writer.write(self.conn.data_to_send())
        want = getattr(frame, "id", None)
        while True:
            data = await self.reader.read(READ_SIZE)
            for got in self.conn.receive_data(data):
                if isinstance(got, expect) and getattr(got, "id", None) == want:
                    return got
                if isinstance(got, ev.Error | ev.Bye) and getattr(got, "id", None) in (
                    None,
                    want,
                ):
                    raise RuntimeError(f"{self.nick}: {got.code}: {got.msg}")
            if self.conn.pending:
                self.writer.write(self.conn.data_to_send())
            if not data or self.conn.error is not None:
                raise RuntimeError(f"{self.nick}: connection closed during setup")

    async def join(self, room: str, create: bool = False) -> None:
        if self.spec.raw:
            return
        request = ev.Create(id=1, room=room) if create else ev.Join(id=1, room=room)
        await self._request(request, ev.Joined)

    async def join_secret(self, keys: RoomKeys, server_pin: bytes) -> None:
        proof = keys.join_proof(self.hello.challenge, server_pin)
        identity = Identity.generate()
        frame = ev.SecretJoin(
            id=1,
            room=keys.room_id,
            proof=proof,
            sender=identity.public,
            key_proof=key_proof(identity, keys.room_id, self.hello.challenge, server_pin),
        )
        await self._request(frame, ev.SecretJoined)

    async def run(self, latency: bool, senders: dict[bytes, int], watch: Watch) -> None:
        """Count room events until the connection ends (or the task is cancelled)."""
        stats = self.stats
        reader, writer = self.reader, self.writer
        # Finish the frame the setup connection may have half-read, then decode lean.
        while self.conn.buffered_in:
            data = await reader.read(READ_SIZE)
            if not data:
                stats.lose()
                return
            stats.add(sum(isinstance(f, ev.Msg | ev.Sealed) for f in self.conn.receive_data(data)))
        if self.spec.count_only:
            await self.count_frames(watch)
            return
        decoder = FrameDecoder()
        measuring = stats.sh.measuring
        ring = stats.sh.ring
        samples = stats.latencies
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    stats.lose()
                    return
                n = 0
                now = time.monotonic_ns()
                keep = latency and measuring.value
                for body in decoder.feed(data):
                    t = body["t"]
                    if t in ROOM_EVENTS:
                        n += 1
                        if keep:
                            if t == "msg":
                                samples.append(now - sent_at(body["text"]))
                            else:
                                slot = senders.get(body["sender"])
                                if slot is not None:
                                    samples.append(now - ring[slot * RING + body["counter"] % RING])
                    elif t == "ping":
                        writer.write(encode_frame(ev.Pong(n=body["n"]).to_wire()))
                stats.add(n)
        except (ConnectionError, OSError):
            stats.lose()

    async def count_frames(self, watch: Watch) -> None:
        """Count room messages by the bytes that open them, with ``bytes.count``.

        Every ``msg`` (``sealed``) frame's body starts with the map entry
        ``"t": "msg"`` (``"t": "sealed"``), which cannot occur inside the
        benchmark's ASCII texts and names; counting those bytes costs the
        receiver what counting `` PRIVMSG `` costs the IRC receivers
        (benchmarks/ircload.py), no per-frame Python.  A watcher also counts
        each watched sender's messages (by the bytes that name it) and frees
        as many places in that sender's window.
        """
        stats = self.stats
        messages = TokenCounter(SEALED_TOKEN if self.spec.secret else MSG_TOKEN)
        watcher = Watcher(watch)
        try:
            while True:
                data = await self.reader.read(READ_SIZE)
                if not data:
                    stats.lose()
                    return
                stats.add(messages.count(data))
                watcher.see(data)
        except (ConnectionError, OSError):
            stats.lose()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.transport.abort()


class LeanSender(Receiver):
    """A sender as lean as the IRC senders (public rooms, the raw relay): the
    same frame, encoded once, written ``window`` times, then once more for
    each place freed in its window -- by the watcher (``fanout``), or by each
    ``ok`` counted with ``bytes.count`` (``fanout-ok``; the daemon echoes
    request ids, it does not require them to differ).  The other senders'
    messages it receives count as deliveries, its own (the daemon sends them
    back) do not.  In the latency workload it writes a fresh frame (with its
    send time) at a fixed rate."""

    def __init__(self, spec: Spec, stats: Stats, n: int) -> None:
        super().__init__(spec, stats, f"s{n}")
        self.n = n
        self.frame = b""

    async def start(self, create: bool) -> None:
        await self.connect()
        await self.join(self.spec.room, create)
        self.frame = self.make_frame()

    def make_frame(self) -> bytes:
        if self.spec.raw:
            return raw_frame(self.n, self.spec.room)
        return encode_frame(ev.Say(id=2, room=self.spec.room, text=stamp_text()).to_wire())

    def credit(self, k: int) -> None:
        """The watcher saw ``k`` more of this sender's messages: send as many."""
        self.stats.sh.sent[self.stats.w] += k
        self.writer.write(self.frame * k)

    async def pump(self, window: int) -> None:
        stats, writer, reader = self.stats, self.writer, self.reader
        by_ok = not peer_paced(self.spec.mode)
        messages, own, oks = (
            TokenCounter(MSG_TOKEN),
            TokenCounter(nick_token(self.n)),
            TokenCounter(OK_TOKEN),
        )
        writer.write(self.frame * window)
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    stats.lose()
                    return
                stats.add(messages.count(data) - own.count(data))
                if by_ok:
                    acked = oks.count(data)
                    if acked:
                        self.credit(acked)
        except (ConnectionError, OSError):
            stats.lose()

    async def paced(self, rate: float) -> None:
        """Latency workload: a fresh frame every ``1 / rate`` seconds; what comes
        back is read and dropped (only other members measure latency)."""
        drain = asyncio.create_task(self._discard())
        sent, w = self.stats.sh.sent, self.stats.w

        def say() -> None:
            self.writer.write(self.make_frame())
            sent[w] += 1

        try:
            await on_schedule(1.0 / rate, say)
        finally:
            drain.cancel()

    async def _discard(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while await self.reader.read(READ_SIZE):
                pass


class Sender:
    """A full client that talks in a secret room (sealing needs the client's channel)."""

    def __init__(self, spec: Spec, stats: Stats, n: int) -> None:
        self.spec = spec
        self.stats = stats
        self.n = n
        self.client: Client
        self.received = 0
        self.key = sender_identity(n).public
        # Places in the window, freed by the watcher (fanout) or by the ok (fanout-ok).
        self.window = asyncio.Semaphore(0)

    async def connect(self, create: bool) -> None:
        spec = self.spec
        self.client = await Client.connect(
            spec.host, spec.port, nick=f"s{self.n}", tls=spec.tls, pin=spec.pin or None
        )
        client = self.client
        if spec.secret:
            client._identities = FixedIdentity(sender_identity(self.n))
            if create:
                await client.create_secret(spec.room, spec.passphrase)
            else:
                await client.join_secret(spec.room, spec.passphrase)
            # Count sealed frames instead of opening them (see the module docstring).
            setattr(client, "_secret_event", self._count_sealed)  # noqa: B010
        elif create:
            await client.create(spec.room)
        else:
            await client.join(spec.room)

    def _count_sealed(self, frame: ev.Sealed | ev.SecretPresence) -> None:
        if isinstance(frame, ev.Sealed) and frame.sender != self.key:
            self.stats.add(1)

    def credit(self, k: int) -> None:
        """The watcher saw ``k`` more of this sender's messages."""
        for _ in range(k):
            self.window.release()

    async def say(self) -> None:
        client = self.client
        if not self.spec.secret:
            await client.say(self.spec.room, stamp_text())
            return
        # say_secret, with the send time noted by (sender, counter) for the receivers.
        channel = client.secret_channel(self.spec.room)
        frame = channel.seal(client.nick, stamp_text(), "msg")
        self.stats.sh.ring[self.n * RING + frame.counter % RING] = time.monotonic_ns()
        await client._request(replace(frame, id=client._next_id()), ev.Ok)

    async def pump(self) -> None:
        """One of ``window`` loops: say, then wait for the ``ok`` and (``fanout``)
        for the watcher to see one more of this sender's messages."""
        sent = self.stats.sh.sent
        w = self.stats.w
        peer = peer_paced(self.spec.mode)
        while True:
            await self.say()
            sent[w] += 1
            if peer:
                await self.window.acquire()

    async def paced(self, rate: float) -> None:
        interval = 1.0 / rate
        inflight: set[asyncio.Task[None]] = set()
        try:
            await self._paced(interval, inflight)
        finally:
            for task in inflight:
                task.cancel()
            await asyncio.gather(*inflight, return_exceptions=True)

    async def _paced(self, interval: float, inflight: set[asyncio.Task[None]]) -> None:
        sent, w = self.stats.sh.sent, self.stats.w

        def say() -> None:
            if len(inflight) < 256:
                task = asyncio.create_task(self.say())
                inflight.add(task)
                task.add_done_callback(inflight.discard)
                sent[w] += 1

        await on_schedule(interval, say)

    async def drain_events(self) -> None:
        """Consume what the client queued (public rooms), counting messages."""
        while True:
            await asyncio.sleep(0.01)
            events = self.client.events_nowait()
            nick = self.client.nick
            self.stats.add(sum(isinstance(e, ev.Msg) and e.nick != nick for e in events))
            if self.client.closed is not None:
                self.stats.lose()
                return


async def main(spec: Spec, sh: Shared) -> dict[str, Any]:
    stats = Stats(spec, sh)
    server_pin = pin_bytes(spec.pin) if spec.tls else bytes(32)
    lean = spec.raw or not spec.secret  # full clients only where sealing needs one
    senders = [Sender(spec, stats, n) for n in ([] if lean else spec.senders)]
    lean_senders = [LeanSender(spec, stats, n) for n in (spec.senders if lean else [])]
    receivers: list[Receiver] = []
    tasks: list[asyncio.Task[None]] = []
    t0 = time.monotonic()
    try:
        if spec.creator and lean_senders:
            await lean_senders[0].start(create=True)
            sh.created.set()
        elif spec.creator and senders:
            await senders[0].connect(create=True)
            sh.created.set()
        elif spec.mode != "capacity":
            await wait_event(sh.created)
        keys = None
        if spec.secret:  # Argon2id once per worker, reused for every receiver
            keys = await asyncio.to_thread(derive_room_keys, spec.room, spec.passphrase, server_pin)
        for s in senders[1 if spec.creator else 0 :]:
            await s.connect(create=False)
        for ls in lean_senders[1 if spec.creator else 0 :]:
            await ls.start(create=False)

        async def setup(r: Receiver, room: str, create: bool) -> None:
            await r.connect()
            if keys is not None:
                await r.join_secret(keys, server_pin)
            else:
                await r.join(room, create)

        if spec.mode == "capacity":
            batches = [
                [Receiver(spec, stats, f"{room}m{i}") for i in range(members)]
                for room, members in spec.rooms
            ]
            for (room, _), batch in zip(spec.rooms, batches, strict=True):
                receivers += batch
                await setup(batch[0], room, True)  # the first creates the room
            await in_two_halves(
                [
                    partial(setup, r, room, False)
                    for (room, _), batch in zip(spec.rooms, batches, strict=True)
                    for r in batch[1:]
                ],
                spec.concurrency,
                spec,
                sh,
            )
        else:
            receivers = [
                Receiver(spec, stats, f"r{spec.worker}x{i}") for i in range(spec.receivers)
            ]
            await gather_limited(
                [partial(setup, r, spec.room, False) for r in receivers], spec.concurrency
            )
        setup_s = time.monotonic() - t0
        ids = {sender_identity(n).public: n for n in range(spec.all_senders)}
        latency = spec.mode == "latency"
        watch: Watch = []
        if peer_paced(spec.mode):
            if not receivers:
                raise RuntimeError("fan-out needs a receiver in every worker (the watcher)")
            watch = [(nick_token(ls.n), ls.credit) for ls in lean_senders]
            watch += [(SENDER_TOKEN + s.key, s.credit) for s in senders]
        tasks += [
            asyncio.create_task(r.run(latency, ids, watch if i == 0 else []))
            for i, r in enumerate(receivers)
        ]
        if not spec.secret:
            tasks += [asyncio.create_task(s.drain_events()) for s in senders]
        sh.status.put(("ready", spec.worker, len(receivers) + len(senders) + len(lean_senders)))
        await wait_event(sh.go)
        for ls in lean_senders:
            if spec.mode == "latency":
                tasks.append(asyncio.create_task(ls.paced(spec.rate)))
            else:
                tasks.append(asyncio.create_task(ls.pump(spec.window)))
        for s in senders:
            if spec.mode.startswith("fanout"):
                tasks += [asyncio.create_task(s.pump()) for _ in range(spec.window)]
            elif spec.mode == "latency":
                tasks.append(asyncio.create_task(s.paced(spec.rate)))
        await wait_event(sh.stop, 0.05)
        return {"setup_s": setup_s, "latencies": stats.latencies.tobytes(), "lost": stats.lost}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for r in [*receivers, *lean_senders]:
            if hasattr(r, "writer"):
                r.abort()
        for s in senders:
            if hasattr(s, "client"):
                s.client._writer.transport.abort()
                with contextlib.suppress(BaseException):
                    await s.client.close(timeout=0.1)


def worker(spec: Spec, sh: Shared) -> None:
    """multiprocessing target."""
    run_worker(main, spec, sh)
