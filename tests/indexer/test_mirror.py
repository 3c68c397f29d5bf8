"""The mirror equals the chain: projections agree with the contract's views, replaying a
range changes nothing, and after a reorg the mirror equals a fresh index of the
canonical chain. On anvil, into SQLite and PostgreSQL."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, select, text

from indexer import models as m
from indexer.indexer import Indexer, IndexerConfig
from ledger_api.chain.contract import deploy_ledger, ledger_contract, make_web3
from ledger_api.core import db
from ledger_api.core.models import Deployment
from tests.ledger import ZERO, Ledger, rid

pytestmark = pytest.mark.anvil

TABLES = [model.__table__ for model in (*m.APPEND_ONLY, m.Operator, m.Event)]


def _engine(url: str, chain_id: int, address: str, block: int) -> tuple[Engine, int]:
    db.upgrade(url)
    engine = db.make_engine(url)
    with engine.begin() as connection:
        deployment_id = connection.execute(
            insert(Deployment)
            .values(chain_id=chain_id, address=address, deployment_block=block, source_hash="0" * 64)
            .returning(Deployment.id)
        ).scalar_one()
    return engine, deployment_id


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every chain-derived row, without surrogate keys, in a stable order."""
    out = {}
    with engine.connect() as connection:
        for table in TABLES:
            columns = [c for c in table.c if c.name not in ("id", "deployment_id")]
            out[table.name] = sorted(tuple(r) for r in connection.execute(select(*columns)))
    return out


def activity(led: Ledger, tag: str, n: int = 5) -> None:
    fn, op = led.fn, led.op_a
    batch = [led.donation(rid(f"{tag}-d{i}"), 1_000 + i, donor=f"{tag}{i}") for i in range(n)]
    led.send(fn.recordDonations(batch), op)
    led.send(fn.refundDonation(rid(f"{tag}-r"), rid(f"{tag}-d0"), 100, "donor asked"), op)
    led.disburse(f"{tag}-p", [(rid(f"{tag}-d1"), 1_001), (rid(f"{tag}-d2"), 500)], evidence=rid(f"{tag}-inv"))
    led.send(fn.anchorEvidence(rid(f"{tag}-p"), rid(f"{tag}-photo")), op)
    led.send(fn.recordCorrection(rid(f"{tag}-c"), led.charity_a, 1, rid(f"{tag}-d3"), ZERO, "typo"), op)
    # contract 2.1.0: a redacted copy of the invoice, the photo withdrawn, the access log sealed
    led.send(fn.linkRedactedCopy(rid(f"{tag}-p"), rid(f"{tag}-inv"), rid(f"{tag}-inv-copy")), op)
    led.send(fn.withdrawEvidence(rid(f"{tag}-p"), rid(f"{tag}-photo"), "names a pupil"), op)
    led.send(fn.sealAccessLog(seal_day(tag), rid(f"{tag}-root"), 3, rid(f"{tag}-last")), led.admin)


def columns(engine: Engine, model: type[m.Base], name: str) -> set[Any]:
    with engine.connect() as connection:
        return set(connection.execute(select(m.table(model).c[name])).scalars())


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def seal_day(tag: str) -> int:
    """A UTC day of the access log per tag (each day is sealed once)."""
    return 20_000 + zlib.crc32(tag.encode()) % 10_000


@pytest.fixture
def chain(anvil: Any) -> Ledger:
    w3 = make_web3(anvil.url)
    deployment = deploy_ledger(w3, w3.eth.accounts[0])
    return Ledger.setup(w3, ledger_contract(w3, deployment.address), deployment)


def _indexer(led: Ledger, url: str, **config: Any) -> tuple[Indexer, Engine]:
    dep = led.deployment
    engine, deployment_id = _engine(url, dep.chain_id, dep.address, dep.block_number)
    return Indexer(led.w3, engine, deployment_id, IndexerConfig(confirmations=2, **config)), engine


