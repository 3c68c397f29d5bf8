"""Grants in the mirror: the three-hop chain's grants and their linked donations, with
each grant's received total, agree with the contract's grantOf and grantSourceOf on both
chains; a reorg across a hop leaves the mirror equal to a fresh index."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text

from indexer import models as m
from ledger_api.audit.context import Auditing
from ledger_api.audit.reconcile import reconcile
from ledger_api.audit.scope import Scope
from ledger_api.chain.contract import deploy_ledger, ledger_contract, make_web3
from ledger_api.core import ids
from ledger_api.core.config import Settings
from tests.indexer.test_mirror import _indexer, activity, columns, dump
from tests.ledger import Ledger, rid
from tests.support.grants import build_three_hops, record_grant


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def test_grants_and_their_donations_agree_with_the_contract(ledger: Ledger, database_url: str) -> None:
    hops = build_three_hops(ledger)
    indexer, engine = _indexer(ledger, database_url, initial_range=4)
    indexer.sync()
    with engine.connect() as connection:
        grants = {r.disbursement_id: r for r in connection.execute(select(m.Grant))}
        links = {r.donation_id: r for r in connection.execute(select(m.GrantDonation))}
        trail = connection.execute(
            select(m.Event.name, m.Event.sender, m.Event.campaign_id).where(
                m.Event.name.in_(["GrantAddressed", "GrantReceived"])
            )
        ).all()
    assert set(grants) == {_hex(rid("foundation-grant")), _hex(rid("bureau-grant"))}
    for disbursement_id, row in grants.items():
        recipient_campaign, received = ledger.fn.grantOf(bytes.fromhex(disbursement_id[2:])).call()
        assert (row.recipient_campaign_id, row.received) == (_hex(recipient_campaign), received)
        assert row.received == 2000
    assert grants[_hex(rid("bureau-grant"))].recipient_charity_id == _hex(hops.charity_c)
    assert len(links) == 5
    for donation_id, link in links.items():
        source = ledger.fn.grantSourceOf(bytes.fromhex(donation_id[2:])).call()
        assert link.source_disbursement_id == _hex(source)
    assert links[_hex(rid("bureau-in-1"))].amount == 1201
    # In the audit trail, a grant's address is its payer's; its receipt, its receiver's.
    assert (
        "GrantAddressed",
        ledger.op_a,
        _hex(ledger.campaign_a),
    ) in trail
    assert ("GrantReceived", hops.op_c, _hex(hops.campaign_c)) in trail


@pytest.mark.anvil
def test_a_reorg_across_a_hop_leaves_the_mirror_equal_to_a_fresh_index(
    anvil: Any, database_url: str, tmp_path: Any
) -> None:
    w3 = make_web3(anvil.url)
    deployment = deploy_ledger(w3, w3.eth.accounts[0])
    led = Ledger.setup(w3, ledger_contract(w3, deployment.address), deployment)
    hops = build_three_hops(led)
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    # The abandoned fork: the bureau records a third grant from the foundation, and the
    # school's last part of the bureau's grant never happened on the canonical side.
    led.donate("orphan-foundation", 90, sender=led.op_a)
    led.send(
        led.fn.disburse(
            (
                rid("orphan-grant"),
                led.campaign_a,
                90,
                "x",
                "grant",
                bytes(32),
                led.campaign_b,
                bytes(32),
                [(rid("orphan-foundation"), 90)],
            )
        ),
        led.op_a,
    )
    record_grant(led, rid("orphan-grant"), led.campaign_b, {"orphan-in": 60}, led.op_b)
    indexer, engine = _indexer(led, database_url)
    indexer.sync()
    assert _hex(rid("orphan-grant")) in columns(engine, m.Grant, "disbursement_id")
    assert _hex(rid("orphan-in")) in columns(engine, m.GrantDonation, "donation_id")

    w3.provider.make_request("evm_revert", [snapshot])
    activity(led, "canonical", n=4)
    # The canonical side records a different part of the same (canonical) grant: received
    # must be recomputed, not left at the orphan's total.
    led.donate("canonical-foundation", 40, sender=led.op_a)
    led.send(
        led.fn.disburse(
            (
                rid("canonical-grant"),
                led.campaign_a,
                40,
                "x",
                "grant",
                bytes(32),
                hops.campaign_c,
                bytes(32),
                [(rid("canonical-foundation"), 40)],
            )
        ),
        led.op_a,
    )
    record_grant(led, rid("canonical-grant"), hops.campaign_c, {"canonical-in": 25}, hops.op_c)
    w3.provider.make_request("anvil_mine", [4])
    indexer.sync()
    assert indexer.reorgs == 1

    fresh, fresh_engine = _indexer(led, f"sqlite:///{tmp_path / 'fresh.db'}")
    fresh.sync()
    assert dump(engine) == dump(fresh_engine)
    assert _hex(rid("orphan-grant")) not in columns(engine, m.Grant, "disbursement_id")
    assert _hex(rid("orphan-in")) not in columns(engine, m.GrantDonation, "donation_id")
    with engine.connect() as connection:
        received = dict(connection.execute(select(m.Grant.disbursement_id, m.Grant.received)).all())
    assert received[_hex(rid("canonical-grant"))] == 25


def test_reconciliation_covers_the_grant_links_and_names_a_tampered_one(
    ledger: Ledger, database_url: str
) -> None:
    build_three_hops(ledger)
    indexer, engine = _indexer(ledger, database_url)
    indexer.sync()
    auditing = Auditing(Settings(), engine, ledger.deployment, indexer.deployment_id, ledger.w3)
    clean = reconcile(auditing, Scope())
    assert clean["clean"] is True, clean["differences"]
    assert clean["counts"]["grants"] == {"chain": 2, "mirror": 2}
    assert clean["counts"]["grant_donations"] == {"chain": 5, "mirror": 5}
    assert clean["views_checked"]["grants"] == 2
    assert clean["views_checked"]["grant_donations"] == 5

    school_in = _hex(rid("school-in-2"))
    with engine.begin() as connection:  # the school's second part, relinked to the other grant
        connection.execute(
            text("UPDATE grant_donations SET source_disbursement_id = :s WHERE donation_id = :d"),
            {"s": _hex(rid("foundation-grant")), "d": school_in},
        )
    answer = reconcile(auditing, Scope())
    found = {(d["check"], d["table"], d["key"], d.get("field")) for d in answer["differences"]}
    key = ids.from_bytes32(school_in)
    assert ("records", "grant_donations", key, "source_disbursement_id") in found
    assert ("view", "grant_donations", key, "source_disbursement_id") in found
    assert answer["difference_count"] == 2
