"""The Python ceiling: a raw coalescing relay, ``python -m benchmarks.relay --port N``.

No protocol at all: every connection is a member of one room, and every
whole length-prefixed frame (a u32 big-endian length, then the body) a member
sends is relayed, as it is, to every *other* member.  Nothing is decoded,
validated, numbered, kept or rate-limited.  What it does do is what anonchatd
does to be fast: it runs on uvloop, it reads each connection's bytes as they
come, and it coalesces per event-loop pass -- the frames that arrived during
one pass are joined once and written to each member with one ``write`` at the
end of the pass (``call_soon``), with no timer.  A member that sent frames in
that pass is written the others' frames only (joined for it alone).

The benchmarks run it beside anonchatd and ngircd (``benchmarks.run``) as the
bound a Python daemon on this machine cannot beat: how far anonchatd stays
below it is what its protocol, checks, ordering and ring cost.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
from typing import Any

from .procstat import raise_nofile

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024


class Relay:
    def __init__(self) -> None:
        self.members: dict[Member, None] = {}
        self.pending: list[tuple[Member, bytes]] = []  # (sender, its frames) this pass

    def arrived(self, sender: Member, frames: bytes) -> None:
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self.pending.append((sender, frames))

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        everything = b"".join(frames for _, frames in pending)
        senders = {sender for sender, _ in pending}
        for member in self.members:
            if member in senders:
                data = b"".join(frames for s, frames in pending if s is not member)
                if data:
                    member.transport.write(data)
            else:
                member.transport.write(everything)


class Member(asyncio.Protocol):
    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.buf = b""
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.relay.members[self] = None

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        end, size = 0, len(buf)
        while size - end >= 4:
            (length,) = HEADER.unpack_from(buf, end)
            if length == 0 or length > MAX_FRAME:
                self.transport.abort()
                return
            if size - end - 4 < length:
                break
            end += 4 + length
        if end:
            self.relay.arrived(self, buf[:end])
        self.buf = buf[end:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.members.pop(self, None)


async def serve(host: str, port: int) -> None:
    relay = Relay()
    server = await asyncio.get_running_loop().create_server(
        lambda: Member(relay), host, port, backlog=4096
    )
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.relay", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    raise_nofile(65_536)
    try:
        import uvloop

        uvloop.run(serve(args.host, args.port))
    except ImportError:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
