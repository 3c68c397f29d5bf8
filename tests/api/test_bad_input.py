"""What the service refuses, and how: bad input gets a clear 4xx problem (422 mostly,
never a 500) and never a transaction; a write the contract would revert gets a 409
naming the contract's custom error, before anything is signed, so that it uses no
nonce; IDs in paths are checked for shape (422) before they are looked up (404)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ledger_api.core import ids
from tests.api.checks import (
    as_service_account,
    campaign_view,
    chain_nonce,
    contract_error,
    donation_view,
    next_nonce,
    problem,
    transactions,
)
from tests.api.service import ADMIN_KEY, Service, serve, settings_for

pytestmark = pytest.mark.anvil

DONOR = "donor-ref-Zhang-San-13800138000"  # personal data: never echoed back


@dataclass
class World:
    service: Service
    charity: str
    key: str
    operator: str
    campaign: str
    donation: str  # 10,000, untouched by the tests of the table
    other_donation: str  # 10,000
    disbursement: str


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(
    request: pytest.FixtureRequest, anvil: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One service per database for the whole module (the table below is long): a charity
    with a campaign, two donations and a disbursement."""
    tmp = tmp_path_factory.mktemp("bad-input")
    name = None
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server_url")
        name = f"ledger_test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp / 'ledger.db'}"
    try:
        with serve(settings_for(tmp, anvil.url, url)) as service:
            charity, key = service.charity()
            campaign = service.campaign(charity, key)
            donation = service.donate(campaign, key, 10_000, DONOR)["id"]
            other = service.donate(campaign, key, 10_000, DONOR)["id"]
            paid = service.post(
                "/v1/disbursements",
                key,
                json={
                    "campaign_id": campaign,
                    "amount": 100,
                    "recipient": "CN-USCC-1",
                    "purpose": "meals",
                    "allocations": [{"donation_id": other, "amount": 100}],
                },
            )
            assert paid.status_code == 201, paid.text
            yield World(
                service,
                charity,
                key,
                service.operators[charity],
                campaign,
                donation,
                other,
                paid.json()["id"],
            )
    finally:
        if name is not None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


# ------------------------------------------------------------ the table

Body = Callable[[World], dict[str, Any]]


def donation(**changes: Any) -> Body:
    def build(w: World) -> dict[str, Any]:
        return _apply({"campaign_id": w.campaign, "amount": 100, "donor_reference": DONOR}, changes)

    return build


def campaign(**changes: Any) -> Body:
    def build(w: World) -> dict[str, Any]:
        return _apply(
            {"charity_id": w.charity, "name": "Winter coats", "currency": "CNY", "goal": 1_000}, changes
        )

    return build


def refund(**changes: Any) -> Body:
    return lambda _w: _apply({"amount": 100, "reason": "paid twice"}, changes)


def disbursement(**changes: Any) -> Body:
    def build(w: World) -> dict[str, Any]:
        body = {"campaign_id": w.campaign, "amount": 100, "recipient": "CN-USCC-2", "purpose": "meals"}
        return _apply(body, {key: value(w) if callable(value) else value for key, value in changes.items()})

    return build


def rejection(**changes: Any) -> Body:
    return lambda _w: _apply({"reason": "no quote attached"}, changes)


def organisation(**changes: Any) -> Body:
    body = {"identifier": "GB-CHC-1234567", "name": "Village school", "account": "0x" + "ab" * 20}
    return lambda _w: _apply(body, changes)


def approval_rule(**changes: Any) -> Body:
    return lambda _w: _apply({"approvers": ["0x" + "ab" * 20], "threshold": 1, "validity_hours": 24}, changes)


