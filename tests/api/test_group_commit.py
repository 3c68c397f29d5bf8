"""Group commit (transactions/coalesce.py): single donations arriving together for one
charity share one recordDonations transaction, and still each gets its own answer.

Over HTTP on a real anvil node, with the service's real writer, outbox and indexer:
random mixes of good donations (two charities) and bad ones (a closed campaign) sent at
once; a group the contract refuses as a whole, split down to the bad request; and a group
that reverts when mined (its campaign closed between the checks and the block), whose good
request is then sent alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger_api.chain.abi import Call, encode
from ledger_api.core import ids
from ledger_api.core.errors import ContractRejected
from ledger_api.donations.schemas import DonationCreate
from ledger_api.donations.service import _prepare, batch_call
from ledger_api.transactions.coalesce import GroupCommit, Ticket
from ledger_api.transactions.service import Step
from tests.api.processes import concurrently, donation_count, donations_recorded
from tests.api.service import Service

CONTRACT_REJECTED = "urn:charity-ledger:problem:contract-rejected"


class Ledger:
    """Two charities: the first with an open and a closed campaign, the second with one."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.charity, self.key = service.charity("First")
        self.open = service.campaign(self.charity, self.key)
        self.closed = service.campaign(self.charity, self.key)
        closing = service.post(f"/v1/campaigns/{self.closed}/close", self.key)
        assert closing.status_code == 201, closing.text
        other, self.other_key = service.charity("Second")
        self.other = service.campaign(other, self.other_key)
        self.amount = 1_000

    def amounts(self, count: int) -> list[int]:
        """`count` amounts not used before in the module (each donation told by its own)."""
        self.amount += count
        return list(range(self.amount - count + 1, self.amount + 1))

    def send(self, kind: str, amount: int) -> tuple[str, int, httpx.Response]:
        campaign, key = {
            "good": (self.open, self.key),
            "closed": (self.closed, self.key),
            "other": (self.other, self.other_key),
        }[kind]
        response = httpx.post(
            f"{self.service.base}/v1/donations",
            headers={"Authorization": f"Bearer {key}"},
            json={"campaign_id": campaign, "amount": amount, "donor_reference": f"d{amount}"},
            timeout=60,
        )
        return campaign, amount, response


@pytest.fixture
def ledger(service: Service) -> Iterator[Ledger]:
    yield Ledger(service)


@pytest.mark.anvil
def test_a_lone_donation_is_not_held_back(ledger: Ledger) -> None:
    """One request alone goes out after the window, as its own recordDonation."""
    _campaign, _amount, response = ledger.send("good", ledger.amounts(1)[0])
    assert response.status_code == 201, response.text
    w3 = ledger.service.runtime.w3
    sent = w3.eth.get_transaction(response.json()["transaction"]["tx_hash"])
    assert bytes(sent["input"])[:4] == encode("recordDonation", *_placeholder_row()).data[:4]


def _placeholder_row() -> tuple[Any, ...]:
    return ((b"\1" * 32, b"\2" * 32, 1, b"\3" * 32, b"\0" * 32, b"\0" * 32),)


@pytest.mark.anvil
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(kinds=st.lists(st.sampled_from(["good", "closed", "other"]), min_size=1, max_size=20))
def test_concurrent_good_and_bad_donations_each_get_their_own_answer(
    ledger: Ledger, kinds: list[str]
) -> None:
    check_mix(ledger, kinds)


def test_the_embedded_chain_groups_donations_the_same_way(embedded_service: Service) -> None:
    """`ledger dev`'s default chain (eth-tester, serialised): the same answers."""
    check_mix(
        Ledger(embedded_service), ["good", "closed", "good", "other", "good", "closed", "good", "other"]
    )


def check_mix(ledger: Ledger, kinds: list[str]) -> None:
    """Send a donation of each kind at once; check every answer and the chain."""
    service = ledger.service
    w3, address = service.runtime.w3, service.runtime.deployment.address
    before = {c: donation_count(w3, address, c) for c in (ledger.open, ledger.other, ledger.closed)}
    sizes_before = len(_group_commit(service).sizes)

    amounts = ledger.amounts(len(kinds))
    results = concurrently(
        [
            lambda kind=kind, amount=amount: ledger.send(kind, amount)
            for kind, amount in zip(kinds, amounts, strict=True)
        ]
    )

    answered: dict[str, list[str]] = {}  # tx hash -> the donation IDs answered with it
    for kind, result in zip(kinds, results, strict=True):
        assert not isinstance(result, Exception), result
        campaign, amount, response = result
        if kind == "closed":  # its own 409, naming the contract's error; nothing recorded
            assert response.status_code == 409, response.text
            assert response.json()["type"] == CONTRACT_REJECTED
            assert response.json()["error"]["name"] == "CampaignIsClosed"
            continue
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["campaign_id"], body["amount"]) == (campaign, amount)  # its own answer
        assert body["transaction"]["status"] == "mined"
        events = donations_recorded(w3, address, body["id"])
        assert len(events) == 1  # exactly once
        assert events[0]["args"]["amount"] == amount
        assert "0x" + bytes(events[0]["transactionHash"]).hex() == body["transaction"]["tx_hash"]
        answered.setdefault(body["transaction"]["tx_hash"], []).append(body["id"])
        # Read-your-writes: the 201 is readable at once.
        assert service.get(f"/v1/donations/{body['id']}").status_code == 200

    # The chain holds exactly what was answered: every transaction's donations are the
    # answers naming it, and each campaign gained one donation per 201.
    contract = service.contract
    for tx_hash, donation_ids in answered.items():
        receipt = w3.eth.get_transaction_receipt(tx_hash)
        logged = [
            ids.from_bytes32(e["args"]["donationId"])
            for e in contract.events.DonationRecorded().process_receipt(receipt)
        ]
        assert sorted(logged) == sorted(donation_ids)
    gained = {c: donation_count(w3, address, c) - before[c] for c in before}
    assert gained == {
        ledger.open: kinds.count("good"),
        ledger.other: kinds.count("other"),
        ledger.closed: 0,
    }
    # Every group sent is one transaction of one charity.
    sent = _group_commit(service).sizes[sizes_before:]
    assert sum(sent) == len(kinds) - kinds.count("closed") == sum(len(v) for v in answered.values())


