"""Following a donation through grants, checked against the chain (`--depth N`).

The service's hops (GET /v1/donations/{id}?depth=N) are claims like any other. Here the
hops are rebuilt from the chain alone, with this package's own arithmetic, and compared:

- which donations the donor's money sat in at each hop: the root, then the donations
  that record a grant (GrantReceived logs of each grant; grantSourceOf of each donation);
- which disbursements they paid for (DonationAllocated logs), which of those are grants
  to which campaign (grantOf);
- the donor's share of every donation and disbursement, in whole minor units by largest
  remainder: of a donation the donor holds `s` of, each onward allocation takes its
  proportion of `s` and the part not allocated keeps the rest; of a grant the donor holds
  `p` of, each donation recording it takes its proportion of `p` and the part not recorded
  yet keeps the rest (ties go to the earlier part);
- the identities the shares must satisfy at every hop (entered = the donations' shares =
  the disbursements' shares + unspent; the next hop's entered + not recorded = the grants'
  shares), on the claims as given.

And for every payment at every hop: its DisbursementRecorded event, its evidence, who
proposed and approved it (DisbursementProposed and DisbursementApproved events, complete,
k distinct approvers none of whom proposed it, proposalOf executed), and what its
recipient organisation confirmed with its own key (ReceiptConfirmed events, complete,
adding up to recipientOf's total, the organisation as registered).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from ledger_verify import protocol as p
from ledger_verify.checks import Claim, Verifier

MAX_DEPTH = 5
EXECUTED = 3  # ProposalStatus.Executed
ZERO = b"\0" * 32


def largest_remainder(amount: int, weights: list[int]) -> list[int]:
    """`amount` split in proportion to `weights`: each part the floor of its exact share,
    the units left over one each to the largest remainders (the earlier part on a tie)."""
    total = sum(weights)
    floors = [amount * w // total for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for i in order[: amount - sum(floors)]:
        floors[i] += 1
    return floors


def split(amount: int, parts: list[int], whole: int) -> tuple[list[int], int]:
    """`amount` in proportion to `parts` of `whole`, the rest of `whole` being a last part:
    the parts' shares and the rest's."""
    rest = whole - sum(parts)
    if amount == 0 or whole <= 0:
        return [0] * len(parts), amount
    shares = largest_remainder(amount, [*parts, max(rest, 0)])
    return shares[:-1], shares[-1]


@dataclass
class Hop:
    """One hop as the chain has it."""

    entered: int
    not_recorded: int
    donations: dict[str, tuple[int, int, str | None]] = field(
        default_factory=dict
    )  # id -> amount, share, source
    disbursements: dict[str, tuple[int, int, str | None]] = field(
        default_factory=dict
    )  # id -> amount, share, to
    unspent: int = 0


class _Unreadable(Exception):
    """A view or log the node did not give (already reported)."""


def _account(value: Any) -> Any:
    """An account as compared: its case is a checksum's, not a different account."""
    return value.lower() if isinstance(value, str) else value


def _decoded(name: str, log: dict[str, Any]) -> dict[str, Any]:
    topics = [bytes.fromhex(t[2:]) for t in log["topics"]]
    return p.decode_log(p.events()[name], topics, bytes.fromhex(log["data"][2:]))


def _position(log: dict[str, Any]) -> tuple[int, int]:
    def number(value: Any) -> int:
        return int(value, 16) if isinstance(value, str) else int(value)

    return number(log["blockNumber"]), number(log["logIndex"])