def _apply(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    body = dict(body)
    for key, value in changes.items():
        if value is DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return body


DROP = object()
HEX63 = "0x" + "ab" * 31 + "a"
ZERO_HEX = "0x" + "00" * 32


def bad_ids(prefix: str, other: str) -> dict[str, Any]:
    """Malformed IDs for a record whose readable IDs start with `prefix`."""
    return {
        "wrong kind": f"{other}-7K3M-9QX2-P4TA-B5C8",
        "wrong prefix": "XX-7K3M-9QX2-P4TA-B5C8",
        "too short": f"{prefix}-7K3M-9QX2-P4TA",
        "too long": f"{prefix}-7K3M-9QX2-P4TA-B5C8-0000",
        "bad character": f"{prefix}-7K3M-9QX2-P4TA-B5CU",
        "punctuation": f"{prefix}-7K3M-9QX2-P4T!-B5C8",
        "trailing space": f"{prefix}-7K3M-9QX2-P4TA-B5C8 ",
        "trailing newline": f"{prefix}-7K3M-9QX2-P4TA-B5C8\n",
        "hex with a trailing newline": "0x" + "ab" * 32 + "\n",
        "63 hex digits": HEX63,
        "65 hex digits": HEX63 + "bc",
        "not hex": "0x" + "g" * 64,
        "all zero": ZERO_HEX,
        "empty": "",
        "a number": 12345,
    }


def allocation(w: World, *amounts: int) -> list[dict[str, Any]]:
    return [
        {"donation_id": d, "amount": a} for d, a in zip((w.donation, w.other_donation), amounts, strict=False)
    ]


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # may name {campaign}, {donation}, {disbursement}
    body: Body | None = None
    status: int = 422
    kind: str = "invalid-request"
    field: str | None = None  # a part of the location the problem must point to
    raw: bytes | None = None  # sent as is, with `content_type`
    content_type: str = "application/json"
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    key: str | None = None  # default: the charity's key

    def send(self, w: World) -> Any:
        path = self.path.format(
            campaign=w.campaign, donation=w.donation, disbursement=w.disbursement, charity=w.charity
        )
        headers = {"Authorization": f"Bearer {self.key or w.key}"}
        if self.raw is not None:
            headers["Content-Type"] = self.content_type
            return w.service.client.request(self.method, path, content=self.raw, headers=headers)
        if self.files is not None:
            return w.service.client.request(self.method, path, files=self.files, headers=headers)
        body = self.body(w) if self.body is not None else None
        return w.service.client.request(self.method, path, json=body, headers=headers)


CASES: dict[str, Case] = {}


def case(name: str, *args: Any, **kwargs: Any) -> None:
    assert name not in CASES, name
    CASES[name] = Case(*args, **kwargs)


# Amounts: integers (or strings of digits) from 1 to 10**18; never floats, booleans or signs.
for label, amount in {
    "negative": -1,
    "zero": 0,
    "fractional": 1.5,
    "float-valued": 1.0,
    "true": True,
    "false": False,
    "null": None,
    "minus sign string": "-5",
    "plus sign string": "+5",
    "exponent string": "1e3",
    "decimal string": "1.0",
    "space string": " 5",
    "empty string": "",
    "hex string": "0x10",
    "non-ascii digits": "\u0663",
    "over 10**18": 10**18 + 1,
    "over 10**18 as string": str(10**18 + 1),
    "huge": 10**40,
    "list": [1],
    "object": {"value": 1},
}.items():
    case(f"donation amount {label}", "POST", "/v1/donations", donation(amount=amount), field="amount")
    case(
        f"refund amount {label}",
        "POST",
        "/v1/donations/{donation}/refunds",
        refund(amount=amount),
        field="amount",
    )
for label, amount in {
    "zero": 0,
    "fractional": 1.5,
    "float-valued": 100.0,
    "string with sign": "+100",
}.items():
    case(
        f"disbursement amount {label}",
        "POST",
        "/v1/disbursements",
        disbursement(amount=amount),
        field="amount",
    )
    case(
        f"allocation amount {label}",
        "POST",
        "/v1/disbursements",
        disbursement(allocations=[{"donation_id": ids.new("donation"), "amount": amount}]),
        field="amount",
    )
    case(
        f"batch item amount {label}",
        "POST",
        "/v1/donations/batch",
        lambda w, a=amount: {"donations": [donation()(w), donation(amount=a)(w)]},
        field="amount",
    )
for label, goal in {
    "negative": -1,
    "zero": 0,
    "missing": DROP,
    "fractional": 1.5,
    "boolean": True,
    "over 10**24": 10**24 + 1,
}.items():
    case(f"campaign goal {label}", "POST", "/v1/campaigns", campaign(goal=goal), field="goal")

# Currencies: ISO 4217 codes with a minor unit only (not a funds code, not gold).
for code in ("RMB", "cny", "EURO", "", "C Y", "XYZ", "CLF", "XAU", 156, None):
    case(f"currency {code!r}", "POST", "/v1/campaigns", campaign(currency=code), field="currency")

# Text: bounded (the contract counts UTF-8 bytes), not empty, no NUL bytes, no control or
# invisible formatting characters.
CONTROLS = {
    "a terminal title escape": "Fund\x1b]0;pwned\x07",
    "a clear-screen escape": "\x1b[2J\x1b[HFund",
    "a hidden hyperlink": "\x1b]8;;http://evil.example\x1b\\Fund\x1b]8;;\x1b\\",
    "a C1 control": "Fund\x9b31m",
    "a bidi override": "Fund \u202etnuocca",
    "a zero-width space": "Fu\u200bnd",
    "a line separator": "Fund\u2028two",
    "a tab": "Fund\tname",
    "a newline": "Fund\nname",
    "a BOM": "\ufeffFund",
}
TEXTS = [
    (
        "charity name",
        "POST",
        "/v1/charities",
        lambda **c: lambda _w: _apply({"name": "Fund"}, c),
        "name",
        200,
    ),
    ("campaign name", "POST", "/v1/campaigns", campaign, "name", 200),
    ("donor reference", "POST", "/v1/donations", donation, "donor_reference", 200),
    ("refund reason", "POST", "/v1/donations/{donation}/refunds", refund, "reason", 256),
    ("recipient", "POST", "/v1/disbursements", disbursement, "recipient", 128),
    ("purpose", "POST", "/v1/disbursements", disbursement, "purpose", 128),
    ("rejection reason", "POST", "/v1/proposals/{disbursement}/reject", rejection, "reason", 256),
    ("recipient organisation name", "POST", "/v1/recipients", organisation, "name", 200),
    ("recipient organisation identifier", "POST", "/v1/recipients", organisation, "identifier", 128),
]
for what, method, path, body, field, limit in TEXTS:
    admin = ADMIN_KEY if path in ("/v1/charities", "/v1/recipients") else None
    case(f"{what} too long", method, path, body(**{field: "x" * (limit + 1)}), field=field, key=admin)
    case(f"{what} empty", method, path, body(**{field: ""}), field=field, key=admin)
    case(f"{what} with a NUL byte", method, path, body(**{field: "ab\x00cd"}), field=field, key=admin)
    # Characters that command a terminal, or hide and reorder text on a page.
    for label, control in CONTROLS.items():
        case(f"{what} with {label}", method, path, body(**{field: control}), field=field, key=admin)
    case(f"{what} missing", method, path, body(**{field: DROP}), field=field, key=admin)
    case(f"{what} not a string", method, path, body(**{field: 42}), field=field, key=admin)
    if path != "/v1/donations":  # on chain: bytes count
        wide = "\u6148" * (limit // 3 + 1)  # 3 bytes each in UTF-8, fewer than `limit` characters
        case(f"{what} too long in UTF-8 bytes", method, path, body(**{field: wide}), field=field, key=admin)
case(
    "key label too long",
    "POST",
    "/v1/keys",
    lambda _w: {"role": "auditor", "label": "x" * 201},
    field="label",
    key=ADMIN_KEY,
)
case(
    "key label with NUL",
    "POST",
    "/v1/keys",
    lambda _w: {"role": "auditor", "label": "a\x00"},
    field="label",
    key=ADMIN_KEY,
)
case(
    "key label with a terminal escape",
    "POST",
    "/v1/keys",
    lambda _w: {"role": "auditor", "label": "a\x1b[2J"},
    field="label",
    key=ADMIN_KEY,
)
# A lone surrogate is not text: it cannot be encoded to UTF-8 (raw JSON, which allows it).
for what, path in (("donor reference", "/v1/donations"), ("campaign name", "/v1/campaigns")):
    case(
        f"{what} with a lone surrogate",
        "POST",
        path,
        raw=b"",  # filled in below, per world
        field="donor_reference" if path == "/v1/donations" else "name",
    )

# Approvers and approval rules: a label kept off chain, 1 <= threshold <= approvers <= 20,
# accounts that are accounts, a validity of 1 hour to a year.
case(
    "approver label too long",
    "POST",
    "/v1/charities/{charity}/approvers",
    lambda _w: {"label": "x" * 201},
    field="label",
)
case(
    "approver label with a terminal escape",
    "POST",
    "/v1/charities/{charity}/approvers",
    lambda _w: {"label": "a\x1b[2J"},
    field="label",
)
case(
    "approver account not an account",
    "POST",
    "/v1/charities/{charity}/approvers",
    lambda _w: {"label": "Treasurer", "account": "0x12"},
    field="account",
)
RULE = "/v1/campaigns/{campaign}/approval-rule"
case("approval rule with no approvers", "PUT", RULE, approval_rule(approvers=[]), field="approvers")
case(
    "approval rule with 21 approvers",
    "PUT",
    RULE,
    approval_rule(approvers=[f"0x{n:040x}" for n in range(1, 22)]),
    field="approvers",
)
case("approval rule threshold zero", "PUT", RULE, approval_rule(threshold=0), field="threshold")
case("approval rule threshold as text", "PUT", RULE, approval_rule(threshold="one"), field="threshold")
case(
    "approval rule approver not an account",
    "PUT",
    RULE,
    approval_rule(approvers=["treasurer"]),
    field="approvers",
)
case("approval rule validity zero", "PUT", RULE, approval_rule(validity_hours=0), field="validity_hours")
case(
    "approval rule validity over a year",
    "PUT",
    RULE,
    approval_rule(validity_hours=8761),
    field="validity_hours",
)
case("approval rule unknown field", "PUT", RULE, approval_rule(quorum=2), field="quorum")
case("proposal path not an ID", "POST", "/v1/proposals/not-an-id/approve", field="proposal_id")
case("proposal path wrong kind", "POST", "/v1/proposals/DN-7K3M-9QX2-P4TA-B5C8/approve", field="proposal_id")
case(
    "rejection without a reason", "POST", "/v1/proposals/{disbursement}/reject", lambda _w: {}, field="reason"
)
# Recipient organisations: a checked public identifier, never a person's ID number.
case(
    "recipient organisation account not an account",
    "POST",
    "/v1/recipients",
    organisation(account="0x12"),
    field="account",
    key=ADMIN_KEY,
)
case(
    "signed call with a short signature",
    "POST",
    "/v1/recipients/signed-calls",
    lambda _w: {
        "message": {"operator": "0x" + "ab" * 20, "data": "0x12", "nonce": "0x" + "34" * 32, "deadline": 1},
        "signature": "0x56",
    },
    kind="invalid-signed-call",
)

# Batches: 1 to 2,000 donations.
case(
    "batch of 2001",
    "POST",
    "/v1/donations/batch",
    lambda w: {"donations": [donation()(w)] * 2001},
    field="donations",
)
case("empty batch", "POST", "/v1/donations/batch", lambda _w: {"donations": []}, field="donations")
case(
    "batch not a list",
    "POST",
    "/v1/donations/batch",
    lambda w: {"donations": donation()(w)},
    field="donations",
)

# IDs in bodies.
for label, bad in bad_ids("CP", "DN").items():
    case(
        f"donation campaign_id {label}",
        "POST",
        "/v1/donations",
        donation(campaign_id=bad),
        field="campaign_id",
    )
for label, bad in bad_ids("CH", "CP").items():
    case(
        f"campaign charity_id {label}", "POST", "/v1/campaigns", campaign(charity_id=bad), field="charity_id"
    )
for label, bad in bad_ids("DN", "CP").items():
    case(
        f"allocation donation_id {label}",
        "POST",
        "/v1/disbursements",
        disbursement(allocations=[{"donation_id": bad, "amount": 100}]),
        field="donation_id",
    )
case(
    "metadata hash too short", "POST", "/v1/donations", donation(metadata_hash="0x12"), field="metadata_hash"
)
case("channel with capitals", "POST", "/v1/donations", donation(channel="Bank!"), field="channel")

# Unknown fields.
case("donation unknown field", "POST", "/v1/donations", donation(donor_name="Zhang San"), field="donor_name")
case("campaign unknown field", "POST", "/v1/campaigns", campaign(owner="x"), field="owner")
case("refund unknown field", "POST", "/v1/donations/{donation}/refunds", refund(to="x"), field="to")
case(
    "allocation unknown field",
    "POST",
    "/v1/disbursements",
    disbursement(allocations=lambda w: [{"donation_id": w.donation, "amount": 100, "note": "x"}]),
    field="note",
)
case("key unknown role", "POST", "/v1/keys", lambda _w: {"role": "superuser"}, field="role", key=ADMIN_KEY)
case("key admin role", "POST", "/v1/keys", lambda _w: {"role": "admin"}, field="role", key=ADMIN_KEY)
case("charity key without charity", "POST", "/v1/keys", lambda _w: {"role": "charity"}, key=ADMIN_KEY)
case(
    "auditor key with a charity",
    "POST",
    "/v1/keys",
    lambda w: {"role": "auditor", "charity_id": w.charity},
    key=ADMIN_KEY,
)

# Not JSON, or not an object.
for label, raw in {
    "truncated": b'{"campaign_id": ',
    "empty": b"",
    "null": b"null",
    "array": b"[]",
    "string": b'"donation"',
    "NaN": b'{"campaign_id": "CP-7K3M-9QX2-P4TA-B5C8", "amount": NaN, "donor_reference": "d"}',
    "Infinity": b'{"campaign_id": "CP-7K3M-9QX2-P4TA-B5C8", "amount": Infinity, "donor_reference": "d"}',
}.items():
    case(f"malformed JSON {label}", "POST", "/v1/donations", raw=raw)
# Bodies that are not even text, or numbers past what a parser takes, are a plain 400.
case(
    "malformed JSON not UTF-8",
    "POST",
    "/v1/donations",
    raw=b'{"campaign_id": "\xff\xfe", "amount": 1, "donor_reference": "d"}',
    status=400,
    kind="bad-request",
)
case(
    "5000-digit amount",
    "POST",
    "/v1/donations",
    raw=b'{"campaign_id": "CP-7K3M-9QX2-P4TA-B5C8", "amount": ' + b"9" * 5000 + b', "donor_reference": "d"}',
    status=400,
    kind="bad-request",
)
case(
    "JSON as text/plain",
    "POST",
    "/v1/donations",
    raw=b'{"campaign_id": "CP-7K3M-9QX2-P4TA-B5C8", "amount": 1, "donor_reference": "d"}',
    content_type="text/plain",
)
case(
    "form-encoded",
    "POST",
    "/v1/donations",
    raw=b"campaign_id=CP-7K3M-9QX2-P4TA-B5C8&amount=1&donor_reference=d",
    content_type="application/x-www-form-urlencoded",
)
case(
    "JSON to the evidence upload",
    "POST",
    "/v1/disbursements/{disbursement}/evidence",
    body=lambda _w: {"files": []},
    field="files",
)

# Allocations: they add up to the amount, name each donation once, 1 to 500 of them.
case(
    "allocations short of the amount",
    "POST",
    "/v1/disbursements",
    disbursement(amount=100, allocations=lambda w: allocation(w, 60, 30)),
    field="body",
)
case(
    "allocations over the amount",
    "POST",
    "/v1/disbursements",
    disbursement(amount=100, allocations=lambda w: allocation(w, 60, 50)),
    field="body",
)
case(
    "a donation allocated twice",
    "POST",
    "/v1/disbursements",
    disbursement(allocations=lambda w: [{"donation_id": w.donation, "amount": 50}] * 2),
    field="body",
)
case(
    "a donation allocated twice, in two cases",
    "POST",
    "/v1/disbursements",
    disbursement(
        allocations=lambda w: [
            {"donation_id": w.donation, "amount": 50},
            {"donation_id": w.donation.lower(), "amount": 50},
        ]
    ),
    field="body",
)
case(
    "a donation allocated twice, readable and hex",
    "POST",
    "/v1/disbursements",
    disbursement(
        allocations=lambda w: [
            {"donation_id": w.donation, "amount": 50},
            {"donation_id": ids.to_hex(w.donation), "amount": 50},
        ]
    ),
    field="body",
)
case("no allocations", "POST", "/v1/disbursements", disbursement(allocations=[]), field="allocations")
case(
    "501 allocations",
    "POST",
    "/v1/disbursements",
    disbursement(
        amount=501, allocations=[{"donation_id": ids.new("donation"), "amount": 1} for _ in range(501)]
    ),
    field="allocations",
)

# Evidence uploads: 1 to 10 non-empty documents of at most 25 MB.
case(
    "evidence without files",
    "POST",
    "/v1/disbursements/{disbursement}/evidence",
    files=[("other", ("a", b"a", "text/plain"))],
    field="files",
)
case(
    "evidence empty file",
    "POST",
    "/v1/disbursements/{disbursement}/evidence",
    files=[("files", ("a", b"", "text/plain"))],
)
case(
    "evidence of 11 files",
    "POST",
    "/v1/disbursements/{disbursement}/evidence",
    files=[("files", (f"{i}.txt", f"doc {i}".encode(), "text/plain")) for i in range(11)],
)
case(
    "evidence over 25 MB",
    "POST",
    "/v1/disbursements/{disbursement}/evidence",
    files=[("files", ("big.bin", b"\1" * (25 * 1024 * 1024 + 1), "application/octet-stream"))],
)
# The first document is fine and new: it is neither stored nor anchored when the second
# one is refused (it used to be both, before the 422).
case(
    "evidence second of two over 25 MB",
    "POST",
    "/v1/disbursements/{disbursement}/evidence",
    files=[
        ("files", ("fine.txt", b"invoice 77: first of two", "text/plain")),
        ("files", ("big.bin", b"\2" * (25 * 1024 * 1024 + 1), "application/octet-stream")),
    ],
)

# Query parameters.
case("wait=maybe", "POST", "/v1/donations?wait=maybe", donation(), field="wait")

# IDs in paths: the wrong shape is 422, the right shape of nothing is 404.
NEW_CAMPAIGN, NEW_DONATION, NEW_DISBURSEMENT = (
    ids.new("campaign"),
    ids.new("donation"),
    ids.new("disbursement"),
)
for label, bad in {
    "not an ID": "not-an-id",
    "wrong kind": "{other}-7K3M-9QX2-P4TA-B5C8",
    "all zero": ZERO_HEX,
    "63 hex digits": HEX63,
    "bad character": "{own}-7K3M-9QX2-P4TA-B5CU",
}.items():
    close = bad.replace("{other}", "DN").replace("{own}", "CP")
    case(f"close path {label}", "POST", f"/v1/campaigns/{close}/close", field="campaign_id")
    refund_path = bad.replace("{other}", "CP").replace("{own}", "DN")
    case(
        f"refund path {label}", "POST", f"/v1/donations/{refund_path}/refunds", refund(), field="donation_id"
    )
    evidence = bad.replace("{other}", "DN").replace("{own}", "DB")
    case(
        f"evidence path {label}",
        "POST",
        f"/v1/disbursements/{evidence}/evidence",
        files=[("files", ("a.txt", b"a", "text/plain"))],
        field="disbursement_id",
    )
case("transaction path not a UUID", "GET", "/v1/transactions/not-a-uuid", field="transaction_id")
case("key path upper case", "DELETE", "/v1/keys/ABCDEFGHIJKL", field="key_id", key=ADMIN_KEY)
case("key path too long", "DELETE", "/v1/keys/abcdefghijklm", field="key_id", key=ADMIN_KEY)
for label, path in {
    "close unknown campaign": f"/v1/campaigns/{NEW_CAMPAIGN}/close",
    "close unknown hex campaign": f"/v1/campaigns/0x{'11' * 32}/close",
}.items():
    case(label, "POST", path, status=404, kind="not-found")
case(
    "refund unknown donation",
    "POST",
    f"/v1/donations/{NEW_DONATION}/refunds",
    refund(),
    status=404,
    kind="not-found",
)
case(
    "evidence unknown disbursement",
    "POST",
    f"/v1/disbursements/{NEW_DISBURSEMENT}/evidence",
    files=[("files", ("a.txt", b"a", "text/plain"))],
    status=404,
    kind="not-found",
)
case("unknown transaction", "GET", f"/v1/transactions/{uuid.uuid4()}", status=404, kind="not-found")
case("unknown key", "DELETE", "/v1/keys/abcdefghijkl", status=404, kind="not-found", key=ADMIN_KEY)
case(
    "donation to unknown campaign",
    "POST",
    "/v1/donations",
    donation(campaign_id=NEW_CAMPAIGN),
    status=404,
    kind="not-found",
)
case(
    "campaign of unknown charity",
    "POST",
    "/v1/campaigns",
    campaign(charity_id=ids.new("charity")),
    status=404,
    kind="not-found",
)
case(
    "key for unknown charity",
    "POST",
    "/v1/keys",
    lambda _w: {"role": "charity", "charity_id": ids.new("charity")},
    status=404,
    kind="not-found",
    key=ADMIN_KEY,
)
case("unknown endpoint", "POST", "/v1/donation", donation(), status=404, kind="not-found")
# Webhooks: a URL that is not a public http(s) one, an unknown event type, a scope that
# is not the key's (README, "Webhooks"); nothing is stored.
for label, url in {
    "webhook ftp URL": "ftp://example.org/hook",
    "webhook URL with credentials": "https://user:pw@example.org/hook",
    "webhook URL to loopback": "https://127.0.0.1/hook",
    "webhook URL to RFC 1918": "https://10.0.0.1/hook",
    "webhook URL to cloud metadata": "https://169.254.169.254/latest/meta-data/",
    "webhook URL to IPv6 loopback": "https://[::1]/hook",
    "webhook URL too long": "https://example.org/" + "a" * 2100,
    "webhook URL with a space": "https://example.org/a b",
}.items():
    case(label, "POST", "/v1/webhooks", lambda _w, url=url: {"url": url, "events": ["donation.recorded"]})
case(
    "webhook unknown event type",
    "POST",
    "/v1/webhooks",
    lambda _w: {"url": "https://example.org/hook", "events": ["donation.stolen"]},
    field="events",
)
case("webhook no events", "POST", "/v1/webhooks", lambda _w: {"url": "https://example.org/h", "events": []})
case(
    "webhook unknown field secret",
    "POST",
    "/v1/webhooks",
    lambda _w: {"url": "https://example.org/hook", "events": ["donation.recorded"], "secret": "whsec_x"},
)
case(
    "webhook scope of an unknown charity",
    "POST",
    "/v1/webhooks",
    lambda _w: {
        "url": "https://example.org/hook",
        "events": ["donation.recorded"],
        "scope": {"charity_id": ids.new("charity")},
    },
    status=404,
    kind="not-found",
)
case("webhook malformed id", "GET", "/v1/webhooks/not-a-webhook")
case("webhook unknown id", "DELETE", f"/v1/webhooks/wh_{'0' * 24}", status=404, kind="not-found")
case("wrong method", "PUT", "/v1/donations", donation(), status=405, kind="method-not-allowed")
# The Atom feeds (pages/feeds.py) are for feed readers: an ID that cannot be one names a
# feed that does not exist, so it is a 404 like an unknown one (not the 422 of the JSON reads).
for label, path in {
    "feed of a malformed donation ID": "/v1/donations/not-an-id/feed.atom",
    "feed of a campaign ID as a donation's": "/v1/donations/{campaign}/feed.atom",
    "feed of an unknown campaign": f"/v1/campaigns/{NEW_CAMPAIGN}/feed.atom",
    "feed of a charity ID of 63 hex digits": f"/v1/charities/{HEX63}/feed.atom",
    "feed of an all-zero charity": f"/v1/charities/{ZERO_HEX}/feed.atom",
}.items():
    case(label, "GET", path, status=404, kind="not-found")
case("feed language too long", "GET", "/v1/donations/{donation}/feed.atom?lang=" + "x" * 21, field="lang")


# Disclosure records (contract 2.3.0): dates in range and in order, dispositions that fit,
# corrections that say why, audit dates the calendar can count with.
REPORT = {
    "kind": "periodic",
    "period_start": "2027-01-01",
    "period_end": "2027-03-31",
    "document_sha256": "ab" * 32,
}
for label, body in {
    "end date missing": {},
    "end date not a date": {"ends_on": "soon"},
    "end date a timestamp": {"ends_on": "2027-06-30T10:30:00+08:00"},
    "end date before 2000": {"ends_on": "1999-12-31"},
    "end date after 2199": {"ends_on": "2200-01-01"},
    "end date reason empty": {"ends_on": "2027-06-30", "reason": ""},
    "end date reason control character": {"ends_on": "2027-06-30", "reason": "a\u0007b"},
    "end date unknown field": {"ends_on": "2027-06-30", "extended": True},
}.items():
    case(label, "POST", "/v1/campaigns/{campaign}/end-date", lambda _w, b=body: b)
for label, body in {
    "report kind unknown": {**REPORT, "kind": "monthly"},
    "report period reversed": {**REPORT, "period_start": "2027-04-01"},
    "report period before 2000": {**REPORT, "period_start": "1970-01-01"},
    "report hash short": {**REPORT, "document_sha256": "ab" * 31},
    "report hash not hex": {**REPORT, "document_sha256": "zz" * 32},
    "report hash missing": {k: v for k, v in REPORT.items() if k != "document_sha256"},
}.items():
    case(label, "POST", "/v1/campaigns/{campaign}/reports", lambda _w, b=body: b)
for label, body in {
    "disposal negative": {"disposition": "returned_to_donors", "amount": -1},
    "disposal float": {"disposition": "returned_to_donors", "amount": 1.5},
    "disposal string amount": {"disposition": "returned_to_donors", "amount": "5"},
    "disposal disposition unknown": {"disposition": "spent", "amount": 0},
    "disposal move without target": {"disposition": "moved_to_campaign", "amount": 0},
    "disposal return with target": {
        "disposition": "returned_to_donors",
        "amount": 0,
        "target_campaign_id": NEW_CAMPAIGN,
    },
    "disposal kept without rule": {"disposition": "kept_under_rule", "amount": 0},
    "disposal target not a campaign": {
        "disposition": "moved_to_campaign",
        "amount": 0,
        "target_campaign_id": "DN-0000-0000-0000-0001",
    },
}.items():
    case(label, "POST", "/v1/campaigns/{campaign}/disposals", lambda _w, b=body: b)
for label, body in {
    "correction without reason": lambda w: {"original_kind": "donation", "original_id": w.donation},
    "correction blank reason": lambda w: {
        "original_kind": "donation",
        "original_id": w.donation,
        "reason": "  ",
    },
    "correction kind unknown": lambda w: {"original_kind": "grant", "original_id": w.donation, "reason": "r"},
    "correction id of another kind": lambda w: {
        "original_kind": "refund",
        "original_id": w.donation,
        "reason": "r",
    },
    "correction id not an id": lambda w: {"original_kind": "donation", "original_id": "DN-1", "reason": "r"},
}.items():
    case(label, "POST", "/v1/charities/{charity}/corrections", body)
case(
    "end date of unknown campaign",
    "POST",
    f"/v1/campaigns/{NEW_CAMPAIGN}/end-date",
    lambda _w: {"ends_on": "2027-06-30"},
    status=404,
    kind="not-found",
)
case("disclosure as of a date out of range", "GET", "/v1/audit/disclosure?as_of=1999-01-01", key=ADMIN_KEY)
case("disclosure as of not a date", "GET", "/v1/audit/disclosure?as_of=yesterday", key=ADMIN_KEY)
case("scorecard as of after 2199", "GET", "/v1/campaigns/{campaign}/scorecard?as_of=2200-01-01")
case("charity scorecard as of not a date", "GET", "/v1/charities/{charity}/scorecard?as_of=2027-02-30")
case("campaign disclosures as of before 2000", "GET", "/v1/campaigns/{campaign}/disclosures?as_of=1999-12-31")
case("scorecard of a donation id", "GET", "/v1/campaigns/{donation}/scorecard")


SURROGATES = {
    "donor reference with a lone surrogate": lambda w: json.dumps(donation(donor_reference="@")(w)).replace(
        "@", "\\ud800"
    ),
    "campaign name with a lone surrogate": lambda w: json.dumps(campaign(name="@")(w)).replace(
        "@", "\\udfff"
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gets_a_clear_4xx_and_no_transaction(world: World, name: str) -> None:
    case_ = CASES[name]
    if name in SURROGATES:
        case_ = Case(case_.method, case_.path, raw=SURROGATES[name](world).encode(), field=case_.field)
    service = world.service
    before = (
        transactions(service),
        next_nonce(service, world.operator),
        chain_nonce(service, world.operator),
    )
    response = case_.send(world)
    assert response.status_code != 500, response.text
    body = problem(response, case_.status, case_.kind)
    if case_.field is not None:
        locations = [part for error in body.get("errors", []) for part in error["loc"]]
        assert case_.field in locations or case_.field in body["detail"], body
    assert DONOR not in response.text and "Zhang San" not in response.text
    assert len(response.content) < 20_000  # the input is never echoed back
    assert (
        transactions(service),
        next_nonce(service, world.operator),
        chain_nonce(service, world.operator),
    ) == before


def test_the_table_covers_every_kind_of_bad_input() -> None:
    """Kept honest: the property names the table must cover."""
    names = " ".join(CASES)
    for needle in (
        "negative",
        "zero",
        "fractional",
        "float-valued",
        "true",
        "sign",
        "over 10**18",
        "'RMB'",
        "'cny'",
        "'EURO'",
        "too long",
        "NUL",
        "terminal title escape",
        "bidi override",
        "trailing newline",
        "second of two over 25 MB",
        "batch of 2001",
        "wrong prefix",
        "too short",
        "bad character",
        "63 hex digits",
        "all zero",
        "unknown field",
        "malformed JSON",
        "text/plain",
        "allocations short",
        "allocated twice",
        "unknown campaign",
    ):
        assert needle in names, needle


def test_evidence_refused_leaves_no_file(world: World) -> None:
    root = world.service.runtime.settings.evidence_path
    before = sorted(root.rglob("*")) if root.exists() else []
    for name in (
        "evidence empty file",
        "evidence over 25 MB",
        "evidence second of two over 25 MB",
        "evidence of 11 files",
        "evidence unknown disbursement",
    ):
        response = CASES[name].send(world)
        assert response.status_code in (404, 422), response.text
    after = sorted(root.rglob("*")) if root.exists() else []
    assert after == before


# -------------------------------------------------- rejected by the contract


def unchanged_nonces(w: World) -> tuple[Any, ...]:
    service = w.service
    return (
        transactions(service),
        next_nonce(service, w.operator),
        chain_nonce(service, w.operator),
        next_nonce(service, service.runtime.service_account or ""),
        chain_nonce(service, service.runtime.service_account or ""),
    )


def fresh_campaign(w: World, *amounts: int) -> tuple[str, list[str]]:
    campaign_id = w.service.campaign(w.charity, w.key)
    return campaign_id, [w.service.donate(campaign_id, w.key, amount)["id"] for amount in amounts]


def test_an_allocation_beyond_a_donations_balance_names_the_error(world: World) -> None:
    campaign_id, (first, second) = fresh_campaign(world, 100, 100)
    before = unchanged_nonces(world)
    response = world.service.post(
        "/v1/disbursements",
        world.key,
        json={
            "campaign_id": campaign_id,
            "amount": 150,
            "recipient": "CN-USCC-1",
            "purpose": "meals",
            "allocations": [{"donation_id": first, "amount": 150}],
        },
    )
    body = contract_error(response, "DonationOverdrawn")
    assert body["error"]["args"] == {"donationId": first, "available": 100, "requested": 150}
    assert unchanged_nonces(world) == before
    assert donation_view(world.service, first)["allocated"] == 0
    # A refund beyond the balance, likewise.
    response = world.service.post(
        f"/v1/donations/{second}/refunds", world.key, json={"amount": 101, "reason": "too much"}
    )
    body = contract_error(response, "DonationOverdrawn")
    assert body["error"]["args"] == {"donationId": second, "available": 100, "requested": 101}
    assert unchanged_nonces(world) == before


def test_a_donation_to_a_closed_campaign_names_the_error(world: World) -> None:
    campaign_id, _ = fresh_campaign(world, 100)
    open_campaign, _ = fresh_campaign(world)
    closed = world.service.post(f"/v1/campaigns/{campaign_id}/close", world.key)
    assert closed.status_code == 201, closed.text
    before = unchanged_nonces(world)
    response = world.service.post(
        "/v1/donations", world.key, json={"campaign_id": campaign_id, "amount": 5, "donor_reference": "d"}
    )
    body = contract_error(response, "CampaignIsClosed")
    assert body["error"]["args"] == {"campaignId": campaign_id}
    contract_error(world.service.post(f"/v1/campaigns/{campaign_id}/close", world.key), "CampaignIsClosed")
    # A batch is refused whole: 500 donations to an open campaign, then one to the closed
    # one (a second transaction): nothing at all is sent.
    batch = [{"campaign_id": open_campaign, "amount": 1, "donor_reference": f"d{i}"} for i in range(550)]
    batch.append({"campaign_id": campaign_id, "amount": 1, "donor_reference": "late"})
    contract_error(
        world.service.post("/v1/donations/batch", world.key, json={"donations": batch}), "CampaignIsClosed"
    )
    assert unchanged_nonces(world) == before
    assert campaign_view(world.service, open_campaign)["donation_count"] == 0
    assert campaign_view(world.service, campaign_id)["donation_count"] == 1


def test_a_refund_of_a_donation_unknown_on_chain_is_404_and_uses_no_nonce(world: World) -> None:
    before = unchanged_nonces(world)
    for unknown in (ids.new("donation"), "0x" + "5a" * 32):
        response = world.service.post(
            f"/v1/donations/{unknown}/refunds", world.key, json={"amount": 1, "reason": "r"}
        )
        body = problem(response, 404, "not-found")
        assert body["detail"] == "donation not found"
    assert unchanged_nonces(world) == before


def test_a_paused_ledger_takes_no_writes_and_each_refusal_names_the_pause(world: World) -> None:
    service = world.service
    campaign_id, (donation_id,) = fresh_campaign(world, 1_000)
    paid = service.post(
        "/v1/disbursements",
        world.key,
        json={
            "campaign_id": campaign_id,
            "amount": 100,
            "recipient": "CN-USCC-1",
            "purpose": "meals",
            "allocations": [{"donation_id": donation_id, "amount": 100}],
        },
    )
    assert paid.status_code == 201, paid.text
    assert service.runtime.keystore is not None
    accounts = service.runtime.keystore.addresses()
    as_service_account(service, "pause")
    try:
        before = unchanged_nonces(world)
        writes = [
            ("/v1/charities", {"json": {"name": "New Fund"}}, ADMIN_KEY),
            (
                "/v1/campaigns",
                {"json": {"charity_id": world.charity, "name": "n", "currency": "USD", "goal": 5}},
                None,
            ),
            (
                "/v1/donations",
                {"json": {"campaign_id": campaign_id, "amount": 5, "donor_reference": "d"}},
                None,
            ),
            (
                "/v1/donations/batch",
                {
                    "json": {
                        "donations": [{"campaign_id": campaign_id, "amount": 5, "donor_reference": "d"}] * 3
                    }
                },
                None,
            ),
            (f"/v1/donations/{donation_id}/refunds", {"json": {"amount": 5, "reason": "r"}}, None),
            (
                "/v1/disbursements",
                {"json": {"campaign_id": campaign_id, "amount": 5, "recipient": "r", "purpose": "p"}},
                None,
            ),
            (
                "/v1/disbursements",
                {
                    "json": {
                        "campaign_id": campaign_id,
                        "amount": 5,
                        "recipient": "r",
                        "purpose": "p",
                        "allocations": [{"donation_id": donation_id, "amount": 5}],
                    }
                },
                None,
            ),
            (
                f"/v1/disbursements/{paid.json()['id']}/evidence",
                {"files": [("files", ("a.txt", b"paused", "text/plain"))]},
                None,
            ),
            (f"/v1/campaigns/{campaign_id}/close", {}, None),
        ]
        for path, kwargs, key in writes:
            contract_error(service.post(path, key or world.key, **kwargs), "EnforcedPause")
        assert unchanged_nonces(world) == before
        assert service.runtime.keystore.addresses() == accounts  # no operator made for "New Fund"
        assert campaign_view(service, campaign_id)["closed"] is False
    finally:
        as_service_account(service, "unpause")
    # The same writes go through once the ledger runs again.
    response = service.post(
        "/v1/donations", world.key, json={"campaign_id": campaign_id, "amount": 5, "donor_reference": "d"}
    )
    assert response.status_code == 201, response.text
    assert next_nonce(service, world.operator) == before[1] + 1
    assert chain_nonce(service, world.operator) == before[2] + 1
