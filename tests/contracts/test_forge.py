"""The Foundry suite of the ledger contract (tests/foundry/*.sol: every rule with its exact
custom error, fuzz tests, invariant tests over random call sequences, and gas) run by
forge from node_modules (npm @foundry-rs/forge-linux-amd64), and the committed gas
snapshot (.gas-snapshot) checked against a fresh one. forge compiles with solcjs through
scripts/solcjs_shim.py (foundry.toml); the first run compiles for about 30 s here.

Refresh the snapshot after a deliberate gas change with
`node_modules/.bin/forge snapshot --match-contract CharityLedgerGasTest`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
FORGE = ROOT / "node_modules" / ".bin" / "forge"
GAS_SUITE = "CharityLedgerGasTest"

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("node_available")]


def run_forge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FORGE), *args],
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def forge_results() -> dict[str, dict[str, Any]]:
    """`forge test` once for the module: test name ("Contract.test()") -> its result."""
    if not FORGE.exists():
        unavailable(f"forge not found at {FORGE}: run `npm ci`")
    done = run_forge("test", "--json")
    try:
        suites = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"forge test printed no JSON (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return {
        f"{suite.rsplit(':', 1)[1]}.{name}": result
        for suite, report in suites.items()
        for name, result in report["test_results"].items()
    }


def test_every_forge_test_passes(forge_results: dict[str, dict[str, Any]]) -> None:
    failed = {
        name: (result["reason"], result["counterexample"])
        for name, result in forge_results.items()
        if result["status"] != "Success"
    }
    assert not failed, json.dumps(failed, indent=2, default=str)


def test_the_suite_has_rule_fuzz_invariant_and_gas_tests(forge_results: dict[str, dict[str, Any]]) -> None:
    kinds: dict[str, list[str]] = {}
    for name, result in forge_results.items():
        kinds.setdefault(next(iter(result["kind"])), []).append(name)
    assert len(kinds.get("Unit", [])) >= 30, kinds
    assert {name.split(".")[0] for name in kinds["Unit"]} == {
        "CharityLedgerRulesTest",
        "CharityLedgerSelfCustodyTest",
        "CharityLedgerOrganisationsTest",
        "CharityLedgerDisclosureTest",
        GAS_SUITE,
    }
    fuzz = [forge_results[name]["kind"]["Fuzz"] for name in kinds.get("Fuzz", [])]
    assert len(fuzz) >= 10 and all(run["runs"] >= 256 for run in fuzz), fuzz
    invariants = [forge_results[name]["kind"]["Invariant"] for name in kinds.get("Invariant", [])]
    assert len(invariants) >= 3 and all(run["calls"] >= 64 * 50 for run in invariants), invariants


def test_the_gas_snapshot_is_current(forge_results: dict[str, dict[str, Any]]) -> None:
    done = run_forge("snapshot", "--check", "--match-contract", GAS_SUITE)
    assert done.returncode == 0, (
        f".gas-snapshot is stale: check the change, then run `node_modules/.bin/forge snapshot "
        f"--match-contract {GAS_SUITE}` and commit .gas-snapshot\n{done.stdout}{done.stderr}"
    )
