#!/usr/bin/env bash
# A throw-away PostgreSQL primary with a synchronous streaming standby, for SafeRx's high-availability tests and docs.
#
#   scripts/postgres-standby.sh start   PRIMARY_DIR PRIMARY_PORT STANDBY_DIR STANDBY_PORT   # prints a multi-host URL
#   scripts/postgres-standby.sh promote STANDBY_DIR      # failover: the standby becomes a read-write primary
#   scripts/postgres-standby.sh kill    PRIMARY_DIR      # crash the primary (immediate stop)
#   scripts/postgres-standby.sh stop    PRIMARY_DIR STANDBY_DIR
#
# The primary is started by scripts/postgres-cluster.sh with the replication settings on its command line (not in
# postgresql.conf / postgresql.auto.conf), so pg_basebackup does not copy synchronous_standby_names to the standby:
# once promoted, the standby has no synchronous standby of its own and its commits must not wait for one.
set -euo pipefail
cmd=${1:-}
here=$(cd "$(dirname "$0")" && pwd)
app=saferx_standby
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

if ! command -v pg_config >/dev/null 2>&1 || [ ! -x "$(pg_config --bindir)/initdb" ]; then
  echo "== installing PostgreSQL (Debian's packages)" >&2
  $SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
bin=$(pg_config --bindir)
as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else $SUDO -u postgres "$@" 2>/dev/null || su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi; }
sql() { "$bin/psql" -X -q -t -A -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }   # sql PORT QUERY
port_of() { sed -n 4p "$1/postmaster.pid"; }                                             # a running cluster's port
usage() { echo "usage: $0 start PRIMARY_DIR PRIMARY_PORT STANDBY_DIR STANDBY_PORT | promote STANDBY_DIR | kill PRIMARY_DIR | stop PRIMARY_DIR STANDBY_DIR" >&2; exit 2; }

case "$cmd" in
  start)
    [ $# -eq 5 ] || usage
    pdir=$2 pport=$3 sdir=$4 sport=$5
    primary_opts="-c wal_level=replica -c max_wal_senders=10 -c hot_standby=on"
    primary_opts+=" -c synchronous_standby_names=$app -c synchronous_commit=on"
    # A primary already running without the synchronous setting (e.g. started by postgres-cluster.sh) is restarted.
    if as_postgres "$bin/pg_ctl" -D "$pdir" status >/dev/null 2>&1 \
       && [ "$(sql "$(port_of "$pdir")" 'SHOW synchronous_standby_names' 2>/dev/null)" != "$app" ]; then
      echo "== restarting the primary with the replication settings" >&2
      "$here/postgres-cluster.sh" stop "$pdir"
    fi
    PG_EXTRA_OPTS="$primary_opts" "$here/postgres-cluster.sh" start "$pdir" "$pport" >/dev/null
    # initdb's pg_hba.conf already trusts replication from 127.0.0.1; make sure, for clusters made otherwise.
    if ! grep -Eq '^host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$pdir/pg_hba.conf"; then
      echo "host    replication     all             127.0.0.1/32            trust" >>"$pdir/pg_hba.conf"
      as_postgres "$bin/pg_ctl" -D "$pdir" reload >/dev/null
    fi
    if [ ! -f "$sdir/PG_VERSION" ]; then
      echo "== pg_basebackup from 127.0.0.1:$pport into $sdir" >&2
      mkdir -p "$sdir" && chown postgres "$sdir" && chmod 700 "$sdir"
      as_postgres "$bin/pg_basebackup" -D "$sdir" -R -X stream -c fast \
        -d "host=127.0.0.1 port=$pport user=postgres application_name=$app" \
        2> >(grep -v 'skipping special file' >&2)   # the primary's socket lives in its data directory
      # The copy carries the primary's server.log; and never let the standby wait for a standby of its own.
      : >"$sdir/server.log"
      sed -i '/^synchronous_standby_names/d' "$sdir/postgresql.conf" "$sdir/postgresql.auto.conf"
      grep -q "application_name=.\?$app" "$sdir/postgresql.auto.conf" || {
        echo "primary_conninfo = 'host=127.0.0.1 port=$pport user=postgres application_name=$app'" >>"$sdir/postgresql.auto.conf"; }
    fi
    "$here/postgres-cluster.sh" start "$sdir" "$sport" >/dev/null
    state=""
    for _ in $(seq 1 120); do   # up to 60 s
      state=$(sql "$pport" "SELECT sync_state || ' ' || state FROM pg_stat_replication WHERE application_name = '$app'" 2>/dev/null || true)
      [ "$state" = "sync streaming" ] && break
      sleep 0.5
    done
    if [ "$state" != "sync streaming" ]; then
      echo "the standby did not become a synchronous streaming replica (state: '${state:-absent}'); see $sdir/server.log" >&2
      exit 1
    fi
    echo "postgres://postgres@127.0.0.1:$pport,127.0.0.1:$sport/postgres?target_session_attrs=read-write"
    ;;
  promote)
    [ $# -eq 2 ] || usage
    sdir=$2
    as_postgres "$bin/pg_ctl" -D "$sdir" -w promote >/dev/null
    sport=$(port_of "$sdir")
    for _ in $(seq 1 120); do
      [ "$(sql "$sport" 'SELECT pg_is_in_recovery()' 2>/dev/null || true)" = f ] && exit 0
      sleep 0.5
    done
    echo "the standby in $sdir is still in recovery after promotion; see $sdir/server.log" >&2
    exit 1
    ;;
  kill)
    [ $# -eq 2 ] || usage
    as_postgres "$bin/pg_ctl" -D "$2" -m immediate stop >/dev/null
    ;;
  stop)
    [ $# -eq 3 ] || usage
    "$here/postgres-cluster.sh" stop "$2" || true
    "$here/postgres-cluster.sh" stop "$3" || true
    ;;
  *) usage ;;
esac
