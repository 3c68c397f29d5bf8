# Chinese text in a docstring below, with full-width punctuation, which RUF002 takes for look-alikes.
# ruff: noqa: RUF002
"""The pages' two languages, Simplified Chinese and English: a Babel message catalog per
language, and how a reader's language is chosen.

The catalogs are `locale/<locale>/LC_MESSAGES/messages.po`, read and compiled in memory
when this module is imported (no .mo file to keep in step). A msgid is a stable key
(`donation.title`), never the English text: English is a catalog like Chinese, and a page
or an error names its text by key, computed keys included (`error.not_found.<kind>`).
Fields are `%(name)s`; templates call `_("key", name=value)` (or `ngettext` for a plural),
Python code `reader.t("key", name=value)`. The filled-in message is a plain string that the
templates escape and clean like any other value (Jinja's "newstyle" gettext is not used: it
would take the catalog text for markup and skip the environment's `finalize`).
tests/pages/test_catalogs.py holds both catalogs to the keys the templates and code use.

The choice, first that applies: `?lang=` (the language switch links; the answer also sets
the `lang` cookie so the choice sticks), the `lang` cookie, the browser's Accept-Language
(by q-value; Babel's `negotiate_locale` matches a tag or its primary subtag, so any `zh-*`
tag counts as Chinese, any `en-*` as English), else English.

Times are shown in the deployment's time zone (`LEDGER_TIMEZONE`) when it has one; else
Chinese pages in Asia/Shanghai (China has one zone, UTC+8: what a reader there expects)
and English pages in UTC. Each time names its zone, and so does the footer.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.core import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_percent
from babel.support import Translations
from fastapi import Request

from ledger_api.pages import money as formats

COOKIE = "lang"
DEFAULT = "en"
LOCALES = {"en": "en", "zh-CN": "zh_CN"}  # language tag -> Babel locale (and catalog)
PRIMARY = {"en": "en", "zh": "zh-CN"}  # primary language subtag -> language tag
ZONES = {"en": "UTC", "zh-CN": "Asia/Shanghai"}  # language tag -> its time zone, unless set
CATALOGS = Path(__file__).resolve().parent / "locale"


def N_(key: str) -> str:
    """Marks a key the code looks up under a computed name, so extraction sees it."""
    return key


# Keys built at run time: the error pages' texts per record kind (`routes.error_page`) and
# the donation channels named in words (`Reader.channel`), what is wrong with a donor
# reference typed into a form (`routes.typed`, from `core.reference.BadReference`).
COMPUTED = (
    N_("error.not_found.donation"),
    N_("error.not_found.campaign"),
    N_("error.not_found.charity"),
    N_("error.not_found.disbursement"),
    N_("error.not_found.page"),
    N_("error.invalid.donation"),
    N_("error.invalid.campaign"),
    N_("error.invalid.charity"),
    N_("error.invalid.disbursement"),
    N_("error.invalid.page"),
    N_("error.invalid.form"),
    N_("channel.bank-transfer"),
    N_("channel.wechat-pay"),
    N_("channel.alipay"),
    N_("channel.cash-box"),
    N_("channel.unspecified"),
    N_("reference.empty"),
    N_("reference.too_long"),
    N_("reference.invisible"),
    # What each "Verify it yourself" command proves (pages/verify.py `Command.kind`).
    N_("verify.cmd.log"),
    N_("verify.cmd.decode"),
    N_("verify.cmd.view"),
    N_("verify.cmd.allocations"),
    N_("verify.cmd.refunds"),
    N_("verify.cmd.funding"),
    N_("verify.cmd.documents"),
    N_("verify.cmd.donations"),
    N_("verify.cmd.disbursements"),
    N_("verify.cmd.sha256"),
)


def catalog_path(locale: str) -> Path:
    return CATALOGS / locale / "LC_MESSAGES" / "messages.po"


def load(locale: str) -> Translations:
    """One language's catalog, compiled from its .po file in memory (no .mo to keep in step)."""
    with catalog_path(locale).open("rb") as po:
        catalog = read_po(po, locale=locale)
    mo = io.BytesIO()
    write_mo(mo, catalog)
    mo.seek(0)
    return Translations(mo)


TRANSLATIONS = {lang: load(locale) for lang, locale in LOCALES.items()}


