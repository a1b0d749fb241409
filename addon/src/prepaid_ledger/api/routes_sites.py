"""Routes for sites: the buildings of a fleet, each with its own Home Assistant (admin)."""

from __future__ import annotations

from aiohttp import web
from prepaid_meter_contract.sites import Site, SiteInput, Sites

from prepaid_ledger.api.auth import require_scope
from prepaid_ledger.api.context import db_of
from prepaid_ledger.api.documented import documented
from prepaid_ledger.api.http_helpers import model_response, parse_body
from prepaid_ledger.services import sites

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
