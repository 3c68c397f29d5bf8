# Chinese text is written with full-width punctuation, which RUF001 takes for look-alikes.
# ruff: noqa: RUF001
"""The pages' message catalogs (ledger_api/pages/locale/*/LC_MESSAGES/messages.po) against
the keys the templates and the code use, found by Babel's own extraction: both languages
have every key, with a non-empty text and the same `%(name)s` fields, and no key nobody
uses; nothing is fuzzy; plurals follow each language's rule. And how a reader's language
is negotiated from Accept-Language, the `lang` query and the cookie."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from ledger_api.pages import routes
from ledger_api.pages.i18n import CATALOGS, LOCALES, Reader, catalog_path, from_accept_language, language_of

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "ledger_api" / "pages"
CONSOLE = ROOT / "ledger_api" / "console"  # its templates are in PAGES; its code uses the catalogs too
# What the templates call (`_`, `gettext`, `ngettext`, from jinja2.ext.i18n) and the code
# (`reader.t`, `reader.nt`, and `N_` for keys computed at run time); (1, 2): a plural.
KEYWORDS: dict[str, Any] = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "t": None,
    "nt": (1, 2),
    "N_": None,
}
METHODS = [("templates/**.html", "jinja2"), ("**.py", "python")]
JINJA = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}
FIELD = re.compile(r"%\((\w+)\)s")


def used() -> dict[str, bool]:
    """Every key the pages use, with whether it is used as a plural."""
    keys: dict[str, bool] = {}
    found = [
        found
        for folder in (PAGES, CONSOLE)
        for found in extract_from_dir(
            folder, METHODS, options_map={"templates/**.html": JINJA}, keywords=KEYWORDS, comment_tags=()
        )
    ]
    for filename, _, message, _, _ in found:
        key, plural = (message[0], True) if isinstance(message, tuple) else (message, False)
        assert keys.get(key, plural) == plural, (filename, key)  # one key, one kind
        keys[key] = plural
    return keys


def catalog(locale: str) -> Catalog:
    with catalog_path(locale).open("rb") as po:
        return read_po(po, locale=locale)


def texts(message: Any) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple | list) else [message.string]


def test_extraction_finds_the_keys_of_templates_code_and_computed_keys() -> None:
    keys = used()
    # One of each way a key is used, so that a broken extraction cannot pass for a clean one.
    assert keys["site.name"] is False  # templates: _("...")
    assert keys["proof.final"] is True  # templates: ngettext(...)
    assert keys["verify.summary"] is False  # a macro's default argument
    assert keys["flow.trace_desc"] is False  # routes.py: reader.t("...", ...)
    assert keys["time.zone"] is False  # i18n.py: self.t("...")
    assert keys["error.not_found.donation"] is False  # i18n.COMPUTED: N_("...")
    assert keys["channel.wechat-pay"] is False
    assert len(keys) > 150


def test_every_template_call_names_its_key_literally() -> None:
    """`_(variable)` would hide a key from extraction (and from the checks below)."""
    for template in sorted((PAGES / "templates").glob("**/*.html")):
        with template.open("rb") as source:
            for line, function, message, _ in babel_extract(source, list(KEYWORDS), [], JINJA):
                first = message[0] if isinstance(message, tuple) else message
                assert isinstance(first, str) and first, (template.name, line, function)


@pytest.mark.parametrize("locale", sorted(LOCALES.values()))
def test_the_catalog_has_every_key_used_and_no_other(locale: str) -> None:
    keys = used()
    messages = {m.id[0] if m.pluralizable else m.id: m for m in catalog(locale) if m.id}
    assert sorted(set(keys) - set(messages)) == [], "missing"
    assert sorted(set(messages) - set(keys)) == [], "unused"
    for key, message in messages.items():
        assert message.pluralizable == keys[key], key
        assert not message.fuzzy, key


@pytest.mark.parametrize("locale", sorted(LOCALES.values()))
def test_every_text_is_translated_and_formats(locale: str) -> None:
    found = catalog(locale)
    assert not found.fuzzy  # the header
    assert dict(found.mime_headers)["Language"] == locale
    assert [problem for problem in found.check()] == []  # Babel's own checks
    for message in found:
        if not message.id:
            continue
        forms = texts(message)
        assert len(forms) == (found.num_plurals if message.pluralizable else 1), message.id
        for text in forms:
            assert text.strip(), message.id
            text % dict.fromkeys(FIELD.findall(text), "x")  # no lone %: every text formats


def test_both_languages_have_the_same_fields_in_every_text() -> None:
    english, chinese = catalog("en"), catalog("zh_CN")
    assert english.num_plurals == 2 and chinese.num_plurals == 1
    for message in english:
        if not message.id:
            continue
        fields = {frozenset(FIELD.findall(text)) for text in texts(message)}
        assert len(fields) == 1, message.id  # singular and plural alike
        other = chinese.get(message.id)
        assert other is not None, message.id
        assert {frozenset(FIELD.findall(text)) for text in texts(other)} == fields, message.id


def test_the_catalogs_ship_with_the_package() -> None:
    """pyproject's package data takes in every catalog (the Dockerfile copies ledger_api/)."""
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setup["package-data"]["ledger_api.pages"]
    files = [str(path.relative_to(PAGES)) for path in CATALOGS.rglob("*") if path.is_file()]
    assert sorted(files) == sorted(
        str(catalog_path(locale).relative_to(PAGES)) for locale in LOCALES.values()
    )
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name
    assert "COPY ledger_api ./ledger_api" in (ROOT / "Dockerfile").read_text()