def negotiated(tags: list[str]) -> str | None:
    """The page language of the first of `tags` (best first) that Babel matches, by the
    whole tag or its primary subtag, to one of ours: any zh tag is zh-CN, any en tag en
    (case-insensitive, `_` taken for `-`); None if none does."""
    tags = [tag.strip().replace("_", "-") for tag in tags]
    found = negotiate_locale([tag for tag in tags if tag], list(PRIMARY), sep="-", aliases={})
    return PRIMARY[found.split("-")[0].lower()] if found else None


def language_of(tag: str | None) -> str | None:
    """The page language one tag asks for (`?lang=`, the cookie), or None."""
    return negotiated([tag]) if tag else None


def from_accept_language(header: str | None) -> str | None:
    """The reader's preferred page language from an Accept-Language header, or None: the
    tags by q-value, the first of equals first (q=0, or a q that is not a number, refuses)."""
    ranked: list[tuple[float, str]] = []
    for part in (header or "").split(",")[:50]:
        tag, _, parameters = part.partition(";")
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((quality, tag))
    ranked.sort(key=lambda ranking: -ranking[0])  # stable: equals keep the header's order
    return negotiated([tag for _, tag in ranked])


@dataclass(frozen=True)
class Reader:
    """One reader's language, and how to write things for them."""

    lang: str  # "en" or "zh-CN": the <html lang>
    chosen: str | None = None  # set when they chose it with ?lang= (the cookie is then set)
    timezone: ZoneInfo | None = None  # the deployment's (LEDGER_TIMEZONE); None: ZONES[lang]

    @property
    def zone(self) -> ZoneInfo:
        """The time zone this reader's times are shown in."""
        return self.timezone or ZoneInfo(ZONES[self.lang])

    @property
    def translations(self) -> Translations:
        return TRANSLATIONS[self.lang]

    @property
    def locale(self) -> str:
        return LOCALES[self.lang]

    def t(self, key: str, /, **fields: object) -> str:
        """The message `key` in the reader's language, its `%(name)s` fields filled in: a
        plain string, which the templates escape and clean like any other value."""
        return self.translations.gettext(key) % fields

    def nt(self, key: str, plural: str, count: int, /, **fields: object) -> str:
        """The plural message `key` in the form its language uses for `count` (English: one
        form for 1, one for any other number; Chinese: one form)."""
        return self.translations.ngettext(key, plural, count) % fields

    def money(self, amount: int, currency: str) -> str:
        return formats.money(amount, currency, self.locale)

    def count(self, value: int) -> str:
        return formats.count(value, self.locale)

    def share(self, numerator: int, denominator: int) -> str:
        return formats.share(numerator, denominator, self.locale)

    def percent(self, value: float | None) -> str:
        """A share the read services give as a number between 0 and 1 (or None)."""
        if value is None:
            return "—"
        return format_percent(Decimal(str(value)), format="#,##0.#%", locale=self.locale)

    def moment(self, iso: str | None) -> str:
        """An ISO 8601 time from the read services on this reader's clock, naming the zone:
        "Mar 4, 2026, 5:06\u202fAM UTC", "2026年3月4日 13:06 中国标准时间（GMT+08:00）"."""
        if not iso:
            return "—"
        when = formats.instant(iso)
        name, offset = formats.zone_at(when, self.zone, self.locale)
        zone = name if offset is None else self.t("time.zone", name=name, offset=offset)
        return f"{formats.local_time(when, self.zone, self.locale)} {zone}"

    def zone_title(self) -> str:
        """The zone the page's times are in, for the footer: "China (Shanghai) Time",
        "Coordinated Universal Time (UTC)"."""
        name, short = formats.zone_title(self.zone, self.locale)
        return name if short is None else self.t("time.zone", name=name, offset=short)

    def channel(self, name: str) -> str:
        """A donation channel's name: ours for the common ones, else as recorded."""
        key = f"channel.{name}"
        text = self.translations.gettext(key)
        return name if text == key else text


def reader_for(request: Request) -> Reader:
    mirror = getattr(request.app.state, "mirror", None)
    configured = mirror.settings.timezone if mirror is not None else None
    timezone = ZoneInfo(configured) if configured else None  # checked when the settings were read
    chosen = language_of(request.query_params.get("lang"))
    if chosen is not None:
        return Reader(chosen, chosen=chosen, timezone=timezone)
    lang = (
        language_of(request.cookies.get(COOKIE))
        or from_accept_language(request.headers.get("accept-language"))
        or DEFAULT
    )
    return Reader(lang, timezone=timezone)
