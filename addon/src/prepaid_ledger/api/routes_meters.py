"""Routes for meters: create, list, read, guard limits, status, move to an account, re-base."""

from __future__ import annotations

from aiohttp import web
from prepaid_meter_contract.meters import (
    AssignMeter,
    MeterInput,
    MeterLimitsChange,
    ReplaceRegister,
)
from prepaid_meter_contract.resources import Meter, Meters, MeterStatus

from prepaid_ledger.api.auth import require_scope, require_visible
from prepaid_ledger.api.context import db_of
from prepaid_ledger.api.documented import documented, id_query
from prepaid_ledger.api.http_helpers import model_response, parse_body, path_id, query_int
from prepaid_ledger.services import meter_status, meters
from prepaid_ledger.store.models import utcnow

routes = web.RouteTableDef()


@routes.post("/api/v1/meters")
@documented(
    "Create a meter (admin)",
    response=Meter,
    status=201,
    body=MeterInput,
    errors=(400, 401, 403, 409, 422),
)
async def post_meter(request: web.Request) -> web.Response:
    """Create a meter (admin)."""
    principal = require_scope(request, "admin")
    command = await parse_body(request, MeterInput)
    result = await db_of(request).write(lambda s: meters.create_meter(s, command, principal.actor))
    return model_response(result, status=201)


@routes.get("/api/v1/meters")
@documented("List meters", response=Meters, params=(id_query("account"),))
async def get_meters(request: web.Request) -> web.Response:
    """List meters (optionally ?account=ID)."""
    principal = require_scope(request, "admin", "integration", "tenant")
    account_id = query_int(request, "account")
    if principal.scope == "tenant":
        account_id = principal.account_id
    return model_response(
        await db_of(request).read(lambda s: meters.list_meters(s, account_id, principal.site_id))
    )


@routes.get("/api/v1/meters/{id}")
@documented("One meter", response=Meter, errors=(401, 403, 404, 422))
async def get_meter(request: web.Request) -> web.Response:
    """One meter."""
    principal = require_scope(request, "admin", "integration", "tenant")
    meter_id = path_id(request)
    meter = await db_of(request).read(lambda s: meters.get_meter(s, meter_id))
    await require_visible(request, principal, meter.account_id, f"meter {meter_id}")
    return model_response(meters.meter_view(meter))


@routes.patch("/api/v1/meters/{id}")
@documented(
    "Change the reading guard's limits of a meter (admin)",
    response=Meter,
    body=MeterLimitsChange,
    errors=(400, 401, 403, 404, 422),
)
async def patch_meter(request: web.Request) -> web.Response:
    """Change the reading guard's limits: model, max_power, register_modulus (admin)."""
    principal = require_scope(request, "admin")
    meter_id = path_id(request)
    change = await parse_body(request, MeterLimitsChange)
    result = await db_of(request).write(
        lambda s: meters.update_limits(s, meter_id, change, principal.actor)
    )
    return model_response(result)


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
    await require_visible(request, principal, result.account_id, f"meter {meter_id}")
    return model_response(result)


@routes.post("/api/v1/meters/{id}/assign")
@documented(
    "Move a meter to another account from a time on (admin)",
    response=Meter,
    body=AssignMeter,
    errors=(400, 401, 403, 404, 409, 422),
)
async def post_meter_assign(request: web.Request) -> web.Response:
    """Move a meter to another account from a time on (admin)."""
    principal = require_scope(request, "admin")
    meter_id = path_id(request)
    move = await parse_body(request, AssignMeter)
    result = await db_of(request).write(
        lambda s: meters.assign_meter(s, meter_id, move, principal.actor)
    )
    return model_response(result)


@routes.post("/api/v1/meters/{id}/replace")
@documented(
    "Re-base a meter after a register replacement (admin)",
    response=Meter,
    body=ReplaceRegister,
    errors=(400, 401, 403, 404, 422),
)
async def post_meter_replace(request: web.Request) -> web.Response:
    """Re-base a meter after a register replacement (admin)."""
    principal = require_scope(request, "admin")
    meter_id = path_id(request)
    replacement = await parse_body(request, ReplaceRegister)
    result = await db_of(request).write(
        lambda s: meters.replace_register(s, meter_id, replacement, principal.actor)
    )
    return model_response(result)
