"""IATI 2.03 export: schema-valid, exact values, streamed lazily (no chain, no database)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from ledger_api.audit import iati
from ledger_api.audit.iati import (
    Activity,
    Organisation,
    Transaction,
    activities_xml,
    organisation_ref,
    validate,
)
from ledger_api.core.formats import major_units

CHAIN_ID = 31337
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHARITY_ID = "CH-7K3M-9QX2-P4TA-B5C8"
GENERATED = datetime(2024, 6, 1, 8, 30, tzinfo=UTC)
T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
HEADER = [
    "iati-identifier",
    "reporting-org",
    "title",
    "description",
    "participating-org",
    "participating-org",
    "other-identifier",
    "other-identifier",
    "activity-status",
    "activity-date",
]
TRANSACTION = ["transaction-type", "transaction-date", "value", "description", "provider-org", "receiver-org"]


def tx_hash(n: int) -> str:
    return f"0x{n:064x}"


def record_id(prefix: str, n: int) -> str:
    body = f"{n:016d}"
    return f"{prefix}-{body[0:4]}-{body[4:8]}-{body[8:12]}-{body[12:16]}"


ORG = Organisation(organisation_ref(CHAIN_ID, CHARITY_ID), "希望工程\x01基金会 <Hope & Co>")


def activity(
    identifier: str, title: str, currency: str, *, closed: datetime | None = None, goal: int = 1_000_000
) -> Activity:
    return Activity(
        identifier=identifier,
        title=title,
        currency=currency,
        reporting_org=ORG,
        created=T0,
        closed=closed,
        goal=goal,
        chain_id=CHAIN_ID,
        contract=CONTRACT,
        tx_hash=tx_hash(1),
    )


CNY = activity("CP-7Q2M-4KXD-9TAB-3FHE", "山区儿童营养午餐计划", "CNY")
JPY = activity("CP-0000-0000-0000-0002", "能登半島地震 支援", "JPY", closed=T0 + timedelta(days=40))
USD = activity("CP-0000-0000-0000-0003", "Empty campaign", "USD", closed=T0 + timedelta(days=1), goal=5)

CNY_TXS = [
    Transaction("donation", record_id("DN", 1), 12345, T0 + timedelta(hours=1), tx_hash(11)),
    Transaction("donation", record_id("DN", 2), 7, T0 + timedelta(days=1), tx_hash(12), final=False),
    Transaction("refund", record_id("RF", 3), 1200, T0 + timedelta(days=2), tx_hash(13)),
    Transaction(
        "disbursement",
        record_id("DB", 4),
        10000,
        T0 + timedelta(days=3),
        tx_hash(14),
        receiver="贵州省\x07某\x1b小学\ufffe",
        purpose="午餐食材\x00采购",
    ),
]
JPY_TXS = [
    Transaction("donation", record_id("DN", 5), 1500, T0 + timedelta(days=5), tx_hash(15)),
    Transaction("refund", record_id("RF", 6), 300, T0 + timedelta(days=6), tx_hash(16)),
    Transaction(
        "disbursement",
        record_id("DB", 7),
        1000,
        T0 + timedelta(days=7),
        tx_hash(17),
        receiver="0x" + "ab" * 32,
        purpose=None,
    ),
]


def document() -> bytes:
    pairs = [(CNY, iter(CNY_TXS)), (JPY, iter(JPY_TXS)), (USD, iter(()))]
    return b"".join(activities_xml(iter(pairs), GENERATED))


def children(element: etree._Element) -> list[str]:
    return [child.tag for child in element if isinstance(child.tag, str)]


def by_identifier(root: etree._Element) -> dict[str, etree._Element]:
    return {a.findtext("iati-identifier"): a for a in root.iterfind("iati-activity")}


# ------------------------------------------------------------------ the whole document


def test_schema_is_the_official_one_and_inside_the_package() -> None:
    """The schemas ship with the package (validation needs nothing outside the repository),
    and they are the official IATI 2.03 files, unchanged."""
    assert iati.SCHEMA.is_file()
    assert Path(iati.__file__).resolve().parent in iati.SCHEMA.resolve().parents
    root = etree.parse(str(iati.SCHEMA)).getroot()
    assert root.get("version") == "2.03"
    expected = {
        "iati-activities-schema.xsd",
        "iati-common.xsd",
        "iati-organisations-schema.xsd",
        "xml.xsd",
    }
    assert expected <= {p.name for p in iati.SCHEMA.parent.iterdir()}


def test_document_is_valid_iati() -> None:
    xml = document()
    assert xml.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert validate(xml) == []


def test_document_structure_and_codes() -> None:
    root = etree.fromstring(document())
    assert root.tag == "iati-activities"
    assert root.get("version") == "2.03"
    assert root.get("generated-datetime") == "2024-06-01T08:30:00Z"
    activities = by_identifier(root)
    prefix = "XI-LEDGER-31337-CH-7K3M-9QX2-P4TA-B5C8"
    assert list(activities) == [f"{prefix}-{a.identifier}" for a in (CNY, JPY, USD)]

    for element in activities.values():
        assert element.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
        reporting = element.find("reporting-org")
        assert reporting is not None
        assert (reporting.get("ref"), reporting.get("type")) == (prefix, "22")
        assert element.findtext("iati-identifier").startswith(reporting.get("ref") + "-")
        roles = [(p.get("ref"), p.get("role")) for p in element.iterfind("participating-org")]
        assert roles == [(prefix, "2"), (prefix, "4")]
        assert reporting.findtext("narrative") == "希望工程基金会 <Hope & Co>"  # control char dropped
        description = element.findtext("description/narrative")
        assert str(CHAIN_ID) in description and CONTRACT in description and tx_hash(1) in description
        assert element.find("other-identifier[@type='A9']").get("ref") == f"eip155:{CHAIN_ID}:{CONTRACT}"

    cny, jpy, usd = activities.values()
    assert cny.findtext("title/narrative") == "山区儿童营养午餐计划"
    assert jpy.findtext("title/narrative") == "能登半島地震 支援"
    assert [a.get("default-currency") for a in (cny, jpy, usd)] == ["CNY", "JPY", "USD"]
    assert cny.find("other-identifier[@type='A1']").get("ref") == CNY.identifier

    # open: Implementation with an actual start only; closed: Finalisation with an actual end
    def dates(element: etree._Element) -> list[tuple[str | None, str | None]]:
        return [(d.get("type"), d.get("iso-date")) for d in element.iterfind("activity-date")]

    assert cny.find("activity-status").get("code") == "2"
    assert dates(cny) == [("2", "2024-01-02")]
    assert jpy.find("activity-status").get("code") == "3"
    assert dates(jpy) == [("2", "2024-01-02"), ("4", "2024-02-11")]
    assert "Fundraising goal: 10000.00 CNY" in cny.findtext("description/narrative")
    assert "Fundraising goal: 1000000 JPY" in jpy.findtext("description/narrative")

    # elements in the order the XSD's sequence demands
    assert children(cny) == HEADER + ["transaction"] * 4
    assert children(jpy) == [*HEADER, "activity-date"] + ["transaction"] * 3
    assert children(usd) == [*HEADER, "activity-date"]  # no transactions is fine
    for transaction in root.iter("transaction"):
        assert children(transaction) == TRANSACTION


def transactions_of(element: etree._Element) -> list[tuple[str | None, ...]]:
    return [
        (
            t.get("ref"),
            t.find("transaction-type").get("code"),
            t.find("transaction-date").get("iso-date"),
            t.findtext("value"),
            t.find("value").get("currency"),
            t.find("value").get("value-date"),
        )
        for t in element.iterfind("transaction")
    ]


def test_transactions_values_types_and_dates() -> None:
    cny, jpy, usd = by_identifier(etree.fromstring(document())).values()
    assert transactions_of(cny) == [
        (record_id("DN", 1), "1", "2024-01-02", "123.45", "CNY", "2024-01-02"),
        (record_id("DN", 2), "1", "2024-01-03", "0.07", "CNY", "2024-01-03"),
        (record_id("RF", 3), "1", "2024-01-04", "-12.00", "CNY", "2024-01-04"),
        (record_id("DB", 4), "3", "2024-01-05", "100.00", "CNY", "2024-01-05"),
    ]
    assert transactions_of(jpy) == [
        (record_id("DN", 5), "1", "2024-01-07", "1500", "JPY", "2024-01-07"),
        (record_id("RF", 6), "1", "2024-01-08", "-300", "JPY", "2024-01-08"),
        (record_id("DB", 7), "3", "2024-01-09", "1000", "JPY", "2024-01-09"),
    ]
    assert transactions_of(usd) == []

    donation, pending, refund, disbursement = cny.iterfind("transaction")
    charity = ORG.ref
    for incoming in (donation, refund):
        assert incoming.findtext("provider-org/narrative") == "Donor (anonymous; identity committed on chain)"
        assert incoming.find("provider-org").get("ref") is None
        assert incoming.find("receiver-org").get("ref") == charity
    assert tx_hash(11) in donation.findtext("description/narrative")
    assert "Not yet final" in pending.findtext("description/narrative")
    assert "Not yet final" not in donation.findtext("description/narrative")
    assert tx_hash(13) in refund.findtext("description/narrative")
    assert disbursement.find("provider-org").get("ref") == charity
    assert disbursement.find("receiver-org").get("ref") is None
    assert disbursement.findtext("receiver-org/narrative") == "贵州省某小学"  # forbidden chars dropped
    narrative = disbursement.findtext("description/narrative")
    assert narrative.startswith("午餐食材采购 ") and tx_hash(14) in narrative

    jpy_disbursement = list(jpy.iterfind("transaction"))[2]
    assert jpy_disbursement.findtext("receiver-org/narrative") == "0x" + "ab" * 32
    assert tx_hash(17) in jpy_disbursement.findtext("description/narrative")


# ------------------------------------------------------------------ values and identifiers


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (12345, "CNY", "123.45"),
        (7, "CNY", "0.07"),
        (-5, "CNY", "-0.05"),
        (0, "USD", "0.00"),
        (-1200, "USD", "-12.00"),
        (1500, "JPY", "1500"),
        (-300, "JPY", "-300"),
        (5, "BHD", "0.005"),
        (10**18 + 1, "USD", "10000000000000000.01"),  # past float precision, still exact
        (99, "cny", "0.99"),
        (12345, "ZZZ", "123.45"),  # not in ISO 4217: two decimals
        (12345, "XAU", "123.45"),  # no minor unit defined: two decimals
    ],
)
def test_major_units_exact(amount: int, currency: str, expected: str) -> None:
    assert major_units(amount, currency) == expected


def test_major_units_refuses_floats() -> None:
    with pytest.raises(TypeError):
        major_units(12.5, "CNY")  # type: ignore[arg-type]


def test_organisation_ref_is_stable_and_conservative() -> None:
    ref = organisation_ref(CHAIN_ID, CHARITY_ID)
    assert ref == "XI-LEDGER-31337-CH-7K3M-9QX2-P4TA-B5C8"
    assert organisation_ref(CHAIN_ID, "ch-7k3m-9qx2-p4ta-b5c8") == ref  # one charity, one ref
    hex_id = "0x" + "12" * 32
    assert organisation_ref(1, hex_id) == "XI-LEDGER-1-" + hex_id
    for value in (ref, organisation_ref(1, hex_id)):
        assert re.fullmatch(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*", value)
    for bad in ("CH 7K3M/9QX2", "CP-7Q2M-4KXD-9TAB-3FHE", ""):
        with pytest.raises(ValueError):
            organisation_ref(CHAIN_ID, bad)
    with pytest.raises(ValueError):
        organisation_ref(0, CHARITY_ID)


def test_bad_records_are_refused() -> None:
    for bad in (
        Transaction("gift", record_id("DN", 1), 1, T0, tx_hash(1)),
        Transaction("donation", record_id("DN", 1), 0, T0, tx_hash(1)),
        Transaction("refund", record_id("RF", 1), -5, T0, tx_hash(1)),
    ):
        with pytest.raises(ValueError):
            b"".join(activities_xml([(CNY, [bad])], GENERATED))
    with pytest.raises(ValueError):
        b"".join(activities_xml([(activity("CP 1/2", "x", "CNY"), [])], GENERATED))


def test_no_activity_is_refused_before_any_output() -> None:
    with pytest.raises(ValueError, match="at least one activity"):
        next(activities_xml(iter(()), GENERATED))


# ------------------------------------------------------------------ streaming


def donations(count: int, seen: list[int]) -> Iterator[Transaction]:
    for n in range(count):
        seen.append(n)
        yield Transaction("donation", record_id("DN", n), 100 + n, T0 + timedelta(seconds=n), tx_hash(n))


def test_large_activity_is_streamed_lazily() -> None:
    seen: list[int] = []
    pulled: list[str] = []

    def pairs() -> Iterator[tuple[Activity, Iterator[Transaction]]]:
        pulled.append(CNY.identifier)
        yield CNY, donations(2000, seen)
        pulled.append(USD.identifier)
        yield USD, iter(())

    stream = activities_xml(pairs(), GENERATED)
    assert seen == [] and pulled == []  # nothing is read until the first chunk is asked for
    first = next(stream)
    assert 0 < len(seen) < 2000  # the first chunk came before the transactions ran out
    assert pulled == [CNY.identifier]
    assert first.count(b"<transaction ") == len(seen)
    rest = list(stream)
    assert len(seen) == 2000 and pulled == [CNY.identifier, USD.identifier]
    chunks = [first, *rest]
    assert len(chunks) >= 4
    assert max(chunk.count(b"<transaction ") for chunk in chunks) <= iati.CHUNK_TRANSACTIONS
    xml = b"".join(chunks)
    assert validate(xml) == []
    root = etree.fromstring(xml)
    values = [t.findtext("value") for t in root.iter("transaction")]
    assert values[0] == "1.00" and values[-1] == "20.99" and len(values) == 2000


def test_stream_can_be_consumed_from_different_threads() -> None:
    """Starlette pulls a sync generator's chunks from worker threads, one next() at a time."""
    stream = activities_xml([(CNY, donations(1200, [])), (JPY, iter(JPY_TXS))], GENERATED)
    chunks: list[bytes] = []
    while True:
        with ThreadPoolExecutor(max_workers=1) as pool:  # a new thread for every chunk
            chunk = pool.submit(next, stream, None).result()
        if chunk is None:
            break
        chunks.append(chunk)
    assert len(chunks) > 2
    assert validate(b"".join(chunks)) == []


