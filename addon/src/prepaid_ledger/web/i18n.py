"""The pages' languages: English, German and Simplified Chinese, with Babel's catalogs and CLDR.

Which language a page speaks: ``?lang=`` when the reader just chose one on the page (remembered
in the ``lang`` cookie), else that cookie, else the browser's ``Accept-Language``, else English.
Texts are marked in the templates (``_("...")``) and in Python (``N_("...")``) and extracted
with Babel (``scripts/translations``); each locale's ``messages.po`` is compiled in memory when
the ledger starts, so no binary catalog is kept in the repository. Dates and numbers come from
Babel's CLDR data for the locale; English keeps the plain ``1234.50 EUR`` form the landlord
page also shows.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Final

from aiohttp import web
from babel.dates import format_date, format_datetime, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import NullTranslations, Translations

from prepaid_ledger.domain.money import from_minor

#: The languages the pages speak, in the order the switcher lists them.
LOCALES: Final = ("en", "de", "zh_Hans")
DEFAULT: Final = "en"
#: How each language names itself (the switcher shows these).
NAMES: Final = {"en": "English", "de": "Deutsch", "zh_Hans": "简体中文"}
#: The page's ``lang`` attribute (BCP 47) per locale.
HTML_LANG: Final = {"en": "en", "de": "de", "zh_Hans": "zh-Hans"}
COOKIE: Final = "lang"
COOKIE_AGE: Final = 400 * 24 * 3600
_CATALOGS = resources.files("prepaid_ledger.web").joinpath("locales")


def N_(message: str) -> str:  # noqa: N802 - the name gettext tools look for
    """Mark MESSAGE for extraction; it is translated where it is shown."""
    return message


def NP_(singular: str, plural: str) -> tuple[str, str]:  # noqa: N802 - extracted as -k NP_:1,2
    """Mark a message with a plural form for extraction; see ``Words.counted``."""
    return singular, plural


def _language_of(tag: str) -> str | None:
    """Return our locale for a language tag (``de-AT`` -> de, ``zh-CN`` / ``zh-TW`` -> zh_Hans)."""
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    if primary == "zh":
        return "zh_Hans"  # the one Chinese we have: better than English for every Chinese reader
    return primary if primary in LOCALES else None


def from_accept_language(header: str) -> str | None:
    """Return the best of our locales for an ``Accept-Language`` header, or None."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if not 0 < quality <= 1:
            continue
        if (found := _language_of(tag)) is not None:
            ranked.append((-quality, position, found))
    return min(ranked)[2] if ranked else None


def negotiate(request: web.Request) -> str:
    """Return the locale this request's page is shown in (see the module's docstring)."""
    for asked in (request.query.get("lang"), request.cookies.get(COOKIE)):
        if asked and (found := _language_of(asked[:16])) is not None:
            return found
    return from_accept_language(request.headers.get("Accept-Language", "")) or DEFAULT


def remember(request: web.Request, response: web.StreamResponse, locale: str) -> None:
    """Keep a language the reader chose on the page (``?lang=``) for their next pages."""
    if request.query.get("lang") and request.cookies.get(COOKIE) != locale:
        response.set_cookie(COOKIE, locale, max_age=COOKIE_AGE, path="/", samesite="Lax")


@cache
def catalog(locale: str) -> NullTranslations:
    """Return LOCALE's translations, compiled from its ``messages.po`` (English: none)."""
    source = _CATALOGS.joinpath(locale, "LC_MESSAGES", "messages.po")
    if locale == DEFAULT or not source.is_file():
        return NullTranslations()
    with source.open("rb") as po:
        parsed = read_po(po, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, parsed)
    compiled.seek(0)
    return Translations(compiled)


@dataclass(frozen=True, slots=True)
class Amount:
    """Money inside a message: written as the reader's locale writes money."""

    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class Moment:
    """A time inside a message: written in TZ as the reader's locale writes times."""

    at: datetime
    tz: tzinfo


