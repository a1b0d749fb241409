"""The tenant's pay page: balance, days left, what happens next, use, orders, and top-ups.

Reached with a pay link (a revocable tenant token in the URL, printed as a QR code by the
landlord), so anyone holding the link can load it: it is built for a hostile client. HTML comes
only from autoescaping Jinja2 templates; the page's stylesheet, its scripts (refresh, chart) and
the chart library are served by the ledger itself (no external assets, no inline script or
style: the chart's numbers travel in a JSON data block, which is never executed, and are in a
table on the page as well); checkout requests reuse a Stripe session that is still open and are
rate limited per link and per address.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import secrets
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

from aiohttp import web
from prepaid_meter_contract.resources import Account as AccountView
from prepaid_meter_contract.resources import TopupOrder as OrderView
from prepaid_meter_contract.vocabulary import DaysLeftConfidence, OrderStatus, SupplyReason
from prepaid_meter_contract.vouchers import MAX_CODE_CHARS
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.api.context import db_of, settings_of, state_of
from prepaid_ledger.api.provider_check import recheck_order
from prepaid_ledger.api.stripe_api import create_checkout_session, fetch_checkout_session
from prepaid_ledger.api.throttle import client_address
from prepaid_ledger.config import Settings
from prepaid_ledger.domain.money import currency_exponent, format_decimal, parse_decimal
from prepaid_ledger.domain.runout import Forecast
from prepaid_ledger.domain.voucher_codes import parse_code
from prepaid_ledger.errors import (
    ApiError,
    ConflictError,
    InputError,
    NotFoundError,
    UnreadableFormError,
)
from prepaid_ledger.services import accounts, promotions, topups, vouchers
from prepaid_ledger.services.meter_status import account_days_left
from prepaid_ledger.services.pay_links import (
    MAX_TOKEN_LENGTH,
    VOUCHER_SCAN_PATH,
    account_for_pay_token,
    pay_link_url,
)
from prepaid_ledger.services.payment_settings import effective_methods
from prepaid_ledger.services.statement import Usage, daily_usage
from prepaid_ledger.services.webhooks import STRIPE_SESSION_OPEN
from prepaid_ledger.store.models import Account, Meter, Promotion, TopupOrder, utcnow
from prepaid_ledger.web import vendor_assets
from prepaid_ledger.web.i18n import (
    DEFAULT,
    LOCALES,
    N_,
    NP_,
    Amount,
    Moment,
    Speaker,
    Words,
    negotiate,
    remember,
    speaker,
)
from prepaid_ledger.web.pay_guard import (
    OpenCheckout,
    PayGuard,
    Reservation,
    guard_of,
    reserve,
)
from prepaid_ledger.web.templates import render as render_template

_LOGGER = logging.getLogger(__name__)
routes = web.RouteTableDef()
OPEN_STATUSES = frozenset(topups.OPEN_STATUSES)
#: The use chart's days: the account's last local days, today's so far included.
USAGE_DAYS = 30
#: Consumption as the page writes it: to the thousandth (watt-hours, litres), no trailing zeros.
SHOWN_QUANTITY = Decimal("0.001")
ZERO = Decimal(0)
ORDERS_SHOWN = 10
#: What a tenant is told about an order that is not settled yet, in plain words.
ORDER_NOTES: dict[str, str] = {
    OrderStatus.NEEDS_ATTENTION: N_(
        "We received this payment and are checking it; your landlord has been told."
    ),
    OrderStatus.PROCESSING: N_(
        "Waiting for the payment provider: it is confirming this payment, which can take a few"
        " days for a bank debit such as SEPA. Nothing more to do: it is credited as soon as"
        " the provider confirms it, and this page says so if it fails."
    ),
}
#: Days left in words, by how far the forecast can be trusted (``domain.runout``).
DAYS_LEFT_WORDS: dict[str, str] = {
    DaysLeftConfidence.LOW: N_("about %(days)s days (rough estimate: only a few hours of data)"),
    DaysLeftConfidence.MEDIUM: N_(
        "about %(days)s days (estimate: less than three full days of data so far)"
    ),
    DaysLeftConfidence.HIGH: N_("about %(days)s days (based on the last days' use)"),
}
NO_DAYS_LEFT = N_("not known yet: estimated after about an hour of use")
#: An order's status as the tenant reads it (every OrderStatus; a test checks).
STATUS_WORDS: dict[str, str] = {
    OrderStatus.PENDING: N_("pending"),
    OrderStatus.PROCESSING: N_("processing"),
    OrderStatus.SUCCEEDED: N_("succeeded"),
    OrderStatus.FAILED: N_("failed"),
    OrderStatus.EXPIRED: N_("expired"),
    OrderStatus.REFUNDED: N_("refunded"),
    OrderStatus.PARTIALLY_REFUNDED: N_("partially refunded"),
    OrderStatus.NEEDS_ATTENTION: N_("needs attention"),
}
#: Why supply is on or off, as the tenant reads it (every SupplyReason; a test checks).
SUPPLY_WORDS: dict[str, str] = {
    SupplyReason.CREDIT: N_("credit"),
    SupplyReason.EMERGENCY_CREDIT: N_("emergency credit"),
    SupplyReason.PROTECTED: N_("protected"),
    SupplyReason.GRACE: N_("grace period"),
    SupplyReason.FRIENDLY_HOURS: N_("friendly hours"),
    SupplyReason.HOLIDAY: N_("holiday"),
    SupplyReason.EXHAUSTED: N_("credit used up"),
    SupplyReason.AWAITING_RECONNECT_MARGIN: N_("waiting for enough credit to reconnect"),
    SupplyReason.CLOSED: N_("account closed"),
}
#: What happens next to the supply, by why it is on or off (every SupplyReason; a test checks).
NEXT_WORDS: dict[str, str] = {
    SupplyReason.CREDIT: N_("Supply stays on while you have credit: top up before it runs out."),
    SupplyReason.EMERGENCY_CREDIT: N_(
        "Your credit is used up and emergency credit keeps the supply on: %(remaining)s of it "
        "left. Top up to keep the supply on."
    ),
    SupplyReason.PROTECTED: N_("The supply to this account is protected: it is never cut."),
    SupplyReason.GRACE: N_(
        "Your credit is used up. Supply will be cut on %(when)s unless you top up (grace period)."
    ),
    SupplyReason.FRIENDLY_HOURS: N_(
        "Your credit is used up, but supply is never cut during friendly hours. Supply will be "
        "cut on %(when)s unless you top up."
    ),
    SupplyReason.HOLIDAY: N_(
        "Your credit is used up, but supply is never cut on a holiday. Supply will be cut on "
        "%(when)s unless you top up."
    ),
    SupplyReason.EXHAUSTED: N_(
        "Supply is off because the credit is used up. Top up to switch it back on."
    ),
    SupplyReason.AWAITING_RECONNECT_MARGIN: N_(
        "Supply is off until the balance reaches %(margin)s: top up at least %(missing)s more "
        "to switch it back on."
    ),
    SupplyReason.CLOSED: N_("This account is closed."),
}
#: Supply is still on although the credit is used up, and no cut is in sight (a stretch of
#: friendly hours longer than the policy looks ahead).
NO_CUT_IN_SIGHT = N_("Your credit is used up. Supply is not cut yet: top up to keep it on.")
#: Reasons whose sentence names the time supply is cut (``changes_at``).
_CUT_AHEAD = frozenset({SupplyReason.GRACE, SupplyReason.FRIENDLY_HOURS, SupplyReason.HOLIDAY})
#: What a refused voucher tells the tenant (the wait is said apart, with its minutes).
REFUSAL_WORDS: dict[vouchers.Refusal, str] = {
    vouchers.Refusal.UNKNOWN: N_("no voucher has this code: please check it"),
    vouchers.Refusal.USED: N_("this voucher was already used on %(when)s"),
    vouchers.Refusal.EXPIRED: N_("this voucher expired on %(when)s"),
    vouchers.Refusal.VOIDED: N_("this voucher was withdrawn"),
    vouchers.Refusal.OTHER_ACCOUNT: N_("this voucher belongs to another account"),
    vouchers.Refusal.CURRENCY: N_("this voucher is in %(currency)s, this account in %(own)s"),
    vouchers.Refusal.ACCOUNT_CLOSED: N_("the account is closed"),
}
NO_ONLINE_PAYMENT = Words(
    N_(
        "Online payment is not set up yet: the landlord has to set the ledger's public address "
        "(public_base_url) first. Nothing was charged."
    )
)
PROVIDER_DOWN = Words(
    N_(
        "Stripe did not answer, so nothing was charged. Try again in a few minutes; "
        "a voucher (below) works without Stripe."
    )
)
UNREADABLE_FORM = Words(
    N_(
        "The amount could not be read: the form did not arrive as UTF-8 text. "
        "Type the amount again, e.g. 20. Nothing was charged."
    )
)
UNREADABLE_CODE = Words(
    N_("The code could not be read: the form did not arrive as UTF-8 text. Type it again.")
)
CODE_FORMAT = Words(N_("Type the 20 digits of your voucher code (spaces and dashes are fine)."))
CODE_TYPO = Words(
    N_(
        "This code fails its check digit: please check the digits for a typo. "
        "This try was not counted."
    )
)
#: The cookie a phone keeps its pay link in, so a scanned voucher card finds the pay page.
PAY_LINK_COOKIE = "pay_link"
#: How long a phone remembers its pay link (browsers cap cookies at 400 days).
PAY_LINK_COOKIE_AGE = 400 * 24 * 3600
#: Where the page's own assets live, below the public base URL (or the site root without one).
ASSETS_PATH = "/pay-assets"
#: Stripe's hosted Checkout pages: the checkout form's redirect goes there (CSP form-action).
STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"

# ---- Open Stripe sessions ---------------------------------------------------------------
#: Stripe keeps a Checkout Session open for 24 hours unless told otherwise.
STRIPE_SESSION_LIFETIME = timedelta(hours=24)
#: A session is reused only while the tenant still has this long to pay on it.
REUSE_MARGIN = timedelta(minutes=15)
#: A session the ledger has not looked at for this long is asked about again before reuse.
RECHECK_AFTER_S = 60.0
MAX_FORM_FIELDS = 8

_FILES = resources.files("prepaid_ledger.web")
_SCRIPT = _FILES.joinpath("pay.js").read_text(encoding="utf-8")
_CHARTS = _FILES.joinpath("charts.js").read_text(encoding="utf-8")
_STYLE = _FILES.joinpath("style.css").read_text(encoding="utf-8")


class AmountError(InputError):
    """A typed amount refused, with the words to tell the reader in their language."""

    def __init__(self, words: Words) -> None:
        super().__init__("invalid_amount", speaker(DEFAULT).say(words))
        self.words = words


def parse_amount(raw: str, currency: str, minimum: int, maximum: int) -> int:
    """Parse a tenant's typed amount (major units) into minor units; exact or refused."""
    text = raw.strip().replace(",", ".")
    if not text or len(text) > 20:
        raise AmountError(Words(N_("enter an amount, e.g. 20")))
    try:
        value = parse_decimal(text, "amount")
    except InputError as err:
        raise AmountError(Words(N_("enter an amount as a number, e.g. 20"))) from err
    exponent = currency_exponent(currency)
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise AmountError(
            Words.counted(
                NP_(
                    "use at most %(places)s decimal place", "use at most %(places)s decimal places"
                ),
                exponent,
                {"places": exponent},
            )
        )
    if not minimum <= int(minor) <= maximum:
        raise AmountError(
            Words(
                N_("choose an amount from %(minimum)s to %(maximum)s"),
                {"minimum": Amount(minimum, currency), "maximum": Amount(maximum, currency)},
            )
        )
    return int(minor)


