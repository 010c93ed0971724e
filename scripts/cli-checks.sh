#!/usr/bin/env bash
# Command-line checks on a stopped store: users, tokens, audit verify (intact and tampered), audit export.
# Usage: scripts/cli-checks.sh PATH/TO/saferx
set -euo pipefail
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
synthea=$(cd "$(dirname "$0")/../Tests/SafeRxServerTests/Fixtures/synthea" && pwd)
# Every check below must run: a condition that fails before its `check` is caught by the count at the end.
expected=$(grep -cE '(&&|else) check "' "$0")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# The master key lives apart from the data directory, as in production.
export SAFERX_MASTER_KEY_FILE="$work/secrets/master.key"
passed=0
check() { passed=$((passed + 1)); echo "ok - $1"; }
fail() { echo "not ok - $1"; exit 1; }
# Reads all of its input: `cmd | grep -q` would stop reading at the first match, and a command still printing then
# dies of SIGPIPE, which pipefail turns into a silently skipped check.
has() { grep "$@" > /dev/null; }

# Issue 16, finding 11: a normal stop (SIGTERM) logs nothing at error level.
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$bin" serve --demo --data stopdata --port "$port" > serve.log 2>&1 &
pid=$!
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/health" > /dev/null 2>&1 && break; sleep 0.5; done
curl -sf "http://127.0.0.1:$port/health" > /dev/null && kill -TERM "$pid" && wait "$pid" || true
! grep -E "^[^ ]+ (error|critical) " serve.log && grep -q " info " serve.log \
  && check "a normal stop of serve logs nothing at error level"

# The simulated workday the detection thresholds are calibrated on (issue 16): a pharmacy of 10 staff and 2,000
# patients over 8 hours is silent, and every abuse replay is contained before 100 patients. Each starts its own
# server and store in the temporary directory.
"$bin" simulate workday --staff 10 --patients 2000 --hours 8 --seed 1 --data "$work" > workday.txt 2>&1 || { cat workday.txt; fail "the simulated workday was not silent"; }
has "^Alerts: 0; suspensions: 0$" workday.txt && has "^Unexpected answers: 0$" workday.txt && has "fills verified" workday.txt \
  && check "simulate workday: 10 staff, 2,000 patients, 8 hours, no alert, no suspension, no failed request"
sed -n '/^Simulated/,/^Work/p;/^Requests/p;/technician-bulk\|pharmacist-bulk\|support-bulk\|partner-bulk/p' workday.txt
"$bin" simulate abuse --patients 2000 --data "$work" > abuse.txt 2>&1 || { cat abuse.txt; fail "an abuse replay was not contained before 100 patients"; }
cat abuse.txt | grep -v "^Seeded"
[ "$(grep -c ": contained after" abuse.txt)" -eq 4 ] && has "^Every attack was contained before 100 patients.$" abuse.txt \
  && check "simulate abuse: stolen technician, support break-glass spree, partner sweep, patient walking ids each contained before 100"

"$bin" users add --username alice --role pharmacist --tenant t1 > add.txt
grep -q "Password (shown once)" add.txt && check "users add prints a generated password once"
"$bin" users add --username pat --role technician --tenant t1 > /dev/null
if "$bin" users add --username ghost --role patient --tenant t1 --patient pat-9999 > out.txt 2>&1; then fail "a patient account for a patient that does not exist"; fi
grep -q "No Patient/pat-9999 in tenant t1" out.txt && [ "$(wc -l < out.txt)" -eq 1 ] && check "users add refuses a patient account without a patient record, in one line"
"$bin" users list | has "^alice	pharmacist	t1" && check "users list"
token=$("$bin" token --user alice)
[ "$(echo "$token" | tr -cd '.' | wc -c)" -eq 2 ] && check "token prints a JWT"
if "$bin" token --user alice --scope 'nonsense' > /dev/null 2>&1; then fail "malformed scope accepted"; else check "malformed scope refused"; fi
"$bin" users disable alice | has Disabled && check "users disable"
"$bin" clients add --client-id tele-two --role partner --name "Tele Two" --tenant t1 > client.txt && grep -q "Client secret (shown once)" client.txt \
  && "$bin" clients list | has "^tele-two	partner	t1	Tele Two	active" && "$bin" clients rotate-secret tele-two | has "New client secret" \
  && "$bin" clients disable tele-two | has "Disabled client" && "$bin" users list | has "^tele-two (client)	partner	t1	-	disabled" \
  && check "clients add, list, rotate-secret, disable"