class Hops:
    def __init__(self, verifier: Verifier, block: int) -> None:
        self.v = verifier
        self.report = verifier.report
        self.block = block

    def _same(self, label: str, chain: Any, claimed: Any) -> bool:
        """The chain's value first (as it is worked out here), then the claim."""
        return self.report.compare(label, claimed, chain)

    def _differs(self, label: str, chain: Any, claimed: Any) -> None:
        self.report.mismatch(label, claimed, chain)

    # ------------------------------------------------------------ the chain's side

    def _view(self, label: str, name: str, *args: Any) -> dict[str, Any]:
        found = self.v.view(label, name, self.block, *args)
        if found is None:
            raise _Unreadable(label)
        return found

    def _logs(self, label: str, name: str, topics: list[bytes | None]) -> list[dict[str, Any]]:
        found = self.v.logs(label, name, topics, self.block)
        if found is None:
            raise _Unreadable(label)
        return [_decoded(name, log) for log in sorted(found, key=_position)]

    def rebuild(self, root: str, depth: int) -> list[Hop]:
        """The hops of the donation `root` from the chain, 1..depth."""
        frontier = {root: self._view(f"hops: donation {root}", "donationOf", p.id_bytes(root))["amount"]}
        not_recorded = 0
        visited: set[str] = set()
        out: list[Hop] = []
        for _ in range(depth):
            if not frontier:
                break
            hop = Hop(entered=sum(frontier.values()), not_recorded=not_recorded)
            reached: dict[str, int] = {}
            for donation_id, share in frontier.items():
                raw = p.id_bytes(donation_id)
                amount = self._view(f"hops: donation {donation_id}", "donationOf", raw)["amount"]
                source = self._view(f"hops: donation {donation_id} source", "grantSourceOf", raw)["value0"]
                hop.donations[donation_id] = (amount, share, p.text(source) if source != ZERO else None)
                allocated = self._logs(
                    f"hops: allocations of {donation_id}", "DonationAllocated", [None, raw]
                )
                onward = [a for a in allocated if p.text(a["disbursementId"]) not in visited]
                shares, rest = split(share, [a["amount"] for a in onward], amount)
                hop.unspent += rest
                for a, part in zip(onward, shares, strict=True):
                    key = p.text(a["disbursementId"])
                    reached[key] = reached.get(key, 0) + part
            visited |= set(reached)
            frontier, not_recorded = {}, 0
            for disbursement_id, share in reached.items():
                raw = p.id_bytes(disbursement_id)
                amount = self._view(f"hops: disbursement {disbursement_id}", "disbursementOf", raw)["amount"]
                to = self._view(f"hops: grant {disbursement_id}", "grantOf", raw)["recipientCampaignId"]
                hop.disbursements[disbursement_id] = (amount, share, p.text(to) if to != ZERO else None)
                if to == ZERO:
                    continue
                linked = self._logs(
                    f"hops: donations recording {disbursement_id}", "GrantReceived", [None, raw]
                )
                parts, rest = split(share, [g["amount"] for g in linked], amount)
                not_recorded += rest
                for g, part in zip(linked, parts, strict=True):
                    key = p.text(g["donationId"])
                    frontier[key] = frontier.get(key, 0) + part
            out.append(hop)
        return out

    # ------------------------------------------------------------ the comparison

    def check(self, trace: Claim, depth: int) -> None:
        root = str(trace.get("id", ""))
        claimed = trace.get("hops")
        if not isinstance(claimed, list):
            self._differs("hops", f"the hops of {root} to depth {depth}", "no hops in the answer")
            return
        hops = [h if isinstance(h, dict) else {} for h in claimed]
        self._identities(hops)
        try:
            chain = self.rebuild(root, depth)
        except _Unreadable:
            self.report.unchecked("hops", "the chain could not be read for every hop (above)")
            return
        self._same("hops: how many", len(chain), len(hops))
        for n, (mine, theirs) in enumerate(zip(chain, hops, strict=False), 1):
            label = f"hop {n}"
            self._same(f"{label} depth", n, theirs.get("depth"))
            for key in ("entered", "not_recorded", "unspent"):
                self._same(f"{label} {key} (recomputed from the chain)", getattr(mine, key), theirs.get(key))
            said = {
                str(d.get("id")): (d.get("amount"), d.get("donor_share"), d.get("source_disbursement_id"))
                for d in theirs.get("donations") or []
                if isinstance(d, dict)
            }
            self._records(f"{label} donations (amount, donor's share, grant recorded)", mine.donations, said)
            payments = [d for d in theirs.get("disbursements") or [] if isinstance(d, dict)]
            said = {
                str(d.get("id")): (
                    d.get("amount"),
                    d.get("donor_share"),
                    (d.get("recipient_campaign") or {}).get("id"),
                )
                for d in payments
            }
            self._records(f"{label} payments (amount, donor's share, granted to)", mine.disbursements, said)
            for d in payments:
                self.payment(f"{label} payment {d.get('id')}", d)

    def _records(
        self, label: str, chain: dict[str, tuple[Any, ...]], said: dict[str, tuple[Any, ...]]
    ) -> None:
        if chain == said:
            self.report.ok(label, f"{len(chain)} as on chain")
            return
        wrong = sorted(k for k in chain.keys() & said.keys() if chain[k] != said[k])
        self._differs(
            label,
            "; ".join(f"{k}: {chain[k]}" for k in sorted(chain)) or "none",
            f"missing: {sorted(chain.keys() - said.keys()) or 'none'};"
            f" not on chain: {sorted(said.keys() - chain.keys()) or 'none'};"
            f" different: {[(k, said[k]) for k in wrong] or 'none'}",
        )

    def _identities(self, hops: list[Claim]) -> None:
        """The shares add up at every hop, on the claims as given."""

        def total(items: Any, only_grants: bool = False) -> int:
            return sum(
                int(d.get("donor_share") or 0)
                for d in items or []
                if isinstance(d, dict) and (d.get("recipient_campaign") or not only_grants)
            )

        for n, hop in enumerate(hops, 1):
            entered = hop.get("entered")
            self.report.compare(
                f"hop {n}: entered = the donations' shares", entered, total(hop.get("donations"))
            )
            self.report.compare(
                f"hop {n}: entered = the payments' shares + unspent",
                entered,
                total(hop.get("disbursements")) + int(hop.get("unspent") or 0),
            )
        for n, (before, after) in enumerate(pairwise(hops), 2):
            self.report.compare(
                f"hop {n}: entered + not recorded = the grants' shares at hop {n - 1}",
                total(before.get("disbursements"), only_grants=True),
                int(after.get("entered") or 0) + int(after.get("not_recorded") or 0),
            )

    # ------------------------------------------------------------ one payment

    def payment(self, label: str, d: Claim) -> None:
        disbursement_id = str(d.get("id", ""))
        raw = p.id_bytes(disbursement_id)
        self.v.disbursement_event(label, d, (d.get("campaign") or {}).get("id"))
        self.v.evidence(
            label, disbursement_id, [e for e in d.get("evidence") or [] if isinstance(e, dict)], self.block
        )
        try:
            self.approval(label, raw, d.get("approval"), d.get("amount"))
            self.receipt(label, raw, d.get("receipt"), d.get("amount"))
        except _Unreadable:
            return

    def approval(self, label: str, raw: bytes, a: Any, amount: Any) -> None:
        """Paid under an approval rule: who proposed it, k distinct approvers other than the
        proposer, every approval on chain listed; paid without one: no proposal on chain."""
        proposals = self._logs(f"{label} proposal", "DisbursementProposed", [raw])
        if not proposals:
            if a is None:
                self.report.ok(f"{label} approval", "none on chain, none claimed (no approval rule)")
            else:
                self._differs(f"{label} approval", "no proposal on chain", "an approval")
            return
        if not isinstance(a, dict):
            self._differs(f"{label} approval", "a proposal and its approvals on chain", "none claimed")
            return
        proposed = self.v.event(f"{label} proposal", a.get("proof"), "DisbursementProposed")
        if proposed is not None:
            self.report.compare(f"{label} proposal of", p.text(raw), p.text(proposed["disbursementId"]))
            self.report.compare(
                f"{label} proposer", _account(a.get("proposer")), _account(proposed["proposer"])
            )
            self.report.compare(f"{label} rule version", a.get("rule_version"), proposed["ruleVersion"])
            self.report.compare(f"{label} threshold", a.get("threshold"), proposed["threshold"])
            self.report.compare(f"{label} proposed amount", amount, proposed["amount"])
        votes = [v for v in a.get("approvals") or [] if isinstance(v, dict)]
        for n, vote in enumerate(votes, 1):
            approved = self.v.event(f"{label} approval {n}", vote.get("proof"), "DisbursementApproved")
            if approved is not None:
                self.report.compare(
                    f"{label} approval {n} of", p.text(raw), p.text(approved["disbursementId"])
                )
                self.report.compare(
                    f"{label} approval {n} by", _account(vote.get("account")), _account(approved["approver"])
                )
        self.v.complete(
            f"{label} approvals complete",
            "DisbursementApproved",
            [raw],
            self.block,
            [v.get("proof") or {} for v in votes],
        )
        view = self._view(f"{label} proposalOf at block {self.block}", "proposalOf", raw)
        accounts = [str(v.get("account", "")).lower() for v in votes]
        proposer = str(view["proposer"]).lower()
        rule_held = (
            view["status"] == EXECUTED
            and len(set(accounts)) == len(accounts) >= view["threshold"]
            and proposer not in accounts
            and view["approvals"] == len(accounts)
        )
        if rule_held:
            self.report.ok(
                f"{label} approval rule",
                f"executed: {len(accounts)} distinct approvals of {view['threshold']}, none the proposer's",
            )
        else:
            self._differs(
                f"{label} approval rule",
                f"status {view['status']}, {view['approvals']} of {view['threshold']} approvals, {proposer}",
                f"{len(accounts)} approvals claimed: {accounts}",
            )

    def receipt(self, label: str, raw: bytes, r: Any, amount: Any) -> None:
        """What the recipient organisation the chain names confirmed, with its own key."""
        view = self._view(f"{label} recipientOf at block {self.block}", "recipientOf", raw)
        recipient, confirmed = view["recipientId"], view["confirmed"]
        if recipient == ZERO:
            if r is not None:
                self._differs(f"{label} recipient organisation", "none named on chain", "a receipt")
            return
        if not isinstance(r, dict):
            self._differs(
                f"{label} receipt", f"recipient {p.text(recipient)} named on chain", "no receipt claimed"
            )
            return
        named = r.get("recipient") or {}
        self._same(f"{label} recipient organisation", p.text(recipient), named.get("id"))
        registered = self._logs(f"{label} recipient registered", "RecipientRegistered", [recipient])
        if len(registered) == 1:
            self._same(f"{label} recipient identifier", registered[0]["identifier"], named.get("identifier"))
            self._same(f"{label} recipient name", registered[0]["name"], named.get("name"))
        else:
            self._differs(f"{label} recipient registered", "one RecipientRegistered event", len(registered))
        confirmations = [c for c in r.get("confirmations") or [] if isinstance(c, dict)]
        for n, c in enumerate(confirmations, 1):
            what = f"{label} confirmation {n}"
            got = self.v.event(what, c.get("proof"), "ReceiptConfirmed")
            if got is None:
                continue
            evidence = got["evidenceHash"].hex() if got["evidenceHash"] != ZERO else None
            for key, chain, said in (
                ("id", p.text(got["confirmationId"]), c.get("id")),
                ("of", p.text(raw), p.text(got["disbursementId"])),
                ("by recipient", p.text(recipient), p.text(got["recipientId"])),
                ("amount", got["amount"], c.get("amount")),
                ("statement", got["statement"], c.get("statement")),
                ("signed by", _account(got["account"]), _account(c.get("account"))),
                ("evidence", evidence, c.get("evidence_sha256")),
            ):
                self._same(f"{what} {key}", chain, said)
        self.v.complete(
            f"{label} confirmations complete",
            "ReceiptConfirmed",
            [None, raw],
            self.block,
            [c.get("proof") or {} for c in confirmations],
        )
        self._same(f"{label} confirmed (recipientOf)", confirmed, r.get("confirmed"))
        self._same(
            f"{label} confirmed = the confirmations listed",
            confirmed,
            sum(int(c.get("amount") or 0) for c in confirmations),
        )
        state = "none" if confirmed == 0 else "full" if confirmed == amount else "partial"
        self._same(f"{label} receipt state", state, r.get("state"))


def verify(verifier: Verifier, trace: Claim, depth: int) -> None:
    """Check the trace's hops to `depth` against the chain (needs a node)."""
    if verifier.node is None:
        verifier.report.unchecked("hops", "following grants needs a node (--rpc-url): views and eth_getLogs")
        return
    block = verifier.as_of("hops as of", (trace.get("mirror") or {}).get("indexed_block"))
    if block is None:
        return
    Hops(verifier, block).check(trace, depth)
