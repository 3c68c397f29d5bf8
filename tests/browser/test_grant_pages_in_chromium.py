"""The hops of a donation through grants, in a real Chromium: readable at 390 and 1280 px
in both languages (nothing wider than the screen), with JavaScript off too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.service import Service, serve, settings_for
from tests.api.test_grants import three_hops_over_http
from tests.browser.test_pages_in_chromium import LAYOUT, browser, shot
from tests.support.grants import EXPECTED

__all__ = ["browser"]  # the module's Chromium, shared as a fixture


@pytest.fixture(scope="module")
def hops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, dict[str, Any]]]:
    tmp: Path = tmp_path_factory.mktemp("grants")
    with serve(settings_for(tmp, None, f"sqlite:///{tmp / 'ledger.db'}")) as service:
        yield service, three_hops_over_http(service)


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_hops_fit_a_phone_and_a_desktop_without_javascript(
    browser: Any, hops: tuple[Service, dict[str, Any]], lang: str
) -> None:
    service, made = hops
    for width in (390, 1280):
        context = browser.new_context(
            viewport={"width": width, "height": 844}, locale=lang, java_script_enabled=False
        )
        try:
            page = context.new_page()
            response = page.goto(f"{service.base}/donations/{made['donor']}?depth=3")
            assert response.status == 200
            shares = page.locator('[data-testid="hop-disbursement"]')
            assert shares.count() == 3
            assert [int(shares.nth(i).get_attribute("data-value")) for i in range(3)] == list(
                EXPECTED.values()
            )
            assert page.locator('[data-testid="hops"]').is_visible()
            shot(page, f"hops-{lang}-{width}-nojs")
        finally:
            context.close()
        context = browser.new_context(viewport={"width": width, "height": 844}, locale=lang)
        try:
            page = context.new_page()
            page.goto(f"{service.base}/donations/{made['donor']}?depth=3")
            seen = page.evaluate(LAYOUT)
            where = (lang, width)
            assert seen["scroll"] <= seen["width"] == width, (where, seen["scroll"])
            assert seen["outside"] == [], (where, seen["outside"])
            shot(page, f"hops-{lang}-{width}")
        finally:
            context.close()
