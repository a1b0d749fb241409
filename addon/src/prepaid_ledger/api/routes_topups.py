"""Routes for top-up orders (idempotent), batch top-ups, order actions and adjustments."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.api.auth import (
    require_scope,
)
from prepaid_ledger.api.context import db_of, settings_of
from prepaid_ledger.api.documented import (
    IDEMPOTENCY_KEY,
    LIMIT,
    OPTIONAL_IDEMPOTENCY_KEY,
    Param,
    component,
    documented,
    id_query,
    listing,
)
from prepaid_ledger.api.http_helpers import json_body, limit_param, path_id, query_int
from prepaid_ledger.api.idempotency import idempotency_key, run_idempotent
from prepaid_ledger.api.provider_check import recheck
from prepaid_ledger.errors import ApiError, ConflictError, InputError, NotFoundError
from prepaid_ledger.services import topups
from prepaid_ledger.services.validation import require_mapping
from prepaid_ledger.store.stream import discard_after, pending_count

routes = web.RouteTableDef()


@routes.post("/api/v1/topups")
@documented(
    "Manual/cash top-up (idempotent)",
    response=component("Order"),
    status=201,
    body=component("TopupInput"),
    params=(IDEMPOTENCY_KEY,),
    errors=(400, 401, 403, 404, 409, 422),
)
async def post_topup(request: web.Request) -> web.Response:
    """Handle a manual/cash top-up with an Idempotency-Key (admin, integration)."""
    principal = require_scope(request, "admin", "integration")
    key = idempotency_key(request, required=True)
    raw = await request.read()
    body = await json_body(request)
    max_minor = settings_of(request).max_topup_minor

    async def work(session: AsyncSession) -> tuple[int, Any]:
        return 201, await topups.manual_topup(session, body, principal.actor, max_minor)

    return await run_idempotent(request, principal, key, raw, work)


@routes.post("/api/v1/topups/batch")
@documented(
    "Top up many accounts, one result per item (admin)",
    response=listing("results", {"type": "object"}),
    body={
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1000,
                "items": component("TopupInput"),
            }
        },
    },
    params=(IDEMPOTENCY_KEY,),
    errors=(400, 401, 403, 422),
)
async def post_topup_batch(request: web.Request) -> web.Response:
    """Top up many accounts in one call, one result per item (admin)."""
    principal = require_scope(request, "admin")
    key = idempotency_key(request, required=True)
    raw = await request.read()
    body = await json_body(request)
    items = body.get("items")
    if not isinstance(items, list) or not items or len(items) > 1000:
        raise InputError("invalid_field", "items must be a list of 1 to 1000 top-ups")
    max_minor = settings_of(request).max_topup_minor

    async def work(session: AsyncSession) -> tuple[int, Any]:
        results: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            mark = pending_count(session)
            try:
                async with session.begin_nested():
                    order = await topups.manual_topup(
                        session,
                        require_mapping(item, f"items[{index}]"),
                        principal.actor,
                        max_minor,
                    )
                results.append({"index": index, "ok": True, "order": order})
            except (InputError, ConflictError, NotFoundError) as err:
                discard_after(session, mark)
                code = getattr(err, "code", "not_found")
                message = getattr(err, "message", str(err))
                results.append(
                    {"index": index, "ok": False, "error": {"code": code, "message": message}}
                )
        return 200, {"results": results}

    return await run_idempotent(request, principal, key, raw, work)


@routes.get("/api/v1/topups")
@documented(
    "List orders",
    response=listing("topups", component("Order")),
    params=(Param("status", "query", {"type": "string"}), id_query("account"), LIMIT),
)
async def get_topups(request: web.Request) -> web.Response:
    """Orders filtered by ?status= and ?account=."""
    principal = require_scope(request, "admin", "integration", "tenant")
    account_id = query_int(request, "account")
    if principal.scope == "tenant":
        account_id = principal.account_id
    status = request.query.get("status") or None
    limit = limit_param(request)
    result = await db_of(request).read(lambda s: topups.list_orders(s, status, account_id, limit))
    return web.json_response({"topups": result})


@routes.get("/api/v1/topups/{id}")
@documented(
    "One order with its status timeline",
    response=component("Order"),
    errors=(401, 403, 404, 422),
)
async def get_topup(request: web.Request) -> web.Response:
    """One order with its status timeline."""
    principal = require_scope(request, "admin", "integration", "tenant")
    order_id = path_id(request)
    result = await db_of(request).read(lambda s: topups.order_with_timeline(s, order_id))
    if principal.scope == "tenant" and result["account_id"] != principal.account_id:
        raise ApiError(403, "forbidden", "a tenant token can only read its own orders")
    return web.json_response(result)


@routes.post("/api/v1/topups/{id}/actions")
@documented(
    "Resolve an order: credit, refund, fail (admin); recheck (admin, integration)",
    response=component("Order"),
    body=component("OrderAction"),
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
    body = await json_body(request)
    if body.get("action") == "recheck":
        return await recheck(request, principal, order_id, body)
    if principal.scope != "admin":
        raise ApiError(403, "forbidden", "only recheck is allowed with scope integration")

    async def work(session: AsyncSession) -> tuple[int, Any]:
        return 200, await topups.admin_action(session, order_id, body, principal.actor)

    return await run_idempotent(request, principal, key, raw, work)


@routes.post("/api/v1/adjustments")
@documented(
    "Signed balance correction with a reason (admin)",
    response={"type": "object"},
    status=201,
    params=(OPTIONAL_IDEMPOTENCY_KEY,),
    body={
        "type": "object",
        "required": ["account", "amount_minor", "reason"],
        "properties": {
            "account": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
            "amount_minor": {"type": "integer"},
            "reason": {"type": "string"},
        },
    },
    errors=(400, 401, 403, 404, 409, 422),
)
async def post_adjustment(request: web.Request) -> web.Response:
    """Handle a signed balance correction with a reason (admin)."""
    principal = require_scope(request, "admin")
    key = idempotency_key(request, required=False)
    raw = await request.read()
    body = await json_body(request)
    max_minor = settings_of(request).max_topup_minor

    async def work(session: AsyncSession) -> tuple[int, Any]:
        return 201, await topups.adjust(session, body, principal.actor, max_minor)

    return await run_idempotent(request, principal, key, raw, work)
