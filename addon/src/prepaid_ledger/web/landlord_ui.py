"""The landlord's web UI: served by the ledger, reached through ingress or with an admin login.

The page is a server-rendered template and one local script (Home Assistant instances are often
offline: no CDN); it speaks the reader's language (web/i18n.py): the template's texts through
``_()``, the script's through its ``t()`` with the catalog handed over in a JSON data block
(``<script type="application/json">`` is never executed, so ``script-src 'self'`` holds). The
script calls the same JSON API as everyone else, with paths relative to the page so
the ingress prefix (`X-Ingress-Path`) just works, and follows the event stream to stay live.
Sign-in starts a server-side session (services/web_sessions.py); failed sign-ins are throttled
per client address (api/throttle.py).
"""

from __future__ import annotations

import hmac
import re
from functools import cache
from importlib import resources
from typing import Final

from aiohttp import web
from babel.messages.extract import extract
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.api import throttle
from prepaid_ledger.api.auth import (
    SESSION_COOKIE,
    browser_principal,
    cross_site_reason,
    is_https,
    session_policy,
    trusted_ingress,
)
from prepaid_ledger.api.context import db_of, settings_of
from prepaid_ledger.errors import ApiError
from prepaid_ledger.services import web_sessions
from prepaid_ledger.store.models import utcnow
from prepaid_ledger.web import vendor_assets
from prepaid_ledger.web.i18n import (
    LOCALES,
    N_,
    NP_,
    Speaker,
    Words,
    catalog,
    negotiate,
    remember,
    speaker,
)
from prepaid_ledger.web.templates import render

routes = web.RouteTableDef()
_FILES = resources.files("prepaid_ledger.web")
_ASSETS = {
    "landlord.js": "text/javascript",
    "landlord_settings.js": "text/javascript",
    "landlord_overview.js": "text/javascript",
    "landlord_moves.js": "text/javascript",
    "landlord_room.js": "text/javascript",
    "charts.js": "text/javascript",
    "style.css": "text/css",
    "landlord.css": "text/css",
    "voucher_cards.css": "text/css",
}
_CSP = (
    "default-src 'self'; script-src 'self'; object-src 'none'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors {ancestors}"
)
_INGRESS_PATH = re.compile(r"/api/hassio_ingress/[A-Za-z0-9_-]+")
MAX_LOGIN_FIELD = 500
#: The sign-in page's words for a locked-out address (the API says throttle.too_many_message).
_TOO_MANY = NP_(
    "Too many failed attempts from this address; try again in %(count)s second.",
    "Too many failed attempts from this address; try again in %(count)s seconds.",
)


