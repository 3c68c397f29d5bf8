"""Random sequences of donations, refunds, disbursements (with random allocations) and
closures, checked after every step against a Python model of the ledger: for every
donation allocated + refunded <= amount, for every campaign disbursed <= received -
refunded, and every view function equals the model. Invalid steps must revert with the
exact error the model predicts and change nothing. Runs on eth-tester and on anvil."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3 import Web3

from ledger_api.chain.contract import deploy_ledger, ledger_contract
from tests.ledger import MAX_AMOUNT, ZERO, Ledger, rid

pytestmark = pytest.mark.slow

AMOUNTS = st.one_of(
    st.integers(1, 5_000), st.sampled_from([1, MAX_AMOUNT]), st.sampled_from([0, MAX_AMOUNT + 1])
)


@dataclass
class DonationModel:
    campaign: bytes
    amount: int
    allocated: int = 0
    refunded: int = 0

    @property
    def remaining(self) -> int:
        return self.amount - self.allocated - self.refunded


@dataclass
class CampaignModel:
    charity: bytes
    operator: str
    closed: bool = False
    received: int = 0
    refunded: int = 0
    disbursed: int = 0
    donations: int = 0
    disbursements: int = 0

    @property
    def available(self) -> int:
        return self.received - self.refunded - self.disbursed


@dataclass
class Model:
    campaigns: dict[bytes, CampaignModel] = field(default_factory=dict)
    donations: dict[bytes, DonationModel] = field(default_factory=dict)
    ruled: set[bytes] = field(default_factory=set)  # campaigns under an approval rule
    counter: int = 0

    def new_id(self, kind: str) -> bytes:
        self.counter += 1
        return rid(f"{kind}-{self.counter}")


class LedgerMachine(RuleBasedStateMachine):
    w3: Web3

    def __init__(self) -> None:
        super().__init__()
        deployment = deploy_ledger(self.w3, self.w3.eth.accounts[0])
        self.ledger = Ledger.setup(self.w3, ledger_contract(self.w3, deployment.address), deployment)
        led = self.ledger
        second = rid("campaign-a2")
        led.send(led.fn.createCampaign(second, led.charity_a, "A2", b"EUR", 10**9, ZERO), led.op_a)
        self.model = Model(
            campaigns={
                led.campaign_a: CampaignModel(led.charity_a, led.op_a),
                second: CampaignModel(led.charity_a, led.op_a),
                led.campaign_b: CampaignModel(led.charity_b, led.op_b),
            }
        )

    # ----------------------------------------------------------- rules

    @rule(data=st.data(), amounts=st.lists(AMOUNTS, min_size=1, max_size=4), batch=st.booleans())
    def donate(self, data: st.DataObject, amounts: list[int], batch: bool) -> None:
        led, model = self.ledger, self.model
        campaign_id = data.draw(st.sampled_from(sorted(model.campaigns)), label="campaign")
        campaign = model.campaigns[campaign_id]
        inputs = [led.donation(model.new_id("donation"), amount, campaign_id) for amount in amounts]
        if not batch:
            inputs = inputs[:1]
        call = led.fn.recordDonations(inputs) if batch else led.fn.recordDonation(inputs[0])
        for _, _, amount, *_ in inputs:
            if campaign.closed:
                return led.expect_error(call, campaign.operator, "CampaignIsClosed", campaign_id)
            if not 0 < amount <= MAX_AMOUNT:
                return led.expect_error(call, campaign.operator, "InvalidAmount", amount, MAX_AMOUNT)
        led.send(call, campaign.operator)
        for donation_id, _, amount, *_ in inputs:
            model.donations[donation_id] = DonationModel(campaign_id, amount)
            campaign.received += amount
            campaign.donations += 1

    @precondition(lambda self: self.model.donations)
    @rule(data=st.data(), amount=st.integers(0, 6_000))
    def refund(self, data: st.DataObject, amount: int) -> None:
        led, model = self.ledger, self.model
        donation_id = data.draw(st.sampled_from(sorted(model.donations)), label="donation")
        donation = model.donations[donation_id]
        if data.draw(st.booleans(), label="take all that is left") and donation.remaining:
            amount = donation.remaining
        campaign = model.campaigns[donation.campaign]
        call = led.fn.refundDonation(model.new_id("refund"), donation_id, amount, "donor asked")
        if amount == 0:
            return led.expect_error(call, campaign.operator, "InvalidAmount", 0, MAX_AMOUNT)
        if amount > donation.remaining:
            return led.expect_error(
                call, campaign.operator, "DonationOverdrawn", donation_id, donation.remaining, amount
            )
        led.send(call, campaign.operator)
        donation.refunded += amount
        campaign.refunded += amount

    @precondition(lambda self: self.model.donations)
    @rule(data=st.data(), extra=st.sampled_from([0, 0, 0, 1, -1]))
    def disburse(self, data: st.DataObject, extra: int) -> None:
        """Allocations drawn from any donation (other campaigns and repeats included),
        for any amount up to a little over what is left."""
        led, model = self.ledger, self.model
        campaign_id = data.draw(st.sampled_from(sorted(model.campaigns)), label="campaign")
        campaign = model.campaigns[campaign_id]
        own = sorted(d for d, m in model.donations.items() if m.campaign == campaign_id and m.remaining)
        anything = sorted(model.donations)
        picks = data.draw(
            st.lists(
                st.sampled_from(own)
                if own and data.draw(st.booleans(), label="own only")
                else st.sampled_from(anything),
                min_size=1,
                max_size=5,
            ),
            label="donations",
        )
        allocations = []
        for donation_id in picks:
            remaining = model.donations[donation_id].remaining
            amount = data.draw(st.one_of(st.just(remaining), st.integers(0, remaining + 2)), label="amount")
            allocations.append((donation_id, amount))
        total = sum(a for _, a in allocations)
        amount = max(0, total + extra)
        call = led.fn.recordDisbursement(
            model.new_id("disbursement"), campaign_id, amount, "CN-ORG", "food", ZERO, allocations
        )

        # A campaign under an approval rule takes no disbursement but through a proposal.
        if campaign_id in model.ruled:
            return led.expect_error(call, campaign.operator, "ApprovalRequired", campaign_id)
        expected = self.disbursement_error(campaign_id, amount, allocations)
        if expected:
            return led.expect_error(call, campaign.operator, *expected)
        led.send(call, campaign.operator)
        self.draw(campaign_id, amount, allocations)

    def disbursement_error(
        self, campaign_id: bytes, amount: int, allocations: list[tuple[bytes, int]]
    ) -> tuple[object, ...] | None:
        """The error the contract's disbursement checks give, in its order, or None."""
        model, campaign = self.model, self.model.campaigns[campaign_id]
        if not 0 < amount <= MAX_AMOUNT:
            return ("InvalidAmount", amount, MAX_AMOUNT)
        if amount > campaign.available:
            return ("CampaignOverdrawn", campaign_id, campaign.available, amount)
        seen: set[bytes] = set()
        for donation_id, part in allocations:
            donation = model.donations[donation_id]
            if donation_id in seen:
                return ("DuplicateAllocation", donation_id)
            if donation.campaign != campaign_id:
                return ("AllocationCampaignMismatch", donation_id, donation.campaign, campaign_id)
            if part == 0:
                return ("InvalidAmount", 0, MAX_AMOUNT)
            if part > donation.remaining:
                return ("DonationOverdrawn", donation_id, donation.remaining, part)
            seen.add(donation_id)
        total = sum(a for _, a in allocations)
        if total != amount:
            return ("AllocationSumMismatch", amount, total)
        return None

    def draw(self, campaign_id: bytes, amount: int, allocations: list[tuple[bytes, int]]) -> None:
        """A disbursement the contract accepted, in the model."""
        for donation_id, part in allocations:
            self.model.donations[donation_id].allocated += part
        campaign = self.model.campaigns[campaign_id]
        campaign.disbursed += amount
        campaign.disbursements += 1

    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        led, model = self.ledger, self.model
        campaign_id = data.draw(st.sampled_from(sorted(model.campaigns)), label="campaign")
        campaign = model.campaigns[campaign_id]
        if campaign.closed:
            return led.expect_error(
                led.fn.closeCampaign(campaign_id), campaign.operator, "CampaignIsClosed", campaign_id
            )
        led.send(led.fn.closeCampaign(campaign_id), campaign.operator)
        campaign.closed = True

    @precondition(lambda self: self.model.donations)
    @rule(data=st.data())
    def intruder(self, data: st.DataObject) -> None:
        """The other charity's operator and a stranger can touch nothing of a campaign."""
        led, model = self.ledger, self.model
        donation_id = data.draw(st.sampled_from(sorted(model.donations)), label="donation")
        campaign = model.campaigns[model.donations[donation_id].campaign]
        intruder = data.draw(
            st.sampled_from([led.stranger, led.op_b if campaign.operator == led.op_a else led.op_a])
        )
        call = led.fn.refundDonation(model.new_id("refund"), donation_id, 1, "x")
        led.expect_error(call, intruder, "NotCharityOperator", campaign.charity, intruder)

    # ------------------------------------------------------ invariants

    @invariant()
    def donations_match_the_model_and_never_overdraw(self) -> None:
        for donation_id, model in self.model.donations.items():
            view = self.ledger.donation_view(donation_id)
            assert view == (model.campaign, model.amount, model.allocated, model.refunded, model.remaining)
            assert view[2] + view[3] <= view[1]

    @invariant()
    def campaigns_match_the_model_and_never_pay_out_more_than_they_hold(self) -> None:
        for campaign_id, model in self.model.campaigns.items():
            charity, _, closed, _, received, refunded, disbursed, available, donations, disbursements = (
                self.ledger.campaign_view(campaign_id)
            )
            assert (charity, closed) == (model.charity, model.closed)
            assert (received, refunded, disbursed, available) == (
                model.received,
                model.refunded,
                model.disbursed,
                model.available,
            )
            assert (donations, disbursements) == (model.donations, model.disbursements)
            assert disbursed <= received - refunded


def test_ledger_rules_hold_under_random_sequences(w3: Web3) -> None:
    machine = type("Machine", (LedgerMachine,), {"w3": w3})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=20,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
