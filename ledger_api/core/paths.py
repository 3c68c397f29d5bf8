"""Where the checkout is: the one place that works out the repository root.

The service reads files that live beside the package rather than in it (the contract's
build artifacts, the Alembic migrations, `var/` for local state, node_modules/ for the
contract toolchain), so everything that names such a file starts from ROOT.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = ROOT / "contracts" / "artifacts"
