"""Support code stays out of the product: no module of ledger_api/ or indexer/ imports
tests or scripts (the anvil launcher lives in tests/support/, the benchmarks' helpers in
scripts/bench/support.py), and no benchmark imports tests. Read with `ast`, so an
import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("ledger_api", "indexer")


def imported_modules(source: str, package: tuple[str, ...]) -> set[str]:
    """Every module (and imported name) `source` imports, absolute: a relative import is
    resolved against `package`, the dotted package the source is in."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def forbidden_imports(source: str, package: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        name
        for name in imported_modules(source, package)
        if any(name == top or name.startswith(f"{top}.") for top in forbidden)
    )


def offending(paths: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """Each file that imports from `forbidden`, with what it imports from there."""
    bad = {}
    for path in paths:
        package = path.relative_to(ROOT).with_suffix("").parts[:-1]
        hits = forbidden_imports(path.read_text(), package, forbidden)
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    return bad


def product_modules() -> list[Path]:
    return [path for package in PRODUCT for path in sorted((ROOT / package).rglob("*.py"))]


def bench_scripts() -> list[Path]:
    return sorted((ROOT / "scripts" / "bench").rglob("*.py"))


def test_the_product_imports_neither_tests_nor_scripts() -> None:
    assert len(product_modules()) > 50  # the walk found the product
    assert offending(product_modules(), ("tests", "scripts")) == {}


def test_the_benchmarks_import_nothing_from_tests() -> None:
    scripts = bench_scripts()
    assert {p.name for p in scripts} >= {"support.py", "index.py", "read.py", "write.py", "gas.py"}
    assert offending(scripts, ("tests",)) == {}


def test_the_benchmarks_use_the_service_encoder_for_donation_batches() -> None:
    """No hand-written recordDonations encoder of their own: index and read import the
    service's encode_donations."""
    for name in ("index.py", "read.py"):
        source = (ROOT / "scripts" / "bench" / name).read_text()
        assert "ledger_api.chain.abi.encode_donations" in imported_modules(source, ("scripts", "bench"))


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import tests.ledger", ["tests.ledger"]),
        (
            "from tests.support.anvil import AnvilNode",
            ["tests.support.anvil", "tests.support.anvil.AnvilNode"],
        ),
        (
            "def f() -> None:\n    from scripts.bench import support",
            ["scripts.bench", "scripts.bench.support"],
        ),
        ("from ...tests import ledger", ["tests", "tests.ledger"]),  # from ledger_api/chain/
        ("from .. import anvil", []),  # ledger_api.anvil
        ("import testsuite, scriptsy\nfrom ledger_api.core import tests", []),
    ],
)
def test_the_check_sees_every_form_of_import(source: str, found: list[str]) -> None:
    assert forbidden_imports(source, ("ledger_api", "chain"), ("tests", "scripts")) == found
