#!/usr/bin/env bash
# Installs what the project needs, only when it is missing or stale:
#   .venv/          Python 3.11+ virtual environment, pinned by constraints.txt
#   node_modules/   solc (solcjs), OpenZeppelin Contracts, anvil and axe-core, from
#                   package-lock.json (only with --node: the service needs no node at run time)
#   /usr/bin/chromium  Debian's Chromium and CJK fonts for the browser tests (only with
#                   --browser; installed with apt-get when running as root or with sudo)
set -euo pipefail
cd "$(dirname "$0")/.."

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
  echo "bootstrap: creating .venv with $python" >&2
  "$python" -m venv .venv
fi
want=$(stamp_of pyproject.toml constraints.txt)
if [ "$(cat .venv/.ledger-installed 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing Python packages into .venv" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c constraints.txt -e '.[dev]'
  echo "$want" > .venv/.ledger-installed
fi

if [ "$with_node" = 1 ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "bootstrap: node and npm are needed for the contract toolchain and anvil" >&2
    exit 1
  fi
  want=$(stamp_of package-lock.json)
  if [ "$(cat node_modules/.ledger-installed 2>/dev/null)" != "$want" ]; then
    echo "bootstrap: npm ci (solc, OpenZeppelin, anvil)" >&2
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > node_modules/.ledger-installed
  fi
fi

if [ "$with_browser" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$sudo" ] || $sudo true 2>/dev/null; }; then
    echo "bootstrap: apt-get install chromium (browser tests)" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
  else
    echo "bootstrap: no /usr/bin/chromium and no way to install it; browser tests will be skipped" >&2
  fi
fi
