"""`ledger verify` (the real CLI, as a process) against the demo ledger on the embedded
chain (through the service's /rpc) and on anvil: every claim of every demo donation holds,
and a mirror edited in SQL, or an evidence file swapped, fails naming the claim."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from sqlalchemy import delete, update

from indexer import models as m
from tests.verify.conftest import LEDGER, Demo, allocation_amount, evidence_file, hex_id, swapped


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
    run = demo.verify(disbursement, trace["campaign"]["id"], standalone=True)  # ledger-verify itself
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
        (["DB-AAAA-AAAA-AAAA-AAAA", "--depth", "2"], "--depth follows a donation"),
        (["DN-AAAA-AAAA-AAAA-AAAA", "--depth", "6"], "--depth"),
        (["DN-AAAA-AAAA-AAAA-AAAA", "--depth", "-1"], "--depth"),
    ],
)
def test_bad_arguments_are_refused_with_a_message(demo: Demo, args: list[str], says: str) -> None:
    run = demo.verify(*args)
    assert run.returncode == 3 and says in run.stdout + run.stderr, run.stdout + run.stderr


def test_a_record_the_service_does_not_know_cannot_be_checked(demo: Demo) -> None:
    run = demo.verify("DN-AAAA-AAAA-AAAA-AAAA")
    assert run.returncode == 3 and "HTTP 404" in run.stdout, run.stdout


class _Liar(BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.answers.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body or b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("shape", ["escapes", "malformed"])
def test_a_hostile_service_cannot_drive_the_terminal_or_crash_the_verifier(demo: Demo, shape: str) -> None:
    """A service that lies with terminal escape sequences in its text, or answers claims of
    the wrong shape: the verifier fails (never exit 0), prints no control character, and
    says what it could not check rather than crashing."""
    trace = with_allocations(demo, 1)
    lie = json.loads(json.dumps(trace))
    if shape == "escapes":
        lie["allocations"][0]["disbursement"]["recipient"] = "\x1b[2J\x1b]0;owned\x07\u202eevil"
        lie["allocations"][0]["disbursement"]["evidence"][0]["document"] = "http://169.254.169.254/latest"
    else:
        lie["campaign"] = "CP-NOT-AN-OBJECT"
        lie["allocations"] = [{"disbursement": 7}]
    _Liar.answers = {
        "/v1/contract": demo.service.get("/v1/contract").content,
        f"/v1/donations/{trace['id']}": json.dumps(lie).encode(),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Liar)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        command = [str(LEDGER), "verify", trace["id"], "--rpc-url", demo.rpc_url]
        run = subprocess.run(
            [*command, "--api", f"http://127.0.0.1:{server.server_address[1]}"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert run.returncode in (1, 2), run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert not any(ord(c) < 0x20 and c != "\n" for c in run.stdout) and "\u202e" not in run.stdout
    if shape == "escapes":
        fails_on(run, r"recipient: claimed \"\\u001b\[2J\\u001b\]0;owned\\u0007\\u202eevil\"")
        assert "not a path of the service" in run.stdout
    else:
        assert "malformed answer" in run.stdout or lines(run.stdout, "MISMATCH"), run.stdout


def test_a_contract_named_by_hand_is_used_and_one_without_code_fails(demo: Demo) -> None:
    donation_id = demo.donations[0]
    address = demo.service.runtime.deployment.address
    named = demo.verify(donation_id, "--contract", address)
    passes(named)
    assert re.search(rf"^ok +contract {address.lower()} \(as given\)", named.stdout, re.MULTILINE)
    fails_on(demo.verify(donation_id, "--contract", "0x" + "42" * 20), "no code at the address")