if "$bin" users disable tele-two > out.txt 2>&1; then fail "users disable took a client id"; fi
grep -q "is an API client, not a user: saferx clients disable tele-two" out.txt && check "users disable names the command for an API client"
if "$bin" users add --username p2 --role partner --tenant t1 > out.txt 2>&1; then fail "a partner password user"; fi
grep -q "saferx clients add" out.txt && check "users add refuses partner password users and names clients add"
"$bin" users reset-password pat --reason "forgot it, identity checked in person" | has "Password (shown once)" && check "users reset-password"
if "$bin" token --user alice > /dev/null 2>&1; then fail "token for disabled user"; else check "no token for a disabled user"; fi
[ "$(stat -c %a saferx-data/saferx.sqlite)" = "600" ] && [ "$(stat -c %a saferx-data)" = "700" ] \
  && [ "$(stat -c %a secrets/master.key)" = "600" ] && [ ! -e saferx-data/keys ] && check "store and master key are private, no key in the data directory"
if "$bin" users list --key-file "$work/nowhere.key" > out.txt 2>&1; then fail "opened without its key"; fi
grep -q "master key file not found: $work/nowhere.key" out.txt && check "a missing master key is named, not invented"
"$bin" keys rotate --master --tenant --reencrypt > rotate.txt 2> progress.txt
grep -q "Master key rotated" rotate.txt && grep -q "100%" progress.txt && rm secrets/master.key.previous \
  && "$bin" users list | has "^alice" && check "keys rotate --master --tenant --reencrypt; the old master key is not needed afterwards"
"$bin" backup create nightly.srxb | has "Backup written" && "$bin" backup verify nightly.srxb | has "^OK" \
  && "$bin" backup restore nightly.srxb --data restored | has "Restored" && "$bin" audit verify --data restored | has "^OK" \
  && check "backup create, verify, restore; audit verify passes on the restored store"
head -c 3000 nightly.srxb > truncated.srxb
if "$bin" backup verify truncated.srxb > out.txt; then fail "truncated backup verified"; fi
grep -q "backup truncated" out.txt && check "a truncated backup is reported as truncated"
if "$bin" patients erase p1 --reason "asked" --tenant t9 > out.txt 2>&1; then fail "erased an unknown patient"; fi
grep -q "No Patient/p1 in tenant t9" out.txt && check "patients erase refuses an unknown patient"
printf 'pharmacist TREAT * *\nnurse TREAT * *\n' > bad-policy.tsv
if "$bin" serve --policy bad-policy.tsv --port 0 > out.txt 2>&1; then fail "started with a bad policy"; fi
grep -q "Refusing to start: policy .*bad-policy.tsv, line 2: unknown role 'nurse'" out.txt && check "serve refuses a policy with an unknown role, naming the line"
printf '{"version":1,"touchActions":["read"],"rules":[{"id":"r1","kind":"distinct-patients","severity":"high","description":"d","roles":["janitor"],"window":"10m","threshold":5}]}' > bad-rules.json
if "$bin" serve --rules bad-rules.json --port 0 > out.txt 2>&1; then fail "started with bad detection rules"; fi
grep -q "Refusing to start: detection rules: bad-rules.json: rules\[0\] 'r1': unknown role 'janitor'" out.txt \
  && check "serve refuses a detection rules file with an unknown role, naming the rule"
if "$bin" detect check bad-rules.json > out.txt 2>&1; then fail "detect check passed bad rules"; fi
grep -q "unknown role 'janitor'" out.txt && check "detect check names the error in a rules file"
"$bin" alerts list | has "^0 open alert" && "$bin" alerts stats | has "no alerts yet" && check "alerts list and stats on a store without alerts"
"$bin" honeytokens plant --tenant t1 --count 2 | has "^Planted 2" && "$bin" honeytokens list --tenant t1 | has "^2 honeytoken patient" \
  && check "honeytokens plant and list"
