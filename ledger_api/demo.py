"""Demo data for `ledger dev --demo`: two charities, their campaigns, donations from a
bank transfer, a WeChat Pay channel and cash boxes, disbursements (allocated first in,
first out, and one with explicit allocations) with evidence documents, a refund and a
closed campaign. Everything goes through the same services as the API, so the demo
exercises the real write path: simulation, operator signatures, the outbox, the mirror."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from typing import Any

from fastapi import UploadFile

from ledger_api.campaigns import service as campaigns_service
from ledger_api.campaigns.schemas import CampaignCreate
from ledger_api.charities import service as charities
from ledger_api.core import ids
from ledger_api.core.security import Principal
from ledger_api.disbursements import service as disbursements
from ledger_api.disbursements.schemas import AllocationIn, DisbursementCreate
from ledger_api.donations import service as donations
from ledger_api.donations.schemas import DonationCreate
from ledger_api.keys.service import issue_key
from ledger_api.runtime import Runtime

DEMO = Principal("demo", "admin")

CHARITIES: list[dict[str, Any]] = [
    {
        "name": "Sunrise Children's Fund 朝阳儿童基金会",
        "campaigns": [
            ("Hot lunches for mountain schools in Nujiang, Yunnan 怒江山区学校午餐", "CNY", 50_000_000),
            ("Winter coats for boarding pupils 寄宿学生冬衣", "CNY", 8_000_000),
        ],
    },
    {
        "name": "Clear Water Initiative 清水行动",
        "campaigns": [("Village wells in Dingxi, Gansu 甘肃定西村井", "CNY", 120_000_000)],
    },
]


def _document(text: str, name: str) -> UploadFile:
    return UploadFile(file=io.BytesIO(text.encode("utf-8")), filename=name)


def _issue_key(runtime: Runtime, role: str, charity_hex: str | None) -> str:
    return issue_key(runtime.engine, role, charity_hex, "demo").key


def load_demo(
    runtime: Runtime,
    echo: Callable[[str], Any] = print,
    seed: int = 2026,
    base_url: str = "http://127.0.0.1:8000",
) -> dict[str, Any]:
    """Load the demo; returns what was made (charity keys, an auditor key, campaigns,
    donations with their receipt secrets, the donations it suggests tracing) and prints
    where to start: full addresses under `base_url`, so they can be opened as printed."""
    writes = runtime.writes
    assert writes is not None, "the demo writes: it needs a service with a keystore"
    rng = random.Random(seed)
    made: dict[str, Any] = {"charities": [], "donations": []}
    channels = ["bank-transfer", "wechat-pay", "alipay", "cash-box"]
    for charity in CHARITIES:
        body, _ = charities.register(writes, charity["name"], None)
        charity_id = body["id"]
        key = _issue_key(runtime, "charity", ids.to_hex(charity_id))
        campaigns = [
            campaigns_service.create(
                writes,
                DEMO,
                CampaignCreate(charity_id=charity_id, name=name, currency=currency, goal=goal),
                True,
            )[0]["id"]
            for name, currency, goal in charity["campaigns"]
        ]
        made["charities"].append(
            {"id": charity_id, "name": charity["name"], "key": key, "campaigns": campaigns}
        )
        for campaign_id in campaigns:
            items = [
                DonationCreate(
                    campaign_id=campaign_id,
                    amount=rng.choice([5_000, 10_000, 20_000, 50_000, 88_800, 100_000, 200_000]),
                    donor_reference=f"demo donor {rng.randrange(10**6)}",
                    channel=rng.choice(channels),
                )
                for _ in range(rng.randint(12, 20))
            ]
            recorded, _ = donations.record(writes, DEMO, items, True)
            for item, public in zip(items, recorded, strict=True):  # what the donor types
                public["donor_reference"] = item.donor_reference
            made["donations"].extend(recorded)

    lunches, coats = made["charities"][0]["campaigns"]
    wells = made["charities"][1]["campaigns"][0]
    plan = [
        (
            lunches,
            180_000,
            "CN-USCC-91530000MA6K2XXXX1",
            "Rice, vegetables and cooking oil for 4 schools, March",
        ),
        (lunches, 95_000, "CN-USCC-91533300MA6N8XXXX7", "Kitchen stoves for Bingzhongluo school"),
        (coats, 60_000, "CN-USCC-91110105MA01XXXX3P", "120 winter coats, sizes 130-160"),
        (wells, 250_000, "CN-USCC-91621100MA71XXXX5Q", "Drilling of well no. 1, Xiaoshan village"),
    ]
    # Automatic (first in, first out) allocation reads the mirror: each write above has
    # waited for the mirror to show it (the indexer runs while the demo loads).
    for campaign_id, amount, recipient, purpose in plan:
        created, _ = disbursements.record(
            writes,
            DEMO,
            DisbursementCreate(campaign_id=campaign_id, amount=amount, recipient=recipient, purpose=purpose),
            True,
        )
        invoice = _document(
            f"INVOICE\nPayee: {recipient}\nFor: {purpose}\nAmount: {amount / 100:.2f} CNY\n"
            f"Disbursement: {created['id']}\n",
            "invoice.txt",
        )
        target = disbursements.evidence_target(writes, DEMO, created["id"])
        disbursements.anchor(writes, target, [invoice], True)
    # One disbursement names its donations explicitly: the last donation of the wells campaign.
    last = [d for d in made["donations"] if d["campaign_id"] == wells][-1]
    explicit = DisbursementCreate(
        campaign_id=wells,
        amount=last["amount"] // 2,
        recipient="CN-USCC-91621100MA71XXXX5Q",
        purpose="Pump and pipes for well no. 1",
        allocations=[AllocationIn(donation_id=last["id"], amount=last["amount"] // 2)],
    )
    disbursements.record(writes, DEMO, explicit, True)
    # A donor asked for part of a gift back.
    refunded = [d for d in made["donations"] if d["campaign_id"] == coats][-1]
    donations.refund(
        writes, DEMO, refunded["id"], refunded["amount"] // 4, "donor asked for a partial refund", True
    )
    made["auditor_key"] = _issue_key(runtime, "auditor", None)
    lunch = next(d for d in made["donations"] if d["campaign_id"] == lunches)
    made["samples"] = [
        (lunch, "paid for school lunches (allocated first in, first out), with the invoice"),
        (refunded, "a quarter refunded to the donor"),
        (last, "half named by the pump-and-pipes disbursement, half not yet spent"),
    ]
    base = base_url.rstrip("/")
    echo("demo loaded:")
    for charity in made["charities"]:
        echo(f"  {charity['name']}  {base}/charities/{charity['id']}")
        echo(f"    charity key (records for {charity['id']}): {charity['key']}")
    echo(f"  auditor key (audit views of every charity): {made['auditor_key']}")
    echo(f"    curl -H 'Authorization: Bearer {made['auditor_key']}' {base}/v1/audit/trail")
    echo("  donations to trace (or paste an ID into the search box of the home page):")
    for donation, what in made["samples"]:
        echo(f"    {donation['id']}: {what}")
        echo(f"      trace:   {base}/donations/{donation['id']}")
        echo(f"      receipt: {base}/donations/{donation['id']}/receipt")
        echo(f"      receipt secret (the donor's proof of ownership): {donation['receipt_secret']}")
        echo(f"      donor reference (typed with the secret to prove it): {donation['donor_reference']}")
    echo(f"  from a terminal: .venv/bin/ledger trace {lunch['id']} --api {base}")
    return made
