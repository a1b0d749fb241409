"""Routes for prepaid accounts: create, list, read, change, close, statement."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import qrcode  # type: ignore[import-untyped]
import qrcode.image.svg  # type: ignore[import-untyped]
from aiohttp import web
from prepaid_meter_contract.accounts import (
    AccountInput,
    AccountUpdate,
    CloseAccount,
    ClosedAccount,
    PayLink,
)
from prepaid_meter_contract.resources import Account as AccountView
from prepaid_meter_contract.resources import Accounts
from prepaid_meter_contract.statements import Statement
from prepaid_meter_contract.vocabulary import AccountStatus
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.api.auth import require_scope, require_visible
from prepaid_ledger.api.context import db_of, settings_of
from prepaid_ledger.api.documented import (
    CURSOR,
    LIMIT,
    SEARCH,
    TIME_IN,
    Param,
    documented,
    id_query,
)
from prepaid_ledger.api.http_helpers import (
    limit_param,
    model_response,
    parse_body,
    path_id,
    query_int,
)
from prepaid_ledger.errors import InputError
from prepaid_ledger.services import accounts, pay_links, statement
from prepaid_ledger.services.account_list import (
    SORT_NAMES,
    AccountFilter,
    find_accounts,
    last_topups,
)
from prepaid_ledger.services.meter_status import (
    ForecastInputs,
    account_days_left,
    forecast_inputs,
)
from prepaid_ledger.services.paging import search_text
from prepaid_ledger.store.models import Account, utcnow

routes = web.RouteTableDef()


@routes.post("/api/v1/accounts")
@documented(
    "Create an account in a site (admin)",
    response=AccountView,
    status=201,
    body=AccountInput,
    errors=(400, 401, 403, 404, 422),
)
async def post_account(request: web.Request) -> web.Response:
    """Create an account (admin)."""
    principal = require_scope(request, "admin")
    command = await parse_body(request, AccountInput)

    async def work(session: AsyncSession) -> AccountView:
        account = await accounts.create_account(session, command, principal.actor)
        await accounts.refresh_account(session, account, utcnow())
        return await accounts.account_view(session, account, utcnow())

    return model_response(await db_of(request).write(work), status=201)


@routes.get("/api/v1/accounts")
@documented(
    "Find accounts: search, filters, sort and cursor pages (tenants: their own)",
    response=Accounts,
    params=(
        SEARCH,
        Param("status", "query", {"type": "string", "enum": [s.value for s in AccountStatus]}),
        Param("supply", "query", {"type": "string", "enum": ["on", "off"]}),
        Param("low", "query", {"type": "boolean"}, description="only accounts below a level"),
        Param("sort", "query", {"type": "string", "enum": list(SORT_NAMES)}),
        id_query("site", "only this site's accounts (a site's token: always its own)"),
        CURSOR,
        LIMIT,
    ),
    errors=(401, 403, 422),
)
async def get_accounts(request: web.Request) -> web.Response:
    """One page of accounts matching ?q=, ?status=, ?supply=, ?low= in ?sort= order."""
    principal = require_scope(request, "admin", "integration", "tenant")
    wanted = account_filter(request)
    cursor, limit = request.query.get("cursor"), limit_param(request)

    if principal.site_id is not None:  # a site's token lists its own site's accounts
        wanted = replace(wanted, site_id=principal.site_id)

    async def work(session: AsyncSession) -> Accounts:
        now = utcnow()
        if principal.scope == "tenant":  # a tenant's list is its own account
            own = await accounts.get_account(session, principal.account_id or 0)
            return Accounts(accounts=[await _with_forecast(session, own, now)], total=1)
        page, total = await find_accounts(session, wanted, cursor, limit)
        topups = await last_topups(session, [a.id for a in page.rows])
        inputs = await forecast_inputs(session, page.rows, now)  # the whole page at once
        views = [
            (await _with_forecast(session, a, now, inputs[a.id])).model_copy(
                update={"last_topup": topups.get(a.id)}
            )
            for a in page.rows
        ]
        return Accounts(accounts=views, total=total, next_cursor=page.next_cursor)

    return model_response(await db_of(request).read(work))


def account_filter(request: web.Request) -> AccountFilter:
    """Read a list's search, filters and sort from the query (422 naming a bad one)."""
    query = request.query
    status = query.get("status") or None
    if status is not None and status not in {s.value for s in AccountStatus}:
        raise InputError("invalid_field", "status must be open or closed", "status")
    supply = query.get("supply") or None
    if supply not in (None, "on", "off"):
        raise InputError("invalid_field", "supply must be on or off", "supply")
    low = query.get("low", "false")
    if low not in ("true", "false"):
        raise InputError("invalid_field", "low must be true or false", "low")
    return AccountFilter(
        site_id=query_int(request, "site"),
        search=search_text(query.get("q")),
        status=AccountStatus(status) if status else None,
        supply="on" if supply == "on" else "off" if supply == "off" else None,
        low=low == "true",
        sort=query.get("sort") or "name",
    )


