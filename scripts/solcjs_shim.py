#!/usr/bin/env python3
"""Make solcjs (the npm `solc` package) answer like native solc for py-solc-x.

py-solc-x runs `solc --version` and `solc --standard-json --base-path P --allow-paths P`
and parses stdout as JSON; crytic-compile (Slither) runs `solc --standard-json --allow-paths P`.
solcjs differs in ways this shim smooths over:

* it has no `--allow-paths` (it only reads files under `--base-path`/`--include-path`),
  so that flag and its value are dropped; and without `--base-path` it reads no file at
  all, where native solc reads paths relative to the working directory, so `--base-path .`
  is added when none is given (crytic-compile, which Slither uses, passes none);
* in standard-JSON mode it prints `>>> Cannot retry compilation with SMT ...` on stdout
  before the JSON, so everything before the first line that opens the JSON is dropped;
* it ends with `process.exit()` right after writing, which cuts output short when stdout
  is a pipe (node writes pipes asynchronously), so its stdout goes to a file instead;
* it reads the standard-JSON input with `fs.readFileSync(process.stdin.fd)`, and touching
  `process.stdin` makes a pipe non-blocking, so an input larger than what the pipe holds at
  that moment fails with EAGAIN (forge's inputs, with OpenZeppelin and the tests inlined,
  are): its stdin comes from a file too.

forge runs `solc --version` and `solc --allow-paths P --base-path P --standard-json`
(foundry.toml points it here).

The solcjs entry point comes from LEDGER_SOLCJS, else the project's node_modules.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    solcjs = os.environ.get("LEDGER_SOLCJS") or str(ROOT / "node_modules" / "solc" / "solc.js")
    args: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--allow-paths":
            skip = True
            continue
        if arg.startswith("--allow-paths="):
            continue
        args.append(arg)
    if "--standard-json" in args and not any(arg.startswith("--base-path") for arg in args):
        args += ["--base-path", "."]
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as stdout:
        if "--standard-json" in args:
            stdin.write(sys.stdin.buffer.read())
            stdin.seek(0)
        proc = subprocess.run(
            ["node", solcjs, *args],
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            check=False,
        )
        stdout.seek(0)
        out = stdout.read()
    if "--standard-json" in args:
        start = out.find(b"\n{")
        if not out.startswith(b"{") and start != -1:
            out = out[start + 1 :]
    sys.stdout.buffer.write(out)
    sys.stderr.buffer.write(proc.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
