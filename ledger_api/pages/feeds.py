"""Atom feeds: a donor follows a donation (a campaign, a charity) without an account.

`GET /v1/donations/{id}/feed.atom`, `/v1/campaigns/{id}/feed.atom`,
`/v1/charities/{id}/feed.atom`: public, no key, no cookie read or set, no tracking
parameter in any link. A feed reader polls the address and shows what is new; the
service learns nothing but what any page read tells it.

- Only final records (block at or below the mirror's finalized block), so an entry never
  appears and then vanishes with a reorganisation. The newest FEED_LIMIT entries.
- The donation's feed is read with the trace's own reads (`donations.trace.trace`, every
  hop): the donation recorded, each disbursement that allocates it with the donor's share,
  the evidence anchored to those, its refunds, and the payments made onward through grants
  with the donor's share at each hop. A campaign's and a charity's feed are
  `campaigns.activity`: payouts, evidence, refunds, closure, corrections.
- An entry's ID is built from the chain (chain id, contract, transaction, log index) and
  the feed's subject, so it never changes; `updated` is the block's time.
- Titles and summaries in the reader's language: `?lang=` or Accept-Language (no cookie:
  a feed reader keeps none, and the answer must not depend on one). A private recipient is
  "a private person (identity withheld)", as on the pages.
- Text from the chain is anyone's text: lxml escapes markup, and the characters XML 1.0
  cannot carry (control characters, lone surrogates) are dropped first (`xml_text`), so a
  purpose such as `<script>`, `]]>` or `\\x01` is shown as text and never breaks the feed.
- Caching: a strong ETag (SHA-256 of the document, so it changes exactly when the content
  or its language does), Last-Modified (the newest entry's block time), 304 on a matching
  If-None-Match (or, without one, an If-Modified-Since at or after Last-Modified), and a
  short public max-age.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from feedgen.feed import FeedGenerator

from ledger_api.campaigns import activity
from ledger_api.core import ids, reference
from ledger_api.core.answers import Proof
from ledger_api.core.errors import InvalidRequest, NotFound, problems
from ledger_api.core.formats import xml_text
from ledger_api.donations.hops import MAX_DEPTH
from ledger_api.donations.schemas import DonationTrace
from ledger_api.donations.trace import trace
from ledger_api.mirror.gateway import Mirror, MirrorDep
from ledger_api.pages.i18n import DEFAULT, Reader, from_accept_language, language_of

FEED_LIMIT = 50
MAX_AGE = 60  # seconds: a new payout shows within a minute of being final
MEDIA_TYPE = "application/atom+xml"
URN = "urn:charity-ledger"

router = APIRouter(tags=["feeds"])

ATOM_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "content": {
            MEDIA_TYPE: {"schema": {"type": "string", "description": "An Atom 1.0 feed (RFC 4287)."}}
        },
        "description": "The Atom feed (final records only)",
    },
    304: {"description": "Not modified: the feed the client holds (If-None-Match, If-Modified-Since)"},
    **problems(NotFound, InvalidRequest),
}
Lang = Annotated[
    str | None, Query(max_length=20, description="`en` or `zh-CN`; else Accept-Language; else English.")
]


def feed_path(kind: str, record_id: str) -> str:
    """The feed's path of a donation, campaign or charity (kind: their page's folder)."""
    return f"/v1/{kind}/{record_id}/feed.atom"


@dataclass(frozen=True)
class Entry:
    key: str  # what the entry is about, with the event's position: unique within the feed
    proof: Proof
    title: str
    summary: str
    link: str  # a public page's path (every entry has one)


def _reader(request: Request, lang: str | None) -> Reader:
    """`?lang=` or Accept-Language (never the cookie); the deployment's time zone is not
    needed: a feed's times are ISO 8601 in UTC."""
    chosen = language_of(lang)
    if chosen is not None:
        return Reader(chosen, chosen=chosen)
    return Reader(from_accept_language(request.headers.get("accept-language")) or DEFAULT)


def _canonical(value: str, kind: str) -> str:
    """The canonical ID, or 404: an ID that cannot be one is a feed that does not exist."""
    try:
        return ids.from_bytes32(ids.to_bytes32(value.strip(), kind))
    except ValueError:
        raise NotFound(f"no such {kind}: not a {kind} ID") from None


