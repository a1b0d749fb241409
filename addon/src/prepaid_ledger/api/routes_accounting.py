"""Routes for accounting events (admin): endpoints, the delivery log, replay.

The events themselves are recorded by the services that make the changes
(``services/outbox.py``) and sent by ``services/outbox_delivery.py``; docs/accounting-events.md
describes what a receiver gets.
"""

from __future__ import annotations

from aiohttp import web
from prepaid_meter_contract.accounting import (
    CreatedEndpoint,
    Deliveries,
    Delivery,
    DeliveryStatus,
    DisableEndpoint,
    Endpoint,
    EndpointRequest,
    Endpoints,
)

from prepaid_ledger.api.auth import require_scope
from prepaid_ledger.api.context import db_of
from prepaid_ledger.api.documented import LIMIT, Param, documented, id_query
from prepaid_ledger.api.http_helpers import (
    limit_param,
    model_response,
    parse_body,
    path_id,
    query_int,
)
from prepaid_ledger.services import outbox

routes = web.RouteTableDef()


@routes.post("/api/v1/accounting/endpoints")
@documented(
    "Register an endpoint for accounting events; the answer carries its signing secret, shown"
    " this once (admin)",
    response=CreatedEndpoint,
    status=201,
    body=EndpointRequest,
    errors=(400, 401, 403, 409, 413, 422),
)
async def post_endpoint(request: web.Request) -> web.Response:
    """Create an endpoint with a fresh whsec_ secret (admin)."""
    principal = require_scope(request, "admin")
    wanted = await parse_body(request, EndpointRequest)
    created = await db_of(request).write(
        lambda s: outbox.create_endpoint(s, wanted, principal.actor)
    )
    return model_response(created, status=201)


@routes.get("/api/v1/accounting/endpoints")
@documented("Accounting endpoints, newest first; secrets only as their prefix", response=Endpoints)
async def get_endpoints(request: web.Request) -> web.Response:
    """List endpoints (admin)."""
    require_scope(request, "admin")
    return model_response(await db_of(request).read(outbox.list_endpoints))


@routes.post("/api/v1/accounting/endpoints/{id}/disable")
@documented(
    "Disable an endpoint: nothing more is sent there (admin)",
    response=Endpoint,
    body=DisableEndpoint,
    errors=(400, 401, 403, 404, 409, 422),
)
async def post_disable(request: web.Request) -> web.Response:
    """Disable an endpoint (admin)."""
    principal = require_scope(request, "admin")
    endpoint_id = path_id(request)
    disabling = await parse_body(request, DisableEndpoint)
    return model_response(
        await db_of(request).write(
            lambda s: outbox.disable_endpoint(s, endpoint_id, disabling.reason, principal.actor)
        )
    )


@routes.get("/api/v1/accounting/deliveries")
@documented(
    "The delivery log, newest first (admin)",
    response=Deliveries,
    params=(
        id_query("endpoint", "only deliveries to this endpoint"),
        Param(
            "status",
            "query",
            {"type": "string", "enum": [str(s) for s in DeliveryStatus]},
            description="only deliveries in this status",
        ),
        id_query("account", "only events of this account"),
        LIMIT,
    ),
)
async def get_deliveries(request: web.Request) -> web.Response:
    """List deliveries (admin)."""
    require_scope(request, "admin")
    endpoint_id = query_int(request, "endpoint")
    account_id = query_int(request, "account")
    status = request.query.get("status")
    limit = limit_param(request)
    return model_response(
        await db_of(request).read(
            lambda s: outbox.list_deliveries(
                s, endpoint_id=endpoint_id, status=status, account_id=account_id, limit=limit
            )
        )
    )


@routes.post("/api/v1/accounting/deliveries/{id}/replay")
@documented(
    "Send a delivery's event again, with the same message id, from the start of the retry"
    " schedule (admin)",
    response=Delivery,
    errors=(401, 403, 404, 409, 422),
)
async def post_replay(request: web.Request) -> web.Response:
    """Replay a delivery (admin)."""
    principal = require_scope(request, "admin")
    delivery_id = path_id(request)
    return model_response(
        await db_of(request).write(
            lambda s: outbox.replay_delivery(s, delivery_id, principal.actor)
        )
    )
