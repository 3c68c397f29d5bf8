"""Fixtures for the public pages: the API's (the real service over HTTP), and one small
ledger shared by a module's tests (building it takes a few seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ledger_api.core import ids
from tests.api.checks import wait_for_mirror, write_on_chain
from tests.api.conftest import embedded_service  # noqa: F401
from tests.api.service import ADMIN_KEY, Service, serve, settings_for

DONOR = "Wang Fang, receipt 0042"
# Text from the chain is anyone's text: the pages must escape it. (The API refuses the
# control character; it is written straight to the contract, as any holder of the
# charity's operator key could.)
HOSTILE_PURPOSE = 'Rice <script>alert(1)</script> & "oil" \u0001'
INVOICE = b"INVOICE 42: rice, 35,000 fen"


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, dict[str, Any]]]:
    """A charity with a CNY campaign (three donations, a disbursement with an invoice drawing
    on them first in first out, a partial refund) and a JPY campaign (one donation); an
    auditor's key."""
    tmp = tmp_path_factory.mktemp("pages")
    with serve(settings_for(tmp, None, f"sqlite:///{tmp / 'ledger.db'}")) as service:
        charity, key = service.charity("Sunrise Children Fund 朝阳儿童基金")
        meals = service.campaign(charity, key)
        books = service.campaign(charity, key, currency="JPY")
        donations = [service.donate(meals, key, amount, DONOR) for amount in (10_000, 20_000, 123_450)]
        yen = service.donate(books, key, 1_500, DONOR)
        wait_for_mirror(service)
        disbursement = {"id": ids.new("disbursement")}
        first_in = [
            (ids.to_bytes32(d["id"]), a) for d, a in zip(donations, (10_000, 20_000, 5_000), strict=True)
        ]
        write_on_chain(
            service,
            service.operators[charity],
            "recordDisbursement",
            ids.to_bytes32(disbursement["id"]),
            ids.to_bytes32(meals),
            35_000,
            "CN-USCC-9111",
            HOSTILE_PURPOSE,
            bytes(32),
            first_in,
        )
        wait_for_mirror(service)
        _ok(
            service.post(
                f"/v1/disbursements/{disbursement['id']}/evidence",
                key,
                files={"files": ("invoice.txt", INVOICE)},
            )
        )
        _ok(
            service.post(
                f"/v1/donations/{donations[2]['id']}/refunds", key, json={"amount": 4_000, "reason": "asked"}
            )
        )
        auditor = _ok(service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}))["key"]
        wait_for_mirror(service)
        yield (
            service,
            {
                "charity": charity,
                "meals": meals,
                "books": books,
                "donations": donations,
                "yen": yen,
                "disbursement": disbursement["id"],
                "auditor": auditor,
            },
        )
