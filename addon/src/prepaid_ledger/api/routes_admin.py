"""Routes for identity and administration: health, whoami, tokens, audit log, rejected webhooks."""

from __future__ import annotations

from aiohttp import web
from prepaid_meter_contract.admin import (
    AuditEntry,
    AuditLog,
    IssuedToken,
    RevokedToken,
    TokenRequest,
    WebhookRejection,
    WebhookRejections,
)
from prepaid_meter_contract.resources import Health, WhoAmI
from prepaid_meter_contract.vocabulary import Scope
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger import __version__
from prepaid_ledger.api.auth import principal_of, require_scope
from prepaid_ledger.api.context import db_of, state_of
from prepaid_ledger.api.documented import CURSOR, LIMIT, documented, search_param
from prepaid_ledger.api.http_helpers import limit_param, model_response, parse_body, path_id
from prepaid_ledger.services.paging import (
    Order,
    contains,
    cut_page,
    decode_cursor,
    page_query,
    search_text,
)
from prepaid_ledger.services.tokens import create_token, revoke_token
from prepaid_ledger.store import models

routes = web.RouteTableDef()


@routes.get("/api/v1/health")
@documented("Liveness and the ledger's identity", response=Health, errors=(), secured=False)
async def health(request: web.Request) -> web.Response:
    """Liveness plus the ledger's identity (no auth)."""
    answer = Health(status="ok", version=__version__, ledger_id=state_of(request.app).ledger_id)
    return model_response(answer)


@routes.get("/api/v1/whoami")
@documented("The caller's scope", response=WhoAmI, errors=(401,))
async def whoami(request: web.Request) -> web.Response:
    """Handle the caller's scope and account."""
    principal = principal_of(request)
    return model_response(
        WhoAmI(
            scope=Scope(principal.scope),
            account_id=principal.account_id,
            site_id=principal.site_id,
        )
    )


@routes.post("/api/v1/tokens")
@documented(
    "Issue an integration or tenant token (admin)",
    response=IssuedToken,
    status=201,
    body=TokenRequest,
    errors=(400, 401, 403, 404, 422),
)
async def post_token(request: web.Request) -> web.Response:
    """Issue an integration or tenant token (admin)."""
    principal = require_scope(request, "admin")
    wanted = await parse_body(request, TokenRequest)
    issued = await db_of(request).write(lambda s: create_token(s, wanted, principal.actor))
    return model_response(issued, status=201)


@routes.delete("/api/v1/tokens/{id}")
@documented("Revoke a token (admin)", response=RevokedToken, errors=(401, 403, 404, 422))
async def delete_token(request: web.Request) -> web.Response:
    """Revoke a token (admin)."""
    principal = require_scope(request, "admin")
    token_id = path_id(request)
    return model_response(
        await db_of(request).write(lambda s: revoke_token(s, token_id, principal.actor))
    )


NEWEST_AUDIT = Order("audit:newest", (models.AuditLog.id,), descending=True)


@routes.get("/api/v1/audit")
@documented(
    "Audit log, newest first, searchable by who, what and on what (admin)",
    response=AuditLog,
    params=(
        search_param("text in the actor, the action or the target, e.g. account:12"),
        CURSOR,
        LIMIT,
    ),
    errors=(401, 403, 422),
)
async def get_audit(request: web.Request) -> web.Response:
    """Handle the audit log, newest first, one page at a time (admin)."""
    require_scope(request, "admin")
    limit = limit_param(request)
    search, cursor = search_text(request.query.get("q")), request.query.get("cursor")
    after = decode_cursor(NEWEST_AUDIT, cursor)

    async def work(session: AsyncSession) -> AuditLog:
        table = models.AuditLog
        query = select(table)
        if search:
            pattern = contains(search)
            query = query.where(
                or_(
                    *(
                        c.like(pattern, escape="\\")
                        for c in (table.actor, table.action, table.target)
                    )
                )
            )
        rows = list(await session.scalars(page_query(query, NEWEST_AUDIT, after, limit)))
        page = cut_page(rows, NEWEST_AUDIT, limit, key=lambda row: (row.id,))
        return AuditLog(
            entries=[
                AuditEntry(
                    id=row.id,
                    at=row.at,
                    actor=row.actor,
                    action=row.action,
                    target=row.target,
                    before=row.before,
                    after=row.after,
                )
                for row in page.rows
            ],
            next_cursor=page.next_cursor,
        )

    return model_response(await db_of(request).read(work))


@routes.get("/api/v1/webhook-rejections")
@documented(
    "Webhook deliveries that failed verification (admin)",
    response=WebhookRejections,
    params=(LIMIT,),
)
async def get_webhook_rejections(request: web.Request) -> web.Response:
    """Handle listing webhook deliveries that failed verification, newest first (admin)."""
    require_scope(request, "admin")
    limit = limit_param(request)

    async def work(session: AsyncSession) -> WebhookRejections:
        table = models.WebhookRejection
        newest = select(table).order_by(table.id.desc()).limit(limit)
        return WebhookRejections(
            rejections=[
                WebhookRejection(
                    id=row.id,
                    provider=row.provider,
                    reason=row.reason,
                    body_sha256=row.body_sha256,
                    received_at=row.received_at,
                )
                for row in await session.scalars(newest)
            ]
        )

    return model_response(await db_of(request).read(work))
