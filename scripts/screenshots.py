"""Screenshots of the console for the README, taken in headless Chromium (Playwright).

    .venv/bin/python -m scripts.screenshots [--out docs/console]

Starts `ledger dev --demo` on a state of its own (a temporary directory), registers a
charity and its key through the API, then walks the console as a bookkeeper does, with
JavaScript disabled: sign-in, the dashboard, the donation form with an error, the
receipt, the payment, the evidence upload. Each PNG is 1280 x 860 px, the window rather
than the whole page, which keeps each under 100 kB (65 to 90 kB measured) without an image
library. Retake them whenever the console's pages change."""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from ledger_api.imports.sample import csv_text, rows
from scripts.bench.support import ROOT, progress, service

CHROMIUM = Path("/usr/bin/chromium")
ADMIN_KEY = "screenshots-admin-key-0123456789abcdefghijklmnopqrstuvwxyz"
WIDTH, HEIGHT = 1280, 860
SHOTS = ("sign-in", "dashboard", "donation-error", "receipt", "disbursement", "evidence", "import-preview")


def _charity(base: str) -> tuple[str, str]:
    """A charity for the screenshots and its key, through the API as an admin would."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=base, headers=admin, timeout=60) as client:
        created = client.post("/v1/charities", json={"name": "Sunrise Children Fund"})
        created.raise_for_status()
        charity = created.json()["id"]
        key = client.post("/v1/keys", json={"role": "charity", "charity_id": charity})
        key.raise_for_status()
        return charity, str(key.json()["key"])


def _submit(page: Any, form: str) -> None:
    with page.expect_navigation():
        page.locator(f"form[data-testid='{form}'] [type=submit]").click()


def walk(page: Any, base: str, key: str, shoot: Callable[[str], None]) -> None:
    """The bookkeeper's way through the console, a screenshot at each step in SHOTS."""
    page.goto(base + "/console/sign-in")
    shoot("sign-in")
    page.fill("#key", key)
    _submit(page, "sign-in")
    page.fill("#campaign-name", "School meals 2026")
    page.fill("#campaign-goal", "50,000")
    _submit(page, "new-campaign")
    for amount, donor in (("1,200.00", "Wang Fang"), ("800", "Li Lei")):
        page.fill("#donation-amount", amount)
        page.fill("#donation-donor_reference", donor)
        _submit(page, "new-donation")
        page.get_by_role("link", name=re.compile("Back to the campaign")).click()
        page.wait_for_load_state()
    page.goto(base + "/console")
    shoot("dashboard")
    page.locator("[data-testid=campaigns] a").first.click()
    page.wait_for_load_state()
    page.fill("#donation-amount", "1234.567")
    page.fill("#donation-donor_reference", "Zhang Wei")
    _submit(page, "new-donation")
    shoot("donation-error")
    page.fill("#donation-amount", "1,234.50")
    _submit(page, "new-donation")
    shoot("receipt")
    page.get_by_role("link", name=re.compile("Back to the campaign")).click()
    page.wait_for_load_state()
    page.fill("#disbursement-amount", "1,500")
    page.fill("#disbursement-recipient", "Golden Grain Co.")
    page.fill("#disbursement-purpose", "150 kg rice for the canteen")
    _submit(page, "new-disbursement")
    shoot("disbursement")
    page.set_input_files(
        "#files",
        [
            {"name": "invoice-031.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 invoice 031"},
            {"name": "delivery.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff delivery photo"},
        ],
    )
    _submit(page, "evidence-form")
    shoot("evidence")
    campaign = page.locator("main .meta a").first.get_attribute("href") or ""
    page.goto(base + "/console/imports")
    page.set_input_files(
        "#map-file",
        {"name": "icbc-2026-10.csv", "mimeType": "text/csv", "buffer": _statement().encode("gb18030")},
    )
    # Nothing typed for the columns: the usual headings are recognised (imports/guess.py).
    page.select_option("#map-campaign_id", campaign.rsplit("/", 1)[-1])
    page.fill("#map-save_as", "ICBC")
    _submit(page, "upload-statement")
    shoot("import-preview")


def _statement() -> str:
    """A month of a bank's statement as Chinese banks export it (title lines first): gifts,
    one line the bank typed with three decimals, and the rent going out."""
    body = rows(12, prefix="ICBC")
    body.insert(2, ["2026-10-03", "ICBC900001", "某人", "1234.567", "", "", "捐款", ""])
    body.insert(5, ["2026-10-05", "ICBC900002", "房租", "", "2,000.00", "", "支付房租", ""])
    return csv_text(body)


def take(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "LEDGER_DATABASE_URL": f"sqlite:///{tmp}/ledger.db",
            "LEDGER_KEYSTORE_PATH": f"{tmp}/keystore",
            "LEDGER_EVIDENCE_PATH": f"{tmp}/evidence",
            "LEDGER_ADMIN_KEY": ADMIN_KEY,
        }
        with service(["dev"], env, Path(tmp) / "service.log") as running:
            progress(f"service at {running.base}")
            _, key = _charity(running.base)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM) if CHROMIUM.exists() else None, args=["--no-sandbox"]
                )
                context = browser.new_context(
                    java_script_enabled=False, locale="en-GB", viewport={"width": WIDTH, "height": HEIGHT}
                )
                page = context.new_page()

                def shoot(name: str) -> None:
                    path = out / f"{name}.png"
                    error = page.locator("[data-testid=error-summary]")
                    if error.count():
                        error.first.scroll_into_view_if_needed()
                    page.screenshot(path=str(path))
                    written.append(path)
                    progress(f"{path.relative_to(ROOT) if ROOT in path.parents else path}")

                walk(page, running.base, key, shoot)
                browser.close()
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console")
    arguments = parser.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    take(arguments.out)


if __name__ == "__main__":
    main()
