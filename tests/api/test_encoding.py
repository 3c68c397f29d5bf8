"""The hand-made encoding of a donation batch is exactly eth_abi's, and the lean call
encoder agrees with web3's for every function it is used for."""

from __future__ import annotations

import secrets

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_api.chain.abi import encode, encode_donations
from ledger_api.chain.contract import ledger_contract, make_web3

word = st.binary(min_size=32, max_size=32)
donation = st.tuples(word, word, st.integers(1, 2**256 - 1), word, word, word)


@settings(max_examples=60, deadline=None)
@given(st.lists(donation, min_size=1, max_size=40))
def test_batch_encoding_equals_eth_abi(
    donations: list[tuple[bytes, bytes, int, bytes, bytes, bytes]],
) -> None:
    assert encode_donations(donations).data == encode("recordDonations", donations).data


def test_lean_calls_equal_web3_encoding() -> None:
    contract = ledger_contract(make_web3(None), "0x" + "11" * 20)
    b = secrets.token_bytes
    cases = [
        ("registerCharity", (b(32), "Sunrise 朝阳", b(32))),
        ("createCampaign", (b(32), b(32), "Meals", b"CNY", 10**9, b(32))),
        ("recordDonation", ((b(32), b(32), 5, b(32), b(32), b(32)),)),
        ("recordDisbursement", (b(32), b(32), 7, "CN-1", "meals", b(32), [(b(32), 3), (b(32), 4)])),
        ("refundDonation", (b(32), b(32), 1, "asked")),
        ("anchorEvidence", (b(32), b(32))),
    ]
    for name, args in cases:
        expected = contract.encode_abi(name, list(args))
        assert "0x" + encode(name, *args).data.hex() == expected, name
