"""The verifier's copy of the access log's protocol (row hash, the day's Merkle tree)
agrees with the service's, and `ledger verify access-row` tells a good proof from a
tampered one, offline."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_verify import access_log as verifier
from ledger_verify.cli import main
from ledger_verify.report import EXIT_MISMATCH, EXIT_UNCHECKED

from ledger_api.chain.abi import load_artifact
from ledger_api.core import access_log as service

texts = st.none() | st.text(max_size=40)
rows = st.fixed_dictionaries(
    {
        "seq": st.integers(1, 2**63 - 1),
        "at": st.just("2026-11-27T23:59:59.999999Z"),
        "day": st.integers(0, 100_000),
        "key_id": st.text(min_size=1, max_size=32),
        "role": st.sampled_from(["admin", "auditor", "charity"]),
        "method": st.sampled_from(["GET", "POST"]),
        "route": st.text(min_size=1, max_size=200),
        "charity_id": texts,
        "campaign_id": texts,
        "outcome": st.sampled_from(["served", "refused"]),
        "status": st.integers(100, 599),
        "record_count": st.none() | st.integers(0, 10**9),
        "record_ids": st.none() | st.lists(st.text(max_size=30), max_size=5),
        "records_digest": st.none() | st.text(max_size=64),
        "prev_hash": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    }
)
hashes = st.lists(st.binary(min_size=32, max_size=32).map(bytes.hex), min_size=1, max_size=40)


@settings(max_examples=200)
@given(rows)
def test_the_row_hash_is_the_same_on_both_sides(row: dict[str, Any]) -> None:
    assert verifier.row_hash(row) == service.row_hash(row)


@settings(max_examples=100)
@given(hashes)
def test_the_days_root_and_every_path_agree(day: list[str]) -> None:
    root = service.merkle_root(day)
    assert root == "0x" + verifier.root_of(day).hex()
    for index, row_hash in enumerate(day):
        assert "0x" + verifier.fold(row_hash, service.merkle_path(day, index)).hex() == root


def _proof(count: int, index: int) -> dict[str, Any]:
    previous, made = service.GENESIS, []
    for seq in range(1, count + 1):
        row = {
            "seq": seq,
            "at": "2026-11-27T10:00:00.000000Z",
            "day": 20_784,
            "key_id": "auditor00001",
            "role": "auditor",
            "method": "GET",
            "route": "/v1/audit/trail",
            "charity_id": "CH-0000-0000-0000-0001",
            "campaign_id": None,
            "outcome": "served",
            "status": 200,
            "record_count": 2,
            "record_ids": ["0xab:1", "0xab:2"],
            "records_digest": None,
            "prev_hash": previous,
        }
        row["row_hash"] = previous = service.row_hash(row)
        made.append(row)
    day = [row["row_hash"] for row in made]
    return {"row": made[index], "path": service.merkle_path(day, index), "root": service.merkle_root(day)}


def _verify(tmp_path: Path, proof: dict[str, Any]) -> tuple[int, list[str]]:
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof))
    lines: list[str] = []
    return main(["access-row", "--proof", str(path)], lines.append), lines


def test_a_row_proof_checks_out_and_a_tampered_one_does_not(tmp_path: Path) -> None:
    good = _proof(7, 4)
    code, lines = _verify(tmp_path, good)
    assert code == EXIT_UNCHECKED, lines  # no node: the root on chain is not checked
    assert [line.split()[0] for line in lines[1:3]] == ["ok", "ok"], lines
    assert any("UNCHECKED" in line and "no --rpc-url" in line for line in lines)

    edited = copy.deepcopy(good)
    edited["row"]["record_count"] = 1  # a row changed after the fact
    code, lines = _verify(tmp_path, edited)
    assert code == EXIT_MISMATCH and any(line.startswith("MISMATCH  row hash") for line in lines), lines

    rehashed = copy.deepcopy(edited)
    rehashed["row"]["row_hash"] = service.row_hash(rehashed["row"])  # ...and its hash recomputed
    code, lines = _verify(tmp_path, rehashed)
    assert code == EXIT_MISMATCH and any("Merkle path" in line and "MISMATCH" in line for line in lines), (
        lines
    )

    swapped = copy.deepcopy(good)
    swapped["path"][0]["side"] = "left" if swapped["path"][0]["side"] == "right" else "right"
    code, lines = _verify(tmp_path, swapped)
    assert code == EXIT_MISMATCH, lines


def test_bad_arguments_are_exit_3(tmp_path: Path) -> None:
    lines: list[str] = []
    assert (
        main(
            ["access-day", "2026-13-40", "--api", "http://127.0.0.1:9", "--key", "k", "--rpc-url", "x"],
            lines.append,
        )
        == 3
    )
    assert main(["access-day", "2026-11-27", "--rpc-url", "http://127.0.0.1:9"], lines.append) == 3
    assert main(["access-row", "--proof", str(tmp_path / "missing.json")], lines.append) == 3


def test_the_verifiers_seal_view_is_the_contracts() -> None:
    (fragment,) = [i for i in load_artifact()["abi"] if i.get("name") == "accessLogSeal"]
    assert f"accessLogSeal({','.join(i['type'] for i in fragment['inputs'])})" == verifier.SEAL_VIEW
    assert [o["type"] for o in fragment["outputs"]] == verifier.SEAL_TYPES
    assert tuple(o["name"] for o in fragment["outputs"]) == verifier.SEAL_FIELDS
