"""REST handlers: thin wrappers that check scope, parse input and call one service function."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger import __version__
from prepaid_ledger.api.auth import (
    create_token,
    principal_of,
    require_account_access,
    require_scope,
    revoke_token,
)
from prepaid_ledger.api.context import db_of, settings_of, state_of
from prepaid_ledger.api.errors import ApiError, read_json
from prepaid_ledger.api.idempotency import idempotency_key, run_idempotent
from prepaid_ledger.api.provider_check import recheck
from prepaid_ledger.domain.errors import InputError
from prepaid_ledger.services import accounts, meters, readings, statement, tariffs, topups
from prepaid_ledger.services.validation import require_id, require_mapping
from prepaid_ledger.store.models import Account, AuditLog, WebhookRejection, utcnow
from prepaid_ledger.store.stream import discard_after, pending_count

routes = web.RouteTableDef()


def _path_id(request: web.Request, name: str = "id") -> int:
    return require_id(request.match_info[name])


def _query_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    return require_id(raw)


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "100")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 1000:
        raise InputError("invalid_field", "limit must be an integer from 1 to 1000")
    return int(raw)


async def _body(request: web.Request) -> dict[str, Any]:
    return dict(require_mapping(await read_json(request)))


@routes.get("/api/v1/health")
async def health(request: web.Request) -> web.Response:
    """Liveness plus the ledger's identity (no auth)."""
    return web.json_response(
        {"status": "ok", "version": __version__, "ledger_id": state_of(request.app).ledger_id}
    )


@routes.get("/api/v1/whoami")
async def whoami(request: web.Request) -> web.Response:
    """Handle the caller's scope and account."""
    principal = principal_of(request)
    return web.json_response({"scope": principal.scope, "account_id": principal.account_id})


@routes.post("/api/v1/tokens")
async def post_token(request: web.Request) -> web.Response:
    """Issue an integration or tenant token (admin)."""
    principal = require_scope(request, "admin")
    body = await _body(request)
    result = await db_of(request).write(lambda s: create_token(s, body, principal.actor))
    return web.json_response(result, status=201)


@routes.delete("/api/v1/tokens/{id}")
async def delete_token(request: web.Request) -> web.Response:
    """Revoke a token (admin)."""
    principal = require_scope(request, "admin")
    token_id = _path_id(request)
    result = await db_of(request).write(lambda s: revoke_token(s, token_id, principal.actor))
    return web.json_response(result)


@routes.post("/api/v1/tariffs")
async def post_tariff(request: web.Request) -> web.Response:
    """Create a tariff (admin)."""
    principal = require_scope(request, "admin")
    body = await _body(request)
    result = await db_of(request).write(lambda s: tariffs.create_tariff(s, body, principal.actor))
    return web.json_response(result, status=201)


@routes.get("/api/v1/tariffs")
async def get_tariffs(request: web.Request) -> web.Response:
    """List tariffs."""
    require_scope(request, "admin", "integration")
    return web.json_response({"tariffs": await db_of(request).read(tariffs.list_tariffs)})


@routes.get("/api/v1/tariffs/{id}")
async def get_tariff(request: web.Request) -> web.Response:
    """One tariff with its versions."""
    require_scope(request, "admin", "integration", "tenant")
    tariff_id = _path_id(request)
    return web.json_response(await db_of(request).read(lambda s: tariffs.get_tariff(s, tariff_id)))


@routes.post("/api/v1/tariffs/{id}/versions")
async def post_tariff_version(request: web.Request) -> web.Response:
    """Handle a price change effective from a time (admin)."""
    principal = require_scope(request, "admin")
    tariff_id = _path_id(request)
    body = await _body(request)
    result = await db_of(request).write(
        lambda s: tariffs.add_version(s, tariff_id, body, principal.actor)
    )
    return web.json_response(result, status=201)


@routes.post("/api/v1/accounts")
async def post_account(request: web.Request) -> web.Response:
    """Create an account (admin)."""
    principal = require_scope(request, "admin")
    body = await _body(request)

    async def work(session: AsyncSession) -> dict[str, Any]:
        account = await accounts.create_account(session, body, principal.actor)
        await accounts.refresh_account(session, account, utcnow())
        return await accounts.account_view(session, account, utcnow())

    return web.json_response(await db_of(request).write(work), status=201)


@routes.get("/api/v1/accounts")
async def get_accounts(request: web.Request) -> web.Response:
    """List accounts (a tenant sees only its own)."""
    principal = require_scope(request, "admin", "integration", "tenant")

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        query = select(Account).order_by(Account.id)
        if principal.scope == "tenant":
            query = query.where(Account.id == principal.account_id)
        now = utcnow()
        return [await accounts.account_view(session, a, now) for a in await session.scalars(query)]

    return web.json_response({"accounts": await db_of(request).read(work)})


