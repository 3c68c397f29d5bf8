"""The donation page follows grants: ?depth=N draws each hop with the donor's exact share,
in both languages, without JavaScript; a depth out of range is a 422 page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.service import Service, serve, settings_for
from tests.api.test_grants import three_hops_over_http
from tests.pages.test_pages import hooks, page, parse
from tests.support.grants import EXPECTED


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Service]:
    with serve(settings_for(tmp_path, None, f"sqlite:///{tmp_path / 'ledger.db'}")) as running:
        yield running


def test_the_donation_page_draws_the_hops_with_exact_shares_in_both_languages(embedded: Service) -> None:
    made = three_hops_over_http(embedded)
    donor = made["donor"]
    plain = parse(page(embedded, f"/donations/{donor}"))
    assert hooks(plain, "hops") == []
    [link] = hooks(plain, "hops-link")
    assert link.get("href") == f"/donations/{donor}?depth=5"

    for lang, heading in (("en", "Where the money went next"), ("zh-CN", "资金的后续去向")):
        response = page(embedded, f"/donations/{donor}", params={"depth": 3, "lang": lang})
        assert "<script" not in response.text.split("</head>")[-1]  # drawn without JavaScript
        doc = parse(response)
        assert heading in doc.text_content()
        hops = hooks(doc, "hop")
        assert [int(h.get("data-depth")) for h in hops] == [1, 2, 3]
        shares = [
            {
                d.get("data-disbursement"): int(d.get("data-value"))
                for d in h.xpath('.//*[@data-testid="hop-disbursement"]')
            }
            for h in hops
        ]
        assert shares == [
            {made["grants"][0]: EXPECTED["foundation-grant"]},
            {made["grants"][1]: EXPECTED["bureau-grant"]},
            {made["supplier"]: EXPECTED["school-supplier"]},
        ]
        held = [
            [int(x.get("data-value")) for x in h.xpath('.//*[@data-testid="hop-donation"]')] for h in hops
        ]
        assert held == [[1000], [601, 399], [297, 276, 276]]
        assert "Rice supplier, Huining" in hops[2].text_content()

    for bad in ("6", "-1", "x", "1.5"):
        page(embedded, f"/donations/{donor}", 422, params={"depth": bad})
