"""The tenant's pay page: balance, days left, recent use, orders, and Stripe Checkout top-ups.

Reached with a pay link (a revocable tenant token in the URL, printed as a QR code by the
landlord). Server-rendered HTML with no external assets, so it works on any phone; a few lines
of inline script refresh it while an order is still open.
"""

from __future__ import annotations

import contextlib
import html
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.api.context import db_of, settings_of
from prepaid_ledger.api.errors import ApiError
from prepaid_ledger.api.provider_check import recheck_order
from prepaid_ledger.api.stripe_api import create_checkout_session
from prepaid_ledger.domain.errors import InputError
from prepaid_ledger.domain.money import currency_exponent, from_minor, parse_decimal
from prepaid_ledger.services import accounts, topups
from prepaid_ledger.services.accounts import ConflictError
from prepaid_ledger.services.lookup import NotFoundError
from prepaid_ledger.services.meter_status import account_days_left, daily_costs
from prepaid_ledger.services.pay_links import account_for_pay_token, pay_link_url
from prepaid_ledger.store.models import Account, utcnow

routes = web.RouteTableDef()
OPEN_STATUSES = frozenset({"pending", "processing"})
RECENT_DAYS = 7
ORDERS_SHOWN = 10
#: What a tenant is told about an order that is not settled yet, in plain words.
ORDER_NOTES = {
    "needs_attention": (
        "We received this payment and are checking it; your landlord has been told."
    ),
    "processing": "Waiting for the payment provider.",
}
_STYLE = resources.files("prepaid_ledger.web").joinpath("style.css").read_text(encoding="utf-8")
NO_ONLINE_PAYMENT = (
    "Online payment is not set up yet: the landlord has to set the ledger's public address "
    "(public_base_url) first. Nothing was charged."
)
_NOT_FOUND = (
    "<!doctype html><meta charset=utf-8><title>Link not valid</title>"
    "<main><h1>This pay link is not valid</h1>"
    "<p>It may have been replaced by a newer one. "
    "Ask your landlord for the current link.</p></main>"
)


def money(amount_minor: int, currency: str) -> str:
    """Minor units as an exact major amount with its currency code (1234, EUR -> 12.34 EUR)."""
    return f"{from_minor(amount_minor, currency):f} {currency}"


def parse_amount(raw: str, currency: str, minimum: int, maximum: int) -> int:
    """Parse a tenant's typed amount (major units) into minor units; exact or refused."""
    text = raw.strip().replace(",", ".")
    if not text or len(text) > 20:
        raise InputError("invalid_amount", "enter an amount, e.g. 20")
    value = parse_decimal(text, "amount")
    exponent = currency_exponent(currency)
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise InputError("invalid_amount", f"use at most {exponent} decimal places")
    if not minimum <= int(minor) <= maximum:
        raise InputError(
            "invalid_amount",
            f"choose an amount from {money(minimum, currency)} to {money(maximum, currency)}",
        )
    return int(minor)


@dataclass
class PageData:
    """What the page shows, read in one transaction."""

    account: dict[str, Any]
    days_left: str | None
    recent: list[tuple[str, int]]
    orders: list[dict[str, Any]] = field(default_factory=list)


async def _page_data(session: AsyncSession, account: Account) -> PageData:
    now = utcnow()
    today = now.astimezone(ZoneInfo(account.timezone)).date()
    first = today - timedelta(days=RECENT_DAYS - 1)
    by_day = await daily_costs(session, account.id, first, today + timedelta(days=1))
    recent = [
        ((day := today - timedelta(days=i)).isoformat(), by_day.get(day, 0))
        for i in range(RECENT_DAYS - 1, -1, -1)
    ]
    orders = [
        await topups.order_with_timeline(session, int(o["id"]))
        for o in await topups.list_orders(session, None, account.id, ORDERS_SHOWN)
    ]
    return PageData(
        account=await accounts.account_view(session, account, now),
        days_left=await account_days_left(session, account, now),
        recent=recent,
        orders=orders,
    )


