"""Recipient organisations on the contract (2.2.0), on eth-tester and anvil: registered by
the registrar with their own key, named in a disbursement, confirming receipt in part and
then the rest; more than the disbursement is refused with what is available and what was
asked; only the recipient's own account confirms, and only it moves its key."""

from __future__ import annotations

from tests.ledger import ZERO, Ledger, rid
from tests.support import recipients as r


def test_a_recipient_confirms_in_part_then_the_rest(ledger: Ledger) -> None:
    led = ledger
    org = r.register(led, "school", led.w3.eth.accounts[5])
    assert led.fn.recipientAccount(org.recipient_id).call() == org.account
    led.donate("d1", 10_000)
    receipt = r.disburse_to(led, "p", [(rid("d1"), 6_000)], org)
    assert led.events(receipt, "RecipientNamed") == [
        {"disbursementId": rid("p"), "recipientId": org.recipient_id}
    ]
    first = r.confirm(led, org, "c1", "p", 2_500, "first delivery of rice")
    [event] = led.events(first, "ReceiptConfirmed")
    assert (event["amount"], event["confirmedTotal"], event["account"]) == (2_500, 2_500, org.account)
    assert tuple(led.fn.recipientOf(rid("p")).call()) == (org.recipient_id, 2_500)
    # More than what is left is refused, naming what is left and what was asked.
    too_much = led.fn.confirmReceipt(rid("c2"), rid("p"), 3_501, "rest", ZERO)
    led.expect_error(too_much, org.account, "ConfirmationExceedsDisbursement", rid("p"), 3_500, 3_501)
    r.confirm(led, org, "c2", "p", 3_500, "the rest")
    assert tuple(led.fn.recipientOf(rid("p")).call()) == (org.recipient_id, 6_000)
    once_more = led.fn.confirmReceipt(rid("c3"), rid("p"), 1, "again", ZERO)
    led.expect_error(once_more, org.account, "ConfirmationExceedsDisbursement", rid("p"), 0, 1)
    again = led.fn.confirmReceipt(rid("c1"), rid("p"), 1, "again", ZERO)
    led.expect_error(again, org.account, "ConfirmationAlreadyExists", rid("c1"))


def test_only_the_recipients_own_account_confirms(ledger: Ledger) -> None:
    led = ledger
    org = r.register(led, "school", led.w3.eth.accounts[5])
    led.donate("d1", 10_000)
    r.disburse_to(led, "p", [(rid("d1"), 6_000)], org)
    led.disburse("plain", [(rid("d1"), 1_000)])  # names no recipient organisation
    call = led.fn.confirmReceipt(rid("c1"), rid("p"), 1_000, "received", ZERO)
    for other in (led.stranger, led.op_a, led.admin):  # the charity and the registrar too
        led.expect_error(call, other, "NotRecipient", rid("p"), other)
    plain = led.fn.confirmReceipt(rid("c1"), rid("plain"), 1_000, "received", ZERO)
    led.expect_error(plain, org.account, "NotRecipient", rid("plain"), org.account)


def test_only_the_current_account_moves_the_recipients_key(ledger: Ledger) -> None:
    led = ledger
    old, new = led.w3.eth.accounts[5], led.w3.eth.accounts[6]
    org = r.register(led, "school", old)
    move = led.fn.setRecipientAccount(org.recipient_id, led.admin)
    # The registrar cannot move the key and then confirm in the organisation's name.
    led.expect_error(move, led.admin, "NotRecipient", ZERO, led.admin)
    led.expect_error(led.fn.setRecipientAccount(rid("nobody"), new), old, "RecipientNotFound", rid("nobody"))
    receipt = led.send(led.fn.setRecipientAccount(org.recipient_id, new), old)
    assert led.events(receipt, "RecipientAccountChanged") == [
        {"recipientId": org.recipient_id, "account": new, "previousAccount": old}
    ]
    led.donate("d1", 10_000)
    r.disburse_to(led, "p", [(rid("d1"), 6_000)], org)
    call = led.fn.confirmReceipt(rid("c1"), rid("p"), 1_000, "received", ZERO)
    led.expect_error(call, old, "NotRecipient", rid("p"), old)
    led.send(call, new)


def test_a_disbursement_names_only_a_registered_recipient(ledger: Ledger) -> None:
    led = ledger
    led.donate("d1", 10_000)
    ghost = r.RecipientOrg(rid("ghost"), r.USCC, "Ghost", led.stranger)
    call = led.fn.disburse(r.disbursement_input(led, "p", [(rid("d1"), 1_000)], ghost))
    led.expect_error(call, led.op_a, "RecipientNotFound", rid("ghost"))
    r.register(led, "school", led.w3.eth.accounts[5])
    twice = led.fn.registerRecipient(rid("school"), r.USCC, "Again", led.stranger)
    led.expect_error(twice, led.admin, "RecipientAlreadyRegistered", rid("school"))
    led.expect_error(
        led.fn.registerRecipient(rid("x"), r.USCC, "X", led.stranger),
        led.op_a,
        "AccessControlUnauthorizedAccount",
        led.op_a,
        led.fn.REGISTRAR_ROLE().call(),
    )
