"""Demo data for `ledger dev --demo`: two charities, their campaigns, donations from a
bank transfer, a WeChat Pay channel and cash boxes, disbursements (allocated first in,
first out, and one with explicit allocations) with evidence documents, a refund and a
closed campaign; and a third charity in self-custody, whose key lives in a keystore file
outside the platform's (var/demo-self-custody-key.json): its campaign and donations are
prepared by the service, signed with that key here and relayed. Everything goes through
the same services as the API, so the demo exercises the real write path: simulation,
operator signatures, the relay, the outbox, the mirror."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi import UploadFile

from ledger_api.approvals import service as approvals
from ledger_api.approvals.schemas import ApproverCreate, RuleSet
from ledger_api.campaigns import service as campaigns_service
from ledger_api.campaigns.schemas import CampaignCreate
from ledger_api.chain import signed_calls
from ledger_api.chain.writer import TxState
from ledger_api.charities import service as charities
from ledger_api.core import ids
from ledger_api.core.hexes import hex0x, unhex
from ledger_api.core.security import Principal
from ledger_api.disbursements import service as disbursements
from ledger_api.disbursements.schemas import AllocationIn, DisbursementCreate
from ledger_api.disclosure import calendar as disclosure_calendar
from ledger_api.disclosure import rules as disclosure_rules
from ledger_api.disclosure import service as disclosure
from ledger_api.disclosure.schemas import CorrectionRecord, DisposalRecord, EndDateSet, ReportPublish
from ledger_api.donations import service as donations
from ledger_api.donations.schemas import DonationCreate
from ledger_api.imports import sample
from ledger_api.keys.service import issue_key
from ledger_api.recipients import service as recipients
from ledger_api.runtime import Runtime
from ledger_api.transactions import relay
from ledger_api.transactions.service import Writes

DEMO = Principal("demo", "admin")


def _encrypted_key_file(path: Path) -> tuple[LocalAccount, str]:
    """A new account, its key encrypted into `path` (mode 0600) under a new passphrase."""
    account: LocalAccount = Account.create()
    passphrase = secrets.token_urlsafe(12)
    encrypted = Account.encrypt(account.key, passphrase, kdf="scrypt", iterations=2**12)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(encrypted, handle)
    return account, passphrase


def _across_organisations(runtime: Runtime, writes: Writes, key_file: Path) -> dict[str, Any]:
    """Money through three organisations (issue 16's story): a foundation's donor, a grant
    to a county education bureau whose payouts need two approvals, a grant on to a school,
    which pays a registered rice supplier that confirms receipt with its own key. One more
    bureau payout waits for its approvals, and one school payout for its confirmation, for
    the approver's console and `ledger recipient confirm` to try."""
    orgs = []
    for name, campaign, goal in (
        ("Yunnan Rural Education Foundation 云南乡村教育基金会", "Rural schools 2027 乡村学校", 30_000_000),
        ("Lanping County Education Bureau 兰坪县教育局", "School meals in Lanping 兰坪学校午餐", 10_000_000),
        ("Jinding No. 2 Primary School 金顶二小", "Pupils' lunches 学生午餐", 2_000_000),
    ):
        body, _ = charities.register(writes, name, None)
        made_campaign = campaigns_service.create(
            writes,
            DEMO,
            CampaignCreate(charity_id=body["id"], name=campaign, currency="CNY", goal=goal),
            True,
        )[0]["id"]
        key = _issue_key(runtime, "charity", ids.to_hex(body["id"]))
        orgs.append({"id": body["id"], "name": name, "key": key, "campaign": made_campaign})
    foundation, bureau, school = orgs
    gifts = [
        DonationCreate(campaign_id=foundation["campaign"], amount=amount, donor_reference=reference)
        for amount, reference in ((100_000, "demo donor of the foundation"), (250_000, "demo donor 2"))
    ]
    recorded, _ = donations.record(writes, DEMO, gifts, True)
    donor = recorded[0] | {"donor_reference": gifts[0].donor_reference}

    def pay(campaign: str, amount: int, recipient: str, purpose: str, **to: Any) -> dict[str, Any]:
        body = DisbursementCreate(
            campaign_id=campaign, amount=amount, recipient=recipient, purpose=purpose, **to
        )
        return disbursements.record(writes, DEMO, body, True)[0]

    def received(org: dict[str, Any], grant: dict[str, Any]) -> None:
        item = DonationCreate(
            campaign_id=org["campaign"], amount=grant["amount"], source_disbursement_id=grant["id"]
        )
        donations.record(writes, DEMO, [item], True)

    grant = pay(
        foundation["campaign"],
        300_000,
        bureau["name"],
        "School meals grant, spring term",
        recipient_campaign_id=bureau["campaign"],
    )
    received(bureau, grant)
    # The bureau's payouts need two approvals: its finance officer and a parents' representative.
    approvers = []
    for label in ("Finance officer 财务科长", "Parents' representative 家长代表"):
        row, issued = approvals.register_approver(
            writes, DEMO, ids.to_hex(bureau["id"]), ApproverCreate(label=label)
        )
        approvers.append({"label": label, "account": row.account, "key": issued.key})
    approvals.set_rule(
        writes,
        DEMO,
        bureau["campaign"],
        RuleSet(approvers=[a["account"] for a in approvers], threshold=2),
        True,
    )
    onward = pay(
        bureau["campaign"],
        200_000,
        school["name"],
        "Lunches at Jinding No. 2, March to June",
        recipient_campaign_id=school["campaign"],
    )
    for approver in approvers:
        principal = Principal(
            "demo-approver", "approver", ids.to_hex(bureau["id"]), account=approver["account"]
        )
        approvals.vote(writes, principal, onward["id"], None, True)
    waiting = pay(
        bureau["campaign"], 40_000, "Lanping Kitchen Equipment Co.", "Two rice cookers for Tuoluo school"
    )
    received(school, onward)
    # The school pays a registered supplier, which confirms with its own key.
    supplier_account, passphrase = _encrypted_key_file(key_file)
    supplier, _ = recipients.register(
        writes, SUPPLIER_USCC, "Lanping Grain Co-operative 兰坪粮油合作社", supplier_account.address
    )
    paid = []
    for amount, purpose in ((120_000, "Rice and cooking oil, March"), (50_000, "Vegetables, March")):
        made = pay(
            school["campaign"], amount, "Lanping Grain Co-operative", purpose, recipient_org_id=supplier["id"]
        )
        target = disbursements.evidence_target(writes, DEMO, made["id"])
        invoice = _document(f"INVOICE\nFor: {purpose}\nAmount: {amount / 100:.2f} CNY\n", "invoice.txt")
        disbursements.anchor(writes, target, [invoice], True)
        paid.append(made)
    deployment = runtime.deployment
    call = signed_calls.build(
        supplier_account.address,
        "confirmReceipt",
        ids.to_bytes32(ids.new("confirmation")),
        ids.to_bytes32(paid[0]["id"]),
        paid[0]["amount"],
        "Received CNY 1,200.00 for rice and cooking oil, March",
        bytes(32),
        deadline=int(time.time()) + 600,
    )
    signature = signed_calls.sign(call, deployment.chain_id, deployment.address, supplier_account)
    message = signed_calls.typed_data(call, deployment.chain_id, deployment.address)["message"]
    relay.relay_recipient_call(writes, message, hex0x(signature), True)
    return {
        "charities": orgs,
        "donor": donor,
        "approvers": approvers,
        "waiting_proposal": waiting["id"],
        "unconfirmed": paid[1],
        "supplier": {"id": supplier["id"], "key_file": str(key_file), "passphrase": passphrase},
    }


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


def _disclosures(runtime: Runtime, writes: Writes, lunches: str, coats: str, wells: str) -> dict[str, Any]:
    """Issue 17's disclosure records: the school lunches run nine months and have published
    one quarterly report; the winter coats ended today, closed, with what remained kept
    under a stated rule; the wells' end date was set, then moved with its reason."""
    ruleset = disclosure_rules.load(runtime.settings.disclosure_rules)
    today = datetime.now(UTC).astimezone(ruleset.zone).date()
    made: dict[str, Any] = {
        "rules": ruleset.id,
        "as_of": disclosure_calendar.add_months(today, 4).isoformat(),
    }
    for campaign, ends_on in ((lunches, disclosure_calendar.add_months(today, 9)), (coats, today)):
        disclosure.set_end(writes, DEMO, ruleset, campaign, EndDateSet(ends_on=ends_on), True)
    document = hashlib.sha256(b"School lunches: quarterly report, first quarter (demo)").hexdigest()
    report = ReportPublish(kind="periodic", period_start=today, period_end=today, document_sha256=document)
    made["report"] = disclosure.publish_report(writes, DEMO, ruleset, lunches, report, True)[0]["id"]
    campaigns_service.close(writes, DEMO, coats, True)
    available = int(writes.view("campaignOf", ids.to_bytes32(coats), missing="campaign")[7])
    kept = DisposalRecord(
        disposition="kept_under_rule",
        amount=available,
        rule="Charter art. 12: held for next winter's coats, reported with this campaign",
    )
    made["disposal"] = disclosure.record_disposal(writes, DEMO, coats, kept, True)[0]["id"]
    # A correction says why, always: the coats' disposal first stated a rule that was not the charter's.
    correction = CorrectionRecord(
        original_kind="disposal",
        original_id=made["disposal"],
        reason="The rule cited is charter art. 12 as amended in 2025, not the 2019 text",
    )
    charity = writes.charity_of_campaign(coats)
    made["correction"] = disclosure.record_correction(
        writes, DEMO, ids.from_bytes32(charity), correction, True
    )[0]["id"]
    first, moved = disclosure_calendar.add_months(today, 4), disclosure_calendar.add_months(today, 6)
    disclosure.set_end(writes, DEMO, ruleset, wells, EndDateSet(ends_on=first), True)
    later = EndDateSet(ends_on=moved, reason="Drilling season delayed by the county's permit")
    disclosure.set_end(writes, DEMO, ruleset, wells, later, True)
    return made


def _document(text: str, name: str) -> UploadFile:
    return UploadFile(file=io.BytesIO(text.encode("utf-8")), filename=name)


def _issue_key(runtime: Runtime, role: str, charity_hex: str | None) -> str:
    return issue_key(runtime.engine, role, charity_hex, "demo").key


SELF_CUSTODY_NAME = "Green Hills Rural Library 青山乡村图书馆"
SELF_CUSTODY_FILE = "demo-self-custody-key.json"
SUPPLIER_FILE = "demo-supplier-key.json"
SUPPLIER_USCC = "91533321MA6Q7D2X2D"  # a well-formed Unified Social Credit Code (its check character holds)
STATEMENT_FILE = "demo-statement.csv"


def _relay_signed(writes: Writes, account: LocalAccount, states: list[TxState]) -> None:
    """What the charity's own machine does with a prepared write: sign each call with its
    key, then hand the signatures to the relay (as POST /v1/relay does)."""
    calls = []
    for state in states:
        assert state.prepared is not None, "a self-custody write is prepared, not sent"
        typed = state.prepared["typed_data"]
        message, domain = typed["message"], typed["domain"]
        call = signed_calls.SignedCall(
            message["operator"], unhex(message["data"]), unhex(message["nonce"]), int(message["deadline"])
        )
        signature = signed_calls.sign(call, domain["chainId"], domain["verifyingContract"], account)
        calls.append((message, hex0x(signature)))
    relay.relay(writes, DEMO, calls, True)


def _self_custody_charity(
    runtime: Runtime, writes: Writes, rng: random.Random, key_file: Path
) -> dict[str, Any]:
    """A charity whose operator key is in `key_file` (encrypted, never in the platform's
    keystore): registered with custody "self", its campaign and donations signed with that
    key and relayed (the donations as one batch under one signature, and one alone)."""
    account, passphrase = _encrypted_key_file(key_file)
    body, _ = charities.register(writes, SELF_CUSTODY_NAME, None, account.address)
    charity_id = body["id"]
    prepare = replace(writes, mode="prepare")
    created, state = campaigns_service.create(
        prepare,
        DEMO,
        CampaignCreate(
            charity_id=charity_id,
            name="Books for village schools 乡村学校图书",
            currency="CNY",
            goal=6_000_000,
        ),
        True,
    )
    _relay_signed(writes, account, [state])
    campaign_id = created["id"]
    items = [
        DonationCreate(
            campaign_id=campaign_id,
            amount=rng.choice([3_000, 10_000, 30_000, 66_600]),
            donor_reference=f"demo reader {rng.randrange(10**6)}",
            channel="bank-transfer",
        )
        for _ in range(8)
    ]
    batch, states = donations.record(prepare, DEMO, items, True)
    _relay_signed(writes, account, states)
    single, states = donations.record(prepare, DEMO, items[:1], True)
    _relay_signed(writes, account, states)
    key = _issue_key(runtime, "charity", ids.to_hex(charity_id))
    return {
        "id": charity_id,
        "name": SELF_CUSTODY_NAME,
        "key": key,
        "operator": account.address,
        "campaigns": [campaign_id],
        "donations": batch + single,
        "key_file": str(key_file),
        "passphrase": passphrase,
    }


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
    made["disclosure"] = _disclosures(runtime, writes, lunches, coats, wells)
    own = _self_custody_charity(
        runtime, writes, rng, runtime.settings.keystore_path.parent / SELF_CUSTODY_FILE
    )
    made["self_custody"] = own
    made["organisations"] = _across_organisations(
        runtime, writes, runtime.settings.keystore_path.parent / SUPPLIER_FILE
    )
    made["auditor_key"] = _issue_key(runtime, "auditor", None)
    # A month of a bank statement for a bookkeeper to try the console's import with.
    made["statement"] = runtime.settings.keystore_path.parent / STATEMENT_FILE
    made["statement"].write_bytes(sample.statement(30, prefix="DEMO"))
    lunch = next(d for d in made["donations"] if d["campaign_id"] == lunches)
    made["samples"] = [
        (lunch, "paid for school lunches (allocated first in, first out), with the invoice"),
        (refunded, "a quarter refunded to the donor"),
        (last, "half named by the pump-and-pipes disbursement, half not yet spent"),
    ]
    base = base_url.rstrip("/")
    echo("demo loaded:")
    echo(f"  charity staff sign in at {base}/console with their charity's key (below)")
    echo(f"    a bank statement to import there (Bank statements; GB18030, 30 gifts): {made['statement']}")
    for charity in made["charities"]:
        echo(f"  {charity['name']}  {base}/charities/{charity['id']}")
        echo(f"    charity key (records for {charity['id']}): {charity['key']}")
    echo(f"  auditor key (audit views of every charity): {made['auditor_key']}")
    echo(f"    curl -H 'Authorization: Bearer {made['auditor_key']}' {base}/v1/audit/trail")
    echo("    which campaigns are late with their disclosures (rule set cn-mca-81), e.g. next spring:")
    as_of, auditor = made["disclosure"]["as_of"], made["auditor_key"]
    echo(f"    .venv/bin/ledger disclosure due --all --as-of {as_of} --api {base} --key {auditor}")
    echo("  donations to trace (or paste an ID into the search box of the home page):")
    for donation, what in made["samples"]:
        echo(f"    {donation['id']}: {what}")
        echo(f"      trace:   {base}/donations/{donation['id']}")
        echo(f"      receipt: {base}/donations/{donation['id']}/receipt")
        echo(f"      receipt secret (the donor's proof of ownership): {donation['receipt_secret']}")
        echo(f"      donor reference (typed with the secret to prove it): {donation['donor_reference']}")
    echo(f"  from a terminal: .venv/bin/ledger trace {lunch['id']} --api {base}")
    echo(f"  {own['name']} holds its own key (self-custody)  {base}/charities/{own['id']}")
    echo(f"    its operator key, encrypted, outside the platform's keystore: {own['key_file']}")
    echo(f"    passphrase of that file (demo only): {own['passphrase']}")
    echo(f"    its API key (submits what its own key signed): {own['key']}")
    echo(f"    a donation it signed itself: {base}/donations/{own['donations'][0]['id']}")
    echo("    record one more, signed on this machine and relayed by the service:")
    echo(f"      export LEDGER_CHARITY_KEY_PASSPHRASE='{own['passphrase']}'")
    echo(
        f"      .venv/bin/ledger donate --campaign-id {own['campaigns'][0]} --amount 10000"
        f" --donor-reference 'reader 42' --keystore {own['key_file']} --key {own['key']} --api {base}"
    )
    orgs = made["organisations"]
    echo("  money through three organisations (a foundation, a county bureau, a school, its supplier):")
    for charity in orgs["charities"]:
        echo(f"    {charity['name']}  {base}/charities/{charity['id']}  charity key: {charity['key']}")
    donor = orgs["donor"]
    echo(f"    the foundation's donor follows the money: {base}/donations/{donor['id']}?depth=3")
    rpc = runtime.settings.rpc_url or f"{base}/rpc"
    echo(f"      check every hop against the chain: .venv/bin/ledger verify {donor['id']} --depth 3")
    echo(f"        --api {base} --rpc-url {rpc}")
    echo(
        f"    the bureau's payouts need 2 approvals; {orgs['waiting_proposal']} waits for them."
        " An approver signs in at the console with its key:"
    )
    for approver in orgs["approvers"]:
        echo(f"      {approver['label']}: {approver['key']}")
    supplier, unconfirmed = orgs["supplier"], orgs["unconfirmed"]
    echo(f"    the supplier confirms receipt of {unconfirmed['id']} with its own key:")
    echo(f"      export LEDGER_CHARITY_KEY_PASSPHRASE='{supplier['passphrase']}'")
    echo(
        f"      .venv/bin/ledger recipient confirm {unconfirmed['id']} {unconfirmed['amount']}"
        f" 'Received the vegetables, March' --key-file {supplier['key_file']} --api {base}"
    )
    return made
