"""Server addresses: one parser for every place that reads one.

The command line (``--server``, ``--proxy``), the connect screen's server
field, invite links and the keys of known_hosts all go through this module,
so they agree on what an address is, and a bad one is a :class:`ValueError`
with a sentence at the moment it is typed, never a traceback later from the
resolver (the idna codec's ``UnicodeError``, say) or a line that would break
known_hosts.  Pure functions: no I/O, no name lookups.
"""

from __future__ import annotations

import ipaddress
import string
import unicodedata

#: Characters an ASCII host name may hold (underscores appear in real names).
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "-_.")
#: A DNS name's longest written form, without the final dot (RFC 1035).
MAX_NAME = 253
#: The longest port text worth reading ("65535").
_MAX_PORT_TEXT = 5

EXAMPLE = "e.g. chat.example.org:7667, 127.0.0.1:7667 or [::1]:7667"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def bad_character(text: str) -> str | None:
    """The first whitespace, control or other invisible character in ``text``."""
    for char in text:
        if char.isspace() or unicodedata.category(char)[0] == "C":
            return char
    return None


def check_host(host: str) -> str:
    """Return ``host`` if it is an IP address or a valid host name, else raise ValueError.

    Refused: nothing at all, whitespace and control characters, characters no
    host name has (``/``, ``@``, ``[`` ...), empty labels (``a..b``), labels
    over 63 characters, names over 253, and dotted numbers that are not an
    IPv4 address (``1.2.3``, ``999.1.1.1``).  International names must pass
    the idna codec, as the resolver and the SOCKS proxy will use it.
    """
    if not host:
        raise ValueError(f"the server address needs a host, {EXAMPLE}")
    char = bad_character(host)
    if char is not None:
        raise ValueError(
            f"a host name cannot contain {_describe(char)}: {host!r}",
        )
    if _is_ip(host):
        return host
    odd = next((c for c in host if c.isascii() and c not in _NAME_CHARS), None)
    if odd is not None:
        raise ValueError(f"a host name cannot contain {odd!r}: {host!r} ({EXAMPLE})")
    try:
        encoded = host.encode("idna")
    except UnicodeError:
        raise ValueError(
            f"not a valid host name: {host!r} (an empty part such as 'a..b', "
            "a part longer than 63 characters, or characters a name cannot hold)"
        ) from None
    # nameprep maps some characters to others a name cannot hold (U+00B8 to a space).
    if any(chr(byte) not in _NAME_CHARS for byte in encoded):
        raise ValueError(f"not a valid host name: {host!r}")
    name = encoded.rstrip(b".")
    if not name or len(name) > MAX_NAME:
        raise ValueError(f"not a valid host name: {host!r} (1 to {MAX_NAME} characters)")
    if name.split(b".")[-1].isdigit():
        raise ValueError(f"not a valid IP address or host name: {host!r}")
    return host


def canonical_host(host: str) -> str:
    """The one spelling of a host, for comparing and for known_hosts keys.

    Names are case-insensitive, a final dot changes nothing, an international
    name and its ``xn--`` form are the same name, and ``::0:1`` is ``::1``.
    Raises ValueError like :func:`check_host`.
    """
    check_host(host)
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    return host.encode("idna").decode("ascii").lower().rstrip(".")


def parse_port(text: str) -> int:
    if not text:
        raise ValueError(f"no port after ':' ({EXAMPLE}), or leave out the ':'")
    if len(text) > _MAX_PORT_TEXT or not (text.isascii() and text.isdigit()):
        raise ValueError(f"the port must be a number from 1 to 65535, not {text!r}")
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"the port must be a number from 1 to 65535, not {port}")
    return port


def parse_address(text: str, default_port: int) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``[IPV6]``, ``[IPV6]:PORT`` or a bare IPv6 address
    -> (host, port); ``default_port`` when none is written.  Surrounding spaces
    are ignored; anything else that is not an address raises ValueError."""
    value = text.strip()
    if not value:
        raise ValueError(f"no server address: write HOST or HOST:PORT, {EXAMPLE}")
    char = bad_character(value)
    if char is not None:
        raise ValueError(f"a server address cannot contain {_describe(char)}: {value!r}")
    if "://" in value:
        raise ValueError(f"not a server address: {value!r} (write HOST:PORT, {EXAMPLE})")
    if value.startswith("["):
        host, closed, rest = value[1:].partition("]")
        if not closed:
            raise ValueError(f"no ']' after the IPv6 address in {value!r}")
        if not _is_ipv6(host):
            raise ValueError(f"not an IPv6 address between [ and ]: {host!r}")
        if not rest:
            return host, default_port
        if not rest.startswith(":"):
            raise ValueError(f"unexpected {rest!r} after ']' in {value!r} (write [IPV6]:PORT)")
        return host, parse_port(rest[1:])
    if value.count(":") > 1:
        if not _is_ipv6(value):
            raise ValueError(
                f"not an address: {value!r} (an IPv6 address with a port is written [IPV6]:PORT)"
            )
        return value, default_port
    host, colon, port_text = value.partition(":")
    check_host(host)
    return host, parse_port(port_text) if colon else default_port


def format_address(host: str, port: int) -> str:
    """``HOST:PORT``, with brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def same_server(a: tuple[str, int], b: tuple[str, int]) -> bool:
    """Whether two (host, port) name the same server, spelled as known_hosts would."""
    try:
        return (canonical_host(a[0]), a[1]) == (canonical_host(b[0]), b[1])
    except ValueError:
        return False


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _describe(char: str) -> str:
    if char == " ":
        return "a space"
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name.lower()})" if name else "")
