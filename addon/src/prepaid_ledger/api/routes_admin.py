"""Routes for identity and administration: health, whoami, tokens, audit log, rejected webhooks."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prepaid_meter_contract.resources import Health, WhoAmI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger import __version__
from prepaid_ledger.api.auth import principal_of, require_scope
from prepaid_ledger.api.context import db_of, state_of
from prepaid_ledger.api.documented import LIMIT, documented
from prepaid_ledger.api.http_helpers import json_body, limit_param, path_id
from prepaid_ledger.services.tokens import create_token, revoke_token
from prepaid_ledger.store.models import AuditLog, WebhookRejection

routes = web.RouteTableDef()


@routes.get("/api/v1/health")
@documented("Liveness and the ledger's identity", response=Health, errors=(), secured=False)
async def health(request: web.Request) -> web.Response:
    """Liveness plus the ledger's identity (no auth)."""
    return web.json_response(
        {"status": "ok", "version": __version__, "ledger_id": state_of(request.app).ledger_id}
    )


@routes.get("/api/v1/whoami")
@documented("The caller's scope", response=WhoAmI, errors=(401,))
async def whoami(request: web.Request) -> web.Response:
    """Handle the caller's scope and account."""
    principal = principal_of(request)
    return web.json_response({"scope": principal.scope, "account_id": principal.account_id})


@routes.post("/api/v1/tokens")
@documented(
    "Issue an integration or tenant token (admin)",
    response={"type": "object"},
    status=201,
    body={
        "type": "object",
        "required": ["scope"],
        "properties": {
            "scope": {"type": "string", "enum": ["integration", "tenant"]},
            "account_id": {"type": "integer"},
            "name": {"type": "string"},
        },
    },
    errors=(400, 401, 403, 404, 422),
)
async def post_token(request: web.Request) -> web.Response:
    """Issue an integration or tenant token (admin)."""
    principal = require_scope(request, "admin")
    body = await json_body(request)
    result = await db_of(request).write(lambda s: create_token(s, body, principal.actor))
    return web.json_response(result, status=201)


@routes.delete("/api/v1/tokens/{id}")
@documented("Revoke a token (admin)", response={"type": "object"}, errors=(401, 403, 404, 422))
async def delete_token(request: web.Request) -> web.Response:
    """Revoke a token (admin)."""
    principal = require_scope(request, "admin")
    token_id = path_id(request)
    result = await db_of(request).write(lambda s: revoke_token(s, token_id, principal.actor))
    return web.json_response(result)


@routes.get("/api/v1/audit")
@documented("Audit log, newest first (admin)", response={"type": "object"}, params=(LIMIT,))
async def get_audit(request: web.Request) -> web.Response:
    """Handle the audit log, newest first (admin)."""
    require_scope(request, "admin")
    limit = limit_param(request)

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


@routes.get("/api/v1/webhook-rejections")
@documented(
    "Webhook deliveries that failed verification (admin)",
    response={"type": "object"},
    params=(LIMIT,),
)
async def get_webhook_rejections(request: web.Request) -> web.Response:
    """Handle listing webhook deliveries that failed verification, newest first (admin)."""
    require_scope(request, "admin")
    limit = limit_param(request)

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
