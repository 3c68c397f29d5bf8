"""The crash hook behind LEDGER_CRASH_AT (ledger_api/chain/faults.py) is armed only by
`ledger dev` in development: `ledger serve`, in development or production, and `ledger
dev` in production ignore the variable and write as usual. Real processes on a real
anvil node; the writes there pass both fault-injection points (a charity, a campaign and
donations are each a transaction), so an armed hook would have killed them.
tests/api/test_reliability.py shows the armed hook does kill `ledger dev`."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from ledger_api.chain.faults import CRASH_VARIABLE, fault_injection
from ledger_api.core.config import Settings
from tests.api.processes import DevProcess, create_campaign, create_charity, dev_env, post_donation

IGNORED = f"{CRASH_VARIABLE} is ignored"
# What production requires (Settings.check_secrets; dev_env's admin key is long enough),
# in setup and service alike: the keystore and the API keys the setup made must open.
PRODUCTION_SECRETS = {
    "LEDGER_KEYSTORE_PASSPHRASE": secrets.token_urlsafe(24),
    "LEDGER_SECRET_KEY": secrets.token_urlsafe(32),
    "LEDGER_PUBLIC_URL": "https://ledger.example.org",
}


def _writes_survive(process: DevProcess, key: str | None = None, campaign_id: str | None = None) -> None:
    """Writes through the process succeed and it stays up."""
    if key is None or campaign_id is None:
        charity_id, key, _operator = create_charity(process.base)
        campaign_id = create_campaign(process.base, charity_id, key)
    for amount in (200, 300):
        response = post_donation(process.base, key, campaign_id, amount)
        assert response.status_code == 201, f"{response.text}\n{process.log()}"
    assert process.process is not None and process.process.poll() is None, process.log()


@pytest.mark.anvil
@pytest.mark.parametrize(
    ("environment", "point"), [("development", "after-sign"), ("production", "after-send")]
)
def test_ledger_serve_ignores_the_crash_variable(
    anvil: Any, environment: str, point: str, tmp_path: Path
) -> None:
    log = tmp_path / "service.log"
    env = dev_env(anvil.url, f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path, **PRODUCTION_SECRETS)
    # `ledger dev` (no crash variable) deploys the ledger and makes a charity and campaign.
    with DevProcess(env, log) as setup:
        setup.start()
        charity_id, key, _operator = create_charity(setup.base)
        campaign_id = create_campaign(setup.base, charity_id, key)
    serving = {**env, "LEDGER_ENV": environment, CRASH_VARIABLE: point}
    with DevProcess(serving, log, command=("serve",)) as service:
        service.start()
        _writes_survive(service, key, campaign_id)
        assert IGNORED in service.log()


@pytest.mark.anvil
def test_ledger_dev_in_production_ignores_the_crash_variable(anvil: Any, tmp_path: Path) -> None:
    env = dev_env(
        anvil.url,
        f"sqlite:///{tmp_path / 'ledger.db'}",
        tmp_path,
        **PRODUCTION_SECRETS,
        LEDGER_ENV="production",
        LEDGER_CRASH_AT="after-sign",
    )
    with DevProcess(env, tmp_path / "dev.log") as dev:
        dev.start()
        _writes_survive(dev)
        assert IGNORED in dev.log()


@pytest.mark.parametrize(
    ("environment", "dev", "value", "armed"),
    [
        ("development", True, "after-sign", True),
        ("development", True, "after-send", True),
        ("development", True, None, False),
        ("development", True, "before-sign", False),  # not a point
        ("development", False, "after-sign", False),  # ledger serve
        ("production", False, "after-sign", False),
        ("production", True, "after-send", False),
    ],
)
def test_only_ledger_dev_in_development_arms_the_hook(
    environment: str, dev: bool, value: str | None, armed: bool
) -> None:
    settings = Settings(env=environment)  # type: ignore[arg-type]
    environ = {CRASH_VARIABLE: value} if value is not None else {}
    assert (fault_injection(settings, dev, environ) is not None) == armed
