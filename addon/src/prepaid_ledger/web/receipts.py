"""Printable receipts: the landlord's (by number) and the tenant's (from the pay page).

Both render the same autoescaping template (an account named ``<script>`` stays text) in two
formats chosen with ``?format=``: ``a4`` (a sheet) and ``slip`` (an 80 mm till roll), each
with its own ``@page`` rule, so the browser's print dialog picks the right paper. The pages
load only their stylesheet, from the ledger itself (no script at all).

- ``/ui/receipts/{number}``: behind the landlord's session or Home Assistant's ingress, like
  the landlord page (private listener only); links are relative, so the ingress prefix works.
- ``/pay/{token}/receipts/{order_id}``: the pay link's own account only (public listener too);
  anything else answers the pay page's "not valid" page, never whose receipt it was.
"""

from __future__ import annotations

from importlib import resources
from typing import Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from prepaid_meter_contract.receipts import Receipt as ReceiptView
from prepaid_meter_contract.vocabulary import PaymentMethod
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.api.auth import browser_principal, trusted_ingress
from prepaid_ledger.api.context import db_of, settings_of
from prepaid_ledger.errors import NotFoundError
from prepaid_ledger.services import accounts, receipts
from prepaid_ledger.services.pay_links import account_for_pay_token, pay_link_url
from prepaid_ledger.services.validation import in_id_range
from prepaid_ledger.web.i18n import LOCALES, N_, Speaker, negotiate, remember, speaker
from prepaid_ledger.web.templates import render as render_template
from prepaid_ledger.web.tenant_page import ASSETS_PATH, content_security_policy

#: The landlord's receipts (private listener only).
landlord_routes = web.RouteTableDef()
#: The tenant's receipts and the receipts' stylesheets (both listeners, like the pay page).
tenant_routes = web.RouteTableDef()

FORMATS: Final = ("a4", "slip")
#: Each format's paper: an A4 sheet, or an 80 mm roll as long as the receipt needs.
_PAGES: Final = {
    "a4": "@page { size: A4; margin: 20mm; }\n",
    "slip": "@page { size: 80mm 160mm; margin: 3mm; }\n",
}
_STYLE: Final = resources.files("prepaid_ledger.web").joinpath("receipt.css").read_text("utf-8")
#: How each method is printed.
METHOD_TEXT: Final = {
    PaymentMethod.CARD: N_("Card"),
    PaymentMethod.CASH: N_("Cash"),
    PaymentMethod.VOUCHER: N_("Voucher"),
    PaymentMethod.ONLINE: N_("Online payment"),
    PaymentMethod.OTHER: N_("Other"),
    PaymentMethod.WECHAT_PAY: N_("WeChat Pay"),
    PaymentMethod.ALIPAY: N_("Alipay"),
    PaymentMethod.SEPA_DEBIT: N_("SEPA Direct Debit"),
    PaymentMethod.IDEAL: N_("iDEAL"),
    PaymentMethod.BANCONTACT: N_("Bancontact"),
}
_LANDLORD_CSP: Final = (
    "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors {ancestors}"
)


def receipt_format(request: web.Request) -> str:
    """Return the ``?format=`` asked for; anything unknown prints on A4."""
    wanted = request.query.get("format", "a4")
    return wanted if wanted in FORMATS else "a4"


def render(
    receipt: ReceiptView,
    timezone: str,
    *,
    fmt: str,
    assets: str,
    back_url: str,
    reader: Speaker,
) -> str:
    """Render one receipt as HTML in the reader's language (every value escaped)."""
    currency = receipt.currency
    money = reader.money
    return render_template(
        "receipt.html",
        reader=reader,
        languages=reader.choices(
            {code: "?" + urlencode({"format": fmt, "lang": code}) for code in LOCALES}
        ),
        lang=reader.locale,
        format=fmt,
        assets=assets,
        back_url=back_url,
        number=receipt.number,
        issued=reader.moment(receipt.issued_at, ZoneInfo(timezone)),
        timezone=timezone,
        account_number=receipt.account_number or str(receipt.account_id),
        account_name=receipt.account_name,
        room=receipt.room or "-",
        method=reader.gettext(METHOD_TEXT.get(receipt.method, METHOD_TEXT[PaymentMethod.OTHER])),
        order_id=receipt.order_id,
        amount=money(receipt.amount_minor, currency),
        bonus=money(receipt.bonus_minor, currency),
        credited=money(receipt.amount_minor + receipt.bonus_minor, currency),
        balance_after=money(receipt.balance_after_minor, currency),
    )


