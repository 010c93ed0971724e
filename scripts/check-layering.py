#!/usr/bin/env python3
"""The layering Package.swift must keep (ARCHITECTURE.md): model <- policy/vault/audit <- gate and repositories <-
services <- server / CLI. Fails when a target gains a dependency it may not have, or a source file imports a module
its target may not use (SwiftPM lets a file import anything in its target's transitive closure).

Usage: scripts/check-layering.py   (runs `swift package dump-package`; prints "layering: N passed")
"""
import json
import pathlib
import re
import subprocess
import sys

OURS = {"SafeRxSQL", "SafeRxSQLite", "SafeRxPostgres", "SafeRxModel", "SafeRxPolicy", "SafeRxVault", "SafeRxAudit", "SafeRxDetect", "SafeRxBreach", "SafeRxStoreCore",
        "SafeRxStore", "SafeRxPharmacy", "SafeRxWeb", "SafeRxServer", "saferx"}
# Which of our modules each target may depend on.
ALLOWED = {
    "SafeRxModel": set(),
    # The engine interface knows nothing of SafeRx; each engine implements it with its driver.
    "SafeRxSQL": set(),
    "SafeRxSQLite": {"SafeRxSQL"},
    "SafeRxPostgres": {"SafeRxSQL"},
    "SafeRxPolicy": {"SafeRxModel"},
    "SafeRxVault": {"SafeRxModel"},
    "SafeRxAudit": {"SafeRxModel", "SafeRxVault", "SafeRxSQL"},
    "SafeRxDetect": {"SafeRxModel", "SafeRxAudit"},
    "SafeRxBreach": {"SafeRxModel"},
    "SafeRxStoreCore": {"SafeRxModel", "SafeRxPolicy"},
    "SafeRxStore": {"SafeRxModel", "SafeRxPolicy", "SafeRxVault", "SafeRxAudit", "SafeRxDetect", "SafeRxStoreCore", "SafeRxSQL", "SafeRxSQLite", "SafeRxPostgres"},
    "SafeRxPharmacy": {"SafeRxModel", "SafeRxPolicy", "SafeRxVault", "SafeRxAudit", "SafeRxDetect", "SafeRxBreach", "SafeRxStoreCore", "SafeRxStore"},
    "SafeRxWeb": {"SafeRxModel"},
    # Front ends: the services, and values that hold no store (SafeRxBreach: notices and the assessment, no I/O).
    "SafeRxServer": {"SafeRxModel", "SafeRxPolicy", "SafeRxBreach", "SafeRxStoreCore", "SafeRxPharmacy", "SafeRxWeb"},
    # The CLI also reads its own files with the vault's primitives (sealed files, TOTP, webhook signatures) and loads
    # detection rules; it never opens the gate or the audit log.
    "saferx": {"SafeRxModel", "SafeRxPolicy", "SafeRxVault", "SafeRxDetect", "SafeRxBreach", "SafeRxStoreCore", "SafeRxPharmacy",
               "SafeRxServer"},
}
# Dependencies a target may have only under the Benchmarks trait (`saferx bench` measures the protected read against
# the gate's unprotected one), imported only by files compiled under `#if SAFERX_BENCHMARKS`: the shipped binary
# has no unprotected read and no way to open the store beside the services.
BENCHMARK_ONLY = {
    "saferx": {"SafeRxStore", "SafeRxAudit"},
}
# Operators' contexts are made only on the operator's side: the CLI (and tests). A front end that serves requests
# must never make one (it would pass AccessService.requireOperator for whoever sent the request).
NO_OPERATOR_CONTEXT = {"SafeRxServer", "SafeRxWeb"}
# Only the engines talk to a database driver; the gate and the audit chain speak SafeRxSQL.
DRIVERS = {"GRDB", "PostgresNIO", "SQLite3"}
DRIVER_USERS = {"SafeRxSQLite", "SafeRxPostgres"}
# Tables with one writer, their repository: a second writer is how the copies drifted apart before (#18).
ONE_WRITER = {
    "notification": "Sources/SafeRxStore/Repositories/Outbox.swift",
    "webhook_event": "Sources/SafeRxStore/Repositories/Outbox.swift",
    "incident": "Sources/SafeRxStore/Repositories/IncidentRepository.swift",
    "incident_judgement": "Sources/SafeRxStore/Repositories/IncidentRepository.swift",
    "obligation_done": "Sources/SafeRxStore/Repositories/IncidentRepository.swift",
    "user_account": "Sources/SafeRxStore/Repositories/AccountRepository.swift",
    "api_client": "Sources/SafeRxStore/Repositories/AccountRepository.swift",
    "caregiver_grant": "Sources/SafeRxStore/Repositories/CaregiverRepository.swift",
    "break_glass": "Sources/SafeRxStore/Repositories/BreakGlassRepository.swift",
    "message_read": "Sources/SafeRxStore/Repositories/MessagingRepository.swift",
    "thread_assignment": "Sources/SafeRxStore/Repositories/MessagingRepository.swift",
}

