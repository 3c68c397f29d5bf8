"""Text written straight to the contract, past the API's checks (anyone with an operator
key can call it): a NUL, which PostgreSQL's text refuses, and bytes that are not UTF-8,
which eth_abi refuses to decode. Either once stopped the mirror for every charity; now
each is stored as U+FFFD and the indexer goes on, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode

from ledger_api.chain.abi import Call, selector
from ledger_api.core import ids
from ledger_api.transactions.service import Step
from tests.api.service import Service

pytestmark = pytest.mark.anvil


def test_a_nul_or_invalid_utf8_on_chain_does_not_stop_the_mirror(service: Service) -> None:
    charity, key = service.charity()
    campaign = service.campaign(charity, key)
    donation = service.donate(campaign, key, 1_000)["id"]
    writes = service.runtime.writes
    assert writes is not None
    operator, charity_hex = service.operators[charity], ids.to_hex(charity)
    reasons = [b"typed twice \x00 see note", b"bad bytes \xff\xfe here", "\u8bf4\u660e".encode()]
    corrections = []
    for reason in reasons:
        correction = ids.new("correction")
        corrections.append(correction)
        args = (
            ids.to_bytes32(correction),
            ids.to_bytes32(charity),
            1,
            ids.to_bytes32(donation),
            bytes(32),
            reason,
        )
        types = [
            "bytes32",
            "bytes32",
            "uint8",
            "bytes32",
            "bytes32",
            "bytes",
        ]  # a string's encoding, any bytes
        call = Call("recordCorrection", args, selector("recordCorrection") + abi_encode(types, list(args)))
        writes.submit(operator, charity_hex, [Step(call, {"kind": "correction", "ids": [correction]})], True)
    # The mirror took all three and goes on: a donation after them is read back at once.
    after = service.donate(campaign, key, 2_000)["id"]
    assert service.get(f"/v1/donations/{after}").status_code == 200
    listed = service.get(f"/v1/campaigns/{campaign}/disclosures").json()
    shown = {o["satisfied_by"]["id"] for o in listed["obligations"] if o["rule"] == "corrections-explained"}
    assert shown == set(corrections)
    trail = service.get("/v1/audit/trail", key, params={"limit": 200}).json()["items"]
    texts = [e["data"]["reason"] for e in trail if e["kind"] == "correction_recorded"]
    assert texts == ["typed twice \ufffd see note", "bad bytes \ufffd\ufffd here", "\u8bf4\u660e"]