@routes.get("/api/v1/accounts/{id}")
@documented(
    "One account with balance, supply and days left",
    response=AccountView,
    errors=(401, 403, 404, 422),
)
async def get_account(request: web.Request) -> web.Response:
    """One account with balance and supply decision."""
    principal = require_scope(request, "admin", "integration", "tenant")
    account_id = path_id(request)
    await require_visible(request, principal, account_id, f"account {account_id}")

    async def work(session: AsyncSession) -> AccountView:
        account = await accounts.get_account(session, account_id)
        return await _with_forecast(session, account, utcnow())

    return model_response(await db_of(request).read(work))


async def _with_forecast(
    session: AsyncSession, account: Account, now: datetime, inputs: ForecastInputs | None = None
) -> AccountView:
    """Return the account view plus its days left (what the landlord page lists)."""
    if inputs is None:
        inputs = (await forecast_inputs(session, [account], now))[account.id]
    view = await accounts.account_view(session, account, now, balance=inputs.balance)
    forecast = await account_days_left(session, account, now, inputs)
    return view.model_copy(
        update={"days_left": forecast.days, "days_left_confidence": forecast.confidence}
    )


@routes.patch("/api/v1/accounts/{id}")
@documented(
    "Change an account's name or policy settings (admin)",
    response=AccountView,
    body=AccountUpdate,
    errors=(400, 401, 403, 404, 409, 422),
)
async def patch_account(request: web.Request) -> web.Response:
    """Handle changing an account's name or policy settings (admin)."""
    principal = require_scope(request, "admin")
    account_id = path_id(request)
    change = await parse_body(request, AccountUpdate)
    result = await db_of(request).write(
        lambda s: accounts.update_account(s, account_id, change, principal.actor)
    )
    return model_response(result)


@routes.post("/api/v1/accounts/{id}/close")
@documented(
    "Close and settle an account: refund due, refund paid now, or balance transferred (admin)",
    response=ClosedAccount,
    body=CloseAccount,
    errors=(400, 401, 403, 404, 409, 422),
)
async def post_close(request: web.Request) -> web.Response:
    """Close and settle an account (admin)."""
    principal = require_scope(request, "admin")
    account_id = path_id(request)
    closing = await parse_body(request, CloseAccount)
    result = await db_of(request).write(
        lambda s: accounts.close_account(s, account_id, closing, principal.actor)
    )
    return model_response(result)


@routes.get("/api/v1/accounts/{id}/statement")
@documented(
    "Statement for a period; lines tie out to the closing balance",
    response=Statement,
    content={"text/csv": {"schema": {"type": "string"}}},
    params=(
        *(
            Param(
                bound,
                "query",
                {"anyOf": [{"type": "string", "format": "date"}, TIME_IN]},
                description="a local date or a time with offset",
            )
            for bound in ("from", "to")
        ),
        Param("format", "query", {"type": "string", "enum": ["json", "csv"]}),
    ),
    errors=(401, 403, 404, 422),
)
async def get_statement(request: web.Request) -> web.Response:
    """Statement for a period as JSON or CSV; the lines tie out to the closing balance."""
    principal = require_scope(request, "admin", "integration", "tenant")
    account_id = path_id(request)
    await require_visible(request, principal, account_id, f"account {account_id}")
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InputError("invalid_field", "format must be json or csv")
    start, end = request.query.get("from"), request.query.get("to")
    result = await db_of(request).read(
        lambda s: statement.build_statement(s, account_id, start, end)
    )
    if fmt == "csv":
        return web.Response(text=statement.statement_csv(result), content_type="text/csv")
    return model_response(result)


@routes.post("/api/v1/accounts/{id}/pay-link")
@documented(
    "Issue the tenant's pay link, revoking the previous one; with a QR code (admin)",
    response=PayLink,
    status=201,
    errors=(401, 403, 404, 409),
)
async def post_pay_link(request: web.Request) -> web.Response:
    """Issue the account's tenant pay link (revoking the previous one) with a QR code (admin)."""
    principal = require_scope(request, "admin")
    account_id = path_id(request)
    public_base_url = settings_of(request).public_base_url
    pay_links.public_base(public_base_url)  # 409 before the current link is revoked
    issued = await db_of(request).write(
        lambda s: pay_links.issue_pay_link(s, account_id, principal.actor)
    )
    url = pay_links.pay_link_url(public_base_url, issued.token)
    link = PayLink(account_id=account_id, token_id=issued.id, url=url, qr_svg=qr_svg(url))
    return model_response(link, status=201)


def qr_svg(text: str) -> str:
    """Render TEXT as a QR code: a standalone SVG document (printable at any size)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    rendered = image.to_string(encoding="unicode")
    return rendered if isinstance(rendered, str) else rendered.decode()