def _recipient(reader: Reader, recipient: str | None) -> str:
    if recipient is None:
        return ""
    return reader.t("recipient.private") if reference.is_private(recipient) else recipient


def _donation_entries(reader: Reader, d: DonationTrace) -> list[Entry]:
    """The trace's final records as entries: the donation, its payouts with the donor's
    share, their evidence, its refunds, and its onward payments through grants."""
    c = d.currency
    out = [
        Entry(
            "donation",
            d.proof,
            reader.t("feed.entry.donation", amount=reader.money(d.amount, c)),
            reader.t(
                "feed.entry.donation_text",
                amount=reader.money(d.amount, c),
                campaign=d.campaign.name,
                charity=d.charity.name,
            ),
            f"/donations/{d.id}",
        )
    ]
    for a in d.allocations:
        b = a.disbursement
        fields: dict[str, object] = {
            "share": reader.money(a.amount, c),
            "amount": reader.money(b.amount, c),
            "recipient": _recipient(reader, b.recipient),
            "purpose": b.purpose,
            "id": b.id,
        }
        out.append(
            Entry(
                f"allocation:{b.id}",
                a.proof,
                reader.t("feed.entry.paid", **fields),
                reader.t("feed.entry.paid_text", **fields),
                f"/disbursements/{b.id}",
            )
        )
        out += _evidence(reader, b.id, b.amount, c, b.purpose, [(e.sha256, e.proof) for e in b.evidence])
    for f in d.refunds:
        out.append(
            Entry(
                f"refund:{f.id}",
                f.proof,
                reader.t("feed.entry.refund", amount=reader.money(f.amount, c)),
                reader.t("feed.entry.refund_text", amount=reader.money(f.amount, c), reason=f.reason),
                f"/donations/{d.id}",
            )
        )
    for hop in d.hops or []:
        if hop.depth < 2:  # hop 1 is the donation's own payouts, above
            continue
        for h in hop.disbursements:
            if h.proof is None:
                continue
            fields = {
                "depth": hop.depth,
                "share": reader.money(h.donor_share, c),
                "amount": reader.money(h.amount, c),
                "recipient": _recipient(reader, h.recipient),
                "purpose": h.purpose,
                "campaign": h.campaign.name,
                "charity": h.charity.name,
                "id": h.id,
            }
            out.append(
                Entry(
                    f"onward:{h.id}",
                    h.proof,
                    reader.t("feed.entry.onward", **fields),
                    reader.t("feed.entry.onward_text", **fields),
                    f"/disbursements/{h.id}",
                )
            )
            out += _evidence(reader, h.id, h.amount, c, h.purpose, [(e.sha256, e.proof) for e in h.evidence])
    return out


def _evidence(
    reader: Reader,
    disbursement_id: str,
    amount: int,
    currency: str,
    purpose: str,
    documents: Iterable[tuple[str, Proof]],
) -> list[Entry]:
    fields = {"amount": reader.money(amount, currency), "purpose": purpose, "id": disbursement_id}
    return [
        Entry(
            f"evidence:{disbursement_id}:{sha256}",
            anchored,
            reader.t("feed.entry.evidence", **fields),
            reader.t("feed.entry.evidence_text", sha256=sha256, **fields),
            f"/disbursements/{disbursement_id}",
        )
        for sha256, anchored in documents
    ]


# The page of a corrected record, by the kind the correction names (a refund has none).
PAGES = {"campaign": "campaigns", "donation": "donations", "disbursement": "disbursements"}


