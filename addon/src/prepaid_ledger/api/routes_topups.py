"""Routes for top-up orders (idempotent), batch top-ups, order actions and adjustments."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prepaid_meter_contract.errors import ErrorDetail
from prepaid_meter_contract.receipts import Receipt
from prepaid_meter_contract.resources import TopupOrder, TopupOrders
from prepaid_meter_contract.topups import (
    Adjustment,
    AdjustmentRequest,
    BatchItemResult,
    BatchResults,
    OrderAction,
    ResolvedOrder,
    TopupBatch,
    TopupRequest,
)
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.api.auth import require_scope, require_visible
from prepaid_ledger.api.context import db_of, settings_of
from prepaid_ledger.api.documented import (
    CURSOR,
    IDEMPOTENCY_KEY,
    LIMIT,
    OPTIONAL_IDEMPOTENCY_KEY,
    Param,
    documented,
    id_query,
    search_param,
)
from prepaid_ledger.api.http_helpers import (
    limit_param,
    model_response,
    parse_body,
    path_id,
    query_int,
)
from prepaid_ledger.api.idempotency import idempotency_key, run_idempotent
from prepaid_ledger.api.provider_check import recheck
from prepaid_ledger.errors import ApiError, ConflictError, InputError, NotFoundError
from prepaid_ledger.services import receipts, sites, topups
from prepaid_ledger.services.paging import search_text
from prepaid_ledger.store.stream import discard_after, pending_count

routes = web.RouteTableDef()


@routes.post("/api/v1/topups")
@documented(
    "Manual/cash top-up (idempotent)",
    response=TopupOrder,
    status=201,
    body=TopupRequest,
    params=(IDEMPOTENCY_KEY,),
    errors=(400, 401, 403, 404, 409, 422),
)
async def post_topup(request: web.Request) -> web.Response:
    """Handle a manual/cash top-up with an Idempotency-Key (admin, integration)."""
    principal = require_scope(request, "admin", "integration")
    key = idempotency_key(request, required=True)
    raw = await request.read()
    body = await parse_body(request, TopupRequest)
    max_minor = settings_of(request).max_topup_minor

    async def work(session: AsyncSession) -> tuple[int, Any]:
        # A site's token credits its own site's rooms only.
        await sites.check_account_ref(session, principal.site_id, body.account)
        order = await topups.manual_topup(session, body, principal.actor, max_minor)
        return 201, order.model_dump(mode="json")

    return await run_idempotent(request, principal, key, raw, work)


@routes.post("/api/v1/topups/batch")
@documented(
    "Top up many accounts, one result per item (admin)",
    response=BatchResults,
    body=TopupBatch,
    params=(IDEMPOTENCY_KEY,),
    errors=(400, 401, 403, 422),
)
async def post_topup_batch(request: web.Request) -> web.Response:
    """Top up many accounts in one call, one result per item (admin).

    An item the contract refuses (``TopupBatch`` keeps it as its ``ErrorDetail``) or the
    ledger refuses (closed account, reused reference, over the limit) is that item's error;
    the other items are credited all the same.
    """
    principal = require_scope(request, "admin")
    key = idempotency_key(request, required=True)
    raw = await request.read()
    batch = await parse_body(request, TopupBatch)
    max_minor = settings_of(request).max_topup_minor

    async def work(session: AsyncSession) -> tuple[int, Any]:
        results: list[BatchItemResult] = []
        for index, item in enumerate(batch.items):
            if isinstance(item, ErrorDetail):
                results.append(BatchItemResult(index=index, ok=False, error=item))
                continue
            mark = pending_count(session)
            try:
                async with session.begin_nested():
                    order = await topups.manual_topup(session, item, principal.actor, max_minor)
                results.append(BatchItemResult(index=index, ok=True, order=order))
            except (InputError, ConflictError, NotFoundError) as err:
                discard_after(session, mark)
                results.append(BatchItemResult(index=index, ok=False, error=_refusal(index, err)))
        return 200, BatchResults(results=results).model_dump(mode="json")

    return await run_idempotent(request, principal, key, raw, work)


def _refusal(index: int, err: InputError | ConflictError | NotFoundError) -> ErrorDetail:
    """Return why the ledger refused one item of a batch (its field named within the batch)."""
    if isinstance(err, NotFoundError):
        return ErrorDetail(code="not_found", message=err.message)
    field = f"items[{index}].{err.field}" if isinstance(err, InputError) and err.field else None
    return ErrorDetail(code=err.code, message=err.message, field=field)


@routes.get("/api/v1/topups")
@documented(
    "List orders",
    response=TopupOrders,
    params=(
        Param("status", "query", {"type": "string"}),
        id_query("account"),
        search_param("order id, reference, or what the payer typed"),
        CURSOR,
        LIMIT,
    ),
    errors=(401, 403, 422),
)
async def get_topups(request: web.Request) -> web.Response:
    """One page of orders filtered by ?status=, ?account= and ?q=, newest first."""
    principal = require_scope(request, "admin", "integration", "tenant")
    account_id = query_int(request, "account")
    if principal.scope == "tenant":
        account_id = principal.account_id
    status = request.query.get("status") or None
    limit = limit_param(request)
    search, cursor = search_text(request.query.get("q")), request.query.get("cursor")
    page = await db_of(request).read(
        lambda s: topups.list_orders(
            s,
            status,
            account_id,
            limit,
            search=search,
            cursor=cursor,
            site_id=principal.site_id,
        )
    )
    return model_response(TopupOrders(topups=page.rows, next_cursor=page.next_cursor))


@routes.get("/api/v1/topups/{id}")
@documented(
    "One order with its status timeline",
    response=TopupOrder,
    errors=(401, 403, 404, 422),
)
async def get_topup(request: web.Request) -> web.Response:
    """One order with its status timeline."""
    principal = require_scope(request, "admin", "integration", "tenant")
    order_id = path_id(request)
    result = await db_of(request).read(lambda s: topups.order_with_timeline(s, order_id))
    if principal.scope == "tenant" and result.account_id != principal.account_id:
        raise ApiError(403, "forbidden", "a tenant token can only read its own orders")
    await require_visible(request, principal, result.account_id, f"order {order_id}")
    return model_response(result)


@routes.get("/api/v1/topups/{id}/receipt")
@documented(
    "The receipt of a succeeded order (404 before it succeeded)",
    response=Receipt,
    errors=(401, 403, 404, 422),
)
async def get_topup_receipt(request: web.Request) -> web.Response:
    """Answer a succeeded order's receipt: admin, integration, or the order's own tenant."""
    principal = require_scope(request, "admin", "integration", "tenant")
    order_id = path_id(request)
    result = await db_of(request).read(lambda s: receipts.of_order(s, order_id))
    if principal.scope == "tenant" and result.account_id != principal.account_id:
        raise ApiError(403, "forbidden", "a tenant token can only read its own receipts")
    await require_visible(request, principal, result.account_id, f"order {order_id}")
    return model_response(result)


@routes.post("/api/v1/topups/{id}/actions")
@documented(
    "Resolve an order: credit, refund, fail (admin); recheck (admin, integration)",
    response=ResolvedOrder,
    body=OrderAction,
    params=(OPTIONAL_IDEMPOTENCY_KEY,),
    errors=(400, 401, 403, 404, 409, 422, 502),
)
async def post_topup_action(request: web.Request) -> web.Response:
    """Resolve an order: credit, refund, fail (admin) or recheck (admin, integration).

    A recheck only asks the provider what it knows and applies that, so the integration (Home
    Assistant's "refresh top-up") may do it; moving money by hand stays with the admin.
    """
    principal = require_scope(request, "admin", "integration")
    order_id = path_id(request)
    key = idempotency_key(request, required=False)
    raw = await request.read()
    command = await parse_body(request, OrderAction)
    if command.action == "recheck":
        if principal.site_id is not None:  # only an order of the token's own site
            order = await db_of(request).read(lambda s: topups.order_with_timeline(s, order_id))
            await require_visible(request, principal, order.account_id, f"order {order_id}")
        return await recheck(request, principal, order_id, command)
    if principal.scope != "admin":
        raise ApiError(403, "forbidden", "only recheck is allowed with scope integration")

    async def work(session: AsyncSession) -> tuple[int, Any]:
        order = await topups.admin_action(session, order_id, command, principal.actor)
        return 200, order.model_dump(mode="json")

    return await run_idempotent(request, principal, key, raw, work)


@routes.post("/api/v1/adjustments")
@documented(
    "Signed balance correction with a reason (admin)",
    response=Adjustment,
    status=201,
    params=(OPTIONAL_IDEMPOTENCY_KEY,),
    body=AdjustmentRequest,
    errors=(400, 401, 403, 404, 409, 422),
)
async def post_adjustment(request: web.Request) -> web.Response:
    """Handle a signed balance correction with a reason (admin)."""
    principal = require_scope(request, "admin")
    key = idempotency_key(request, required=False)
    raw = await request.read()
    body = await parse_body(request, AdjustmentRequest)
    max_minor = settings_of(request).max_topup_minor

    async def work(session: AsyncSession) -> tuple[int, Any]:
        adjustment = await topups.adjust(session, body, principal.actor, max_minor)
        return 201, adjustment.model_dump(mode="json")

    return await run_idempotent(request, principal, key, raw, work)
