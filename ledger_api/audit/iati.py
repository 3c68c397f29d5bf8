"""IATI 2.03 activity XML from a charity's campaigns and their on-chain records.

One campaign is one `<iati-activity>`; its donations, refunds and disbursements are its
`<transaction>`s. The document is streamed (`activities_xml` yields UTF-8 chunks and never
holds more than one activity header or ~500 transactions) and validates against the
official schema (`validate`, schema at `SCHEMA` or `$LEDGER_IATI_SCHEMA`).

Mapping choices (codes are from the IATI 2.03 codelists):

- Organisation identifier: IATI wants `{registration agency}-{number}`. We have no
  registry number for a charity, so we derive `XI-LEDGER-{chain_id}-{charity id}`: stable
  (the charity's bytes32 ID in canonical readable form, or lower-case 0x hex) and made of
  letters, digits and hyphens only. `XI-LEDGER` is NOT on the OrganisationRegistrationAgency
  codelist: a charity that has a real identifier (e.g. `CN-USC-...`) should publish under it.
- `iati-identifier` = `{reporting-org ref}-{campaign ID}` (the standard's prefix rule); the
  bare campaign ID is repeated as `other-identifier` type A1 (reporting organisation's own
  activity identifier), and the ledger contract as type A9 (other activity identifier) in
  CAIP-10 form `eip155:{chain_id}:{contract}`, so the activity can be found on chain.
- `reporting-org` (and the participating charity) type 21: the OrganisationType codelist
  has no plain "charity" code; 21 is "International NGO" (22 would be "National NGO", 60
  "Foundation"; change `ORG_TYPE` if that fits better). The charity reports its own
  records, so it is not flagged as a secondary reporter.
- `participating-org`: the charity twice, role 2 (Accountable) and role 4 (Implementing).
  Donors are anonymous (only a commitment to their identity is on chain), so no Funding
  (role 1) organisation is named.
- `activity-status` 2 (Implementation) while the campaign is open, 3 (Finalisation) once
  it is closed (the chain records no later "post-completion" state). `activity-date` type 2
  (actual start) = creation block time, type 4 (actual end) = closing block time. Dates
  are UTC days; a naive datetime (SQLite returns them) is taken to be UTC.
- `default-currency` = the campaign's currency; every `value` repeats it in `@currency`
  and has `@value-date` = the transaction date. Values are decimals in major units, from
  the integer minor-unit amounts and the ISO 4217 exponent (package `iso4217`; 2 for a code
  it does not know or that has no minor unit), with integer arithmetic only.
- No `budget`: a fundraising goal is not a spending plan per period; the goal is stated in
  the activity description instead.
- Transactions: donation = type 1 (Incoming Funds) from an anonymous donor to the charity;
  refund = type 1 with a NEGATIVE value (IATI guidance: a reversal of incoming funds is
  reported as a negative transaction of the same type); disbursement = type 3
  (Disbursement) from the charity to the recipient text recorded on chain, purpose in the
  description; to a private person (`private:0x<commitment>` on chain), an empty
  `receiver-org` (no name, no ref: the schema allows it, and the person's identity is
  withheld) and the commitment in the description. `transaction/@ref` is the record's
  readable ID; every description names the chain transaction hash so anyone can check it
  against a node.
- Language: the boilerplate is English, so `iati-activity/@xml:lang` is "en". Titles,
  recipients and purposes are whatever the charity recorded (any language): we do not know
  their language and do not guess.
- Text from the chain may hold anything: characters XML 1.0 forbids (control characters,
  lone surrogates, U+FFFE/U+FFFF) are dropped; lxml escapes the rest.
"""

from __future__ import annotations

import functools
import io
import itertools
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from ledger_api.core import ids, reference
from ledger_api.core.formats import major_units, xml_text

# The official IATI 2.03 schemas, copied into the package (see iati_schema/LICENSE).
SCHEMA = Path(__file__).resolve().parent / "iati_schema" / "iati-activities-schema.xsd"
SCHEMA_ENV = "LEDGER_IATI_SCHEMA"

IATI_VERSION = "2.03"
ORG_PREFIX = "XI-LEDGER"
ORG_TYPE = "22"  # National NGO (OrganisationType codelist): a charity registered at home
ROLE_ACCOUNTABLE = "2"
ROLE_IMPLEMENTING = "4"
STATUS_IMPLEMENTATION = "2"
STATUS_FINALISATION = "3"
DATE_ACTUAL_START = "2"
DATE_ACTUAL_END = "4"
DESCRIPTION_GENERAL = "1"
OTHER_ID_OWN = "A1"
OTHER_ID_OTHER = "A9"
TX_INCOMING_FUNDS = "1"
TX_DISBURSEMENT = "3"
ANONYMOUS_DONOR = "Donor (anonymous; identity committed on chain)"
CHUNK_TRANSACTIONS = 500