def _activity_entries(reader: Reader, items: list[activity.Activity], page: str) -> list[Entry]:
    """Entries for a campaign's or a charity's records; `page` is its own page, the link of
    an entry whose record has none."""
    out = []
    for a in items:
        campaign = a.campaign.name if a.campaign is not None else ""
        money = reader.money(a.amount, a.currency) if a.amount is not None and a.currency else ""
        if a.kind == "disbursement":
            fields = {
                "campaign": campaign,
                "amount": money,
                "recipient": _recipient(reader, a.recipient),
                "purpose": a.purpose or "",
                "id": a.disbursement_id,
            }
            out.append(
                Entry(
                    f"disbursement:{a.disbursement_id}",
                    a.proof,
                    reader.t("feed.entry.disbursed", **fields),
                    reader.t("feed.entry.disbursed_text", **fields),
                    f"/disbursements/{a.disbursement_id}",
                )
            )
        elif (
            a.kind == "evidence" and a.disbursement_id and a.document and a.amount is not None and a.currency
        ):
            out += _evidence(
                reader, a.disbursement_id, a.amount, a.currency, a.purpose or "", [(a.document, a.proof)]
            )
        elif a.kind == "refund":
            out.append(
                Entry(
                    f"refund:{a.refund_id}",
                    a.proof,
                    reader.t("feed.entry.refund", amount=money),
                    reader.t(
                        "feed.entry.refund_campaign_text", campaign=campaign, amount=money, reason=a.reason
                    ),
                    f"/donations/{a.donation_id}",
                )
            )
        elif a.kind == "closure" and a.campaign is not None:
            out.append(
                Entry(
                    f"closure:{a.campaign.id}",
                    a.proof,
                    reader.t("feed.entry.closed", campaign=campaign),
                    reader.t("feed.entry.closed_text", campaign=campaign),
                    f"/campaigns/{a.campaign.id}",
                )
            )
        elif a.kind == "correction":
            summary = reader.t("feed.entry.correction_text", reason=a.reason)
            if a.replacement_id:
                summary += " " + reader.t("feed.entry.correction_replaced", id=a.replacement_id)
            out.append(
                Entry(
                    f"correction:{a.correction_id}",
                    a.proof,
                    reader.t("feed.entry.correction", id=a.original_id),
                    summary,
                    f"/{PAGES[a.original_kind]}/{a.original_id}" if a.original_kind in PAGES else page,
                )
            )
    return out


@dataclass(frozen=True)
class Feed:
    subject: str  # the subject's canonical ID
    title: str
    subtitle: str
    author: str  # the charity
    page: str  # the subject's page (path)
    self_path: str
    created: Proof  # the subject's own record: the feed's time when it has no entry yet
    entries: list[Entry]


def _when(p: Proof) -> datetime:
    return datetime.fromisoformat(p.recorded_at) if p.recorded_at else datetime.fromtimestamp(0, UTC)


def render(feed: Feed, reader: Reader, base: str) -> tuple[bytes, datetime | None]:
    """The Atom document and its Last-Modified (the newest entry's block time, or None
    when it has none). Final entries only, newest first, at most FEED_LIMIT."""
    final = sorted(
        (e for e in feed.entries if e.proof.final),
        key=lambda e: (e.proof.block_number, e.proof.log_index),
        reverse=True,
    )[:FEED_LIMIT]
    newest = max((_when(e.proof) for e in final), default=None)
    fg = FeedGenerator()
    fg.id(f"{URN}:feed:{feed.created.chain_id}:{feed.created.contract.lower()}:{feed.subject}")
    fg.title(xml_text(feed.title))
    fg.subtitle(xml_text(feed.subtitle))
    fg.author({"name": xml_text(feed.author) or "-"})
    fg.link(href=base + feed.page, rel="alternate", type="text/html")
    query = f"?lang={reader.chosen}" if reader.chosen else ""
    fg.link(href=base + feed.self_path + query, rel="self", type=MEDIA_TYPE)
    fg.language(reader.lang)
    fg.updated(newest or _when(feed.created))
    fg.generator("charity-ledger")  # no version: the document changes only with its content
    for e in reversed(final):  # feedgen prepends: added oldest first, written newest first
        p = e.proof
        item = fg.add_entry()
        item.id(f"{URN}:{p.chain_id}:{p.contract.lower()}:{p.tx_hash}:{p.log_index}:{feed.subject}:{e.key}")
        item.title(xml_text(e.title))
        item.summary(xml_text(e.summary))
        item.updated(_when(p))
        item.link(href=base + e.link, rel="alternate", type="text/html")  # Atom: a link or content
    return fg.atom_str(pretty=True), newest