# ---- Reading and rendering the page ---------------------------------------------------------


@dataclass
class PageData:
    """What the page shows, read in one transaction."""

    account: AccountView
    days_left: Forecast
    #: The chart's days (USAGE_DAYS, oldest first) and what was used on each day charged.
    days: list[date]
    usage: dict[date, Usage]
    #: This month so far, and the units the account's meters count in.
    month: Usage
    units: list[str]
    orders: list[OrderView] = field(default_factory=list)
    offers: list[list[Words]] = field(default_factory=list)


async def _page_data(session: AsyncSession, account: Account) -> PageData:
    now = utcnow()
    today = now.astimezone(ZoneInfo(account.timezone)).date()
    first = today - timedelta(days=USAGE_DAYS - 1)
    month_start = today.replace(day=1)
    used = await daily_usage(
        session, account.id, min(first, month_start), today + timedelta(days=1)
    )
    metered = await session.scalars(select(Meter.unit).where(Meter.account_id == account.id))
    units = {*metered, *(unit for day in used.values() for unit in day.quantities)}
    orders = [
        await topups.order_with_timeline(session, o.id)
        for o in (await topups.list_orders(session, None, account.id, ORDERS_SHOWN)).rows
    ]
    return PageData(
        account=await accounts.account_view(session, account, now),
        days_left=await account_days_left(session, account, now),
        days=[first + timedelta(days=i) for i in range(USAGE_DAYS)],
        usage={day: use for day, use in used.items() if day >= first},
        month=sum((use for day, use in used.items() if day >= month_start), Usage()),
        units=sorted(units),
        orders=orders,
        offers=[
            offer_text(row, account.timezone)
            for row in await promotions.running(session, account.currency, now)
        ],
    )


