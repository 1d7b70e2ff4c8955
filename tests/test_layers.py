"""The import rules of docs/architecture.md, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "anonchat"
PURE = {
    "wire", "events", "protocol", "errors", "names", "crypto", "direct", "bucket", "acts",
    "address", "plural", "confusables", "unicode_data", "emoji",
}  # fmt: skip
IO_MODULES = {"asyncio", "socket", "ssl", "selectors", "subprocess", "threading", "textual"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def modules() -> dict[str, set[str]]:
    return {str(p.relative_to(PKG)): imports(p) for p in PKG.rglob("*.py")}


def test_only_tui_imports_textual() -> None:
    for name, found in modules().items():
        if not name.startswith("tui"):
            assert not any(i.split(".")[0] in {"textual", "rich"} for i in found), name


#: The client's own modules: the daemon shares only the pure core and trust.py.
CLIENT_SIDE = {
    "client", "secret", "secret_client", "dial", "socks", "linemode", "tui", "frontend",
    "room", "passphrases", "paths", "cli", "dm", "lineinput",
}  # fmt: skip


def test_daemon_never_imports_the_clients_modules() -> None:
    for name, found in modules().items():
        if not name.startswith("daemon") or name == "daemon/__main__.py":
            continue  # __main__ is an entry point: python -m anonchat.daemon
        for module in found:
            target = absolute(module, name).split(".")[0]
            assert target not in CLIENT_SIDE, (name, module)


def test_pure_layers_do_no_io_and_import_nothing_above_them() -> None:
    for name, found in modules().items():
        stem = name.removesuffix(".py")
        if stem not in PURE:
            continue
        roots = {i.split(".")[0] for i in found if not i.startswith(".")}
        assert not roots & IO_MODULES, (name, roots & IO_MODULES)
        local = {i.lstrip(".").split(".")[0] for i in found if i.startswith(".")}
        assert local <= PURE | {""}, (name, local - PURE)


def test_nothing_but_wire_imports_msgpack() -> None:
    for name, found in modules().items():
        if name != "wire.py":
            assert not any(i.split(".")[0] == "msgpack" for i in found), name


def absolute(module: str, importer: str) -> str:
    """``..crypto`` seen from ``tui/screens/chat.py`` -> ``crypto``."""
    if not module.startswith("."):
        return module.removeprefix("anonchat.")
    level = len(module) - len(module.lstrip("."))
    package = importer.split("/")[:-1]
    base = package[: len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, module.lstrip(".")]).strip(".")


FRONT_ENDS = ("linemode.py", "tui/", "frontend/")
#: What a front end never touches: it reaches rooms through handles and the
#: daemon through client.py (docs/architecture.md, "Import rules").
BELOW_THE_CLIENT = {"crypto", "direct", "trust", "dial", "socks", "secret_client"}


def test_front_ends_import_nothing_below_the_client() -> None:
    for name, found in modules().items():
        if not name.startswith(FRONT_ENDS):
            continue
        for module in found:
            target = absolute(module, name).split(".")[0]
            assert target not in BELOW_THE_CLIENT, (name, module)


def test_screens_and_widgets_never_import_the_app() -> None:
    """The app holds its screens; screens post messages up (tui/messages.py)
    instead of importing it, so there is no app <-> screens import cycle."""
    for name, found in modules().items():
        if not name.startswith(("tui/screens", "tui/widgets")):
            continue
        for module in found:
            assert absolute(module, name) not in {"tui.app", "tui.app.AnonchatApp"}, (name, module)


#: The daemon's shared state: what every node applies (state.py and the modules
#: it calls, the commands, the rooms, snapshots and the buses).  They take a
#: SharedState and callables, never the node: none imports server.py or
#: session.py, not even for type checking (issue 19: no import cycle around
#: the Daemon).
STATE_MODULES = {
    "state", "shared", "commands", "rooms", "moderation", "secret_moderation", "dms",
    "snapshot", "bus", "redisbus",
}  # fmt: skip
NODE_MODULES = {"server", "session", "listener", "metrics", "cli", "tls"}


def test_the_state_modules_never_import_the_node() -> None:
    found_any = set()
    for name, found in modules().items():
        stem = name.removesuffix(".py")
        if not stem.startswith("daemon/") or stem.removeprefix("daemon/") not in STATE_MODULES:
            continue
        found_any.add(stem.removeprefix("daemon/"))
        for module in found:
            target = absolute(module, name)
            parts = target.split(".")
            assert not (parts[0] == "daemon" and len(parts) > 1 and parts[1] in NODE_MODULES), (
                name,
                module,
            )
    assert found_any == STATE_MODULES
