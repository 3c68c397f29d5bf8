"""The mirror of a self-custody charity: custody, who holds each operator key and who
changed it, the records' authors and the relayed calls, as the chain's events say, on both
chains and both databases (and a reconciliation-style replay agrees)."""

from __future__ import annotations

import json

from sqlalchemy import insert, select

from indexer import models as m
from indexer.indexer import Indexer, IndexerConfig
from ledger_api.core import db
from ledger_api.core.hexes import hex0x
from ledger_api.core.models import Deployment
from tests.ledger import Ledger
from tests.signed import (
    CHARITY,
    CHARITY_KEY,
    OTHER,
    SECOND_KEY,
    relay,
    sc_donation,
    setup_self_custody,
    signed,
)


def test_the_mirror_says_who_holds_each_key_and_who_changed_it(ledger: Ledger, database_url: str) -> None:
    setup_self_custody(ledger)
    relay(ledger, *signed(ledger, CHARITY_KEY, "recordDonation", sc_donation("m1", 700)))
    relay(ledger, *signed(ledger, CHARITY_KEY, "addOperator", CHARITY, SECOND_KEY.address))
    relay(ledger, *signed(ledger, SECOND_KEY, "removeOperator", CHARITY, CHARITY_KEY.address))
    ledger.send(ledger.fn.removeOperator(ledger.charity_b, ledger.op_b), ledger.admin)

    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    dep = ledger.deployment
    with engine.begin() as connection:
        deployment_id = connection.execute(
            insert(Deployment)
            .values(
                chain_id=dep.chain_id,
                address=dep.address,
                deployment_block=dep.block_number,
                source_hash="0" * 64,
            )
            .returning(Deployment.id)
        ).scalar_one()
    Indexer(ledger.w3, engine, deployment_id, IndexerConfig(confirmations=0)).sync()

    charity = hex0x(CHARITY)
    with engine.connect() as connection:
        custody = dict(connection.execute(select(m.Charity.charity_id, m.Charity.self_custody)).all())
        assert custody == {
            hex0x(ledger.charity_a): False,
            hex0x(ledger.charity_b): False,
            charity: True,
            hex0x(OTHER): True,
        }
        operators = {
            (r.charity_id, r.account): (r.active, r.held_by_charity, r.added_by, r.removed_by)
            for r in connection.execute(select(m.Operator))
        }
        assert operators[(charity, CHARITY_KEY.address)] == (False, True, ledger.admin, SECOND_KEY.address)
        assert operators[(charity, SECOND_KEY.address)] == (True, True, CHARITY_KEY.address, None)
        assert operators[(hex0x(ledger.charity_a), ledger.op_a)] == (True, False, ledger.admin, None)
        assert operators[(hex0x(ledger.charity_b), ledger.op_b)] == (False, False, ledger.admin, ledger.admin)

        donation = connection.execute(select(m.Donation).where(m.Donation.amount == 700)).one()
        assert donation.operator == CHARITY_KEY.address
        # The history of the charity's operator changes, each with who made it.
        history = [
            (name, sender, json.loads(args)["account"])
            for name, sender, args in connection.execute(
                select(m.Event.name, m.Event.sender, m.Event.args)
                .where(m.Event.charity_id == charity, m.Event.name.in_(["OperatorAdded", "OperatorRemoved"]))
                .order_by(m.Event.block_number, m.Event.log_index)
            )
        ]
        assert history == [
            ("OperatorAdded", ledger.admin, CHARITY_KEY.address),
            ("OperatorAdded", CHARITY_KEY.address, SECOND_KEY.address),
            ("OperatorRemoved", SECOND_KEY.address, CHARITY_KEY.address),
        ]
        relayed = connection.execute(
            select(m.Event.sender, m.Event.args).where(m.Event.name == "SignedCallExecuted")
        ).all()
        assert len(relayed) == 4  # createCampaign, recordDonation, addOperator, removeOperator
        assert {json.loads(args)["relayer"] for _, args in relayed} == {ledger.stranger}
    engine.dispose()
