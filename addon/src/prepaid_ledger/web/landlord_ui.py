"""The landlord's web UI: served by the ledger, reached through ingress or with an admin login.

The page is static HTML and one local script (Home Assistant instances are often offline: no
CDN); the script calls the same JSON API as everyone else, with paths relative to the page so
the ingress prefix (`X-Ingress-Path`) just works, and follows the event stream to stay live.
"""

from __future__ import annotations

import hmac
import html
from importlib import resources

from aiohttp import web

from prepaid_ledger.api.auth import SESSION_COOKIE, browser_principal, session_value
from prepaid_ledger.api.context import settings_of

routes = web.RouteTableDef()
_FILES = resources.files("prepaid_ledger.web")
_ASSETS = {"landlord.js": "text/javascript", "style.css": "text/css", "landlord.css": "text/css"}
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "base-uri 'self'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
}
MAX_LOGIN_FIELD = 500


def _page(name: str, request: web.Request, **values: str) -> web.Response:
    base = request.headers.get("X-Ingress-Path", "").rstrip("/") + "/"
    settings = settings_of(request)
    text = _FILES.joinpath(name).read_text(encoding="utf-8")
    replacements = {
        "base": base,
        "currency": settings.default_currency,
        "timezone": settings.default_timezone,
        # Empty when unset: the page then says pay links need it instead of offering one.
        "public_base_url": settings.public_base_url or "",
    } | values
    for key, value in replacements.items():
        text = text.replace("{{" + key + "}}", html.escape(value, quote=True))
    return web.Response(text=text, content_type="text/html", headers=_SECURITY_HEADERS)


def _authenticated(request: web.Request) -> bool:
    settings = settings_of(request)
    return browser_principal(request, settings.admin_token, settings.ingress_proxy) is not None


@routes.get("/")
async def landlord_home(request: web.Request) -> web.StreamResponse:
    """Show the landlord UI, or send a browser without a session to the login page."""
    if not _authenticated(request):
        raise web.HTTPSeeOther("login")
    return _page("landlord.html", request)


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    """Show the admin login (outside Home Assistant's ingress)."""
    return _page("login.html", request, error="")


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    """Check the admin token and start a browser session (HttpOnly, SameSite=Strict)."""
    settings = settings_of(request)
    form = await request.post()
    raw = form.get("token")
    token = raw.strip() if isinstance(raw, str) and len(raw) <= MAX_LOGIN_FIELD else ""
    if not token or not hmac.compare_digest(token.encode(), settings.admin_token.encode()):
        response = _page("login.html", request, error="That is not the admin token.")
        response.set_status(401)
        return response
    response = web.HTTPSeeOther("./")
    response.set_cookie(
        SESSION_COOKIE,
        session_value(settings.admin_token),
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )
    raise response


@routes.post("/logout")
async def logout(_request: web.Request) -> web.StreamResponse:
    """End the browser session."""
    response = web.HTTPSeeOther("login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


@routes.get("/ui/{name}")
async def asset(request: web.Request) -> web.Response:
    """Serve the UI's own script and stylesheets (packaged with the ledger)."""
    name = request.match_info["name"]
    if name not in _ASSETS:
        raise web.HTTPNotFound(text="no such asset")
    body = _FILES.joinpath(name).read_text(encoding="utf-8")
    return web.Response(
        text=body, content_type=_ASSETS[name], headers={"Cache-Control": "no-cache"}
    )
