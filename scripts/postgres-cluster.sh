#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for SafeRx's tests, on a loopback port, from Debian's packages.
#
#   scripts/postgres-cluster.sh start [DIR] [PORT]   # prints the server URL, postgres://postgres@127.0.0.1:PORT/postgres
#   scripts/postgres-cluster.sh stop  [DIR]
#
# The cluster runs as the `postgres` user (initdb refuses root), with trust authentication on loopback only and the
# C locale (text compares byte by byte, as in SQLite). Tests create one database per test in it. It accepts TLS too
# (a throw-away CA in DIR/tls/ca.crt).
# PG_EXTRA_OPTS (optional) is appended to the server's command line, e.g. PG_EXTRA_OPTS="-c wal_level=replica";
# it applies only when this call starts the server (scripts/postgres-standby.sh uses it for the primary).
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
    # TLS as well as plain connections: a throw-away CA ($dir/tls/ca.crt, what a client's sslrootcert names) and a
    # server certificate for the name localhost (not for the address 127.0.0.1, so that a test can connect by name
    # and by address and see host-name verification pass and fail) signed by it.
    if [ ! -f "$dir/tls/server.key" ]; then
      tls=$(mktemp -d)
      openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=SafeRx test CA" -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
      openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
      printf 'subjectAltName=DNS:localhost\n' > "$tls/san.ext"
      openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial -days 30 \
        -extfile "$tls/san.ext" -out "$tls/server.crt" 2>/dev/null
      mkdir -p "$dir/tls" && cp "$tls/ca.crt" "$tls/server.crt" "$tls/server.key" "$dir/tls/" && rm -rf "$tls"
      chown -R postgres "$dir/tls" && chmod 700 "$dir/tls" && chmod 600 "$dir/tls/server.key" && chmod 644 "$dir/tls/ca.crt"
    fi
    if ! as_postgres "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      # The server outlives this script: it must not inherit the caller's descriptors beyond stdio (Foundation's
      # Process, for one, learns that its child exited when a socket it gave the child closes; a postgres holding
      # that socket would leave the caller waiting for ever).
      (
        for fd in $(ls "/proc/$BASHPID/fd"); do [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done
        as_postgres "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
          -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on -c ssl=on -c ssl_cert_file=$dir/tls/server.crt -c ssl_key_file=$dir/tls/server.key ${PG_EXTRA_OPTS:-}" start >/dev/null
      )
    fi
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_postgres "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 start|stop [DIR] [PORT]" >&2; exit 2 ;;
esac