@routes.get("/api/v1/accounts/{id}")
async def get_account(request: web.Request) -> web.Response:
    """One account with balance and supply decision."""
    principal = require_scope(request, "admin", "integration", "tenant")
    account_id = _path_id(request)
    require_account_access(principal, account_id)

    async def work(session: AsyncSession) -> dict[str, Any]:
        account = await accounts.get_account(session, account_id)
        return await accounts.account_view(session, account, utcnow())

    return web.json_response(await db_of(request).read(work))


@routes.patch("/api/v1/accounts/{id}")
async def patch_account(request: web.Request) -> web.Response:
    """Handle changing an account's name or policy settings (admin)."""
    principal = require_scope(request, "admin")
    account_id = _path_id(request)
    body = await _body(request)
    result = await db_of(request).write(
        lambda s: accounts.update_account(s, account_id, body, principal.actor)
    )
    return web.json_response(result)


@routes.post("/api/v1/accounts/{id}/close")
async def post_close(request: web.Request) -> web.Response:
    """Close and settle an account (admin)."""
    principal = require_scope(request, "admin")
    account_id = _path_id(request)
    body = await _body(request)
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise InputError("invalid_field", "reason must be a non-empty string")
    result = await db_of(request).write(
        lambda s: accounts.close_account(s, account_id, principal.actor, reason)
    )
    return web.json_response(result)


@routes.post("/api/v1/meters")
async def post_meter(request: web.Request) -> web.Response:
    """Create a meter (admin)."""
    principal = require_scope(request, "admin")
    body = await _body(request)
    result = await db_of(request).write(lambda s: meters.create_meter(s, body, principal.actor))
    return web.json_response(result, status=201)


@routes.get("/api/v1/meters")
async def get_meters(request: web.Request) -> web.Response:
    """List meters (optionally ?account=ID)."""
    principal = require_scope(request, "admin", "integration", "tenant")
    account_id = _query_int(request, "account")
    if principal.scope == "tenant":
        account_id = principal.account_id
    result = await db_of(request).read(lambda s: meters.list_meters(s, account_id))
    return web.json_response({"meters": result})


@routes.get("/api/v1/meters/{id}")
async def get_meter(request: web.Request) -> web.Response:
    """One meter."""
    principal = require_scope(request, "admin", "integration", "tenant")
    meter_id = _path_id(request)
    meter = await db_of(request).read(lambda s: meters.get_meter(s, meter_id))
    require_account_access(principal, meter.account_id)
    return web.json_response(meters.meter_json(meter))


@routes.post("/api/v1/meters/{id}/assign")
async def post_meter_assign(request: web.Request) -> web.Response:
    """Move a meter to another account from a time on (admin)."""
    principal = require_scope(request, "admin")
    meter_id = _path_id(request)
    body = await _body(request)
    result = await db_of(request).write(
        lambda s: meters.assign_meter(s, meter_id, body, principal.actor)
    )
    return web.json_response(result)


@routes.post("/api/v1/meters/{id}/replace")
async def post_meter_replace(request: web.Request) -> web.Response:
    """Re-base a meter after a register replacement (admin)."""
    principal = require_scope(request, "admin")
    meter_id = _path_id(request)
    body = await _body(request)
    result = await db_of(request).write(
        lambda s: meters.replace_register(s, meter_id, body, principal.actor)
    )
    return web.json_response(result)


@routes.post("/api/v1/readings")
async def post_readings(request: web.Request) -> web.Response:
    """Ingest a batch of readings (admin, integration)."""
    principal = require_scope(request, "admin", "integration")
    body = await _body(request)
    readings.parse_batch(body)  # fail fast on bad input before taking the write lock
    result = await db_of(request).write(lambda s: readings.ingest(s, body, principal.actor))
    return web.json_response(result)


@routes.post("/api/v1/topups")
async def post_topup(request: web.Request) -> web.Response:
    """Handle a manual/cash top-up with an Idempotency-Key (admin, integration)."""
    principal = require_scope(request, "admin", "integration")
    key = idempotency_key(request, required=True)
    raw = await request.read()
    body = await _body(request)
    max_minor = settings_of(request).max_topup_minor

    async def work(session: AsyncSession) -> tuple[int, Any]:
        return 201, await topups.manual_topup(session, body, principal.actor, max_minor)

    return await run_idempotent(request, principal, key, raw, work)


