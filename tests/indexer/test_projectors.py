"""The projector table covers the contract: every event the ledger's ABI declares is either
projected into rows of its own or listed as going to the audit trail only, and an event
the table does not know stops the range before anything of it is written."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, func, insert, select

from indexer import models as m
from indexer.decoder import DecodedLog, LogDecoder
from indexer.projections import PROJECTORS, TRAIL_ONLY, UnprojectedEvent, apply_logs, rollback_above
from ledger_api.core import db
from ledger_api.core.models import Deployment

ACCOUNT = "0x" + "ab" * 20


def _decoded_event_names() -> set[str]:
    """The names the indexer's decoder can produce: one per event of the ABI."""
    return {decoder.name for decoder in LogDecoder().by_topic.values()}


def test_every_event_of_the_contract_is_projected_or_trail_only() -> None:
    names = _decoded_event_names()
    assert len(names) == 36  # a new event makes this fail: give it a projector or a trail-only entry
    assert set(PROJECTORS) | TRAIL_ONLY == names
    assert not set(PROJECTORS) & TRAIL_ONLY


def _engine(url: str) -> tuple[Engine, int]:
    db.upgrade(url)
    engine = db.make_engine(url)
    with engine.begin() as connection:
        deployment_id = connection.execute(
            insert(Deployment)
            .values(chain_id=1, address=ACCOUNT, deployment_block=0, source_hash="0" * 64)
            .returning(Deployment.id)
        ).scalar_one()
    return engine, deployment_id


def _log(name: str, args: dict[str, object], log_index: int) -> DecodedLog:
    return DecodedLog(
        name=name,
        args=args,
        block_number=7,
        block_hash="0x" + "11" * 32,
        tx_hash="0x" + "22" * 32,
        tx_index=0,
        log_index=log_index,
    )


CAMPAIGN, CHARITY = "0x" + "cc" * 32, "0x" + "dd" * 32


def _at(block: int, index: int, name: str, args: dict[str, object]) -> DecodedLog:
    return DecodedLog(
        name=name,
        args=args,
        block_number=block,
        block_hash="0x" + f"{block:064x}",
        tx_hash="0x" + f"{block * 1000 + index:064x}",
        tx_index=index,
        log_index=index,
    )


def _created() -> dict[str, object]:
    return {
        "campaignId": CAMPAIGN,
        "charityId": CHARITY,
        "name": "Wells",
        "currency": "0x455552",
        "goal": 10**24,
        "metadataHash": "0x" + "00" * 32,
        "operator": ACCOUNT,
    }


def _donation(block: int, index: int, amount: int) -> DecodedLog:
    args = {
        "donationId": "0x" + f"{block * 1000 + index:064x}",
        "campaignId": CAMPAIGN,
        "amount": amount,
        "donorCommitment": "0x" + "00" * 32,
        "channel": "0x" + "00" * 32,
        "metadataHash": "0x" + "00" * 32,
        "operator": ACCOUNT,
    }
    return _at(block, index, "DonationRecorded", args)


def _trail(connection: Connection) -> list[str]:
    events = m.table(m.Event)
    return list(connection.execute(select(events.c.name).order_by(events.c.log_index)).scalars())


def test_a_trail_only_event_is_written_to_the_trail_alone(database_url: str) -> None:
    engine, deployment_id = _engine(database_url)
    with engine.begin() as connection:
        apply_logs(connection, deployment_id, [_log("Paused", {"account": ACCOUNT}, 0)])
        assert _trail(connection) == ["Paused"]
        for model in m.APPEND_ONLY:
            assert connection.execute(select(func.count()).select_from(m.table(model))).scalar_one() == 0


def test_an_event_without_a_projector_stops_the_range_before_anything_is_written(database_url: str) -> None:
    engine, deployment_id = _engine(database_url)
    logs = [
        _log("Paused", {"account": ACCOUNT}, 0),
        _log("DonationSwept", {"donationId": "0x" + "33" * 32}, 1),
    ]
    with engine.begin() as connection:
        with pytest.raises(UnprojectedEvent, match="DonationSwept") as raised:
            apply_logs(connection, deployment_id, logs)
        assert raised.value.name == "DonationSwept"
        assert _trail(connection) == []  # not even the Paused before it


