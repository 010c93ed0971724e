#!/usr/bin/env python3
"""Runs the commands of the README and the guides in docs/ as a new user would, on one fresh demo store, and checks
what they print.

Every ```sh block that follows a line `<!-- readme-check -->` is run, document after document in the order given, in one bash session per block (set -e,
pipefail), in a scratch directory where `saferx serve --demo` is running. `swift run saferx` is replaced by the built
binary and the demo URL's port by the scratch server's. A comment line `#> REGEX` after a command says what the
output of the block so far must contain (a Python regular expression, searched). Variables set in one block stay
set for the next (the environment is carried over).

Usage: scripts/readme-check.py PATH/TO/saferx [DOCUMENT.md ...]
Without documents: README.md, then docs/pharmacy.md, docs/api.md, docs/privacy.md, docs/operations.md (the README's map).
Prints `readme: N passed, M failed` and exits 1 on any failure.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

def blocks(readme):
    lines = open(readme, encoding="utf-8").read().split("\n")
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "<!-- readme-check -->":
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            k = j + 1
            while k < len(lines) and not lines[k].startswith("```"):
                k += 1
            out.append((j + 1, lines[j + 1:k]))
            i = k
        i += 1
    return out

# The README first, then the guides in the order of its map: later blocks use what earlier ones set.
DOCUMENTS = ["README.md", "docs/pharmacy.md", "docs/api.md", "docs/privacy.md", "docs/operations.md"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def main():
    binary = os.path.abspath(sys.argv[1])
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    documents = sys.argv[2:] or [os.path.join(root, d) for d in DOCUMENTS]
    missing = [d for d in documents if not os.path.exists(d)]
    if missing:
        print(f"not ok - no such document: {', '.join(missing)}")
        return 1
    work = tempfile.mkdtemp(prefix="saferx-readme-")
    port = free_port()
    env = dict(os.environ, SAFERX_MASTER_KEY_FILE=os.path.join(work, "secrets", "master.key"), HOME=work)
    log = open(os.path.join(work, "serve.log"), "w")
    server = subprocess.Popen([binary, "serve", "--demo", "--port", str(port)], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    passed = failed = 0
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except Exception:
                time.sleep(0.5)
        else:
            print("not ok - the demo server did not start"); print(open(os.path.join(work, "serve.log")).read()[-2000:])
            return 1
        state = os.path.join(work, ".env")
        open(state, "w").close()
        for document, line_no, body in ((d, n, b) for d in documents for n, b in blocks(d)):
            script, expectations = [], []
            for line in body:
                if line.strip().startswith("#>"):
                    expectations.append((len(script), line.strip()[2:].strip()))
                    continue
                line = re.sub(r"(?<![\w/])\.build/debug/saferx", binary, line)
                line = line.replace("swift run saferx", binary).replace("127.0.0.1:8080", f"127.0.0.1:{port}")
                script.append(line)
            text = "\n".join(script)
            program = (f"set -eo pipefail\nsource {state}\ncd {work}\n{text}\n"
                       f"{{ declare -f; declare -p | grep -E '^declare -[-x] [A-Za-z][A-Za-z0-9_]*=' || true; }} > {state}.new\n")
            run = subprocess.run(["bash", "-c", program], cwd=work, env=env, capture_output=True, text=True, timeout=600)
            output = run.stdout + run.stderr
            if run.returncode != 0 and "KeyError: 'access_token'" in output:
                # A staff sign-in within the same 30 seconds as the last one gets mfa_invalid (each TOTP code works
                # once, as the README says): a person waits for the next code, and so does this check.
                time.sleep(31)
                run = subprocess.run(["bash", "-c", program], cwd=work, env=env, capture_output=True, text=True, timeout=600)
                output = run.stdout + run.stderr
            name = f"{os.path.relpath(document, root)} line {line_no}: {next((l for l in body if l.strip() and not l.startswith('#')), '').strip()[:70]}"
            problems = []
            if run.returncode != 0:
                problems.append(f"exit {run.returncode}")
            for _, pattern in expectations:
                if not re.search(pattern, output, re.MULTILINE):
                    problems.append(f"no match for /{pattern}/")
            if problems:
                failed += 1
                print(f"not ok - {name}: {'; '.join(problems)}")
                print("    " + output[-1500:].replace("\n", "\n    "))
            else:
                passed += 1
                print(f"ok - {name}")
            # Carry the block's variables and functions (the README defines helpers) to the next block.
            internal = re.compile(r"^declare -\S+ (BASH\w*|PWD|OLDPWD|SHELLOPTS|PPID|UID|EUID|GROUPS|PIPESTATUS|HOSTNAME|HOSTTYPE|MACHTYPE|OSTYPE|IFS|PS\d|SHLVL|LINENO|RANDOM|SECONDS|OPTIND|OPTERR|DIRSTACK|COLUMNS|LINES|HISTCMD|EPOCH\w*|SRANDOM|FUNCNAME|_|HOME|PATH|SAFERX_MASTER_KEY_FILE)=")
            if run.returncode == 0 and os.path.exists(state + ".new"):
                with open(state + ".new") as f, open(state, "w") as g:
                    for l in f:
                        if not internal.match(l):
                            g.write(l)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        errors = [l for l in open(os.path.join(work, "serve.log")) if " error " in l or " critical " in l]
        if errors:
            failed += 1
            print("not ok - the server logged at error level:\n    " + "    ".join(errors[:10]))
        else:
            passed += 1
            print("ok - the server ran and stopped without logging an error")
        shutil.rmtree(work, ignore_errors=True)
    print(f"readme: {passed} passed, {failed} failed")
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
