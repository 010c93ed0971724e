#!/usr/bin/env bash
# Runs every SafeRx test: the Swift Testing suites (unit and live-server integration tests over a real SQLite file
# on a loopback port; the gate's tests, the live-server suites, several servers on one database and a failover to a
# synchronous standby also on real PostgreSQL servers this script starts) and the command-line checks of
# `saferx audit verify` against a tampered store.
set -euo pipefail
cd "$(dirname "$0")/.."

# The web front's tests drive real headless Chromium through chromedriver (Debian's packages).
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium and chromium-driver"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# The MFA enrolment test reads the page's QR code as a phone would, with zxing-cpp (PyPI).
if ! python3 -c "import zxingcpp, numpy, PIL" >/dev/null 2>&1; then
  echo "== installing zxing-cpp, numpy and pillow (QR code reader for the browser tests)"
  python3 -m pip install -q zxing-cpp numpy pillow
fi

echo "== build"
set +e
swift build --build-tests 2>&1 | grep -v "found 1 file(s) which are unhandled"
build_status=${PIPESTATUS[0]}
set -e
# A failed build must fail the run (never test a stale binary).
if [ "$build_status" -ne 0 ]; then echo "build failed"; exit 1; fi

echo "== layering (Package.swift and every import)"
python3 scripts/check-layering.py | tee .build/layering.log
layering_checks=$(grep -Eo "^layering: [0-9]+ passed" .build/layering.log | grep -Eo "[0-9]+")
[ -n "$layering_checks" ] || exit 1

echo "== PostgreSQL: a throw-away cluster on a loopback port (Debian's packages)"
pg_dir=$(mktemp -d /tmp/saferx-test-pg-XXXXXX)
pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SAFERX_TEST_POSTGRES="$(scripts/postgres-cluster.sh start "$pg_dir" "$pg_port")"
export SAFERX_TEST_POSTGRES_DATA="$pg_dir"
trap 'scripts/postgres-cluster.sh stop "$pg_dir"; rm -rf "$pg_dir"' EXIT
echo "$SAFERX_TEST_POSTGRES"

echo "== swift test (the gate's tests on SQLite and on PostgreSQL)"
log=$(mktemp)
set +e
# The stolen-directory replay runs the real binary built above.
export SAFERX_BIN="$PWD/.build/debug/saferx"
timeout 1800 swift test --skip-build --skip "SeveralServersTests|FailoverTests" 2>&1 | tee "$log" | grep -E "^(✘|✔ Suite|Test run|.*error)" 
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  grep -E "✘" "$log" | head -50
  echo "swift test failed"
  exit "$status"
fi
swift_tests=$(grep -Eo "Test run with [0-9]+ tests" "$log" | grep -Eo "[0-9]+" | tail -1)

# The same end-to-end suites again with every live server's store in a PostgreSQL database of its own (the CLI
# subprocesses they run get it through SAFERX_DATABASE); the several-server and failover tests run after this.
echo "== swift test on PostgreSQL (the live-server suites, SAFERX_TEST_ENGINE=postgres)"
pg_log=$(mktemp)
set +e
# Not yet in this pass, for CI's time (they pass on SQLite above; on PostgreSQL they take over 30 minutes until the
# per-statement round trips are cut, issue #24): the Walgreens pair replay, breach response, exfiltration detection
# and the outside-review scenarios. The crash test runs 10 cycles here (50 on SQLite).
SAFERX_TEST_ENGINE=postgres SAFERX_CRASH_CYCLES=${SAFERX_PG_CRASH_CYCLES:-10} timeout 1800 swift test --skip-build --filter "SafeRxServerTests" \
  --skip "SeveralServersTests|FailoverTests|WalgreensReplayTests|BreachResponseTests|DetectionTests|ReviewFindingsTests" 2>&1 | tee "$pg_log" | grep -E "^(✘|✔ Suite|Test run|.*error)"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  grep -E "✘" "$pg_log" | head -50
  echo "swift test on PostgreSQL failed"
  exit "$status"
fi
pg_tests=$(grep -Eo "Test run with [0-9]+ tests" "$pg_log" | grep -Eo "[0-9]+" | tail -1)

# Two servers on one database, and a primary killed under a running server: each starts its own demo store on
# PostgreSQL, so they run on their own, not beside the suites above (whose load would slow their seeding).
echo "== several servers on one PostgreSQL database; failover to a synchronous standby"
ha_log=$(mktemp)
set +e
timeout 1200 swift test --skip-build --filter "SeveralServersTests|FailoverTests" 2>&1 | tee "$ha_log" | grep -E "^(✘|✔ Suite|Test run|.*error)"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  grep -E "✘" "$ha_log" | head -50
  echo "several servers / failover failed"
  exit "$status"
fi
ha_tests=$(grep -Eo "Test run with [0-9]+ tests" "$ha_log" | grep -Eo "[0-9]+" | tail -1)

echo "== CLI: keys, backups, erasure, and saferx audit verify against tampering"
scripts/cli-checks.sh .build/debug/saferx | tee .build/cli-checks.log
cli_tests=$(grep -Eo "^cli: [0-9]+ passed" .build/cli-checks.log | grep -Eo "[0-9]+")

echo "== README and docs/ walk-through: every marked block, in the README map's order, on one fresh demo store"
python3 scripts/readme-check.py .build/debug/saferx | tee .build/readme-check.log
readme_tests=$(grep -Eo "^readme: [0-9]+ passed" .build/readme-check.log | grep -Eo "[0-9]+")

# `saferx bench` is compiled only with the Benchmarks trait (never in the shipped binary); it must still compile, or
# the measurements in BENCHMARKS.md cannot be repeated.
echo "== saferx bench compiles (Benchmarks trait)"
set +e
swift build --traits Benchmarks 2>&1 | grep -v "found 1 file(s) which are unhandled" | grep -E "error|warning: .*Sources/" 
bench_status=${PIPESTATUS[0]}
set -e
if [ "$bench_status" -ne 0 ]; then echo "the Benchmarks trait build failed"; exit 1; fi

echo "saferx: $((swift_tests + pg_tests + ha_tests + cli_tests + readme_tests)) passed, 0 failed ($((pg_tests + ha_tests)) of them on PostgreSQL; and $layering_checks layering checks)"
