"""The tenant's pages in English, German and Simplified Chinese (issue 23).

Expected: every text the pages can show has a translation in each catalog (checked against a
fresh extraction of the sources, so a new English text without one fails); the language comes
from ``?lang=`` (then remembered), else the cookie, else ``Accept-Language``; rendered pages in
German and Chinese keep no English text of the English page; money and dates follow CLDR's
conventions for the locale (1.234,50 € in German, ¥500.00 for yuan in Chinese).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from prepaid_ledger.services.vouchers import Refusal
from prepaid_ledger.web import i18n, landlord_ui, receipts, tenant_page
from prepaid_meter_contract.vocabulary import OrderStatus, PaymentMethod, SupplyReason

from tests.ledger.conftest import Ledger, make_settings
from tests.ledger.test_pay_page import pay_link, running_public_ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")
WEB = Path(i18n.__file__).parent
#: Python's %(name)s and the landlord script's {name}.
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|%%|\{[a-z_]+\}")


def extracted() -> set[str]:
    """Every text the sources mark, extracted afresh (as scripts/translations does)."""
    method_map = [
        ("**.py", "python"),
        ("templates/**.html", "jinja2"),
        *((name, "javascript") for name in landlord_ui.SCRIPTS),
    ]
    options = {"templates/**.html": {"trim_blocks": "true", "lstrip_blocks": "true"}}
    keywords = {
        "_": None,
        "gettext": None,
        "ngettext": (1, 2),
        "N_": None,
        "NP_": (1, 2),
        "t": None,  # the landlord page's script: t("Text with {name}", {name})
    }
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(WEB), method_map, options, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def catalog(locale: str) -> dict[str, tuple[str, ...]]:
    with (WEB / "locales" / locale / "LC_MESSAGES" / "messages.po").open("rb") as po:
        parsed = read_po(po, locale=locale)
    return {
        (m.id if isinstance(m.id, str) else m.id[0]): (
            (m.string,) if isinstance(m.string, str) else tuple(m.string)
        )
        for m in parsed
        if m.id and "fuzzy" not in m.flags
    }


@pytest.mark.parametrize("locale", ["de", "zh_Hans"])
def test_every_marked_text_has_a_translation(locale: str) -> None:
    texts = extracted()
    assert len(texts) > 100  # the pages really are marked
    translated = catalog(locale)
    missing = sorted(texts - translated.keys())
    assert not missing, f"run scripts/translations and translate: {missing}"
    for text in texts:
        forms = translated[text]
        assert all(form.strip() for form in forms), f"empty translation of {text!r}"
        wanted = sorted(PLACEHOLDER.findall(text))
        for form in forms:
            assert sorted(PLACEHOLDER.findall(form)) == wanted, (text, form)


def test_scripts_translations_extracts_every_landlord_script() -> None:
    # Babel's glob "landlord*.js" does not match landlord.js: babel.cfg names each script.
    config = (WEB.parents[2] / "babel.cfg").read_text(encoding="utf-8")
    for name in landlord_ui.SCRIPTS:
        assert f"[javascript: {name}]" in config, name


def test_every_text_of_the_landlord_script_is_extracted() -> None:
    # Babel's JavaScript lexer skips a t("...") inside a template literal's ${...}: such a text
    # would reach no catalog and stay English. Every call must be one extraction finds.
    script = "\n".join((WEB / name).read_text(encoding="utf-8") for name in landlord_ui.SCRIPTS)
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("//"))
    called = set(re.findall(r'\bt\("((?:[^"\\]|\\.)*)"', code))
    assert len(called) > 80
    assert called <= extracted(), sorted(called - extracted())


def test_every_word_the_pages_show_is_marked() -> None:
    assert set(tenant_page.STATUS_WORDS) == set(OrderStatus)
    assert set(tenant_page.SUPPLY_WORDS) == set(SupplyReason)
    assert set(tenant_page.REFUSAL_WORDS) == set(Refusal) - {Refusal.WAIT}
    assert set(receipts.METHOD_TEXT) == set(PaymentMethod)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_Hans"),
        ("zh-TW", "zh_Hans"),  # the one Chinese there is, rather than English
        ("de-AT,de;q=0.9", "de"),
        ("fr-FR, en;q=0.5, de;q=0.7", "de"),
        ("en;q=0.1, de;q=0.9", "de"),
        ("fr", None),
        ("de;q=0", None),
        ("de;q=abc, zh;q=0.4", "zh_Hans"),
        ("", None),
        ("x" * 10_000, None),
    ],
)
def test_accept_language(header: str, expected: str | None) -> None:
    assert i18n.from_accept_language(header) == expected


def test_money_and_dates_follow_the_locale() -> None:
    de, zh, en = (i18n.speaker(code) for code in ("de", "zh_Hans", "en"))
    assert de.money(123_450, "EUR") == "1.234,50\xa0€"
    assert zh.money(50_000, "CNY") == "¥500.00"
    assert zh.money(1_999, "JPY") == "JP¥1,999"
    assert en.money(123_450, "EUR") == "1234.50 EUR"
    at = datetime(2026, 12, 6, 13, 5, tzinfo=UTC)
    berlin = ZoneInfo("Europe/Berlin")
    assert de.moment(at, berlin) == "06.12.26, 14:05"
    assert zh.moment(at, ZoneInfo("Asia/Shanghai")) == "2026/12/6 21:05"
    assert en.moment(at, berlin) == "2026-12-06 14:05"
    assert de.number(Decimal("2.5")) == "2,5"


class _Text(HTMLParser):
    """The visible text nodes of a page (script and style left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style", "title")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style", "title")

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if text and not self._skip:
            self.nodes.append(text)


