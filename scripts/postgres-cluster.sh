#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for SafeRx's tests, on a loopback port, from Debian's packages.
#
#   scripts/postgres-cluster.sh start [DIR] [PORT]   # prints the server URL, postgres://postgres@127.0.0.1:PORT/postgres
#   scripts/postgres-cluster.sh stop  [DIR]
#
# The cluster runs as the `postgres` user (initdb refuses root), with trust authentication on loopback only and the
# C locale (text compares byte by byte, as in SQLite). Tests create one database per test in it.
set -euo pipefail
cmd=${1:-start}
dir=${2:-/tmp/saferx-pg}
port=${3:-55432}
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

if ! command -v pg_config >/dev/null 2>&1 || [ ! -x "$(pg_config --bindir)/initdb" ]; then
  echo "== installing PostgreSQL (Debian's packages)" >&2
  $SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
bin=$(pg_config --bindir)
as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else $SUDO -u postgres "$@" 2>/dev/null || su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi; }

case "$cmd" in
  start)
    if [ ! -f "$dir/PG_VERSION" ]; then
      mkdir -p "$dir" && chown postgres "$dir" && chmod 700 "$dir"
      as_postgres "$bin/initdb" -D "$dir" --no-locale -E UTF8 --auth=trust -U postgres >/dev/null
    fi
    if ! as_postgres "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      as_postgres "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on" start >/dev/null
    fi
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_postgres "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 start|stop [DIR] [PORT]" >&2; exit 2 ;;
esac
