"""/docs in a real headless Chromium: Swagger UI works under its strict Content-Security-
Policy, from this service's own assets, and asks nothing of any other host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.api.service import Service, serve, settings_for
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "tests" / "output" / "screenshots"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("docs")
    with serve(settings_for(tmp, None, f"sqlite:///{tmp / 'ledger.db'}")) as running:
        yield running


def test_swagger_ui_runs_under_its_policy_from_local_assets(service: Service) -> None:
    if not CHROMIUM.exists():
        unavailable("no /usr/bin/chromium (scripts/bootstrap.sh --browser installs Debian's)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            console: list[str] = []
            requested: list[str] = []
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
            page.on("request", lambda request: requested.append(request.url))
            response = page.goto(service.base + "/docs")
            assert response is not None and response.status == 200
            page.wait_for_selector(".opblock", timeout=30_000)
            operations = page.locator(".opblock").count()
            assert operations >= 20, operations
            # "Try it out" sends the request to this service (connect-src 'self').
            # Everything is scoped to the /healthz block: with 90 operations on the page,
            # "the first Try it out on the page" or a click on a block still being laid out
            # may land on another operation.
            health = page.locator(".opblock").filter(has=page.locator('[data-path="/healthz"]'))
            health.locator(".opblock-summary").click()
            health.get_by_role("button", name="Try it out").click()
            health.get_by_role("button", name="Execute").click()
            answered = health.locator(".live-responses-table tr.response .response-col_status").first
            answered.wait_for(timeout=30_000)
            status = answered.inner_text()
            assert status.strip().startswith("200"), status
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "docs.png"))
            hosts = {urlsplit(url).netloc for url in requested if not url.startswith("data:")}
            violations = [
                line for line in console if "Content Security Policy" in line or line.startswith("pageerror")
            ]
        finally:
            browser.close()
    assert hosts == {urlsplit(service.base).netloc}, requested
    assert violations == [], console
    assert any(url.endswith("/docs/assets/swagger-ui-bundle.js") for url in requested)