def test_texts_come_out_in_each_language_with_fields_and_plurals() -> None:
    english, chinese = Reader("en"), Reader("zh-CN")
    fields = {"received": "¥1", "goal": "¥2", "share": "50%"}
    assert english.t("campaign.goal", **fields) == "Goal: ¥1 of ¥2 received (50%)"
    assert chinese.t("campaign.goal", **fields) == "目标：已收到 ¥1，目标 ¥2（50%）"
    status = {lang: routes.templates[lang].get_template("macros.html") for lang in LOCALES}
    for lang, confirmations, said in (
        ("en", 0, "✓ Final (0 confirmations)"),
        ("en", 1, "✓ Final (1 confirmation)"),
        ("en", 1234, "✓ Final (1,234 confirmations)"),
        ("zh-CN", 1, "✓ 已最终确认（1 个确认）"),
        ("zh-CN", 2, "✓ 已最终确认（2 个确认）"),
    ):
        module = status[lang].make_module({"r": Reader(lang)})
        shown = str(module.status({"final": True, "confirmations": confirmations}))
        assert re.sub(r"<[^>]+>", "", shown).strip() == said
    pending = status["en"].make_module({"r": english}).status({"final": False, "confirmations": 1})
    assert "Not final yet (1 confirmation so far)" in str(pending)
    # A channel with a name of ours, one without, and one that happens to look like a key.
    assert chinese.channel("wechat-pay") == "微信支付" and english.channel("wechat-pay") == "WeChat Pay"
    assert chinese.channel("postal order") == "postal order"
    assert english.channel("") == ""


def test_accept_language_is_negotiated_by_q_value_with_regional_tags_falling_back() -> None:
    # q-values rank the tags; equals keep the header's order; q=0 refuses a language.
    assert from_accept_language("en;q=0.5, zh-CN;q=0.8") == "zh-CN"
    assert from_accept_language("zh;q=0.7, en;q=0.7") == "zh-CN"
    assert from_accept_language("en;q=0.7, zh;q=0.7") == "en"
    assert from_accept_language("de, fr;q=0.9, en-GB;q=0.1") == "en"
    assert from_accept_language("en;q=0, zh-TW;q=0.2") == "zh-CN"
    assert from_accept_language("en;q=nonsense, zh;q=0.1") == "zh-CN"  # an unreadable q refuses
    assert from_accept_language("EN-us ; Q = 0.9 , zh;q=0.5") == "en"
    # Any Chinese is the Chinese pages (Traditional script included: the nearest we have),
    # any English the English ones.
    for tag in ("zh", "zh-CN", "zh-Hans", "zh-Hans-CN", "zh-TW", "zh-Hant-HK", "zh_CN", "ZH-sg"):
        assert from_accept_language(tag) == "zh-CN", tag
        assert language_of(tag) == "zh-CN", tag
    for tag in ("en", "en-GB", "en-US", "en-Latn-IN", "en_AU", "EN"):
        assert from_accept_language(tag) == "en", tag
        assert language_of(tag) == "en", tag
    # Nothing of ours: no choice (the caller falls back to the cookie, then English).
    for header in ("fr", "*", "ja-JP, de;q=0.5", "", "zhx", "eng", "-zh", ",,,;q=1"):
        assert from_accept_language(header) is None, header
        assert language_of(header) is None, header
    # At most 50 tags are read.
    assert from_accept_language("fr, " * 50 + "zh") is None
    assert from_accept_language("fr, " * 49 + "zh") == "zh-CN"
