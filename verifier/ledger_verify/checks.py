"""Every claim the service makes about a donation, a disbursement or a campaign,
re-derived from the chain: each event decoded with the ABI at its claimed position, the
block it is in still canonical, the contract's view functions at the block the claims are
as of, completeness by topic (eth_getLogs from the deployment block), evidence bytes
against the anchored hash, and the donor commitment."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ledger_verify import protocol as p
from ledger_verify.bundle import Bundle, Tampered
from ledger_verify.net import Node, Service, Unavailable
from ledger_verify.reference import commitment
from ledger_verify.report import Report

Claim = dict[str, Any]


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _topic(value: bytes) -> str:
    return "0x" + value.rjust(32, b"\0").hex()


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


class Verifier:
    def __init__(
        self,
        report: Report,
        node: Node | None,
        contract: str,
        deployment_block: int,
        service: Service | None = None,
        bundle: Bundle | None = None,
    ) -> None:
        self.report = report
        self.node = node
        self.contract = contract.lower()
        self.deployment_block = deployment_block
        self.service = service
        self.bundle = bundle
        self._blocks: dict[int, dict[str, Any] | None] = {}
        self._checked_blocks: set[int] = set()

    # ------------------------------------------------------------ the chain's side

    def _node_block(self, number: int) -> dict[str, Any] | None:
        if number not in self._blocks and self.node is not None:
            self._blocks[number] = self.node.block(number)
        return self._blocks.get(number)

    def _canonical(self, label: str, proof: Claim) -> bool:
        """The claimed block hash is the chain's at that height (once per block)."""
        number, claimed = proof.get("block_number"), proof.get("block_hash")
        if not isinstance(number, int):
            self.report.unchecked(f"{label} block", "the claim names no block number")
            return False
        if number in self._checked_blocks:
            return True
        self._checked_blocks.add(number)
        if self.node is None:
            return True  # the bundle's header check stands for it
        block = self._node_block(number)
        if block is None:
            self.report.mismatch(f"block {number} hash", claimed, "no such block")
            return False
        good = self.report.compare(f"block {number} hash (canonical)", claimed, block["hash"])
        recorded = proof.get("recorded_at")
        if recorded is not None:
            at = datetime.fromtimestamp(_int(block["timestamp"]), UTC).isoformat()
            good &= self.report.compare(f"block {number} time", recorded, at)
        return good

    def event(self, label: str, proof: Claim | None, name: str) -> dict[str, Any] | None:
        """The event of `name` at the claimed position, decoded; None after reporting why."""
        if not isinstance(proof, dict):
            self.report.unchecked(label, "the claim has no chain reference")
            return None
        block_number, tx_hash, log_index = (
            proof.get("block_number"),
            proof.get("tx_hash"),
            proof.get("log_index"),
        )
        if not (isinstance(block_number, int) and isinstance(tx_hash, str) and isinstance(log_index, int)):
            self.report.unchecked(label, "the claim's chain reference is incomplete")
            return None
        where = f"block {block_number}, transaction {tx_hash}, log {log_index}"
        try:
            if self.bundle is not None:
                address, topics, data = self.bundle.log(block_number, tx_hash, log_index)
                claimed_hash = proof.get("block_hash")
                proven = _hex(self.bundle.block(block_number).hash)
                if claimed_hash != proven:
                    self.report.mismatch(f"{label} block {block_number} hash", claimed_hash, proven)
                    return None
                self._canonical(label, proof)
            else:
                located = self._node_log(label, proof, block_number, tx_hash, log_index)
                if located is None:
                    return None
                address, topics, data = located
        except Tampered as exc:
            self.report.mismatch(label, where, f"the bundle does not prove it: {exc}")
            return None
        except LookupError as exc:
            self.report.unchecked(label, str(exc))
            return None
        except Unavailable as exc:
            self.report.unchecked(label, str(exc))
            return None
        if _hex(address) != self.contract:
            self.report.mismatch(f"{label} contract", self.contract, _hex(address))
            return None
        event = p.events()[name]
        try:
            fields = p.decode_log(event, topics, data)
        except Exception as exc:
            found = p.event_by_topic(topics[0]) if topics else None
            what = f"a {found.name} event" if found else f"not a {name} event ({exc})"
            self.report.mismatch(f"{label} event", f"{name} at {where}", what)
            return None
        self.report.ok(f"{label} event", f"{name} at {where}")
        return fields

    def _node_log(
        self, label: str, proof: Claim, block_number: int, tx_hash: str, log_index: int
    ) -> tuple[bytes, list[bytes], bytes] | None:
        assert self.node is not None
        receipt = self.node.receipt(tx_hash)
        if receipt is None:
            self.report.mismatch(f"{label} transaction", tx_hash, "no such transaction")
            return None
        if _int(receipt["blockNumber"]) != block_number:
            self.report.mismatch(f"{label} block", block_number, _int(receipt["blockNumber"]))
            return None
        if not self._canonical(label, proof):
            return None
        block = self._node_block(block_number)
        if block is not None and receipt.get("blockHash") != block["hash"]:
            self.report.mismatch(f"{label} transaction's block", block["hash"], receipt.get("blockHash"))
            return None
        log = next(
            (entry for entry in receipt.get("logs") or [] if _int(entry["logIndex"]) == log_index), None
        )
        if log is None:
            self.report.mismatch(f"{label} log", f"log {log_index} of {tx_hash}", "no such log")
            return None
        return (
            bytes.fromhex(log["address"][2:]),
            [bytes.fromhex(t[2:]) for t in log["topics"]],
            bytes.fromhex(log["data"][2:]),
        )

    def view(self, label: str, name: str, block: int, *args: Any) -> dict[str, Any] | None:
        if self.node is None:
            self.report.unchecked(label, f"{name} needs a node (--rpc-url)")
            return None
        try:
            return p.view_result(name, self.node.eth_call(self.contract, p.view_call(name, *args), block))
        except Unavailable as exc:
            self.report.unchecked(label, str(exc))
        except Exception as exc:
            self.report.mismatch(label, f"an answer of {name}", f"undecodable ({exc})")
        return None

    def logs(
        self, label: str, name: str, topics: list[bytes | None], end: int
    ) -> list[dict[str, Any]] | None:
        """Every log of `name` with these topics from the deployment block to `end`."""
        if self.node is None:
            self.report.unchecked(
                label, "eth_getLogs needs a node (--rpc-url): a bundle cannot prove absence"
            )
            return None
        query: list[str | None] = [
            _hex(p.events()[name].topic),
            *(None if t is None else _topic(t) for t in topics),
        ]
        try:
            return self.node.logs(self.contract, query, self.deployment_block, end)
        except Unavailable as exc:
            self.report.unchecked(label, str(exc))
            return None

    def complete(
        self, label: str, name: str, topics: list[bytes | None], end: int, claimed: list[Claim]
    ) -> None:
        """The claimed records are exactly the chain's logs of `name` with these topics."""
        found = self.logs(label, name, topics, end)
        if found is None:
            return
        key = lambda b, t, i: (b, str(t).lower(), i)  # noqa: E731
        chain = {key(_int(x["blockNumber"]), x["transactionHash"], _int(x["logIndex"])) for x in found}
        said = {
            key(c.get("block_number"), c.get("tx_hash"), c.get("log_index"))
            for c in claimed
            if isinstance(c, dict)
        }
        if chain == said and len(said) == len(claimed):
            self.report.ok(label, f"{len(chain)} {name} event(s) from block {self.deployment_block} to {end}")
            return
        missing = sorted(chain - said)
        extra = sorted(said - chain)
        self.report.mismatch(
            label,
            f"{len(claimed)} record(s)",
            f"{len(chain)} {name} event(s); not claimed: {missing or 'none'};"
            f" claimed but not on chain: {extra or 'none'}",
        )

    def as_of(self, label: str, block: Any) -> int | None:
        """The block the claims are as of, if the node has reached it."""
        if not isinstance(block, int) or block < 0:
            self.report.unchecked(label, "the claims do not say which block they are as of")
            return None
        if self.node is not None:
            head = self.node.head()
            if head < block:
                self.report.unchecked(
                    label, f"the node is at block {head}, the claims are as of block {block}"
                )
                return None
        return block

    # ------------------------------------------------------------ records

    def chain_id(self, claimed: Any) -> None:
        if self.node is not None:
            self.report.compare("chain id", claimed, self.node.chain_id())

    def contract_code(self, taken_from: str) -> bool:
        if self.node is None:
            self.report.unchecked(f"contract {self.contract} ({taken_from})", "code check needs a node")
            return True
        code = self.node.code(self.contract)
        if not code:
            self.report.mismatch(
                f"contract {self.contract} ({taken_from})", "a contract", "no code at the address"
            )
            return False
        self.report.ok(f"contract {self.contract} ({taken_from})", f"{len(code):,} bytes of code")
        return True

    def campaign_facts(
        self, label: str, campaign: Claim, currency: Any, charity: Claim | None, block: int | None
    ) -> None:
        """A campaign's name (its CampaignCreated event), currency and charity (campaignOf),
        and the charity's name (its CharityRegistered event)."""
        campaign_id = campaign.get("id", "")
        raw = p.id_bytes(campaign_id)
        if block is not None:
            view = self.view(f"{label} campaign {campaign_id}", "campaignOf", block, raw)
            if view is not None:
                self.report.compare(
                    f"{label} campaign {campaign_id} currency", currency, p.text(view["currency"])
                )
                if charity is not None:
                    self.report.compare(
                        f"{label} campaign {campaign_id} charity",
                        charity.get("id"),
                        p.text(view["charityId"]),
                    )
        if "name" in campaign:
            self._name(f"campaign {campaign_id} name", "CampaignCreated", raw, block, campaign["name"])
        if charity is not None and "name" in charity:
            charity_id = str(charity.get("id", ""))
            self._name(
                f"charity {charity_id} name",
                "CharityRegistered",
                p.id_bytes(charity_id),
                block,
                charity["name"],
            )

    def _name(self, label: str, event: str, raw_id: bytes, block: int | None, claimed: Any) -> None:
        if self.bundle is not None:
            # The bundle proves the record's creation event (the contract creates an ID once).
            origins = self.bundle.data.get("origins")
            origin = origins.get(event) if isinstance(origins, dict) else None
            fields = self.event(label, origin, event)
            if fields is not None:
                key = "campaignId" if event == "CampaignCreated" else "charityId"
                if self.report.compare(f"{label} (its record)", p.text(raw_id), p.text(fields[key])):
                    self.report.compare(label, claimed, fields["name"])
            return
        if block is None:
            self.report.unchecked(label, "no block to search up to")
            return
        found = self.logs(label, event, [raw_id], block)
        if found is None:
            return
        if len(found) != 1:
            self.report.mismatch(label, f"one {event} event", f"{len(found)}")
            return
        log = found[0]
        fields = p.decode_log(
            p.events()[event], [bytes.fromhex(t[2:]) for t in log["topics"]], bytes.fromhex(log["data"][2:])
        )
        self.report.compare(label, claimed, fields["name"])

    def evidence(self, label: str, disbursement_id: str, items: list[Claim], block: int | None) -> None:
        raw = p.id_bytes(disbursement_id)
        for item in items:
            sha = str(item.get("sha256", ""))
            what = f"{label} evidence {sha}"
            fields = self.event(what, item.get("proof"), "EvidenceAnchored")
            if fields is not None:
                self.report.compare(f"{what} disbursement", disbursement_id, p.text(fields["disbursementId"]))
                self.report.compare(f"{what} hash", sha, fields["documentHash"].hex())
            if block is not None and len(sha) == 64:
                anchored = self.view(
                    f"{what} isEvidenceAnchored", "isEvidenceAnchored", block, raw, bytes.fromhex(sha)
                )
                if anchored is not None:
                    self.report.compare(f"{what} isEvidenceAnchored", True, anchored["value0"])
            self._document(what, sha, item.get("document"))
        if block is not None:
            self.complete(
                f"{label} evidence complete",
                "EvidenceAnchored",
                [raw],
                block,
                [i.get("proof") or {} for i in items],
            )

    def _document(self, label: str, sha: str, url: Any) -> None:
        if not isinstance(url, str):
            self.report.unchecked(
                f"{label} document", "the service does not store it: check your copy with sha256sum"
            )
            return
        if self.service is None:
            self.report.unchecked(f"{label} document", "no --api to download it from")
            return
        try:
            body = self.service.document(url)
        except Unavailable as exc:
            self.report.unchecked(f"{label} document", str(exc))
            return
        self.report.compare(
            f"{label} document SHA-256 of the downloaded bytes", sha, hashlib.sha256(body).hexdigest()
        )

    def disbursement_event(self, label: str, d: Claim, campaign_id: str | None) -> dict[str, Any] | None:
        fields = self.event(label, d.get("proof"), "DisbursementRecorded")
        if fields is None:
            return None
        self.report.compare(f"{label} id", d.get("id"), p.text(fields["disbursementId"]))
        if campaign_id is not None:
            self.report.compare(f"{label} campaign", campaign_id, p.text(fields["campaignId"]))
        self.report.compare(f"{label} amount", d.get("amount"), fields["amount"])
        self.report.compare(f"{label} recipient", d.get("recipient"), fields["recipient"])
        self.report.compare(f"{label} purpose", d.get("purpose"), fields["purpose"])
        return fields

    # ------------------------------------------------------------ a donation

    def donation(self, t: Claim, secret: bytes | None, reference: str | None) -> None:
        donation_id = str(t.get("id", ""))
        raw = p.id_bytes(donation_id)
        label = f"donation {donation_id}"
        mirror = t.get("mirror") or {}
        block = self.as_of(f"{label} as of", mirror.get("indexed_block"))
        campaign = t.get("campaign") or {}
        fields = self.event(label, t.get("proof"), "DonationRecorded")
        if fields is not None:
            self.report.compare(f"{label} id", donation_id, p.text(fields["donationId"]))
            self.report.compare(f"{label} campaign", campaign.get("id"), p.text(fields["campaignId"]))
            self.report.compare(f"{label} amount", t.get("amount"), fields["amount"])
            self.report.compare(f"{label} channel", t.get("channel"), p.text(fields["channel"]))
            if secret is not None and reference is not None:
                mine = commitment(secret, reference)
                if mine == fields["donorCommitment"]:
                    self.report.ok(
                        f"{label} ownership", "keccak256(secret || reference) is the donor commitment"
                    )
                else:
                    self.report.mismatch(f"{label} ownership", _hex(mine), _hex(fields["donorCommitment"]))
        self.campaign_facts(label, campaign, t.get("currency"), t.get("charity"), block)

        allocations = [a for a in t.get("allocations") or [] if isinstance(a, dict)]
        refunds = [r for r in t.get("refunds") or [] if isinstance(r, dict)]
        running = 0
        for n, a in enumerate(allocations, 1):
            d = a.get("disbursement") or {}
            what = f"allocation {n} (to {d.get('id')})"
            af = self.event(what, a.get("proof"), "DonationAllocated")
            if af is not None:
                self.report.compare(f"{what} donation", donation_id, p.text(af["donationId"]))
                self.report.compare(f"{what} disbursement", d.get("id"), p.text(af["disbursementId"]))
                self.report.compare(f"{what} amount", a.get("amount"), af["amount"])
                running += af["amount"]
                self.report.compare(f"{what} running total of the donation", running, af["donationAllocated"])
            self.disbursement_event(f"{what} disbursement {d.get('id')}", d, campaign.get("id"))
            if block is not None and isinstance(d.get("id"), str):
                self.evidence(f"disbursement {d['id']}", d["id"], list(d.get("evidence") or []), block)
        running = 0
        for n, r in enumerate(refunds, 1):
            what = f"refund {n} ({r.get('id')})"
            rf = self.event(what, r.get("proof"), "DonationRefunded")
            if rf is not None:
                self.report.compare(f"{what} id", r.get("id"), p.text(rf["refundId"]))
                self.report.compare(f"{what} donation", donation_id, p.text(rf["donationId"]))
                self.report.compare(f"{what} amount", r.get("amount"), rf["amount"])
                self.report.compare(f"{what} reason", r.get("reason"), rf["reason"])
                running += rf["amount"]
                self.report.compare(f"{what} running total of the donation", running, rf["donationRefunded"])
        if block is None:
            return
        self.complete(
            f"{label} allocations complete",
            "DonationAllocated",
            [None, raw],
            block,
            [a.get("proof") or {} for a in allocations],
        )
        self.complete(
            f"{label} refunds complete",
            "DonationRefunded",
            [None, raw],
            block,
            [r.get("proof") or {} for r in refunds],
        )
        view = self.view(f"{label} donationOf at block {block}", "donationOf", block, raw)
        if view is not None:
            at = f"(donationOf at block {block})"
            self.report.compare(f"{label} amount {at}", t.get("amount"), view["amount"])
            self.report.compare(f"{label} allocated {at}", t.get("allocated"), view["allocated"])
            self.report.compare(f"{label} refunded {at}", t.get("refunded"), view["refunded"])
            self.report.compare(f"{label} remaining {at}", t.get("remaining"), view["remaining"])
            self.report.compare(
                f"{label} allocated = the allocations listed", t.get("allocated"), sum(_amounts(allocations))
            )
            self.report.compare(
                f"{label} refunded = the refunds listed", t.get("refunded"), sum(_amounts(refunds))
            )

    # ------------------------------------------------------------ a disbursement

    def disbursement(self, d: Claim, secret: bytes | None = None, reference: str | None = None) -> None:
        disbursement_id = str(d.get("id", ""))
        raw = p.id_bytes(disbursement_id)
        label = f"disbursement {disbursement_id}"
        block = self.as_of(f"{label} as of", _as_of(d.get("proof")))
        campaign = d.get("campaign") or {}
        fields = self.disbursement_event(label, d, campaign.get("id"))
        if fields is not None and secret is not None and reference is not None:
            # A private recipient's proof: `private:0x` keccak256(secret || details) is the
            # recipient on chain (the details normalised as a donor reference is).
            mine = "private:" + _hex(commitment(secret, reference))
            if mine == fields["recipient"]:
                self.report.ok(
                    f"{label} recipient", "private:0x keccak256(secret || details) is the recipient on chain"
                )
            else:
                self.report.mismatch(f"{label} recipient", mine, fields["recipient"])
        self.campaign_facts(label, campaign, d.get("currency"), {"id": d.get("charity_id")}, block)
        funded = [f for f in d.get("funded_by") or [] if isinstance(f, dict)]
        for n, f in enumerate(funded, 1):
            what = f"allocation {n} (from {f.get('donation_id')})"
            af = self.event(what, f.get("proof"), "DonationAllocated")
            if af is not None:
                self.report.compare(f"{what} disbursement", disbursement_id, p.text(af["disbursementId"]))
                self.report.compare(f"{what} donation", f.get("donation_id"), p.text(af["donationId"]))
                self.report.compare(f"{what} amount", f.get("amount"), af["amount"])
        if block is None:
            return
        self.complete(
            f"{label} allocations complete",
            "DonationAllocated",
            [raw],
            block,
            [f.get("proof") or {} for f in funded],
        )
        self.evidence(label, disbursement_id, list(d.get("evidence") or []), block)
        view = self.view(f"{label} disbursementOf at block {block}", "disbursementOf", block, raw)
        if view is not None:
            at = f"(disbursementOf at block {block})"
            self.report.compare(f"{label} amount {at}", d.get("amount"), view["amount"])
            self.report.compare(f"{label} allocations {at}", len(funded), view["allocationCount"])
            self.report.compare(
                f"{label} evidence documents {at}", len(d.get("evidence") or []), view["evidenceCount"]
            )
            self.report.compare(
                f"{label} amount = the allocations listed", d.get("amount"), sum(_amounts(funded))
            )

    # ------------------------------------------------------------ a campaign

    def campaign(self, c: Claim) -> None:
        campaign_id = str(c.get("id", ""))
        raw = p.id_bytes(campaign_id)
        label = f"campaign {campaign_id}"
        block = self.as_of(f"{label} as of", _as_of(c.get("proof")))
        fields = self.event(label, c.get("proof"), "CampaignCreated")
        if fields is not None:
            self.report.compare(f"{label} id", campaign_id, p.text(fields["campaignId"]))
            self.report.compare(f"{label} charity", c.get("charity_id"), p.text(fields["charityId"]))
            self.report.compare(f"{label} name", c.get("name"), fields["name"])
            self.report.compare(f"{label} currency", c.get("currency"), p.text(fields["currency"]))
            self.report.compare(f"{label} goal", c.get("goal"), fields["goal"])
        if block is None:
            return
        view = self.view(f"{label} campaignOf at block {block}", "campaignOf", block, raw)
        if view is None:
            return
        at = f"(campaignOf at block {block})"
        for claim, field in (
            ("closed", "closed"),
            ("goal", "goal"),
            ("received", "received"),
            ("refunded", "refunded"),
            ("disbursed", "disbursed"),
            ("available", "available"),
            ("donation_count", "donationCount"),
            ("disbursement_count", "disbursementCount"),
        ):
            self.report.compare(f"{label} {claim} {at}", c.get(claim), view[field])
        self._coverage(label, raw, c.get("evidence_coverage") or {}, view, block)

    def _coverage(self, label: str, raw: bytes, claimed: Claim, view: dict[str, Any], block: int) -> None:
        found = self.logs(f"{label} evidence coverage", "DisbursementRecorded", [None, raw], block)
        if found is None:
            return
        count = amount = 0
        for log in found:
            disbursement = bytes.fromhex(log["topics"][1][2:])
            d = self.view(f"{label} evidence coverage", "disbursementOf", block, disbursement)
            if d is None:
                return
            if d["evidenceCount"] > 0:
                count += 1
                amount += d["amount"]
        total, paid = view["disbursementCount"], view["disbursed"]
        chain = {
            "disbursements_with_evidence": count,
            "share_of_disbursements": round(count / total, 4) if total else None,
            "share_of_amount": round(amount / paid, 4) if paid else None,
        }
        for key, value in chain.items():
            said = claimed.get(key)
            if isinstance(value, float) and isinstance(said, int | float):
                said = float(said)
            self.report.compare(f"{label} evidence coverage {key}", said, value)


def _amounts(records: list[Claim]) -> list[int]:
    return [r["amount"] for r in records if isinstance(r.get("amount"), int)]


def _as_of(proof: Any) -> int | None:
    """The mirror's indexed height when it answered: block + confirmations - 1."""
    if not isinstance(proof, dict):
        return None
    number, confirmations = proof.get("block_number"), proof.get("confirmations")
    if isinstance(number, int) and isinstance(confirmations, int) and confirmations >= 1:
        return number + confirmations - 1
    return None


def kind_of(record_id: str) -> str | None:
    return {"DN": "donation", "DB": "disbursement", "CP": "campaign"}.get(record_id.strip().upper()[:2])


Runner = Callable[[Verifier, Claim], None]
