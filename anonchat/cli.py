"""The client's entry point, ``anonchat`` (the daemon's is ``anonchat.daemon.cli``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from . import __version__
from .client import Endpoint
from .daemon import DEFAULT_PORT, Daemon, load_config
from .daemon.server import loop_factory
from .errors import CannotListen
from .frontend.text import invite
from .linemode import run_line_mode, system
from .paths import local_daemon_dir
from .socks import parse_proxy
from .trust import TrustError, check_pin_syntax


def parse_server(value: str) -> Endpoint:
    """``--server``: ``HOST``, ``HOST:PORT``, ``[IPV6]:PORT`` (or an invite link);
    a bad address is argparse's one-line error and exit status 2."""
    try:
        return Endpoint.parse(value, DEFAULT_PORT)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _run(coro: Coroutine[Any, Any, int]) -> int:
    """Run the coroutine on uvloop when it is installed, else on asyncio's loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(coro)


# -- the client --------------------------------------------------------------


def client_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="anonchat",
        description="Anonymous chat for the terminal. No account: pick a nick and talk.",
    )
    p.add_argument(
        "link",
        nargs="?",
        metavar="anonchat://HOST:PORT/ROOM?pin=...",
        help="an invite link: connects to that daemon, pinned to its key, and joins ROOM",
    )
    p.add_argument(
        "--server",
        type=parse_server,
        metavar="HOST[:PORT]",
        help=f"daemon to connect to (port {DEFAULT_PORT} if left out)",
    )
    p.add_argument("--nick", help="your nick for this session (default: a random one)")
    p.add_argument(
        "--join",
        metavar="ROOM",
        action="append",
        help="room to join (created if missing); may be given more than once",
    )
    p.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help="line mode: read the passphrase of /secret from FILE (its first line) instead "
        "of the next input line; for scripts (see docs/security.md for the risks)",
    )
    p.add_argument(
        "--fingerprint", metavar="sha256/...", help="the daemon's pin, as its operator gave it"
    )
    p.add_argument(
        "--accept-new-host",
        action="store_true",
        help="trust a daemon seen for the first time without asking (scripts)",
    )
    p.add_argument(
        "--plaintext",
        action="store_true",
        help="connect without TLS (only to a daemon run with --plaintext)",
    )
    p.add_argument(
        "--proxy",
        metavar="socks5://HOST:PORT",
        help="connect through a SOCKS5 proxy such as Tor (names resolved by the proxy)",
    )
    p.add_argument(
        "--plain",
        action="store_true",
        help="line mode: read stdin, write one line per event (scripts, screen readers)",
    )
    p.add_argument(
        "--local",
        action="store_true",
        help="host a daemon in this process on loopback and chat on it",
    )
    p.add_argument(
        "--port",
        type=_local_port,
        help=f"with --local: port to host on (default {DEFAULT_PORT}, any if busy)",
    )
    p.add_argument("--version", action="version", version=f"anonchat {__version__}")
    return p


def endpoint_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Endpoint:
    """The daemon the flags or the link name, and how to reach and trust it.

    Always an Endpoint: without ``--server`` or a link its host is "" (the
    TUI's connect screen asks where), and it still carries every connection
    option given (``--proxy``, ``--plaintext``, ``--accept-new-host``), so
    that no connection the session makes goes out without them.  A pin
    (``--fingerprint`` or the link's) belongs to the one server it was given
    for, so ``--fingerprint`` needs ``--server`` or a link.
    """
    try:
        if args.link and args.server:
            raise ValueError("give either a link or --server, not both")
        if args.link:
            endpoint = Endpoint.from_url(args.link, DEFAULT_PORT)
        elif args.server:
            endpoint = args.server
        else:
            endpoint = Endpoint("", 0)
        pin = endpoint.pin
        if args.fingerprint:
            if not endpoint.host:
                raise ValueError(
                    "--fingerprint is the key of one server: say which with --server "
                    "HOST:PORT (or use an invite link, which carries its pin)"
                )
            pin = check_pin_syntax(args.fingerprint)
            if endpoint.pin is not None and endpoint.pin != pin:
                raise ValueError("the link's pin and --fingerprint differ: give only the right one")
        proxy = parse_proxy(args.proxy) if args.proxy else None
    except (ValueError, TrustError) as exc:
        parser.error(str(exc))
    return dataclasses.replace(
        endpoint,
        pin=pin,
        proxy=proxy,
        tls=not args.plaintext,
        allow_remote_plaintext=args.plaintext,
        accept_new_host=args.accept_new_host,
    )


def client_main(argv: Sequence[str] | None = None) -> int:
    parser = client_parser()
    args = parser.parse_args(argv)
    if args.local:
        given = [f for f, v in _NOT_WITH_LOCAL.items() if getattr(args, v)]
        if given:
            parser.error(f"--local hosts its own daemon on loopback: leave out {', '.join(given)}")
        return _run(_local(args))
    if args.port is not None:  # (it would be ignored: the server's port is the 7667 default)
        parser.error(
            "--port is the port --local hosts on; a server's port goes in --server HOST:PORT"
        )
    endpoint = endpoint_from_args(parser, args)
    passphrase = read_passphrase_file(parser, args.passphrase_file)
    if not args.plain:
        if passphrase is not None:
            parser.error("--passphrase-file is for the line mode (--plain)")
        return _run(_tui(endpoint, nick=args.nick, join=args.join))
    if not endpoint.host:
        parser.error("say where to connect with --server HOST:PORT or a link, or use --local")
    return _run(run_line_mode(endpoint, nick=args.nick, join=args.join, passphrase=passphrase))


def _local_port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"the port must be a number from 0 to 65535, not {port}")
    return port


def read_passphrase_file(parser: argparse.ArgumentParser, path: str | None) -> str | None:
    """The first line of ``path`` (read once: it may be a pipe such as ``<(pass show x)``)."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError) as exc:
        parser.error(f"cannot read the passphrase file {path}: {getattr(exc, 'strerror', exc)}")
    passphrase = first.rstrip("\r\n")
    if not passphrase:
        parser.error(f"the passphrase file {path} is empty")
    return passphrase


#: Flags that name or reach another daemon, which --local does not use.
_NOT_WITH_LOCAL = {
    "a link": "link",
    "--server": "server",
    "--fingerprint": "fingerprint",
    "--proxy": "proxy",
    "--plaintext": "plaintext",
    "--accept-new-host": "accept_new_host",
}


async def _tui(endpoint: Endpoint | None, **kwargs: Any) -> int:
    from .tui import run_tui  # imports textual: only when the TUI is wanted

    return await run_tui(endpoint, **kwargs)


async def _local(args: argparse.Namespace) -> int:
    """Host a daemon on loopback in this process, then chat on it."""
    daemon = None
    state_dir = str(local_daemon_dir())
    for port in (DEFAULT_PORT if args.port is None else args.port, 0):
        with contextlib.suppress(CannotListen):
            config = load_config(
                None, host="127.0.0.1", port=port, log_level="WARNING", state_dir=state_dir
            )
            daemon = Daemon(config)
            await daemon.start()
            break
    if daemon is None:
        print("anonchat: cannot host a daemon on 127.0.0.1", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.WARNING)
    room = (args.join or ["lobby"])[0]
    endpoint = Endpoint("127.0.0.1", daemon.port, pin=daemon.pin, known_hosts=None)
    sessions = daemon.sessions
    hosting = (
        f"hosting a daemon on 127.0.0.1:{daemon.port} in this process: quitting ends the "
        "session of everyone connected to it; /invite shows how others join"
    )
    try:
        rooms = args.join or [room]
        if not args.plain:
            return await _tui(
                endpoint,
                nick=args.nick,
                join=rooms,
                banner=hosting,
                hosting=lambda: len(sessions),
            )
        print(system(hosting), flush=True)
        lines, command = invite(("127.0.0.1", daemon.port), daemon.pin, room)
        print(system(lines[0]), command, sep="\n", flush=True)  # the command alone: copyable
        return await run_line_mode(endpoint, nick=args.nick, join=rooms)
    finally:
        await daemon.shutdown()