async def _with_timezone(session: AsyncSession, receipt: ReceiptView) -> tuple[ReceiptView, str]:
    """Return the receipt and its account's time zone (fixed for an account's life)."""
    account = await accounts.get_account(session, receipt.account_id)
    return receipt, account.timezone


def _html(text: str, headers: dict[str, str], status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers.update(headers)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@landlord_routes.get("/ui/receipts/{number}")
async def landlord_receipt(request: web.Request) -> web.StreamResponse:
    """Show a receipt by its number to the landlord (session or ingress), ready to print."""
    settings = settings_of(request)
    if await browser_principal(request, settings) is None:
        raise web.HTTPSeeOther("../../login")
    raw = request.match_info["number"]
    number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 19 else 0

    async def work(session: AsyncSession) -> tuple[ReceiptView, str]:
        return await _with_timezone(session, await receipts.by_number(session, number))

    receipt, timezone = await db_of(request).read(work)  # NotFoundError: the JSON 404
    through_ingress = trusted_ingress(request, settings.ingress_proxy)
    locale = negotiate(request)
    # Relative links: through ingress the page lives under Home Assistant's prefix.
    page = render(
        receipt,
        timezone,
        fmt=receipt_format(request),
        assets="../.." + ASSETS_PATH,
        back_url="../../",
        reader=speaker(locale),
    )
    ancestors = "'self'" if through_ingress else "'none'"
    response = _html(page, {"Content-Security-Policy": _LANDLORD_CSP.format(ancestors=ancestors)})
    remember(request, response, locale)
    return response


@tenant_routes.get("/pay/{token}/receipts/{order}")
async def tenant_receipt(request: web.Request) -> web.Response:
    """Show the receipt of one of the pay link's own orders, ready to print."""
    token = request.match_info["token"]
    raw = request.match_info["order"]
    order_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 19 else 0
    settings = settings_of(request)

    async def work(session: AsyncSession) -> tuple[ReceiptView, str] | None:
        account = await account_for_pay_token(session, token)
        if account is None or not in_id_range(order_id):
            return None
        try:
            receipt = await receipts.of_order(session, order_id)
        except NotFoundError:
            return None
        return (receipt, account.timezone) if receipt.account_id == account.id else None

    found = await db_of(request).read(work)
    headers = {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Frame-Options": "DENY",
    }
    locale = negotiate(request)
    if found is None:
        page = render_template("pay_not_found.html", reader=speaker(locale))
        return _html(page, headers, 404)
    receipt, timezone = found
    # Like the pay page: under the public base URL when set, never from the request's Host.
    base = settings.public_base_url
    root = (base or "").strip().rstrip("/")
    page = render(
        receipt,
        timezone,
        fmt=receipt_format(request),
        assets=root + ASSETS_PATH,
        back_url=pay_link_url(base, token) if base else f"/pay/{token}",
        reader=speaker(locale),
    )
    response = _html(page, headers)
    remember(request, response, locale)
    return response


@tenant_routes.get(ASSETS_PATH + "/receipt-{fmt}.css")
async def receipt_style(request: web.Request) -> web.Response:
    """Serve a format's stylesheet: its @page rule and the shared receipt styles."""
    fmt = request.match_info["fmt"]
    if fmt not in _PAGES:
        raise web.HTTPNotFound(text="no such stylesheet")
    return web.Response(
        text=_PAGES[fmt] + _STYLE,
        content_type="text/css",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )
