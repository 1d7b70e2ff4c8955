"""docs/protocol.md cannot drift from the code.

Every ```hex block of the document must hold whole frames that the real decoder
accepts, that validate as frames of one side or the other, and that re-encode to
the same bytes; a ```json block right after it must show the same maps.  Every
registered frame type needs an example, and the generated parts of the document
must be what docs/gen_protocol_examples.py produces today.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

from anonchat import events as ev
from anonchat.errors import RemoteProtocolError
from anonchat.wire import FrameDecoder, encode_frame

DOCS = Path(__file__).resolve().parent.parent / "docs"
DOC = DOCS / "protocol.md"
GENERATOR = DOCS / "gen_protocol_examples.py"

_BLOCK = re.compile(r"^```(?P<tag>[\w-]*)\n(?P<text>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str]]:
    """Every fenced block of the document as (tag, text), in order."""
    return [(m["tag"], m["text"]) for m in _BLOCK.finditer(DOC.read_text(encoding="utf-8"))]


def hex_examples() -> list[tuple[bytes, Any]]:
    """(bytes of each hex block, the JSON of the block right after it or None)."""
    found = blocks()
    out = []
    for i, (tag, text) in enumerate(found):
        if tag != "hex":
            continue
        after = found[i + 1] if i + 1 < len(found) else ("", "")
        shown = json.loads(after[1]) if after[0] == "json" else None
        out.append((bytes.fromhex(text), shown))
    return out


def validate(body: dict[str, Any]) -> ev.Frame:
    """The frame a map is, as received by the server or else by the client."""
    try:
        return ev.from_wire(body, "server")
    except RemoteProtocolError:
        return ev.from_wire(body, "client")


def example_id(data: bytes) -> str:
    """A readable test id: the frame types a block holds."""
    try:
        return "+".join(str(body["t"]) for body in FrameDecoder().feed(data))
    except RemoteProtocolError:
        return data[:16].hex()


EXAMPLES = hex_examples()


def test_the_document_has_examples() -> None:
    assert len(EXAMPLES) >= len(set(ev.frame_types().values()))


@pytest.mark.parametrize(("data", "shown"), EXAMPLES, ids=[example_id(d) for d, _ in EXAMPLES])
def test_hex_example_decodes_validates_and_reencodes(data: bytes, shown: Any) -> None:
    decoder = FrameDecoder()
    bodies = list(decoder.feed(data))
    decoder.eof()  # raises if the block ends inside a frame
    assert bodies, "a hex block must hold at least one frame"
    frames = [validate(body) for body in bodies]
    assert b"".join(encode_frame(f.to_wire()) for f in frames) == data
    if shown is not None:
        shown_bodies = [as_shown(b) for b in bodies]
        assert shown == (shown_bodies[0] if len(bodies) == 1 else shown_bodies)


def as_shown(value: Any) -> Any:
    """A map as the doc shows it in JSON: msgpack bin as "bin:<hex>"."""
    if isinstance(value, bytes):
        return "bin:" + value.hex()
    if isinstance(value, dict):
        return {k: as_shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_shown(v) for v in value]
    return value


def test_every_frame_type_has_an_example() -> None:
    shown: set[type[ev.Frame]] = set()
    for data, _ in EXAMPLES:
        shown.update(type(validate(body)) for body in FrameDecoder().feed(data))
    missing = {
        f"{name} (received by the {role})"
        for (role, name), cls in ev.frame_types().items()
        if cls not in shown
    }
    assert not missing, f"docs/protocol.md has no example of: {sorted(missing)}"


def test_generated_parts_are_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location("gen_protocol_examples", GENERATOR)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    text = DOC.read_text(encoding="utf-8")
    fresh: str = generator.render_doc(text)
    diff = difflib.unified_diff(text.splitlines(), fresh.splitlines(), "doc", "code", lineterm="")
    shown = "\n".join(list(diff)[:40])
    assert fresh == text, f"run python docs/gen_protocol_examples.py; it would change:\n{shown}"
