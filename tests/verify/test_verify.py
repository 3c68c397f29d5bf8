"""`ledger verify` (the real CLI, as a process) against the demo ledger on the embedded
chain (through the service's /rpc) and on anvil: every claim of every demo donation holds,
and a mirror edited in SQL, or an evidence file swapped, fails naming the claim."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import delete, update

from indexer import models as m
from tests.verify.conftest import Demo, allocation_amount, evidence_file, hex_id, swapped


def lines(output: str, status: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(status + " ")]


def passes(run: Any) -> None:
    assert run.returncode == 0, run.stdout + run.stderr
    assert not lines(run.stdout, "MISMATCH") and not lines(run.stdout, "UNCHECKED"), run.stdout


def fails_on(run: Any, *claims: str) -> list[str]:
    """Exit 1, and a MISMATCH line naming each claim (a regular expression)."""
    assert run.returncode == 1, run.stdout + run.stderr
    mismatched = lines(run.stdout, "MISMATCH")
    for claim in claims:
        assert any(re.search(claim, line) for line in mismatched), (claim, run.stdout)
    return mismatched


def with_allocations(demo: Demo, count: int) -> dict[str, Any]:
    for donation_id in demo.donations:
        trace = demo.trace(donation_id)
        if len(trace["allocations"]) >= count and any(
            a["disbursement"]["evidence"] for a in trace["allocations"]
        ):
            return trace
    raise AssertionError(f"the demo has no donation with {count} allocations and evidence")


def with_refund(demo: Demo) -> dict[str, Any]:
    return next(t for t in map(demo.trace, demo.donations) if t["refunds"])


def test_every_demo_donation_verifies(demo: Demo) -> None:
    run = demo.verify(*demo.donations)
    passes(run)
    assert run.stdout.count("every claim holds") == len(demo.donations) >= 36
    # What was checked, for one donation with allocations: each event decoded, the
    # completeness queries, the views, the blocks and the evidence bytes.
    for claim in (
        r"^ok +contract 0x[0-9a-f]{40} \(taken from the API\)",
        r"^ok +chain id",
        r"^ok +donation DN-[\w-]+ event: \"DonationRecorded at block \d+",
        r"^ok +allocation 1 \(to DB-[\w-]+\) amount",
        r"^ok +allocation 1 \(to DB-[\w-]+\) disbursement DB-[\w-]+ recipient",
        r"^ok +donation DN-[\w-]+ allocations complete: \"\d+ DonationAllocated event\(s\) from block",
        r"^ok +donation DN-[\w-]+ refunds complete",
        r"^ok +donation DN-[\w-]+ remaining \(donationOf at block \d+\)",
        r"^ok +block \d+ hash \(canonical\)",
        r"^ok +disbursement DB-[\w-]+ evidence [0-9a-f]{64} document SHA-256 of the downloaded bytes",
        r"^ok +disbursement DB-[\w-]+ evidence [0-9a-f]{64} isEvidenceAnchored",
        r"^ok +charity CH-[\w-]+ name",
    ):
        assert re.search(claim, run.stdout, re.MULTILINE), claim


def test_the_donor_proves_ownership_with_the_secret_and_reference(demo: Demo) -> None:
    donation, _ = demo.made["samples"][0]
    secret, reference = donation["receipt_secret"], donation["donor_reference"]
    mine = demo.verify(donation["id"], "--secret", secret, "--reference", f"  {reference} ")
    passes(mine)
    assert re.search(r"^ok +donation DN-[\w-]+ ownership", mine.stdout, re.MULTILINE)
    fails_on(demo.verify(donation["id"], "--secret", secret, "--reference", reference + "x"), "ownership")


def test_a_disbursement_and_a_campaign_verify(demo: Demo) -> None:
    trace = with_allocations(demo, 1)
    disbursement = next(
        a["disbursement"]["id"] for a in trace["allocations"] if a["disbursement"]["evidence"]
    )
    run = demo.verify(disbursement, trace["campaign"]["id"])
    passes(run)
    assert re.search(rf"^ok +disbursement {disbursement} allocations complete", run.stdout, re.MULTILINE)
    assert re.search(
        r"^ok +campaign CP-[\w-]+ received \(campaignOf at block \d+\)", run.stdout, re.MULTILINE
    )
    assert re.search(r"^ok +campaign CP-[\w-]+ evidence coverage share_of_amount", run.stdout, re.MULTILINE)


def test_an_allocation_changed_with_the_total_kept_fails(demo: Demo) -> None:
    """150,000/50,000 told as 140,000/60,000: the donation's totals still add up."""
    trace = with_allocations(demo, 2)
    first, second = trace["allocations"][:2]
    shift = min(first["amount"], second["amount"]) // 5 or 1
    a, b = first["disbursement"]["id"], second["disbursement"]["id"]
    with demo.edited(
        allocation_amount(trace["id"], a, first["amount"] - shift),
        allocation_amount(trace["id"], b, second["amount"] + shift),
    ):
        assert demo.trace(trace["id"])["allocated"] == trace["allocated"]  # the lie adds up
        fails_on(
            demo.verify(trace["id"]), rf"allocation 1 \(to {a}\) amount", rf"allocation 2 \(to {b}\) amount"
        )
        fails_on(demo.verify(a), r"allocation \d+ \(from DN-[\w-]+\) amount")


