"""The donor's ownership check, `POST /v1/donations/{id}/ownership`: the receipt secret and
the donor reference match the on-chain commitment whatever the spacing or Unicode form
either side typed (the reference is normalised the same way when recorded and when
checked), a reference that differs in a real character does not, and neither input is
logged (the app's logs and uvicorn's access log, which LEDGER_ACCESS_LOG=true turns on) or stored."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import MetaData, select

from ledger_api.core import reference
from tests.api.checks import wait_for_mirror
from tests.api.service import Service, serve, settings_for

ZOE = "Zoë Ångström"  # NFC: ë and Å are one code point each
LU = "Lǚ Xiǎomíng 吕小明"  # pinyin with tone marks, and the name in Chinese characters


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


# (as the charity recorded it, as the donor types it): the same reference.
SAME = [
    (ZOE, ZOE),
    (ZOE, nfd(ZOE)),
    (nfd(ZOE), ZOE),
    (ZOE, f"  {ZOE}\n"),
    (ZOE, "Zoë \t  Ångström"),
    (ZOE, "Zoë\u00a0Ångström"),  # NBSP
    (ZOE, "Zoë\u3000Ångström"),  # ideographic space
    (ZOE, "\u2003" + nfd("Zoë\u202fÅngström") + "\r\n"),
    (LU, nfd(LU)),
    (LU, "Lǚ\u3000Xiǎomíng\u3000吕小明"),  # as a Chinese keyboard types spaces
    # Recorded with spacing of its own (a tab or line break is refused when recording,
    # like every control character: tests/api/test_bad_input.py).
    (f" {nfd(LU)}\u3000", "Lǚ Xiǎomíng  吕小明"),
    ("吕小明", "吕小明 "),
]
# A real character apart: never a match.
DIFFERENT = [
    (ZOE, "Zoe Ångström"),
    (ZOE, "zoë Ångström"),
    (ZOE, "ZoëÅngström"),  # a space removed is not spacing: it separated two words
    (ZOE, "Zoë Ångström."),
    (LU, "Lü Xiǎomíng 吕小明"),
    (LU, "Lǚ Xiǎomíng 吕小敏"),
    ("吕小明", "吕 小明"),
]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, dict[str, dict[str, Any]]]]:
    """The service as `ledger dev` runs it (embedded chain, SQLite), uvicorn's access log on, and
    one donation per distinct recorded reference (and the charity's key, under "key")."""
    tmp = tmp_path_factory.mktemp("ownership")
    settings = settings_for(tmp, None, f"sqlite:///{tmp / 'ledger.db'}")
    with serve(settings, log_level="info") as service:
        charity, key = service.charity()
        campaign = service.campaign(charity, key)
        donations = {}
        for typed in dict.fromkeys(recorded for recorded, _ in SAME + DIFFERENT):
            donations[typed] = service.donate(campaign, key, 1_000, typed)
        donations["key"] = {"key": key}
        wait_for_mirror(service)
        yield service, donations


def check(service: Service, donation: dict[str, Any], secret: str, typed: str) -> Any:
    return service.post(
        f"/v1/donations/{donation['id']}/ownership", json={"receipt_secret": secret, "donor_reference": typed}
    )


@pytest.mark.parametrize(("recorded_as", "typed"), SAME)
def test_a_reference_typed_with_other_spacing_or_unicode_form_matches(
    recorded: tuple[Service, dict[str, dict[str, Any]]], recorded_as: str, typed: str
) -> None:
    service, donations = recorded
    donation = donations[recorded_as]
    answer = check(service, donation, donation["receipt_secret"], typed)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"id": donation["id"], "matches": True}
    # The secret in capitals is the same secret.
    assert check(service, donation, "0x" + donation["receipt_secret"][2:].upper(), typed).json()["matches"]


@pytest.mark.parametrize(("recorded_as", "typed"), DIFFERENT)
def test_a_reference_differing_in_a_real_character_does_not_match(
    recorded: tuple[Service, dict[str, dict[str, Any]]], recorded_as: str, typed: str
) -> None:
    service, donations = recorded
    donation = donations[recorded_as]
    answer = check(service, donation, donation["receipt_secret"], typed)
    assert answer.status_code == 200, answer.text
    assert answer.json()["matches"] is False