def _answer(request: Request, reader: Reader, body: bytes, modified: datetime | None) -> Response:
    """The feed, or 304 when the client's copy is this one."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:40] + '"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={MAX_AGE}",
        "Vary": "Accept-Language",
        "Content-Language": reader.lang,
    }
    if modified is not None:
        headers["Last-Modified"] = format_datetime(modified.astimezone(UTC), usegmt=True)
    if _not_modified(request, etag, modified):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=f"{MEDIA_TYPE}; charset=utf-8", headers=headers)


def _not_modified(request: Request, etag: str, modified: datetime | None) -> bool:
    """RFC 9110 13.2.2: If-None-Match when present (weak comparison, `*` matches), else
    If-Modified-Since (an unreadable date is ignored)."""
    none_match = request.headers.get("if-none-match")
    if none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in none_match[:4096].split(",")}
        return "*" in tags or etag in tags
    since = request.headers.get("if-modified-since")
    if since is None or modified is None:
        return False
    try:
        when = parsedate_to_datetime(since[:100])
    except (TypeError, ValueError, IndexError):
        return False
    if when.tzinfo is None:
        return False
    return modified.replace(microsecond=0) <= when


def _base(request: Request, mirror: Mirror) -> str:
    public = mirror.settings.public_url
    return (public or str(request.base_url)).rstrip("/")


@router.get(
    "/v1/donations/{donation_id}/feed.atom",
    response_class=Response,
    responses=ATOM_RESPONSES,
    name="feed_donation",
)
def donation_feed(request: Request, donation_id: str, mirror: MirrorDep, lang: Lang = None) -> Response:
    """A donation's Atom feed: it recorded, each payout of it (with the donor's share),
    their evidence, its refunds and its payments onward through grants, each once final;
    the newest 50. No key, no cookie."""
    canonical = _canonical(donation_id, "donation")
    d = trace(mirror, canonical, MAX_DEPTH)
    reader = _reader(request, lang)
    feed = Feed(
        subject=d.id,
        title=reader.t("feed.donation.title", id=d.id),
        subtitle=reader.t("feed.donation.subtitle", n=FEED_LIMIT),
        author=d.charity.name,
        page=f"/donations/{d.id}",
        self_path=feed_path("donations", d.id),
        created=d.proof,
        entries=_donation_entries(reader, d),
    )
    return _answer(request, reader, *render(feed, reader, _base(request, mirror)))


def _activity_feed(
    request: Request, mirror: Mirror, found: activity.Activities, kind: str, lang: str | None
) -> Response:
    reader = _reader(request, lang)
    subject = found.subject
    folder = "campaigns" if kind == "campaign" else "charities"
    page = f"/{folder}/{subject.id}"
    title = (
        reader.t("feed.campaign.title", name=subject.name)
        if kind == "campaign"
        else reader.t("feed.charity.title", name=subject.name)
    )
    feed = Feed(
        subject=subject.id,
        title=title,
        subtitle=reader.t("feed.activity.subtitle", n=FEED_LIMIT),
        author=subject.charity.name,
        page=page,
        self_path=feed_path(folder, subject.id),
        created=subject.proof,
        entries=_activity_entries(reader, found.items, page),
    )
    return _answer(request, reader, *render(feed, reader, _base(request, mirror)))


@router.get(
    "/v1/campaigns/{campaign_id}/feed.atom",
    response_class=Response,
    responses=ATOM_RESPONSES,
    name="feed_campaign",
)
def campaign_feed(request: Request, campaign_id: str, mirror: MirrorDep, lang: Lang = None) -> Response:
    """A campaign's Atom feed: its payouts, their evidence, its refunds, its closure and
    corrections of its records, each once final; the newest 50. No key, no cookie."""
    found = activity.of_campaign(mirror, _canonical(campaign_id, "campaign"), FEED_LIMIT)
    return _activity_feed(request, mirror, found, "campaign", lang)


@router.get(
    "/v1/charities/{charity_id}/feed.atom",
    response_class=Response,
    responses=ATOM_RESPONSES,
    name="feed_charity",
)
def charity_feed(request: Request, charity_id: str, mirror: MirrorDep, lang: Lang = None) -> Response:
    """A charity's Atom feed: the same as a campaign's, across all its campaigns; the
    newest 50. No key, no cookie."""
    found = activity.of_charity(mirror, _canonical(charity_id, "charity"), FEED_LIMIT)
    return _activity_feed(request, mirror, found, "charity", lang)


__all__ = ["FEED_LIMIT", "feed_path", "router"]