@routes.post("/api/v1/topups/batch")
async def post_topup_batch(request: web.Request) -> web.Response:
    """Top up many accounts in one call, one result per item (admin)."""
    principal = require_scope(request, "admin")
    key = idempotency_key(request, required=True)
    raw = await request.read()
    body = await _body(request)
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
            except (InputError, accounts.ConflictError, accounts.NotFoundError) as err:
                discard_after(session, mark)
                code = getattr(err, "code", "not_found")
                message = getattr(err, "message", str(err))
                results.append(
                    {"index": index, "ok": False, "error": {"code": code, "message": message}}
                )
        return 200, {"results": results}

    return await run_idempotent(request, principal, key, raw, work)


@routes.get("/api/v1/topups")
async def get_topups(request: web.Request) -> web.Response:
    """Orders filtered by ?status= and ?account=."""
    principal = require_scope(request, "admin", "integration", "tenant")
    account_id = _query_int(request, "account")
    if principal.scope == "tenant":
        account_id = principal.account_id
    status = request.query.get("status") or None
    limit = _limit(request)
    result = await db_of(request).read(lambda s: topups.list_orders(s, status, account_id, limit))
    return web.json_response({"topups": result})


@routes.get("/api/v1/topups/{id}")
async def get_topup(request: web.Request) -> web.Response:
    """One order with its status timeline."""
    principal = require_scope(request, "admin", "integration", "tenant")
    order_id = _path_id(request)
    result = await db_of(request).read(lambda s: topups.order_with_timeline(s, order_id))
    if principal.scope == "tenant" and result["account_id"] != principal.account_id:
        raise ApiError(403, "forbidden", "a tenant token can only read its own orders")
    return web.json_response(result)


@routes.post("/api/v1/topups/{id}/actions")
async def post_topup_action(request: web.Request) -> web.Response:
    """Admin resolution of an order: credit, refund, fail, recheck (with a reason)."""
    principal = require_scope(request, "admin")
    order_id = _path_id(request)
    key = idempotency_key(request, required=False)
    raw = await request.read()
    body = await _body(request)
    if body.get("action") == "recheck":
        return await recheck(request, principal, order_id, body)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        return 200, await topups.admin_action(session, order_id, body, principal.actor)

    return await run_idempotent(request, principal, key, raw, work)


@routes.post("/api/v1/adjustments")
async def post_adjustment(request: web.Request) -> web.Response:
    """Handle a signed balance correction with a reason (admin)."""
    principal = require_scope(request, "admin")
    key = idempotency_key(request, required=False)
    raw = await request.read()
    body = await _body(request)
    max_minor = settings_of(request).max_topup_minor

    async def work(session: AsyncSession) -> tuple[int, Any]:
        return 201, await topups.adjust(session, body, principal.actor, max_minor)

    return await run_idempotent(request, principal, key, raw, work)


@routes.get("/api/v1/audit")
async def get_audit(request: web.Request) -> web.Response:
    """Handle the audit log, newest first (admin)."""
    require_scope(request, "admin")
    limit = _limit(request)

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        rows = await session.scalars(select(AuditLog).order_by(AuditLog.id.desc()).limit(limit))
        return [
            {
                "id": r.id,
                "at": r.at.isoformat(),
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "before": r.before,
                "after": r.after,
            }
            for r in rows
        ]

    return web.json_response({"entries": await db_of(request).read(work)})


@routes.get("/api/v1/accounts/{id}/statement")
async def get_statement(request: web.Request) -> web.Response:
    """Statement for a period as JSON or CSV; the lines tie out to the closing balance."""
    principal = require_scope(request, "admin", "integration", "tenant")
    account_id = _path_id(request)
    require_account_access(principal, account_id)
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InputError("invalid_field", "format must be json or csv")
    start, end = request.query.get("from"), request.query.get("to")
    result = await db_of(request).read(
        lambda s: statement.build_statement(s, account_id, start, end)
    )
    if fmt == "csv":
        return web.Response(text=statement.statement_csv(result), content_type="text/csv")
    return web.json_response(result)


@routes.get("/api/v1/webhook-rejections")
async def get_webhook_rejections(request: web.Request) -> web.Response:
    """Handle listing webhook deliveries that failed verification, newest first (admin)."""
    require_scope(request, "admin")
    limit = _limit(request)

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        rows = await session.scalars(
            select(WebhookRejection).order_by(WebhookRejection.id.desc()).limit(limit)
        )
        return [
            {
                "id": r.id,
                "provider": r.provider,
                "reason": r.reason,
                "body_sha256": r.body_sha256,
                "received_at": r.received_at.isoformat(),
            }
            for r in rows
        ]

    return web.json_response({"rejections": await db_of(request).read(work)})