root = pathlib.Path(__file__).resolve().parent.parent
dump = json.loads(subprocess.run(["swift", "package", "dump-package"], cwd=root, check=True, capture_output=True, text=True).stdout)
problems, checks = [], 0
for t in dump["targets"]:
    name = t["name"]
    if t["type"] == "test":
        continue
    deps, bench_deps = set(), set()
    for d in t["dependencies"]:
        kind, value = next(iter(d.items()))
        condition = value[1] if kind in ("byName", "target") else None
        traits = (condition or {}).get("traits") or []
        (bench_deps if traits == ["Benchmarks"] else deps).add(value[0])
    allowed = ALLOWED.get(name)
    if allowed is None:
        problems.append(f"{name}: a new target; give it a layer in scripts/check-layering.py and ARCHITECTURE.md")
        continue
    bench_only = BENCHMARK_ONLY.get(name, set())
    for dep in sorted(deps & OURS):
        checks += 1
        if dep not in allowed:
            problems.append(f"{name} depends on {dep}, which its layer may not use"
                            + (" (only under the Benchmarks trait)" if dep in bench_only else ""))
    for dep in sorted(bench_deps & OURS):
        checks += 1
        if dep not in allowed and dep not in bench_only:
            problems.append(f"{name} depends on {dep} under the Benchmarks trait, which its layer may not use")
    for dep in sorted(deps & DRIVERS):
        checks += 1
        if name not in DRIVER_USERS:
            problems.append(f"{name} depends on the database driver {dep}: only the storage layer may")
    # Every import in the target's sources.
    for f in sorted((root / "Sources" / name).rglob("*.swift")):
        text = f.read_text()
        benchmark_file = text.lstrip().startswith("#if SAFERX_BENCHMARKS")
        may_import = allowed | {name} | (bench_only if benchmark_file else set())
        for m in re.finditer(r"^[ \t]*(?:@[\w()]+[ \t]+)*(?:public[ \t]+|internal[ \t]+|package[ \t]+)?import[ \t]+(?:(?:typealias|struct|class|enum|protocol|let|var|func)[ \t]+)?(\w+)", text, re.M):
            module = m.group(1)
            checks += 1
            if module in OURS and module not in may_import:
                hint = " (use the services, SafeRxPharmacy)" if module in bench_only else ""
                problems.append(f"{f.relative_to(root)} imports {module}, which {name} may not use{hint}")
            if module in DRIVERS and name not in DRIVER_USERS:
                problems.append(f"{f.relative_to(root)} imports the database driver {module}: only the storage layer may")
        for table, writer in ONE_WRITER.items():
            checks += 1
            if str(f.relative_to(root)) != writer and re.search(rf"INSERT(?:\s+OR\s+\w+)?\s+INTO\s+{table}\b", text):
                problems.append(f"{f.relative_to(root)} inserts into {table}: only {writer} may")
        if name in NO_OPERATOR_CONTEXT:
            checks += 1
            if re.search(r"\.operatorCommand\(", text):
                problems.append(f"{f.relative_to(root)} makes an operator's context: only the command line may")

for p in problems:
    print(f"layering: {p}")
if problems:
    sys.exit(1)
print(f"layering: {checks} passed")
