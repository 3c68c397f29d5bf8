"""The verifier is its own distribution (verifier/): it imports nothing of the service,
its copy of the protocol is the contract's, and its copy of the reference normalisation
agrees with the service's."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import ledger_verify
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_verify import protocol
from ledger_verify import reference as verifier_reference
from ledger_verify.report import safe

from ledger_api.chain.abi import load_artifact
from ledger_api.core import reference as service_reference

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "verifier" / "ledger_verify"


def test_the_verifier_is_installed_from_its_own_folder() -> None:
    assert Path(ledger_verify.__file__).resolve().is_relative_to(PACKAGE)
    project = tomllib.loads((ROOT / "verifier" / "pyproject.toml").read_text())["project"]
    assert project["name"] == "ledger-verify"
    assert project["scripts"] == {"ledger-verify": "ledger_verify.cli:main"}
    names = {d.split("[")[0].split(">")[0].split("<")[0].split("=")[0] for d in project["dependencies"]}
    assert names == {"eth-abi", "eth-hash", "httpx", "rlp", "trie"}


def test_the_verifier_imports_nothing_of_the_service() -> None:
    ours = {"ledger_api", "indexer", "tests", "scripts"}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            assert not any(m.split(".")[0] in ours for m in modules), (path, modules)
    # And at run time: a fresh, isolated interpreter loads the whole CLI without them.
    code = (
        "import sys, ledger_verify.cli, ledger_verify.checks, ledger_verify.bundle; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('ledger_api', 'indexer', 'web3')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    run = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, cwd="/", check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_protocol_copy_equals_the_contract_artifact() -> None:
    """When the contract's events or views change, this fails: copy the new fragments
    into verifier/ledger_verify/protocol.json (same names, sorted keys)."""
    wanted = set(protocol.EVENTS) | set(protocol.VIEWS)
    artifact = [
        item
        for item in load_artifact()["abi"]
        if item.get("type") in ("event", "function") and item.get("name") in wanted
    ]
    key = lambda item: (item["type"], item["name"])  # noqa: E731
    ours = sorted(protocol.fragments(), key=key)
    assert [json.dumps(i, sort_keys=True) for i in ours] == [
        json.dumps(i, sort_keys=True) for i in sorted(artifact, key=key)
    ]
    assert {e.name for e in protocol.events().values()} == set(protocol.EVENTS)


TRICKY = [
    "Zoë Li",
    "Zoe\u0308 Li",  # decomposed
    "  王小明  ",
    "王\u3000小明",  # ideographic space
    "a\u00a0b",  # no-break space
    "a\t\n\r\u000b\u000cb",
    "a\u0085b\u2028c\u2029d",
    "a\u1680b\u2000c\u200ad\u202fe\u205ff",
    "a\u200bb",  # zero-width space: not White_Space, kept
    "a\u180eb",  # Mongolian vowel separator: not White_Space since Unicode 6.3
    "\uff21\uff42\uff43\uff11\uff12\uff13",  # full-width letters and digits: kept
    "\ufb01le",  # a ligature: NFC keeps it
    "e\u0301\u0327",  # combining marks reordered by NFC
    "\u1e9b\u0323",
    " ",
    "",
    "x" * 400,
    "한국어\u1100\u1161",  # conjoining jamo compose
]


def test_the_reference_normalisation_agrees_with_the_service() -> None:
    for typed in TRICKY:
        assert verifier_reference.normalise(typed) == service_reference.normalise(typed), repr(typed)
        assert verifier_reference.commitment(b"\x01" * 32, typed) == service_reference.commitment(
            b"\x01" * 32, typed
        )


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_the_reference_normalisation_agrees_on_any_text(typed: str) -> None:
    assert verifier_reference.normalise(typed) == service_reference.normalise(typed)


def test_output_is_terminal_safe() -> None:
    hostile = "ok\x1b[2J\x1b]0;pwned\x07\r\u202eevil\u2028\x00"
    shown = safe(hostile)
    assert all(ord(c) >= 0x20 and c not in "\u202e\u2028\x7f" for c in shown), shown
    assert "\\u001b" in shown and "\\u202e" in shown
    assert len(safe("x" * 10_000)) < 2_000
