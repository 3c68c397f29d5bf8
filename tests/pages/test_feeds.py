"""The Atom feeds a donor follows a donation with, without an account (pages/feeds.py):
the real service over HTTP on the embedded chain, with records counting as final only
three blocks behind the head, so a test decides when a record becomes final by mining.

- a payout enters the donation's feed exactly when it becomes final, never before, and
  the ETag changes with it; 304 for If-None-Match and If-Modified-Since;
- the feeds are Atom (root, entries with ids, titles, times and links), their entry IDs
  unique and the same on every request and in both languages;
- unknown and malformed IDs are 404 problems;
- text from the chain (markup, `]]>`, control characters, Chinese) is escaped or dropped,
  never a 500; a private recipient is shown as the pages show it;
- the pages link their feed; the receipt's second QR code is the feed's address."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import httpx
import pytest
from lxml import etree, html
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from web3.types import RPCEndpoint

from ledger_api.core import ids
from ledger_api.core.answers import Proof
from ledger_api.core.config import Settings
from ledger_api.pages import feeds
from ledger_api.pages.i18n import Reader
from ledger_api.pages.routes import qr_svg
from tests.api.checks import wait_for_mirror, write_on_chain
from tests.api.service import Service, serve, settings_for

ATOM = "{http://www.w3.org/2005/Atom}"
CONFIRMATIONS = 3
# Text from the chain is anyone's text: written straight to the contract (the API refuses
# control characters), as any holder of the charity's operator key could.
HOSTILE = 'Rice <script>alert(1)</script> ]]> & "oil" \x01\x0b\x1f 学生午餐'
HOSTILE_RECIPIENT = "Co-op <b>bold</b> ]]> \x08"


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def mine(service: Service, blocks: int) -> None:
    """Mine `blocks` empty blocks and wait until the mirror has them (so the finalized
    height is then the head minus CONFIRMATIONS, and stays there)."""
    for _ in range(blocks):
        service.runtime.w3.provider.make_request(RPCEndpoint("evm_mine"), [])
    wait_for_mirror(service)


def finalized(service: Service, donation_id: str) -> int:
    return int(_ok(service.get(f"/v1/donations/{donation_id}"))["mirror"]["finalized_block"])


def parse(response: httpx.Response) -> etree._Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    root = etree.fromstring(response.content)
    assert root.tag == f"{ATOM}feed"
    return root


def entries(root: etree._Element) -> list[dict[str, str]]:
    found = []
    for entry in root.findall(f"{ATOM}entry"):
        link = entry.find(f"{ATOM}link")
        found.append(
            {
                "id": entry.findtext(f"{ATOM}id") or "",
                "title": entry.findtext(f"{ATOM}title") or "",
                "summary": entry.findtext(f"{ATOM}summary") or "",
                "updated": entry.findtext(f"{ATOM}updated") or "",
                "link": link.get("href", "") if link is not None else "",
            }
        )
    return found


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Service, dict[str, Any]]]:
    """A charity with a campaign and two donations, all final; on SQLite and PostgreSQL."""
    tmp = tmp_path_factory.mktemp("feeds")
    url, name = f"sqlite:///{tmp / 'ledger.db'}", None
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server_url")
        name = f"ledger_test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
    settings = settings_for(tmp, None, url).model_copy(update={"confirmations": CONFIRMATIONS})
    try:
        yield from _ledger(settings)
    finally:
        if name is not None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def _ledger(settings: Settings) -> Iterator[tuple[Service, dict[str, Any]]]:
    with serve(settings) as service:
        charity, key = service.charity("Sunrise Children Fund 朝阳儿童基金")
        campaign = service.campaign(charity, key)
        first = service.donate(campaign, key, 10_000, "donor one")
        second = service.donate(campaign, key, 5_000, "donor two")
        mine(service, CONFIRMATIONS)
        yield (
            service,
            {"charity": charity, "key": key, "campaign": campaign, "first": first, "second": second},
        )


def test_a_payout_enters_the_donation_feed_exactly_when_it_becomes_final(
    ledger: tuple[Service, dict[str, Any]],
) -> None:
    service, made = ledger
    donation = made["first"]["id"]
    path = feeds.feed_path("donations", donation)
    before = service.get(path)
    [recorded] = entries(parse(before))
    assert recorded["title"] == "Donation recorded: CN¥100.00"
    assert recorded["link"].endswith(f"/donations/{donation}")
    etag = before.headers["etag"]

    paid = _ok(
        service.post(
            "/v1/disbursements",
            made["key"],
            json={
                "campaign_id": made["campaign"],
                "amount": 4_000,
                "recipient": "CN-USCC-9111",
                "purpose": "School lunches, May",
                "allocations": [{"donation_id": donation, "amount": 4_000}],
            },
        )
    )
    wait_for_mirror(service)
    trace = _ok(service.get(f"/v1/donations/{donation}"))
    [allocation] = trace["allocations"]
    block = allocation["proof"]["block_number"]
    assert allocation["proof"]["final"] is False  # recorded and mirrored, not final yet
    # Block by block: the entry is there exactly when the payout's block is final.
    seen = []
    for _ in range(CONFIRMATIONS + 1):
        answer = service.get(path)
        listed = entries(parse(answer))
        has_payout = any(paid["id"] in e["id"] for e in listed)
        seen.append(has_payout)
        assert has_payout == (block <= finalized(service, donation)), (block, finalized(service, donation))
        if not has_payout:
            # Nothing new and final: the same document, so the same ETag, and a 304.
            assert answer.headers["etag"] == etag
            assert service.get(path, headers={"If-None-Match": etag}).status_code == 304
        mine(service, 1)
    assert seen[0] is False and seen[-1] is True  # it appeared, and only once it was final

    after = service.get(path)
    payout = next(e for e in entries(parse(after)) if paid["id"] in e["id"])
    assert payout["title"] == "Paid out: CN¥40.00 of this donation for School lunches, May"
    assert "to CN-USCC-9111" in payout["summary"] and "CN¥40.00" in payout["summary"]
    assert payout["link"].endswith(f"/disbursements/{paid['id']}")
    assert payout["updated"] == allocation["proof"]["recorded_at"].replace("Z", "+00:00")

    # The ETag changed with the new entry; the old one gets the new feed, the new one a 304.
    new_etag = after.headers["etag"]
    assert new_etag != etag and re.fullmatch(r'"[0-9a-f]{40}"', new_etag)  # strong
    stale = service.get(path, headers={"If-None-Match": etag})
    assert stale.status_code == 200 and stale.content == after.content
    fresh = service.get(path, headers={"If-None-Match": f'"other", {new_etag}'})
    assert fresh.status_code == 304 and fresh.content == b""
    assert fresh.headers["etag"] == new_etag
    # If-Modified-Since: Last-Modified is the newest entry's block time.
    modified = after.headers["last-modified"]
    assert parsedate_to_datetime(modified).isoformat() == payout["updated"]
    assert service.get(path, headers={"If-Modified-Since": modified}).status_code == 304
    earlier = format_datetime(parsedate_to_datetime(modified) - timedelta(seconds=1), usegmt=True)
    assert service.get(path, headers={"If-Modified-Since": earlier}).status_code == 200
    assert service.get(path, headers={"If-Modified-Since": "not a date"}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110): a stale tag gets the feed.
    both = service.get(path, headers={"If-None-Match": etag, "If-Modified-Since": modified})
    assert both.status_code == 200

    # The campaign's and the charity's feeds have the payout too, and the other donation's
    # feed does not.
    for kind, record in (("campaigns", made["campaign"]), ("charities", made["charity"])):
        listed = entries(parse(service.get(feeds.feed_path(kind, record))))
        assert [e["title"] for e in listed if paid["id"] in e["id"]] == [
            "Paid out CN¥40.00 for School lunches, May"
        ]
    other = entries(parse(service.get(feeds.feed_path("donations", made["second"]["id"]))))
    assert all(paid["id"] not in e["id"] for e in other)


def test_feeds_are_atom_with_stable_unique_ids_in_both_languages(
    ledger: tuple[Service, dict[str, Any]],
) -> None:
    service, made = ledger
    refund = _ok(
        service.post(
            f"/v1/donations/{made['second']['id']}/refunds",
            made["key"],
            json={"amount": 1_000, "reason": "asked back"},
        )
    )
    mine(service, CONFIRMATIONS)
    for kind, record in (
        ("donations", made["second"]["id"]),
        ("campaigns", made["campaign"]),
        ("charities", made["charity"]),
    ):
        path = feeds.feed_path(kind, record)
        english, chinese = service.get(path), service.get(path, params={"lang": "zh-CN"})
        by_header = service.get(path, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        for answer in (english, chinese, by_header):
            root = parse(answer)
            assert root.findtext(f"{ATOM}id") and root.findtext(f"{ATOM}title")
            assert root.findtext(f"{ATOM}updated") and root.find(f"{ATOM}author/{ATOM}name") is not None
            assert {link.get("rel") for link in root.findall(f"{ATOM}link")} == {"alternate", "self"}
            for entry in entries(root):
                assert entry["id"].startswith("urn:charity-ledger:") and entry["title"] and entry["updated"]
                assert entry["link"].startswith(service.base + "/")
            # Public: cached by anyone for a short while, no cookie, varies by language.
            assert answer.headers["cache-control"] == f"public, max-age={feeds.MAX_AGE}"
            assert "set-cookie" not in answer.headers
            assert answer.headers["vary"] == "Accept-Language"
        ids_en = [e["id"] for e in entries(parse(english))]
        assert ids_en and len(set(ids_en)) == len(ids_en), kind
        assert [e["id"] for e in entries(parse(service.get(path)))] == ids_en  # stable
        assert [e["id"] for e in entries(parse(chinese))] == ids_en  # the language is not the entry
        assert parse(chinese).get("{http://www.w3.org/XML/1998/namespace}lang") == "zh-CN"
        assert chinese.headers["content-language"] == by_header.headers["content-language"] == "zh-CN"
        assert english.headers["etag"] != chinese.headers["etag"]
        assert entries(parse(chinese)) == entries(parse(by_header))  # the self link differs
        # A cookie does not choose a feed's language (a feed reader keeps none).
        assert service.get(path, headers={"Cookie": "lang=zh-CN"}).content == english.content
    titles = [
        e["title"]
        for e in entries(
            parse(service.get(feeds.feed_path("donations", made["second"]["id"]), params={"lang": "zh-CN"}))
        )
    ]
    assert "已退款：¥10.00" in titles, titles  # noqa: RUF001
    assert refund["id"] in " ".join(
        e["id"] for e in entries(parse(service.get(feeds.feed_path("campaigns", made["campaign"]))))
    )


@pytest.mark.parametrize(
    "path",
    [
        "/v1/donations/{unknown_donation}/feed.atom",
        "/v1/campaigns/{unknown_campaign}/feed.atom",
        "/v1/charities/{unknown_charity}/feed.atom",
        "/v1/donations/not-an-id/feed.atom",
        "/v1/donations/{campaign}/feed.atom",  # the wrong kind of ID
        "/v1/campaigns/{charity}/feed.atom",
        "/v1/charities/0x{zeros}/feed.atom",
        "/v1/charities/%00%01/feed.atom",
        "/v1/campaigns/{long}/feed.atom",
    ],
)
def test_unknown_and_malformed_ids_are_404(ledger: tuple[Service, dict[str, Any]], path: str) -> None:
    service, made = ledger
    asked = path.format(
        unknown_donation=ids.new("donation"),
        unknown_campaign=ids.new("campaign"),
        unknown_charity=ids.new("charity"),
        campaign=made["campaign"],
        charity=made["charity"],
        zeros="0" * 64,
        long="CP-" + "A" * 5000,
    )
    answer = service.get(asked)
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:charity-ledger:problem:not-found"


def test_hostile_text_is_escaped_and_control_characters_do_not_break_the_feed(
    ledger: tuple[Service, dict[str, Any]],
) -> None:
    service, made = ledger
    donation = made["first"]["id"]
    hostile = ids.new("disbursement")
    write_on_chain(
        service,
        service.operators[made["charity"]],
        "recordDisbursement",
        ids.to_bytes32(hostile),
        ids.to_bytes32(made["campaign"]),
        1_000,
        HOSTILE_RECIPIENT,
        HOSTILE,
        bytes(32),
        [(ids.to_bytes32(donation), 1_000)],
    )
    write_on_chain(
        service,
        service.operators[made["charity"]],
        "refundDonation",
        ids.to_bytes32(ids.new("refund")),
        ids.to_bytes32(donation),
        500,
        "退款 <img src=x onerror=alert(1)> \x07\x1b",  # no NUL: see the renderer test below
    )
    private = _ok(
        service.post(
            "/v1/disbursements",
            made["key"],
            json={
                "campaign_id": made["campaign"],
                "amount": 500,
                "recipient_person": {"reference": "Li Lei 110101199003071234"},
                "purpose": "Bus fare",
                "allocations": [{"donation_id": donation, "amount": 500}],
            },
        )
    )
    mine(service, CONFIRMATIONS)
    for kind, record in (
        ("donations", donation),
        ("campaigns", made["campaign"]),
        ("charities", made["charity"]),
    ):
        for lang in ("en", "zh-CN"):
            answer = service.get(feeds.feed_path(kind, record), params={"lang": lang})
            root = parse(answer)  # lxml parses it: well-formed, nothing forbidden in it
            text = answer.text
            assert "<script>" not in text and "<b>" not in text and "<img" not in text
            assert '&lt;script&gt;alert(1)&lt;/script&gt; ]]&gt; &amp; "oil"' in text
            assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", text)
            listed = entries(root)
            shown = " ".join(e["title"] + " " + e["summary"] for e in listed)
            # The text itself survives, as text: the markup, the `]]>`, the Chinese.
            assert 'Rice <script>alert(1)</script> ]]> & "oil"  学生午餐' in shown, (kind, lang)
            assert "Co-op <b>bold</b> ]]> " in shown
            # A private person is shown as on the pages; the commitment and the details never.
            assert "Li Lei" not in text and "private:0x" not in text
            person = "a private person (identity withheld)" if lang == "en" else "私人受助者（身份保密）"  # noqa: RUF001
            assert any(private["id"] in e["summary"] and person in e["summary"] for e in listed), (kind, lang)
    refund_text = entries(parse(service.get(feeds.feed_path("donations", donation))))
    assert any("退款 <img src=x onerror=alert(1)> " in e["summary"] for e in refund_text)


def test_a_lone_surrogate_or_a_nul_in_any_text_still_renders() -> None:
    """lxml refuses what XML 1.0 cannot carry (a 500, were it not cleaned first). The
    chain's decoder cannot produce a lone surrogate, and a NUL written on chain stops the
    indexer on PostgreSQL before any feed sees it (text columns refuse it), so the
    renderer is given both here."""
    at = Proof(
        chain_id=1,
        contract="0x" + "ab" * 20,
        tx_hash="0x" + "cd" * 32,
        block_number=7,
        block_hash=None,
        log_index=0,
        recorded_at="2026-03-04T05:06:07+00:00",
        final=True,
        confirmations=3,
    )
    feed = feeds.Feed(
        subject="CP-0000-0000-0000-0001",
        title="Title \ud800 \x00",
        subtitle="\x0c",
        author="\udfff",
        page="/campaigns/CP-0000-0000-0000-0001",
        self_path=feeds.feed_path("campaigns", "CP-0000-0000-0000-0001"),
        created=at,
        entries=[feeds.Entry("x", at, "a \ud83d b \x1f", "]]> <&> \x0e 中文", "/")],
    )
    body, modified = feeds.render(feed, Reader("en"), "http://example.org")
    root = etree.fromstring(body)
    assert root.findtext(f"{ATOM}title") == "Title  "
    [entry] = entries(root)
    assert (entry["title"], entry["summary"]) == ("a  b ", "]]> <&>  中文")
    assert modified is not None and modified.isoformat() == "2026-03-04T05:06:07+00:00"


def test_the_pages_link_their_feed_and_the_receipt_has_a_second_qr_code(
    ledger: tuple[Service, dict[str, Any]],
) -> None:
    service, made = ledger
    donation = made["first"]["id"]
    for lang, follow in (("en", "Follow (Atom feed)"), ("zh-CN", "关注（Atom 订阅源）")):  # noqa: RUF001
        for kind, record in (
            ("donations", donation),
            ("campaigns", made["campaign"]),
            ("charities", made["charity"]),
        ):
            page = service.get(f"/{kind}/{record}", params={"lang": lang})
            assert page.status_code == 200
            document = html.fromstring(page.text)
            expected = f"{feeds.feed_path(kind, record)}?lang={lang}"
            [alternate] = document.xpath('//head/link[@rel="alternate"][@type="application/atom+xml"]')
            assert alternate.get("href") == expected
            [visible] = document.xpath('//*[@data-testid="follow"]/a')
            assert visible.get("href") == expected and visible.text_content() == follow
            assert service.get(expected).status_code == 200  # it leads to the feed

        receipt = service.get(f"/donations/{donation}/receipt", params={"lang": lang})
        document = html.fromstring(receipt.text)
        codes = document.xpath("//svg[@class='qr-code']")
        assert [code.get("data-testid") for code in codes] == ["qr", "qr-follow"]
        feed_url = f"{service.base}{feeds.feed_path('donations', donation)}?lang={lang}"
        assert codes[1].get("data-url") == feed_url
        # The code drawn is the feed's address: the same modules as a QR code made for it here.
        expected_code = etree.fromstring(qr_svg(feed_url, "x", "qr-follow"))
        drawn = [p.get("d") for p in codes[1].iter() if p.tag.endswith("path")]
        assert drawn == [p.get("d") for p in expected_code.iter() if p.tag.endswith("path")] and drawn[0]
        heading = document.xpath("//*[@data-testid='receipt-follow']//h2")[0].text_content()
        assert heading == ("Follow this donation" if lang == "en" else "关注这笔捐赠")
        assert feed_url in document.xpath("//*[@data-testid='receipt-follow']")[0].text_content()
        assert service.get(feed_url).status_code == 200


def test_a_feed_is_bounded_to_the_newest_entries(ledger: tuple[Service, dict[str, Any]]) -> None:
    service, made = ledger
    # Enough final records for the campaign to go past the bound.
    key, campaign = made["key"], made["campaign"]
    donation = service.donate(campaign, key, feeds.FEED_LIMIT + 10, "donor three")
    refunds = feeds.FEED_LIMIT + 5
    for _ in range(refunds):
        sent = service.post(
            f"/v1/donations/{donation['id']}/refunds",
            key,
            params={"wait": "false"},
            json={"amount": 1, "reason": "r"},
        )
        assert sent.status_code == 202, sent.text
    deadline = time.monotonic() + 60
    while _ok(service.get(f"/v1/donations/{donation['id']}"))["refunded"] < refunds:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    mine(service, CONFIRMATIONS)
    listed = entries(parse(service.get(feeds.feed_path("campaigns", campaign))))
    assert len(listed) == feeds.FEED_LIMIT
    times = [e["updated"] for e in listed]
    assert times == sorted(times, reverse=True)  # the newest first


def test_closure_and_corrections_enter_the_campaign_and_charity_feeds_once_final(
    ledger: tuple[Service, dict[str, Any]],
) -> None:
    service, made = ledger
    key, charity = made["key"], made["charity"]
    other = service.campaign(charity, key)
    _ok(service.post(f"/v1/campaigns/{other}/close", key))
    original = next(
        a["disbursement"]["id"]
        for a in _ok(service.get(f"/v1/donations/{made['first']['id']}"))["allocations"]
    )
    correction = ids.new("correction")
    write_on_chain(
        service,
        service.operators[charity],
        "recordCorrection",
        ids.to_bytes32(correction),
        ids.to_bytes32(charity),
        3,  # RecordKind.Disbursement
        ids.to_bytes32(original),
        bytes(32),
        "Wrong invoice <a href=x>here</a> \x02 发票有误",
    )
    wait_for_mirror(service)

    def titles(kind: str, record: str) -> list[str]:
        return [e["title"] for e in entries(parse(service.get(feeds.feed_path(kind, record))))]

    closed, corrected = "Campaign closed: School meals", f"Correction of {original}"
    assert closed not in titles("campaigns", other) and corrected not in titles("charities", charity)
    mine(service, CONFIRMATIONS)
    assert titles("campaigns", other) == [closed]  # nothing else of the main campaign
    assert corrected in titles("campaigns", made["campaign"])  # its disbursement's correction
    charity_feed = entries(
        parse(service.get(feeds.feed_path("charities", charity), params={"lang": "zh-CN"}))
    )
    [entry] = [e for e in charity_feed if original in e["title"]]
    assert entry["title"] == f"更正 {original}"
    assert entry["link"] == f"{service.base}/disbursements/{original}"
    assert entry["summary"] == "原因：Wrong invoice <a href=x>here</a>  发票有误"  # noqa: RUF001
    assert "项目已结束：School meals" in [e["title"] for e in charity_feed]  # noqa: RUF001