XML_NS = "http://www.w3.org/XML/1998/namespace"
_XML_LANG = f"{{{XML_NS}}}lang"
# Everything outside XML 1.0's Char production (tab, LF and CR are allowed).
_ID_PART = re.compile(r"^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*$")
_KINDS = ("donation", "refund", "disbursement")


@dataclass(frozen=True)
class Organisation:
    ref: str  # an IATI organisation identifier, see organisation_ref()
    name: str


@dataclass(frozen=True)
class Activity:
    """One campaign."""

    identifier: str  # the campaign's readable ID, e.g. "CP-7Q2M-4KXD-9TAB-3FHE"
    title: str  # campaign name (any unicode)
    currency: str  # ISO 4217, e.g. "CNY"
    reporting_org: Organisation  # the charity
    created: datetime  # tz-aware UTC block time of the campaign's creation
    closed: datetime | None  # block time it was closed, None while open
    goal: int  # fundraising goal in minor units
    chain_id: int
    contract: str  # 0x address of the ledger contract
    tx_hash: str  # transaction that created the campaign


@dataclass(frozen=True)
class Transaction:
    kind: str  # "donation" | "refund" | "disbursement"
    ref: str  # readable record ID, e.g. "DN-...", "RF-...", "DB-..."
    amount: int  # minor units, > 0 (a refund is given as a positive amount)
    date: datetime  # tz-aware UTC block time
    tx_hash: str  # 0x transaction hash
    receiver: str | None = None  # disbursements: the recipient text recorded on chain
    purpose: str | None = None  # disbursements: the purpose text recorded on chain
    final: bool = True
    # A grant between campaigns on the ledger: the other side's organisation and the
    # iati-identifier of its activity (receiver-activity-id on the paying disbursement,
    # provider-activity-id on the donation recording it), so the two activities link.
    counterpart: Organisation | None = None
    counterpart_activity: str | None = None


# ------------------------------------------------------------------ identifiers and values


def organisation_ref(chain_id: int, charity_readable_id: str) -> str:
    """A stable IATI-style organisation identifier for a charity on a chain:
    `XI-LEDGER-{chain_id}-{charity ID}` (letters, digits and hyphens only).

    The charity ID may be readable (`CH-...`, any case, confusable letters allowed) or
    0x hex; it is canonicalised through its bytes32 form so one charity gets one ref.
    ValueError if it is not a charity ID or the chain ID is not positive."""
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
        raise ValueError(f"a chain ID is a positive integer, not {chain_id!r}")
    canonical = ids.from_bytes32(ids.to_bytes32(charity_readable_id.strip(), "charity"))
    return f"{ORG_PREFIX}-{chain_id}-{canonical}"


