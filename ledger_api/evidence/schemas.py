"""Evidence documents as answers: where a document is anchored, and whether it is stored."""

from __future__ import annotations

from pydantic import Field

from ledger_api.core.answers import Answer, Proof


class EvidenceView(Answer):
    """A document anchored to a disbursement."""

    sha256: str
    document: str | None = Field(
        description="Where to download it; null when this service does not store it."
    )
    proof: Proof


class Anchor(Answer):
    disbursement_id: str
    proof: Proof


class EvidenceAnchors(Answer):
    """A document anchored on the ledger but not stored here: anyone with a copy can check it."""

    sha256: str
    stored: bool
    anchored: list[Anchor]
