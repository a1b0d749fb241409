"""Routes for meters: create, list, read, guard limits, status, move to an account, re-base."""

from __future__ import annotations

from aiohttp import web
from prepaid_meter_contract.resources import Meter, Meters, MeterStatus

from prepaid_ledger.api.auth import require_account_access, require_scope
from prepaid_ledger.api.context import db_of
from prepaid_ledger.api.documented import TIME_IN, component, documented, id_query
from prepaid_ledger.api.http_helpers import json_body, path_id, query_int
from prepaid_ledger.services import meter_status, meters
from prepaid_ledger.store.models import utcnow

routes = web.RouteTableDef()


@routes.post("/api/v1/meters")
@documented(
    "Create a meter (admin)",
    response=Meter,
    status=201,
    body=component("MeterInput"),
    errors=(400, 401, 403, 409, 422),
)
async def post_meter(request: web.Request) -> web.Response:
    """Create a meter (admin)."""
    principal = require_scope(request, "admin")
    body = await json_body(request)
    result = await db_of(request).write(lambda s: meters.create_meter(s, body, principal.actor))
    return web.json_response(result, status=201)


@routes.get("/api/v1/meters")
@documented("List meters", response=Meters, params=(id_query("account"),))
async def get_meters(request: web.Request) -> web.Response:
    """List meters (optionally ?account=ID)."""
    principal = require_scope(request, "admin", "integration", "tenant")
    account_id = query_int(request, "account")
    if principal.scope == "tenant":
        account_id = principal.account_id
    result = await db_of(request).read(lambda s: meters.list_meters(s, account_id))
    return web.json_response({"meters": result})


@routes.get("/api/v1/meters/{id}")
@documented("One meter", response=Meter, errors=(401, 403, 404, 422))
async def get_meter(request: web.Request) -> web.Response:
    """One meter."""
    principal = require_scope(request, "admin", "integration", "tenant")
    meter_id = path_id(request)
    meter = await db_of(request).read(lambda s: meters.get_meter(s, meter_id))
    require_account_access(principal, meter.account_id)
    return web.json_response(meters.meter_json(meter))


@routes.patch("/api/v1/meters/{id}")
@documented(
    "Change the reading guard's limits of a meter (admin)",
    response=Meter,
    body=component("MeterLimitsInput"),
    errors=(400, 401, 403, 404, 422),
)
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
@documented(
    "Cost so far, the current price and band, and the account's days left",
    response=MeterStatus,
    errors=(401, 403, 404, 422),
)
async def get_meter_status(request: web.Request) -> web.Response:
    """Cost so far, the current price and band, and the account's days left."""
    principal = require_scope(request, "admin", "integration", "tenant")
    meter_id = path_id(request)
    result = await db_of(request).read(lambda s: meter_status.meter_status(s, meter_id, utcnow()))
    require_account_access(principal, result["account_id"])
    return web.json_response(result)


@routes.post("/api/v1/meters/{id}/assign")
@documented(
    "Move a meter to another account from a time on (admin)",
    response=Meter,
    body={
        "type": "object",
        "required": ["account_id"],
        "properties": {
            "account_id": {"type": "integer"},
            "tariff_id": {"type": "integer"},
            "from": TIME_IN,
        },
    },
    errors=(400, 401, 403, 404, 409, 422),
)
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
@documented(
    "Re-base a meter after a register replacement (admin)",
    response=Meter,
    body={
        "type": "object",
        "required": ["new_start_value"],
        "properties": {
            "new_start_value": {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
            "at": TIME_IN,
        },
    },
    errors=(400, 401, 403, 404, 422),
)
async def post_meter_replace(request: web.Request) -> web.Response:
    """Re-base a meter after a register replacement (admin)."""
    principal = require_scope(request, "admin")
    meter_id = path_id(request)
    body = await json_body(request)
    result = await db_of(request).write(
        lambda s: meters.replace_register(s, meter_id, body, principal.actor)
    )
    return web.json_response(result)
