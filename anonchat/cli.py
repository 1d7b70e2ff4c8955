"""Entry points: ``anonchat`` (the client) and ``anonchatd`` (the daemon)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from . import __version__
from .daemon import DEFAULT_PORT, Daemon, load_config
from .daemon.server import describe, loop_factory
from .errors import ConfigError
from .linemode import run_line_mode, system


def parse_server(value: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[IPV6]:PORT`` -> (host, port)."""
    host, port = value, DEFAULT_PORT
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:])
    elif value.count(":") == 1:
        host, _, p = value.partition(":")
        port = _port(p)
    if not host:
        raise argparse.ArgumentTypeError(f"no host in {value!r}")
    return host, port


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, not {text!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port must be from 1 to 65535, not {port}")
    return port


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
    p.add_argument("--version", action="version", version=f"anonchatd {__version__}")
    return p


def daemon_main(argv: Sequence[str] | None = None) -> int:
    args = daemon_parser().parse_args(argv)
    try:
        config = load_config(args.config, host=args.host, port=args.port, log_level=args.log_level)
    except ConfigError as exc:
        print(f"anonchatd: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return _run(_serve(Daemon(config)))
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
    print(
        f"anonchatd {__version__} listening on {describe(daemon.addresses)}",
        file=sys.stderr,
        flush=True,
    )
    await daemon.serve_until_stopped()
    return 0


# -- the client --------------------------------------------------------------


def client_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="anonchat",
        description="Anonymous chat for the terminal. No account: pick a nick and talk.",
    )
    p.add_argument(
        "--server",
        type=parse_server,
        metavar="HOST[:PORT]",
        help=f"daemon to connect to (port {DEFAULT_PORT} if left out)",
    )
    p.add_argument("--nick", help="your nick for this session (default: a random one)")
    p.add_argument("--join", metavar="ROOM", help="room to join (created if missing)")
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


def client_main(argv: Sequence[str] | None = None) -> int:
    parser = client_parser()
    args = parser.parse_args(argv)
    if args.local:
        return _run(_local(args))
    if not args.plain:
        from .tui import run_tui  # imports textual: only when the TUI is wanted

        return _run(run_tui(args.server, nick=args.nick, join=args.join))
    if args.server is None:
        parser.error("say where to connect with --server HOST:PORT, or host one with --local")
    host, port = args.server
    return _run(run_line_mode(host, port, nick=args.nick, join=args.join))


async def _local(args: argparse.Namespace) -> int:
    """Host a daemon on loopback in this process, then chat on it."""
    daemon = None
    for port in (args.port, 0):
        with contextlib.suppress(OSError):
            daemon = Daemon(load_config(None, host="127.0.0.1", port=port, log_level="WARNING"))
            await daemon.start()
            break
    if daemon is None:
        print("anonchat: cannot host a daemon on 127.0.0.1", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.WARNING)
    port = daemon.port
    hosting = (
        f"hosting a daemon on 127.0.0.1:{port}; others on this machine join with: "
        f"anonchat --server 127.0.0.1:{port}"
    )
    try:
        if not args.plain:
            from .tui import run_tui

            return await run_tui(
                ("127.0.0.1", port), nick=args.nick, join=args.join or "lobby", banner=hosting
            )
        print(system(hosting), flush=True)
        return await run_line_mode("127.0.0.1", port, nick=args.nick, join=args.join or "lobby")
    finally:
        await daemon.shutdown()
