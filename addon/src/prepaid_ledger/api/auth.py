"""Bearer-token authentication and the three scopes: admin, integration, tenant."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.api import throttle
from prepaid_ledger.api.context import db_of, settings_of
from prepaid_ledger.api.error_middleware import Handler, error_response
from prepaid_ledger.config import Settings
from prepaid_ledger.errors import ApiError, NotFoundError
from prepaid_ledger.services import sites, web_sessions
from prepaid_ledger.services.tokens import hash_token
from prepaid_ledger.store.models import DEFAULT_SITE_ID, ApiToken, utcnow

PUBLIC_PATHS = frozenset({"/api/v1/health", "/api/v1/openapi.json"})
SCOPES = ("admin", "integration", "tenant")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: scope, the tenant's account, and the name used in the audit log.

    ``site_id``: the one site an integration token reads and posts for (None: every site).
    """

    scope: str
    account_id: int | None
    actor: str
    site_id: int | None = None


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


async def require_visible(
    request: web.Request, principal: Principal, account_id: int | None, what: str
) -> None:
    """Tenants see only their own account; a site's token only its site's (else WHAT is 404).

    A row of another site answers exactly like one that does not exist.
    """
    if account_id is not None:
        require_account_access(principal, account_id)
    if principal.site_id is None:
        return
    if account_id is None:  # an order no account claims: the landlord's own site's (site 1)
        if principal.site_id == DEFAULT_SITE_ID:
            return
        raise NotFoundError(what)
    try:
        await db_of(request).read(
            lambda s: sites.check_accounts(s, principal.site_id, [account_id])
        )
    except NotFoundError:
        raise NotFoundError(what) from None


SESSION_COOKIE = "prepaid_ledger_session"
CSRF_HEADER = "X-Requested-With"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SAME_SITE_FETCH = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _from_trusted_proxy(request: web.Request, settings: Settings) -> bool:
    return request.remote is not None and request.remote in settings.trusted_proxies


def _first_forwarded(request: web.Request, name: str) -> str:
    return request.headers.get(name, "").split(",")[0].strip().lower()


def _arrived_over_https(request: web.Request, settings: Settings) -> bool:
    """Whether this request came over TLS, directly or through a trusted proxy.

    X-Forwarded-Proto is believed only from a configured trusted proxy.
    """
    return request.secure or (
        _from_trusted_proxy(request, settings)
        and _first_forwarded(request, "X-Forwarded-Proto") == "https"
    )


def is_https(request: web.Request, settings: Settings) -> bool:
    """Whether the session cookie must be Secure: https here, or an https public address."""
    public = (settings.public_base_url or "").lower()
    return public.startswith("https://") or _arrived_over_https(request, settings)


def _origin(scheme: str, host: str) -> str:
    """scheme://host[:port] in lower case, without the scheme's default port."""
    scheme, host = scheme.lower(), host.lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default and host.endswith(":" + default):
        host = host[: -len(default) - 1]
    return f"{scheme}://{host}"


def own_origins(request: web.Request, settings: Settings) -> set[str]:
    """Return the origins our pages can have: this request's, a trusted proxy's, the public one."""
    scheme = "https" if _arrived_over_https(request, settings) else request.scheme
    origins = {_origin(scheme, request.host)}
    if _from_trusted_proxy(request, settings):
        forwarded_host = _first_forwarded(request, "X-Forwarded-Host")
        if forwarded_host:
            origins.add(_origin(scheme, forwarded_host))
    if settings.public_base_url:
        public = urlsplit(settings.public_base_url)
        if public.scheme and public.netloc:
            origins.add(_origin(public.scheme, public.netloc))
    return origins


