"""Disclosure rule sets: data, not code. Each is a JSON file (rulesets/*.json, or any file a
deployment names in LEDGER_DISCLOSURE_RULES) with an id, a version, the time zone its
dates are counted in, and its obligations, each citing what it comes from.

Three kinds of obligation exist, and a new jurisdiction composes them without code:
- `every`: a disclosure at least every `months` months from the campaign's start, for
  campaigns longer than `applies_if_longer_than_months` (or with no end date);
- `after_end`: a disclosure within `months` months of the campaign's end (optionally only
  when funds remain);
- `enforced`: a rule the contract itself enforces (always met), listed with its records.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

RULESETS = Path(__file__).parent / "rulesets"
DEFAULT = "cn-mca-81"

Satisfier = Literal["report:periodic", "report:final", "disposal", "correction"]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Citation(_Data):
    article: str | None
    text: str = Field(max_length=2000)
    note: str | None = Field(default=None, max_length=2000)


class Obligation(_Data):
    id: str = Field(pattern=r"^[a-z0-9-]{1,40}$")
    type: Literal["every", "after_end", "enforced"]
    months: int | None = Field(default=None, ge=1, le=24)
    applies_if_longer_than_months: int = Field(default=0, ge=0, le=120)
    only_if_funds_remain: bool = False
    satisfied_by: tuple[Satisfier, ...]
    title: dict[str, str]
    cites: Citation


class RuleSet(_Data):
    id: str = Field(pattern=r"^[a-z0-9-]{1,40}$")
    version: str = Field(max_length=40)
    title: dict[str, str]
    source: dict[str, str]
    timezone: str
    obligations: tuple[Obligation, ...]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def available() -> list[str]:
    """The rule sets shipped with the service, by id."""
    return sorted(path.stem for path in RULESETS.glob("*.json"))


@cache
def load(name: str = DEFAULT) -> RuleSet:
    """A shipped rule set by id, or a JSON file by path (a deployment's own rules)."""
    path = RULESETS / f"{name}.json" if name in available() else Path(name)
    ruleset = RuleSet.model_validate_json(path.read_text(encoding="utf-8"))
    for obligation in ruleset.obligations:
        if obligation.type != "enforced" and obligation.months is None:
            raise ValueError(f"obligation {obligation.id!r} of {path} needs `months`")
    return ruleset
