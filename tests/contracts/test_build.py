"""The committed artifacts are exactly what the pinned compiler makes of the sources,
and the solcjs fallback copes with what solcjs prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger_api.chain import build
from ledger_api.chain.abi import load_artifact

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.usefixtures("node_available")
def test_committed_artifacts_match_a_fresh_compile() -> None:
    fresh = build.compile_contracts()
    for name, artifact in fresh.items():
        committed = (build.ARTIFACTS_DIR / f"{name}.json").read_text()
        assert build.artifact_text(artifact) == committed, (
            f"contracts/artifacts/{name}.json is stale: run `ledger compile` and commit the result"
        )


def test_artifact_records_the_pinned_compiler_and_settings() -> None:
    artifact = load_artifact()
    assert artifact["compiler"]["version"] == build.SOLC_VERSION
    assert artifact["compiler"]["settings"] == build.SETTINGS
    assert artifact["compiler"]["settings"]["evmVersion"] == "cancun"
    assert len(artifact["sourceHash"]) == 64
    assert "contracts/CharityLedger.sol" in artifact["sources"]
    # The CBOR metadata at the end of the runtime code names the compiler: "solc" 0.8.30.
    major, minor, patch = (int(part) for part in build.SOLC_VERSION.split("."))
    assert artifact["deployedBytecode"].endswith(f"64736f6c6343{major:02x}{minor:02x}{patch:02x}0033")


def test_solcjs_shim_strips_the_smt_notice_drops_allow_paths_and_keeps_long_output(tmp_path: Path) -> None:
    """A stand-in for solcjs that behaves like it: prints the SMT notice, then a JSON
    document larger than a pipe buffer, then exits at once; and fails on --allow-paths."""
    fake = tmp_path / "solc.js"
    fake.write_text(
        """
        if (process.argv.includes('--allow-paths')) { console.error('unknown option'); process.exit(1); }
        let input = '';
        process.stdin.on('data', (d) => { input += d; });
        process.stdin.on('end', () => {
          console.log('>>> Cannot retry compilation with SMT because there are no SMT solvers available.');
          console.log(JSON.stringify({echo: JSON.parse(input), padding: 'x'.repeat(300000)}));
          process.exit(0);
        });
        """
    )
    if subprocess.run(["node", "--version"], capture_output=True).returncode != 0:
        pytest.skip("node is not installed")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "solcjs_shim.py"),
            "--standard-json",
            "--base-path",
            ".",
            "--allow-paths",
            "/somewhere",
        ],
        input=b'{"language": "Solidity"}',
        capture_output=True,
        env={**os.environ, "LEDGER_SOLCJS": str(fake)},
        check=True,
    )
    output = json.loads(result.stdout)
    assert output["echo"] == {"language": "Solidity"}
    assert len(output["padding"]) == 300000