def test_projections_agree_with_the_contract_views(chain: Ledger, database_url: str) -> None:
    activity(chain, "a")
    chain.send(chain.fn.removeOperator(chain.charity_b, chain.op_b), chain.admin)
    indexer, engine = _indexer(chain, database_url, initial_range=3)
    indexer.sync()
    with engine.connect() as connection:
        for d in connection.execute(select(m.Donation)).mappings():
            campaign, amount, allocated, refunded, _ = chain.donation_view(
                bytes.fromhex(d["donation_id"][2:])
            )
            assert (d["campaign_id"], d["amount"], d["allocated"], d["refunded"]) == (
                "0x" + campaign.hex(),
                amount,
                allocated,
                refunded,
            )
        campaigns = list(connection.execute(select(m.Campaign)).mappings())
        assert len(campaigns) == 2
        for c in campaigns:
            view = chain.campaign_view(bytes.fromhex(c["campaign_id"][2:]))
            assert (
                c["received"],
                c["refunded"],
                c["disbursed"],
                c["donation_count"],
                c["disbursement_count"],
            ) == (
                view[4],
                view[5],
                view[6],
                view[8],
                view[9],
            )
        evidence = connection.execute(select(m.Disbursement.evidence_count)).scalar_one()
        assert evidence == 3  # the invoice, the photo and the invoice's redacted copy
        status = chain.fn.evidenceStatus
        links = connection.execute(select(m.EvidenceLink)).all()
        assert [(r.disbursement_id, r.original_hash, r.copy_hash, r.operator) for r in links] == [
            (_hex(rid("a-p")), _hex(rid("a-inv")), _hex(rid("a-inv-copy")), chain.op_a)
        ]
        assert tuple(status(rid("a-p"), rid("a-inv-copy")).call()) == (True, False, rid("a-inv"))
        withdrawals = connection.execute(select(m.EvidenceWithdrawal)).all()
        assert [(w.disbursement_id, w.document_hash, w.reason, w.operator) for w in withdrawals] == [
            (_hex(rid("a-p")), _hex(rid("a-photo")), "names a pupil", chain.op_a)
        ]
        assert tuple(status(rid("a-p"), rid("a-photo")).call()) == (True, True, ZERO)
        seals = connection.execute(select(m.AccessLogSeal)).all()
        assert [(x.day, x.root, x.row_count, x.last_row_hash, x.sealer) for x in seals] == [
            (seal_day("a"), _hex(rid("a-root")), 3, _hex(rid("a-last")), chain.admin)
        ]
        assert tuple(chain.fn.accessLogSeal(seal_day("a")).call()) == (rid("a-root"), 3, rid("a-last"))
        operators = {(r.account, r.active) for r in connection.execute(select(m.Operator))}
        assert operators == {(chain.op_a, True), (chain.op_b, False)}


def test_replaying_indexed_ranges_changes_nothing(chain: Ledger, database_url: str) -> None:
    activity(chain, "a")
    indexer, engine = _indexer(chain, database_url)
    indexer.sync()
    before = dump(engine)
    assert len(before["events"]) > 10
    with engine.begin() as connection:  # forget the cursor: every range is read again
        connection.execute(text("DELETE FROM indexer_cursors"))
    indexer.sync()
    assert dump(engine) == before


