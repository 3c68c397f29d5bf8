"""The proof bundle (GET /v1/donations/{id}/proof) on both chains: its headers hash to the
blocks' hashes, its receipts' Merkle proofs lead to their receiptsRoot, and `ledger verify
--bundle` passes it with a node or with trusted block hashes alone, and fails on a
tampered log, receipt, proof or header."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth_utils import keccak
from trie import HexaryTrie

from tests.verify.conftest import Demo
from tests.verify.test_verify import fails_on, lines, passes, with_allocations

Bundle = dict[str, Any]


def unhex(value: str) -> bytes:
    return bytes.fromhex(value[2:])


@pytest.fixture(scope="module")
def proof(demo: Demo) -> tuple[str, Bundle]:
    trace = with_allocations(demo, 2)
    answer = demo.service.get(f"/v1/donations/{trace['id']}/proof")
    assert answer.status_code == 200, answer.text
    return trace["id"], answer.json()


def write(tmp_path: Path, bundle: Bundle) -> str:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    return str(path)


def test_the_bundle_proves_each_step_up_to_the_block_hashes(demo: Demo, proof: tuple[str, Bundle]) -> None:
    _, bundle = proof
    w3 = demo.service.runtime.w3
    assert bundle["trace"]["allocations"] and bundle["chain_id"] == w3.eth.chain_id
    for block in bundle["blocks"]:
        header = unhex(block["header"])
        assert keccak(header) == unhex(block["hash"]) == bytes(w3.eth.get_block(block["number"])["hash"])
        fields = rlp.decode(header)
        assert len(fields) >= 20  # Cancun's fields (and Prague's requestsHash) included
    roots = {b["number"]: rlp.decode(unhex(b["header"]))[5] for b in bundle["blocks"]}
    kinds = set()
    for receipt in bundle["receipts"]:
        nodes = [rlp.decode(unhex(n)) for n in receipt["proof"]]
        key = rlp.encode(receipt["transaction_index"])
        value = HexaryTrie.get_from_proof(roots[receipt["block_number"]], key, nodes)
        assert value == unhex(receipt["receipt"])
        kinds.add(value[0] if value[0] < 0x7F else "legacy")
    assert kinds == {2}  # EIP-1559 transactions: typed receipts
    # Every step of the trace has its log placed in a proven receipt.
    trace = bundle["trace"]
    proofs = [trace["proof"], *(r["proof"] for r in trace["refunds"]), *bundle["origins"].values()]
    for allocation in trace["allocations"]:
        proofs += [allocation["proof"], allocation["disbursement"]["proof"]]
        proofs += [e["proof"] for e in allocation["disbursement"]["evidence"]]
    steps = {(p["block_number"], p["tx_hash"].lower(), str(p["log_index"])) for p in proofs}
    placed = {(r["block_number"], r["tx_hash"], i) for r in bundle["receipts"] for i in r["log_positions"]}
    assert steps == placed and len(steps) >= 4


def test_ledger_verify_passes_the_bundle_with_a_node_and_offline(
    demo: Demo, proof: tuple[str, Bundle], tmp_path: Path
) -> None:
    donation_id, bundle = proof
    path = write(tmp_path, bundle)
    passes(demo.verify(donation_id, "--bundle", path))
    # Offline: one trusted hash per block, no node; what needs a node is said to be unchecked.
    trusted = [f"{b['number']}={b['hash']}" for b in bundle["blocks"]]
    offline = demo.verify_offline(donation_id, path, trusted)
    assert offline.returncode == 2, offline.stdout
    assert not lines(offline.stdout, "MISMATCH"), offline.stdout
    unchecked = lines(offline.stdout, "UNCHECKED")
    assert all(("needs a node" in line or "transaction hashes" in line) for line in unchecked), unchecked
    proven = lines(offline.stdout, "ok")
    assert any("allocation 1" in line and "amount" in line for line in proven)
    # The names, from their creation events in the bundle.
    assert any(re.match(r"ok +campaign CP-[\w-]+ name: ", line) for line in proven), offline.stdout
    assert any(re.match(r"ok +charity CH-[\w-]+ name: ", line) for line in proven), offline.stdout
    # A wrong trusted hash fails.
    wrong = [f"{bundle['blocks'][0]['number']}=0x{'11' * 32}", *trusted[1:]]
    fails_on(demo.verify_offline(donation_id, path, wrong), "the trusted hash is 0x1111")


def _data_byte(bundle: Bundle) -> None:
    """A byte of a log's data (the allocation's amount word) changed inside its receipt."""
    receipt = next(r for r in bundle["receipts"] if r["log_positions"])
    raw = bytearray(unhex(receipt["receipt"]))
    raw[-1] ^= 1
    receipt["receipt"] = "0x" + raw.hex()


def _receipt_gas(bundle: Bundle) -> None:
    receipt = bundle["receipts"][0]
    raw = unhex(receipt["receipt"])
    fields = rlp.decode(raw[1:])
    fields[1] = (int.from_bytes(fields[1], "big") + 1).to_bytes(8, "big").lstrip(b"\0")
    receipt["receipt"] = "0x" + (raw[:1] + rlp.encode(fields)).hex()


def _proof_node(bundle: Bundle) -> None:
    receipt = bundle["receipts"][0]
    node = bytearray(unhex(receipt["proof"][0]))
    node[len(node) // 2] ^= 0xFF
    receipt["proof"][0] = "0x" + node.hex()


def _header(bundle: Bundle) -> None:
    block = bundle["blocks"][0]
    fields = rlp.decode(unhex(block["header"]))
    fields[11] = (int.from_bytes(fields[11], "big") + 1).to_bytes(8, "big").lstrip(b"\0")  # timestamp
    block["header"] = "0x" + rlp.encode(fields).hex()


def _forged(bundle: Bundle) -> None:
    """A consistent forgery: the log's amount raised, the receipts trie and the header
    rebuilt around it. Only the trusted block hash catches it."""
    receipt = next(r for r in bundle["receipts"] if r["log_positions"])
    raw = unhex(receipt["receipt"])
    fields = rlp.decode(raw[1:])
    position = next(iter(receipt["log_positions"].values()))
    log = fields[3][position]
    log[2] = (int.from_bytes(log[2][:32], "big") + 1).to_bytes(32, "big") + log[2][32:]
    forged = raw[:1] + rlp.encode(fields)
    receipts_trie = HexaryTrie({})
    receipts_trie[rlp.encode(receipt["transaction_index"])] = forged
    block = next(b for b in bundle["blocks"] if b["number"] == receipt["block_number"])
    header = rlp.decode(unhex(block["header"]))
    header[5] = receipts_trie.root_hash
    block["header"] = "0x" + rlp.encode(header).hex()
    block["hash"] = "0x" + keccak(unhex(block["header"])).hex()
    receipt["receipt"] = "0x" + forged.hex()
    receipt["proof"] = [
        "0x" + rlp.encode(n).hex() for n in receipts_trie.get_proof(rlp.encode(receipt["transaction_index"]))
    ]


def _claim(bundle: Bundle) -> None:
    bundle["trace"]["allocations"][0]["amount"] += 1


@pytest.mark.parametrize(
    "tamper, claim",
    [
        (_data_byte, "does not prove it: the receipt differs|does not prove it: the receipt's Merkle proof"),
        (_receipt_gas, "does not prove it"),
        (_proof_node, "does not prove it: the receipt's Merkle proof"),
        (_header, "hashes to 0x[0-9a-f]{64}, the trusted hash is"),
        (_forged, "the trusted hash is"),
        (_claim, r"allocation 1 \(to DB-[\w-]+\) amount: claimed"),
    ],
)
def test_a_tampered_bundle_fails(
    demo: Demo, proof: tuple[str, Bundle], tmp_path: Path, tamper: Callable[[Bundle], None], claim: str
) -> None:
    donation_id, bundle = proof
    trusted = [f"{b['number']}={b['hash']}" for b in bundle["blocks"]]
    tampered = copy.deepcopy(bundle)
    tamper(tampered)
    path = write(tmp_path, tampered)
    fails_on(demo.verify_offline(donation_id, path, trusted), claim)
    fails_on(demo.verify(donation_id, "--bundle", path), claim)


def test_a_bundle_past_its_bound_is_refused(
    demo: Demo, proof: tuple[str, Bundle], monkeypatch: pytest.MonkeyPatch
) -> None:
    donation_id, bundle = proof
    assert len(bundle["blocks"]) > 1
    monkeypatch.setattr("ledger_api.donations.proof.MAX_BLOCKS", 1)
    answer = demo.service.get(f"/v1/donations/{donation_id}/proof")
    assert answer.status_code == 422 and answer.json()["type"].endswith("proof-too-large"), answer.text


def test_a_bundle_of_an_unknown_donation_is_a_404(demo: Demo) -> None:
    answer = demo.service.get("/v1/donations/DN-AAAA-AAAA-AAAA-AAAA/proof")
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("application/problem+json")
    assert demo.service.get("/v1/donations/not-an-id/proof").status_code == 422
