"""The client's side of secret rooms, as a part of :class:`~anonchat.client.Client`.

Deriving a room's keys (Argon2id, in a thread), creating and joining with
the join proof and the key proof, sealing and opening messages through each
room's :class:`~anonchat.secret.SecretChannel`, signing owner actions, and
joining again with the kept keys after a reconnect.  The client keeps every
key in memory only.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from . import events as ev
from .crypto import Identity, RoomKeys, Sealer, derive_room_keys, key_proof, normalize_room
from .dm import DmEvent
from .errors import Code, ConnectionClosed, CryptoError, ProtocolError, RequestError
from .names import InvalidName, check_room
from .secret import SecretChannel, SecretEvent, Verification, check_sealed_nick, label
from .trust import pin_bytes

T = TypeVar("T", bound=ev.Frame)


class SecretRooms:
    """Secret-room requests of :class:`~anonchat.client.Client` (a mixin: the
    connection, the request machinery and the event queue are the client's)."""

    if TYPE_CHECKING:
        hello: ev.ServerHello
        nick: str
        pin: str
        _identities: dict[bytes, Identity]
        secret: dict[str, SecretChannel]
        _secret_by_id: dict[bytes, SecretChannel]
        _sealers: dict[bytes, dict[bytes, Sealer]]
        _acts_seen: dict[bytes, dict[bytes, int]]
        _verified: dict[bytes, set[bytes]]
        _secret_seen: dict[bytes, int]
        _said_at: dict[bytes, float]
        _here_pending: dict[bytes, bool]
        _tasks: set[asyncio.Task[None]]
        _events: asyncio.Queue[ev.Frame | SecretEvent | DmEvent | None]

        def _next_id(self) -> int: ...

        async def _message_turn(self) -> None: ...

        async def _announce_turn(self) -> None: ...

        async def _request(self, frame: ev.Frame, expect: type[T]) -> T: ...

        def _send(self, frame: ev.Frame) -> None: ...

        def check_message(self, text: str) -> None: ...

        def _check_open(self) -> None: ...

    @property
    def pin_bytes(self) -> bytes:
        """What secret-room keys are bound to: the server's pin (zeros without TLS)."""
        return pin_bytes(self.pin) if self.pin else bytes(32)

    async def _room_keys(self, name: str, passphrase: str) -> RoomKeys:
        try:
            check_room(normalize_room(name))
        except InvalidName as exc:
            raise RequestError(Code.ROOM_INVALID, str(exc)) from None
        if not passphrase:
            raise RequestError(Code.JOIN_DENIED, "a secret room needs a passphrase")
        # Argon2id takes a fifth of a second and 64 MiB: keep the event loop free.
        return await asyncio.to_thread(derive_room_keys, name, passphrase, self.pin_bytes)

    async def create_secret(
        self, name: str, passphrase: str, *, nick: str | None = None
    ) -> SecretChannel:
        """Create a secret room and own it; the daemon learns only its id, its public
        join key and its public owner key.  ``nick``: the nick to use inside the
        room (sealed, so the daemon never sees it); by default our public nick."""
        self._check_secret_nick(nick)
        keys = await self._room_keys(name, passphrase)
        owner_key = Identity.generate()
        frame = self._create_frame(keys, owner_key)
        return await self._enter_secret(name, keys, frame, owner_key, nick=nick)

    def _create_frame(self, keys: RoomKeys, owner_key: Identity) -> ev.SecretCreate:
        """Register the room's join key and a fresh owner key, vouched for by a tag
        only passphrase holders can make (the daemon keeps both, and cannot check it)."""
        return ev.SecretCreate(
            id=self._next_id(),
            room=keys.room_id,
            auth=keys.auth_public,
            proof=keys.join_proof(self.hello.challenge, self.pin_bytes),
            sender=self.secret_identity(keys.room_id).public,
            key_proof=self._key_proof(keys),
            owner_key=owner_key.public,
            owner_tag=keys.owner_tag(owner_key.public),
        )

    async def join_secret(
        self, name: str, passphrase: str, *, nick: str | None = None
    ) -> SecretChannel:
        """Join a secret room.  A wrong passphrase and a missing room both raise
        ``join_denied`` ("no such room or wrong passphrase").  ``nick``: as in
        :meth:`create_secret`."""
        self._check_secret_nick(nick)
        keys = await self._room_keys(name, passphrase)
        return await self._enter_secret(name, keys, self._join_frame(keys), nick=nick)

    @staticmethod
    def _check_secret_nick(nick: str | None) -> None:
        if nick is not None:
            try:
                check_sealed_nick(nick)
            except InvalidName as exc:
                raise RequestError(Code.NICK_INVALID, str(exc)) from None

    async def set_secret_nick(self, name: str, nick: str | None) -> None:
        """Use ``nick`` inside one secret room (None: our public nick again), and
        tell its members with a ``here`` announcement."""
        self._check_secret_nick(nick)
        channel = self.secret_channel(name)
        channel.nick = nick
        await self._send_sealed(channel, "", "here")

    def _join_frame(self, keys: RoomKeys) -> ev.SecretJoin:
        return ev.SecretJoin(
            id=self._next_id(),
            room=keys.room_id,
            proof=keys.join_proof(self.hello.challenge, self.pin_bytes),
            sender=self.secret_identity(keys.room_id).public,
            key_proof=self._key_proof(keys),
        )

    def _key_proof(self, keys: RoomKeys) -> bytes:
        """That this session holds its key, for this room on this connection."""
        identity = self.secret_identity(keys.room_id)
        return key_proof(identity, keys.room_id, self.hello.challenge, self.pin_bytes)

    def secret_identity(self, room_id: bytes) -> Identity:
        """This session's key in one secret room: made on first use, kept for the
        session (across reconnects, and leaving and joining again, with its
        sealer's counter), never used in another room."""
        try:
            return self._identities[room_id]
        except KeyError:
            identity = self._identities[room_id] = Identity.generate()
            return identity

    async def _enter_secret(
        self,
        name: str,
        keys: RoomKeys,
        frame: ev.SecretJoin | ev.SecretCreate,
        owner_key: Identity | None = None,
        channel: SecretChannel | None = None,
        nick: str | None = None,
    ) -> SecretChannel:
        identity = self.secret_identity(keys.room_id)
        if channel is None:
            sealers = self._sealers.setdefault(keys.room_id, {})
            acts_seen = self._acts_seen.setdefault(keys.room_id, {})
            channel = SecretChannel.open_room(name, keys, identity, sealers, acts_seen)
            channel.verified = self._verified.setdefault(keys.room_id, set())
            channel.nick = nick
        self._secret_by_id[keys.room_id] = channel  # before the reply: frames may follow it
        try:
            await self._request(frame, ev.SecretJoined)
        except BaseException:
            self._secret_by_id.pop(keys.room_id, None)
            raise
        if owner_key is not None:  # we created this incarnation of the room
            channel.owner_key = owner_key
        self.secret[normalize_room(name)] = channel
        if channel.holds_owner_key and not channel.is_owner(identity.public):
            # The owner key grants our session key, so we act (and show) as ourselves.
            # Best effort: without the grant we still act, signing with the owner key.
            with contextlib.suppress(RequestError):
                await self._owner_act(channel, "op", identity.public)
        with contextlib.suppress(CryptoError, RequestError):  # we are in, announced or not
            await self._send_sealed(channel, "", "hello")
        return channel

    def sealed_nick(self, name: str) -> str | None:
        """The nick of a secret room's own we seal there, or None: our public nick."""
        channel = self.secret.get(normalize_room(name))
        return channel.nick if channel is not None else None

    def secret_member(self, name: str, who: str) -> tuple[bytes, str, bool]:
        """The session key of the member ``who`` (``bob``, ``bob#k3f9``) of the
        secret room ``name``, its label, and whether it is ours; ``no_such_nick``
        if nobody or several match."""
        channel = self.secret_channel(name)
        key = channel.resolve(who)
        return key, label(channel.nicks.get(key, ""), key), key == channel.identity.public

    def secret_verification(self, name: str, who: str) -> Verification:
        """``/verify bob#k3f9``: their long fingerprint, ours, and the safety number
        of the pair, to compare by another channel."""
        return self.secret_channel(name).verification(who)

    def verify_secret_member(self, name: str, who: str, heard: str) -> Verification:
        """``/verify bob#k3f9 WHAT-THEY-READ``: mark them verified for this session
        if it matches (``bad_proof`` if not); the member list then marks them."""
        return self.secret_channel(name).verify(who, heard)

    def own_secret_label(self, name: str) -> str:
        """How the members of a secret room see us: ``alice#k3f9`` (the nick we
        seal there, and our key's fingerprint in that room)."""
        channel = self.secret.get(normalize_room(name))
        if channel is None:
            return f"{self.nick}#?"
        return label(channel.nick or self.nick, channel.identity.public)

    def secret_channel(self, name: str) -> SecretChannel:
        channel = self.secret.get(normalize_room(name))
        if channel is None:
            raise RequestError(Code.NOT_MEMBER, f"you are not in the secret room {name}")
        return channel

    async def leave_secret(self, name: str) -> None:
        channel = self.secret_channel(name)
        await self._request(ev.SecretLeave(id=self._next_id(), room=channel.rid), ev.Ok)
        self._forget_secret(channel)

    def _forget_secret(self, channel: SecretChannel) -> None:
        self.secret.pop(normalize_room(channel.name), None)
        self._secret_by_id.pop(channel.rid, None)
        self._secret_seen.pop(channel.rid, None)

    async def say_secret(self, name: str, text: str, *, me: bool = False) -> int:
        """Seal and send a message; return its sequence number."""
        self.check_message(text)
        channel = self.secret_channel(name)
        self._check_slow(channel)
        return await self._send_sealed(channel, text, "me" if me else "msg")

    def _check_slow(self, channel: SecretChannel) -> None:
        """Slow mode, checked before sealing: a message the daemon refuses would
        have used up its counter, and the others would see it as missing.  The
        wait counts from our last message's ``ok``, which came after the daemon
        took its turn, so this never lets through what the daemon refuses."""
        chain = channel.chain
        if not channel.slow or chain is None or chain.may_act(channel.identity.public):
            return
        last = self._said_at.get(channel.rid)
        wait = 0.0 if last is None else last + channel.slow - time.monotonic()
        if wait > 0:
            message = f"this room is in slow mode: wait {math.ceil(wait)} s"
            raise RequestError(Code.SLOW_MODE, message)

    async def _send_sealed(self, channel: SecretChannel, text: str, kind: str) -> int:
        # Before sealing: a refusal would cost the counter.  Announcements have
        # their own turns (and budget at the daemon): messages never wait behind them.
        if kind in ("hello", "here"):
            await self._announce_turn()
        else:
            await self._message_turn()
        # Not sealed for a connection that is gone: a counter used by a message
        # that was never sent would show the others a gap ("1 message missing").
        # From here to the write below nothing waits, so this holds until then.
        self._check_open()
        try:
            frame = channel.seal(channel.nick or self.nick, text, kind)
        except CryptoError as exc:
            raise RequestError(Code.TEXT_TOO_LONG, exc.message) from None
        reply = await self._request(replace(frame, id=self._next_id()), ev.Ok)
        assert reply.seq is not None
        if kind in ("msg", "me"):
            self._said_at[channel.rid] = time.monotonic()
        return reply.seq

    async def _answer_hello(self, channel: SecretChannel) -> None:
        """Tell newcomers we are here (a ``here`` sealed message), in our turn.
        One ``here`` answers every hello that came before it is sealed, so a
        room has at most one on its way (a hello storm costs one per turn)."""
        try:
            while True:
                self._here_pending[channel.rid] = False
                with contextlib.suppress(
                    CryptoError, ConnectionClosed, ProtocolError, RequestError
                ):
                    await self._send_sealed(channel, "", "here")
                if not self._here_pending.get(channel.rid):
                    break  # no hello came while this one was on its way
        finally:
            self._here_pending.pop(channel.rid, None)

    def _secret_event(self, frame: ev.Sealed | ev.SecretPresence | ev.SecretActed) -> None:
        channel = self._secret_by_id.get(frame.room)
        if channel is None:
            return  # a room we just left
        events: list[SecretEvent]
        if isinstance(frame, ev.SecretPresence):
            events = channel.presence(frame)
        elif isinstance(frame, ev.SecretActed):
            notices, removed = channel.acted(frame)
            events = list(notices)
            if removed:
                self._forget_secret(channel)
        else:
            events, answer = channel.receive(frame)
            if answer and channel.rid in self._here_pending:
                self._here_pending[channel.rid] = True  # the one on its way may be sealed
            elif answer:
                self._here_pending[channel.rid] = False
                task = asyncio.get_running_loop().create_task(self._answer_hello(channel))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        for event in events:
            self._events.put_nowait(event)

    # -- moderation of secret rooms (signed by an owner, checked by everyone) ----

    async def secret_kick(self, name: str, who: str | bytes, *, ban: bool = False) -> None:
        """Remove a member (``bob``, ``bob#k3f9`` or a session key) from a secret room;
        with ``ban``, keep that session out for the room's lifetime."""
        channel = self.secret_channel(name)
        target = who if isinstance(who, bytes) else channel.resolve(who)
        await self._owner_act(channel, "ban" if ban else "kick", target)

    async def secret_op(self, name: str, who: str | bytes) -> None:
        """Grant a member owner rights in a secret room, signed by our owner rights."""
        channel = self.secret_channel(name)
        target = who if isinstance(who, bytes) else channel.resolve(who)
        await self._owner_act(channel, "op", target)

    async def secret_mode(
        self,
        name: str,
        *,
        locked: bool | None = None,
        slow: int | None = None,
        history: bool | None = None,
    ) -> None:
        """Change a secret room's modes; what is left as None stays as it is."""
        channel = self.secret_channel(name)
        await self._owner_act(channel, "mode", locked=locked, slow=slow, history=history)

    async def _owner_act(
        self, channel: SecretChannel, kind: str, target: bytes | None = None, **modes: Any
    ) -> None:
        for attempt in (1, 2):
            await self._message_turn()  # an owner action takes a message token too
            act = channel.sign_act(kind, target, **modes)
            try:
                await self._request(
                    ev.SecretAct(id=self._next_id(), room=channel.rid, act=act), ev.Ok
                )
                return
            except RequestError as exc:
                # Another owner's action took our number (it reached us before the
                # refusal did): sign again as the next one, once.
                taken = channel.chain is not None and channel.chain.counter >= act.counter
                if exc.code != Code.BAD_ACTION or attempt == 2 or not taken:
                    raise

    async def _rejoin_secret(self, channel: SecretChannel) -> None:
        keys = channel.keys
        join = self._join_frame(keys)
        try:
            await self._enter_secret(channel.name, keys, join, channel=channel)
        except RequestError as exc:
            if exc.code != Code.JOIN_DENIED:
                raise
            # The daemon forgot the room: this is a new incarnation with a new owner key,
            # so nothing signed for the old one can be replayed in it.
            owner_key = Identity.generate()
            try:
                await self._enter_secret(
                    channel.name, keys, self._create_frame(keys, owner_key), owner_key, channel
                )
            except RequestError as again:
                if again.code != Code.ROOM_EXISTS:  # another member made it again first
                    raise
                join = replace(
                    join,
                    id=self._next_id(),
                    proof=keys.join_proof(self.hello.challenge, self.pin_bytes),
                )
                await self._enter_secret(channel.name, keys, join, channel=channel)