def _local(iso: str, tz: ZoneInfo) -> str:
    return datetime.fromisoformat(iso).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _orders_html(orders: list[dict[str, Any]], tz: ZoneInfo, page_url: str) -> str:
    if not orders:
        return "<p class=muted>No top-ups yet.</p>"
    items = []
    for order in orders:
        status = html.escape(order["status"])
        steps = "".join(
            f"<li>{html.escape(e['status'])} {_local(e['at'], tz)[11:]}"
            + (f" · {html.escape(e['reason'])}" if e.get("reason") else "")
            + "</li>"
            for e in order.get("timeline", [])
        )
        refresh = (
            f"<form method=post action='{page_url}/orders/{order['id']}/refresh'>"
            "<button class=secondary type=submit>Refresh status</button></form>"
            if order["status"] in OPEN_STATUSES and order["provider"] == "stripe"
            else ""
        )
        note = ORDER_NOTES.get(order["status"])
        note_html = f"<p class=order-note>{html.escape(note)}</p>" if note else ""
        items.append(
            f"<tr data-order='{order['id']}'><td>{_local(order['created_at'], tz)}"
            f"<ol class=timeline>{steps}</ol></td>"
            f"<td class=num>{money(order['amount_minor'], order['currency'])}</td>"
            f"<td><span class='status status-{status}'>{status.replace('_', ' ')}</span>"
            f"{note_html}{refresh}</td></tr>"
        )
    return (
        "<table><thead><tr><th>Order</th><th class=num>Amount</th><th>Status</th></tr></thead>"
        f"<tbody>{''.join(items)}</tbody></table>"
    )


def render(
    data: PageData,
    *,
    page_url: str,
    minimum: int,
    maximum: int,
    error: str | None,
    notice: str | None,
    amount: str = "",
) -> str:
    """Render the whole page as HTML (every value escaped)."""
    account = data.account
    currency = account["currency"]
    tz = ZoneInfo(account["timezone"])
    supply = account["supply"]
    supply_text = "On" if supply["allowed"] else "Off"
    reason = html.escape(str(supply.get("reason") or "").replace("_", " "))
    largest = max((cost for _, cost in data.recent), default=0) or 1
    recent_rows = "".join(
        f"<tr><td>{day}</td><td class=num>{money(cost, currency)}</td>"
        f"<td aria-hidden=true><span class=bar style='width:{round(100 * cost / largest)}%'>"
        "</span></td></tr>"
        for day, cost in data.recent
    )
    open_order = any(o["status"] in OPEN_STATUSES for o in data.orders)
    error_html = (
        f"<p class=error id=amount-error role=alert>{html.escape(error)}</p>" if error else ""
    )
    notice_html = f"<p class=notice role=status>{html.escape(notice)}</p>" if notice else ""
    step = Decimal(1).scaleb(-currency_exponent(currency))
    days = data.days_left
    days_text = f"{Decimal(days):.1f}" if days is not None else "-"
    refresh_script = (
        "<script>setTimeout(function(){location.replace(location.pathname)},2000)</script>"
        if open_order
        else ""
    )
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<title>{html.escape(account["name"])} · Prepaid account</title>
<style>{_STYLE}</style></head>
<body><main>
<p class=muted>Prepaid account {html.escape(account["number"] or "")}</p>
<h1>{html.escape(account["name"])}</h1>
{notice_html}
<section class="card figures" aria-label="Account">
 <div class=figure><div class=muted>Balance</div>
  <div class=value id=balance>{money(account["balance_minor"], currency)}</div></div>
 <div class=figure><div class=muted>Days left</div>
  <div class=value id=days-left>{days_text}</div></div>
 <div class=figure><div class=muted>Supply</div>
  <div class="value supply-{"on" if supply["allowed"] else "off"}" id=supply>{supply_text}</div>
  <div class=muted>{reason}</div></div>
</section>
<section class=card aria-labelledby=topup-title>
 <h2 id=topup-title>Top up</h2>
 <form method=post action='{page_url}/checkout'>
  <label for=amount>Amount ({html.escape(currency)})</label>
  <input id=amount name=amount inputmode=decimal required value="{html.escape(amount)}"
   aria-describedby="amount-help{" amount-error" if error else ""}">
  <p class=muted id=amount-help>From {money(minimum, currency)} to {money(maximum, currency)},
   in steps of {step:f}. You pay on Stripe's secure page.</p>
  {error_html}
  <button type=submit>Pay</button>
 </form>
</section>
<section class=card aria-labelledby=use-title>
 <h2 id=use-title>Last {RECENT_DAYS} days</h2>
 <table><thead><tr><th>Day</th><th class=num>Cost</th><th><span class=muted>·</span></th></tr>
 </thead><tbody>{recent_rows}</tbody></table>
