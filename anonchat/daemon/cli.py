"""``anonchatd``: the daemon's command line, its exit statuses and signals.

Exit statuses (docs/operations.md, "Exit statuses"):

* 0: stopped on SIGTERM or SIGINT;
* 1: cannot listen on the chat or the metrics address;
* 2: a mistake in the configuration (flags, file, keys): fix it, then start;
* 3: the other nodes counted this node as gone (it lost the service);
* 75 (``EX_TEMPFAIL``): Redis cannot be reached now: starting again later may work.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from .. import __version__
from ..address import is_loopback
from ..errors import CannotListen, ConfigError, Unavailable
from ..trust import TrustError
from .config import DEFAULT_PORT, LOG_LEVELS, load_config
from .server import Daemon, describe, load_tls_identity, loop_factory

EXIT_LISTEN = 1
EXIT_CONFIG = 2
EXIT_LOST = 3
EXIT_TEMPFAIL = 75  # sysexits.h: try again later (systemd's Restart= does)


def daemon_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="anonchatd", description="The anonchat daemon: rooms and messages, no accounts."
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help=f"port to listen on (default {DEFAULT_PORT})")
    p.add_argument("--config", metavar="FILE", help="TOML config file (see docs/operations.md)")
    p.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS)
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where the TLS key and certificate are kept (created on first start; default "
        "$STATE_DIRECTORY, else $XDG_STATE_HOME/anonchatd, else ~/.local/state/anonchatd)",
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
            if config.plaintext:
                # (a pin made up for it would be handed out, and refused by every client)
                raise ConfigError("--print-pin: a daemon run with plaintext has no key, no pin")
            print(load_tls_identity(config).pin)
            return 0
    except (ConfigError, TrustError) as exc:
        return fail(exc, EXIT_CONFIG)
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(_serve(Daemon(config)))
    except (TrustError, ConfigError) as exc:
        return fail(exc, EXIT_CONFIG)
    except Unavailable as exc:
        return fail(exc, EXIT_TEMPFAIL)
    except CannotListen as exc:
        return fail(exc, EXIT_LISTEN)


def fail(why: object, status: int) -> int:
    """One line on stderr, and the exit status that says what kind of failure it was."""
    print(f"anonchatd: {why}", file=sys.stderr)
    return status


#: The signals that stop the daemon.  SIGHUP too: there is nothing to reload
#: (restart to apply a new config), and a hangup must not kill the node
#: without its handover.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


async def _serve(daemon: Daemon) -> int:
    loop = asyncio.get_running_loop()
    # A signal during the start (joining a service through Redis takes a
    # moment) is kept and acted on once the start is over: it was lost, and
    # the node went on running.
    asked = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, asked.set)
    await daemon.start()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(daemon.shutdown()))
    stopping = asyncio.ensure_future(daemon.shutdown()) if asked.is_set() else None
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
    if daemon.metrics_addresses:  # the port it took, for "--metrics 127.0.0.1:0"
        print(
            f"anonchatd: metrics on {describe(daemon.metrics_addresses)} (/metrics)",
            file=sys.stderr,
            flush=True,
        )
    exposed = [a for a in daemon.metrics_addresses if not is_loopback(a[0])]
    if exposed:
        print(
            f"anonchatd: WARNING: metrics are served on {describe(exposed)}, where other "
            "machines can reach them (no authentication); bind them to 127.0.0.1 and "
            "scrape through a tunnel or a local agent, or firewall the port",
            file=sys.stderr,
            flush=True,
        )
    await daemon.serve_until_stopped()
    if stopping is not None:
        await stopping
    return EXIT_LOST if daemon.lost else 0


def plaintext_exposed(pin: str, addresses: list[tuple[str, int]]) -> bool:
    """Whether a daemon without TLS listens where other machines can reach it."""
    return not pin and not all(is_loopback(host) for host, _ in addresses)
