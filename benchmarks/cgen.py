"""The C load generator (benchmarks/fanout.c): build it, set up its members, drive it.

A generator in Python (benchmarks/load.py, ircload.py) needs about a core of
its own to keep ngircd or the raw relay busy: on a two-core machine it can be
the limit of the servers it measures.  So the fan-out workload (``fanout``) is
driven by a small C program, the same for every server.  Python does what is
protocol-specific, once, before the measured part: it connects every member
(blocking sockets, one after another), says hello and joins (anonchat),
registers and joins (IRC: senders are operators with user mode ``+F``) or
just connects (the raw relay), and encodes each sender's message (the whole
length-prefixed ``say`` frame; the ``PRIVMSG`` line; for the relay a frame
shaped like the daemon's ``msg``).  Then it starts the C program with the
sockets as inherited file descriptors and those bytes on its command line;
the C program runs one epoll loop over all of them (see the comment at the
top of fanout.c for the workload, which is load.py's ``fanout`` exactly).

It drives the latency workload too (:attr:`Plan.rate`): then each sender's
message is a template, a text of :func:`~benchmarks.common.stamp_text`'s
shape whose 20 digits (at an offset Python finds in the encoded frame or
line) the C program overwrites with the send time of each message it sends,
paced; every other member reads that time back after the bytes that precede
the text in a delivered message (:func:`stamp_prefix`) and keeps, while the
runner says it is measuring, the difference to the time of its read.  The
samples come back in a file (int64 nanoseconds), read into the final
report's ``latencies``: exact, as the Python generator's are.

The program is compiled with the system's C compiler (``cc -O2``, or ``$CC``)
into a cache directory outside the repository (``$ANONCHAT_BENCH_CACHE``, else
``$XDG_CACHE_HOME/anonchat-bench``, else ``~/.cache/anonchat-bench``), once per
version of its source; with OpenSSL's headers (``libssl-dev``) it is built
with TLS, and then drives anonchatd's TLS rows too: a TLS session cannot be
handed from Python to C, so for those the C program makes each TLS handshake
itself over the connected TCP socket, checks the daemon's pin, and writes the
hello and join frames Python encoded for it (one member after another, before
its loop).  Secret rooms stay with the Python generator: every message must be
sealed and signed by a protocol client, which this program is not.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from anonchat import events as ev
from anonchat.protocol import Connection
from anonchat.trust import pin_bytes
from anonchat.wire import encode_frame, pack_value

from .common import nick_token, stamp_text
from .load import raw_frame
from .ngircd import OPER_NAME, OPER_PASSWORD

SOURCE = Path(__file__).with_name("fanout.c")
#: How every delivered message is found in the byte stream (one per message).
ANONCHAT_MSG = b"\xa1t\xa3msg"  # the msgpack entry "t": "msg" (load.MSG_TOKEN)
IRC_MSG = b" PRIVMSG "
#: What ends a TLS member's setup (done by the C program): the msgpack entry "t": "joined".
JOINED = b"\xa1t\xa6joined"
SETUP_TIMEOUT = 10.0


class NoCompiler(RuntimeError):
    """No C compiler: the C generator cannot be built."""


def cache_dir() -> Path:
    env = os.environ.get("ANONCHAT_BENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "anonchat-bench"


def compiler() -> str | None:
    return shutil.which(os.environ.get("CC") or "cc")


def build() -> Path:
    """The compiled generator, built now if this version of fanout.c has not been:
    with TLS (``fanout-HASH-tls``) if OpenSSL's headers are there, else without."""
    cc = compiler()
    if cc is None:
        raise NoCompiler(
            "no C compiler found (cc): install one (apt-get install gcc), or use --generator python"
        )
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source + cc.encode()).hexdigest()[:16]
    directory = cache_dir()
    with_tls, plain = directory / f"fanout-{digest}-tls", directory / f"fanout-{digest}"
    if with_tls.exists():
        return with_tls
    directory.mkdir(parents=True, exist_ok=True)
    if _compile(cc, with_tls, ["-DFANOUT_TLS"], ["-lssl", "-lcrypto"]) is None:
        return with_tls
    if plain.exists():
        return plain
    error = _compile(cc, plain)
    if error is not None:
        raise RuntimeError(f"{cc} failed to compile {SOURCE.name}:\n{error}")
    return plain


