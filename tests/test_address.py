"""One parser for server addresses, invite links and pins: what it takes, what it
refuses (always with a sentence, never a traceback), and the command line's
one-line errors for each."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonchat.address import canonical_host, format_address, parse_address, same_server
from anonchat.cli import client_main
from anonchat.client import Endpoint
from anonchat.daemon import DEFAULT_PORT
from anonchat.socks import parse_proxy
from anonchat.trust import KnownHosts, TrustError, check_pin_syntax

PIN = "sha256/9n+FhHRzzXJEGNt0M5KWYE9pA/+1I+rMk/fQtSd3qnc="
OTHER_PIN = "sha256/" + base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.org", ("example.org", DEFAULT_PORT)),
        ("example.org:9000", ("example.org", 9000)),
        ("  example.org:9000 ", ("example.org", 9000)),
        ("[::1]:9000", ("::1", 9000)),
        ("[::1]", ("::1", DEFAULT_PORT)),
        ("::1", ("::1", DEFAULT_PORT)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
        ("127.0.0.1:65535", ("127.0.0.1", 65535)),
        ("bücher.example", ("bücher.example", DEFAULT_PORT)),
        ("abc.onion:7667", ("abc.onion", 7667)),
        ("my_host.lan", ("my_host.lan", DEFAULT_PORT)),
        ("example.org.", ("example.org.", DEFAULT_PORT)),
        ("a" * 63 + ".org", ("a" * 63 + ".org", DEFAULT_PORT)),
    ],
)
def test_addresses_that_are_taken(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text, DEFAULT_PORT) == expected
    endpoint = Endpoint.parse(text, DEFAULT_PORT)
    assert (endpoint.host, endpoint.port) == expected
    assert endpoint.pin is None and endpoint.room is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no server address"),
        ("   ", "no server address"),
        ("a..b:7700", "not a valid host name"),
        ("chat..example.org", "not a valid host name"),
        (".example.org", "not a valid host name"),
        ("a" * 64 + ".org", "not a valid host name"),
        (("a" * 60 + ".") * 5 + "org", "1 to 253 characters"),
        ("[::1]junk", "unexpected 'junk' after ']'"),
        ("[::1", "no ']'"),
        ("[example.org]:7667", "not an IPv6 address"),
        ("host:", "no port after ':'"),
        ("host:0", "from 1 to 65535"),
        ("host:65536", "from 1 to 65535"),
        ("host:７", "from 1 to 65535"),  # a fullwidth digit is not a port
        ("host:" + "9" * 5000, "from 1 to 65535"),
        ("host:port", "from 1 to 65535"),
        (":7667", "needs a host"),
        ("1:2:3", "[IPV6]:PORT"),
        ("a b", "a space"),
        ("\u00b8", "not a valid host name"),  # nameprep makes it a space
        ("evil.example\x00.org", "U+0000"),
        ("evil\u2028example", "U+2028"),
        ("evil\u202eexample", "U+202E"),
        ("tab\there", "U+0009"),
        ("ex/ample.org", "'/'"),
        ("user@example.org", "'@'"),
        ("1.2.3", "not a valid IP address"),
        ("999.1.1.1", "not a valid IP address"),
        ("http://example.org", "not a server address"),
    ],
)
def test_addresses_that_are_refused_with_a_sentence(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        Endpoint.parse(text, DEFAULT_PORT)
    assert type(info.value) is ValueError  # not UnicodeError, which is a ValueError too
    assert message in str(info.value)


def test_known_hosts_keys_spell_one_server_one_way() -> None:
    assert KnownHosts.key("Example.ORG.", 7667) == "example.org:7667"
    assert KnownHosts.key("bücher.example", 1) == KnownHosts.key("xn--bcher-kva.example", 1)
    assert KnownHosts.key("0:0::1", 7) == "[::1]:7" == KnownHosts.key("::1", 7)
    assert same_server(("LOCALHOST.", 7667), ("localhost", 7667))
    assert not same_server(("localhost", 7667), ("127.0.0.1", 7667))
    assert not same_server(("localhost", 7667), ("localhost", 7668))
    for bad in ("evil.example\nother.example", "a b", "a..b", "x\x85y", ""):
        with pytest.raises(TrustError):
            KnownHosts.key(bad, 7667)


@given(st.text())
@settings(max_examples=500)
def test_any_text_is_an_address_or_a_value_error(text: str) -> None:
    try:
        endpoint = Endpoint.parse(text, DEFAULT_PORT)
    except ValueError as exc:
        assert type(exc) is ValueError and str(exc)
        return
    # Whatever is taken can be resolved, proxied and written to known_hosts.
    assert 0 < endpoint.port < 65536
    key = KnownHosts.key(endpoint.host, endpoint.port)
    assert key.split() == [key]
    assert canonical_host(endpoint.host).encode("ascii")
    again = Endpoint.parse(format_address(endpoint.host, endpoint.port), DEFAULT_PORT)
    assert (again.host, again.port) == (endpoint.host, endpoint.port)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60).map(lambda s: "h" + s))
@settings(max_examples=300)
def test_any_text_after_a_host_is_an_address_or_a_value_error(tail: str) -> None:
    """Text that starts like an address: the paths the parser takes after the host."""
    try:
        Endpoint.parse(tail, DEFAULT_PORT)
        Endpoint.parse(f"anonchat://{tail}", DEFAULT_PORT)
    except ValueError as exc:
        assert type(exc) is ValueError


# -- invite links ------------------------------------------------------------------


def test_a_link_brings_its_server_pin_and_room() -> None:
    link = Endpoint("::1", 9000).invite(PIN, "lobby")
    assert link == f"anonchat://[::1]:9000/lobby?pin={PIN.replace('=', '%3D').replace('+', '%2B')}"
    endpoint = Endpoint.parse(link, DEFAULT_PORT)
    assert (endpoint.host, endpoint.port, endpoint.pin, endpoint.room) == (
        "::1",
        9000,
        PIN,
        "lobby",
    )
    # Pasted by hand: a raw "+" in the pin stays a "+", "#room" is the room.
    raw = Endpoint.parse("  anonchat://chat.example.org/#lobby  ", DEFAULT_PORT)
    assert (raw.host, raw.port, raw.room) == ("chat.example.org", DEFAULT_PORT, "lobby")
    raw = Endpoint.parse(f"anonchat://chat.example.org/%23lobby?pin={PIN}", DEFAULT_PORT)
    assert (raw.room, raw.pin) == ("lobby", PIN)
    bare = Endpoint.parse("ANONCHAT://chat.example.org:7000", DEFAULT_PORT)
    assert (bare.host, bare.port, bare.pin, bare.room) == ("chat.example.org", 7000, None, None)


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ("anonchat://trusted.example@evil.example/lobby", "user part"),
        (f"anonchat://trusted.example:{PIN}@evil.example/", "the port must be"),
        ("anonchat://@evil.example/", "user part"),
        (f"anonchat://h/r?pin={PIN}&pin={OTHER_PIN}", "one pin, not several"),
        (f"anonchat://h/r?pin={PIN}&pin={PIN}", "one pin, not several"),
        ("anonchat://h/r?pass=hunter2", "links carry only a pin"),
        (f"anonchat://h/r?pin={PIN[:-1]}", "not a pin"),
        ("anonchat://h/r?pin=sha256/" + "A" * 43 + "B", "not a pin"),  # non-canonical
        ("anonchat://h/r?pin=sha256/" + "A" * 42 + "==", "not a pin"),
        ("anonchat://h/r?pin=sha256/" + "A" * 43 + "=%0A", "not a pin"),
        ("anonchat://a..b/r", "not a valid host name"),
        ("anonchat://h:/r", "no port after"),
        ("anonchat://h:99999/r", "from 1 to 65535"),
        ("anonchat://ev\til.example/r", "control character"),
        ("anonchat://evil.example\n.org/r", "control character"),
        ("anonchat:evil.example", "not an anonchat link"),
        ("anonchat:///lobby", "not an anonchat link"),
        ("anonchat://h/a/b#c", "one room, not two"),
        (f"anonchat://h/#lobby?pin={PIN}", "the pin would be read as part of the room"),
        ("anonchat://h/a%00b", "bad room"),
    ],
)
def test_links_that_are_refused(link: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        Endpoint.parse(link, DEFAULT_PORT)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "pin",
    [
        PIN[:-1],  # too short
        PIN + "=",  # too long
        PIN.replace("+", "-"),  # the URL-safe alphabet is not this one
        PIN[:-2] + "d=",  # the same 32 bytes, spelled a second way
        PIN.replace("sha256/", "sha1/"),
        PIN.replace("9", "\u0669"),  # ARABIC-INDIC DIGIT NINE
        PIN[:20] + " " + PIN[21:],
        "",
    ],
)
def test_pins_are_checked_strictly(pin: str) -> None:
    with pytest.raises(TrustError):
        check_pin_syntax(pin)


def test_a_good_pin_passes() -> None:
    assert check_pin_syntax(PIN) == PIN and check_pin_syntax(OTHER_PIN) == OTHER_PIN


def test_proxy_addresses() -> None:
    assert parse_proxy("socks5://127.0.0.1:9050") == ("127.0.0.1", 9050)
    assert parse_proxy("socks5h://[::1]:9050/") == ("::1", 9050)
    assert parse_proxy("SOCKS5://localhost:1080") == ("localhost", 1080)
    for bad in ("socks5://127.0.0.1", "http://127.0.0.1:8080", "socks5://a..b:1", "127.0.0.1:9050"):
        with pytest.raises(ValueError):
            parse_proxy(bad)


# -- the command line ------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--server", "a..b:7700"], "argument --server: not a valid host name: 'a..b'"),
        (["--server", "[::1]junk"], "argument --server: unexpected 'junk'"),
        (["--server", "host:"], "argument --server: no port after ':'"),
        (["anonchat://trusted.example@evil.example/x"], "user part"),
        (["--fingerprint", PIN], "--fingerprint is the key of one server"),
        (["--plain", "--fingerprint", PIN], "--fingerprint is the key of one server"),
        (["--server", "h", "--fingerprint", "sha256/nope"], "not a pin"),
        ([f"anonchat://h/?pin={PIN}", "--fingerprint", OTHER_PIN], "differ"),
        (["--proxy", "socks5://127.0.0.1"], "not a SOCKS5 proxy address"),
        (["--proxy", "tor"], "not a SOCKS5 proxy address"),
        (["--plain"], "say where to connect"),
        (["--local", "--proxy", "socks5://127.0.0.1:9050"], "leave out --proxy"),
        (["--local", "--server", "h"], "leave out --server"),
        # --port with --server was ignored: the client went to port 7667.
        (["--server", "h", "--port", "7791"], "a server's port goes in --server HOST:PORT"),
        (["--local", "--port", "70000"], "from 0 to 65535"),
    ],
)
def test_a_bad_command_line_is_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        client_main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("anonchat: error: ")
