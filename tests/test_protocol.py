"""The sans-I/O state machines, paired in memory (no sockets)."""

from __future__ import annotations

from anonchat import events as ev
from anonchat.errors import Code
from anonchat.protocol import Connection, State
from anonchat.wire import encode_body


class Pair:
    """A client and a server Connection wired back to back."""

    def __init__(self) -> None:
        self.client = Connection("client")
        self.server = Connection("server")

    def to_server(self, one_byte_at_a_time: bool = False) -> list[ev.Frame]:
        return feed(self.server, self.client.data_to_send(), one_byte_at_a_time)

    def to_client(self, one_byte_at_a_time: bool = False) -> list[ev.Frame]:
        return feed(self.client, self.server.data_to_send(), one_byte_at_a_time)

    def greet(self) -> None:
        self.client.send(ev.ClientHello(v=ev.PROTOCOL_VERSION, nick="alice"))
        assert self.to_server() == [ev.ClientHello(v=ev.PROTOCOL_VERSION, nick="alice")]
        self.server.send(SERVER_HELLO)
        assert self.to_client() == [SERVER_HELLO]
        assert self.client.state is State.OPEN and self.server.state is State.OPEN


SERVER_HELLO = ev.ServerHello(
    v=ev.PROTOCOL_VERSION,
    server="s",
    nick="alice",
    max_frame=65536,
    max_text=3072,
    ping_interval=30,
    challenge=bytes(32),
    token=bytes(16),
)


def feed(conn: Connection, data: bytes, one_byte_at_a_time: bool) -> list[ev.Frame]:
    if not one_byte_at_a_time:
        return conn.receive_data(data)
    out: list[ev.Frame] = []
    for i in range(len(data)):
        out += conn.receive_data(data[i : i + 1])
    return out


def test_hello_exchange_and_requests_byte_by_byte() -> None:
    pair = Pair()
    pair.greet()
    pair.client.send(ev.Join(id=1, room="lobby"))
    pair.client.send(ev.Say(id=2, room="lobby", text="héllo"))
    assert pair.to_server(one_byte_at_a_time=True) == [
        ev.Join(id=1, room="lobby"),
        ev.Say(id=2, room="lobby", text="héllo"),
    ]


def test_requests_may_be_pipelined_after_hello() -> None:
    pair = Pair()
    pair.client.send(ev.ClientHello(v=ev.PROTOCOL_VERSION))
    pair.client.send(ev.ListRooms(id=1))
    assert pair.to_server() == [ev.ClientHello(v=ev.PROTOCOL_VERSION), ev.ListRooms(id=1)]


def test_first_frame_must_be_hello() -> None:
    server = Connection("server")
    assert server.receive_data(encode_body({"t": "list", "id": 1})) == []
    assert server.state is State.FAILED
    assert server.error is not None and server.error.code == Code.HELLO_REQUIRED
    client = Connection("client")
    assert client.receive_data(server.data_to_send()) == [
        ev.Error(code=Code.HELLO_REQUIRED, msg="the first frame must be hello")
    ]


def test_other_version_is_refused_with_a_clear_error() -> None:
    server = Connection("server")
    other = ev.PROTOCOL_VERSION + 1
    server.receive_data(encode_body({"t": "hello", "v": other}))
    assert server.error is not None and server.error.code == Code.UNSUPPORTED_VERSION
    assert f"version {other}" in server.error.message


def test_second_hello_is_refused() -> None:
    pair = Pair()
    pair.greet()
    pair.server.receive_data(encode_body({"t": "hello", "v": ev.PROTOCOL_VERSION}))
    assert pair.server.error is not None and pair.server.error.code == Code.UNEXPECTED_FRAME


def test_ping_is_answered_automatically_pong_is_passed_up() -> None:
    pair = Pair()
    pair.greet()
    pair.server.send(ev.Ping(n=7))
    assert pair.to_client() == []
    assert pair.to_server() == [ev.Pong(n=7)]


def test_after_failure_nothing_more_is_parsed() -> None:
    server = Connection("server")
    data = (
        encode_body({"t": "hello", "v": ev.PROTOCOL_VERSION})
        + b"\x00\x00\x00\x00"
        + encode_body({"t": "list", "id": 1})
    )
    assert server.receive_data(data) == [ev.ClientHello(v=ev.PROTOCOL_VERSION)]
    assert server.error is not None and server.error.code == Code.EMPTY_FRAME
    assert server.receive_data(encode_body({"t": "list", "id": 2})) == []


def test_bye_closes_but_the_sender_still_reads_until_eof() -> None:
    pair = Pair()
    pair.greet()
    pair.client.send(ev.Bye(code="quit", msg=""))
    assert pair.client.state is State.CLOSING
    assert pair.to_server() == [ev.Bye(code="quit", msg="")]
    assert pair.server.state is State.CLOSED
    pair.client.receive_data(b"")
    assert pair.client.state.value == "closed"


def test_eof_mid_frame_is_truncated() -> None:
    pair = Pair()
    pair.greet()
    pair.client.send(ev.ListRooms(id=1))
    data = pair.client.data_to_send()
    pair.server.receive_data(data[:-1])
    pair.server.receive_data(b"")
    assert pair.server.error is not None and pair.server.error.code == Code.TRUNCATED
