"""PRIVACY.md is the data map: every table the service keeps is named on it, so a change
that starts storing something new cannot do so without saying where it stands."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData

import indexer.models
import ledger_api.core.models

ROOT = Path(__file__).resolve().parents[1]


def _tables() -> set[str]:
    names: set[str] = set()
    for module in (ledger_api.core.models, indexer.models):
        for value in vars(module).values():
            metadata = getattr(value, "metadata", None)
            if isinstance(metadata, MetaData):
                names |= set(metadata.tables)
    return names


def test_every_table_is_on_the_data_map() -> None:
    text = (ROOT / "PRIVACY.md").read_text(encoding="utf-8")
    tables = _tables()
    assert len(tables) > 20  # the walk found the models
    missing = sorted(name for name in tables if f"`{name}`" not in text and f"`{name}." not in text)
    assert not missing, f"PRIVACY.md does not say where these tables stand: {missing}"