"$bin" keys rotate --reencrypt > /dev/null 2>&1 && "$bin" honeytokens list --tenant t1 | has "^2 honeytoken patient" \
  && "$bin" keys rotate --master > /dev/null && "$bin" keys rotate --master > /dev/null && "$bin" backup verify nightly.srxb | has "^OK" \
  && check "after re-encryption honeytokens still open; two more master rotations and a backup from before still verifies"
"$bin" detect replay --from 2020-01-01 2> /dev/null | has "^Replayed [0-9]* audit records .*: 0 alert" && check "detect replay runs the rules over history (planting raises nothing)"
if "$bin" actors reinstate alice --reason "nothing to lift here" > out.txt 2>&1; then fail "reinstated an actor who is not suspended"; fi
grep -q "is not suspended" out.txt && check "actors reinstate refuses an actor who is not suspended"
"$bin" disclosures --patient p1 --tenant t1 | has "^Disclosures of Patient/p1 in t1" && check "disclosures --patient prints the accounting"
"$bin" break-glass report | has "^Break-glass overrides on" && check "break-glass report"
if "$bin" webhooks register --client nobody --url http://127.0.0.1:9/hook > out.txt 2>&1; then fail "webhook for an unknown client"; fi
grep -q "is not a partner client" out.txt && check "webhooks register refuses a client that is not a partner"
printf 'carrier,tracking\nusps,9400111899223344556677\n' > tracking.csv
if "$bin" tracking import tracking.csv --tenant t1 > out.txt 2>&1; then fail "tracking file without the header accepted"; fi
grep -q "The first line must be the header" out.txt && check "tracking import refuses a file without its header"
printf 'carrier,tracking_number,status,time\nusps,9400111899223344556677,delivered,2026-11-20T10:00:00Z\n' > tracking.csv
"$bin" tracking import tracking.csv --tenant t1 | has "^Applied 0 of 1" && check "tracking import reports unknown tracking numbers"
printf 'carrier,tracking_number,status,time\n\nusps,9400111899223344556677,delivered,2026-11-20T10:00:00Z\nusps,9400111899223344556678,shipped,2026-11-20T10:00:00Z\n' > tracking.csv
if "$bin" tracking import tracking.csv --tenant t1 > out.txt 2>&1; then fail "a tracking line with an unknown status accepted"; fi
grep -q "^Error: Line 4: status 'shipped' is not one of " out.txt && [ "$(wc -l < out.txt)" -eq 1 ] \
  && check "tracking import names the line (as numbered in the file) and the value it cannot take"
"$bin" import --pharmacy t1 "$synthea/patient-bundle.json" "$synthea/practitionerInformation.json" > import.txt 2> import-progress.txt
grep -q "^imported: 4 (MedicationRequest 1, Organization 1, Patient 1, Practitioner 1)" import.txt \
  && grep -q "^skipped, not modelled by SafeRx: 6 " import.txt && grep -q "100% 2/2" import-progress.txt \
  && check "import loads Synthea Bundles (practitioners first), counting what it skips, with progress"
# Issue 16, finding 11: files that cannot be read are listed, one line each, and the rest is imported.
: > empty.json && echo "not json" > garbage.json
# Another patient: the same Bundle with every UUID replaced (ids are unique across pharmacies).
python3 -c 'import re,sys,uuid; t=open(sys.argv[1]).read(); print(re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", lambda m: str(uuid.uuid5(uuid.NAMESPACE_URL, m.group(0))), t))' \
  "$synthea/patient-bundle.json" > other-patient.json
if "$bin" import --pharmacy t3 empty.json garbage.json other-patient.json > out.txt 2>/dev/null; then fail "import of unreadable files exited 0"; fi
grep -q "^imported: 2 (MedicationRequest 1, Patient 1)" out.txt && grep -q "^not imported (nothing from this file was written): empty.json: the file is empty$" out.txt \
  && grep -q "^not imported (nothing from this file was written): garbage.json: not JSON: .* at line 1, column 1 (byte 0)$" out.txt && ! grep -q "FHIRError" out.txt \
  && check "import lists the files it could not read, in one line each, and imports the rest"