@pytest.mark.parametrize("bulk_rows", [1, 10**9], ids=["bulk", "multi-row"])
def test_a_first_index_adds_to_campaign_totals_without_recomputing_them(
    chain: Ledger, database_url: str, bulk_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New donations, refunds and disbursements are added to their campaigns' totals; a
    recomputation from every row of the campaign is for replays and rollbacks only (at a
    million donations it made each range slower than the last). Both insert paths must
    count what they inserted exactly: PostgreSQL's multi-row INSERT once reported -1."""
    activity(chain, "a")
    monkeypatch.setattr(db, "BULK_ROWS", bulk_rows)
    indexer, engine = _indexer(chain, database_url, initial_range=3)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    def recomputations() -> int:
        return sum(1 for sql in statements if sql.startswith("UPDATE campaigns SET received=(SELECT"))

    indexer.sync()
    assert any(sql.startswith("INSERT INTO refunds") for sql in statements) or bulk_rows == 1
    assert any("campaigns.received +" in sql for sql in statements)  # the totals were added
    assert recomputations() == 0
    with engine.connect() as connection:
        for c in connection.execute(select(m.Campaign)).mappings():
            view = chain.campaign_view(bytes.fromhex(c["campaign_id"][2:]))
            assert (c["received"], c["refunded"], c["disbursed"]) == (view[4], view[5], view[6])
    with engine.begin() as connection:  # a replay finds its rows there and recomputes
        connection.execute(text("DELETE FROM indexer_cursors"))
    indexer.sync()
    assert recomputations() > 0


@pytest.mark.parametrize("depth", [1, 5])
def test_after_a_reorg_the_mirror_equals_a_fresh_index(
    chain: Ledger, database_url: str, tmp_path: Any, depth: int
) -> None:
    w3 = chain.w3
    activity(chain, "base")
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    for i in range(depth):  # the fork that will be abandoned: `depth` blocks of records
        chain.donate(f"orphan-{i}", 10 + i)
    indexer, engine = _indexer(chain, database_url)
    indexer.sync()
    assert any(r[0] == "0x" + rid("orphan-0").hex() for r in dump(engine)["donations"])

    w3.provider.make_request("evm_revert", [snapshot])
    activity(chain, "canonical", n=4)  # a different history
    w3.provider.make_request("anvil_mine", [depth + 2])
    indexer.sync()
    assert indexer.reorgs == 1

    fresh, fresh_engine = _indexer(chain, f"sqlite:///{tmp_path / 'fresh.db'}")
    fresh.sync()
    assert dump(engine) == dump(fresh_engine)
    assert not any(r[0] == "0x" + rid("orphan-0").hex() for r in dump(engine)["donations"])


def test_a_reorg_drops_the_orphaned_links_withdrawals_and_seals(
    chain: Ledger, database_url: str, tmp_path: Any
) -> None:
    w3, fn, op = chain.w3, chain.fn, chain.op_a
    activity(chain, "base")
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    # The abandoned fork: a second copy of the invoice, the invoice withdrawn, a day sealed.
    chain.send(fn.linkRedactedCopy(rid("base-p"), rid("base-inv"), rid("orphan-copy")), op)
    chain.send(fn.withdrawEvidence(rid("base-p"), rid("base-inv"), "orphaned"), op)
    chain.send(fn.sealAccessLog(1, rid("orphan-root"), 1, rid("orphan-last")), chain.admin)
    indexer, engine = _indexer(chain, database_url)
    indexer.sync()
    assert columns(engine, m.EvidenceLink, "copy_hash") == {
        _hex(rid("base-inv-copy")),
        _hex(rid("orphan-copy")),
    }
    assert columns(engine, m.EvidenceWithdrawal, "reason") == {"names a pupil", "orphaned"}
    assert columns(engine, m.AccessLogSeal, "day") == {1, seal_day("base")}

    w3.provider.make_request("evm_revert", [snapshot])
    activity(chain, "canonical", n=4)
    indexer.sync()
    assert indexer.reorgs == 1

    fresh, fresh_engine = _indexer(chain, f"sqlite:///{tmp_path / 'fresh.db'}")
    fresh.sync()
    assert dump(engine) == dump(fresh_engine)
    copies = {_hex(rid("base-inv-copy")), _hex(rid("canonical-inv-copy"))}
    assert columns(engine, m.EvidenceLink, "copy_hash") == copies
    assert columns(engine, m.EvidenceWithdrawal, "reason") == {"names a pupil"}
    assert columns(engine, m.AccessLogSeal, "day") == {seal_day("base"), seal_day("canonical")}
    with engine.connect() as connection:  # the orphaned copy's anchor went with its link
        counts = connection.execute(select(m.Disbursement.evidence_count)).scalars().all()
    assert counts == [3, 3]


def test_ledger_index_command_mirrors_a_deployment(chain: Ledger, tmp_path: Any) -> None:
    """`ledger index --once` as a real process, against anvil, into a new SQLite file."""
    import subprocess
    import sys

    activity(chain, "cli")
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger_api.cli",
            "index",
            "--rpc-url",
            chain.w3.provider.endpoint_uri,  # type: ignore[attr-defined]
            "--database-url",
            url,
            "--address",
            chain.deployment.address,
            "--once",
        ],
        check=True,
        capture_output=True,
    )
    on_chain = chain.w3.eth.get_logs(
        {"address": chain.deployment.address, "fromBlock": 0, "toBlock": "latest"}
    )
    engine = db.make_engine(url)
    rows = dump(engine)
    assert len(rows["events"]) == len(on_chain) > 10
    assert len(rows["donations"]) == 5


def test_bulk_and_row_by_row_writes_make_the_same_mirror(
    chain: Ledger, database_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large ranges go to the driver (COPY on PostgreSQL, prepared executemany on SQLite);
    the mirror must be the same as through SQLAlchemy, and replaying must change nothing."""
    activity(chain, "bulk", n=30)
    monkeypatch.setattr(db, "BULK_ROWS", 1)
    indexer, engine = _indexer(chain, database_url)
    indexer.sync()
    bulk = dump(engine)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM indexer_cursors"))
    indexer.sync()  # every row again, through the bulk path: all conflicts
    assert dump(engine) == bulk
    monkeypatch.setattr(db, "BULK_ROWS", 10**9)
    plain, plain_engine = _indexer(chain, f"sqlite:///{tmp_path / 'plain.db'}")
    plain.sync()
    assert dump(plain_engine) == bulk
    assert len(bulk["donations"]) == 30
