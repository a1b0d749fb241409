"""Routes for tariffs and their price versions."""

from __future__ import annotations

from aiohttp import web
from prepaid_meter_contract.tariffs import Tariff, TariffInput, Tariffs

from prepaid_ledger.api.auth import require_scope
from prepaid_ledger.api.context import db_of
from prepaid_ledger.api.documented import documented
from prepaid_ledger.api.http_helpers import model_response, parse_body, path_id
from prepaid_ledger.services import tariffs

routes = web.RouteTableDef()


@routes.post("/api/v1/tariffs")
@documented(
    "Create a tariff (admin)",
    response=Tariff,
    status=201,
    body=TariffInput,
    errors=(400, 401, 403, 422),
)
async def post_tariff(request: web.Request) -> web.Response:
    """Create a tariff (admin)."""
    principal = require_scope(request, "admin")
    body = await parse_body(request, TariffInput)
    result = await db_of(request).write(lambda s: tariffs.create_tariff(s, body, principal.actor))
    return model_response(result, status=201)


@routes.get("/api/v1/tariffs")
@documented("List tariffs", response=Tariffs)
async def get_tariffs(request: web.Request) -> web.Response:
    """List tariffs."""
    require_scope(request, "admin", "integration")
    listed = Tariffs(tariffs=await db_of(request).read(tariffs.list_tariffs))
    return model_response(listed)


@routes.get("/api/v1/tariffs/{id}")
@documented("One tariff with its versions", response=Tariff, errors=(401, 403, 404, 422))
async def get_tariff(request: web.Request) -> web.Response:
    """One tariff with its versions."""
    require_scope(request, "admin", "integration", "tenant")
    tariff_id = path_id(request)
    tariff = await db_of(request).read(lambda s: tariffs.get_tariff(s, tariff_id))
    return model_response(tariff)


@routes.post("/api/v1/tariffs/{id}/versions")
@documented(
    "Add a price version effective from a time (admin)",
    response=Tariff,
    status=201,
    body=TariffInput,
    errors=(400, 401, 403, 404, 422),
)
async def post_tariff_version(request: web.Request) -> web.Response:
    """Handle a price change effective from a time (admin)."""
    principal = require_scope(request, "admin")
    tariff_id = path_id(request)
    body = await parse_body(request, TariffInput)
    result = await db_of(request).write(
        lambda s: tariffs.add_version(s, tariff_id, body, principal.actor)
    )
    return model_response(result, status=201)
