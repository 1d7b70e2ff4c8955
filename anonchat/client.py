"""The one asyncio client of anonchat.

The TUI, the line mode, the tests and the benchmarks all talk to a daemon
through :class:`Client`; nothing else frames bytes.  Requests are coroutines
that return the server's answer or raise :class:`~anonchat.errors.RequestError`;
everything the server pushes (messages, presence, topic changes, a goodbye)
arrives through the async iterator :meth:`Client.events`.

    async with await Client.connect("127.0.0.1", 7667, nick="alice") as c:
        await c.join("lobby")
        await c.say("lobby", "hello")
        async for event in c.events():
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

from . import __version__
from . import events as ev
from .address import bad_character, check_host, format_address, is_loopback, parse_address
from .bucket import TokenBucket
from .crypto import Identity, Sealer, fingerprint, normalize_room
from .dial import Confirm as Confirm
from .dial import open_stream, verify_server
from .direct import DmCard, rotation_message, sealed_size, verify_rotation
from .dm import (
    ME_MARK,
    ROTATE_MARK,
    Conversation,
    DirectMessage,
    DmEvent,
    DmEvents,
    DmNotice,
    DmState,
    Invite,
    peer_of,
)
from .errors import Code, ConnectionClosed, CryptoError, Local, ProtocolError, RequestError
from .names import InvalidName, TextTooLong, check_nick, check_room, check_text, name_key
from .passphrases import generate_passphrase
from .protocol import Connection, State
from .room import (
    LOCK,
    DirectRoom,
    PublicRoom,
    Room,
    SecretRoom,
    public_key,
    room_keys,
    secret_key,
)
from .secret import SecretChannel, SecretEvent, SecretNotice, Verification, label
from .secret import now_ms as _now_ms
from .secret_client import SecretRooms
from .socks import describe_proxy
from .trust import KnownHosts as KnownHosts  # re-exported: front ends name known_hosts here
from .trust import TrustError as TrustError  # re-exported: front ends catch it here
from .trust import check_pin_syntax
from .wire import DEFAULT_MAX_FRAME

T = TypeVar("T", bound=ev.Frame)

#: The scheme of invite links: ``anonchat://HOST:PORT/ROOM?pin=sha256/...``.
LINK_SCHEME = "anonchat"

#: Pushed events a client buffers before it is considered too slow and closes.
EVENT_QUEUE_MAX = 100_000


@dataclass(frozen=True)
class Rotated:
    """What :meth:`Client.rotate_secret` did: the new room's passphrase, who was
    invited to follow it, and who was not (labels, with why)."""

    passphrase: str
    moved: list[str]
    left: list[str]


@dataclass
class Rejoined:
    """What :meth:`Client.rejoin` brought back."""

    joined: list[ev.Joined] = field(default_factory=list)  # public rooms
    secret: list[str] = field(default_factory=list)  # secret rooms, by name
    failed: list[tuple[str, str]] = field(default_factory=list)  # (room, reason)


_REPLY_TYPES = (ev.Ok, ev.Rooms, ev.Joined, ev.Members, ev.Error, ev.SecretJoined, ev.DmCard)

#: What :meth:`Client.events` yields: frames, and secret-room and direct-message
#: events opened here.
Event = ev.Frame | SecretEvent | DmEvent


def _reply_id(frame: ev.Frame) -> int | None:
    """The request id a frame answers, or None for a pushed event."""
    if isinstance(frame, _REPLY_TYPES):
        return frame.id
    return None


#: The daemon's default announcement budget (Limits.announce_burst and
#: announce_rate), which the hello does not carry: the client stays under it.
ANNOUNCE_BURST = 20
ANNOUNCE_INTERVAL = 0.5


class Pacer:
    """The daemon's message bucket, mirrored: ``burst`` messages at once, then
    one per ``interval`` seconds, with a margin (one message fewer, 5 % slower)
    for the network's jitter.  Messages (``say``, sealed messages, secret-room
    owner actions) wait for their turn here rather than be refused by the
    daemon: a refusal costs a strike, and a refused sealed message has used up
    its counter, so the others in the room would see "1 message missing"."""

    def __init__(self, burst: int, interval: float) -> None:
        # A daemon that did not say (interval 0): no pacing.
        self._bucket = (
            TokenBucket(max(1, burst - 1), interval * 1.05, time.monotonic())
            if interval > 0
            else None
        )

    def reserve(self) -> float:
        """Take the next turn; return how many seconds to wait before using it."""
        if self._bucket is None:
            return 0.0
        return self._bucket.spend(1, time.monotonic())


class Client(SecretRooms):
    """A connected, greeted client session.  Create it with :meth:`connect`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: Connection,
        hello: ev.ServerHello,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._conn = conn
        self.hello = hello
        self.nick = hello.nick
        self.pin = ""  # the server's key pin when connected with TLS
        self.proxy: tuple[str, int] | None = None  # the SOCKS5 proxy this connection goes through
        # A sentence about trust the user should read (a given pin that differs
        # from the one known_hosts remembers), or "".
        self.trust_note = ""
        self.closed: ConnectionClosed | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[ev.Frame]] = {}
        self._pings: dict[int, tuple[float, asyncio.Future[float]]] = {}
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        # This session's key in each secret room (by room id): one per room, so
        # members of two rooms cannot tell it is the same person by the key.
        self._identities: dict[bytes, Identity] = {}
        self.secret: dict[str, SecretChannel] = {}  # normalised name -> channel
        self._secret_by_id: dict[bytes, SecretChannel] = {}
        # Every secret room's sealer, kept after leaving: joining again with the same
        # session key must go on counting, or nonces would repeat under one key.
        # (by room id, then by the owner key naming the room's incarnation), and
        # the highest owner-action counter accepted there (spent actions stay spent).
        self._sealers: dict[bytes, dict[bytes, Sealer]] = {}
        self._acts_seen: dict[bytes, dict[bytes, int]] = {}
        # Members verified out of band (/verify), by room id: memory only, for the session.
        self._verified: dict[bytes, set[bytes]] = {}
        self.rooms: dict[str, str] = {}  # public rooms joined: key -> name
        self.topics: dict[str, str] = {}  # public rooms joined: key -> topic
        self._seen: dict[str, int] = {}  # public room key -> last seq received
        self._secret_seen: dict[bytes, int] = {}  # secret room id -> last seq received
        # Wait for the daemon's message rate rather than be refused (False: be refused).
        self.pace = True
        self._pacer = Pacer(hello.msg_burst, hello.msg_interval_us / 1_000_000)
        # Announcements (hello, here) have their own budget at the daemon, and
        # their own turns here: a message never waits behind one.
        self._announce_pacer = Pacer(ANNOUNCE_BURST, ANNOUNCE_INTERVAL)
        # Secret rooms with a ``here`` on its way -> whether a hello came meanwhile.
        self._here_pending: dict[bytes, bool] = {}
        self._said_at: dict[bytes, float] = {}  # secret room id -> our last message accepted
        self._tasks: set[asyncio.Task[None]] = set()
        # Direct messages: our DM keys, conversations and counters (memory only,
        # kept across reconnects: see dm.py), and the daemon's DM rate, mirrored.
        self.dms = DmState()
        self._dm_events = DmEvents(self.dms)
        self._dm_pacer = Pacer(hello.dm_burst, hello.dm_interval_us / 1_000_000)
        self._reader_task = asyncio.create_task(self._read_loop(), name="anonchat-client-reader")

    # -- connecting ----------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        nick: str | None = None,
        tls: bool = True,
        pin: str | None = None,
        known_hosts: KnownHosts | None = None,
        accept_new_host: bool = False,
        confirm: Confirm | None = None,
        proxy: tuple[str, int] | None = None,
        allow_remote_plaintext: bool = False,
        resume: Client | None = None,
        timeout: float | None = None,
        client_name: str = f"anonchat/{__version__}",
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> Client:
        """Open a connection, check the server's key, and exchange hellos.

        With ``tls`` (the default) the server's pin must be ``pin`` if given,
        else the one in ``known_hosts``; a server not seen before is trusted
        only if ``accept_new_host`` or ``await confirm(host, port, pin)`` says
        so, and is then added to ``known_hosts``.  All of this happens before
        a single frame is sent.  Plaintext (``tls=False``) is refused to
        anything but a loopback address unless ``allow_remote_plaintext``.

        ``resume`` is the client of a connection that was lost: the daemon
        gives this one its session back (nick, rooms) with every event it
        missed, if it still holds it (``resumed`` is then True).  Either way
        the new client keeps the old one's secret-room keys and session key.

        Raises :class:`ConnectionClosed` when the server cannot be reached, its
        key is wrong or not trusted, or it refuses the hello (``code`` says
        why: ``unreachable``, ``timeout``, ``host_key_changed``, ``nick_taken``, ...).
        """
        if timeout is None:
            timeout = 60.0 if proxy else 15.0  # Tor circuits take their time
        if nick is not None:
            try:
                check_nick(nick)
            except InvalidName as exc:
                raise ConnectionClosed(Code.NICK_INVALID, str(exc)) from None
        try:
            check_host(host)
        except ValueError as exc:
            raise ConnectionClosed(Local.BAD_ADDRESS, str(exc)) from None
        if not tls and not allow_remote_plaintext and not is_loopback(host):
            raise ConnectionClosed(
                Local.PLAINTEXT_REFUSED,
                f"refusing an unencrypted connection to {host}; use TLS, or say --plaintext",
            )
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await open_stream(host, port, tls, proxy, max_frame)
        except TimeoutError:
            raise ConnectionClosed(
                Local.TIMEOUT, f"no connection to {host}:{port} within {timeout:.0f} s"
            ) from None
        try:
            server_pin, note = "", ""
            if tls:
                server_pin, note = await verify_server(
                    writer, host, port, pin, known_hosts, accept_new_host, confirm
                )
            conn = Connection("client", max_frame)
            conn.send(
                ev.ClientHello(
                    v=ev.PROTOCOL_VERSION,
                    client=client_name,
                    nick=nick,
                    resume=resume.hello.token if resume else None,
                    seen=resume.seen() if resume else None,
                )
            )
            writer.write(conn.data_to_send())
            async with asyncio.timeout(timeout):
                hello, early = await cls._await_hello(reader, conn, tls)
        except BaseException:
            writer.close()
            raise
        client = cls(reader, writer, conn, hello)
        client.pin = server_pin
        client.proxy = proxy
        client.trust_note = note
        if resume is not None:
            client._inherit(resume)
        for frame in early:  # a resumed session's missed events can follow the hello at once
            client._dispatch(frame)
        if not client.resumed:  # (a resumed session kept its DM key at the daemon)
            try:
                await client._register_dm()
            except RequestError as exc:  # the session works on; direct messages do not
                client._events.put_nowait(client._dm_events.unavailable(exc.message))
            except BaseException:
                await client.close()
                raise
        return client

    @staticmethod
    async def _await_hello(
        reader: asyncio.StreamReader, conn: Connection, tls: bool
    ) -> tuple[ev.ServerHello, list[ev.Frame]]:
        try:
            while True:
                data = await reader.read(65536)
                frames = conn.receive_data(data)
                for i, frame in enumerate(frames):
                    if isinstance(frame, ev.ServerHello):
                        return frame, frames[i + 1 :]
                    if isinstance(frame, ev.Error | ev.Bye):
                        raise ConnectionClosed(frame.code, frame.msg)
                if conn.error is not None:
                    raise ConnectionClosed(conn.error.code, conn.error.message)
                if not data:
                    raise ConnectionClosed(
                        Local.EOF,
                        "the server closed the connection before hello"
                        + ("" if tls else "; is it a TLS daemon? then leave out --plaintext"),
                    )
        except OSError as exc:
            raise ConnectionClosed(Local.RESET, f"connection lost: {exc.strerror or exc}") from None
        except TimeoutError:
            raise ConnectionClosed(
                Local.TIMEOUT, "the server did not answer hello in time"
            ) from None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- requests ------------------------------------------------------------

    async def list_rooms(self) -> ev.Rooms:
        return await self._request(ev.ListRooms(id=self._next_id()), ev.Rooms)

    async def create(self, room: str, topic: str | None = None) -> ev.Joined:
        self._check(check_room, room, Code.ROOM_INVALID)
        return await self._request(ev.Create(id=self._next_id(), room=room, topic=topic), ev.Joined)

    async def join(self, room: str) -> ev.Joined:
        self._check(check_room, room, Code.ROOM_INVALID)
        return await self._request(ev.Join(id=self._next_id(), room=room), ev.Joined)

    async def join_or_create(self, room: str, topic: str | None = None) -> ev.Joined:
        """Join ``room``, creating it (with ``topic``) if it does not exist, as irc's
        /join does; if someone else creates it at the same moment, join theirs."""
        try:
            return await self.join(room)
        except RequestError as exc:
            if exc.code != Code.NO_SUCH_ROOM:
                raise
        try:
            return await self.create(room, topic)
        except RequestError as exc:
            if exc.code != Code.ROOM_EXISTS:
                raise
        return await self.join(room)

    async def leave(self, room: str) -> None:
        await self._request(ev.Leave(id=self._next_id(), room=room), ev.Ok)
        self.rooms.pop(name_key(room), None)
        self.topics.pop(name_key(room), None)
        self._seen.pop(name_key(room), None)

    async def who(self, room: str) -> ev.Members:
        self._check(check_room, room, Code.ROOM_INVALID)
        return await self._request(ev.Who(id=self._next_id(), room=room), ev.Members)

    async def say(self, room: str, text: str, *, me: bool = False) -> int:
        """Send a message; return its sequence number once the server accepted it."""
        self.check_message(text)
        await self._message_turn()
        reply = await self._request(ev.Say(id=self._next_id(), room=room, text=text, me=me), ev.Ok)
        assert reply.seq is not None
        return reply.seq

    def check_message(self, text: str) -> None:
        """Refuse a message the daemon would refuse, before anything is sent or sealed."""
        try:
            check_text(text, self.hello.max_text)
        except TextTooLong as exc:
            raise RequestError(Code.TEXT_TOO_LONG, str(exc)) from None
        except InvalidName as exc:
            raise RequestError(Code.TEXT_INVALID, str(exc)) from None

    # -- rooms, public and secret alike -----------------------------------------

    def room(self, name: str) -> Room | None:
        """The room this client is in that ``name`` means, or None.

        A joined secret room wins over a public room of the same name, and is
        matched both as the key schedule and as the daemon compare names: a
        command naming it must never send that name to the daemon in the clear.
        """
        name = name.strip().lstrip("#")
        for key in room_keys(name):
            found = self.room_by_key(key)
            if found is not None:
                return found
        return None

    def room_by_key(self, key: str) -> Room | None:
        """The joined room of a window key (:func:`anonchat.room.public_key`/``secret_key``),
        or the conversation of a direct-message window (:func:`anonchat.dm.dm_key`)."""
        peer = peer_of(key)
        if peer is not None:
            return DirectRoom(self, peer) if peer in self.dms.conversations else None
        for channel in self.secret.values():
            if key in (secret_key(channel.name), LOCK + name_key(channel.name)):
                return SecretRoom(self, channel.name)
        if key in self.rooms:
            return PublicRoom(self, self.rooms[key])
        return None

    def joined_rooms(self) -> list[Room]:
        """Every room this connection is in: public ones, then secret ones."""
        public: list[Room] = [PublicRoom(self, name) for name in self.rooms.values()]
        return public + [SecretRoom(self, c.name) for c in self.secret.values()]

    async def join_room(self, name: str) -> tuple[Room, ev.Joined | None]:
        """``/join``: the room ``name`` means if we are in it (nothing is sent),
        else the public room ``name``, created if it does not exist."""
        found = self.room(name)
        if found is not None:
            return found, None
        joined = await self.join_or_create(name.strip().lstrip("#"))
        return PublicRoom(self, joined.room), joined

    async def create_room(
        self, name: str, topic: str | None = None
    ) -> tuple[Room, ev.Joined | None]:
        """``/create``: a new public room; a joined room of that name is returned
        as it is (a joined secret room's name is never sent)."""
        found = self.room(name)
        if found is not None:
            return found, None
        joined = await self.create(name.strip().lstrip("#"), topic)
        return PublicRoom(self, joined.room), joined

    async def enter_secret(
        self, name: str, passphrase: str, *, create: bool
    ) -> tuple[SecretRoom, str]:
        """Join a secret room, or with ``create`` create it (joining it if it
        exists already); return the room and how: ``joined``, ``created`` or
        ``already`` (we were in it: nothing was sent)."""
        found = self.room(name)
        if found is not None and isinstance(found, SecretRoom):
            return found, "already"
        name = name.strip().lstrip("#")
        if not create:
            await self.join_secret(name, passphrase)
            return SecretRoom(self, name), "joined"
        try:
            await self.create_secret(name, passphrase)
        except RequestError as exc:
            if exc.code != Code.ROOM_EXISTS:
                raise
            await self.join_secret(name, passphrase)
            return SecretRoom(self, name), "joined"
        return SecretRoom(self, name), "created"

    async def set_nick(self, nick: str) -> None:
        self._check(check_nick, nick, Code.NICK_INVALID)
        await self._request(ev.SetNick(id=self._next_id(), nick=nick), ev.Ok)
        self.nick = nick

    async def set_topic(self, room: str, topic: str) -> None:
        await self._request(ev.SetTopic(id=self._next_id(), room=room, topic=topic), ev.Ok)

    # -- resuming --------------------------------------------------------------

    @property
    def resumed(self) -> bool:
        """Whether this connection took back a lost session with everything it missed."""
        return self.hello.resumed

    def seen(self) -> list[ev.Seen]:
        """The last event received in each room, for resuming."""
        public = [
            ev.Seen(seq=seq, room=self.rooms[key])
            for key, seq in self._seen.items()
            if key in self.rooms
        ]
        secret = [
            ev.Seen(seq=seq, secret=rid)
            for rid, seq in self._secret_seen.items()
            if rid in self._secret_by_id
        ]
        return [*public, *secret, ev.Seen(seq=self.dms.seen, dm=True)]

    def _inherit(self, old: Client) -> None:
        """Keep the old connection's session key and secret-room keys (and counters:
        a sealer must never reuse a nonce), and, when resumed, its rooms."""
        self._identities = old._identities
        self.secret, self._secret_by_id = old.secret, old._secret_by_id
        self._sealers, self._acts_seen = old._sealers, old._acts_seen
        self._verified = old._verified
        self.dms = old.dms
        self._dm_events = DmEvents(self.dms)
        if not self.resumed:
            self.dms.seen = 0  # a new session: the daemon numbers its DMs from 1
        if self.resumed:
            self.rooms, self._seen = dict(old.rooms), dict(old._seen)
            self._secret_seen = dict(old._secret_seen)

    async def rejoin(self, old: Client) -> Rejoined:
        """After a connection that did not resume: join the old client's rooms again.

        Public rooms the daemon forgot are created again; secret rooms are
        joined (or created) with the keys held in memory, so no passphrase is
        needed.  Says which rooms came back and which failed, with the reason.
        """
        result = Rejoined()
        for name in old.rooms.values():
            try:
                result.joined.append(await self.join_or_create(name))
            except RequestError as exc:
                result.failed.append((name, exc.message))
        channels = list(self._secret_by_id.values())
        self.secret, self._secret_by_id = {}, {}
        for channel in channels:
            try:
                await self._rejoin_secret(channel)
                result.secret.append(channel.name)
            except RequestError as exc:
                result.failed.append((channel.name, exc.message))
        return result

    def _note_seq(self, frame: ev.Frame) -> None:
        """Remember the last event seen per room (what a resume asks for)."""
        if isinstance(frame, ev.Msg | ev.Presence | ev.TopicChanged | ev.ModeChanged | ev.Joined):
            key = name_key(frame.room)
            self._seen[key] = max(self._seen.get(key, 0), frame.seq)
        elif isinstance(frame, ev.Sealed | ev.SecretPresence | ev.SecretJoined | ev.SecretActed):
            self._secret_seen[frame.room] = max(self._secret_seen.get(frame.room, 0), frame.seq)

    # -- direct messages (dm.py, direct.py) ----------------------------------------

    async def _register_dm(self) -> None:
        """Give the daemon our DM card, proven for this connection."""
        identity = self.dms.identity
        card = identity.card
        proof = identity.proof(self.hello.challenge, self.pin_bytes)
        frame = ev.DmKey(id=self._next_id(), sign=card.sign, dh=card.dh, sig=card.sig, proof=proof)
        await self._request(frame, ev.Ok)

    @property
    def dm_fingerprint(self) -> str:
        """The fingerprint of our DM key (what others see beside our nick in a DM)."""
        return fingerprint(self.dms.identity.sign)

    async def open_dm(self, who: str, room: str | None = None) -> Conversation:
        """The conversation with ``who``: a nick, or (``room``: a secret room we are
        in) a member named ``bob#k3f9`` there.  Asks the daemon for their DM key;
        a nick whose conversation had another key is announced (``key_changed``)."""
        if room is None:
            self._check(check_nick, who, Code.NO_SUCH_NICK)
            return await self._take_card(ev.DmLookup(id=self._next_id(), nick=who))
        channel = self.secret_channel(room)
        member = channel.resolve(who)
        if member == channel.identity.public:
            raise RequestError(Code.NO_SUCH_NICK, "that is you")
        return await self._member_card(channel, member)

    async def _member_card(self, channel: SecretChannel, member: bytes) -> Conversation:
        """A member of a secret room: the daemon does not tell its public nick,
        and ours stays hidden from it too (we seal the nick we have there)."""
        frame = ev.DmLookup(id=self._next_id(), room=channel.rid, member=member)
        conversation = await self._take_card(frame, channel.nicks.get(member) or "?")
        conversation.own_nick = channel.nick or self.nick
        return conversation

    async def _take_card(self, frame: ev.DmLookup, hidden_as: str = "") -> Conversation:
        reply = await self._request(frame, ev.DmCard)
        card = DmCard(reply.sign, reply.dh, reply.sig)
        if card.sign == self.dms.identity.sign:
            raise RequestError(Code.NO_SUCH_NICK, "that is you")
        nick = hidden_as or reply.nick
        conversation, notices = self._dm_events.take_card(card, nick, bool(hidden_as))
        for notice in notices:
            self._events.put_nowait(notice)
        return conversation

    def conversation(self, peer: bytes) -> Conversation | None:
        return self.dms.conversations.get(peer)

    async def send_dm(self, peer: bytes, text: str, *, me: bool = False) -> DirectMessage:
        """Seal ``text`` to the session whose DM key is ``peer`` (a conversation
        :meth:`open_dm` opened) and send it; return it as the window shows it
        (it also comes through :meth:`events`, marked ``own``)."""
        self.check_message(text)
        conversation = self.dms.conversations.get(peer)
        if conversation is None:
            raise RequestError(Code.NO_SUCH_NICK, "no conversation with that key")
        await self._send_dm_body(conversation, ME_MARK + text if me else text)
        sent = DirectMessage(
            peer=peer,
            nick=self._sealed_as(conversation),
            fingerprint=self.dm_fingerprint,
            text=text,
            ts=int(time.time() * 1000),
            own=True,
            me=me,
            to=conversation.label,
        )
        # Our own line comes through events() too, as a room's echo does.
        self._events.put_nowait(sent)
        return sent

    def _sealed_as(self, conversation: Conversation) -> str:
        """The nick we seal to them: in a conversation begun in a secret room, the
        one we have there (or "?": we do not know which room they know us from)."""
        if conversation.hidden:
            return conversation.own_nick or "?"
        return self.nick

    async def _send_dm_body(self, conversation: Conversation, body: str) -> None:
        nick = self._sealed_as(conversation)
        size = sealed_size(nick, body)
        if not size or (self.hello.dm_max and size > self.hello.dm_max):
            raise RequestError(
                Code.TEXT_TOO_LONG,
                f"too long for a direct message ({self.hello.dm_max} bytes sealed)",
            )
        if self.pace:
            wait = self._dm_pacer.reserve()
            if wait > 0:
                await asyncio.sleep(wait)
        self._check_open()  # before sealing: a counter spent on nothing would show a gap
        try:
            counter, ct = self.dms.peers.seal(
                conversation.card, nick, int(time.time() * 1000), body
            )
        except CryptoError as exc:
            raise RequestError(Code.BAD_KEY, exc.message) from None
        frame = ev.DmSend(
            id=self._next_id(),
            to=conversation.peer,
            counter=counter,
            ct=ct,
            hide_nick=conversation.hidden,
        )
        await self._request(frame, ev.Ok)

    # -- rotating a secret room (/secret rotate), over direct messages ------------

    async def rotate_secret(self, name: str) -> Rotated:
        """Move a secret room we own to a fresh room of the same name with a new
        generated passphrase: close the old one (a signed ``close``: no new
        message, no newcomer), make the new one, and invite each member still
        there -- never a banned key -- over direct messages, with an invitation
        signed by our session key in the old room.  Their clients follow it
        (:meth:`_follow_rotation`).  Returns the passphrase and who came along."""
        channel = self.secret_channel(name)
        me = channel.identity.public
        chain = channel.chain
        if chain is None or not channel.is_owner(me):
            raise RequestError(Code.NOT_OWNER, "only an owner of this room may rotate it")
        others = {k: n for k, n in channel.nicks.items() if k != me and k not in chain.banned}
        left = [label(channel.former.get(k, ""), k) + " (banned)" for k in sorted(chain.banned)]
        passphrase = generate_passphrase()
        keys = await self._room_keys(channel.name, passphrase)
        reached: dict[bytes, Conversation] = {}
        for key, nick in others.items():
            try:  # while we are still in the old room: the daemon answers members only
                reached[key] = await self._member_card(channel, key)
            except RequestError as exc:
                left.append(f"{label(nick, key)} ({exc.message})")
        old = channel.rid
        await self._owner_act(channel, "close")
        await self.leave_secret(channel.name)
        await self.create_secret(channel.name, passphrase, nick=channel.nick)
        moved = []
        for key, conversation in reached.items():
            message = rotation_message(old, keys.room_id, key, self.dms.identity.sign)
            invite = Invite(
                channel.name, passphrase, old, keys.room_id, me, channel.identity.sign(message),
                tuple(left), channel.nick or self.nick,
            )  # fmt: skip
            try:
                await self._send_dm_body(conversation, invite.body())
                moved.append(label(others[key], key))
            except RequestError as exc:
                left.append(f"{label(others[key], key)} ({exc.message})")
        return Rotated(passphrase, moved, left)

    async def _follow_rotation(self, message: DirectMessage) -> None:
        """An owner's invitation to the room that replaces one we are in: check it
        (an owner of that room signed it, for us, sent from this DM key; the
        passphrase gives the room it names), then leave the old room and join
        the new one under the same name.  Anything else is refused, visibly."""
        try:
            invite = Invite.parse(message.text)
        except ValueError:
            self._events.put_nowait(
                DmNotice(message.peer, message.nick, "refused a malformed invitation", "refused")
            )
            return
        channel = self._secret_by_id.get(invite.old)
        if channel is None:
            text = f"ignored an invitation from {message.nick} to follow a room you are not in"
            self._events.put_nowait(DmNotice(message.peer, message.nick, text, "refused"))
            return
        # (The signer left the old room before inviting: its nick as it says.)
        by = label(channel.nicks.get(invite.signer) or invite.nick, invite.signer)
        ok = channel.is_owner(invite.signer) and verify_rotation(
            invite.signer, invite.sig, invite.old, invite.new, channel.identity.public, message.peer
        )
        if ok and normalize_room(invite.room) != normalize_room(channel.name):
            ok = False
        keys = await self._room_keys(channel.name, invite.passphrase) if ok else None
        if keys is None or keys.room_id != invite.new:
            text = (
                f"ignored an invitation to leave this room for another, from {by}: it is not "
                "signed by an owner of this room for you, or its passphrase does not match"
            )
            self._events.put_nowait(SecretNotice(channel.name, 0, _now_ms(), text, "forged"))
            return
        with contextlib.suppress(RequestError):
            await self.leave_secret(channel.name)
        try:
            await self._enter_secret(channel.name, keys, self._join_frame(keys), nick=channel.nick)
        except RequestError as exc:
            text = f"{by} rotated this room, but joining the new one failed: {exc.message}"
            self._events.put_nowait(SecretNotice(channel.name, 0, _now_ms(), text, "forged"))
            return
        behind = ", ".join(invite.left) or "nobody"
        text = (
            f"{by} rotated this room: you followed to a new room of the same name with a new "
            f"passphrase (kept in memory only); not coming along: {behind}"
        )
        self._events.put_nowait(SecretNotice(channel.name, 0, _now_ms(), text, "rotated"))

    def dm_verification(self, peer: bytes) -> Verification:
        """``/verify`` in a conversation: both DM keys' long fingerprints and their
        safety number, to compare by another channel."""
        conversation = self.dms.conversations.get(peer)
        if conversation is None:
            raise RequestError(Code.NO_SUCH_NICK, "no conversation with that key")
        return self._dm_events.verification(conversation)

    def verify_dm(self, peer: bytes, heard: str) -> Verification:
        """Mark a conversation verified if ``heard`` (what they read out: their
        long fingerprint or the safety number) matches; ``bad_proof`` if not."""
        seen = self.dm_verification(peer)
        said = "".join(heard.split()).replace("-", "").casefold()
        wanted = {seen.theirs.replace("-", ""), seen.safety.replace(" ", "")}
        if said not in wanted:
            raise RequestError(
                Code.BAD_PROOF,
                "that is not their long fingerprint nor your safety number: not verified",
            )
        self.dms.conversations[peer].verified = True
        return self.dm_verification(peer)

    # -- moderation (owners of a public room) ------------------------------------

    async def kick(
        self, room: str, nick: str, msg: str | None = None, *, ban: bool = False
    ) -> None:
        """Remove ``nick`` from ``room``; with ``ban``, for the room's lifetime."""
        await self._request(
            ev.Kick(id=self._next_id(), room=room, nick=nick, msg=msg or None, ban=ban), ev.Ok
        )

    async def op(self, room: str, nick: str) -> None:
        """Make ``nick`` an owner of ``room`` too."""
        await self._request(ev.Op(id=self._next_id(), room=room, nick=nick), ev.Ok)

    async def set_mode(
        self,
        room: str,
        *,
        locked: bool | None = None,
        slow: int | None = None,
        history: bool | None = None,
    ) -> None:
        """Change a room's modes; what is left as None stays as it is."""
        frame = ev.RoomMode(
            id=self._next_id(), room=room, locked=locked, slow=slow, history=history
        )
        await self._request(frame, ev.Ok)

    async def ping(self) -> float:
        """Round-trip time to the server, in seconds."""
        n = self._next_id()
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._pings[n] = (time.perf_counter(), fut)
        self._send(ev.Ping(n=n))
        try:
            return await fut
        finally:
            self._pings.pop(n, None)

    @staticmethod
    def _check(check: Any, value: str, code: str) -> None:
        try:
            check(value)
        except InvalidName as exc:
            raise RequestError(code, str(exc)) from None

    def _next_id(self) -> int:
        return next(self._ids)

    async def _message_turn(self) -> None:
        """Wait until the daemon's message rate lets one more message through."""
        if self.pace:
            wait = self._pacer.reserve()
            if wait > 0:
                await asyncio.sleep(wait)

    async def _announce_turn(self) -> None:
        """Wait until the daemon's announcement rate lets one more through."""
        if self.pace:
            wait = self._announce_pacer.reserve()
            if wait > 0:
                await asyncio.sleep(wait)

    async def _request(self, frame: ev.Frame, expect: type[T]) -> T:
        fut: asyncio.Future[ev.Frame] = asyncio.get_running_loop().create_future()
        request_id: int = frame.id  # type: ignore[attr-defined]
        self._pending[request_id] = fut
        try:
            self._send(frame)
            await self._writer.drain()
            reply = await fut
        except (ConnectionError, OSError):
            raise self._closed_error() from None
        finally:
            self._pending.pop(request_id, None)
        if isinstance(reply, ev.Error):
            raise RequestError(reply.code, reply.msg)
        if not isinstance(reply, expect):
            raise ProtocolError(Code.UNEXPECTED_FRAME, f"expected {expect.TYPE}, got {reply.TYPE}")
        return reply

    def _check_open(self) -> None:
        """Raise ConnectionClosed unless a request can be sent now."""
        if self.closed is not None:
            raise self.closed
        if self._conn.state is not State.OPEN:
            # We said goodbye (the user quit) while a request was on its way.
            raise ConnectionClosed(Local.CLOSED, "the connection is closing")

    def _send(self, frame: ev.Frame) -> None:
        if not isinstance(frame, ev.Bye):
            self._check_open()
        elif self.closed is not None:
            raise self.closed
        self._conn.send(frame)
        self._writer.write(self._conn.data_to_send())

    # -- events --------------------------------------------------------------

    async def events(self) -> AsyncIterator[Event]:
        """Yield pushed frames (Msg, Presence, TopicChanged, Bye, Error) until closed."""
        while True:
            item = await self._events.get()
            if item is None:
                self._events.put_nowait(None)  # let other iterators end too
                return
            yield item

    def events_nowait(self) -> list[Event]:
        """Every pushed frame already received, without waiting."""
        out: list[Event] = []
        while not self._events.empty():
            item = self._events.get_nowait()
            if item is None:
                self._events.put_nowait(None)
                break
            out.append(item)
        return out

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._reader.read(65536)
                for frame in self._conn.receive_data(data):
                    self._dispatch(frame)
                if self._conn.pending:  # pongs the protocol answered on its own
                    self._writer.write(self._conn.data_to_send())
                if self._conn.error is not None:
                    self._set_closed(self._conn.error.code, self._conn.error.message)
                    return
                if not data or self._conn.state is State.CLOSED:
                    self._set_closed(Local.EOF, "the server closed the connection")
                    return
        except (ConnectionError, OSError) as exc:
            self._set_closed(Local.RESET, f"connection lost: {exc.strerror or exc}")
        finally:
            if self.closed is None:
                self._set_closed(Local.CLOSED, "the connection is closed")
            self._writer.close()

    def _dispatch(self, frame: ev.Frame) -> None:
        self._note_seq(frame)
        if isinstance(frame, ev.Joined):
            self.rooms[public_key(frame.room)] = frame.room
            self.topics[public_key(frame.room)] = frame.topic
        elif isinstance(frame, ev.TopicChanged):
            self.topics[public_key(frame.room)] = frame.topic
        if isinstance(frame, ev.SecretJoined) and frame.room in self._secret_by_id:
            # Now, not when the request returns: owner actions may follow at once.
            for event in self._secret_by_id[frame.room].joined(frame):
                self._events.put_nowait(event)
        reply_to = _reply_id(frame)
        if reply_to is not None:
            fut = self._pending.get(reply_to)
            if fut is not None and not fut.done():
                fut.set_result(frame)
            return
        if isinstance(frame, ev.Pong):
            start, pong_fut = self._pings.get(frame.n, (0.0, None))
            if pong_fut is not None and not pong_fut.done():
                pong_fut.set_result(time.perf_counter() - start)
            return
        if isinstance(frame, ev.Sealed | ev.SecretPresence | ev.SecretActed):
            self._secret_event(frame)
            return
        if isinstance(frame, ev.Dm):
            for dm_event in self._dm_events.received(frame):
                if isinstance(dm_event, DirectMessage) and dm_event.text.startswith(ROTATE_MARK):
                    task = asyncio.get_running_loop().create_task(self._follow_rotation(dm_event))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                    continue
                self._events.put_nowait(dm_event)
            return
        if isinstance(frame, ev.Missed) and frame.dm:
            self._events.put_nowait(self._dm_events.missed(frame))
            return
        if (
            isinstance(frame, ev.Presence)
            and frame.kind in ("kick", "ban")
            and frame.nick == self.nick
        ):
            self.rooms.pop(name_key(frame.room), None)  # an owner removed us
            self._seen.pop(name_key(frame.room), None)
        if isinstance(frame, ev.Presence) and frame.kind == "nick" and frame.nick == self.nick:
            assert frame.new is not None
            self.nick = frame.new
        self._events.put_nowait(frame)
        if self._events.qsize() > EVENT_QUEUE_MAX:
            self._set_closed(Local.EVENT_QUEUE_FULL, "events were not consumed; closing")
            self._writer.close()
        if isinstance(frame, ev.Error | ev.Bye):
            self._set_closed(frame.code, frame.msg)

    def _set_closed(self, code: str, msg: str) -> None:
        if self.closed is not None:
            return
        self.closed = ConnectionClosed(code, msg)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(self.closed)
        for _, pong_fut in self._pings.values():
            if not pong_fut.done():
                pong_fut.set_exception(self.closed)
        self._events.put_nowait(None)

    def _closed_error(self) -> ConnectionClosed:
        return self.closed or ConnectionClosed(Local.RESET, "connection lost")

    # -- closing -------------------------------------------------------------

    def abort(self, message: str) -> None:
        """Drop the connection at once, without a goodbye (the server stopped
        answering): ``closed`` says it was lost (``reset``), so a front end
        reconnects, and the daemon, told nothing, keeps the session to resume.
        :meth:`close` would say goodbye (``quit``), which ends the session for
        good once a stalled daemon reads it, and which no front end reconnects
        after."""
        self._set_closed(Local.RESET, message)
        self._writer.transport.abort()

    async def close(self, msg: str = "", timeout: float = 5.0) -> None:
        """Say goodbye and wait until the server has closed its side.

        Everything sent before was processed by the server once this returns,
        because the server handles a connection's frames in order.
        """
        if self.closed is None and self._conn.state is State.OPEN:
            with contextlib.suppress(ConnectionClosed, OSError):
                self._send(ev.Bye(code="quit", msg=msg))
                await self._writer.drain()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._reader_task), timeout)
        self._set_closed(Local.CLOSED, "the connection is closed")
        self._writer.close()
        for task in list(self._tasks):  # answers to newcomers still waiting for their turn
            task.cancel()
        if not self._reader_task.done():
            self._reader_task.cancel()
        with contextlib.suppress(BaseException):
            await self._reader_task
        with contextlib.suppress(OSError, ConnectionError):
            await self._writer.wait_closed()


