"""Recipient organisations in the mirror: registrations (with the account as it moves),
the disbursements naming them and their confirmations; a reorg that drops a confirmation
and a key change leaves the mirror equal to a fresh index; reconciliation asks
recipientOf and recipientAccount and catches a tampered confirmation. On anvil, into
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text

from indexer import models as m
from ledger_api.audit.context import Auditing
from ledger_api.audit.reconcile import reconcile
from ledger_api.audit.scope import Scope
from ledger_api.core.config import Settings
from tests.indexer.test_mirror import _hex, _indexer, activity, chain, columns, dump
from tests.ledger import Ledger, rid
from tests.support import recipients as r

pytestmark = pytest.mark.anvil
__all__ = ["chain"]


def _recipient_activity(led: Ledger, tag: str) -> r.RecipientOrg:
    """A school registered, named in a disbursement of 6,000, which it confirms in part."""
    org = r.register(led, f"{tag}-school", led.w3.eth.accounts[5], name=f"School {tag}")
    led.donate(f"{tag}-gift", 10_000)
    r.disburse_to(led, f"{tag}-pay", [(rid(f"{tag}-gift"), 6_000)], org)
    r.confirm(led, org, f"{tag}-c1", f"{tag}-pay", 2_500, "first delivery")
    return org


def test_the_mirror_holds_recipients_their_disbursements_and_confirmations(
    chain: Ledger, database_url: str
) -> None:
    org = _recipient_activity(chain, "a")
    new_key = chain.w3.eth.accounts[6]
    chain.send(chain.fn.setRecipientAccount(org.recipient_id, new_key), org.account)
    moved = r.RecipientOrg(org.recipient_id, org.identifier, org.name, new_key)
    r.confirm(chain, moved, "a-c2", "a-pay", 3_500, "the rest")
    indexer, engine = _indexer(chain, database_url, initial_range=2)
    indexer.sync()
    with engine.connect() as connection:
        [recipient] = connection.execute(select(m.Recipient)).all()
        assert (recipient.recipient_id, recipient.identifier, recipient.name, recipient.account) == (
            _hex(org.recipient_id),
            r.USCC,
            "School a",
            new_key,
        )
        assert recipient.registrar == chain.admin and recipient.account_block is not None
        named = connection.execute(select(m.DisbursementRecipient)).all()
        assert [(n.disbursement_id, n.recipient_id) for n in named] == [
            (_hex(rid("a-pay")), _hex(org.recipient_id))
        ]
        confirmations = connection.execute(
            select(m.ReceiptConfirmation).order_by(m.ReceiptConfirmation.block_number)
        ).all()
        assert [(c.amount, c.confirmed_total, c.statement, c.account) for c in confirmations] == [
            (2_500, 2_500, "first delivery", org.account),
            (3_500, 6_000, "the rest", new_key),
        ]
        # The trail names who sent each: the registrar, the old key moving itself, the
        # confirming account; a confirmation belongs to its disbursement's charity.
        trail = connection.execute(
            select(m.Event.name, m.Event.sender, m.Event.charity_id).where(
                m.Event.name.in_(["RecipientRegistered", "RecipientAccountChanged", "ReceiptConfirmed"])
            )
        ).all()
        charity = _hex(chain.charity_a)
        assert sorted(trail) == sorted(
            [
                ("RecipientRegistered", chain.admin, None),
                ("RecipientAccountChanged", org.account, None),
                ("ReceiptConfirmed", org.account, charity),
                ("ReceiptConfirmed", new_key, charity),
            ]
        )


def test_a_reorg_drops_a_confirmation_and_a_key_change(
    chain: Ledger, database_url: str, tmp_path: Any
) -> None:
    w3 = chain.w3
    activity(chain, "base")
    org = _recipient_activity(chain, "base")
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    # The abandoned fork: the rest confirmed, then the key moved.
    r.confirm(chain, org, "orphan-c", "base-pay", 3_500, "orphaned")
    chain.send(chain.fn.setRecipientAccount(org.recipient_id, w3.eth.accounts[7]), org.account)
    indexer, engine = _indexer(chain, database_url)
    indexer.sync()
    assert columns(engine, m.ReceiptConfirmation, "statement") == {"first delivery", "orphaned"}
    assert columns(engine, m.Recipient, "account") == {w3.eth.accounts[7]}

    w3.provider.make_request("evm_revert", [snapshot])
    activity(chain, "canonical", n=4)
    r.confirm(chain, org, "canonical-c", "base-pay", 1_000, "canonical")
    indexer.sync()
    assert indexer.reorgs == 1

    fresh, fresh_engine = _indexer(chain, f"sqlite:///{tmp_path / 'fresh.db'}")
    fresh.sync()
    assert dump(engine) == dump(fresh_engine)
    assert columns(engine, m.ReceiptConfirmation, "statement") == {"first delivery", "canonical"}
    assert columns(engine, m.Recipient, "account") == {org.account}  # the registered key again


def test_reconciliation_catches_a_tampered_confirmation(chain: Ledger, database_url: str) -> None:
    org = _recipient_activity(chain, "a")
    indexer, engine = _indexer(chain, database_url)
    indexer.sync()
    auditing = Auditing(Settings(), engine, chain.deployment, indexer.deployment_id, chain.w3)
    everything, charity = Scope(), Scope(charity_id=_hex(chain.charity_a))
    assert reconcile(auditing, everything)["clean"]
    assert reconcile(auditing, charity)["clean"]
    with engine.begin() as connection:
        connection.execute(text("UPDATE receipt_confirmations SET amount = 6000"))
        connection.execute(text("UPDATE recipients SET account = :a"), {"a": chain.stranger})
    answer = reconcile(auditing, everything)
    assert not answer["clean"]
    found = answer["differences"]

    def has(**expected: Any) -> bool:
        return any(all(d.get(k) == v for k, v in expected.items()) for d in found)

    assert has(check="records", table="receipt_confirmations", field="amount", chain=2_500, mirror=6_000)
    assert has(check="view", table="disbursement_recipients", field="confirmed", chain=2_500, mirror=6_000)
    assert has(check="records", table="recipients", field="account", mirror=chain.stranger)
    assert has(check="view", table="recipients", field="account", chain=org.account, mirror=chain.stranger)
    # A charity's scope holds its disbursements' confirmations, not the platform's registry.
    scoped = reconcile(auditing, charity)["differences"]
    assert {d["table"] for d in scoped} == {"receipt_confirmations", "disbursement_recipients"}
