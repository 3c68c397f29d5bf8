"""One real service per test module (anvil and SQLite unless the module says otherwise)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.service import Service, serve, settings_for
from tests.imports.statements import MAPPING


@pytest.fixture(scope="module")
def importing(anvil: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("imports")
    with serve(settings_for(tmp, anvil.url, f"sqlite:///{tmp / 'ledger.db'}")) as running:
        yield running


def upload(
    service: Service,
    key: str | None,
    data: bytes,
    mapping: dict[str, Any] | None = None,
    filename: str = "statement.csv",
    **fields: str,
) -> httpx.Response:
    form = {"mapping": json.dumps(mapping or MAPPING), **fields}
    if "profile" in fields:
        del form["mapping"]
    return service.post("/v1/imports", key, files={"file": (filename, data)}, data=form)


def commit_and_wait(service: Service, key: str, import_id: str, timeout: float = 120) -> dict[str, Any]:
    started = service.post(f"/v1/imports/{import_id}/commit", key)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + timeout
    while True:
        shown = service.get(f"/v1/imports/{import_id}", key)
        assert shown.status_code == 200, shown.text
        progress = shown.json()["progress"]
        if progress["state"] in ("done", "failed"):
            return dict(shown.json())
        assert time.monotonic() < deadline, progress
        time.sleep(0.1)
