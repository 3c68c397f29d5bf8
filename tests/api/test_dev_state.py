"""`ledger dev`'s state on the embedded chain, with real processes on this checkout's own
var/: one `ledger dev` per state (a second one used to delete the first one's database
and keystore), and `ledger keys create` writing where the running `ledger dev` reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ledger_api.core.config import Settings
from ledger_api.runtime import EMBEDDED_DATABASE, dev_state_holder
from tests.api.processes import DevProcess, create_campaign, create_charity, poll, post_donation
from tests.api.service import ADMIN_KEY

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def default_state() -> None:
    """These tests run `ledger dev` on the checkout's default state (var/embedded.db,
    var/embedded-keystore), as a user does; not while someone's `ledger dev` runs on it."""
    holder = dev_state_holder(Settings.model_construct())
    if holder is not None:
        pytest.skip(f"a `ledger dev` runs on this checkout's default state ({holder})")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"LEDGER_ADMIN_KEY": ADMIN_KEY, "LEDGER_EVIDENCE_PATH": str(tmp_path / "evidence"), **extra}


def _keys_create(*args: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run(
        [sys.executable, "-m", "ledger_api.cli", "keys", "create", *args],
        cwd=ROOT,
        env=inherited,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.usefixtures("default_state")
def test_a_second_ledger_dev_on_the_same_state_refuses_and_the_first_keeps_its_data(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with DevProcess(env, tmp_path / "first.log") as first:
        first.start()
        assert first.process is not None
        charity_id, key, _ = create_charity(first.base)
        campaign_id = create_campaign(first.base, charity_id, key)

        with DevProcess(env, tmp_path / "second.log") as second:
            second.start(wait=False)
            assert second.wait_exit(60) == 2, second.log()
        said = second.log()
        assert f"another `ledger dev` (pid {first.process.pid} at {first.base})" in said, said
        assert "would delete its database and keys" in said
        assert f"kill {first.process.pid}" in said
        assert "LEDGER_DATABASE_URL=" in said and "LEDGER_KEYSTORE_PATH=" in said
        assert "Traceback" not in said

        # The first one's data is all there, and what it writes next shows up.
        assert EMBEDDED_DATABASE.exists()
        assert httpx.get(f"{first.base}/v1/charities/{charity_id}").status_code == 200
        donated = post_donation(first.base, key, campaign_id, 1_234)
        assert donated.status_code == 201, donated.text
        donation_id = donated.json()["id"]
        # (a second one used to leave the first one's mirror standing by: never shown)
        poll(
            lambda: httpx.get(f"{first.base}/v1/donations/{donation_id}").status_code == 200,
            60,
            "the donation in the first one's mirror",
        )
        assert httpx.get(f"{first.base}/donations/{donation_id}").status_code == 200
        assert first.wait_healthy()["status"] == "ok"

        # The way out the message gives: a state of its own. Two of them on that one: refused.
        own = _env(
            tmp_path,
            LEDGER_DATABASE_URL=f"sqlite:///{tmp_path / 'own.db'}",
            LEDGER_KEYSTORE_PATH=str(tmp_path / "own-keystore"),
        )
        with (
            DevProcess(own, tmp_path / "own.log") as third,
            DevProcess(own, tmp_path / "fourth.log") as fourth,
        ):
            third.start()
            fourth.start(wait=False)
            assert fourth.wait_exit(60) == 2, fourth.log()
            assert "Two embedded chains cannot share one" in fourth.log()
            assert third.wait_healthy()["status"] == "ok"
        assert first.wait_healthy()["status"] == "ok"


@pytest.mark.usefixtures("default_state")
def test_keys_create_writes_where_the_running_ledger_dev_reads(tmp_path: Path) -> None:
    with DevProcess(_env(tmp_path), tmp_path / "dev.log") as dev:
        dev.start()
        assert dev.process is not None
        made = _keys_create("--role", "auditor", "--label", "regulator")
        assert made.returncode == 0, made.stderr
        key = made.stdout.strip()
        assert key.startswith("lk_") and "\n" not in key
        assert f"written to sqlite:///{EMBEDDED_DATABASE}" in made.stderr
        assert f"the running `ledger dev` (pid {dev.process.pid} at {dev.base})" in made.stderr
        assert "the next one starts from a fresh chain and database" in made.stderr
        trail = httpx.get(f"{dev.base}/v1/audit/trail", headers={"Authorization": f"Bearer {key}"})
        assert trail.status_code == 200, trail.text
    # With no `ledger dev` running, the key would be deleted at its start: refused, with why.
    refused = _keys_create("--role", "auditor")
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert "no `ledger dev` is running" in refused.stderr and str(EMBEDDED_DATABASE) in refused.stderr
    assert "Start `ledger dev` first" in refused.stderr
