"""Reading statements (encodings, delimiters, title lines, XLSX, hostile files) and
amounts (exactly, every accepted way of writing them), without a service."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_api.core import amounts
from ledger_api.imports import reading
from tests.imports.statements import HEADER, csv_text, rows, xlsx


def test_a_gb18030_statement_with_title_lines_is_read_from_its_header() -> None:
    data = csv_text(rows(1000)).encode("gb18030")
    table = reading.read(data)
    assert table.encoding == "gb18030"
    assert table.header == HEADER
    assert table.header_line == 4  # three title lines above it
    assert len(table.rows) == 1000
    assert table.rows[0][0] == 5 and table.rows[0][1][2] == "捐赠人 0"


def test_gbk_with_tabs_and_utf8_with_and_without_bom_read_the_same() -> None:
    body = rows(30)
    for data in (
        csv_text(body, delimiter="\t").encode("gbk"),
        csv_text(body, title=False).encode("utf-8"),
        b"\xef\xbb\xbf" + csv_text(body).encode("utf-8"),
    ):
        table = reading.read(data)
        assert table.header == HEADER, table.encoding
        assert [r[1] for r in table.rows] == body


def test_an_xlsx_statement_is_read_and_a_formula_is_text_not_evaluated() -> None:
    body: list[list[object]] = [*rows(5)]
    body[0][1] = '=HYPERLINK("http://evil.example","click")'
    table = reading.read(xlsx(body), "statement.xlsx")
    assert table.header == HEADER
    assert table.rows[0][1][1] == '=HYPERLINK("http://evil.example","click")'
    assert [r[1][2] for r in table.rows] == [r[2] for r in body]


@pytest.mark.parametrize(
    "data,code",
    [
        (bytes(range(256)) * 50, "binary-file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(4000), "binary-file"),
        (b"", "empty-file"),
        (b"1,2,3\n4,5,6\n", "no-header"),
        (b"PK\x03\x04not really a zip", "bad-xlsx"),
        (b"a,b\n" + b"x," + b"y" * 2000 + b"\n", "cell-too-long"),
        (b"a,b\n" + b"1,2\n" * (reading.MAX_ROWS + 30), "too-many-rows"),
    ],
)
def test_hostile_or_broken_files_are_refused_with_a_code(data: bytes, code: str) -> None:
    with pytest.raises(reading.UnreadableFile) as refused:
        reading.read(data, "statement.csv")
    assert refused.value.code == code


def test_a_zip_bomb_is_refused_before_openpyxl_opens_it() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (reading.MAX_XLSX_INFLATED + 1))
    assert len(out.getvalue()) < 1_000_000
    with pytest.raises(reading.UnreadableFile) as refused:
        reading.read(out.getvalue(), "bomb.xlsx")
    assert refused.value.code == "xlsx-too-large"


@pytest.mark.parametrize(
    "text,minor",
    [
        ("1,234.50", 123450),
        ("1234.5", 123450),
        ("¥1,234.50", 123450),
        ("￥1,234.50", 123450),  # the full-width yen sign banks print
        ("CN¥1,234.50", 123450),
        ("RMB 1,234.50", 123450),
        ("1234.50 CNY", 123450),
        ("１，２３４．５０", 123450),  # noqa: RUF001  # full-width digits and comma
        (" 7 ", 700),
        ("(1,234.50)", -123450),
        ("-1,234.50", -123450),
        ("0.01", 1),
    ],
)
def test_amounts_convert_exactly(text: str, minor: int) -> None:
    assert amounts.signed(text, 2) == minor


@pytest.mark.parametrize(
    "text,code",
    [
        ("1234.567", "amount-too-precise"),
        ("1,23.4", "amount-not-a-number"),
        ("1e3", "amount-not-a-number"),
        ("", "amount-empty"),
    ],
)
def test_bad_amounts_are_refused_with_a_code(text: str, code: str) -> None:
    with pytest.raises(amounts.AmountError) as refused:
        amounts.signed(text, 2)
    assert refused.value.code == code


def test_minor_units_are_whole_numbers() -> None:
    assert amounts.signed("123450", 2, minor=True) == 123450
    with pytest.raises(amounts.AmountError):
        amounts.signed("1234.5", 2, minor=True)


def _written(minor: int, exponent: int, style: int) -> str:
    whole, part = divmod(minor, 10**exponent)
    grouped = f"{whole:,}"
    decimals = f".{part:0{exponent}d}" if exponent else ""
    plain = f"{whole}{decimals}"
    return [
        plain,
        grouped + decimals,
        "¥" + grouped + decimals,
        "\uffe5" + grouped + decimals,
        "CN¥ " + plain,
        "RMB" + grouped + decimals,
        plain + " CNY",
        (grouped + decimals).translate(str.maketrans("0123456789,.", "０１２３４５６７８９\uff0c\uff0e")),  # noqa: RUF001
        f"  {plain}  ",
    ][style]


@given(st.integers(min_value=0, max_value=10**15), st.sampled_from([0, 2, 3]), st.integers(0, 8))
def test_every_accepted_way_of_writing_an_amount_parses_back(minor: int, exponent: int, style: int) -> None:
    assert amounts.signed(_written(minor, exponent, style), exponent) == minor
    if minor:
        assert amounts.signed("(" + _written(minor, exponent, style).strip() + ")", exponent) == -minor


def test_a_short_gb18030_statement_is_not_taken_for_thai() -> None:
    """charset-normalizer guessed TIS-620 for this 30-row GB18030 statement (its header
    came out as Thai letters and no column matched)."""
    body = [[*row, "CP-0000-0000-0000-0000"] for row in rows(30, prefix="T")]
    table = reading.read(csv_text(body, header=[*HEADER, "项目"]).encode("gb18030"))
    assert table.encoding == "gb18030" and table.header == [*HEADER, "项目"]


def test_latin_text_is_not_read_as_gb18030() -> None:
    names = ["Müller Jürgen", "Jörg Schäfer", "René Grün", "Zoë Weiß", "Käthe Böhm"]
    text = "Datum;Referenz;Auftraggeber;Verwendungszweck;Betrag\n" + "".join(
        f"2026-10-{day:02d};R{day};{names[day % 5]};Spende für Schulessen, Grüße;12,50\n"
        for day in range(1, 29)
    )
    table = reading.read(text.encode("cp1252"))
    assert table.encoding != "gb18030"
    assert [row[2] for _, row in table.rows[:5]] == [names[d % 5] for d in range(1, 6)]
