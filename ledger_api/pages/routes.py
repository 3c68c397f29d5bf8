"""The public pages: server-rendered HTML (Jinja2), no JavaScript, in Chinese or English.

They read through the same read services as the JSON API (`/v1/...`), so a page and the
JSON answer for the same ID always agree. A page never shows a donor commitment, an
operator account or anything else personal; the receipt secret and the donor reference are
shown only on the receipt a charity prints by POSTing them, once they are checked against
the donation's on-chain commitment (and that answer is never cached). A donor checks them
with the ownership form, by POST too: the answer echoes neither and is never cached, and
neither is stored or logged.

Errors are pages too: an unknown ID is a 404 page, a malformed one a 422 page, anything
unexpected a 500 page (logged), each in the reader's language. The app's problem+json
handlers are for the JSON API and are not involved: `PageRoute` turns every failure of a
page route into HTML before it reaches them. An address no route answers (404), or a
method it does not take (405), is answered by content negotiation, anywhere, /v1/ included:
a browser (an Accept header preferring text/html to JSON) gets the HTML page, every other
client the problem+json it always got (`install` wraps the app's handler).
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NamedTuple
from urllib.parse import unquote

import jinja2
import mimeparse
import qrcode
import qrcode.image.svg
from fastapi import APIRouter, FastAPI, Form, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from lxml import etree
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger_api.approvals import reads as approval_reads
from ledger_api.campaigns import reads as campaigns
from ledger_api.campaigns.schemas import Campaign
from ledger_api.charities import reads as charities
from ledger_api.charities.schemas import CharitySummary
from ledger_api.core import ids, reference
from ledger_api.core.answers import Named, Proof
from ledger_api.core.errors import InvalidRequest, NotFound
from ledger_api.core.formats import xml_text
from ledger_api.core.hexes import hex0x
from ledger_api.core.pages import RecordFilters
from ledger_api.deployment import reads as deployment
from ledger_api.disbursements.reads import funding, recipient_matches
from ledger_api.disclosure import answers as disclosure_answers
from ledger_api.disclosure import reads as disclosure_reads
from ledger_api.disclosure import rules as disclosure_rules
from ledger_api.disclosure.rules import RuleSet
from ledger_api.donations.hops import MAX_DEPTH
from ledger_api.donations.schemas import DonationTrace
from ledger_api.donations.trace import owns, trace
from ledger_api.mirror.gateway import Mirror, MirrorDep, current_mirror
from ledger_api.mirror.proofs import event_args
from ledger_api.pages import svg, verify
from ledger_api.pages.feeds import feed_path
from ledger_api.pages.i18n import COOKIE, LOCALES, Reader, reader_for
from ledger_api.scorecards import reads as scorecard_reads
from ledger_api.scorecards.schemas import Scorecard

log = logging.getLogger("ledger_api.pages")

HERE = Path(__file__).resolve().parent
SECRET = re.compile(r"^0x[0-9a-fA-F]{64}$")
PAGE_SIZE = 50
HOME_CHARITIES = 50
HOME_CAMPAIGNS = 200
FUNDING_SHOWN = 200
COOKIE_AGE = 365 * 24 * 3600
# A secret and a reference of 400 characters, each percent-encoded (9 bytes a Chinese
# character), fit with room to spare; anything bigger is refused unread.
OWNERSHIP_BODY = 8192
# An answer that carries (or answers about) a secret: not kept by any cache, not sent on.
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
# No script, no external resource, no framing: the pages need none of them.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Vary": "Accept-Language, Cookie",
}


def _printable(value: Any) -> Any:
    """Every value a template prints, without the control characters text from the chain
    may hold (markup built here, like the diagrams, is already clean)."""
    return value if isinstance(value, Markup) or not isinstance(value, str) else xml_text(value)


def _templates(lang: str) -> jinja2.Environment:
    """The templates in one language: `_`/`gettext` and `ngettext` are that language's
    catalog (`i18n.Reader.t`, `Reader.nt`), installed once, so concurrent requests in two
    languages never share them."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_printable,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    # `{% if b.recipient is private_recipient %}`: a private person's commitment.
    environment.tests["private_recipient"] = reference.is_private
    reader = Reader(lang)
    environment.install_gettext_callables(reader.t, reader.nt, newstyle=False)  # type: ignore[attr-defined]
    return environment