def _group_commit(service: Service) -> GroupCommit:
    writes = service.runtime.writes
    assert writes is not None and writes.group_commit is not None
    return writes.group_commit


def _ticket(service: Service, campaign: str, amount: int) -> tuple[dict[str, Any], Ticket]:
    item = DonationCreate(campaign_id=campaign, amount=amount, donor_reference=f"d{amount}")
    public, row = _prepare(item, ids.to_bytes32(campaign, "campaign"))
    return public, Ticket(row=row, ids=[public["id"]])


@pytest.mark.anvil
def test_a_group_the_contract_refuses_is_split_down_to_the_bad_request(ledger: Ledger) -> None:
    """Rows joined without their own check (as if the campaign closed after it): the
    group of eight is refused whole, halved, and halved again around the bad row."""
    service = ledger.service
    writes = service.runtime.writes
    assert writes is not None
    operator = writes.find_charity(writes.charity_of_campaign(ledger.open))
    group_commit = GroupCommit(writes.writer.simulate, writes.writer.submit, window=5.0, cap=8, max_gas=10**8)
    plan = [ledger.open] * 4 + [ledger.closed] + [ledger.open] * 3
    tickets = [_ticket(service, campaign, 2_000 + i) for i, campaign in enumerate(plan)]
    for _public, ticket in tickets:
        group_commit.join(operator, writes.charity_of_campaign(ledger.open), "donation", batch_call, ticket)

    for _public, ticket in tickets:
        ticket._placed.wait(60)  # every request placed: sent, or refused
    assert group_commit.sizes == [4, 1, 2]  # [4 good] [bad, good] -> [bad] [good]; [2 good]
    w3, address = service.runtime.w3, service.runtime.deployment.address
    for (public, ticket), campaign in zip(tickets, plan, strict=True):
        if campaign == ledger.closed:
            with pytest.raises(ContractRejected) as refused:
                ticket.submitted()
            assert refused.value.extra["error"]["name"] == "CampaignIsClosed"
            continue
        group = ticket.submitted()
        assert group.state is not None
        assert writes.writer.wait(group.state.id, 30).status == "mined"
        assert len(donations_recorded(w3, address, public["id"])) == 1


@pytest.mark.anvil
def test_a_group_that_reverts_when_mined_sends_its_good_request_alone(ledger: Ledger) -> None:
    """Both requests pass their own check; then, before their group's transaction, the
    charity closes one campaign (its transaction takes the nonce before the group's), so
    the group reverts when mined and records nothing. Each request is retried alone: the
    good one is recorded once, in a transaction of its own; the other gets its own 409."""
    service = ledger.service
    writes = service.runtime.writes
    assert writes is not None
    second = service.campaign(ledger.charity, ledger.key)
    charity_hex = writes.charity_of_campaign(second)
    operator = writes.find_charity(charity_hex)
    closed_once = threading.Event()

    def estimate_then_close(signer: str, call: Call) -> int:
        gas = writes.writer.simulate(signer, call)
        if not closed_once.is_set():
            closed_once.set()
            close = Step(encode("closeCampaign", ids.to_bytes32(second, "campaign")), {"kind": "campaign"})
            writes.submit(operator, charity_hex, [close], wait=True)
        return gas

    original = writes.group_commit
    writes.group_commit = GroupCommit(
        estimate_then_close, writes.writer.submit, window=5.0, cap=2, max_gas=10**8
    )
    try:
        results = concurrently(
            [
                lambda campaign=campaign, amount=amount: httpx.post(
                    f"{service.base}/v1/donations",
                    headers={"Authorization": f"Bearer {ledger.key}"},
                    json={"campaign_id": campaign, "amount": amount, "donor_reference": "d"},
                    timeout=60,
                )
                for campaign, amount in ((ledger.open, 3_001), (second, 3_002))
            ]
        )
    finally:
        writes.group_commit = original

    good, bad = results
    assert good.status_code == 201, good.text
    assert bad.status_code == 409, bad.text
    assert bad.json()["error"]["name"] == "CampaignIsClosed"
    w3, address = service.runtime.w3, service.runtime.deployment.address
    events = donations_recorded(w3, address, good.json()["id"])
    assert len(events) == 1 and events[0]["args"]["amount"] == 3_001
    # Sent alone after the group's transaction failed: a recordDonation of its own.
    assert good.json()["transaction"]["tx_hash"] == "0x" + bytes(events[0]["transactionHash"]).hex()
    sent = w3.eth.get_transaction(good.json()["transaction"]["tx_hash"])
    assert bytes(sent["input"])[:4] == encode("recordDonation", *_placeholder_row()).data[:4]
    assert donation_count(w3, address, second) == 0