def cross_site_reason(
    request: web.Request, settings: Settings, *, check_origin: bool
) -> str | None:
    """Return why a state-changing browser request is not from our own pages, or None.

    Sec-Fetch-Site (set by the browser, not by scripts) must be same-origin or none when
    present; with CHECK_ORIGIN an Origin header, when present, must be one of own_origins
    (``null``, which our no-referrer pages make browsers send, leaves it to Sec-Fetch-Site).
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.strip().lower() not in _SAME_SITE_FETCH:
        return f"a {fetch_site[:20]} request cannot change anything here"
    origin = request.headers.get("Origin")
    if check_origin and origin is not None and origin.strip().lower() == "null":
        # Our pages send no referrer, so a browser's own form post says "Origin: null": then
        # Sec-Fetch-Site (which a page cannot forge) is what tells, and without it nothing does.
        if fetch_site is None:
            return "a request of unknown origin cannot change anything here"
        origin = None
    if (
        check_origin
        and origin is not None
        and _normalised(origin) not in own_origins(request, settings)
    ):
        return "requests from another origin cannot change anything here"
    return None


def _normalised(origin: str) -> str:
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return ""  # matches no origin of ours
    return _origin(parts.scheme, parts.netloc)


def session_policy(settings: Settings) -> web_sessions.SessionPolicy:
    """Return the browser-session rules in force (admin token, idle and absolute lifetimes)."""
    return web_sessions.SessionPolicy(
        settings.admin_token, settings.session_idle_s, settings.session_absolute_s
    )


def trusted_ingress(request: web.Request, ingress_proxy: str | None) -> bool:
    """Whether the request came through Home Assistant's ingress (the Supervisor's address)."""
    return (
        ingress_proxy is not None
        and request.remote == ingress_proxy
        and "X-Ingress-Path" in request.headers
    )


async def session_principal(request: web.Request, settings: Settings) -> Principal | None:
    """Return the admin of a live browser session (cookie), or None; ends an expired one."""
    session_id = request.cookies.get(SESSION_COOKIE, "")
    if not session_id:
        return None
    db = db_of(request)
    policy = session_policy(settings)
    now = utcnow()
    verdict = await db.read(lambda s: web_sessions.check(s, session_id, policy, now))
    if verdict is web_sessions.Verdict.EXPIRED:
        await db.write(lambda s: web_sessions.end(s, session_id))
        return None
    if verdict is web_sessions.Verdict.UNKNOWN:
        return None
    if verdict is web_sessions.Verdict.VALID_STALE:
        await db.write(lambda s: web_sessions.touch(s, session_id, now))
    return Principal("admin", None, "admin:web")


async def browser_principal(request: web.Request, settings: Settings) -> Principal | None:
    """Return the admin reaching the web UI through ingress or with a session cookie, or None.

    Ingress is trusted only from the Supervisor's address (Home Assistant has authenticated the
    user and only admins see add-on panels); anywhere else a live login session is required.
    """
    if trusted_ingress(request, settings.ingress_proxy):
        user = request.headers.get("X-Remote-User-Name") or "home assistant"
        return Principal("admin", None, f"ingress:{user[:40]}")
    return await session_principal(request, settings)


def too_many_attempts(retry_after: int) -> web.Response:
    """429 in the JSON error format, with Retry-After."""
    response = error_response(429, "too_many_attempts", throttle.too_many_message(retry_after))
    response.headers["Retry-After"] = str(retry_after)
    return response


def auth_middleware_factory(admin_token: str, ingress_proxy: str | None = None) -> Any:
    """Build the middleware that authenticates everything under /api/v1 but health and docs.

    Browser-session and ingress rules, throttling and lifetimes come from the app's settings
    (admin_token and ingress_proxy are the same values, kept for the caller's signature).
    """

    @web.middleware
    async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/") or request.path in PUBLIC_PATHS:
            return await handler(request)
        settings = settings_of(request)
        header = request.headers.get("Authorization", "")
        if not header:
            browser = await browser_principal(request, settings)
            if browser is not None:
                if request.method not in _SAFE_METHODS:
                    # A cross-site form cannot set this header: no CSRF through the cookie.
                    if CSRF_HEADER not in request.headers:
                        raise ApiError(403, "forbidden", f"browser requests need {CSRF_HEADER}")
                    # Through ingress the Host is the add-on's, not the page's: Origin can
                    # only be compared for the cookie session.
                    reason = cross_site_reason(
                        request, settings, check_origin=browser.actor == "admin:web"
                    )
                    if reason is not None:
                        raise ApiError(403, "forbidden", reason)
                request["principal"] = browser
                return await handler(request)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "unauthorized", "missing bearer token")
        tracker = throttle.tracker_of(request.app)
        address = throttle.client_address(request, settings.trusted_proxies)
        wait = tracker.retry_after(address)
        if wait is not None:
            return too_many_attempts(wait)
        raw = token.encode("utf-8", "surrogatepass")
        if hmac.compare_digest(raw, admin_token.encode("utf-8", "surrogatepass")):
            tracker.success(address)
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
            tracker.failure(address)
            raise ApiError(401, "unauthorized", "invalid or revoked token")
        tracker.success(address)
        request["principal"] = Principal(
            row.scope,
            row.account_id,
            f"token:{row.id}",
            row.site_id if row.scope == "integration" else None,
        )
        return await handler(request)

    return auth_middleware
