"""The indexer stands on the kernel and the chain's ABI and raw JSON-RPC modules only,
and those stand on the kernel only: it can be read and run without the service."""

from __future__ import annotations

import ast
from pathlib import Path

from ledger_api.core.paths import ROOT

ALLOWED = ("ledger_api.chain.abi", "ledger_api.chain.rpc", "ledger_api.core")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.startswith("ledger_api")}


def _outside(names: set[str], allowed: tuple[str, ...]) -> set[str]:
    """The names that are neither an allowed module (or inside one) nor a package on the
    way to one (`from ledger_api.chain import abi` names ledger_api.chain too)."""
    return {
        n for n in names if not any(n == a or n.startswith(a + ".") or a.startswith(n + ".") for a in allowed)
    }


def test_the_indexer_imports_only_the_kernel_the_abi_and_the_rpc_client() -> None:
    files = sorted((ROOT / "indexer").glob("*.py"))
    assert files
    found = {str(f.relative_to(ROOT)): _outside(_imports(f), ALLOWED) for f in files}
    assert {f: names for f, names in found.items() if names} == {}


def test_the_abi_and_rpc_modules_import_only_the_kernel() -> None:
    for name in ("abi", "rpc"):
        path = ROOT / "ledger_api" / "chain" / f"{name}.py"
        assert _imports(path), path  # the check reads real imports
        assert _outside(_imports(path), ("ledger_api.core",)) == set(), path