def test_an_allocation_removed_fails(demo: Demo) -> None:
    trace = with_allocations(demo, 2)
    gone = trace["allocations"][0]["disbursement"]["id"]
    A = m.Allocation
    with demo.edited(
        delete(A).where(A.donation_id == hex_id(trace["id"]), A.disbursement_id == hex_id(gone))
    ):
        fails_on(demo.verify(trace["id"]), "allocations complete: claimed .* not claimed: \\[\\(")
        fails_on(demo.verify(gone), "allocations complete")


def test_a_recipient_or_purpose_changed_fails(demo: Demo) -> None:
    trace = with_allocations(demo, 1)
    disbursement = trace["allocations"][0]["disbursement"]
    B = m.Disbursement
    where = B.disbursement_id == hex_id(disbursement["id"])
    with demo.edited(update(B).where(where).values(recipient="CN-USCC-91110000FAKE00001X")):
        fails_on(
            demo.verify(trace["id"]), rf"disbursement {disbursement['id']} recipient: claimed \"CN-USCC-9111"
        )
    with demo.edited(update(B).where(where).values(purpose="Office party")):
        fails_on(demo.verify(disbursement["id"]), rf"disbursement {disbursement['id']} purpose")


def test_an_evidence_file_swapped_fails(demo: Demo) -> None:
    trace = with_allocations(demo, 1)
    disbursement = next(a["disbursement"] for a in trace["allocations"] if a["disbursement"]["evidence"])
    sha = disbursement["evidence"][0]["sha256"]
    with swapped(evidence_file(demo, sha), b"%PDF-1.4 a different invoice\n"):
        fails_on(demo.verify(trace["id"]), rf"evidence {sha} document SHA-256 of the downloaded bytes")


def test_a_hidden_refund_fails(demo: Demo) -> None:
    trace = with_refund(demo)
    R = m.Refund
    with demo.edited(delete(R).where(R.donation_id == hex_id(trace["id"]))):
        hidden = demo.trace(trace["id"])
        assert hidden["refunds"] == []
        fails_on(demo.verify(trace["id"]), f"donation {trace['id']} refunds complete")


@pytest.mark.parametrize(
    "args, says",
    [
        (["DN-0000"], "is not a donation, disbursement or campaign ID"),
        (["DN-AAAA-AAAA-AAAA-AAAA", "--secret", "0x12"], "--secret"),
    ],
)
def test_bad_arguments_are_refused_with_a_message(demo: Demo, args: list[str], says: str) -> None:
    run = demo.verify(*args)
    assert run.returncode == 3 and says in run.stdout + run.stderr, run.stdout + run.stderr


def test_a_record_the_service_does_not_know_cannot_be_checked(demo: Demo) -> None:
    run = demo.verify("DN-AAAA-AAAA-AAAA-AAAA")
    assert run.returncode == 3 and "HTTP 404" in run.stdout, run.stdout