def test_another_donations_secret_does_not_match(recorded: tuple[Service, dict[str, dict[str, Any]]]) -> None:
    service, donations = recorded
    zoe, lu = donations[ZOE], donations[LU]
    assert check(service, zoe, lu["receipt_secret"], ZOE).json()["matches"] is False
    assert check(service, lu, zoe["receipt_secret"], ZOE).json()["matches"] is False


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("", "at least 1 character"),
        (" \t\u3000\u00a0\n", "a donor reference is needed"),
        ("x" * 201, "at most 200 characters"),
        ("x" * 401, "at most 400 characters"),
        ("Zoë\x1b[31m", "U+001B"),
        ("Zoë\u200b", "U+200B"),
        ("Zoë\u202e", "U+202E"),
    ],
)
def test_a_reference_that_cannot_be_one_is_refused_with_what_is_wrong(
    recorded: tuple[Service, dict[str, dict[str, Any]]], typed: str, said: str
) -> None:
    service, donations = recorded
    donation = donations[ZOE]
    answer = check(service, donation, donation["receipt_secret"], typed)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert said in answer.text
    assert typed not in answer.text or not typed.strip()


def test_recording_normalises_and_refuses_a_reference_of_spaces(
    recorded: tuple[Service, dict[str, dict[str, Any]]],
) -> None:
    """The reference recorded for the commitment is the normalised one (the commitment the
    service answers is keccak(secret || normalised reference)), and a reference that is
    only spacing is refused, as an empty one always was."""
    service, donations = recorded
    zoe = donations[nfd(ZOE)]
    expected = reference.commitment(bytes.fromhex(zoe["receipt_secret"][2:]), ZOE)
    assert zoe["donor_commitment"] == "0x" + expected.hex()
    key = donations["key"]["key"]
    for blank in ("", "   ", "\u3000\t"):
        refused = service.post(
            "/v1/donations",
            key,
            json={"campaign_id": zoe["campaign_id"], "amount": 1, "donor_reference": blank},
        )
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")


def test_neither_input_is_logged_or_stored(
    recorded: tuple[Service, dict[str, dict[str, Any]]], caplog: pytest.LogCaptureFixture
) -> None:
    service, donations = recorded
    donation = donations[LU]
    secret = donation["receipt_secret"]
    typed = "Lǚ  Xiǎomíng\u3000吕小明 "
    access = logging.getLogger("uvicorn.access")
    access.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG):
            assert check(service, donation, secret, typed).json()["matches"] is True
            assert check(service, donation, secret, typed + "x").json()["matches"] is False
            refused = check(service, donation, secret[:-1], typed)
            assert refused.status_code == 422
            page = service.post(
                f"/donations/{donation['id']}/ownership",
                data={"receipt_secret": secret, "donor_reference": typed},
            )
            assert page.status_code == 200
            printed = service.post(
                f"/donations/{donation['id']}/receipt",
                data={"receipt_secret": secret, "donor_reference": typed},
            )
            assert printed.status_code == 200
    finally:
        access.removeHandler(caplog.handler)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    # The capture works: the access log has a line for each request (a test that cannot fail
    # otherwise would pass on an empty log).
    assert logged.count(f"/v1/donations/{donation['id']}/ownership") >= 3, logged
    assert f"/donations/{donation['id']}/receipt" in logged
    for needle in _needles(secret, typed):
        assert needle.lower() not in logged.lower(), needle
    _nowhere_in_the_database(service, secret, typed)


def _needles(secret: str, typed: str) -> list[str]:
    normalised = reference.normalise(typed)
    return [secret[2:], secret[2:-1], typed, normalised, "吕小明", "Xiǎomíng", nfd("Xiǎomíng")]


def _nowhere_in_the_database(service: Service, secret: str, typed: str) -> None:
    """Every column of every row of every table, as text and as bytes."""
    needles = _needles(secret, typed)
    raw = [bytes.fromhex(secret[2:]), *(n.encode("utf-8") for n in needles)]
    engine = service.runtime.engine
    metadata = MetaData()
    metadata.reflect(engine)
    rows = 0
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                rows += 1
                for value in row:
                    if isinstance(value, str):
                        assert not any(n.lower() in value.lower() for n in needles), (table.name, value[:80])
                    elif isinstance(value, bytes | bytearray | memoryview):
                        data = bytes(value)
                        assert not any(n in data for n in raw), table.name
    assert len(metadata.sorted_tables) > 5 and rows > 10  # the tables were read


@given(st.text(max_size=50))
def test_normalising_twice_changes_nothing_and_spacing_never_counts(text: str) -> None:
    once = reference.normalise(text)
    assert reference.normalise(once) == once
    assert once == once.strip(" ") and "  " not in once
    assert unicodedata.is_normalized("NFC", once)
    assert reference.normalise(f"\u3000{nfd(text)}\t") == once
