"""anonchatd's command line as a real process: every config mistake is one line
naming the setting and its value, and exit status 2 -- never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from anonchat.daemon import Config
from anonchat.daemon.cli import daemon_parser
from anonchat.daemon.config import _LIMIT_KEYS, _TOP_KEYS, Limits, config_from
from anonchat.errors import ConfigError
from anonchat.trust import create_identity

from .helpers import free_port
from .redis_server import RedisServer, redis_server


def anonchatd(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m anonchat.daemon ARGS`` to its end."""
    return subprocess.run(
        [sys.executable, "-m", "anonchat.daemon", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def refused(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one line a refused start printed (after checking it is one line)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("anonchatd: ")
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


BAD_VALUES = [
    ('plaintext = "no"', "plaintext", "'no'"),
    ("plaintext = 1", "plaintext", "1"),
    ("host = 5", "host", "5"),
    ('host = ""', "host", "''"),
    ("host = [1, 2]", "host", "[1, 2]"),
    ('log_level = "LOUD"', "log_level", "'LOUD'"),
    ("log_level = 10", "log_level", "10"),
    ("redis = 6379", "redis", "6379"),
    ('redis = "10.0.0.5:6379"', "redis", "'10.0.0.5:6379'"),
    ('redis = "redis://10.0.0.5:port/0"', "redis", "redis://10.0.0.5:port/0"),
    ('redis = "redis://10.0.0.5:6379/zero"', "redis", "redis://10.0.0.5:6379/zero"),
    ("metrics = 9108", "metrics", "9108"),
    ('metrics = "127.0.0.1:99999"', "metrics", "'127.0.0.1:99999'"),
    ("state_dir = 5", "state_dir", "5"),
    ('state_dir = "a\\u0000b"', "state_dir", "NUL"),
    ("cert = true\nkey = true", "cert", "True"),
    ("node_timeout = nan", "node_timeout", "nan"),
    ("node_timeout = inf", "node_timeout", "inf"),
    ("node_timeout = -1", "node_timeout", "-1"),
    ('node_timeout = "10"', "node_timeout", "'10'"),
    ("port = -1", "port", "-1"),
    ("port = 7667.0", "port", "7667.0"),
    ('port = "7667"', "port", "'7667'"),
    ("idle_timeout = nan", "idle_timeout", "nan"),
    ("resume_window = inf", "resume_window", "inf"),
    ("resume_window = -inf", "resume_window", "-inf"),
    ("resume_window = 86401", "resume_window", "86401"),
    ("max_text = -1", "max_text", "-1"),
    ("max_text = 0", "max_text", "0"),
    ("max_text = 100.5", "max_text", "100.5"),
    ("max_connections = true", "max_connections", "True"),
    ('max_connections = "many"', "max_connections", "'many'"),
    ("read_size = 1_000_000_000", "read_size", "1000000000"),
    ("msg_rate = -0.5", "msg_rate", "-0.5"),
    ("dm_rate = nan", "dm_rate", "nan"),
    ("[limits]\nhello_timeout = 1e400", "hello_timeout", "inf"),
    ("limits = 5", "limits", "5"),
    ("colour = 1", "colour"),
    ("[limits]\nhost = 'x'", "host"),
    ("start = 1979-05-27", "start"),
    ("host = 1979-05-27", "host", "datetime.date(1979, 5, 27)"),
    # a limit both at the top level and under [limits]: one was silently ignored
    ("max_text = 100\n[limits]\nmax_text = 200", "limit max_text is set twice"),
]


@pytest.mark.parametrize(("toml", "words"), [(t, words) for t, *words in BAD_VALUES])
def test_a_bad_value_is_one_line_and_exit_2(tmp_path: Path, toml: str, words: list[str]) -> None:
    config = tmp_path / "anonchatd.toml"
    config.write_text(toml + "\n", encoding="utf-8")
    # (--print-pin: a value wrongly taken would end the run at once, not serve)
    state = [] if "state_dir" in toml else ["--state-dir", str(tmp_path / "s")]
    refused(anonchatd("--config", str(config), *state, "--print-pin"), *words)


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--node-timeout", "nan"], ["node_timeout", "nan"]),
        (["--node-timeout", "inf"], ["node_timeout", "inf"]),
        (["--redis", "http://:hunter2@x/0"], ["redis", "http://***@x/0"]),
        (["--metrics", "0.0.0.0:http"], ["metrics", "0.0.0.0:http"]),
        (["--host", ""], ["host", "''"]),
        (["--state-dir", ""], ["state_dir", "''"]),
        (["--cert", "c.pem"], ["cert and key"]),
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2(flags: list[str], words: list[str]) -> None:
    line = refused(anonchatd(*flags, "--print-pin"), *words)
    assert "hunter2" not in line


def test_a_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    config = tmp_path / "anonchatd.toml"
    config.write_bytes(b'host = "caf\xe9"\n')
    refused(anonchatd("--config", str(config), "--print-pin"), str(config), "not UTF-8")


def test_a_config_file_that_is_a_directory(tmp_path: Path) -> None:
    refused(anonchatd("--config", str(tmp_path), "--print-pin"), "cannot read", str(tmp_path))


@pytest.mark.parametrize("level", ["debug", "Warning", "ERROR"])
def test_log_level_is_read_in_any_case(tmp_path: Path, level: str) -> None:
    config = tmp_path / "anonchatd.toml"
    config.write_text(f'log_level = "{level}"\n', encoding="utf-8")
    proc = anonchatd("--config", str(config), "--state-dir", str(tmp_path), "--print-pin")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("sha256/")
    flag = anonchatd("--log-level", level.lower(), "--state-dir", str(tmp_path), "--print-pin")
    assert flag.returncode == 0, flag.stderr


def test_the_values_at_their_limits_are_taken(tmp_path: Path) -> None:
    config = tmp_path / "anonchatd.toml"
    config.write_text(
        "plaintext = false\nnode_timeout = 600\nresume_window = 86400\nhistory = 0\n"
        "msg_rate = 1e6\ndm_rate = 1e6\n"
        'read_size = 16777216\nport = 65535\nmetrics = "[::1]:0"\n',
        encoding="utf-8",
    )
    proc = anonchatd("--config", str(config), "--state-dir", str(tmp_path), "--print-pin")
    assert proc.returncode == 0, proc.stderr


def test_a_busy_metrics_port_is_named_as_the_metrics_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        chat = free_port()
        proc = anonchatd(
            "--port", str(chat), "--state-dir", str(tmp_path), "--metrics", f"127.0.0.1:{taken}"
        )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"anonchatd: cannot serve metrics on 127.0.0.1:{taken}: Address already in use"
    ]
    assert str(chat) not in proc.stderr


def test_a_busy_chat_port_is_exit_1(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        proc = anonchatd("--port", str(taken), "--state-dir", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == (
        f"anonchatd: cannot listen on 127.0.0.1:{taken}: Address already in use"
    )


@pytest.mark.skipif(not socket.has_ipv6, reason="needs IPv6")
def test_an_ipv6_address_is_written_in_brackets(tmp_path: Path) -> None:
    """``[::1]:PORT`` in the start line, the log and the busy-port line; it was
    ``::1:PORT``, where the port cannot be told from the address."""
    with socket.socket(socket.AF_INET6) as busy:
        busy.bind(("::1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        proc = anonchatd("--host", "::1", "--port", str(taken), "--state-dir", str(tmp_path))
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.strip() == (
            f"anonchatd: cannot listen on [::1]:{taken}: Address already in use"
        )
        proc = anonchatd(
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--state-dir",
            str(tmp_path),
            "--metrics",
            f"[::1]:{taken}",
        )
        assert proc.stderr.strip() == (
            f"anonchatd: cannot serve metrics on [::1]:{taken}: Address already in use"
        )
    # (a line printed before stopping; SIGTERM once it is out)
    start = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anonchat.daemon",
            "--host",
            "::1",
            "--port",
            "0",
            "--state-dir",
            str(tmp_path),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert start.stderr is not None
        lines = [start.stderr.readline() for _ in range(2)]
    finally:
        start.terminate()
        start.communicate(timeout=60)
    assert re.search(r"INFO anonchat.daemon: listening on \[::1\]:\d+$", lines[0].strip())
    assert re.match(r"anonchatd \S+ listening on \[::1\]:\d+ \(TLS, pin ", lines[1])


@pytest.mark.parametrize("flag", ["--host", "--metrics"])
def test_a_name_that_does_not_resolve_is_exit_1(tmp_path: Path, flag: str) -> None:
    where = "no-such-host.invalid"
    value = where if flag == "--host" else f"{where}:9108"
    proc = anonchatd("--port", "0", "--state-dir", str(tmp_path), flag, value)
    assert proc.returncode == 1, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("anonchatd: cannot ") and f"{where}:" in line
    assert "Unknown error" not in line and "Traceback" not in line


async def with_metrics(tmp_path: Path, address: str) -> asyncio.subprocess.Process:
    """anonchatd on port 0 serving metrics on ``address``, its stderr piped."""
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "anonchat.daemon", "--port", "0"),
        *("--state-dir", str(tmp_path), "--metrics", address),
        stderr=asyncio.subprocess.PIPE,
    )


async def test_metrics_on_every_interface_are_warned_about(tmp_path: Path) -> None:
    proc = await with_metrics(tmp_path, "0.0.0.0:0")
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(30):
            while b"WARNING: metrics" not in (line := await proc.stderr.readline()):
                assert line, "anonchatd exited without the warning"
        assert re.search(rb"metrics are served on 0\.0\.0\.0:[1-9]\d*, where other machines", line)
    finally:
        proc.terminate()
        await proc.wait()
    assert proc.returncode == 0


async def test_the_metrics_port_taken_is_said(tmp_path: Path) -> None:
    """``--metrics 127.0.0.1:0``: the start says which port it took, and that
    port serves the metrics (no warning: loopback)."""
    proc = await with_metrics(tmp_path, "127.0.0.1:0")
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(30):
            while b"metrics on" not in (line := await proc.stderr.readline()):
                assert line, "anonchatd exited without saying where its metrics are"
                assert b"WARNING" not in line
            found = re.search(rb"metrics on 127\.0\.0\.1:([1-9]\d*) \(/metrics\)", line)
            assert found, line
            reader, writer = await asyncio.open_connection("127.0.0.1", int(found.group(1)))
            writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
            answer = await reader.read()
            writer.close()
        assert answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n")[0]
        assert b"anonchat_" in answer
    finally:
        proc.terminate()
        await proc.wait()
    assert proc.returncode == 0


# -- any TOML value, for every setting ---------------------------------------------

toml_scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.text(max_size=40)
    | st.dates()
    | st.datetimes()
    | st.times()
)


def _tables_and_arrays(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # (a named function: Hypothesis reads a lambda's source to see that it
    # recurses, and warned that this one did not)
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner)


toml_values = st.recursive(toml_scalars, _tables_and_arrays, max_leaves=6)
settings_ = st.sampled_from(sorted(_TOP_KEYS | _LIMIT_KEYS | {"limits", "nonsense"}))


@given(st.dictionaries(settings_, toml_values, max_size=4), st.booleans())
def test_any_toml_value_is_taken_or_refused_in_one_line(data: dict[str, Any], nest: bool) -> None:
    if nest:  # the same settings, under [limits] where they are limits
        data = {"limits": {k: v for k, v in data.items() if k in _LIMIT_KEYS}} | {
            k: v for k, v in data.items() if k not in _LIMIT_KEYS
        }
    try:
        config = config_from(data, "test.toml")
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message and len(message) < 300
        return
    assert isinstance(config, Config) and isinstance(config.limits, Limits)
    assert type(config.port) is int and type(config.plaintext) is bool
    assert isinstance(config.host, str) and config.host.strip()
    assert config.log_level in ("DEBUG", "INFO", "WARNING", "ERROR")
    assert math.isfinite(config.node_timeout)
    for name in _LIMIT_KEYS:
        value = getattr(config.limits, name)
        assert type(value) in (int, float) and math.isfinite(value) and value >= 0, name


# -- Redis: the password is never shown; unreachable is "try later" ------------------

PASSWORD = "s3cret-Passw0rd"


def test_an_unreachable_redis_is_status_75_without_the_password(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    proc = anonchatd("--port", "0", "--state-dir", str(tmp_path), "--redis", url)
    assert proc.returncode == 75, proc.stderr  # EX_TEMPFAIL: systemd starts it again later
    assert "Traceback" not in proc.stderr and PASSWORD not in proc.stderr
    assert f"anonchatd: cannot reach Redis at redis://***@127.0.0.1:{port}/0: " in proc.stderr


def test_a_wrong_redis_password_is_status_2_without_it(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        redis.Redis.from_url(server.url).config_set("requirepass", "the-right-one")
        url = server.url.replace("redis://", f"redis://:{PASSWORD}@")
        proc = anonchatd("--port", "0", "--state-dir", str(tmp_path), "--redis", url)
    assert proc.returncode == 2, proc.stderr  # trying again will not help
    assert "Traceback" not in proc.stderr and PASSWORD not in proc.stderr
    assert "refuses this node" in proc.stderr and "redis://***@127.0.0.1:" in proc.stderr


def test_a_redis_database_that_does_not_exist_is_status_2(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        url = server.url.rpartition("/")[0] + "/99"  # (16 databases by default)
        proc = anonchatd("--port", "0", "--state-dir", str(tmp_path), "--redis", url)
    refused(proc, f"Redis at {url} refuses this node", "DB index is out of range")


async def test_the_redis_password_is_never_logged(tmp_path: Path) -> None:
    """A node with a password in its URL logs joining, then losing Redis (its
    reads and writes failing), then stopping: the password is in no line."""
    with redis_server(tmp_path) as server:
        redis.Redis.from_url(server.url).config_set("requirepass", PASSWORD)
        url = server.url.replace("redis://", f"redis://default:{PASSWORD}@")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "anonchat.daemon", "--port", "0", "--state-dir", str(tmp_path)),
            *("--redis", url, "--log-level", "debug"),
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stderr is not None
        log: list[bytes] = []

        async def until(text: bytes) -> None:
            assert proc.stderr is not None
            while text not in (line := await proc.stderr.readline()):
                assert line, b"".join(log).decode()
                log.append(line)
            log.append(line)

        try:
            async with asyncio.timeout(60):
                await until(b"joined the service at redis://***@127.0.0.1:")
                server.proc.terminate()
                server.proc.wait(10)
                await until(b"cannot read from Redis")
                proc.terminate()
                rest = await proc.stderr.read()
                log.append(rest)
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
    text = b"".join(log).decode()
    assert "cannot read from Redis" in text and "stopped" in text
    assert PASSWORD not in text and "default:" not in text


@pytest.mark.parametrize("cert_mode", [0o644, 0o600])
def test_key_files_another_user_owns_are_named(tmp_path: Path, cert_mode: int) -> None:
    """The key copied as root into the state directory of a service that runs
    as another user (docs/operations.md, "Copying the key..."): one line
    saying which file cannot be read, exit 2."""
    state = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        state.chmod(0o755)
        create_identity(state)  # as root: the key 0600, root's
        (state / "anonchatd.crt").chmod(cert_mode)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        proc = subprocess.run(
            [
                *nobody,
                sys.executable,
                "-m",
                "anonchat.daemon",
                "--state-dir",
                str(state),
                "--print-pin",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        shutil.rmtree(state)
    unreadable = "anonchatd.crt" if cert_mode == 0o600 else "anonchatd.key"
    what = "certificate" if cert_mode == 0o600 else "key"
    line = refused(proc, f"cannot read {what} {state / unreadable}: Permission denied")
    assert "does not fit" not in line


@pytest.mark.parametrize("serve", [False, True])
def test_a_state_dir_that_cannot_be_used_is_one_line_and_exit_2(
    tmp_path: Path, serve: bool
) -> None:
    """A state directory that is a file, or under one, cannot hold the key: one
    line naming it, exit 2 (it was a traceback and exit 1), whether the daemon
    starts or only prints its pin."""
    (tmp_path / "file").write_text("")
    for state in (tmp_path / "file", tmp_path / "file" / "state"):
        args = ["--state-dir", str(state), "--port", "0"]
        proc = anonchatd(*args) if serve else anonchatd(*args, "--print-pin")
        refused(proc, f"cannot use state directory {state}")


def _blocked_on(pid: int, inode: int) -> bool:
    """Whether process ``pid`` waits for a lock on ``inode`` (/proc/locks)."""
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields and str(pid) in fields and any(f.endswith(f":{inode}") for f in fields):
            return True
    return False


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux's /proc/locks")
def test_a_daemon_waits_for_another_making_the_key_in_its_state_dir(tmp_path: Path) -> None:
    """Two daemons started at once on one new state directory: the second does
    not take the first's half-written pair for a broken one (it said "cannot
    read certificate", or died with a traceback on the key the first had just
    made) but waits for it, and uses the same key."""
    made = tmp_path / "made"
    create_identity(made)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    fd = os.open(state, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the first daemon, making its key...
    proc = None
    try:
        shutil.copy(made / "anonchatd.key", state / "anonchatd.key")  # ...half done
        proc = subprocess.Popen(
            [sys.executable, "-m", "anonchat.daemon", "--state-dir", str(state), "--print-pin"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        inode = state.stat().st_ino
        deadline = time.monotonic() + 60
        while not _blocked_on(proc.pid, inode) and proc.poll() is None:
            assert time.monotonic() < deadline, "the second daemon neither waited nor ended"
            time.sleep(0.01)  # (polling a condition, not a synchronisation)
        shutil.copy(made / "anonchatd.crt", state / "anonchatd.crt")  # the first is done
    finally:
        os.close(fd)
        if proc is not None:
            out, err = proc.communicate(timeout=60)
    assert proc is not None
    assert proc.returncode == 0, err
    assert out.strip() == anonchatd("--state-dir", str(made), "--print-pin").stdout.strip()


def test_the_default_state_dir_is_the_one_help_and_docs_name(tmp_path: Path) -> None:
    """Without --state-dir the key goes to $STATE_DIRECTORY, else
    $XDG_STATE_HOME/anonchatd, else ~/.local/state/anonchatd; --help and
    docs/operations.md name all three (--help left out the second)."""
    base = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "XDG_STATE_HOME")}
    cases = [
        ({"STATE_DIRECTORY": str(tmp_path / "systemd")}, tmp_path / "systemd"),
        ({"XDG_STATE_HOME": str(tmp_path / "xdg")}, tmp_path / "xdg" / "anonchatd"),
        ({"HOME": str(tmp_path / "home")}, tmp_path / "home/.local/state/anonchatd"),
    ]
    for env, where in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "anonchat.daemon", "--print-pin"],
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert sorted(p.name for p in where.iterdir()) == ["anonchatd.crt", "anonchatd.key"]
    help_text = " ".join(anonchatd("--help").stdout.split())
    doc = (Path(__file__).parent.parent / "docs" / "operations.md").read_text()
    for name in ("$STATE_DIRECTORY", "$XDG_STATE_HOME/anonchatd", "~/.local/state/anonchatd"):
        assert name in help_text and name in doc, name


@pytest.mark.parametrize("plaintext", [["--plaintext"], ["--config", "plaintext.toml"]])
def test_print_pin_of_a_plaintext_daemon_is_refused(tmp_path: Path, plaintext: list[str]) -> None:
    """A plaintext daemon has no key: --print-pin with its flags or its config
    file says so (it made a key the daemon never uses and printed its pin, to be
    handed out to users whose clients then fail), and makes no key."""
    (tmp_path / "plaintext.toml").write_text("plaintext = true\n")
    args = [str(tmp_path / a) if a.endswith(".toml") else a for a in plaintext]
    state = tmp_path / "state"
    proc = anonchatd(*args, "--state-dir", str(state), "--print-pin")
    refused(proc, "--print-pin", "plaintext", "no pin")
    assert not state.exists()


def test_every_flag_is_in_the_table_of_flags_in_operations_md() -> None:
    """docs/operations.md, "Starting it", lists each of anonchatd's flags (it
    left out --redis, --node-timeout and --metrics)."""
    doc = (Path(__file__).parent.parent / "docs" / "operations.md").read_text()
    table = doc.split("## Starting it", 1)[1].split("\n\n| flag |", 1)[1].split("\n\n", 1)[0]
    flags = {
        option
        for action in daemon_parser()._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    assert flags and {f for f in flags if f"`{f}" not in table} == set()


DAEMON = [sys.executable, "-m", "anonchat.daemon"]


@pytest.mark.skipif(not socket.has_ipv6, reason="needs IPv6")
def test_host_any_ipv6_takes_ipv4_too(tmp_path: Path) -> None:
    """``--host ::`` listens on every IPv6 "(and, on Linux, IPv4) interface"
    (docs/operations.md); its socket was IPv6-only, and IPv4 clients were
    refused, with no setting to listen on both."""
    proc = subprocess.Popen(
        [*DAEMON, "--host", "::", "--port", "0", "--plaintext", "--state-dir", str(tmp_path)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        port = int(re.findall(r"listening on \[::\]:(\d+)", line)[0])
        for address in ("127.0.0.1", "::1"):
            with socket.create_connection((address, port), timeout=30) as conn:
                conn.sendall(b"\xff\xff\xff\xff")  # too large a frame: answered, closed
                assert b"frame_too_large" in conn.recv(4096)
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


def _connected_to(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a TCP connection to 127.0.0.1:``port``
    (its socket inodes, matched in /proc/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            link = os.readlink(fd)
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        if int(fields[2].split(":")[1], 16) == port and fields[9] in inodes:
            return True
    return False


async def test_a_stop_signal_during_the_start_is_not_lost(redis: RedisServer) -> None:
    """Ctrl+C while a node joins the service through Redis (here Redis is
    frozen, so the start waits for it): the node stops once its start is over.
    The signal was lost, and the node went on running."""
    redis.proc.send_signal(signal.SIGSTOP)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "anonchat.daemon", "--port", "0", "--plaintext",
        "--redis", redis.url, "--node-timeout", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with asyncio.timeout(30):
            while not _connected_to(proc.pid, redis.port):  # inside the start, waiting
                await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        redis.proc.send_signal(signal.SIGCONT)
        async with asyncio.timeout(60):
            out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()
        assert "Traceback" not in out.decode()
    finally:
        redis.proc.send_signal(signal.SIGCONT)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
