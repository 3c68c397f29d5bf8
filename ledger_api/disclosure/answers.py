"""The disclosure calendar's answer: every obligation of every campaign in scope."""

from __future__ import annotations

from datetime import date
from typing import Any

from ledger_api.disclosure import calendar, reads
from ledger_api.disclosure.rules import RuleSet
from ledger_api.mirror.gateway import Mirror

HREFS = {
    "report:periodic": "/v1/audit/trail?campaign_id={campaign}&kind=report_published",
    "report:final": "/v1/audit/trail?campaign_id={campaign}&kind=report_published",
    "disposal": "/v1/audit/trail?campaign_id={campaign}&kind=remaining_funds_disposed",
    "correction": "/v1/audit/trail?charity_id={charity}&kind=correction_recorded",
}


def _title(texts: dict[str, str], language: str) -> str:
    return texts.get(language) or texts.get("en") or next(iter(texts.values()))


def campaign_answer(
    ruleset: RuleSet, facts: calendar.Campaign, extra: dict[str, Any], as_of: date, language: str = "en"
) -> dict[str, Any]:
    zone = ruleset.zone
    found = calendar.obligations(ruleset, facts, as_of)
    statuses = [due.status for due in found if due.due_on is not None]
    worst = next((status for status in calendar.STATUSES if status in statuses), None)

    def on(at: int) -> date:
        return calendar.local_date(at, zone)

    return {
        "campaign_id": facts.id,
        "charity_id": facts.charity_id,
        "name": facts.name,
        "currency": facts.currency,
        "starts_on": on(facts.created_at),
        "ends_on": on(facts.ends_at) if facts.ends_at is not None else None,
        "closed_on": on(facts.closed_at) if facts.closed_at is not None else None,
        "remaining": facts.remaining,
        "end_changes": [
            {
                "ends_on": on(change["ends_at"]),
                "previous_ends_on": on(change["previous_ends_at"]) if change["previous_ends_at"] else None,
                "reason": change["reason"],
                "on": on(change["at"]),
                "tx_hash": change["tx_hash"],
            }
            for change in extra["end_changes"]
        ],
        "reports": [
            {
                "id": r["id"],
                "kind": r["kind"],
                "period_start": on(r["period_start"]),
                "period_end": on(r["period_end"] - 1),  # the last day covered (the end is exclusive)
                "document_sha256": r["document_sha256"],
                "document_href": f"/v1/evidence/{r['document_sha256']}",
                "on": on(r["at"]),
            }
            for r in extra["reports"]
        ],
        "disposals": [
            {
                "id": d["id"],
                "disposition": d["disposition"],
                "amount": d["amount"],
                "available": d["available"],
                "target_campaign_id": d["target_campaign_id"],
                "rule": d["rule"],
                "on": on(d["at"]),
            }
            for d in extra["disposals"]
        ],
        "obligations": [
            {
                "rule": due.rule.id,
                "title": _title(due.rule.title, language),
                "cites": {
                    "document": ruleset.source.get("document", ruleset.id),
                    **due.rule.cites.model_dump(),
                },
                "due_on": due.due_on,
                "status": due.status,
                "days_late": due.days_late,
                "satisfied_by": None
                if due.record is None
                else {
                    "kind": due.record.kind,
                    "id": due.record.id,
                    "on": on(due.record.at),
                    "tx_hash": due.record.tx_hash,
                    "href": HREFS[due.record.kind].format(campaign=facts.id, charity=facts.charity_id),
                },
            }
            for due in found
        ],
        "worst": worst,
    }


def disclosure(
    mirror: Mirror,
    ruleset: RuleSet,
    as_of: date,
    charity_hex: str | None,
    campaign_hex: str | None,
    language: str = "en",
) -> dict[str, Any]:
    """GET /v1/audit/disclosure: the calendar of every campaign in scope as of `as_of`."""
    with mirror.engine.connect() as connection:
        found = reads.campaigns(mirror, connection, ruleset, as_of, charity_hex, campaign_hex)
    campaigns = [campaign_answer(ruleset, facts, extra, as_of, language) for facts, extra in found]
    counts = {status: 0 for status in calendar.STATUSES}
    for item in campaigns:
        for obligation in item["obligations"]:
            if obligation["due_on"] is not None:
                counts[obligation["status"]] += 1
    return {
        "as_of": as_of,
        "rules": {
            "id": ruleset.id,
            "version": ruleset.version,
            "title": _title(ruleset.title, language),
            "timezone": ruleset.timezone,
            "source": ruleset.source,
        },
        "summary": {
            "campaigns": len(campaigns),
            **counts,
            "late_campaigns": [item["campaign_id"] for item in campaigns if item["worst"] == "overdue"],
        },
        "campaigns": campaigns,
    }
