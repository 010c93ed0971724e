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

OURS = {"SafeRxModel", "SafeRxPolicy", "SafeRxVault", "SafeRxAudit", "SafeRxDetect", "SafeRxBreach", "SafeRxStoreCore",
        "SafeRxStore", "SafeRxPharmacy", "SafeRxWeb", "SafeRxServer", "saferx"}
# Which of our modules each target may depend on.
ALLOWED = {
    "SafeRxModel": set(),
    "SafeRxPolicy": {"SafeRxModel"},
    "SafeRxVault": {"SafeRxModel"},
    "SafeRxAudit": {"SafeRxModel", "SafeRxVault"},
    "SafeRxDetect": {"SafeRxModel", "SafeRxAudit"},
    "SafeRxBreach": {"SafeRxModel"},
    "SafeRxStoreCore": {"SafeRxModel", "SafeRxPolicy"},
    "SafeRxStore": {"SafeRxModel", "SafeRxPolicy", "SafeRxVault", "SafeRxAudit", "SafeRxDetect", "SafeRxStoreCore"},
    "SafeRxPharmacy": {"SafeRxModel", "SafeRxPolicy", "SafeRxVault", "SafeRxAudit", "SafeRxDetect", "SafeRxBreach", "SafeRxStoreCore", "SafeRxStore"},
    "SafeRxWeb": {"SafeRxModel"},
    "SafeRxServer": {"SafeRxModel", "SafeRxPolicy", "SafeRxStoreCore", "SafeRxPharmacy", "SafeRxWeb"},
    "saferx": {"SafeRxModel", "SafeRxPolicy", "SafeRxStoreCore", "SafeRxPharmacy", "SafeRxServer"},
}
# A ratchet, not the goal: the server and the CLI still reach below the services (issue #18 removes these). Nothing
# may be added here; an entry that is no longer used fails the check, so that it is deleted.
STILL_REACHING_BELOW = {
    "SafeRxServer": {"SafeRxBreach"},
    "saferx": {"SafeRxVault", "SafeRxAudit", "SafeRxDetect", "SafeRxBreach", "SafeRxStore"},
}
# Within the CLI, the files that still open the gate themselves (commands not yet moved onto the services). A file
# not listed may not import SafeRxStore; a listed file that no longer does fails the check, so that it is deleted.
FILES_STILL_USING_THE_GATE = {
    "saferx": {"Bench.swift", "BenchDetect.swift", "BenchIncident.swift", "DataOptions+Store.swift",
               "Incident.swift", "Keys.swift", "Simulate.swift"},
}
# Only the storage layer talks to a database driver (the audit chain's own table is storage too).
DRIVERS = {"GRDB", "PostgresNIO", "SQLite3"}
DRIVER_USERS = {"SafeRxStore", "SafeRxAudit"}

root = pathlib.Path(__file__).resolve().parent.parent
dump = json.loads(subprocess.run(["swift", "package", "dump-package"], cwd=root, check=True, capture_output=True, text=True).stdout)
problems, checks = [], 0
for t in dump["targets"]:
    name = t["name"]
    if t["type"] == "test":
        continue
    deps = set()
    for d in t["dependencies"]:
        kind, value = next(iter(d.items()))
        deps.add(value[0])
    allowed = ALLOWED.get(name)
    if allowed is None:
        problems.append(f"{name}: a new target; give it a layer in scripts/check-layering.py and ARCHITECTURE.md")
        continue
    extra = STILL_REACHING_BELOW.get(name, set())
    for dep in sorted(deps & OURS):
        checks += 1
        if dep not in allowed and dep not in extra:
            problems.append(f"{name} depends on {dep}, which its layer may not use")
    for dep in sorted(extra - deps):
        problems.append(f"{name} no longer depends on {dep}: delete it from STILL_REACHING_BELOW (the ratchet only tightens)")
    for dep in sorted(deps & DRIVERS):
        checks += 1
        if name not in DRIVER_USERS:
            problems.append(f"{name} depends on the database driver {dep}: only the storage layer may")
    # Every import in the target's sources.
    may_import = allowed | extra | {name}
    gate_files = FILES_STILL_USING_THE_GATE.get(name)
    for f in sorted((root / "Sources" / name).rglob("*.swift")):
        imported = set()
        for m in re.finditer(r"^[ \t]*(?:@[\w()]+[ \t]+)*(?:public[ \t]+|internal[ \t]+|package[ \t]+)?import[ \t]+(?:(?:typealias|struct|class|enum|protocol|let|var|func)[ \t]+)?(\w+)", f.read_text(), re.M):
            module = m.group(1)
            imported.add(module)
            checks += 1
            if module in OURS and module not in may_import:
                problems.append(f"{f.relative_to(root)} imports {module}, which {name} may not use")
            if module == "SafeRxStore" and gate_files is not None and f.name not in gate_files:
                problems.append(f"{f.relative_to(root)} imports SafeRxStore: use the services (SafeRxPharmacy) instead")
            if module in DRIVERS and name not in DRIVER_USERS:
                problems.append(f"{f.relative_to(root)} imports the database driver {module}: only the storage layer may")
        if gate_files is not None and f.name in gate_files and "SafeRxStore" not in imported:
            problems.append(f"{f.relative_to(root)} no longer imports SafeRxStore: delete it from FILES_STILL_USING_THE_GATE")

for p in problems:
    print(f"layering: {p}")
if problems:
    sys.exit(1)
print(f"layering: {checks} passed")
