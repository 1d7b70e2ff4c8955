#!/usr/bin/env python3
"""Make docs/tui.svg, the screenshot README.md shows, from the real app.

A real daemon on 127.0.0.1 (a port the system picks, a key made from a fixed
seed), the real TUI driven by Textual's Pilot, two more users saying things
through the real client; the picture is Textual's own SVG export.  Everything
on screen is fixed (clock, nicks, the server's display name, no latency
probe, no blinking cursor), so the same code makes the same file, byte for
byte: ``--check`` says whether docs/tui.svg is what this script makes now
(tests/tui/test_screenshot.py runs it), so the README cannot show a stale UI.

Usage: python scripts/screenshot.py [--check] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from anonchat.client import Client, Endpoint  # noqa: E402
from anonchat.daemon import Config, Daemon  # noqa: E402
from anonchat.trust import create_identity, ensure_identity  # noqa: E402
from anonchat.tui import make_app  # noqa: E402
from anonchat.tui.screens.chat import ChatScreen  # noqa: E402
from anonchat.tui.widgets.chat_input import ChatInput  # noqa: E402

OUT = ROOT / "docs" / "tui.svg"
SIZE = (110, 30)
#: What the status bar calls the daemon (its real port changes from run to run).
SERVER_NAME = "chat.example.org:7667"


def clock(ts: int | None = None) -> str:
    return "17:35"


async def until(condition: Callable[[], bool], pause: Callable[[], Awaitable[None]]) -> None:
    """Wait for ``condition`` (the app runs meanwhile); no fixed sleeps."""
    async with asyncio.timeout(30):
        while not condition():
            await pause()


async def make_svg(work: Path) -> str:
    state = work / "state"
    create_identity(state, ec.derive_private_key(0xD0C5, ec.SECP256R1()))
    pin = ensure_identity(state).pin
    daemon = Daemon(Config(host="127.0.0.1", port=0, state_dir=str(state)))
    await daemon.start()
    others: list[Client] = []
    try:
        endpoint = Endpoint("127.0.0.1", daemon.port, pin=pin)
        app = make_app(
            work / "settings",
            server=f"127.0.0.1:{daemon.port}",
            nick="alice",
            autoconnect=True,
            join=["dev", "lobby"],
            clock=clock,
            rng=random.Random(1),
            ping_interval=3600.0,
            endpoint=endpoint,
            server_name=SERVER_NAME,
        )
        async with app.run_test(size=SIZE) as pilot:

            async def pause() -> None:
                await pilot.pause(0.02)

            await until(lambda: app.chat is not None and app.screen is app.chat, pause)
            chat = app.chat
            assert chat is not None
            chat.query_one(ChatInput).cursor_blink = False
            await until(lambda: chat.state.current == "lobby" and "dev" in chat.state.rooms, pause)
            bob = await endpoint.connect("bob")
            carol = await endpoint.connect("carol")
            others += [bob, carol]
            await bob.join("lobby")
            await carol.join("lobby")
            await carol.join("dev")
            await bob.say("lobby", "morning all! anyone tried the new build?")
            await until(lambda: any("new build" in x for x in lines(chat)), pause)
            box = chat.query_one(ChatInput)
            box.value = "yes, works nicely here"
            await pilot.press("enter")
            await until(lambda: any("works nicely" in x for x in lines(chat)), pause)
            await carol.say("lobby", "waves", me=True)
            await carol.say("dev", "the release notes are up")
            await until(lambda: chat.state.rooms["dev"].unread == 1, pause)
            await until(lambda: any("waves" in x for x in lines(chat)), pause)
            await until(lambda: chat.state.rooms["lobby"].member_count == 3, pause)
            await pilot.pause(0.2)
            return app.export_screenshot(title="anonchat")
    finally:
        for client in others:
            await client.close()
        await daemon.shutdown()


def lines(chat: ChatScreen) -> list[str]:
    return chat.view("lobby").log_widget.plain_lines()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the file, write nothing")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default {OUT})")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="anonchat-screenshot-") as tmp:
        svg = asyncio.run(make_svg(Path(tmp)))
    if args.check:
        if not args.out.exists() or args.out.read_text(encoding="utf-8") != svg:
            print(f"{args.out} is stale: run python scripts/screenshot.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(svg, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