def days_left_words(forecast: Forecast) -> Words:
    """Say the days left with how far they can be trusted ("about 3.2 days (rough ...)")."""
    if forecast.days is None or forecast.confidence is None:
        return Words(NO_DAYS_LEFT)
    days = Decimal(f"{forecast.days:.1f}")
    return Words(DAYS_LEFT_WORDS[forecast.confidence], {"days": days})


def next_step_words(account: AccountView) -> Words:
    """Say what happens next to the account's supply, and when ("Supply will be cut on ...")."""
    supply, currency = account.supply, account.currency
    if supply.reason in _CUT_AHEAD and supply.changes_at is None:
        return Words(NO_CUT_IN_SIGHT)
    values: dict[str, object] = {
        "remaining": Amount(account.emergency_credit_remaining_minor, currency),
        "margin": Amount(account.reconnect_margin_minor, currency),
        "missing": Amount(max(0, account.reconnect_margin_minor - account.balance_minor), currency),
    }
    if supply.changes_at is not None:
        values["when"] = Moment(supply.changes_at, ZoneInfo(account.timezone))
    return Words(NEXT_WORDS.get(supply.reason, supply.reason), values)


def _next_tone(account: AccountView) -> str:
    """Return how the page marks what happens next: off, warn (on, credit used up) or on."""
    supply = account.supply
    if not supply.allowed:
        return "off"
    if supply.reason in _CUT_AHEAD or supply.reason == SupplyReason.EMERGENCY_CREDIT:
        return "warn"
    return "on"


