"""Evidence documents as answers: where a document is anchored, whether it is stored and
who may read it, its redacted copies and its withdrawal."""

from __future__ import annotations

from pydantic import Field

from ledger_api.core.answers import Answer, Proof


class Withdrawal(Answer):
    """The charity withdrew (erased) the document; the anchor stays."""

    disbursement_id: str
    reason: str
    proof: Proof = Field(description="The EvidenceWithdrawn event; `recorded_at` is the withdrawal's time.")


class CopyLink(Answer):
    """A redacted copy and the original it was made from, linked on chain."""

    original_sha256: str
    copy_sha256: str
    proof: Proof = Field(description="The RedactedCopyLinked event.")


class EvidenceView(Answer):
    """A document anchored to a disbursement."""

    sha256: str
    document: str | None = Field(
        description="Where to download it; null when this service does not store it, or the"
        " public may not read it (a restricted original), or it was withdrawn."
    )
    visibility: str | None = Field(
        default=None,
        description="`public` or `restricted` (the original is held for the charity and its"
        " auditors); null for a document this service does not describe.",
    )
    name: str | None = Field(default=None, description="The file's name (public documents only).")
    media_type: str | None = None
    redacted_copy_of: CopyLink | None = Field(default=None, description="Set when this is a redacted copy.")
    redacted_copies: list[CopyLink] = Field(
        default_factory=list, description="Public copies of this original."
    )
    withdrawn: Withdrawal | None = None
    proof: Proof


class Anchor(Answer):
    """Where a document is anchored: a disbursement's evidence, or a campaign's report."""

    disbursement_id: str | None = None
    report_id: str | None = None
    campaign_id: str | None = None  # a report's campaign
    proof: Proof


class EvidenceAnchors(Answer):
    """A document anchored on the ledger that this answer does not serve (not stored here,
    restricted, or withdrawn): where it is anchored, anyone with a copy can check it."""

    sha256: str
    stored: bool
    visibility: str | None = None
    anchored: list[Anchor]
    redacted_copies: list[CopyLink] = Field(default_factory=list)
    redacted_copy_of: CopyLink | None = None
    withdrawn: list[Withdrawal] = Field(default_factory=list)