templates = {lang: _templates(lang) for lang in LOCALES}


class PageError(Exception):
    """A page that cannot be shown: `status` 404 or 422, for a record of `kind` (and, for
    a 404, the canonical ID that was asked for)."""

    def __init__(self, status: int, kind: str, asked: str | None = None) -> None:
        super().__init__(f"{status} {kind}")
        self.status = status
        self.kind = kind
        self.asked = asked


def render(
    request: Request,
    reader: Reader,
    template: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    shared = {"search_error": None, "query": None, "chain": _chain(request)}  # on any page
    body = templates[reader.lang].get_template(template).render(**{**shared, **context}, r=reader)
    response = HTMLResponse(body, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})
    response.headers["Content-Language"] = reader.lang
    if reader.chosen is not None:  # ?lang= : remember the choice
        response.set_cookie(COOKIE, reader.chosen, max_age=COOKIE_AGE, samesite="lax", httponly=True)
    return response


class ChainLine(NamedTuple):
    """What the footer says of the chain: where to check the records yourself."""

    network: str
    chain_id: int
    address: str
    rpc_url: str | None


def _where(request: Request, mirror: Mirror) -> verify.Where:
    """Where the "Verify it yourself" commands look: the node the footer names (or the
    reader's own, `$RPC_URL`), the contract, its deployment block, and this service."""
    public = mirror.settings.public_url
    return verify.Where(
        rpc_url=deployment.rpc_url(mirror.settings, str(request.base_url)) or verify.RPC_VARIABLE,
        contract=mirror.deployment.address,
        deployment_block=mirror.deployment.block_number,
        base_url=(public or str(request.base_url)).rstrip("/"),
    )


def _args(mirror: Mirror, proofs: list[Proof]) -> dict[tuple[int, int], dict[str, Any]]:
    return event_args(mirror, {verify.at(p) for p in proofs})


def _chain(request: Request) -> ChainLine:
    mirror = current_mirror(request)
    return ChainLine(
        network=deployment.network(mirror.settings, mirror.deployment),
        chain_id=mirror.deployment.chain_id,
        address=mirror.deployment.address,
        rpc_url=deployment.rpc_url(mirror.settings, str(request.base_url)),
    )


FALLBACK = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error</title></head>'
    '<body><main><h1>Something went wrong</h1><p><a href="/">Home</a></p></main></body></html>'
)


