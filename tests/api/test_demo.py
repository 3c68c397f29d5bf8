"""`ledger dev --demo` loads a small, realistic ledger through the real write path."""

from __future__ import annotations

from sqlalchemy import func, select

from indexer import models as m
from ledger_api.core import ids
from ledger_api.demo import load_demo
from tests.api.service import Service


def test_the_demo_loads_charities_campaigns_donations_and_evidenced_disbursements(
    embedded_service: Service,
) -> None:
    runtime = embedded_service.runtime
    lines: list[str] = []
    made = load_demo(runtime, echo=lines.append)
    assert len(made["charities"]) == 2
    donations = made["donations"]
    assert len(donations) >= 36 and len({d["id"] for d in donations}) == len(donations)
    # Every donation is on chain with the amount the demo chose.
    for donation in donations:
        view = runtime.contract.functions.donationOf(ids.to_bytes32(donation["id"])).call()
        assert view[1] == donation["amount"]
    runtime.indexer.indexer.sync()  # type: ignore[union-attr]
    with runtime.engine.connect() as connection:
        counts = {
            model.__tablename__: connection.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (m.Charity, m.Campaign, m.Donation, m.Disbursement, m.Evidence, m.Refund)
        }
        allocated = connection.execute(select(func.sum(m.Allocation.amount))).scalar_one()
    assert counts == {
        "charities": 2,
        "campaigns": 3,
        "donations": len(donations),
        "disbursements": 5,
        "evidence": 4,
        "refunds": 1,
    }
    assert allocated == 180_000 + 95_000 + 60_000 + 250_000 + donations_of_wells_last_half(made)
    # The charity keys it prints work.
    key = made["charities"][0]["key"]
    assert any(key in line for line in lines)
    campaign = made["charities"][0]["campaigns"][0]
    assert embedded_service.donate(campaign, key, 1_000)["amount"] == 1_000


def donations_of_wells_last_half(made: dict[str, object]) -> int:
    wells = made["charities"][1]["campaigns"][0]  # type: ignore[index]
    last = [d for d in made["donations"] if d["campaign_id"] == wells][-1]  # type: ignore[attr-defined]
    return int(last["amount"]) // 2
