"""Pilot tests against a real daemon on loopback: no mocks."""

from __future__ import annotations

from pathlib import Path

from anonchat.daemon import Daemon
from anonchat.tui.state import CONSOLE

from .conftest import app_for, lines, type_line, until_chat, wait_for


async def test_two_apps_converse(daemon: Daemon, tmp_path: Path) -> None:
    alice = app_for(daemon.port, tmp_path, "alice", join=["lobby"])
    bob = app_for(daemon.port, tmp_path, "bob", join=["lobby"])
    async with alice.run_test(size=(100, 30)) as pa, bob.run_test(size=(100, 30)) as pb:
        ca = await until_chat(pa)
        cb = await until_chat(pb)
        await wait_for(pa, lambda: ca.state.current == "lobby", what="alice in lobby")
        await wait_for(pb, lambda: cb.state.current == "lobby", what="bob in lobby")
        await type_line(pa, "hello bob")
        await wait_for(pb, lambda: any("hello bob" in line for line in lines(cb, "lobby")))
        await type_line(pb, "/me waves")
        await wait_for(pa, lambda: any("* bob waves" in line for line in lines(ca, "lobby")))
        assert any("alice  hello bob" in line for line in lines(ca, "lobby"))
        assert "bob" in ca.state.rooms["lobby"].members
        assert lines(ca, CONSOLE)
