"""Attacks on approvals before payout, on eth-tester and anvil, each answered by the
contract with its exact custom error and no state change:

- the Allo milestone attack: a proposal that reached its approvals and was then rejected
  cannot be executed, and cannot be approved again;
- an expired proposal cannot be approved or executed;
- the proposer cannot approve; an approver cannot approve twice; a stranger is no approver;
- bypasses: recordDisbursement and disburse on a ruled campaign, recordDisbursement in a
  signed call through the relayer, executeDisbursement with an altered input (amount,
  allocations, recipient), and a rule changed mid-proposal (a lower threshold or new
  approvers do not let the pending proposal pass with fewer approvals or the new names);
- nothing is drawn from a donation until the proposal is executed."""

from __future__ import annotations

from typing import Any

from tests.approvals import HOUR, approvers, disbursement_input, input_hash, rule
from tests.ledger import ZERO, Ledger, advance_time, rid
from tests.signed import CAMPAIGN, CHARITY_KEY, relay, sc_donation, setup_self_custody, signed

REJECTED, EXECUTED = 2, 3


def _proposed(ledger: Ledger, label: str = "p", amount: int = 600, threshold: int = 2) -> tuple[Any, ...]:
    """Campaign A under a `threshold`-of-3 rule, a donation, and a proposal drawing on it."""
    donation = ledger.donate(f"{label}-d", 1_000)
    rule(ledger, approvers(ledger), threshold)
    proposal = disbursement_input(label, [(donation, amount)], ledger.campaign_a)
    ledger.send(ledger.fn.proposeDisbursement(proposal), ledger.op_a)
    return proposal


def test_a_proposal_rejected_after_reaching_its_approvals_can_never_be_paid(ledger: Ledger) -> None:
    fn = ledger.fn
    a1, a2, a3 = approvers(ledger)
    proposal = _proposed(ledger)
    ledger.send(fn.approveDisbursement(rid("p")), a1)
    ledger.send(fn.approveDisbursement(rid("p")), a2)  # 2 of 2 needed: executable now
    ledger.send(fn.rejectDisbursement(rid("p"), "milestone not delivered"), a3)
    ledger.expect_error(
        fn.executeDisbursement(proposal), ledger.stranger, "ProposalNotPending", rid("p"), REJECTED
    )
    ledger.expect_error(fn.executeDisbursement(proposal), a1, "ProposalNotPending", rid("p"), REJECTED)
    ledger.expect_error(fn.approveDisbursement(rid("p")), a3, "ProposalNotPending", rid("p"), REJECTED)
    ledger.expect_error(
        fn.rejectDisbursement(rid("p"), "again"), a1, "ProposalNotPending", rid("p"), REJECTED
    )
    assert ledger.campaign_view(ledger.campaign_a)[6] == 0  # nothing disbursed
    ledger.expect_view_error(fn.disbursementOf(rid("p")), "DisbursementNotFound", rid("p"))


def test_an_expired_proposal_cannot_be_approved_or_executed(clock_ledger: Ledger) -> None:
    ledger = clock_ledger
    fn = ledger.fn
    a1, a2, _ = approvers(ledger)
    proposal = _proposed(ledger)
    ledger.send(fn.approveDisbursement(rid("p")), a1)
    ledger.send(fn.approveDisbursement(rid("p")), a2)
    expires_at = fn.proposalOf(rid("p")).call()[6]
    advance_time(ledger.w3, 24 * HOUR + 60)
    ledger.expect_error(
        fn.executeDisbursement(proposal), ledger.stranger, "ProposalExpired", rid("p"), expires_at
    )
    waiting = _proposed_again(ledger)
    advance_time(ledger.w3, 24 * HOUR + 60)
    expires = fn.proposalOf(rid("q")).call()[6]
    ledger.expect_error(fn.approveDisbursement(rid("q")), a1, "ProposalExpired", rid("q"), expires)
    ledger.expect_error(fn.executeDisbursement(waiting), a1, "ProposalExpired", rid("q"), expires)


def _proposed_again(ledger: Ledger) -> tuple[Any, ...]:
    donation = ledger.donate("q-d", 500)
    proposal = disbursement_input("q", [(donation, 100)], ledger.campaign_a)
    ledger.send(ledger.fn.proposeDisbursement(proposal), ledger.op_a)
    return proposal


def test_the_proposer_cannot_approve_and_nobody_approves_twice(ledger: Ledger) -> None:
    fn = ledger.fn
    a1, a2, _ = approvers(ledger)
    donation = ledger.donate("d", 1_000)
    # A rule that (unwisely) names the operator who proposes: the contract still refuses it.
    rule(ledger, [ledger.op_a, a1, a2], 2)
    proposal = disbursement_input("p", [(donation, 600)], ledger.campaign_a)
    ledger.send(fn.proposeDisbursement(proposal), ledger.op_a)
    ledger.expect_error(
        fn.approveDisbursement(rid("p")), ledger.op_a, "ProposerCannotApprove", rid("p"), ledger.op_a
    )
    ledger.send(fn.approveDisbursement(rid("p")), a1)
    ledger.expect_error(fn.approveDisbursement(rid("p")), a1, "AlreadyApproved", rid("p"), a1)
    ledger.expect_error(
        fn.approveDisbursement(rid("p")), ledger.stranger, "NotApprover", rid("p"), ledger.stranger
    )
    ledger.expect_error(fn.executeDisbursement(proposal), ledger.stranger, "ApprovalsMissing", rid("p"), 1, 2)
    ledger.send(fn.approveDisbursement(rid("p")), a2)
    ledger.send(fn.executeDisbursement(proposal), ledger.stranger)
    assert fn.proposalOf(rid("p")).call()[7] == EXECUTED
    ledger.expect_error(
        fn.executeDisbursement(proposal), ledger.stranger, "ProposalNotPending", rid("p"), EXECUTED
    )