def _compile(
    cc: str, exe: Path, defines: list[str] | None = None, libs: list[str] | None = None
) -> str | None:
    """Compile fanout.c into ``exe``; the compiler's complaint if it failed."""
    fd, tmp = tempfile.mkstemp(prefix="fanout-", dir=exe.parent)
    os.close(fd)
    try:
        cmd = [cc, "-O2", *(defines or []), "-o", tmp, str(SOURCE), *(libs or [])]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            return done.stderr.strip() or f"status {done.returncode}"
        os.replace(tmp, exe)  # atomic: a concurrent build finds a whole file or none
        return None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def has_tls(exe: Path) -> bool:
    """Whether this build of the generator can drive TLS members."""
    return exe.name.endswith("-tls")


def _connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=SETUP_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _quickack(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def anonchat_member(host: str, port: int, nick: str, room: str, create: bool) -> socket.socket:
    """A connection that said hello as ``nick`` and joined (or created) ``room``."""
    sock = _connect(host, port)
    conn = Connection("client")

    def request(frame: ev.Frame, expect: type[ev.Frame]) -> None:
        conn.send(frame)
        sock.sendall(conn.data_to_send())
        want = getattr(frame, "id", None)
        while True:
            data = sock.recv(65536)
            if not data:
                raise RuntimeError(f"{nick}: connection closed during setup")
            for got in conn.receive_data(data):
                if isinstance(got, expect) and getattr(got, "id", None) == want:
                    return
                if isinstance(got, ev.Error | ev.Bye):
                    raise RuntimeError(f"{nick}: {got.code}: {got.msg}")
            if conn.pending:
                sock.sendall(conn.data_to_send())

    try:
        request(ev.ClientHello(v=ev.PROTOCOL_VERSION, client="bench", nick=nick), ev.ServerHello)
        request(ev.Create(id=1, room=room) if create else ev.Join(id=1, room=room), ev.Joined)
    except BaseException:
        sock.close()
        raise
    return sock


def irc_member(host: str, port: int, nick: str, channel: str, oper: bool) -> socket.socket:
    """A registered IRC connection in ``channel`` (an operator with ``+F`` if ``oper``)."""
    # ngircd listens with a short accept backlog: a connection lost in it is retried.
    for attempt in range(5):
        try:
            return _irc_member(host, port, nick, channel, oper)
        except (TimeoutError, ConnectionError, OSError):
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def _irc_member(host: str, port: int, nick: str, channel: str, oper: bool) -> socket.socket:
    sock = _connect(host, port)
    _quickack(sock)
    buf = b""

    def send(*lines: str) -> None:
        sock.sendall("".join(f"{line}\r\n" for line in lines).encode())

    def until(*codes: bytes) -> None:
        nonlocal buf
        while True:
            data = sock.recv(65536)
            _quickack(sock)
            if not data:
                raise ConnectionError(f"{nick}: the server closed the connection")
            *lines, buf = (buf + data).split(b"\r\n")
            for line in lines:
                if line.startswith(b"PING "):
                    send("PONG " + line[5:].decode())
                parts = line.split(b" ", 2)
                if len(parts) > 1 and parts[1] in codes:
                    return
                if len(parts) > 1 and parts[1] in (b"432", b"433", b"464", b"491", b"ERROR"):
                    raise RuntimeError(f"{nick}: {line.decode(errors='replace')}")

    try:
        send(f"NICK {nick}", f"USER {nick} 0 * :bench")
        until(b"376", b"422")  # end of (or no) MOTD: registered
        if oper:
            send(f"OPER {OPER_NAME} {OPER_PASSWORD}")
            until(b"381")
            send(f"MODE {nick} +F")
        send(f"JOIN {channel}")
        until(b"366")  # end of NAMES
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass
class Plan:
    """A fan-out point for the C generator."""

    kind: str  # anonchat | irc | raw
    host: str
    port: int
    members: int
    senders: int
    window: int = 4
    room: str = "bench"
    tls: bool = False  # anonchat over TLS: the C program makes the handshakes
    pin: str = ""  # the daemon's pin (with tls)
    limit: int | None = None  # messages per sender, then stop (tests)
    timeout: float = 60.0  # with ``limit``
    rate: float | None = None  # latency: messages a second per sender, paced (no window)
    socks: list[socket.socket] = field(default_factory=list)
    args: list[str] = field(default_factory=list)


def stamp_prefix(kind: str, room: str, text: str) -> bytes:
    """What comes just before a message's text (so its send time) as members
    receive it: the msgpack key ``"text"`` and the text's header (anonchat and
    the relay, whose frames are relayed as they are), or IRC's
    `` PRIVMSG #room :``."""
    if kind == "irc":
        return f" PRIVMSG #{room} :".encode()
    packed = pack_value(text)
    return pack_value("text") + packed[: len(packed) - len(text.encode())]


def stamp_at(message: bytes, text: str) -> int:
    """Where the send time's 20 digits are in a sender's message: its text's first byte."""
    at = message.find(text.encode())
    if at < 0 or message.find(text.encode(), at + 1) >= 0:
        raise ValueError("the text is not in the message once")
    return at


def prepare(plan: Plan) -> None:
    """Connect every member (senders first; sender 0 creates the room), and
    build the generator's arguments.  Member ``senders`` (the first receiver)
    is the watcher (fan-out; the latency workload has none)."""
    if plan.senders < 1 or plan.members <= plan.senders:
        raise ValueError("a fan-out point needs senders and at least one receiver")
    args: list[str] = ["--window", str(plan.window)]
    text = stamp_text()  # every sender's; with ``rate``, its digits are the send time's place
    if plan.rate is not None:
        args += [
            "--rate",
            repr(plan.rate),
            "--stamp",
            stamp_prefix(plan.kind, plan.room, text).hex(),
        ]
    if plan.limit is not None:
        args += ["--limit", str(plan.limit), "--timeout", str(plan.timeout)]
    conns: list[str] = []
    try:
        for i in range(plan.members):
            sender = i < plan.senders
            nick = f"s{i}" if sender else f"r{i}"
            setup = b""
            if plan.kind == "anonchat" and plan.tls:
                sock = _connect(plan.host, plan.port)  # the C program does the rest
                hello = ev.ClientHello(v=ev.PROTOCOL_VERSION, client="bench", nick=nick)
                join = ev.Create(id=1, room=plan.room) if i == 0 else ev.Join(id=1, room=plan.room)
                setup = encode_frame(hello.to_wire()) + encode_frame(join.to_wire())
                payload = encode_frame(ev.Say(id=2, room=plan.room, text=text).to_wire())
                token = nick_token(i)
            elif plan.kind == "anonchat":
                sock = anonchat_member(plan.host, plan.port, nick, plan.room, create=i == 0)
                payload = encode_frame(ev.Say(id=2, room=plan.room, text=text).to_wire())
                token = nick_token(i)
            elif plan.kind == "irc":
                sock = irc_member(plan.host, plan.port, nick, "#" + plan.room, oper=sender)
                payload = f"PRIVMSG #{plan.room} :{text}\r\n".encode()
                token = f":{nick}!".encode()  # how its lines begin, as others receive them
            elif plan.kind == "raw":
                sock = _connect(plan.host, plan.port)
                payload = raw_frame(i, plan.room, text)
                token = nick_token(i)
            else:
                raise ValueError(f"unknown kind {plan.kind!r}")
            plan.socks.append(sock)
            fd = sock.fileno()
            if sender:
                conns.append(f"s:{fd}:{payload.hex()}:{token.hex()}")
                if plan.rate is not None:
                    conns[-1] += f":{stamp_at(payload, text)}"
            else:
                watcher = i == plan.senders and plan.rate is None
                conns.append(f"{'w' if watcher else 'r'}:{fd}")
            if plan.tls:
                conns[-1] += f":{setup.hex()}"
    except BaseException:
        close(plan)
        raise
    if plan.kind == "irc":
        args += ["--count", IRC_MSG.hex(), "--quickack", "--ping", "irc"]
    else:
        args += ["--count", ANONCHAT_MSG.hex()]
        if plan.kind == "anonchat":
            args += ["--ping", "anonchat"]
        if plan.tls:
            args += ["--tls", pin_bytes(plan.pin).hex(), "--joined", JOINED.hex()]
    plan.args = args + conns


def close(plan: Plan) -> None:
    for sock in plan.socks:
        with contextlib.suppress(OSError):
            sock.close()
    plan.socks.clear()


class Generator:
    """The running C generator of a prepared :class:`Plan`.  The sockets pass to
    it (this process closes its own copies once it has started).  With a
    ``rate``, its final report has the samples (nanoseconds) as ``latencies``."""

    def __init__(self, exe: Path, plan: Plan, stderr: IO[bytes] | None = None) -> None:
        self.samples: Path | None = None
        options: list[str] = []
        if plan.rate is not None:
            fd, name = tempfile.mkstemp(prefix="fanout-samples-")
            os.close(fd)
            self.samples = Path(name)
            options = ["--samples", name]
        self.proc = subprocess.Popen(
            [str(exe), *options, *plan.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            pass_fds=[s.fileno() for s in plan.socks],
        )
        close(plan)
        self.pid = self.proc.pid
        try:
            self._line()  # {"ready": N}: every member is set up (TLS: by the program)
        except BaseException:
            self.stop()
            raise

    def _command(self, cmd: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd)
        self.proc.stdin.flush()

    def _line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the C generator exited (status {self.proc.wait()})")
        result: dict[str, Any] = json.loads(line)
        return result

    def _final(self) -> dict[str, Any]:
        """The final report, with the samples it wrote (a ``rate``) as ``latencies``."""
        result = self._line()
        if self.samples is not None:
            samples = array("q")
            samples.frombytes(self.samples.read_bytes())
            if len(samples) != result["samples"]:
                raise RuntimeError(f"{len(samples)} samples in the file, {result['samples']} said")
            result["latencies"] = samples
        return result

    def go(self) -> None:
        self._command(b"g")

    def measuring(self, on: bool) -> None:
        """Keep latency samples from now on (``True``), or no longer."""
        self._command(b"m" if on else b"e")

    def snapshot(self) -> dict[str, Any]:
        """Deliveries, messages sent, lost connections, its clock and CPU, now."""
        self._command(b"s")
        return self._line()

    def finish(self) -> dict[str, Any]:
        """Stop it; its final report (with per-connection counts)."""
        with contextlib.suppress(BrokenPipeError):
            self._command(b"q")
        try:
            return self._final()
        finally:
            self.stop()

    def wait(self, timeout: float) -> tuple[int, dict[str, Any]]:
        """With a ``limit``: wait until it is done; its status and final report."""
        try:
            result = self._final()
            return self.proc.wait(timeout), result
        finally:
            self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        if self.samples is not None:
            with contextlib.suppress(FileNotFoundError):
                self.samples.unlink()


def run_bounded(exe: Path, plan: Plan) -> tuple[int, dict[str, Any]]:
    """Prepare, go, and wait for a ``limit``-ed plan to end (the tests' shape);
    with a ``rate``, every sample from the start is kept."""
    prepare(plan)
    gen = Generator(exe, plan)
    t0 = time.monotonic()
    if plan.rate is not None:
        gen.measuring(True)
    gen.go()
    return gen.wait(plan.timeout + 10 - (time.monotonic() - t0))