def test_campaign_totals_add_up_range_by_range_and_a_range_applied_again_counts_once(
    database_url: str,
) -> None:
    """A range's donations are added to their campaign's totals (no rescan of the
    campaign); when a range's rows were already there (so nothing was inserted), the
    totals are recomputed from the rows instead of being added to again."""
    engine, deployment_id = _engine(database_url)
    ranges = [
        [_at(8, 0, "CampaignCreated", _created()), _donation(8, 1, 5)],
        [_donation(9, index, 10 + index) for index in range(300)],  # the bulk insert's path
        [_donation(10, 0, 7), _donation(10, 1, 9)],
    ]
    campaigns = m.table(m.Campaign)

    def totals() -> tuple[int, int]:
        with engine.connect() as connection:
            row = connection.execute(select(campaigns.c.received, campaigns.c.donation_count)).one()
        return row.received, row.donation_count

    expected = (5 + sum(10 + index for index in range(300)) + 7 + 9, 303)
    for logs in ranges:
        with engine.begin() as connection:
            apply_logs(connection, deployment_id, logs)
    assert totals() == expected
    for logs in ranges[1:]:  # applied again: every row is already there
        with engine.begin() as connection:
            apply_logs(connection, deployment_id, logs)
        assert totals() == expected


def test_campaign_evidence_totals_follow_first_anchors_replays_and_rollbacks(database_url: str) -> None:
    """A campaign's evidenced disbursements (number and sum) grow when a disbursement gets
    its first anchor, in its own range or a later one, not with its second; a range applied
    again changes nothing; a rollback takes back what the rolled-back blocks anchored.
    After each step they equal a count from the disbursements themselves."""
    engine, deployment_id = _engine(database_url)
    campaigns, disbursements = m.table(m.Campaign), m.table(m.Disbursement)

    def disbursement(block: int, index: int, amount: int) -> DecodedLog:
        args = {
            "disbursementId": "0x" + f"{block * 1000 + index:064x}",
            "campaignId": CAMPAIGN,
            "amount": amount,
            "recipient": ACCOUNT,
            "purpose": "wells",
            "allocationCount": 0,
            "operator": ACCOUNT,
        }
        return _at(block, index, "DisbursementRecorded", args)

    def anchor(block: int, index: int, target: DecodedLog, document: int) -> DecodedLog:
        args = {
            "disbursementId": target.args["disbursementId"],
            "documentHash": "0x" + f"{document:064x}",
            "operator": ACCOUNT,
        }
        return _at(block, index, "EvidenceAnchored", args)

    def totals() -> tuple[int, int]:
        with engine.connect() as connection:
            kept = connection.execute(select(campaigns.c.evidenced, campaigns.c.evidenced_count)).one()
            counted = connection.execute(
                select(func.coalesce(func.sum(disbursements.c.amount), 0), func.count()).where(
                    disbursements.c.evidence_count > 0
                )
            ).one()
        assert tuple(kept) == tuple(counted)
        return kept.evidenced, kept.evidenced_count

    first, second, third = disbursement(8, 1, 100), disbursement(9, 0, 20), disbursement(9, 1, 3)
    ranges = [
        [_at(8, 0, "CampaignCreated", _created()), first, anchor(8, 2, first, 1)],  # same range
        [second, third, anchor(9, 2, first, 2)],  # a second anchor: no change
        [anchor(10, 0, second, 3), anchor(10, 1, second, 4)],  # a later range, twice
    ]
    expected = [(100, 1), (100, 1), (120, 2)]
    for logs, after in zip(ranges, expected, strict=True):
        with engine.begin() as connection:
            apply_logs(connection, deployment_id, logs)
        assert totals() == after
    for logs in ranges:  # applied again: every row is already there
        with engine.begin() as connection:
            apply_logs(connection, deployment_id, logs)
        assert totals() == (120, 2)
    with engine.begin() as connection:
        rollback_above(connection, deployment_id, 9)  # the third range's anchors go
    assert totals() == (100, 1)
    with engine.begin() as connection:
        apply_logs(connection, deployment_id, ranges[2] + [anchor(10, 2, third, 5)])
    assert totals() == (123, 3)
    with engine.begin() as connection:
        rollback_above(connection, deployment_id, 8)  # the second and third disbursements go
    assert totals() == (100, 1)
