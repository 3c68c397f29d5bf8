"""The mirror of approvals before payout: rules and their approvers by version, proposals
with their approvals, rejection and execution, each vote with who cast it; it agrees with
the contract's views (on both chains, both databases), and after a reorg that orphans the
approvals and the execution of a proposal it equals a fresh index of the canonical chain."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert, select, update

from indexer import models as m
from indexer.indexer import Indexer, IndexerConfig
from ledger_api.audit.anomalies import Thresholds, anomalies
from ledger_api.audit.context import Auditing
from ledger_api.audit.reconcile import reconcile
from ledger_api.audit.scope import Scope
from ledger_api.chain.contract import deploy_ledger, ledger_contract, make_web3
from ledger_api.core.config import Settings
from ledger_api.core.hexes import hex0x
from ledger_api.core.models import ApproverAccount, Deployment
from tests.approvals import HOUR, approvers, disbursement_input, input_hash, rule
from tests.indexer.test_mirror import _engine, _indexer, dump
from tests.ledger import Ledger, advance_time, rid

STATUS = {1: "pending", 2: "rejected", 3: "executed"}


def _index(ledger: Ledger, url: str, confirmations: int = 0) -> Engine:
    dep = ledger.deployment
    engine, deployment_id = _engine(url, dep.chain_id, dep.address, dep.block_number)
    Indexer(ledger.w3, engine, deployment_id, IndexerConfig(confirmations=confirmations)).sync()
    return engine


def _history(ledger: Ledger) -> dict[str, tuple[Any, ...]]:
    """Five proposals under two rule versions: executed, rejected after an approval,
    approved and waiting, pending, expired."""
    fn, op = ledger.fn, ledger.op_a
    a1, a2, a3 = approvers(ledger)
    d1, d2 = ledger.donate("d1", 1_000), ledger.donate("d2", 1_000)
    rule(ledger, [a1, a2, a3], 2)
    inputs = {
        "paid": disbursement_input("paid", [(d1, 600)], ledger.campaign_a),
        "rejected": disbursement_input("rejected", [(d1, 400)], ledger.campaign_a, recipient="CN-ORG-2"),
    }
    ledger.send(fn.proposeDisbursement(inputs["paid"]), op)
    ledger.send(fn.approveDisbursement(rid("paid")), a1)
    ledger.send(fn.approveDisbursement(rid("paid")), a2)
    ledger.send(fn.executeDisbursement(inputs["paid"]), ledger.stranger)
    ledger.send(fn.proposeDisbursement(inputs["rejected"]), op)
    ledger.send(fn.approveDisbursement(rid("rejected")), a1)
    ledger.send(fn.rejectDisbursement(rid("rejected"), "invoice does not match"), a3)
    rule(ledger, [a1], 1, validity=2 * HOUR)  # version 2: one approver
    inputs["expired"] = disbursement_input("expired", [(d2, 100)], ledger.campaign_a)
    ledger.send(fn.proposeDisbursement(inputs["expired"]), op)
    advance_time(ledger.w3, 3 * HOUR)
    inputs["approved"] = disbursement_input("approved", [(d2, 200)], ledger.campaign_a)
    inputs["pending"] = disbursement_input("pending", [(d2, 300)], ledger.campaign_a)
    ledger.send(fn.proposeDisbursement(inputs["approved"]), op)
    ledger.send(fn.approveDisbursement(rid("approved")), a1)
    ledger.send(fn.proposeDisbursement(inputs["pending"]), op)
    return inputs


def test_the_mirror_holds_rules_proposals_and_votes_as_the_chain_does(
    clock_ledger: Ledger, database_url: str
) -> None:
    ledger = clock_ledger
    inputs = _history(ledger)
    a1, a2, a3 = approvers(ledger)
    engine = _index(ledger, database_url)
    campaign = hex0x(ledger.campaign_a)
    with engine.connect() as connection:
        rules = [
            (r.version, r.threshold, r.approver_count, r.validity, r.operator, r.charity_id)
            for r in connection.execute(select(m.ApprovalRule).order_by(m.ApprovalRule.version))
        ]
        assert rules == [
            (1, 2, 3, 24 * HOUR, ledger.op_a, hex0x(ledger.charity_a)),
            (2, 1, 1, 2 * HOUR, ledger.op_a, hex0x(ledger.charity_a)),
        ]
        named = set(
            connection.execute(select(m.ApprovalRuleApprover.version, m.ApprovalRuleApprover.approver))
        )
        assert named == {(1, a1), (1, a2), (1, a3), (2, a1)}
        version, threshold, count, validity = ledger.fn.approvalRuleOf(ledger.campaign_a).call()
        assert (version, threshold, count, validity) == rules[-1][:4]

        proposals = {hex0x(rid(label)): label for label in inputs}
        rows = {p.disbursement_id: p for p in connection.execute(select(m.Proposal))}
        assert set(rows) == set(proposals)
        for disbursement_id, row in rows.items():
            view = ledger.fn.proposalOf(bytes.fromhex(disbursement_id[2:])).call()
            assert (row.campaign_id, row.proposer, row.input_hash) == (campaign, view[1], hex0x(view[2]))
            assert (row.rule_version, row.threshold, row.approvals, row.expires_at) == tuple(view[3:7])
            assert row.state == STATUS[view[7]]
            assert row.input_hash == hex0x(input_hash(inputs[proposals[disbursement_id]]))
        paid = rows[hex0x(rid("paid"))]
        assert (paid.executor, paid.executed_block is not None, paid.approvals) == (ledger.stranger, True, 2)
        assert (rows[hex0x(rid("rejected"))].state, rows[hex0x(rid("rejected"))].approvals) == ("rejected", 1)
        assert rows[hex0x(rid("approved"))].rule_version == 2
        assert (rows[hex0x(rid("approved"))].state, rows[hex0x(rid("approved"))].approvals) == ("pending", 1)

        votes = sorted(
            (v.disbursement_id == hex0x(rid("paid")), v.voter, v.vote, v.reason)
            for v in connection.execute(select(m.ProposalVote))
        )
        assert votes == sorted(
            [
                (True, a1, "approve", None),
                (True, a2, "approve", None),
                (False, a1, "approve", None),
                (False, a3, "reject", "invoice does not match"),
                (False, a1, "approve", None),  # "approved", under version 2
            ]
        )
        # Only the executed proposal is a disbursement; the campaign's total counts it alone.
        assert connection.execute(select(m.Disbursement.disbursement_id)).scalars().all() == [
            hex0x(rid("paid"))
        ]
        assert (
            connection.execute(
                select(m.Campaign.disbursed).where(m.Campaign.campaign_id == campaign)
            ).scalar_one()
            == 600
        )

        # The trail: every step is in the campaign's events, each with who sent it.
        trail = [
            (name, sender, json.loads(args).get("disbursementId") == hex0x(rid("rejected")))
            for name, sender, args in connection.execute(
                select(m.Event.name, m.Event.sender, m.Event.args)
                .where(
                    m.Event.campaign_id == campaign,
                    m.Event.name.in_(
                        [
                            "ApprovalRuleSet",
                            "ApproverNamed",
                            "DisbursementProposed",
                            "DisbursementApproved",
                            "DisbursementRejected",
                            "ProposalExecuted",
                            "DisbursementRecorded",
                        ]
                    ),
                )
                .order_by(m.Event.block_number, m.Event.log_index)
            )
        ]
        assert trail[:10] == [
            ("ApprovalRuleSet", ledger.op_a, False),
            ("ApproverNamed", ledger.op_a, False),
            ("ApproverNamed", ledger.op_a, False),
            ("ApproverNamed", ledger.op_a, False),
            ("DisbursementProposed", ledger.op_a, False),
            ("DisbursementApproved", a1, False),
            ("DisbursementApproved", a2, False),
            ("DisbursementRecorded", ledger.op_a, False),  # the proposer is its operator
            ("ProposalExecuted", ledger.stranger, False),
            ("DisbursementProposed", ledger.op_a, True),
        ]
        assert trail[10:12] == [("DisbursementApproved", a1, True), ("DisbursementRejected", a3, True)]
    engine.dispose()


@pytest.mark.anvil
def test_a_reorg_that_orphans_approvals_and_the_payout_leaves_a_fresh_index(
    anvil: Any, database_url: str, tmp_path: Any
) -> None:
    w3 = make_web3(anvil.url)
    deployment = deploy_ledger(w3, w3.eth.accounts[0])
    chain = Ledger.setup(w3, ledger_contract(w3, deployment.address), deployment)
    fn = chain.fn
    a1, a2, a3 = approvers(chain)
    d1 = chain.donate("d1", 1_000)
    rule(chain, [a1, a2, a3], 2)
    proposal = disbursement_input("p", [(d1, 600)], chain.campaign_a)
    chain.send(fn.proposeDisbursement(proposal), chain.op_a)
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    chain.send(fn.approveDisbursement(rid("p")), a1)
    chain.send(fn.approveDisbursement(rid("p")), a2)
    chain.send(fn.executeDisbursement(proposal), chain.stranger)
    indexer, engine = _indexer(chain, database_url)
    indexer.sync()
    with engine.connect() as connection:
        row = connection.execute(select(m.Proposal)).one()
        assert (row.state, row.approvals, row.executor) == ("executed", 2, chain.stranger)

    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    chain.send(fn.rejectDisbursement(rid("p"), "wrong supplier"), a3)  # the canonical history
    w3.provider.make_request("anvil_mine", [4])  # type: ignore[arg-type]
    indexer.sync()
    assert indexer.reorgs == 1
    with engine.connect() as connection:
        row = connection.execute(select(m.Proposal)).one()
        assert (row.state, row.approvals, row.executor, row.executed_block) == ("rejected", 0, None, None)
        votes = connection.execute(select(m.ProposalVote.voter, m.ProposalVote.vote)).all()
        assert votes == [(a3, "reject")]
        assert connection.execute(select(m.Disbursement)).all() == []
    fresh = _index(chain, f"sqlite:///{tmp_path / 'fresh.db'}", confirmations=2)
    assert dump(engine) == dump(fresh)
    engine.dispose()


def test_reconciliation_checks_proposals_and_rules_against_the_chain(
    clock_ledger: Ledger, database_url: str
) -> None:
    ledger = clock_ledger
    _history(ledger)
    engine = _index(ledger, database_url)
    with engine.connect() as connection:
        deployment_id = connection.execute(select(Deployment.id)).scalar_one()
    auditing = Auditing(Settings(), engine, ledger.deployment, deployment_id, ledger.w3)
    for scope in (Scope(), Scope(campaign_id=hex0x(ledger.campaign_a))):
        result = reconcile(auditing, scope)
        assert result["clean"] is True, result["differences"]
    assert result["views_checked"]["proposals"] == 5
    assert result["views_checked"]["approval_rule_approvers"] == 4

    # A mirror that shows the rejected proposal as still pending, and drops an approval.
    with engine.begin() as connection:
        connection.execute(
            update(m.Proposal)
            .where(m.Proposal.disbursement_id == hex0x(rid("rejected")))
            .values(state="pending")
        )
        connection.execute(delete(m.ProposalVote).where(m.ProposalVote.disbursement_id == hex0x(rid("paid"))))
    result = reconcile(auditing, Scope(charity_id=hex0x(ledger.charity_a)))
    assert result["clean"] is False
    found = {(d["check"], d["table"], d.get("field")) for d in result["differences"]}
    assert ("records", "proposals", "state") in found
    assert ("view", "proposals", "state") in found  # proposalOf says Rejected
    assert ("records", "proposal_votes", None) in found
    engine.dispose()


def test_anomalies_flag_fast_approvals_and_approvers_who_are_the_recipient(
    clock_ledger: Ledger, database_url: str
) -> None:
    ledger = clock_ledger
    _history(ledger)
    a1, _, _ = approvers(ledger)
    engine = _index(ledger, database_url)
    with engine.begin() as connection:
        deployment_id = connection.execute(select(Deployment.id)).scalar_one()
        # The charity's name for approver a1 is the payee of the proposal it approved.
        connection.execute(
            insert(ApproverAccount).values(
                deployment_id=deployment_id,
                charity_id=hex0x(ledger.charity_a),
                account=a1,
                label="cn-org-2",
                held_by_platform=True,
            )
        )
    mirror = Auditing(Settings(), engine, ledger.deployment, deployment_id, ledger.w3)
    report = anomalies(mirror, Scope(), Thresholds(fast_approval_minutes=10), 100)
    fast = [i for i in report.items if i.kind == "fast_approval"]
    # "paid" had both approvals within seconds; "approved" (1 of 1) too; "rejected" never had 2.
    assert sorted(i.record.id for i in fast) == sorted([hex0x(rid("paid")), hex0x(rid("approved"))])
    assert all(i.proof is not None for i in fast)
    same = [i for i in report.items if i.kind == "approver_is_recipient"]
    assert [(i.record.id, a1 in i.detail) for i in same] == [(hex0x(rid("rejected")), True)]
    assert "matches the recipient" in same[0].detail
    assert report.counts["fast_approval"] == 2
    none = anomalies(mirror, Scope(), Thresholds(fast_approval_minutes=0), 100)
    # Zero minutes: only approvals in the proposal's own second would be flagged.
    assert none.counts["fast_approval"] <= 2
    engine.dispose()