def texts(page: str) -> list[str]:
    parser = _Text()
    parser.feed(page)
    return parser.nodes


#: Data on the pages (names, codes, brands) and words spelt alike in German and English.
SAME_IN_EVERY_LANGUAGE = re.compile(
    r"^(Room 8|Spring offer|EUR|Stripe|A4|English|Deutsch|简体中文|·|-|#?\d[\d.,:/ ]*|"
    r"\+|Status|Bonus|Code|Name)$"
)


async def pages(ledger: Ledger, url: str, order_id: int, lang: str) -> Iterator[tuple[str, str]]:
    """The tenant's pages in LANG: the pay page, a receipt, a wrong code, the scan page."""
    found: list[tuple[str, str]] = []
    headers = {"Accept-Language": {"en": "en", "de": "de-DE", "zh_Hans": "zh-CN"}[lang]}
    for name, method, path, data in [
        ("pay page", "GET", url, None),
        ("receipt", "GET", f"{url}/receipts/{order_id}", None),
        ("typo", "POST", f"{url}/voucher", {"code": "1234 5678 9012 3456 7890"}),
        ("amount", "POST", f"{url}/checkout", {"amount": "1.234"}),
        ("scan page", "GET", f"{ledger.base_url}/pay/voucher?code=12345678901234567890", None),
        ("not found", "GET", f"{ledger.base_url}/pay/not-a-token", None),
    ]:
        async with ledger.http.request(
            method, path, data=data, headers=headers, allow_redirects=False
        ) as resp:
            found.append((name, await resp.text()))
    return iter(found)


async def test_rendered_pages_keep_no_english(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, None, stripe_api_key="sk_test_lang", stripe_api_base="http://127.0.0.1:9"
    )
    async with running_public_ledger(settings) as ledger:
        await ledger.ok(
            "POST",
            "/api/v1/promotions",
            json={
                "name": "Spring offer",
                "currency": "EUR",
                "min_topup_minor": 1_000,
                "bonus_percent": "10",
                "max_bonus_minor": 500,
                "first_topup_only": True,
                "ends_at": "2099-01-01T00:00:00+00:00",
            },
        )
        account = await ledger.account(name="Room 8")
        url = await pay_link(ledger, account["id"])
        order = await ledger.topup(account["id"], 2_000, "lang-1")
        rendered: dict[str, dict[str, str]] = {}
        for lang in ("en", "de", "zh_Hans"):
            rendered[lang] = dict(await pages(ledger, url, order["id"], lang))
        for name, english in rendered["en"].items():
            own = {node for node in texts(english) if re.search(r"[A-Za-z]{2}", node)}
            own = {node for node in own if not SAME_IN_EVERY_LANGUAGE.match(node)}
            assert len(own) >= 2, (name, own)
            for lang in ("de", "zh_Hans"):
                page = rendered[lang][name]
                assert f"lang={i18n.HTML_LANG[lang]}" in page, (name, lang)
                left = own & set(texts(page))
                assert not left, f"{name} in {lang} still says {sorted(left)}"
        zh = rendered["zh_Hans"]["pay page"]
        assert "Spring offer：充值满 €10.00，额外赠送 10%（最多 €5.00）。仅限首次充值。" in zh
        assert "+ €2.00 赠送" in zh  # 10 % of 20.00
        assert "20,00\xa0€" in rendered["de"]["pay page"]


async def test_the_chosen_language_is_remembered(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, None)
    async with running_public_ledger(settings) as ledger:
        account = await ledger.account(name="Room 9")
        url = await pay_link(ledger, account["id"])
        async with ledger.http.get(
            url, params={"lang": "de"}, headers={"Accept-Language": "zh"}
        ) as resp:
            page = await resp.text()
            cookie = resp.cookies["lang"]
        assert "Guthaben" in page
        assert (cookie.value, cookie["path"]) == ("de", "/")
        headers = {"Accept-Language": "zh-CN", "Cookie": "lang=de"}
        async with ledger.http.get(url, headers=headers) as resp:
            assert "Guthaben" in await resp.text()
        async with ledger.http.get(url, headers={"Accept-Language": "zh-CN"}) as resp:
            assert "余额" in await resp.text()
        async with ledger.http.get(url, params={"lang": "xx" * 1000}) as resp:
            assert resp.status == 200
            assert "Balance" in await resp.text()
