"""The random-sequence machine of test_invariants.py, extended to contract 2.2.0's money
across organisations: grants to other campaigns and the donations that record them,
approval rules with proposals, approvals, rejections, expiry and execution, and recipient
organisations confirming receipt. After every step, besides the base machine's
invariants (no campaign pays out more than it received net of refunds, every view equals
the model):

- the donations linked to a grant never add up to more than the grant;
- no disbursement of a campaign under a rule exists without its threshold of distinct
  approvals by approvers of the rule it was proposed under, none of them its proposer;
- a rejected or expired proposal is never executed;
- confirmations never exceed their disbursement;
- `grantOf`, `grantSourceOf`, `proposalOf`, `hasApproved`, `approvalRuleOf` and
  `recipientOf` equal the model.

Each chain is the test's own (`clock_w3`), so the machine can move its clock past expiry
dates. Runs on eth-tester and on anvil."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule, run_state_machine_as_test
from web3 import Web3

from tests.contracts.test_invariants import DonationModel, LedgerMachine
from tests.ledger import MAX_AMOUNT, ZERO, advance_time, commitment, rid

pytestmark = pytest.mark.slow

PENDING, REJECTED, EXECUTED = 1, 2, 3
HOUR, DAY, WEEK = 3600, 86400, 7 * 86400
# A vote or an execution this close to a proposal's expiry could land on either side of
# it (the next block's timestamp is not known in advance): the machine skips it.
MARGIN = 60

# What the machine's steps did, over a whole run: the test checks that the runs reached
# the outcomes the invariants are about, so a generator gone wrong cannot pass vacuously.
SEEN: Counter[str] = Counter()


@dataclass
class GrantModel:
    campaign: bytes  # where the money went
    amount: int
    received: int = 0


@dataclass
class RuleModel:
    version: int
    threshold: int
    approvers: list[str]
    validity: int


@dataclass
class ProposalModel:
    campaign: bytes
    inputs: tuple[Any, ...]
    proposer: str
    rule: RuleModel
    expires_at: int
    approvals: set[str] = field(default_factory=set)
    status: int = PENDING


@dataclass
class ConfirmationModel:
    recipient: bytes
    amount: int
    confirmed: int = 0


class OrganisationsMachine(LedgerMachine):
    def __init__(self) -> None:
        super().__init__()
        led = self.ledger
        accounts = self.w3.eth.accounts
        self.approvers = list(accounts[4:8])
        self.recipients = {rid("recipient-1"): accounts[8], rid("recipient-2"): accounts[9]}
        for i, (recipient_id, account) in enumerate(self.recipients.items()):
            led.send(
                led.fn.registerRecipient(recipient_id, f"91350100M00000000{i}", f"Supplier {i}", account),
                led.admin,
            )
        self.grants: dict[bytes, GrantModel] = {}
        self.grant_sources: dict[bytes, bytes] = {}
        self.approval_rules: dict[bytes, RuleModel] = {}
        self.proposals: dict[bytes, ProposalModel] = {}
        self.confirmations: dict[bytes, ConfirmationModel] = {}  # by disbursement

    @initialize()
    def seed(self) -> None:
        """Money in every campaign and a two-of-three rule on campaign B from the first
        step, so that the steps that need them do not wait for luck."""
        led, model = self.ledger, self.model
        for campaign_id, campaign in model.campaigns.items():
            for amount in (1_000, 2_500, 4_000):
                donation_id = model.new_id("seed")
                led.send(
                    led.fn.recordDonation(led.donation(donation_id, amount, campaign_id)), campaign.operator
                )
                model.donations[donation_id] = DonationModel(campaign_id, amount)
                campaign.received += amount
                campaign.donations += 1
        campaign_b = model.campaigns[led.campaign_b]
        approvers = self.approvers[:3]
        # A week's validity: one or two ticks of two days leave the seed proposal open.
        led.send(led.fn.setApprovalRule(led.campaign_b, approvers, 2, WEEK), campaign_b.operator)
        self.approval_rules[led.campaign_b] = RuleModel(1, 2, approvers, WEEK)
        model.ruled.add(led.campaign_b)
        # A grant from A to B naming a recipient organisation, and a proposal at B.
        first_a = next(d for d, m in model.donations.items() if m.campaign == led.campaign_a)
        grant = (model.new_id("seed-grant"), led.campaign_a, 600, "CN-ORG", "grant", ZERO)
        grant += (led.campaign_b, sorted(self.recipients)[0], [(first_a, 600)])
        led.send(led.fn.disburse(grant), model.campaigns[led.campaign_a].operator)
        self.draw(led.campaign_a, 600, grant[8])
        self.record_destination(grant)
        first_b = next(d for d, m in model.donations.items() if m.campaign == led.campaign_b)
        proposal = (model.new_id("seed-proposal"), led.campaign_b, 700, "CN-ORG", "rice", ZERO, ZERO, ZERO)
        proposal += ([(first_b, 700)],)
        receipt = led.send(led.fn.proposeDisbursement(proposal), campaign_b.operator)
        expires_at = int(self.w3.eth.get_block(receipt["blockNumber"])["timestamp"]) + WEEK
        self.proposals[proposal[0]] = ProposalModel(
            led.campaign_b, proposal, campaign_b.operator, self.approval_rules[led.campaign_b], expires_at
        )
        # Approved in full, so that an execution can succeed from the first step.
        self.approve_fully(proposal[0])

    @rule(data=st.data(), really=st.integers(0, 15))
    def close(self, data: st.DataObject, really: int) -> None:
        """The base machine's closing, made rare: Hypothesis favours the first rule by
        name, and a closed campaign takes no grants."""
        if really == 15:
            super().close(data)

    @precondition(lambda self: self.model.donations)
    @rule(data=st.data(), really=st.integers(0, 15))
    def intruder(self, data: st.DataObject, really: int) -> None:
        """The base machine's intruder, made rare here: the base machine tests it."""
        if really == 15:
            super().intruder(data)

    # ----------------------------------------------------------- helpers

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def spendable(self, campaign_id: bytes) -> list[bytes]:
        return sorted(d for d, m in self.model.donations.items() if m.campaign == campaign_id and m.remaining)

    def allocations(self, data: st.DataObject, campaign_id: bytes) -> list[tuple[bytes, int]]:
        picks = data.draw(
            st.lists(st.sampled_from(self.spendable(campaign_id)), min_size=1, max_size=3, unique=True)
        )
        return [
            (d, data.draw(st.integers(1, self.model.donations[d].remaining), label="part")) for d in picks
        ]

    def destination_error(self, campaign_id: bytes, to_campaign: bytes, disbursement_id: bytes) -> Any:
        if to_campaign == ZERO:
            return None
        if to_campaign == campaign_id:
            return ("InvalidGrantRecipient", disbursement_id, to_campaign)
        currency = self.ledger.campaign_view(campaign_id)[1]
        if self.ledger.campaign_view(to_campaign)[1] != currency:
            return ("GrantCurrencyMismatch", campaign_id, to_campaign)
        return None

    def record_destination(self, inputs: tuple[Any, ...]) -> None:
        disbursement_id, _, amount, _, _, _, to_campaign, to_org, _ = inputs
        if to_campaign != ZERO:
            self.grants[disbursement_id] = GrantModel(to_campaign, amount)
        if to_org != ZERO:
            self.confirmations[disbursement_id] = ConfirmationModel(to_org, amount)

    def draw_inputs(self, data: st.DataObject, campaign_id: bytes) -> tuple[Any, ...]:
        allocations = self.allocations(data, campaign_id)
        currency = self.ledger.campaign_view(campaign_id)[1]
        fitting = [
            c
            for c in sorted(self.model.campaigns)
            if c != campaign_id and self.ledger.campaign_view(c)[1] == currency
        ]
        if fitting and not data.draw(st.booleans(), label="any destination"):
            to_campaign = data.draw(st.sampled_from([ZERO, *fitting, *fitting]), label="to campaign")
        else:
            to_campaign = data.draw(
                st.sampled_from([ZERO, *sorted(self.model.campaigns)]), label="to campaign"
            )
        to_org = data.draw(st.sampled_from([ZERO, *sorted(self.recipients)]), label="to organisation")
        return (
            self.model.new_id("disbursement"),
            campaign_id,
            sum(a for _, a in allocations),
            "CN-ORG",
            "school-meals",
            ZERO,
            to_campaign,
            to_org,
            allocations,
        )

    # ----------------------------------------------------------- grants

    @precondition(lambda self: any(self.spendable(c) for c in self.model.campaigns))
    @rule(data=st.data())
    def disburse_to(self, data: st.DataObject) -> None:
        """`disburse`: a grant to a campaign on the ledger and/or a named recipient."""
        led, model = self.ledger, self.model
        campaign_id = data.draw(st.sampled_from([c for c in sorted(model.campaigns) if self.spendable(c)]))
        campaign = model.campaigns[campaign_id]
        inputs = self.draw_inputs(data, campaign_id)
        call = led.fn.disburse(inputs)
        if campaign_id in model.ruled:
            return led.expect_error(call, campaign.operator, "ApprovalRequired", campaign_id)
        expected = self.destination_error(campaign_id, inputs[6], inputs[0]) or self.disbursement_error(
            campaign_id, inputs[2], inputs[8]
        )
        if expected:
            return led.expect_error(call, campaign.operator, *expected)
        led.send(call, campaign.operator)
        self.draw(campaign_id, inputs[2], inputs[8])
        self.record_destination(inputs)

    @precondition(lambda self: self.grants)
    @rule(data=st.data(), extra=st.sampled_from([0, 0, 1, -1]))
    def receive_grant(self, data: st.DataObject, extra: int) -> None:
        """The receiving charity records (part of) a grant, sometimes too much, or into
        the wrong campaign."""
        led, model = self.ledger, self.model
        source = data.draw(st.sampled_from(sorted(self.grants)), label="grant")
        grant = self.grants[source]
        campaign_id = grant.campaign
        if data.draw(st.booleans(), label="wrong campaign"):
            campaign_id = data.draw(st.sampled_from(sorted(model.campaigns)))
        campaign = model.campaigns[campaign_id]
        left = grant.amount - grant.received
        amount = max(0, data.draw(st.sampled_from([left, max(1, left // 2)]), label="amount") + extra)
        donation_id = model.new_id("grant-donation")
        donation = (
            donation_id,
            campaign_id,
            amount,
            commitment(source.hex()),
            b"grant".ljust(32, b"\0"),
            ZERO,
        )
        call = led.fn.recordGrantDonation(donation, source)
        if grant.campaign != campaign_id:
            return led.expect_error(call, campaign.operator, "GrantNotAddressed", source, campaign_id)
        if amount > left:
            return led.expect_error(call, campaign.operator, "GrantOverdrawn", source, left, amount)
        if campaign.closed:
            return led.expect_error(call, campaign.operator, "CampaignIsClosed", campaign_id)
        if amount == 0:
            return led.expect_error(call, campaign.operator, "InvalidAmount", 0, MAX_AMOUNT)
        led.send(call, campaign.operator)
        model.donations[donation_id] = DonationModel(campaign_id, amount)
        campaign.received += amount
        campaign.donations += 1
        grant.received += amount
        self.grant_sources[donation_id] = source
        SEEN["grant received"] += 1

    # -------------------------------------------------------- approvals

    @rule(
        data=st.data(),
        threshold=st.integers(0, 4),
        validity=st.sampled_from([HOUR, DAY, HOUR - 1]),
    )
    def set_rule(self, data: st.DataObject, threshold: int, validity: int) -> None:
        """A new rule; its approvers may include the charity's own operator (who may then
        approve others' proposals, never its own)."""
        led, model = self.ledger, self.model
        campaign_id = data.draw(st.sampled_from(sorted(model.campaigns)), label="campaign")
        campaign = model.campaigns[campaign_id]
        approvers = data.draw(
            st.lists(st.sampled_from([*self.approvers, campaign.operator]), min_size=0, max_size=4),
            label="approvers",
        )
        call = led.fn.setApprovalRule(campaign_id, approvers, threshold, validity)
        if not 0 < threshold <= len(approvers) or validity < HOUR or len(set(approvers)) != len(approvers):
            return led.expect_error(call, campaign.operator, "InvalidApprovalRule", campaign_id)
        led.send(call, campaign.operator)
        version = self.approval_rules[campaign_id].version + 1 if campaign_id in self.approval_rules else 1
        self.approval_rules[campaign_id] = RuleModel(version, threshold, approvers, validity)
        model.ruled.add(campaign_id)

    @precondition(lambda self: any(self.spendable(c) for c in self.model.campaigns))
    @rule(data=st.data())
    def propose(self, data: st.DataObject) -> None:
        led, model = self.ledger, self.model
        spendable = [c for c in sorted(model.campaigns) if self.spendable(c)]
        ruled = [c for c in spendable if c in model.ruled]
        if ruled and not data.draw(st.booleans(), label="any campaign"):
            campaign_id = data.draw(st.sampled_from(ruled))
        else:
            campaign_id = data.draw(st.sampled_from(spendable))
        campaign = model.campaigns[campaign_id]
        inputs = self.draw_inputs(data, campaign_id)
        call = led.fn.proposeDisbursement(inputs)
        if campaign_id not in self.approval_rules:
            return led.expect_error(call, campaign.operator, "NoApprovalRule", campaign_id)
        # Checked when proposed: the amount, then the destination; balances only when executed.
        expected = self.destination_error(campaign_id, inputs[6], inputs[0])
        if inputs[2] > MAX_AMOUNT:
            expected = ("InvalidAmount", inputs[2], MAX_AMOUNT)
        if expected:
            return led.expect_error(call, campaign.operator, *expected)
        receipt = led.send(call, campaign.operator)
        timestamp = int(self.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
        rule_now = self.approval_rules[campaign_id]
        self.proposals[inputs[0]] = ProposalModel(
            campaign_id, inputs, campaign.operator, rule_now, timestamp + rule_now.validity
        )

    def closed_error(self, proposal_id: bytes) -> Any:
        """ProposalNotPending or ProposalExpired, None if the proposal is open, or "skip"
        when the next block could land on either side of its expiry."""
        proposal = self.proposals[proposal_id]
        if proposal.status != PENDING:
            return ("ProposalNotPending", proposal_id, proposal.status)
        now = self.now()
        if abs(proposal.expires_at - now) < MARGIN:
            return "skip"
        if now > proposal.expires_at:
            return ("ProposalExpired", proposal_id, proposal.expires_at)
        return None

    @precondition(lambda self: self.proposals)
    @rule(data=st.data(), reject=st.integers(0, 4))
    def vote(self, data: st.DataObject, reject: int) -> None:
        """An approver, the proposer, the other charity's operator or a stranger approves
        or rejects a proposal, in any state."""
        led = self.ledger
        approve = reject != 4  # one vote in five rejects
        proposal_id = data.draw(st.sampled_from(sorted(self.proposals)), label="proposal")
        proposal = self.proposals[proposal_id]
        # Mostly an approver who may still approve (Hypothesis leans to False), sometimes anyone.
        eligible = [
            a for a in proposal.rule.approvers if a != proposal.proposer and a not in proposal.approvals
        ]
        if eligible and not data.draw(st.booleans(), label="anyone"):
            voter = data.draw(st.sampled_from(eligible), label="voter")
        else:
            voter = data.draw(
                st.sampled_from([*self.approvers, led.op_a, led.op_b, led.stranger]), label="voter"
            )
        call = (
            led.fn.approveDisbursement(proposal_id)
            if approve
            else led.fn.rejectDisbursement(proposal_id, "the invoice does not match")
        )
        expected = self.closed_error(proposal_id)
        if expected == "skip":
            return None
        is_approver = voter in proposal.rule.approvers
        if expected is None and approve:
            if not is_approver:
                expected = ("NotApprover", proposal_id, voter)
            elif voter == proposal.proposer:
                expected = ("ProposerCannotApprove", proposal_id, voter)
            elif voter in proposal.approvals:
                expected = ("AlreadyApproved", proposal_id, voter)
        if expected is None and not approve:
            operator = self.model.campaigns[proposal.campaign].operator
            if not is_approver and voter != operator:
                expected = ("NotApprover", proposal_id, voter)
        if expected:
            return led.expect_error(call, voter, *expected)
        led.send(call, voter)
        if approve:
            proposal.approvals.add(voter)
        else:
            proposal.status = REJECTED

    @precondition(lambda self: any(p.status == PENDING for p in self.proposals.values()))
    @rule(data=st.data())
    def approve_until_ready(self, data: st.DataObject) -> None:
        """Every eligible approver a pending proposal still needs approves it, so that
        sequences reach execution (and expiry and rejection after full approval) often."""
        pending = sorted(i for i, p in self.proposals.items() if p.status == PENDING)
        self.approve_fully(data.draw(st.sampled_from(pending), label="proposal"))

    def approve_fully(self, proposal_id: bytes) -> None:
        """As many eligible approvers approve as the proposal still needs, if it is open."""
        led, proposal = self.ledger, self.proposals[proposal_id]
        if self.closed_error(proposal_id) is not None:
            return
        eligible = [
            a for a in proposal.rule.approvers if a != proposal.proposer and a not in proposal.approvals
        ]
        for approver in eligible[: max(0, proposal.rule.threshold - len(proposal.approvals))]:
            led.send(led.fn.approveDisbursement(proposal_id), approver)
            proposal.approvals.add(approver)

    @precondition(lambda self: self.proposals)
    @rule(data=st.data(), tamper=st.sampled_from([None, None, None, "amount", "recipient", "allocation"]))
    def execute(self, data: st.DataObject, tamper: str | None) -> None:
        """Anyone executes a proposal in any state, sometimes with an input that is not
        the one proposed (the Allo attack is a rejected proposal executed anyway)."""
        led = self.ledger
        ready = sorted(
            i
            for i, p in self.proposals.items()
            if p.status == PENDING and len(p.approvals) >= p.rule.threshold and self.closed_error(i) is None
        )
        if ready and not data.draw(st.booleans(), label="any proposal"):
            proposal_id = data.draw(st.sampled_from(ready), label="proposal")
        else:
            proposal_id = data.draw(st.sampled_from(sorted(self.proposals)), label="proposal")
        proposal = self.proposals[proposal_id]
        sender = data.draw(st.sampled_from([led.stranger, led.op_a, self.approvers[0]]), label="sender")
        inputs = list(proposal.inputs)
        if tamper == "amount":
            inputs[2] += 1
        elif tamper == "recipient":
            inputs[3] = "CN-ORG-OTHER"
        elif tamper == "allocation":
            (first, part), *rest = inputs[8]
            inputs[8] = [(first, part + 1), *rest]
            inputs[2] += 1
        call = led.fn.executeDisbursement(tuple(inputs))
        expected = self.closed_error(proposal_id)
        if expected == "skip":
            return None
        if expected is None and len(proposal.approvals) < proposal.rule.threshold:
            expected = ("ApprovalsMissing", proposal_id, len(proposal.approvals), proposal.rule.threshold)
        if expected is None and tamper:
            proposed = Web3.keccak(self.encode(proposal.inputs))
            given = Web3.keccak(self.encode(tuple(inputs)))
            expected = ("ProposalMismatch", proposal_id, proposed, given)
        if expected is None:
            expected = self.disbursement_error(proposal.campaign, inputs[2], inputs[8])
        SEEN[f"execute: {expected[0] if expected else 'executed'}"] += 1
        if expected:
            return led.expect_error(call, sender, *expected)
        receipt = led.send(call, sender)
        # The disbursement is the proposer's, whoever sent it.
        assert [e["operator"] for e in led.events(receipt, "DisbursementRecorded")] == [proposal.proposer]
        proposal.status = EXECUTED
        self.draw(proposal.campaign, inputs[2], inputs[8])
        self.record_destination(proposal.inputs)

    def encode(self, inputs: tuple[Any, ...]) -> bytes:
        return abi_encode(
            ["(bytes32,bytes32,uint256,string,string,bytes32,bytes32,bytes32,(bytes32,uint256)[])"], [inputs]
        )

    @rule(seconds=st.sampled_from([10 * 60, 2 * HOUR, 2 * DAY]))
    def tick(self, seconds: int) -> None:
        advance_time(self.w3, seconds)

    # ------------------------------------------------------ confirmations

    @precondition(lambda self: self.confirmations)
    @rule(data=st.data(), extra=st.sampled_from([0, 0, 1]))
    def confirm(self, data: st.DataObject, extra: int) -> None:
        """The named recipient, or another one, confirms part or all of what is left."""
        led = self.ledger
        disbursement_id = data.draw(st.sampled_from(sorted(self.confirmations)), label="disbursement")
        expected_by = self.confirmations[disbursement_id]
        # Mostly the named recipient's own account (Hypothesis leans to False), sometimes any.
        account = self.recipients[expected_by.recipient]
        if data.draw(st.booleans(), label="anyone"):
            account = data.draw(st.sampled_from(sorted(self.recipients.values())), label="account")
        left = expected_by.amount - expected_by.confirmed
        amount = data.draw(st.sampled_from([left, max(1, left // 3)]), label="amount") + extra
        call = led.fn.confirmReceipt(
            self.model.new_id("confirmation"), disbursement_id, amount, "received, thank you", ZERO
        )
        if self.recipients[expected_by.recipient] != account:
            return led.expect_error(call, account, "NotRecipient", disbursement_id, account)
        if amount == 0:
            return led.expect_error(call, account, "InvalidAmount", 0, MAX_AMOUNT)
        if amount > left:
            return led.expect_error(
                call, account, "ConfirmationExceedsDisbursement", disbursement_id, left, amount
            )
        led.send(call, account)
        SEEN["confirmed"] += 1
        expected_by.confirmed += amount

    # ------------------------------------------------------ invariants

    @invariant()
    def grants_never_receive_more_than_was_granted(self) -> None:
        for disbursement_id, grant in self.grants.items():
            to_campaign, received = self.ledger.fn.grantOf(disbursement_id).call()
            assert (to_campaign, received) == (grant.campaign, grant.received)
            assert received <= grant.amount
        for donation_id, source in self.grant_sources.items():
            assert self.ledger.fn.grantSourceOf(donation_id).call() == source

    @invariant()
    def rules_match_the_model(self) -> None:
        for campaign_id, rule_model in self.approval_rules.items():
            version, threshold, count, validity = self.ledger.fn.approvalRuleOf(campaign_id).call()
            assert (version, threshold, count, validity) == (
                rule_model.version,
                rule_model.threshold,
                len(rule_model.approvers),
                rule_model.validity,
            )

    @invariant()
    def no_disbursement_counts_without_its_approvals(self) -> None:
        led = self.ledger
        for proposal_id, proposal in self.proposals.items():
            view = led.fn.proposalOf(proposal_id).call()
            _, proposer, _, version, threshold, approvals, expires_at, status = view
            assert (proposer, version, threshold, approvals, expires_at, status) == (
                proposal.proposer,
                proposal.rule.version,
                proposal.rule.threshold,
                len(proposal.approvals),
                proposal.expires_at,
                proposal.status,
            )
            for approver in {*proposal.rule.approvers, proposal.proposer}:
                assert led.fn.hasApproved(proposal_id, approver).call() == (approver in proposal.approvals)
            if proposal.status == EXECUTED:
                # Its disbursement exists, with threshold distinct approvers of the rule it
                # was proposed under, none of them the proposer.
                assert led.fn.disbursementOf(proposal_id).call()[1] == proposal.inputs[2]
                assert len(proposal.approvals) >= proposal.rule.threshold
                assert proposal.approvals <= set(proposal.rule.approvers)
                assert proposal.proposer not in proposal.approvals
            else:
                led.expect_view_error(led.fn.disbursementOf(proposal_id), "DisbursementNotFound", proposal_id)

    @invariant()
    def confirmations_never_exceed_their_disbursement(self) -> None:
        for disbursement_id, confirmation in self.confirmations.items():
            recipient, confirmed = self.ledger.fn.recipientOf(disbursement_id).call()
            assert (recipient, confirmed) == (confirmation.recipient, confirmation.confirmed)
            assert confirmed <= confirmation.amount


def test_money_across_organisations_holds_under_random_sequences(clock_w3: Web3) -> None:
    machine = type("Machine", (OrganisationsMachine,), {"w3": clock_w3})
    SEEN.clear()
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=6,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    print(dict(SEEN))
    for outcome in ("execute: executed", "grant received", "confirmed"):
        assert SEEN[outcome], f"no step reached {outcome!r}: {dict(SEEN)}"
    # And at least one execution refused. Which refusals a run meets depends on its draws
    # (under CI Hypothesis derandomizes, and one run met only ProposalNotPending); each
    # refusal has its own deterministic test in tests/contracts/test_approvals.py.
    refusals = [k for k in SEEN if k.startswith("execute: ") and k != "execute: executed"]
    assert refusals, f"no execution was refused: {dict(SEEN)}"