def error_page(
    request: Request,
    status: int,
    kind: str = "page",
    asked: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The error page in the reader's language; `asked` is the (canonical) ID not found."""
    try:
        reader = reader_for(request)
        if status == 404:
            heading, message = reader.t("error.not_found"), reader.t(f"error.not_found.{kind}")
        elif status == 403:
            heading, message = reader.t("error.forbidden"), reader.t("error.forbidden_text")
        elif status == 409:
            heading, message = reader.t("error.already_sent"), reader.t("error.already_sent_text")
        elif status == 405:
            heading, message = reader.t("error.not_allowed"), reader.t("error.not_allowed_text")
        elif status == 422:
            heading, message = reader.t("error.invalid"), reader.t(f"error.invalid.{kind}")
        else:
            heading, message = reader.t("error.internal"), reader.t("error.internal_text")
        hint = reader.t("error.hint") if status in (404, 422) and kind == "donation" else None
        return render(
            request,
            reader,
            "error.html",
            status,
            headers,
            heading=heading,
            message=message,
            hint=hint,
            asked=asked,
        )
    except Exception:  # the error page itself failed: still never a stack trace
        log.exception("the error page for %s failed", request.url.path)
        return HTMLResponse(FALLBACK, status_code=500, headers=SECURITY_HEADERS)


class PageRoute(APIRoute):
    """A route whose every failure is answered with an HTML page, in the reader's
    language, never with a problem+json body or a stack trace."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except PageError as exc:
                return error_page(request, exc.status, exc.kind, exc.asked)
            except RequestValidationError:
                return error_page(request, 422, "form")
            except Exception:
                log.exception("page %s %s failed", request.method, request.url.path)
                return error_page(request, 500)

        return guarded


router = APIRouter(include_in_schema=False, route_class=PageRoute)


# Browsers send about 150 characters of Accept; python-mimeparse's parameter parsing is
# quadratic in some malformed ones (16 kB took 0.5 s, measured), so only this much is read.
ACCEPT_READ = 1000


def prefers_html(request: Request) -> bool:
    """Whether the client's Accept header ranks text/html above JSON (problem+json or plain):
    true for browsers' navigations, false for `*/*`, `application/json`, no header at all,
    or a header that cannot be read."""
    ranges = []
    for part in request.headers.get("accept", "")[:ACCEPT_READ].split(",")[:50]:
        try:
            ranges.append(mimeparse.parse_media_range(part))
        except ValueError:  # one unreadable range: the others still count
            continue
    html = mimeparse.quality_parsed("text/html", ranges)
    json = max(mimeparse.quality_parsed(t, ranges) for t in ("application/json", "application/problem+json"))
    return bool(html > json)


NEGOTIATED = (404, 405)  # what routing answers for an address or method it does not know


def install(app: FastAPI) -> None:
    """Serve the pages and their style sheet from `app` (call once, after the API routers and
    after `ledger_api.core.errors.install`, whose HTTP error handler is wrapped: an unknown
    address or method is an HTML page for browsers, problem+json for everyone else)."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    problems = app.exception_handlers.get(StarletteHTTPException)
    if problems is None:
        raise RuntimeError("install the problem+json handlers (ledger_api.core.errors) first")

    async def negotiated(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
        if status in NEGOTIATED and prefers_html(request):
            headers = {**(getattr(exc, "headers", None) or {}), "Vary": "Accept, Accept-Language, Cookie"}
            return error_page(request, status, headers=headers)
        answer = problems(request, exc)
        response: Response = await answer if inspect.isawaitable(answer) else answer
        if status in NEGOTIATED:
            response.headers.append("Vary", "Accept")
        return response

    app.add_exception_handler(StarletteHTTPException, negotiated)


def record_id(value: str, kind: str) -> str:
    """The canonical form of a record ID of `kind` (any case, confusable letters and
    0x hex accepted); a 422 page if it is not one."""
    try:
        return ids.from_bytes32(ids.to_bytes32(value.strip(), kind))
    except ValueError:
        raise PageError(422, kind) from None


@contextmanager
def reading(kind: str, asked: str | None = None) -> Iterator[None]:
    """Read-service errors as pages: not found is 404, a bad cursor or filter 422."""
    try:
        yield
    except NotFound:
        raise PageError(404, kind, asked) from None
    except InvalidRequest:
        raise PageError(422, kind) from None


def words(reader: Reader, currency: str, title: str, description: str) -> svg.Words:
    return svg.Words(
        money=lambda amount: reader.money(amount, currency),
        title=title,
        description=description,
        this_donation=reader.t("flow.this_donation"),
        other_disbursements=reader.t("flow.other_disbursements"),
        other_donations=reader.t("flow.other_donations"),
        refunded=reader.t("flow.refunded"),
        unspent=reader.t("flow.unspent"),
        channel=reader.channel,
    )


def both_layouts(draw: Callable[[svg.Layout], str]) -> Markup:
    """A diagram in its wide and its narrow layout: the style sheet shows the one that fits."""
    return Markup("".join(draw(layout) for layout in (svg.WIDE, svg.NARROW)))


# ------------------------------------------------------------------ home and search


def _home(
    request: Request, mirror: Mirror, reader: Reader, cursor: str | None, **context: Any
) -> HTMLResponse:
    with reading("page"):
        listed = charities.list_charities(mirror, HOME_CHARITIES, cursor)
        # One read for every campaign on the page (not one per charity); when there are
        # more than that, each charity links to its own page for the full list.
        found = campaigns.list_campaigns(mirror, HOME_CAMPAIGNS, None, None, None, None)
    campaigns_of: dict[str, list[Campaign]] = {}
    for campaign in found.items:
        campaigns_of.setdefault(campaign.charity_id, []).append(campaign)
    status = 422 if context.get("search_error") else 200
    return render(
        request,
        reader,
        "home.html",
        status,
        charities=listed,
        campaigns_of=campaigns_of,
        campaigns_cut=found.next is not None,
        **context,
    )


@router.get("/", name="page_home")
def home(
    request: Request,
    mirror: MirrorDep,
    charities_cursor: Annotated[str | None, Query(alias="charities", max_length=200)] = None,
) -> HTMLResponse:
    return _home(request, mirror, reader_for(request), charities_cursor)


_PATH_ID = re.compile(r"/(donations|campaigns|charities|disbursements)/([^/?#\s]+)")
_COMPACT = re.compile(r"^([A-Za-z]{2})([0-9A-Za-z]{16})$")
_PAGES = {"DN": "donations", "CP": "campaigns", "CH": "charities", "DB": "disbursements"}
_KINDS = {
    "donations": "donation",
    "campaigns": "campaign",
    "charities": "charity",
    "disbursements": "disbursement",
}


def searched_path(query: str) -> str | None:
    """The page a search box entry names, or None. Takes a record ID in any case, with
    or without its dashes (or with spaces for dashes), or a whole URL pasted from a QR
    code (a page's or the JSON API's)."""
    text = query.strip()
    if not text or len(text) > 300:
        return None
    found = _PATH_ID.search(unquote(text)) if "/" in text else None
    if found:
        try:
            return f"/{found.group(1)}/{record_id(found.group(2), _KINDS[found.group(1)])}"
        except PageError:
            return None
    compact = re.sub(r"[\s_\-\u2010-\u2015]", "", text)  # any kind of dash
    match = _COMPACT.fullmatch(compact)
    if match:
        prefix, body = match.group(1).upper(), match.group(2)
        text = ids.canonical(prefix, body)
    else:
        prefix = "DN" if text.lower().startswith("0x") else ""  # a hex ID: taken for a donation's
    if prefix not in _PAGES:
        return None
    page = _PAGES[prefix]
    try:
        return f"/{page}/{record_id(text, _KINDS[page])}"
    except PageError:
        return None


@router.get("/search", name="page_search", response_model=None)
def search(
    request: Request, mirror: MirrorDep, q: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    """A donation ID (or a record ID of another kind, or a pasted trace URL) → its page.
    Without a query (the language switch links here from a search's answer): the home page."""
    reader = reader_for(request)
    if q is None:
        return _home(request, mirror, reader, None)
    path = searched_path(q)
    if path is not None:
        return RedirectResponse(path, status_code=303)
    message = reader.t("search.empty") if not q.strip() else reader.t("search.bad")
    return _home(request, mirror, reader, None, search_error=message, query=q[:300])


# ------------------------------------------------------------------ donations


class Step(NamedTuple):
    """A record of the trace: the donation, an allocation or a refund."""

    kind: str
    proof: Proof
    item: Any


def _steps(d: DonationTrace) -> list[Step]:
    """The trace's records in chain order: the donation, each allocation, each refund."""
    steps = [Step("donation", d.proof, d)]
    steps += [Step("allocation", a.proof, a) for a in d.allocations]
    steps += [Step("refund", f.proof, f) for f in d.refunds]
    return sorted(steps, key=lambda s: (s.proof.block_number, s.proof.log_index))


def trace_depth(value: str | None) -> int:
    """`?depth=` of a trace page: 0 (absent) to MAX_DEPTH; anything else a 422 page."""
    if value is None or value == "":
        return 0
    if not value.isascii() or not value.isdigit() or int(value) > MAX_DEPTH:
        raise PageError(422, "donation")
    return int(value)


@router.get("/donations/{donation_id}", name="page_donation")
def donation(
    request: Request,
    donation_id: str,
    mirror: MirrorDep,
    depth: Annotated[str | None, Query(max_length=8)] = None,
) -> HTMLResponse:
    """The donor's trace; with ?depth=N (1..5) also where the money went on through grants
    to other campaigns on the ledger, hop by hop (the receipt's QR code asks for all five)."""
    canonical = record_id(donation_id, "donation")
    hops_asked = trace_depth(depth)
    with reading("donation", canonical):
        d = trace(mirror, canonical, hops_asked)
    reader = reader_for(request)
    c = d.currency
    description = reader.t(
        "flow.trace_desc",
        amount=reader.money(d.amount, c),
        allocated=reader.money(d.allocated, c),
        n=reader.count(len({a.disbursement.id for a in d.allocations})),
        refunded=reader.money(d.refunded, c),
        remaining=reader.money(d.remaining, c),
    )
    said = words(reader, c, reader.t("flow.trace_title", id=d.id), description)
    diagram = both_layouts(lambda layout: svg.trace_diagram(d, said, layout))
    proofs = [d.proof, *(a.proof for a in d.allocations), *(a.disbursement.proof for a in d.allocations)]
    proofs += [f.proof for f in d.refunds] + [e.proof for a in d.allocations for e in a.disbursement.evidence]
    checks = verify.donation_checks(
        _where(request, mirror), d, d.campaign.id, _args(mirror, proofs), lambda v: reader.money(v, c)
    )
    feed = f"{feed_path('donations', d.id)}?lang={reader.lang}"
    return render(
        request, reader, "donation.html", d=d, steps=_steps(d), diagram=diagram, checks=checks, feed=feed
    )


def qr_svg(url: str, label: str, testid: str = "qr") -> str:
    """A QR code of `url` as inline SVG (qrcode's path image: no Pillow), with a <title>
    and the test hooks `data-testid` (`testid`) and `data-url`."""
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=4,
        image_factory=qrcode.image.svg.SvgPathImage,
    )
    code.add_data(url)
    code.make(fit=True)
    root = etree.fromstring(code.make_image().to_string())
    for attribute in ("width", "height"):  # sized by the style sheet (in mm when printed)
        root.attrib.pop(attribute, None)
    for path in root:
        path.attrib.pop("id", None)
    root.set("class", "qr-code")
    root.set("role", "img")
    root.set("aria-labelledby", f"{testid}-title")
    root.set("data-testid", testid)
    root.set("data-url", url)
    title = etree.Element("{http://www.w3.org/2000/svg}title", id=f"{testid}-title")
    title.text = label
    root.insert(0, title)
    return str(etree.tostring(root, encoding="unicode"))


class Typed(NamedTuple):
    """What a reader typed into an ownership form: the secret (lower-case 0x hex) and the
    normalised reference, each None when it is wrong, with the message that says why."""

    secret: str | None
    reference: str | None
    secret_error: str | None
    reference_error: str | None

    @property
    def ok(self) -> bool:
        return self.secret is not None and self.reference is not None


def typed(reader: Reader, receipt_secret: str, donor_reference: str) -> Typed:
    """Check a receipt secret and a donor reference as typed (never logged, never echoed)."""
    stripped = receipt_secret.strip()
    secret, secret_error = None, None
    if SECRET.fullmatch(stripped):
        secret = "0x" + stripped[2:].lower()
    else:
        secret_error = reader.t("receipt.secret_invalid")
    try:
        normalised: str | None = reference.parse(donor_reference)
        reference_error = None
    except reference.BadReference as exc:
        normalised, reference_error = None, reader.t(f"reference.{exc.reason}", n=reference.LENGTH)
    return Typed(secret, normalised, secret_error, reference_error)


def receipt_page(
    request: Request,
    mirror: Mirror,
    donation_id: str,
    given: Typed | None = None,
    mismatch: bool = False,
    back: str | None = None,
) -> HTMLResponse:
    """The receipt of a donation; with `given` (checked, or just recorded by the console),
    the donor's secret and reference printed on it; `back` is the console page it
    returns to."""
    canonical = record_id(donation_id, "donation")
    with reading("donation", canonical):
        d = trace(mirror, canonical)
    reader = reader_for(request)
    public = mirror.settings.public_url
    base = public.rstrip("/") if public else str(request.base_url).rstrip("/")
    # With every hop: a donor scanning it follows the money through grants onward.
    trace_url = f"{base}/donations/{d.id}?depth={MAX_DEPTH}"
    # The feed in the receipt's language: a feed reader seldom says which it reads.
    feed_url = f"{base}{feed_path('donations', d.id)}?lang={reader.lang}"
    printed = given is not None and given.ok and not mismatch
    refused = given is not None and not printed
    return render(
        request,
        reader,
        "receipt.html",
        422 if refused else 200,
        PRIVATE if given is not None else {},
        d=d,
        qr=Markup(qr_svg(trace_url, reader.t("receipt.qr_title", id=d.id))),
        trace_url=trace_url,
        follow_qr=Markup(qr_svg(feed_url, reader.t("receipt.follow_qr_title", id=d.id), "qr-follow")),
        feed_url=feed_url,
        home_url=f"{base}/",
        secret=given.secret if given and printed else None,
        reference=given.reference if given and printed else None,
        secret_error=given.secret_error if given and refused else None,
        reference_error=given.reference_error if given and refused else None,
        mismatch=reader.t("receipt.mismatch") if mismatch else None,
        back=back,
        lang_base=f"/donations/{d.id}/receipt" if back else "",  # a console answer: its own path is a POST
    )


@router.get("/donations/{donation_id}/receipt", name="page_receipt")
def receipt(request: Request, donation_id: str, mirror: MirrorDep) -> HTMLResponse:
    """The public receipt: never any secret."""
    return receipt_page(request, mirror, donation_id)


@router.post(
    "/donations/{donation_id}/receipt", name="page_receipt_with_secret", max_body_size=OWNERSHIP_BODY
)
def receipt_with_secret(
    request: Request,
    donation_id: str,
    mirror: MirrorDep,
    receipt_secret: Annotated[str, Form(max_length=OWNERSHIP_BODY)] = "",
    donor_reference: Annotated[str, Form(max_length=OWNERSHIP_BODY)] = "",
) -> HTMLResponse:
    """The receipt a charity prints at the time of donation, with the donor's receipt
    secret and donor reference (from the form body: neither goes in a URL; the answer is
    not cached). Both are checked against the donation's on-chain commitment first: a secret
    can only be checked with the reference it was hashed with, so both are needed, and a
    pair that does not match prints nothing. The reference is printed normalised, as the
    donor will type it to prove the donation is theirs."""
    canonical = record_id(donation_id, "donation")
    given = typed(reader_for(request), receipt_secret, donor_reference)
    mismatch = False
    if given.secret is not None and given.reference is not None:
        with reading("donation", canonical):
            mismatch = not owns(mirror, canonical, given.secret, given.reference)
    return receipt_page(request, mirror, canonical, given, mismatch)


@router.get("/donations/{donation_id}/ownership", name="page_ownership_form")
def ownership_form(
    donation_id: str, lang: Annotated[str | None, Query(max_length=20)] = None
) -> RedirectResponse:
    """The form lives on the trace page: the language switch of an answer page (a link,
    so a GET) leads back to it, in the language chosen."""
    canonical = record_id(donation_id, "donation")
    query = f"?lang={lang}" if lang in LOCALES else ""
    return RedirectResponse(f"/donations/{canonical}{query}#ownership-heading", status_code=303)


@router.post("/donations/{donation_id}/ownership", name="page_ownership", max_body_size=OWNERSHIP_BODY)
def ownership(
    request: Request,
    donation_id: str,
    mirror: MirrorDep,
    receipt_secret: Annotated[str, Form(max_length=OWNERSHIP_BODY)] = "",
    donor_reference: Annotated[str, Form(max_length=OWNERSHIP_BODY)] = "",
) -> HTMLResponse:
    """Whether a receipt secret and a donor reference match the donation's on-chain
    commitment (the donor's check; `POST /v1/donations/{id}/ownership` as a page). The
    reference is normalised first, as when it was recorded (spacing and Unicode form do not
    count). Neither is stored, logged or shown again, and the answer is not cached."""
    canonical = record_id(donation_id, "donation")
    with reading("donation", canonical):
        d = trace(mirror, canonical)
    reader = reader_for(request)
    given = typed(reader, receipt_secret, donor_reference)
    matches = None
    if given.secret is not None and given.reference is not None:
        with reading("donation", canonical):
            matches = owns(mirror, canonical, given.secret, given.reference)
    return render(
        request,
        reader,
        "ownership.html",
        200 if given.ok else 422,
        PRIVATE,
        d=d,
        matches=matches,
        secret_error=given.secret_error,
        reference_error=given.reference_error,
    )


# ------------------------------------------------------------------ campaigns, charities, disbursements


def disclosure_of(mirror: Mirror, campaign_id: str, lang: str) -> tuple[dict[str, Any] | None, RuleSet, date]:
    """The campaign's disclosure obligations as of today, under the deployment's rules."""
    ruleset = disclosure_rules.load(mirror.settings.disclosure_rules)
    today = disclosure_reads.today(mirror, ruleset)
    with mirror.engine.connect() as connection:
        found = disclosure_reads.campaigns(
            mirror, connection, ruleset, today, None, hex0x(ids.to_bytes32(campaign_id))
        )
    if not found:
        return None, ruleset, today
    facts, extra = found[0]
    return disclosure_answers.campaign_answer(ruleset, facts, extra, today, lang), ruleset, today


def scorecard_of(mirror: Mirror, kind: str, record: str) -> Scorecard:
    """The scorecard the API answers, as of today in the rule set's zone."""
    ruleset = disclosure_rules.load(mirror.settings.disclosure_rules)
    today = disclosure_reads.today(mirror, ruleset)
    scope = scorecard_reads.Scope(kind, record, hex0x(ids.to_bytes32(record)))
    return Scorecard.model_validate(scorecard_reads.scorecard(mirror, ruleset, scope, today))


@router.get("/campaigns/{campaign_id}", name="page_campaign")
def campaign(
    request: Request,
    campaign_id: str,
    mirror: MirrorDep,
    donations_cursor: Annotated[str | None, Query(alias="donations", max_length=200)] = None,
    disbursements_cursor: Annotated[str | None, Query(alias="disbursements", max_length=200)] = None,
) -> HTMLResponse:
    canonical = record_id(campaign_id, "campaign")
    with reading("campaign", canonical):
        cp = campaigns.get_campaign(mirror, canonical)
        flows = campaigns.flows(mirror, canonical)
        donations = campaigns.list_donations(
            mirror, canonical, RecordFilters(PAGE_SIZE, donations_cursor, order="newest")
        )
        paid = campaigns.list_disbursements(
            mirror, canonical, RecordFilters(PAGE_SIZE, disbursements_cursor, order="newest")
        )
        charity = charities.get_charity(mirror, cp.charity_id)
        disclosure = disclosure_of(mirror, canonical, reader_for(request).lang)
        sc = scorecard_of(mirror, "campaign", canonical)
        # Proposals not paid (yet): shown as such, never in the totals above them.
        waiting = [
            p
            for p in approval_reads.proposals(mirror, campaign_hex=hex0x(ids.to_bytes32(canonical)))
            if p.status != "executed"
        ]
    reader = reader_for(request)
    c = cp.currency
    diagram = None
    if flows.sources:
        description = reader.t(
            "flow.campaign_desc",
            received=reader.money(cp.received, c),
            disbursed=reader.money(cp.disbursed, c),
            refunded=reader.money(cp.refunded, c),
            available=reader.money(cp.available, c),
        )
        title = reader.t("flow.campaign_title", name=cp.name)
        said = words(reader, c, title, description)
        diagram = both_layouts(lambda layout: svg.campaign_diagram(flows, said, layout))
    checks = verify.campaign_checks(
        _where(request, mirror), cp, _args(mirror, [cp.proof]), lambda v: reader.money(v, c)
    )
    return render(
        request,
        reader,
        "campaign.html",
        checks=checks,
        cp=cp,
        charity=Named(id=charity.id, name=charity.name),  # nothing else: no operators
        feed=f"{feed_path('campaigns', cp.id)}?lang={reader.lang}",
        custody=charity.custody,  # who signs its records (the OperatorAdded facts)
        diagram=diagram,
        donations=donations,
        disbursements=paid,
        proposals=waiting,
        sc=sc,
        disclosure=disclosure[0],
        disclosure_rules=disclosure[1],
        disclosure_title=disclosure[1].title.get(reader.lang) or disclosure[1].title["en"],
        disclosure_today=disclosure[2],
    )


@router.get("/charities/{charity_id}", name="page_charity")
def charity(
    request: Request,
    charity_id: str,
    mirror: MirrorDep,
    campaigns_cursor: Annotated[str | None, Query(alias="campaigns", max_length=200)] = None,
) -> HTMLResponse:
    canonical = record_id(charity_id, "charity")
    with reading("charity", canonical):
        found = charities.get_charity(mirror, canonical)
        listed = campaigns.list_campaigns(mirror, PAGE_SIZE, campaigns_cursor, canonical, None, None)
        sc = scorecard_of(mirror, "charity", canonical)
    ch = CharitySummary(  # not the operators
        id=found.id, name=found.name, totals_by_currency=found.totals_by_currency, proof=found.proof
    )
    reader = reader_for(request)
    return render(
        request,
        reader,
        "charity.html",
        ch=ch,
        feed=f"{feed_path('charities', ch.id)}?lang={reader.lang}",
        campaigns=listed,
        sc=sc,
        custody=found.custody,
        operator_changes=found.operator_changes,  # public events on chain, with who made them
    )


class Share(NamedTuple):
    """A donation's part in a disbursement, as the page shows it (without the donation)."""

    amount: int
    proof: Proof


def _disbursement_page(
    request: Request, mirror: Mirror, canonical: str, status: int = 200, **proof: Any
) -> HTMLResponse:
    with reading("disbursement", canonical):
        b = funding(mirror, canonical)
        approved = approval_reads.proposals(mirror, disbursement_hex=hex0x(ids.to_bytes32(canonical)))
    # No donation IDs on the page: only what each part was and its proof.
    b = b.model_copy(update={"funded_by": [Share(f.amount, f.proof) for f in b.funded_by]})
    reader = reader_for(request)
    checks = verify.disbursement_checks(
        _where(request, mirror),
        b,
        _args(mirror, [b.proof, *(e.proof for e in b.evidence)]),
        lambda v: reader.money(v, b.currency),
    )
    context = {"matches": None, "secret_error": None, "reference_error": None, **proof}
    headers = PRIVATE if proof else None  # an answer to the recipient's check is not cached
    return render(
        request,
        reader,
        "disbursement.html",
        status,
        headers,
        b=b,
        approval=approved[0] if approved else None,  # who proposed and approved it, under which rule
        shown=FUNDING_SHOWN,
        checks=checks,
        **context,
    )


@router.get("/disbursements/{disbursement_id}", name="page_disbursement")
def disbursement(request: Request, disbursement_id: str, mirror: MirrorDep) -> HTMLResponse:
    return _disbursement_page(request, mirror, record_id(disbursement_id, "disbursement"))


@router.post(
    "/disbursements/{disbursement_id}/recipient-proof",
    name="page_recipient_proof",
    max_body_size=OWNERSHIP_BODY,
)
def recipient_proof(
    request: Request,
    disbursement_id: str,
    mirror: MirrorDep,
    recipient_secret: Annotated[str, Form(max_length=OWNERSHIP_BODY)] = "",
    recipient_reference: Annotated[str, Form(max_length=OWNERSHIP_BODY)] = "",
) -> HTMLResponse:
    """A private recipient's check (`POST /v1/disbursements/{id}/recipient-proof` as a
    page): whether the secret on their slip and their details match the recipient on
    chain. Neither is stored, logged or shown again; the answer is not cached."""
    canonical = record_id(disbursement_id, "disbursement")
    given = typed(reader_for(request), recipient_secret, recipient_reference)
    matches = None
    if given.secret is not None and given.reference is not None:
        with reading("disbursement", canonical):
            try:
                matches = recipient_matches(mirror, canonical, given.reference, given.secret)
            except InvalidRequest:
                matches = False  # a public recipient: nothing of a person's matches it
    return _disbursement_page(
        request,
        mirror,
        canonical,
        200 if given.ok else 422,
        matches=matches,
        secret_error=given.secret_error,
        reference_error=given.reference_error,
    )


__all__ = ["install", "router"]
