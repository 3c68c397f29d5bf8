#!/usr/bin/env bash
# Installs what the project needs, only when it is missing or stale:
#   .venv/          Python 3.11+ virtual environment, pinned by constraints.txt, with the
#                   service and the standalone verifier (verifier/: `ledger verify` calls it)
#   node_modules/   solc (solcjs), OpenZeppelin Contracts, anvil, forge and axe-core, from
#                   package-lock.json (only with --node: the service needs no node at run time)
#   /usr/bin/chromium  Debian's Chromium and CJK fonts for the browser tests (only with
#                   --browser; installed with apt-get when running as root or with sudo)
# It says one line per step it takes; what pip, npm and apt-get print goes to
# var/bootstrap.log, and the failing step's part of it is shown only when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

log=var/bootstrap.log

# step "what it does" command...: runs the command with its output in the log, says how
# long it took, or on failure shows its output and exits with its status.
step() {
  local what=$1 start=$SECONDS offset rc
  shift
  mkdir -p var
  offset=$( [ -f "$log" ] && wc -c <"$log" || echo 0)
  printf '\n===== %s: %s\n$ %s\n' "$(date -u +%FT%TZ)" "$what" "$*" >>"$log"
  printf 'bootstrap: %s ... ' "$what" >&2
  if "$@" >>"$log" 2>&1; then
    echo "done ($((SECONDS - start)) s)" >&2
  else
    rc=$?
    echo "FAILED (exit $rc); its output (all of it is in $log):" >&2
    tail -c +"$((offset + 1))" "$log" >&2
    exit "$rc"
  fi
}

with_node=0
with_browser=0
for arg in "$@"; do
  case "$arg" in
    --node) with_node=1 ;;
    --browser) with_browser=1 ;;
    *) echo "bootstrap: unknown option $arg" >&2; exit 2 ;;
  esac
done

python=""
for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
  [ -n "$candidate" ] || continue
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "bootstrap: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

if [ ! -x .venv/bin/python ]; then
  step "creating .venv with $python" "$python" -m venv .venv
fi
want=$(stamp_of pyproject.toml constraints.txt verifier/pyproject.toml)
if [ "$(cat .venv/.ledger-installed 2>/dev/null)" != "$want" ]; then
  step "upgrading pip in .venv" .venv/bin/python -m pip install --upgrade pip
  step "installing Python packages into .venv (a few minutes the first time)" \
    .venv/bin/python -m pip install -c constraints.txt -e '.[dev]' -e ./verifier
  echo "$want" > .venv/.ledger-installed
fi

if [ "$with_node" = 1 ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "bootstrap: node and npm are needed for the contract toolchain and anvil" >&2
    exit 1
  fi
  want=$(stamp_of package-lock.json)
  if [ "$(cat node_modules/.ledger-installed 2>/dev/null)" != "$want" ]; then
    step "npm ci (solc, OpenZeppelin, anvil, forge)" npm ci --no-audit --no-fund
    echo "$want" > node_modules/.ledger-installed
  fi
fi

if [ "$with_browser" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$sudo" ] || $sudo true 2>/dev/null; }; then
    step "apt-get update" $sudo apt-get update
    step "apt-get install chromium fonts-noto-cjk (browser tests)" \
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-noto-cjk
  else
    echo "bootstrap: no /usr/bin/chromium and no way to install it; browser tests will be skipped" >&2
  fi
fi