@dataclass(frozen=True, slots=True)
class Words:
    """A message said later in the reader's language: its English text and its values.

    The text is a catalog entry (marked ``N_``); ``plural`` and ``count`` pick the form.
    """

    text: str
    values: Mapping[str, object] = field(default_factory=dict)
    plural: str | None = None
    count: int = 1

    @classmethod
    def counted(cls, forms: tuple[str, str], count: int, values: Mapping[str, object]) -> Words:
        """Return a message whose form depends on COUNT (FORMS marked with ``NP_``)."""
        return cls(forms[0], values, plural=forms[1], count=count)


@dataclass(frozen=True, slots=True)
class Speaker:
    """Everything a page needs to speak one language: words, money, dates."""

    locale: str

    @property
    def html_lang(self) -> str:
        """The page's ``lang`` attribute."""
        return HTML_LANG[self.locale]

    def sentences(self, parts: list[Words]) -> str:
        """Say sentences one after the other (Chinese puts no space between them)."""
        gap = "" if self.locale.startswith("zh") else " "
        return gap.join(self.say(part) for part in parts)

    def gettext(self, message: str) -> str:
        """Translate MESSAGE (itself when the catalog lacks it; "" stays "")."""
        return catalog(self.locale).gettext(message) if message else ""

    def say(self, message: Words | str) -> str:
        """Say MESSAGE in this language; a plain str (data, a provider's words) as it is."""
        if isinstance(message, str):
            return message
        if message.plural is not None:
            text = self.ngettext(message.text, message.plural, message.count)
        else:
            text = self.gettext(message.text)
        if not message.values:
            return text
        return text % {name: self.value(value) for name, value in message.values.items()}

    def value(self, value: object) -> str:
        """Write a message's value: money, times and numbers as the locale writes them."""
        if isinstance(value, Amount):
            return self.money(value.amount_minor, value.currency)
        if isinstance(value, Moment):
            return self.moment(value.at, value.tz)
        if isinstance(value, Decimal):
            return self.number(value)
        if isinstance(value, Words):
            return self.say(value)
        return str(value)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        """Translate a message that depends on COUNT."""
        return catalog(self.locale).ngettext(singular, plural, count)

    def money(self, amount_minor: int, currency: str) -> str:
        """Write minor units as the locale writes money (English: ``1234.50 EUR``, exact)."""
        value: Decimal = from_minor(amount_minor, currency)
        if self.locale == DEFAULT:
            return f"{value:f} {currency}"
        return format_currency(value, currency, locale=self.locale)

    def number(self, value: Decimal) -> str:
        """Write a decimal as the locale writes it (every digit kept, nothing rounded)."""
        if self.locale == DEFAULT:
            return f"{value:f}"
        return format_decimal(value, locale=self.locale, decimal_quantization=False)

    def moment(self, at: datetime, tz: tzinfo) -> str:
        """Write a date and time in TZ (English: unambiguous ``2026-12-06 14:05``)."""
        if self.locale == DEFAULT:
            return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        return format_datetime(at, "short", tzinfo=tz, locale=self.locale)

    def clock(self, at: datetime, tz: tzinfo) -> str:
        """Write a time of day in TZ."""
        if self.locale == DEFAULT:
            return at.astimezone(tz).strftime("%H:%M")
        return format_time(at, "short", tzinfo=tz, locale=self.locale)

    def day(self, day: date) -> str:
        """Write a calendar day (English: ``2026-12-06``)."""
        if self.locale == DEFAULT:
            return day.isoformat()
        return format_date(day, "medium", locale=self.locale)

    def choices(self, url_of: dict[str, str]) -> list[dict[str, object]]:
        """Return the language switcher: each language's own name, its address, whether current."""
        return [
            {
                "name": NAMES[code],
                "url": url_of[code],
                "lang": HTML_LANG[code],
                "current": code == self.locale,
            }
            for code in LOCALES
        ]


@cache
def speaker(locale: str) -> Speaker:
    """Return the Speaker of one of LOCALES."""
    if locale not in LOCALES:
        raise ValueError(f"unknown locale {locale!r}")
    return Speaker(locale)
