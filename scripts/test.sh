#!/usr/bin/env bash
# Install everything the tests need, then run them all (lint and types included).
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools some tests drive for real: tmux for the terminal key checks,
# microsocks as the SOCKS5 proxy, openssl as an independent TLS client,
# redis-server for the tests of several nodes (each test starts its own),
# strace and systemd-analyze to hold the daemon to its systemd unit's hardening,
# a C compiler (gcc) and OpenSSL's headers (libssl-dev) to build the benchmarks'
# load generator (benchmarks/fanout.c, with TLS), and ngircd, the IRC server it
# is tested against (as the benchmarks compare with it).
need=()
command -v tmux >/dev/null || need+=(tmux)
command -v microsocks >/dev/null || need+=(microsocks)
command -v openssl >/dev/null || need+=(openssl)
command -v redis-server >/dev/null || need+=(redis-server)
command -v strace >/dev/null || need+=(strace)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v cc >/dev/null || need+=(gcc)
[ -e /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
command -v ngircd >/dev/null || [ -x /usr/sbin/ngircd ] || need+=(ngircd)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "scripts/test.sh: please install: ${need[*]}" >&2
    exit 1
  fi
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test,fast]'
exec .venv/bin/pytest "$@"