</section>
<section class=card aria-labelledby=orders-title>
 <h2 id=orders-title>Top-ups</h2>
 <div id=orders>{_orders_html(data.orders, tz, page_url)}</div>
</section>
</main>{refresh_script}</body></html>"""


def _html(text: str, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; base-uri 'none'"
    )
    return response


async def _show(
    request: web.Request,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    amount: str = "",
) -> web.Response:
    token = request.match_info["token"]
    settings = settings_of(request)

    async def work(session: AsyncSession) -> PageData | None:
        account = await account_for_pay_token(session, token)
        return None if account is None else await _page_data(session, account)

    data = await db_of(request).read(work)
    if data is None:
        return _html(_NOT_FOUND, 404)
    page = render(
        data,
        page_url=html.escape(_page_url(request, token), quote=True),
        minimum=settings.tenant_min_topup_minor,
        maximum=settings.max_topup_minor,
        error=error,
        notice=notice,
        amount=amount,
    )
    return _html(page, status)


@routes.get("/pay/{token}")
async def pay_page(request: web.Request) -> web.Response:
    """Show the tenant's account; after Stripe, say whether the payment arrived yet."""
    notice = None
    if request.query.get("paid"):
        notice = "Thank you. Your payment shows below as soon as Stripe confirms it."
    elif request.query.get("cancelled"):
        notice = "Payment cancelled: nothing was charged."
    return await _show(request, notice=notice)


def _page_url(request: web.Request, token: str) -> str:
    """Where the page's forms and redirects point: under the public base URL when set.

    Without one the path alone (the browser keeps the address it used); never an address made
    from the request's Host header or a guessed port.
    """
    if settings_of(request).public_base_url:
        return pay_link_url(settings_of(request).public_base_url, token)
    return f"/pay/{token}"


@routes.post("/pay/{token}/checkout")
async def pay_checkout(request: web.Request) -> web.StreamResponse:
    """Open a Stripe Checkout Session for the typed amount; record a pending order; redirect."""
    token = request.match_info["token"]
    settings = settings_of(request)
    db = db_of(request)
    form = await request.post()
    raw = form.get("amount")
    amount_text = raw if isinstance(raw, str) else ""
    found = await db.read(lambda s: account_for_pay_token(s, token))
    if found is None:
        return _html(_NOT_FOUND, 404)
    if not settings.public_base_url:
        return await _show(request, status=409, error=NO_ONLINE_PAYMENT, amount=amount_text[:20])
    try:
        amount = parse_amount(
            amount_text, found.currency, settings.tenant_min_topup_minor, settings.max_topup_minor
        )
        # Stripe sends the tenant back to an absolute address: the public base URL or nothing.
        page = pay_link_url(settings.public_base_url, token)
        checkout = await create_checkout_session(
            settings,
            account_number=found.number or str(found.id),
            account_name=found.name,
            amount_minor=amount,
            currency=found.currency,
            success_url=f"{page}?paid={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{page}?cancelled=1",
            idempotency_key=f"pay-{found.id}-{secrets.token_hex(12)}",
        )
        checkout_id, url = _checkout_target(checkout)
        await db.write(lambda s: _open_order(s, found.id, checkout_id, amount))
    except (InputError, ConflictError, ApiError) as err:
        status = (
            err.status
            if isinstance(err, ApiError)
            else 409
            if isinstance(err, ConflictError)
            else 400
        )
        return await _show(request, status=status, error=err.message, amount=amount_text[:20])
    raise web.HTTPSeeOther(url)


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
        return _html(_NOT_FOUND, 404)
    order_id = int(raw_order) if raw_order.isascii() and raw_order.isdigit() else 0
    order = None
    if 0 < order_id < 2**31:
        with contextlib.suppress(NotFoundError):
            order = await db.read(lambda s: topups.order_with_timeline(s, order_id))
    if order is None or order["account_id"] != found.id:
        return await _show(request, status=404, error="that order is not on this account")
    try:
        await recheck_order(
            db, settings_of(request), order_id, "tenant", "tenant pressed refresh status"
        )
    except (ConflictError, ApiError) as err:
        return await _show(request, status=409, notice=f"Could not refresh: {err.message}")
    raise web.HTTPSeeOther(_page_url(request, token))