# Bad values are named with where they are: a JSON error by line and column, a bad date by its path and value.
printf '{"resourceType": "Bundle", "type": "transaction",\n "entry": [\n  {"resource": {"resourceType": "Patient", "birthDate": "1980-13-45"}}\n ,]}\n' > broken.json
printf '{"resourceType": "Bundle", "type": "transaction",\n "entry": [{"resource": {"resourceType": "Patient", "birthDate": "1980-13-45"}}]}\n' > bad-date.json
if "$bin" import --pharmacy t3 broken.json bad-date.json > out.txt 2>/dev/null; then fail "import of broken files exited 0"; fi
grep -q "broken.json: not JSON: unexpected character at line 4, column 3 (byte" out.txt \
  && grep -q "bad-date.json: .*Patient.birthDate '1980-13-45' is not a FHIR date" out.txt \
  && check "import names a JSON error's line and column, and a bad value with its path"
if "$bin" import --pharmacy t1 "$synthea/patient-bundle.json" > out.txt 2>&1; then fail "the same Bundle imported twice"; fi
grep -q "already exists" out.txt && grep -q "nothing from this file was written" out.txt && check "import refuses a Bundle already imported"
"$bin" mfa code --secret GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ | has -E '^[0-9]{6}$' && check "mfa code prints the current TOTP code"
"$bin" users reset-mfa pat --reason "lost phone, verified by phone call" | has "Removed the second factor" && check "users reset-mfa"
"$bin" audit verify | has "^OK" && check "audit verify: intact log"
"$bin" audit export --output export.ndjson
python3 - <<'PY' && check "audit export is NDJSON of AuditEvent"
import json
lines = open("export.ndjson").read().splitlines()
assert lines and all(json.loads(l)["resourceType"] == "AuditEvent" for l in lines)
PY

id=$("$bin" incident declare --discovered 2026-12-01 --actor alice --tenant t1 --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
"$bin" incident scope "$id" | has "^Incident $id: 0 affected individuals; audit chain verified" \
  && check "incident declare prints its id as JSON; scope verifies the chain (nothing exposed here)"
"$bin" incident assess "$id" --question factor-2-recipient --text "a stolen laptop, recovered unopened" --by privacy | has "Judgement (privacy, " \
  && check "incident assess records a judgement with who and when"
"$bin" incident obligations "$id" | has "^Obligations of incident $id" && "$bin" incident report "$id" | has "^INCIDENT $id" \
  && check "incident obligations and report"
"$bin" incident documents "$id" --out docs | has "hhs-report.json" && [ -s docs/hhs-report.txt ] && check "incident documents writes the HHS report"

# Tampering, as someone with write access to the database file would.
cp -r saferx-data pristine
tamper() {
  rm -rf saferx-data && cp -r pristine saferx-data
  python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect("saferx-data/saferx.sqlite")
db.executescript("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
db.executescript(sys.argv[1])
db.commit()
PY
  set +e
  out=$("$bin" audit verify)
  code=$?
  set -e
  [ "$code" -eq 1 ] && echo "$out" | has "^FAILED at sequence $2" || fail "tampering '$1' not detected at $2: $out"
}
tamper "UPDATE audit_log SET body = replace(body, '\"success\"', '\"failure\"') WHERE seq = 2" 2 && check "edited record detected"
if "$bin" incident scope "$id" > out.txt 2>&1; then fail "an incident scope was certified on a tampered log"; fi
grep -q "REFUSING TO CERTIFY .*record 2" out.txt && check "incident scope refuses to certify a tampered log, naming the record"
tamper "DELETE FROM audit_log WHERE seq = 2" 2 && check "deleted record detected"
tamper "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 2; UPDATE audit_log SET seq = seq - 99 WHERE seq >= 102; INSERT INTO audit_log SELECT 2, tenant, time, body, hash FROM audit_log WHERE seq = 1" 2 && check "inserted record detected"
tamper "UPDATE audit_log SET seq = -1 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = -1" 2 && check "reordered records detected"
last=$(python3 -c "import sqlite3;print(sqlite3.connect('pristine/saferx.sqlite').execute('select max(seq) from audit_log').fetchone()[0])")
tamper "DELETE FROM audit_log WHERE seq = $last; DELETE FROM audit_checkpoint" "$last" && check "truncated tail detected"
[ "$passed" -eq "$expected" ] || fail "only $passed of $expected checks passed (see the list above for the missing one)"
echo "cli: $passed passed, 0 failed"
