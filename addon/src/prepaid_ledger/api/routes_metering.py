"""Routes for tariffs, meters and reading ingestion."""

from __future__ import annotations

from aiohttp import web
from prepaid_meter_contract.readings import ReadingsBatch

from prepaid_ledger.api.auth import (
    require_account_access,
    require_scope,
)
from prepaid_ledger.api.context import db_of
from prepaid_ledger.api.http_helpers import json_body, parse_body, path_id, query_int
from prepaid_ledger.services import held_readings, meter_status, meters, readings, tariffs
from prepaid_ledger.store.models import utcnow

routes = web.RouteTableDef()


@routes.post("/api/v1/tariffs")
async def post_tariff(request: web.Request) -> web.Response:
    """Create a tariff (admin)."""
    principal = require_scope(request, "admin")
    body = await json_body(request)
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
    tariff_id = path_id(request)
    return web.json_response(await db_of(request).read(lambda s: tariffs.get_tariff(s, tariff_id)))


@routes.post("/api/v1/tariffs/{id}/versions")
async def post_tariff_version(request: web.Request) -> web.Response:
    """Handle a price change effective from a time (admin)."""
    principal = require_scope(request, "admin")
    tariff_id = path_id(request)
    body = await json_body(request)
    result = await db_of(request).write(
        lambda s: tariffs.add_version(s, tariff_id, body, principal.actor)
    )
    return web.json_response(result, status=201)


@routes.post("/api/v1/meters")
async def post_meter(request: web.Request) -> web.Response:
    """Create a meter (admin)."""
    principal = require_scope(request, "admin")
    body = await json_body(request)
    result = await db_of(request).write(lambda s: meters.create_meter(s, body, principal.actor))
    return web.json_response(result, status=201)


@routes.get("/api/v1/meters")
async def get_meters(request: web.Request) -> web.Response:
    """List meters (optionally ?account=ID)."""
    principal = require_scope(request, "admin", "integration", "tenant")
    account_id = query_int(request, "account")
    if principal.scope == "tenant":
        account_id = principal.account_id
    result = await db_of(request).read(lambda s: meters.list_meters(s, account_id))
    return web.json_response({"meters": result})


@routes.get("/api/v1/meters/{id}")
async def get_meter(request: web.Request) -> web.Response:
    """One meter."""
    principal = require_scope(request, "admin", "integration", "tenant")
    meter_id = path_id(request)
    meter = await db_of(request).read(lambda s: meters.get_meter(s, meter_id))
    require_account_access(principal, meter.account_id)
    return web.json_response(meters.meter_json(meter))


@routes.patch("/api/v1/meters/{id}")
async def patch_meter(request: web.Request) -> web.Response:
    """Change the reading guard's limits: model, max_power, register_modulus (admin)."""
    principal = require_scope(request, "admin")
    meter_id = path_id(request)
    body = await json_body(request)
    result = await db_of(request).write(
        lambda s: meters.update_limits(s, meter_id, body, principal.actor)
    )
    return web.json_response(result)


@routes.get("/api/v1/meters/{id}/status")
async def get_meter_status(request: web.Request) -> web.Response:
    """Cost so far, the current price and band, and the account's days left."""
    principal = require_scope(request, "admin", "integration", "tenant")
    meter_id = path_id(request)
    result = await db_of(request).read(lambda s: meter_status.meter_status(s, meter_id, utcnow()))
    require_account_access(principal, result["account_id"])
    return web.json_response(result)


@routes.post("/api/v1/meters/{id}/assign")
async def post_meter_assign(request: web.Request) -> web.Response:
    """Move a meter to another account from a time on (admin)."""
    principal = require_scope(request, "admin")
    meter_id = path_id(request)
    body = await json_body(request)
    result = await db_of(request).write(
        lambda s: meters.assign_meter(s, meter_id, body, principal.actor)
    )
    return web.json_response(result)


@routes.post("/api/v1/meters/{id}/replace")
async def post_meter_replace(request: web.Request) -> web.Response:
    """Re-base a meter after a register replacement (admin)."""
    principal = require_scope(request, "admin")
    meter_id = path_id(request)
    body = await json_body(request)
    result = await db_of(request).write(
        lambda s: meters.replace_register(s, meter_id, body, principal.actor)
    )
    return web.json_response(result)


@routes.post("/api/v1/readings")
async def post_readings(request: web.Request) -> web.Response:
    """Ingest a batch of readings (admin, integration)."""
    principal = require_scope(request, "admin", "integration")
    batch = await parse_body(request, ReadingsBatch)  # bad input fails before the write lock
    result = await db_of(request).write(lambda s: readings.ingest(s, batch, principal.actor))
    return web.json_response(result.model_dump(mode="json"))


@routes.get("/api/v1/readings/held")
async def get_held_readings(request: web.Request) -> web.Response:
    """List the readings the guard held, oldest first (admin, integration)."""
    require_scope(request, "admin", "integration")
    meter_id = query_int(request, "meter")
    result = await db_of(request).read(lambda s: held_readings.list_held(s, meter_id))
    return web.json_response({"readings": result})


@routes.post("/api/v1/readings/{id}/resolve")
async def post_resolve_reading(request: web.Request) -> web.Response:
    """Accept, reject or re-base from a held reading, with a reason (admin, integration)."""
    principal = require_scope(request, "admin", "integration")
    reading_id = path_id(request)
    body = await json_body(request)
    result = await db_of(request).write(
        lambda s: held_readings.resolve(s, reading_id, body, principal.actor)
    )
    return web.json_response(result)