def _security_headers(through_ingress: bool) -> dict[str, str]:
    """No caching, no sniffing, scripts only from here; framing only inside Home Assistant."""
    return {
        "Cache-Control": "no-store",
        "Content-Security-Policy": _CSP.format(ancestors="'self'" if through_ingress else "'none'"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


#: The landlord page's scripts: their ``t("...")`` texts reach the page in its language.
SCRIPTS: Final = (
    "landlord.js",
    "landlord_settings.js",
    "landlord_overview.js",
    "landlord_moves.js",
    "landlord_room.js",
)


@cache
def script_texts() -> frozenset[str]:
    """Return every text the page's scripts say through ``t("...")`` (as translations finds)."""
    texts: set[str] = set()
    for name in SCRIPTS:
        with _FILES.joinpath(name).open("rb") as script:
            found = extract("javascript", script, keywords={"t": None})
            texts.update(text for _at, text, _notes, _context in found if isinstance(text, str))
    return frozenset(texts)


def script_catalog(reader: Speaker) -> dict[str, object]:
    """Return the script's words in READER's language: its locale and each translated text."""
    translations = catalog(reader.locale)
    messages: dict[str, str] = {}
    for text in sorted(script_texts()):
        said = translations.gettext(text)
        if said != text:
            messages[text] = said
    return {"locale": reader.html_lang, "messages": messages}


def _page(
    name: str, request: web.Request, *, here: str, status: int = 200, **values: object
) -> web.Response:
    """Render the page NAME in the reader's language; HERE is its address relative to <base>."""
    settings = settings_of(request)
    through_ingress = trusted_ingress(request, settings.ingress_proxy)
    base = "/"
    if through_ingress:
        # Only the Supervisor's header, and only its shape, can become the page's base.
        ingress_path = request.headers.get("X-Ingress-Path", "").rstrip("/")
        if _INGRESS_PATH.fullmatch(ingress_path):
            base = ingress_path + "/"
    locale = negotiate(request)
    reader = speaker(locale)
    text = render(
        name,
        reader=reader,
        base=base,
        currency=settings.default_currency,
        timezone=settings.default_timezone,
        # Empty when unset: the page then says pay links need it instead of offering one.
        public_base_url=settings.public_base_url or "",
        languages=reader.choices({code: f"{here}?lang={code}" for code in LOCALES}),
        script_words=script_catalog(reader),
        vendor_version=vendor_assets.version(),
        **values,
    )
    response = web.Response(
        text=text,
        status=status,
        content_type="text/html",
        headers=_security_headers(through_ingress),
    )
    remember(request, response, locale)
    return response


def _login_page(request: web.Request, status: int, error: Words | str) -> web.Response:
    reader = speaker(negotiate(request))
    return _page("login.html", request, here="login", status=status, error=reader.say(error))


@routes.get("/")
async def landlord_home(request: web.Request) -> web.StreamResponse:
    """Show the landlord UI, or send a browser without a session to the login page."""
    if await browser_principal(request, settings_of(request)) is None:
        raise web.HTTPSeeOther("login")
    return _page("landlord.html", request, here="./")


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    """Show the admin login (outside Home Assistant's ingress)."""
    return _login_page(request, 200, "")


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    """Check the admin token and start a new server-side session (HttpOnly, SameSite=Strict).

    Attempts from an address that failed too often are refused before the form is read.
    """
    settings = settings_of(request)
    if cross_site_reason(request, settings, check_origin=False) is not None:
        refused = Words(N_("Sign in from this page, not from another site."))
        return _login_page(request, 403, refused)
    tracker = throttle.tracker_of(request.app)
    address = throttle.client_address(request, settings.trusted_proxies)
    wait = tracker.retry_after(address)
    if wait is not None:
        response = _login_page(request, 429, Words.counted(_TOO_MANY, wait, {"count": wait}))
        response.headers["Retry-After"] = str(wait)
        return response
    try:
        form = await request.post()
    except ValueError:  # UnicodeDecodeError included: the body is not UTF-8
        return _login_page(
            request, 400, Words(N_("The form could not be read; type the token again."))
        )
    raw = form.get("token")
    token = raw.strip() if isinstance(raw, str) and len(raw) <= MAX_LOGIN_FIELD else ""
    expected = settings.admin_token.encode("utf-8", "surrogatepass")
    if not token or not hmac.compare_digest(token.encode("utf-8", "surrogatepass"), expected):
        tracker.failure(address)
        return _login_page(request, 401, Words(N_("That is not the admin token.")))
    tracker.success(address)
    policy = session_policy(settings)
    previous = request.cookies.get(SESSION_COOKIE, "")
    now = utcnow()

    async def rotate(session: AsyncSession) -> str:
        if previous:
            await web_sessions.end(session, previous)  # a cookie set beforehand is never kept
        return await web_sessions.start(session, policy, now)

    session_id = await db_of(request).write(rotate)
    response = web.HTTPSeeOther("./")
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        samesite="Strict",
        secure=is_https(request, settings),
        path="/",
    )
    raise response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    """End the browser session on the server and clear its cookie (own pages only)."""
    settings = settings_of(request)
    # Through ingress the Host is the add-on's, not the page's: no Origin to compare there.
    check_origin = not trusted_ingress(request, settings.ingress_proxy)
    reason = cross_site_reason(request, settings, check_origin=check_origin)
    if reason is not None:
        raise ApiError(403, "forbidden", reason)
    session_id = request.cookies.get(SESSION_COOKIE, "")
    if session_id:
        await db_of(request).write(lambda s: web_sessions.end(s, session_id))
    response = web.HTTPSeeOther("login")
    response.del_cookie(
        SESSION_COOKIE,
        path="/",
        secure=is_https(request, settings),
        httponly=True,
        samesite="Strict",
    )
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


# The chart library (web/vendor/, pinned): kept a year, its address changes with its content.
routes.get("/ui/vendor/{name}")(vendor_assets.serve)