def test_a_ruled_campaign_cannot_be_paid_around_its_rule(ledger: Ledger) -> None:
    fn = ledger.fn
    donation = ledger.donate("d", 1_000)
    rule(ledger, approvers(ledger), 2)
    call = fn.recordDisbursement(
        rid("x"), ledger.campaign_a, 100, "CN-ORG-1", "meals", ZERO, [(donation, 100)]
    )
    ledger.expect_error(call, ledger.op_a, "ApprovalRequired", ledger.campaign_a)
    direct = disbursement_input("y", [(donation, 100)], ledger.campaign_a)
    ledger.expect_error(fn.disburse(direct), ledger.op_a, "ApprovalRequired", ledger.campaign_a)
    # Executing what was never proposed is no way round either.
    ledger.expect_error(fn.executeDisbursement(direct), ledger.op_a, "ProposalNotFound", rid("y"))
    assert ledger.donation_view(donation)[2] == 0


def test_a_signed_call_through_the_relayer_cannot_bypass_the_rule(ledger: Ledger) -> None:
    setup_self_custody(ledger)
    relay(ledger, *signed(ledger, CHARITY_KEY, "recordDonation", sc_donation("sc-d", 1_000)))
    relay(ledger, *signed(ledger, CHARITY_KEY, "setApprovalRule", CAMPAIGN, approvers(ledger), 2, 24 * HOUR))
    call, signature = signed(
        ledger,
        CHARITY_KEY,
        "recordDisbursement",
        rid("sc-x"),
        CAMPAIGN,
        100,
        "CN-ORG-1",
        "meals",
        ZERO,
        [(rid("sc-d"), 100)],
    )
    ledger.expect_error(
        ledger.fn.execute(call.as_tuple(), signature), ledger.stranger, "ApprovalRequired", CAMPAIGN
    )
    assert ledger.donation_view(rid("sc-d"))[2] == 0


def test_an_altered_input_cannot_be_executed(ledger: Ledger) -> None:
    fn = ledger.fn
    a1, a2, _ = approvers(ledger)
    proposal = _proposed(ledger)
    other = ledger.donate("other", 1_000)
    ledger.send(fn.approveDisbursement(rid("p")), a1)
    ledger.send(fn.approveDisbursement(rid("p")), a2)
    proposed = input_hash(proposal)
    assert fn.proposalOf(rid("p")).call()[2] == proposed
    (d, c, amount, recipient, purpose, evidence, rc, ro, allocations) = proposal
    altered = [
        (d, c, amount + 100, recipient, purpose, evidence, rc, ro, [(allocations[0][0], amount + 100)]),
        (d, c, amount, recipient, purpose, evidence, rc, ro, [(other, amount)]),
        (d, c, amount, "MY-OWN-COMPANY", purpose, evidence, rc, ro, allocations),
        (d, c, amount, recipient, purpose, evidence, rc, ro, [(allocations[0][0], 300), (other, 300)]),
    ]
    for value in altered:
        ledger.expect_error(
            fn.executeDisbursement(value),
            ledger.stranger,
            "ProposalMismatch",
            rid("p"),
            proposed,
            input_hash(value),
        )
    assert ledger.donation_view(allocations[0][0])[2] == 0  # nothing drawn before execution
    ledger.send(fn.executeDisbursement(proposal), ledger.stranger)
    assert ledger.donation_view(allocations[0][0])[2] == 600
    assert ledger.donation_view(other)[2] == 0


def test_changing_the_rule_mid_proposal_does_not_let_it_pass(ledger: Ledger) -> None:
    fn = ledger.fn
    a1, a2, a3 = approvers(ledger)
    newcomer = ledger.w3.eth.accounts[7]
    proposal = _proposed(ledger, threshold=3)
    ledger.send(fn.approveDisbursement(rid("p")), a1)
    rule(ledger, [a1], 1)  # lower the threshold: version 2
    ledger.expect_error(fn.executeDisbursement(proposal), ledger.stranger, "ApprovalsMissing", rid("p"), 1, 3)
    rule(ledger, [newcomer], 1)  # replace the approvers: version 3
    ledger.expect_error(fn.approveDisbursement(rid("p")), newcomer, "NotApprover", rid("p"), newcomer)
    ledger.expect_error(fn.executeDisbursement(proposal), ledger.stranger, "ApprovalsMissing", rid("p"), 1, 3)
    # The approvers of the proposal's own rule (version 1) still decide it.
    assert fn.proposalOf(rid("p")).call()[3] == 1
    ledger.send(fn.approveDisbursement(rid("p")), a2)
    ledger.send(fn.approveDisbursement(rid("p")), a3)
    ledger.send(fn.executeDisbursement(proposal), ledger.stranger)
    assert ledger.campaign_view(ledger.campaign_a)[6] == 600