def _shown(quantity: Decimal) -> Decimal:
    """Round a quantity to SHOWN_QUANTITY for the page, without trailing zeros."""
    return quantity.quantize(SHOWN_QUANTITY, rounding=ROUND_HALF_UP).normalize()


def _usage_view(data: PageData, words: Speaker) -> dict[str, object]:
    """Return the use section's values: this month's totals and the table the chart is drawn from.

    The table lists the days something was charged (a day without readings is no data, not a
    day without use), each with its exact numbers for the chart (pay.js) beside the words.
    """
    currency = data.account.currency
    return {
        "usage_days": USAGE_DAYS,
        "usage_last": data.days[-1].isoformat(),
        "exponent": currency_exponent(currency),
        "units": data.units,
        "month_use": " · ".join(
            f"{words.number(_shown(data.month.quantities.get(unit, ZERO)))} {unit}"
            for unit in data.units
        )
        or "-",
        "month_cost": words.money(data.month.cost_minor, currency),
        "usage": [
            {
                "date": day.isoformat(),
                "day": words.day(day),
                "cost_minor": use.cost_minor,
                "cost": words.money(use.cost_minor, currency),
                "use": [
                    {"exact": format_decimal(used), "shown": words.number(_shown(used))}
                    for used in (use.quantities.get(unit, ZERO) for unit in data.units)
                ],
            }
            for day in data.days
            if (use := data.usage.get(day)) is not None
        ],
    }


def offer_text(row: Promotion, timezone: str) -> list[Words]:
    """Say what a running promotion gives (the reader's language, the tenant's time zone)."""
    values: dict[str, object] = {
        "name": row.name,
        "minimum": Amount(row.min_topup_minor, row.currency),
    }
    if row.bonus_minor is not None:
        values["bonus"] = Amount(row.bonus_minor, row.currency)
        offer = N_("%(name)s: top up at least %(minimum)s and get %(bonus)s extra.")
    elif row.max_bonus_minor is not None:
        values |= {"percent": row.bonus_percent, "cap": Amount(row.max_bonus_minor, row.currency)}
        offer = N_(
            "%(name)s: top up at least %(minimum)s and get %(percent)s %% extra (at most %(cap)s)."
        )
    else:
        values["percent"] = row.bonus_percent
        offer = N_("%(name)s: top up at least %(minimum)s and get %(percent)s %% extra.")
    sentences = [Words(offer, values)]
    if row.first_topup_only:
        sentences.append(Words(N_("Only on your first top-up.")))
    if row.ends_at is not None:
        until = {"when": Moment(row.ends_at, ZoneInfo(timezone))}
        sentences.append(Words(N_("Until %(when)s."), until))
    return sentences


def _order_view(order: OrderView, tz: ZoneInfo, reader: Speaker) -> dict[str, object]:
    """Return what the template shows of an order, in the tenant's time zone and language."""
    status = order.status
    return {
        "id": order.id,
        "created": reader.moment(order.created_at, tz),
        "steps": [
            {
                "status": reader.gettext(STATUS_WORDS.get(step.status, step.status)),
                "time": reader.clock(step.at, tz),
                "reason": step.reason or "",
            }
            for step in order.timeline or []
        ],
        "amount": reader.money(order.amount_minor, order.currency),
        # A promotion's bonus credited with it (what a refund took back is on the statement).
        "bonus": reader.money(order.bonus.amount_minor, order.currency) if order.bonus else "",
        "status": status,
        "status_text": reader.gettext(STATUS_WORDS.get(status, status)),
        "note": reader.gettext(ORDER_NOTES.get(status, "")),
        "refreshable": status in OPEN_STATUSES and order.provider == "stripe",
        # The receipt's number when the order was credited (it stays after a refund).
        "receipt": order.receipt.number if order.receipt is not None else None,
    }


def render(
    data: PageData,
    *,
    page_url: str,
    assets: str,
    minimum: int,
    maximum: int,
    error: Words | str | None,
    notice: Words | str | None,
    amount: str = "",
    voucher: str = "",
    voucher_error: Words | str | None = None,
    reader: Speaker | None = None,
) -> str:
    """Render the whole page as HTML in the reader's language (every value escaped)."""
    words = reader or speaker(DEFAULT)
    money = words.money
    account = data.account
    currency = account.currency
    tz = ZoneInfo(account.timezone)
    supply = account.supply
    days = data.days_left.days
    return render_template(
        "pay.html",
        reader=words,
        languages=words.choices({code: f"{page_url}?lang={code}" for code in LOCALES}),
        account_name=account.name,
        account_number=account.number,
        notice=words.say(notice or ""),
        error=words.say(error or ""),
        balance=money(account.balance_minor, currency),
        days_left=words.number(Decimal(f"{days:.1f}")) if days is not None else "-",
        days_left_note=words.say(days_left_words(data.days_left)),
        supply_allowed=supply.allowed,
        supply_reason=words.gettext(SUPPLY_WORDS.get(supply.reason, supply.reason)),
        next_step=words.say(next_step_words(account)),
        next_tone=_next_tone(account),
        page_url=page_url,
        assets=assets,
        vendor_version=vendor_assets.version(),
        currency=currency,
        amount=amount,
        voucher=voucher,
        voucher_error=words.say(voucher_error or ""),
        minimum=money(minimum, currency),
        maximum=money(maximum, currency),
        step=words.number(Decimal(1).scaleb(-currency_exponent(currency))),
        **_usage_view(data, words),
        orders=[_order_view(order, tz, words) for order in data.orders],
        offers=[words.sentences(offer) for offer in data.offers],
        open_order=any(o.status in OPEN_STATUSES for o in data.orders),
    )


