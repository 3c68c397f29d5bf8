"""Compile the ledger contract into the artifacts the service loads at run time.

The compiler version and settings are pinned here and recorded in the artifact, so a
build is reproducible and the service needs no compiler. py-solc-x drives the compiler:
a native solc of the pinned version when one is installed (py-solc-x's own folder or
`solc` on PATH), otherwise solcjs from the npm package `solc` of the same version, run
through `scripts/solcjs_shim.py`, which makes it answer like native solc.

Imports of OpenZeppelin resolve through a remapping to `node_modules/`, so the source
unit names (and with them the metadata and bytecode) are the same on every machine and
with either compiler.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import solcx
from packaging.version import Version
from solcx.install import get_executable

from ledger_api.core.paths import ARTIFACTS_DIR, ROOT

CONTRACTS_DIR = ROOT / "contracts"
SHIM = ROOT / "scripts" / "solcjs_shim.py"

SOLC_VERSION = "0.8.30"
# cancun: both py-evm (eth-tester) and anvil execute it, as do current geth/Besu networks;
# the contract needs its transient storage (EIP-1153).
SETTINGS: dict[str, Any] = {
    "evmVersion": "cancun",
    "optimizer": {"enabled": True, "runs": 200},
    "viaIR": True,
    "remappings": ["@openzeppelin/=node_modules/@openzeppelin/"],
    "outputSelection": {
        "*": {
            "*": [
                "abi",
                "evm.bytecode.object",
                "evm.deployedBytecode.object",
                "evm.deployedBytecode.immutableReferences",
                "metadata",
            ],
            "": ["ast"],  # to name the immutables; not written to the artifact
        },
    },
}
# Contracts whose artifacts are written (source unit, contract name).
CONTRACTS = [("contracts/CharityLedger.sol", "CharityLedger")]


class CompilerNotFound(RuntimeError):
    pass


def find_compiler() -> Path:
    """A native solc of the pinned version if there is one, else the solcjs shim."""
    wanted = Version(SOLC_VERSION)
    if wanted in solcx.get_installed_solc_versions():
        return Path(get_executable(wanted))
    native = shutil.which("solc")
    if native and solcx.wrapper.get_solc_version(native) == wanted:
        return Path(native)
    solcjs = ROOT / "node_modules" / "solc" / "package.json"
    if solcjs.exists() and json.loads(solcjs.read_text())["version"] == SOLC_VERSION:
        return SHIM
    raise CompilerNotFound(f"no solc {SOLC_VERSION}: install it with py-solc-x, or run `npm ci` for solcjs")


def _sources() -> dict[str, dict[str, str]]:
    return {
        path.relative_to(ROOT).as_posix(): {"content": path.read_text()}
        for path in sorted(CONTRACTS_DIR.glob("*.sol"))
    }


def compile_contracts(compiler: Path | None = None) -> dict[str, dict[str, Any]]:
    """Compile the sources and return the artifact of each contract in CONTRACTS."""
    compiler = compiler or find_compiler()
    standard_input = {"language": "Solidity", "sources": _sources(), "settings": SETTINGS}
    output = solcx.compile_standard(
        standard_input, solc_binary=compiler, base_path=str(ROOT), allow_paths=str(ROOT)
    )
    version = str(solcx.wrapper.get_solc_version(compiler, with_commit_hash=True))
    used = sorted(output["sources"])
    source_hashes = {unit: hashlib.sha256((ROOT / unit).read_bytes()).hexdigest() for unit in used}
    source_hash = hashlib.sha256(json.dumps(source_hashes, sort_keys=True).encode()).hexdigest()
    artifacts = {}
    for unit, name in CONTRACTS:
        compiled = output["contracts"][unit][name]
        artifacts[name] = {
            "contractName": name,
            "sourceName": unit,
            "abi": compiled["abi"],
            "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
            "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
            # Where the constructor writes each immutable into the deployed code (byte
            # ranges of deployedBytecode, which holds zeros there): the deployed code
            # equals deployedBytecode once these are filled in.
            "immutables": _immutables(compiled, output),
            # The interface version the contract's version() returns (its `_VERSION` constant).
            "version": _version(output["sources"][unit]["ast"]),
            "compiler": {"version": version.split("+")[0], "build": version, "settings": SETTINGS},
            "sourceHash": source_hash,
            "sources": source_hashes,
        }
    return artifacts


def _immutables(compiled: dict[str, Any], output: dict[str, Any]) -> list[dict[str, Any]]:
    """The immutables of a compiled contract: each one's name, type and the byte ranges
    (start, length) of the deployed code it fills. solc keys them by the AST id of their
    declaration; the names come from the AST."""
    references = compiled["evm"]["deployedBytecode"].get("immutableReferences") or {}
    declarations: dict[int, dict[str, Any]] = {}
    stack = [source["ast"] for source in output["sources"].values()]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("nodeType") == "VariableDeclaration" and node.get("mutability") == "immutable":
                declarations[node["id"]] = node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return [
        {
            "name": declarations[int(ast_id)]["name"],
            "type": declarations[int(ast_id)]["typeDescriptions"]["typeString"],
            "ranges": sorted([r["start"], r["length"]] for r in ranges),
        }
        for ast_id, ranges in sorted(references.items(), key=lambda item: int(item[0]))
    ]


def _version(ast: dict[str, Any]) -> str:
    """The string literal of the `_VERSION` constant declared in a source unit's AST."""
    stack: list[Any] = [ast]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("nodeType") == "VariableDeclaration" and node.get("name") == "_VERSION":
                return str(node["value"]["value"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise ValueError("the contract declares no _VERSION constant")


def artifact_text(artifact: dict[str, Any]) -> str:
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def write_artifacts(artifacts: dict[str, dict[str, Any]]) -> list[Path]:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in artifacts.items():
        path = ARTIFACTS_DIR / f"{name}.json"
        path.write_text(artifact_text(artifact))
        written.append(path)
    return written