def _utc(moment: datetime) -> datetime:
    """UTC; a naive datetime (as SQLite hands back) is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso_date(moment: datetime) -> str:
    return _utc(moment).date().isoformat()


def _iso_datetime(moment: datetime) -> str:
    return _utc(moment).isoformat().replace("+00:00", "Z")


def _id_part(value: str, what: str) -> str:
    if not _ID_PART.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not letters and digits separated by hyphens")
    return value


# ------------------------------------------------------------------ XML building


def _sub(parent: etree._Element, tag: str, attrib: dict[str, str] | None = None) -> etree._Element:
    return etree.SubElement(parent, tag, {k: xml_text(v) for k, v in (attrib or {}).items()})


def _narrative(parent: etree._Element, text: str, fallback: str) -> None:
    cleaned = xml_text(text).strip()
    _sub(parent, "narrative").text = cleaned or fallback


def _activity_header(activity: Activity) -> list[etree._Element]:
    """The activity's children before its transactions, in the XSD's sequence order."""
    org = activity.reporting_org
    currency = activity.currency.strip().upper()
    holder = etree.Element("holder")

    _sub(holder, "iati-identifier").text = f"{org.ref}-{activity.identifier}"

    reporting = _sub(holder, "reporting-org", {"ref": org.ref, "type": ORG_TYPE})
    _narrative(reporting, org.name, org.ref)

    _narrative(_sub(holder, "title"), activity.title, activity.identifier)

    description = _sub(holder, "description", {"type": DESCRIPTION_GENERAL})
    closed = (
        f" It was closed on {_iso_date(activity.closed)}." if activity.closed is not None else " It is open."
    )
    _narrative(
        description,
        f"Fundraising campaign {activity.identifier} of {xml_text(org.name).strip() or org.ref}, recorded "
        f"on EVM chain {activity.chain_id} by the ledger contract {activity.contract} (created in "
        f"transaction {activity.tx_hash}).{closed} Fundraising goal: "
        f"{major_units(activity.goal, currency)} {currency}. All amounts are taken from on-chain "
        "records; each transaction names the chain transaction that recorded it.",
        activity.identifier,
    )

    for role in (ROLE_ACCOUNTABLE, ROLE_IMPLEMENTING):
        participant = _sub(holder, "participating-org", {"ref": org.ref, "type": ORG_TYPE, "role": role})
        _narrative(participant, org.name, org.ref)

    own = _sub(holder, "other-identifier", {"ref": activity.identifier, "type": OTHER_ID_OWN})
    owner = _sub(own, "owner-org", {"ref": org.ref})
    _narrative(owner, org.name, org.ref)
    on_chain = _sub(
        holder,
        "other-identifier",
        {"ref": f"eip155:{activity.chain_id}:{activity.contract}", "type": OTHER_ID_OTHER},
    )
    _narrative(
        _sub(on_chain, "owner-org"),
        f"Ledger contract on EVM chain {activity.chain_id} (CAIP-10 account ID); campaign "
        f"{activity.identifier} created in transaction {activity.tx_hash}",
        "Ledger contract",
    )

    status = STATUS_IMPLEMENTATION if activity.closed is None else STATUS_FINALISATION
    _sub(holder, "activity-status", {"code": status})
    _sub(holder, "activity-date", {"type": DATE_ACTUAL_START, "iso-date": _iso_date(activity.created)})
    if activity.closed is not None:
        _sub(holder, "activity-date", {"type": DATE_ACTUAL_END, "iso-date": _iso_date(activity.closed)})
    return list(holder)


def _value(parent: etree._Element, amount: int, currency: str, day: str) -> None:
    _sub(parent, "value", {"currency": currency, "value-date": day}).text = major_units(amount, currency)


def _transaction(activity: Activity, tx: Transaction) -> etree._Element:
    if tx.kind not in _KINDS:
        raise ValueError(f"{tx.ref}: unknown transaction kind {tx.kind!r} (one of {', '.join(_KINDS)})")
    if isinstance(tx.amount, bool) or not isinstance(tx.amount, int) or tx.amount <= 0:
        raise ValueError(f"{tx.ref}: amounts are positive integers in minor units, not {tx.amount!r}")
    org = activity.reporting_org
    currency = activity.currency.strip().upper()
    day = _iso_date(tx.date)
    pending = "" if tx.final else " Not yet final on chain (the block may still be reorganised)."

    element = etree.Element("transaction", {"ref": xml_text(tx.ref)})
    if tx.kind == "disbursement":
        _sub(element, "transaction-type", {"code": TX_DISBURSEMENT})
        _sub(element, "transaction-date", {"iso-date": day})
        _value(element, tx.amount, currency, day)
        purpose = xml_text(tx.purpose or "").strip()
        text = f"{purpose} " if purpose else ""
        private = tx.receiver is not None and reference.is_private(tx.receiver)
        to_whom = f"paid to {reference.PRIVATE_PERSON}, commitment {tx.receiver}; " if private else ""
        _narrative(
            _sub(element, "description"),
            f"{text}({to_whom}disbursement {tx.ref}, chain transaction {tx.tx_hash}).{pending}",
            tx.ref,
        )
        provider = _sub(element, "provider-org", {"ref": org.ref})
        _narrative(provider, org.name, org.ref)
        if tx.counterpart is not None and tx.counterpart_activity is not None:
            receiver = _sub(
                element,
                "receiver-org",
                {"ref": tx.counterpart.ref, "receiver-activity-id": tx.counterpart_activity},
            )
            _narrative(receiver, tx.counterpart.name, tx.counterpart.ref)
        elif private:
            # A person, not an organisation: neither a name nor a ref (the schema allows a
            # receiver-org with no narrative); who it was is withheld.
            _sub(element, "receiver-org")
        else:
            _narrative(_sub(element, "receiver-org"), tx.receiver or "", "Recipient (not recorded)")
        return element

    # Donations and refunds are Incoming Funds (type 1). A refund reverses a donation, and
    # IATI's guidance for reversing incoming funds is a negative value of the same type.
    value = tx.amount if tx.kind == "donation" else -tx.amount
    _sub(element, "transaction-type", {"code": TX_INCOMING_FUNDS})
    _sub(element, "transaction-date", {"iso-date": day})
    _value(element, value, currency, day)
    if tx.kind == "donation":
        what = f"Donation {tx.ref}"
    else:
        what = f"Refund {tx.ref} of a donation (a reversal of incoming funds, so the value is negative)"
    _narrative(_sub(element, "description"), f"{what}, chain transaction {tx.tx_hash}.{pending}", tx.ref)
    if tx.counterpart is not None and tx.counterpart_activity is not None:
        provider = _sub(
            element,
            "provider-org",
            {"ref": tx.counterpart.ref, "provider-activity-id": tx.counterpart_activity},
        )
        _narrative(provider, tx.counterpart.name, tx.counterpart.ref)
    else:
        _narrative(_sub(element, "provider-org"), ANONYMOUS_DONOR, ANONYMOUS_DONOR)
    _narrative(_sub(element, "receiver-org", {"ref": org.ref}), org.name, org.ref)
    return element


def _take(xf: etree.xmlfile, buffer: io.BytesIO) -> bytes:
    """What has been written since the last call (and empty the buffer)."""
    xf.flush()
    data = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return data


def activities_xml(
    activities: Iterable[tuple[Activity, Iterable[Transaction]]], generated: datetime
) -> Iterator[bytes]:
    """The IATI activities document, as UTF-8 chunks: one after each activity and one every
    `CHUNK_TRANSACTIONS` transactions, so memory stays flat however long the ledger is.
    Both the activities and each activity's transactions are read lazily, in the order
    given, when the chunk that needs them is produced.

    ValueError (before any byte is yielded) if there is no activity at all, since the
    schema requires at least one; ValueError on a malformed identifier, an unknown
    transaction kind or a non-positive amount (the document is then incomplete)."""
    items = iter(activities)
    first = next(items, None)
    if first is None:
        raise ValueError("an IATI activities document needs at least one activity (no campaigns to export)")
    buffer = io.BytesIO()
    root = {"version": IATI_VERSION, "generated-datetime": _iso_datetime(generated)}
    with etree.xmlfile(buffer, encoding="utf-8") as xf:
        xf.write_declaration()
        # The xml prefix is declared on the root because lxml's xmlfile otherwise invents
        # an "ns0" prefix for xml:lang; declaring it is allowed (Namespaces in XML, 3).
        with xf.element("iati-activities", root, nsmap={"xml": XML_NS}):
            xf.write("\n")
            for activity, transactions in itertools.chain([first], items):
                yield from _activity(xf, buffer, activity, transactions)
    tail = buffer.getvalue()  # the closing tag, written when the xmlfile closed
    if tail:
        yield tail


def _activity(
    xf: etree.xmlfile, buffer: io.BytesIO, activity: Activity, transactions: Iterable[Transaction]
) -> Iterator[bytes]:
    _id_part(activity.reporting_org.ref, "organisation ref")
    _id_part(activity.identifier, "campaign ID")
    currency = activity.currency.strip().upper()
    with xf.element("iati-activity", {_XML_LANG: "en", "default-currency": currency}):
        xf.write("\n")
        for element in _activity_header(activity):
            xf.write(element, pretty_print=True)
        for count, tx in enumerate(transactions, 1):
            xf.write(_transaction(activity, tx), pretty_print=True)
            if count % CHUNK_TRANSACTIONS == 0:
                yield _take(xf, buffer)
    xf.write("\n")
    yield _take(xf, buffer)


# ------------------------------------------------------------------ validation

_validating = threading.Lock()  # an XMLSchema keeps the last run's error_log: one run at a time


def schema_path() -> Path:
    """`$LEDGER_IATI_SCHEMA` if set, else `SCHEMA`."""
    override = os.environ.get(SCHEMA_ENV)
    return Path(override) if override else SCHEMA


@functools.lru_cache(maxsize=4)
def _schema(path: Path) -> etree.XMLSchema:
    # The activities schema includes iati-common.xsd and imports xml.xsd from its own folder.
    return etree.XMLSchema(etree.parse(str(path)))


def validate(xml: bytes) -> list[str]:
    """[] if `xml` is a valid IATI activities document, else its errors as "line: message"
    (well-formedness errors included). The schema is loaded once per path and cached."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        document = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        # the parser's own log: exc.error_log is thread-global and may hold earlier errors
        return [f"{error.line}: {error.message}" for error in parser.error_log] or [str(exc)]
    schema = _schema(schema_path())
    with _validating:
        if schema.validate(document):
            return []
        return [f"{error.line}: {error.message}" for error in schema.error_log]
