"""Owners of a secret room in the TUI, against the real TLS daemon: /kick is
signed by the owner, refused to others, and shown to everyone by label."""

from __future__ import annotations

from pathlib import Path

from anonchat.crypto import normalize_room
from anonchat.daemon import Daemon
from anonchat.tui.state import CONSOLE

from ..helpers import ident
from .conftest import app_for, lines, type_line, until_chat, wait_for
from .test_secret import KEY, PASSPHRASE, ROOM, create_secret, open_secret


async def test_an_owner_kicks_in_a_secret_room(daemon: Daemon, tmp_path: Path) -> None:
    alice = app_for(daemon.port, tmp_path, "alice")
    bob = app_for(daemon.port, tmp_path, "bob")
    async with (
        alice.run_test(size=(110, 32)) as pa,
        bob.run_test(size=(110, 32), notifications=True) as pb,
    ):
        ca, cb = await until_chat(pa), await until_chat(pb)
        await create_secret(pa, ca, PASSPHRASE)
        await open_secret(pb, cb, PASSPHRASE)
        a_label = f"alice#{ident(ca.client).fingerprint}"
        b_label = f"bob#{ident(cb.client).fingerprint}"
        await wait_for(pa, lambda: any(f"{b_label} joined" in x for x in lines(ca, KEY)))
        await wait_for(pb, lambda: a_label in cb.state.rooms[KEY].members, what="alice seen")
        # bob is no owner: the daemon refuses, nothing happens.
        await type_line(pb, "/kick alice")
        await wait_for(pb, lambda: any("only an owner" in x for x in lines(cb, KEY)))
        assert normalize_room(ROOM) in ca.client.secret
        await type_line(pb, "/who")
        assert any(f"owners (checked by signature): {a_label}" in x for x in lines(cb, KEY))
        assert any(f"@{a_label}" in x for x in lines(cb, KEY))  # marked in the list too
        # alice is: her signed kick is checked by both clients and shown with both labels.
        await type_line(pa, f"/kick {b_label}")
        kicked = f"{b_label} was kicked by {a_label}"
        await wait_for(pa, lambda: any(kicked in x for x in lines(ca, KEY)), what="kick shown")
        await wait_for(pb, lambda: cb.state.rooms[KEY].removed != "", what="bob removed")
        assert normalize_room(ROOM) not in cb.client.secret
        assert not cb.state.rooms[KEY].joined  # the window stays, marked not joined
        said = f"you were kicked from 🔒#{ROOM} by {a_label}"
        assert any(said in x for x in lines(cb, KEY)), lines(cb, KEY)
        assert any(said in x for x in lines(cb, CONSOLE))
        assert not any("you left" in x for x in lines(cb, CONSOLE))
        await pb.pause()
        assert any(said in str(t.render()).lower() for t in bob.screen.query("Toast"))