@dataclass(frozen=True)
class Endpoint:
    """Where a daemon is and how to reach it safely: what a user typed or clicked.

    Built from flags or from an invite link (:meth:`from_url`); every front
    end (line mode, TUI) connects through :meth:`connect`.
    """

    host: str
    port: int
    tls: bool = True
    pin: str | None = None
    room: str | None = None
    proxy: tuple[str, int] | None = None
    accept_new_host: bool = False
    allow_remote_plaintext: bool = False
    known_hosts: KnownHosts | None = field(default_factory=KnownHosts)

    @property
    def via(self) -> str:
        """The proxy as the user sees it (``socks5 127.0.0.1:9050``), or ""."""
        return describe_proxy(self.proxy) if self.proxy else ""

    @property
    def label(self) -> str:
        """``HOST:PORT`` as the user sees it, and ``via socks5 ...`` with a proxy."""
        where = format_address(self.host, self.port)
        return f"{where} via {self.via}" if self.via else where

    async def connect(
        self,
        nick: str | None = None,
        confirm: Confirm | None = None,
        resume: Client | None = None,
    ) -> Client:
        return await Client.connect(
            self.host,
            self.port,
            nick=nick,
            tls=self.tls,
            pin=self.pin,
            known_hosts=self.known_hosts,
            accept_new_host=self.accept_new_host,
            confirm=confirm,
            proxy=self.proxy,
            allow_remote_plaintext=self.allow_remote_plaintext,
            resume=resume,
        )

    @classmethod
    def parse(cls, text: str, default_port: int) -> Endpoint:
        """What a user typed where a server goes: ``HOST[:PORT]``, ``[IPV6][:PORT]``,
        or an invite link (:meth:`from_url`), which brings its pin and room.

        The one parser of addresses (the command line's ``--server``, the
        connect screen, known_hosts all agree through :mod:`anonchat.address`);
        anything that is not an address raises ValueError with a sentence.
        """
        if text.strip().lower().startswith(f"{LINK_SCHEME}:"):
            return cls.from_url(text, default_port)
        host, port = parse_address(text, default_port)
        return cls(host, port)

    @classmethod
    def from_url(cls, url: str, default_port: int) -> Endpoint:
        """Parse ``anonchat://HOST[:PORT]/ROOM?pin=sha256/...``.

        A link never carries a passphrase: anything but one ``pin`` is
        refused, and so is a user part (``anonchat://trusted.example@evil.example/``
        would otherwise look like one server and connect to another).
        """
        text = url.strip()
        usage = f"not an anonchat link: {text!r} (anonchat://HOST:PORT/ROOM?pin=...)"
        char = bad_character(text)
        if char is not None:
            # urlsplit() would silently drop tabs and newlines from the middle.
            raise ValueError(f"{usage}: it holds a space or a control character")
        try:
            parts = urlsplit(text)
        except ValueError:
            raise ValueError(usage) from None
        if parts.scheme.lower() != LINK_SCHEME or not text[len(parts.scheme) :].startswith("://"):
            raise ValueError(usage)
        if "@" in parts.netloc:
            raise ValueError(
                f"refusing a link with a user part before '@': {text!r}; an anonchat "
                "link names its server right after anonchat://"
            )
        if not parts.netloc:
            raise ValueError(usage)
        try:
            host, port = parse_address(parts.netloc, default_port)
        except ValueError as exc:
            raise ValueError(f"bad server in link {text!r}: {exc}") from None
        pin = None
        for item in filter(None, parts.query.split("&")):
            key, _, value = item.partition("=")  # unquote, not unquote_plus: pins hold "+"
            if key != "pin":
                raise ValueError(f"unknown link parameter {key!r}; links carry only a pin")
            if pin is not None:
                raise ValueError(f"a link carries one pin, not several: {text!r}")
            try:
                pin = check_pin_syntax(unquote(value))
            except TrustError as exc:
                raise ValueError(str(exc)) from None
        room = unquote(parts.path.removeprefix("/")) or None
        if parts.fragment:  # anonchat://HOST/#lobby: the shell-unfriendly spelling of /lobby
            if room is not None:
                raise ValueError(f"a link names one room, not two: {text!r}")
            if "?" in parts.fragment:
                raise ValueError(
                    f"in {text!r} the pin would be read as part of the room after '#': "
                    "write the room without '#' (anonchat://HOST:PORT/ROOM?pin=...)"
                )
            room = unquote(parts.fragment)
        room = room.lstrip("#") or None if room is not None else None  # "#lobby" is "lobby"
        if room is not None:
            try:
                check_room(room)
            except InvalidName as exc:
                raise ValueError(f"bad room in link {text!r}: {exc}") from None
        return cls(host, port, pin=pin, room=room)

    def invite(self, pin: str, room: str | None = None) -> str:
        """An invite link to this daemon (and room), carrying its pin."""
        path = quote(room or self.room or "", safe="")
        where = format_address(self.host, self.port)
        return f"{LINK_SCHEME}://{where}/{path}?pin={quote(pin, safe='/')}"