def _origin(url: str | None) -> str | None:
    """Return scheme://host[:port] of URL for a CSP source list, or None if not plainly one."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789.-:[]")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    if not set(parts.netloc.lower()) <= allowed:
        return None  # user info, spaces or separators have no place in a header's source list
    return f"{parts.scheme}://{parts.netloc.lower()}"


def content_security_policy(settings: Settings) -> str:
    """Return the page's policy: only its own script and style, never framed, forms go home.

    The page may be reached on another address than the public base URL (a LAN name), while
    its assets and forms use the public one: both are allowed. The checkout form is answered
    with a redirect to Stripe's hosted page, which form-action also governs.
    """
    public = _origin(settings.public_base_url)
    own = " ".join(["'self'", *([public] if public else [])])
    checkout = [STRIPE_CHECKOUT_ORIGIN]
    if (api := _origin(settings.stripe_api_base)) is not None:
        checkout.append(api)  # a configured Stripe-compatible endpoint serves its own pages
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {own}",
            f"style-src {own}",
            f"form-action {own} {' '.join(checkout)}",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


def _html(request: web.Request, text: str, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    response.headers["Content-Security-Policy"] = content_security_policy(settings_of(request))
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"  # browsers that predate frame-ancestors
    return response


def _not_found(request: web.Request) -> web.Response:
    page = render_template("pay_not_found.html", reader=speaker(negotiate(request)))
    return _html(request, page, 404)


def _site_root(request: web.Request) -> str:
    """Return the public base URL without a trailing slash, or "" (the site root) if unset."""
    return (settings_of(request).public_base_url or "").strip().rstrip("/")


async def _show(
    request: web.Request,
    *,
    status: int = 200,
    error: Words | str | None = None,
    notice: Words | str | None = None,
    amount: str = "",
    voucher: str = "",
    voucher_error: Words | str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    token = request.match_info["token"]
    settings = settings_of(request)
    locale = negotiate(request)

    async def work(session: AsyncSession) -> PageData | None:
        account = await account_for_pay_token(session, token)
        return None if account is None else await _page_data(session, account)

    data = await db_of(request).read(work)
    if data is None:
        return _not_found(request)
    page = render(
        data,
        page_url=_page_url(request, token),
        assets=_site_root(request) + ASSETS_PATH,
        minimum=settings.tenant_min_topup_minor,
        maximum=settings.max_topup_minor,
        error=error,
        notice=notice,
        amount=amount,
        voucher=voucher,
        voucher_error=voucher_error,
        reader=speaker(locale),
    )
    response = _html(request, page, status)
    response.headers.update(headers or {})
    remember(request, response, locale)
    return response


@routes.get(VOUCHER_SCAN_PATH)
async def voucher_scanned(request: web.Request) -> web.Response:
    """Send a phone that scanned a voucher card to its own pay page, with the code filled in.

    The card cannot know its tenant: the phone's remembered pay link (a cookie set by the pay
    page) decides. Nothing is redeemed here (a GET changes nothing) and the code is not looked
    up (no oracle for guessers); without a remembered link the page says what to do.
    """
    code = request.query.get("code", "")[:MAX_CODE_CHARS]
    token = request.cookies.get(PAY_LINK_COOKIE, "")[:MAX_TOKEN_LENGTH]
    found = None
    if token:
        found = await db_of(request).read(lambda s: account_for_pay_token(s, token))
    if found is not None:
        target = _page_url(request, token)
        raise web.HTTPSeeOther(target + ("?" + urlencode({"voucher": code}) if code else ""))
    digits = "".join(ch for ch in code if ch.isdigit())
    groups = [digits[i : i + 4] for i in range(0, len(digits), 4)]
    locale = negotiate(request)
    reader = speaker(locale)
    choices = {lang: "?" + urlencode({"code": code, "lang": lang}) for lang in LOCALES}
    page = render_template(
        "voucher_scan.html",
        reader=reader,
        languages=reader.choices(choices),
        assets=_site_root(request) + ASSETS_PATH,
        groups=groups,
    )
    response = _html(request, page)
    if token:  # a link the landlord has since replaced: forget it
        response.del_cookie(PAY_LINK_COOKIE, path=_cookie_path(request))
    remember(request, response, locale)
    return response


def _cookie_path(request: web.Request) -> str:
    """Return the path the pay pages live under, as the browser sees it (public base URL's)."""
    return urlsplit(_site_root(request)).path + "/pay"


def _remember_link(request: web.Request, response: web.Response, token: str) -> None:
    """Let this phone find its pay page again when it scans a voucher card."""
    secure = request.secure or _site_root(request).startswith("https://")
    response.set_cookie(
        PAY_LINK_COOKIE,
        token,
        max_age=PAY_LINK_COOKIE_AGE,
        path=_cookie_path(request),
        httponly=True,
        secure=secure,
        samesite="Lax",  # sent when the camera app opens the scanned address
    )


@routes.get("/pay/{token}")
async def pay_page(request: web.Request) -> web.Response:
    """Show the tenant's account; after Stripe, say whether the payment arrived yet."""
    notice = None
    if paid := request.query.get("paid"):
        notice = Words(N_("Thank you. Your payment shows below as soon as Stripe confirms it."))
        guard_of(request).mark_paid(paid[:255])
    elif request.query.get("cancelled"):
        notice = Words(N_("Payment cancelled: nothing was charged."))
    elif request.query.get("redeemed"):
        notice = Words(N_("Voucher accepted: its value is credited below."))
    # A voucher card's QR code opens the page with its code filled in (?voucher=...).
    voucher = request.query.get("voucher", "")[:MAX_CODE_CHARS]
    response = await _show(request, notice=notice, voucher=voucher)
    token = request.match_info["token"]
    if response.status == 200 and len(token) <= MAX_TOKEN_LENGTH:
        _remember_link(request, response, token)
    return response


@routes.get(ASSETS_PATH + "/pay.js")
async def pay_script(_request: web.Request) -> web.Response:
    """Serve the page's refresh script from the ledger itself (CSP script-src 'self')."""
    return _asset(_SCRIPT, "text/javascript")


@routes.get(ASSETS_PATH + "/charts.js")
async def charts_script(_request: web.Request) -> web.Response:
    """Serve the chart script the pay page shares with the landlord's (CSP script-src 'self')."""
    return _asset(_CHARTS, "text/javascript")


# The chart library (web/vendor/, pinned), as on the landlord's page (ui/vendor/).
routes.get(ASSETS_PATH + "/vendor/{name}")(vendor_assets.serve)


@routes.get(ASSETS_PATH + "/pay.css")
async def pay_style(_request: web.Request) -> web.Response:
    """Serve the page's stylesheet from the ledger itself (CSP style-src 'self')."""
    return _asset(_STYLE, "text/css")


def _asset(body: str, content_type: str) -> web.Response:
    return web.Response(
        text=body,
        content_type=content_type,
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


def _page_url(request: web.Request, token: str) -> str:
    """Where the page's forms and redirects point: under the public base URL when set.

    Without one the path alone (the browser keeps the address it used); never an address made
    from the request's Host header or a guessed port.
    """
    if settings_of(request).public_base_url:
        return pay_link_url(settings_of(request).public_base_url, token)
    return f"/pay/{token}"


# ---- Checkout --------------------------------------------------------------------------------


async def _form_amount(request: web.Request) -> str:
    """Return the form's amount field; UnreadableFormError if it is not UTF-8 form data."""
    return await _form_field(request, "amount")


async def _form_field(request: web.Request, name: str) -> str:
    """Return one field of the page's form; UnreadableFormError if it is not UTF-8 form data.

    aiohttp decodes url-encoded bodies leniently (a stray byte is an error deep inside, a
    percent-encoded one turns into U+FFFD), so the body is decoded here, strictly. Other
    content types are read as url-encoded too (a browser's text/plain form, or none at all).
    """
    if request.content_type == "multipart/form-data":
        raise UnreadableFormError  # the page's form is url-encoded; nothing else is read
    body = await request.read()
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError as err:  # UnicodeDecodeError included; too many fields
        raise UnreadableFormError from err
    return next((value for key, value in pairs if key == name), "")


@routes.post("/pay/{token}/checkout")
async def pay_checkout(request: web.Request) -> web.StreamResponse:
    """Send the tenant to a Stripe Checkout Session for the typed amount.

    An open session of this account for the same amount is reused; otherwise a new one is
    opened (within the per-link and per-address limits) and recorded as a pending order.
    """
    token = request.match_info["token"]
    settings = settings_of(request)
    db = db_of(request)
    try:
        amount_text = await _form_amount(request)
    except UnreadableFormError:
        return await _show(request, status=400, error=UNREADABLE_FORM)  # 404 for a bad link
    found = await db.read(lambda s: account_for_pay_token(s, token))
    if found is None:
        return _not_found(request)
    if not settings.public_base_url:
        return await _show(request, status=409, error=NO_ONLINE_PAYMENT, amount=amount_text[:20])
    guard = guard_of(request)
    try:
        amount = parse_amount(
            amount_text, found.currency, settings.tenant_min_topup_minor, settings.max_topup_minor
        )
        async with guard.lock(found.id):
            url = await _reusable_checkout(request, guard, found, amount)
            if url is None:
                address = client_address(request, settings.trusted_proxies)
                wait = reserve(guard, token, address)
                if isinstance(wait, float):
                    return await _too_many(request, wait, amount_text[:20])
                url = await _new_checkout(request, guard, token, found, amount, reservation=wait)
    except (InputError, ConflictError, ApiError) as err:
        status = (
            err.status
            if isinstance(err, ApiError)
            else 409
            if isinstance(err, ConflictError)
            else 400
        )
        message: Words | str = err.words if isinstance(err, AmountError) else err.message
        if isinstance(err, ApiError) and err.status >= 500:
            # The provider's own words (its support address, a library's error class) are for
            # the log; the tenant learns what happened and what still works.
            _LOGGER.warning("checkout for account %s failed: %s", found.id, err.message)
            message = PROVIDER_DOWN
        return await _show(request, status=status, error=message, amount=amount_text[:20])
    raise web.HTTPSeeOther(url)


@routes.post("/pay/{token}/voucher")
async def pay_voucher(request: web.Request) -> web.StreamResponse:
    """Redeem a voucher for the link's account: no internet needed, credited once.

    A typo (the check digit) is refused before it counts; an unknown code counts against the
    account, the link and the client's address, each of which then waits longer and longer.
    """
    token = request.match_info["token"]
    try:
        typed = await _form_field(request, "code")
    except UnreadableFormError:
        return await _show(request, status=400, voucher_error=UNREADABLE_CODE)
    shown = typed[:MAX_CODE_CHARS]
    found = await db_of(request).read(lambda s: account_for_pay_token(s, token))
    if found is None:
        return _not_found(request)
    try:
        code = parse_code(typed, "the code")
    except InputError as err:
        said = CODE_TYPO if err.code == "voucher_typo" else CODE_FORMAT
        return await _show(request, status=400, voucher=shown, voucher_error=said)
    address = client_address(request, settings_of(request).trusted_proxies)
    link = hashlib.sha256(token.encode()).hexdigest()[:32]
    ledger_id = state_of(request.app).ledger_id
    outcome = await db_of(request).write(
        lambda s: vouchers.redeem(
            s,
            account_ref=found.id,
            code=code,
            ledger_id=ledger_id,
            sources=[f"link:{link}", f"address:{address}"[:96]],
            actor="tenant",
        )
    )
    if outcome.redeemed is not None:
        raise web.HTTPSeeOther(_page_url(request, token) + "?redeemed=1")
    seconds = outcome.retry_after(utcnow())
    if seconds is not None:
        return await _show(
            request,
            status=429,
            voucher=shown,
            voucher_error=_wait_words(
                seconds,
                NP_(
                    "Too many wrong voucher codes. Please wait %(num)s minute and try again.",
                    "Too many wrong voucher codes. Please wait %(num)s minutes and try again.",
                ),
            ),
            headers={"Retry-After": str(seconds)},
        )
    status = 400 if outcome.refusal is vouchers.Refusal.UNKNOWN else 409
    return await _show(
        request, status=status, voucher=shown, voucher_error=_refusal_words(outcome, found)
    )


def _refusal_words(outcome: vouchers.Redemption, account: Account) -> Words | str:
    """Say why a voucher credited nothing, with its time in the tenant's zone."""
    text = REFUSAL_WORDS.get(outcome.refusal) if outcome.refusal else None
    if text is None:
        return outcome.message
    values: dict[str, object] = {"currency": outcome.currency or "", "own": account.currency}
    if outcome.at is not None:
        values["when"] = Moment(outcome.at, ZoneInfo(account.timezone))
    return Words(text, values)


def _wait_words(seconds: int, forms: tuple[str, str]) -> Words:
    """Return a message naming a wait of SECONDS in whole minutes (at least one)."""
    minutes = max(1, math.ceil(seconds / 60))
    return Words.counted(forms, minutes, {"num": minutes})


async def _too_many(request: web.Request, wait_s: float, amount: str) -> web.Response:
    seconds = max(1, math.ceil(wait_s))
    message = _wait_words(
        seconds,
        NP_(
            "Too many payment attempts in a short time. Please wait %(num)s minute and try "
            "again. Nothing was charged.",
            "Too many payment attempts in a short time. Please wait %(num)s minutes and try "
            "again. Nothing was charged.",
        ),
    )
    return await _show(
        request, status=429, error=message, amount=amount, headers={"Retry-After": str(seconds)}
    )


async def _new_checkout(
    request: web.Request,
    guard: PayGuard,
    token: str,
    found: Account,
    amount: int,
    *,
    reservation: Reservation,
) -> str:
    """Open a Checkout Session at Stripe, record it as a pending order; return its page."""
    settings = settings_of(request)
    # Stripe sends the tenant back to an absolute address: the public base URL or nothing.
    page = pay_link_url(settings.public_base_url, token)
    methods = await db_of(request).read(lambda s: effective_methods(s, settings))
    try:
        checkout = await create_checkout_session(
            settings,
            account_number=found.number or str(found.id),
            account_name=found.name,
            amount_minor=amount,
            currency=found.currency,
            success_url=f"{page}?paid={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{page}?cancelled=1",
            idempotency_key=f"pay-{found.id}-{secrets.token_hex(12)}",
            payment_methods=methods,
        )
    except (ConflictError, ApiError, InputError):
        guard.links.remove(reservation.link, reservation.at)  # nothing was opened
        guard.addresses.remove(reservation.address, reservation.at)
        raise
    checkout_id, url = _checkout_target(checkout)
    order = await db_of(request).write(lambda s: _open_order(s, found.id, checkout_id, amount))
    opened = datetime.fromisoformat(order["created_at"])
    guard.remember(
        checkout_id,
        OpenCheckout(url, _expires_at(checkout, opened), time.monotonic()),
    )
    return url


def _expires_at(checkout: dict[str, Any], opened: datetime) -> datetime:
    """When Stripe closes the session: its expires_at, or 24 hours after it was opened."""
    expires = checkout.get("expires_at")
    if isinstance(expires, int) and not isinstance(expires, bool):
        with contextlib.suppress(ValueError, OverflowError, OSError):
            return datetime.fromtimestamp(expires, tz=opened.tzinfo)
    return opened + STRIPE_SESSION_LIFETIME


async def _reusable_checkout(
    request: web.Request, guard: PayGuard, account: Account, amount: int
) -> str | None:
    """Return the page of an open session of this account for AMOUNT opened by the pay page.

    Found among the account's pending Stripe orders; a session not looked at for a while (or
    not known to this process, after a restart) is asked about at Stripe first, so a paid or
    expired one is never offered again.
    """
    now = utcnow()
    candidates = await db_of(request).read(
        lambda s: _pending_checkouts(s, account, amount, now - STRIPE_SESSION_LIFETIME)
    )
    for session_id, opened in candidates:
        if session_id in guard.paid:
            continue
        known = guard.sessions.get(session_id)
        if known is None or time.monotonic() - known.checked_at > RECHECK_AFTER_S:
            known = await _ask_stripe(request, guard, session_id, opened)
        if known is not None and known.expires_at - now > REUSE_MARGIN:
            return known.url
    return None


async def _ask_stripe(
    request: web.Request, guard: PayGuard, session_id: str, opened: datetime
) -> OpenCheckout | None:
    """Ask Stripe whether SESSION_ID still takes payments (remembered if so, else forgotten)."""
    try:
        found = await fetch_checkout_session(settings_of(request), session_id)
    except (ConflictError, ApiError):
        return None  # not reusable now; a new session is opened instead
    url = found.get("url")
    if found.get("status") != STRIPE_SESSION_OPEN or found.get("payment_status") == "paid":
        guard.sessions.pop(session_id, None)
        return None
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return None
    checkout = OpenCheckout(url, _expires_at(found, opened), time.monotonic())
    guard.remember(session_id, checkout)
    return checkout


async def _pending_checkouts(
    session: AsyncSession, account: Account, amount: int, since: datetime
) -> list[tuple[str, datetime]]:
    """Return the newest pending Checkout orders the pay page opened for account and amount."""
    rows = await session.execute(
        select(TopupOrder.provider_payment_id, TopupOrder.created_at)
        .where(
            TopupOrder.account_id == account.id,
            TopupOrder.provider == "stripe",
            TopupOrder.source == "stripe",
            TopupOrder.status == OrderStatus.PENDING,
            TopupOrder.amount_minor == amount,
            TopupOrder.currency == account.currency,
            TopupOrder.reference == TopupOrder.provider_payment_id,
            TopupOrder.created_at >= since,
        )
        .order_by(TopupOrder.id.desc())
        .limit(3)
    )
    return [(str(payment_id), created) for payment_id, created in rows if payment_id]


def _checkout_target(checkout: dict[str, Any]) -> tuple[str, str]:
    checkout_id, url = checkout.get("id"), checkout.get("url")
    if not isinstance(checkout_id, str) or not isinstance(url, str):
        raise ApiError(502, "provider_unavailable", "Stripe returned no checkout page")
    return checkout_id, url


async def _open_order(
    session: AsyncSession, account_id: int, checkout_id: str, amount: int
) -> dict[str, Any]:
    account = await accounts.get_account(session, account_id, lock=True)
    return await topups.open_checkout_order(session, account, checkout_id, amount, "tenant")


@routes.post("/pay/{token}/orders/{order}/refresh")
async def pay_refresh(request: web.Request) -> web.StreamResponse:
    """Re-check one of the tenant's open orders with Stripe, then show the page again."""
    token = request.match_info["token"]
    raw_order = request.match_info["order"]
    db = db_of(request)
    found = await db.read(lambda s: account_for_pay_token(s, token))
    if found is None:
        return _not_found(request)
    order_id = int(raw_order) if raw_order.isascii() and raw_order.isdigit() else 0
    order = None
    if 0 < order_id < 2**31:
        with contextlib.suppress(NotFoundError):
            order = await db.read(lambda s: topups.order_with_timeline(s, order_id))
    if order is None or order.account_id != found.id:
        missing = Words(N_("that order is not on this account"))
        return await _show(request, status=404, error=missing)
    try:
        await recheck_order(
            db, settings_of(request), order_id, "tenant", "tenant pressed refresh status"
        )
    except (ConflictError, ApiError) as err:
        said = Words(N_("Could not refresh: %(why)s"), {"why": err.message})
        return await _show(request, status=409, notice=said)
    raise web.HTTPSeeOther(_page_url(request, token))
