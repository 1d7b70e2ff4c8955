"""Entry points: ``anonchat`` (the client) and ``anonchatd`` (the daemon)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from . import __version__
from .client import Endpoint
from .daemon import DEFAULT_PORT, Daemon, load_config
from .daemon.server import describe, load_tls_identity, loop_factory
from .dial import is_loopback
from .errors import ConfigError
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


# -- the daemon --------------------------------------------------------------


def daemon_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="anonchatd", description="The anonchat daemon: rooms and messages, no accounts."
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help=f"port to listen on (default {DEFAULT_PORT})")
    p.add_argument("--config", metavar="FILE", help="TOML config file (see docs/operations.md)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where the TLS key and certificate are kept (created on first start; default "
        "$STATE_DIRECTORY, else ~/.local/state/anonchatd)",
    )
    p.add_argument(
        "--cert", metavar="PEM", help="use this certificate instead of a self-signed one"
    )
    p.add_argument("--key", metavar="PEM", help="the private key of --cert")
    p.add_argument(
        "--plaintext",
        action="store_true",
        default=None,
        help="no TLS (development on loopback only: everything is readable on the network)",
    )
    p.add_argument(
        "--redis",
        metavar="URL",
        help="redis://HOST:PORT/DB shared with the other nodes of one service "
        "(default: one node, nothing shared)",
    )
    p.add_argument(
        "--node-timeout",
        type=float,
        metavar="SECONDS",
        help="with --redis: a node silent this long is gone and its sessions end (default 10)",
    )
    p.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve aggregate Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9108)",
    )
    p.add_argument("--print-pin", action="store_true", help="print the key's pin and exit")
    p.add_argument("--version", action="version", version=f"anonchatd {__version__}")
    return p


def daemon_main(argv: Sequence[str] | None = None) -> int:
    args = daemon_parser().parse_args(argv)
    try:
        config = load_config(
            args.config,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            state_dir=args.state_dir,
            cert=args.cert,
            key=args.key,
            plaintext=args.plaintext,
            redis=args.redis,
            node_timeout=args.node_timeout,
            metrics=args.metrics,
        )
        if args.print_pin:
            print(load_tls_identity(config).pin)
            return 0
    except (ConfigError, TrustError) as exc:
        print(f"anonchatd: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return _run(_serve(Daemon(config)))
    except (TrustError, ConfigError) as exc:
        print(f"anonchatd: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"anonchatd: cannot listen on {config.host}:{config.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1


async def _serve(daemon: Daemon) -> int:
    await daemon.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(daemon.shutdown()))
    how = f"TLS, pin {daemon.pin}" if daemon.pin else "PLAINTEXT, no TLS"
    print(
        f"anonchatd {__version__} listening on {describe(daemon.addresses)} ({how})",
        file=sys.stderr,
        flush=True,
    )
    if plaintext_exposed(daemon.pin, daemon.addresses):
        print(
            "anonchatd: WARNING: --plaintext on an address other machines can reach: "
            "everything said here can be read and changed on the network; use TLS",
            file=sys.stderr,
            flush=True,
        )
    await daemon.serve_until_stopped()
    return 3 if daemon.lost else 0


def plaintext_exposed(pin: str, addresses: list[tuple[str, int]]) -> bool:
    """Whether a daemon without TLS listens where other machines can reach it."""
    return not pin and not all(is_loopback(host) for host, _ in addresses)


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
        type=int,
        default=DEFAULT_PORT,
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
    endpoint = endpoint_from_args(parser, args)
    passphrase = read_passphrase_file(parser, args.passphrase_file)
    if not args.plain:
        if passphrase is not None:
            parser.error("--passphrase-file is for the line mode (--plain)")
        return _run(_tui(endpoint, nick=args.nick, join=args.join))
    if not endpoint.host:
        parser.error("say where to connect with --server HOST:PORT or a link, or use --local")
    return _run(run_line_mode(endpoint, nick=args.nick, join=args.join, passphrase=passphrase))


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
    for port in (args.port, 0):
        with contextlib.suppress(OSError):
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
