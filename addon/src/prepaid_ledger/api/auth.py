"""Bearer-token authentication and the three scopes: admin, integration, tenant."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.api.context import db_of
from prepaid_ledger.api.errors import ApiError, Handler
from prepaid_ledger.services.tokens import hash_token
from prepaid_ledger.store.models import ApiToken

PUBLIC_PATHS = frozenset({"/api/v1/health", "/api/v1/openapi.json"})
SCOPES = ("admin", "integration", "tenant")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: scope, the tenant's account, and the name used in the audit log."""

    scope: str
    account_id: int | None
    actor: str


def principal_of(request: web.Request) -> Principal:
    """Return the authenticated caller of a request."""
    principal = request.get("principal")
    if not isinstance(principal, Principal):
        raise ApiError(401, "unauthorized", "a bearer token is required")
    return principal


def require_scope(request: web.Request, *scopes: str) -> Principal:
    """Return the caller, if its scope is one of the given ones; 403 otherwise."""
    principal = principal_of(request)
    if principal.scope not in scopes:
        raise ApiError(403, "forbidden", f"this action needs scope {' or '.join(scopes)}")
    return principal


def require_account_access(principal: Principal, account_id: int) -> None:
    """Tenants see only their own account."""
    if principal.scope == "tenant" and principal.account_id != account_id:
        raise ApiError(403, "forbidden", "a tenant token can only read its own account")


SESSION_COOKIE = "prepaid_ledger_session"
CSRF_HEADER = "X-Requested-With"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_value(admin_token: str) -> str:
    """Return the landlord's browser-session cookie value: a MAC of the admin token.

    Changing the admin token ends every browser session; the token itself never leaves the
    login form.
    """
    return hmac.new(admin_token.encode(), b"prepaid-ledger web session", "sha256").hexdigest()


def browser_principal(
    request: web.Request, admin_token: str, ingress_proxy: str | None
) -> Principal | None:
    """Return the admin reaching the web UI through ingress or with a session cookie, or None.

    Ingress is trusted only from the Supervisor's address (Home Assistant has authenticated the
    user and only admins see add-on panels); anywhere else the login cookie is required.
    """
    if (
        ingress_proxy is not None
        and request.remote == ingress_proxy
        and "X-Ingress-Path" in request.headers
    ):
        user = request.headers.get("X-Remote-User-Name") or "home assistant"
        return Principal("admin", None, f"ingress:{user[:40]}")
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if cookie and hmac.compare_digest(cookie.encode(), session_value(admin_token).encode()):
        return Principal("admin", None, "admin:web")
    return None


def auth_middleware_factory(admin_token: str, ingress_proxy: str | None = None) -> Any:
    """Build the middleware that authenticates everything under /api/v1 but health and docs."""

    @web.middleware
    async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/") or request.path in PUBLIC_PATHS:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        if not header:
            browser = browser_principal(request, admin_token, ingress_proxy)
            if browser is not None:
                # A cross-site form cannot set this header: no CSRF through the cookie.
                if request.method not in _SAFE_METHODS and CSRF_HEADER not in request.headers:
                    raise ApiError(403, "forbidden", f"browser requests need {CSRF_HEADER}")
                request["principal"] = browser
                return await handler(request)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "unauthorized", "missing bearer token")
        if hmac.compare_digest(token.encode(), admin_token.encode()):
            request["principal"] = Principal("admin", None, "admin")
            return await handler(request)
        db = db_of(request)
        digest = hash_token(token)

        async def lookup(session: AsyncSession) -> ApiToken | None:
            found: ApiToken | None = await session.scalar(
                select(ApiToken).where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
            )
            return found

        row = await db.read(lookup)
        if row is None:
            raise ApiError(401, "unauthorized", "invalid or revoked token")
        request["principal"] = Principal(row.scope, row.account_id, f"token:{row.id}")
        return await handler(request)

    return auth_middleware
