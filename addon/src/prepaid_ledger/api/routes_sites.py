"""Routes for sites (buildings with their own Home Assistant) and the overview (admin)."""

from __future__ import annotations

from aiohttp import web
from prepaid_meter_contract.overview import Overview
from prepaid_meter_contract.sites import Site, SiteInput, Sites

from prepaid_ledger.api.auth import require_scope
from prepaid_ledger.api.context import db_of, settings_of
from prepaid_ledger.api.documented import documented, id_query
from prepaid_ledger.api.http_helpers import model_response, parse_body, query_int
from prepaid_ledger.services import sites
from prepaid_ledger.services.overview import build_overview
from prepaid_ledger.store.models import utcnow

routes = web.RouteTableDef()


@routes.post("/api/v1/sites")
@documented(
    "Add a site: a building whose own Home Assistant gets a token bound to it (admin)",
    response=Site,
    status=201,
    body=SiteInput,
    errors=(400, 401, 403, 409, 422),
)
async def post_site(request: web.Request) -> web.Response:
    """Add a site (admin); issue its token with POST /api/v1/tokens and its site_id."""
    principal = require_scope(request, "admin")
    wanted = await parse_body(request, SiteInput)
    made = await db_of(request).write(lambda s: sites.create_site(s, wanted, principal.actor))
    return model_response(made, status=201)


@routes.get("/api/v1/sites")
@documented("Sites with their open accounts and how many are cut off (admin)", response=Sites)
async def get_sites(request: web.Request) -> web.Response:
    """List sites with their totals (admin)."""
    require_scope(request, "admin")
    return model_response(await db_of(request).read(sites.list_sites))


@routes.get("/api/v1/overview")
@documented(
    "This month's money in, consumption, rooms cut or low and orders needing a person, with "
    "the last 30 days (admin; ?site= for one site)",
    response=Overview,
    params=(id_query("site", "one site's figures (default: every site)"),),
    errors=(401, 403, 422),
)
async def get_overview(request: web.Request) -> web.Response:
    """Answer the landlord's overview, in the landlord's time zone (admin)."""
    require_scope(request, "admin")
    site_id = query_int(request, "site")
    timezone = settings_of(request).default_timezone
    return model_response(
        await db_of(request).read(
            lambda s: build_overview(s, site_id=site_id, timezone=timezone, now=utcnow())
        )
    )