def test_abandoned_stream_closes_cleanly() -> None:
    seen: list[int] = []
    stream = activities_xml([(CNY, donations(2000, seen))], GENERATED)
    next(stream)
    stream.close()
    assert len(seen) < 2000


# ------------------------------------------------------------------ validation can fail


def test_validate_reports_a_missing_identifier() -> None:
    root = etree.fromstring(document())
    first = root.find("iati-activity")
    first.remove(first.find("iati-identifier"))
    errors = validate(etree.tostring(root, xml_declaration=True, encoding="utf-8"))
    assert errors and any("iati-identifier" in error for error in errors)
    assert all(re.match(r"^\d+: ", error) for error in errors)


def test_validate_reports_elements_out_of_order() -> None:
    root = etree.fromstring(document())
    first = root.find("iati-activity")
    status = first.find("activity-status")
    first.remove(status)
    first.insert(0, status)
    assert validate(etree.tostring(root)) != []


def test_validate_reports_a_non_decimal_value_and_malformed_xml() -> None:
    root = etree.fromstring(document())
    next(root.iter("value")).text = "12,50"
    errors = validate(etree.tostring(root))
    assert len(errors) == 1 and "'12,50' is not a valid value of the atomic type 'xs:decimal'" in errors[0]
    malformed = validate(b"<iati-activities version='2.03'><iati-activity>")
    assert malformed and not any("12,50" in error for error in malformed)  # no stale errors carried over


def test_schema_override_by_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert iati.schema_path() == iati.SCHEMA
    other = tmp_path / "other.xsd"
    other.write_text(
        '<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema"><xsd:element name="other"/></xsd:schema>'
    )
    monkeypatch.setenv(iati.SCHEMA_ENV, str(other))
    assert iati.schema_path() == other
    assert validate(b"<other/>") == []
    assert validate(document()) != []
