"""Fixtures for the API: the real service over HTTP on a real chain and database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.service import Service, serve, settings_for


@pytest.fixture
def service(anvil: Any, database_url: str, tmp_path: Path) -> Iterator[Service]:
    """The service on anvil, with each database in turn."""
    with serve(settings_for(tmp_path, anvil.url, database_url)) as running:
        yield running


@pytest.fixture
def embedded_service(tmp_path: Path) -> Iterator[Service]:
    """The service on the in-process eth-tester chain and SQLite: `ledger dev`'s defaults."""
    with serve(settings_for(tmp_path, None, f"sqlite:///{tmp_path / 'ledger.db'}")) as running:
        yield running
