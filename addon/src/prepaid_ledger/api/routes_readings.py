"""Routes for readings: the batch Home Assistant posts, and the readings the guard held."""

from __future__ import annotations

from aiohttp import web
from prepaid_meter_contract.readings import (
    HeldReadings,
    ReadingsBatch,
    ReadingsResult,
    ResolvedReading,
    ResolveReading,
)

from prepaid_ledger.api.auth import require_scope
from prepaid_ledger.api.context import db_of, state_of
from prepaid_ledger.api.documented import CURSOR, LIMIT, documented, id_query
from prepaid_ledger.api.http_helpers import (
    limit_param,
    model_response,
    parse_body,
    path_id,
    query_int,
)
from prepaid_ledger.services import held_readings, readings

routes = web.RouteTableDef()


@routes.post("/api/v1/readings")
@documented(
    "Ingest a batch of readings (admin, integration)",
    response=ReadingsResult,
    body=ReadingsBatch,
    errors=(400, 401, 403, 422),
)
async def post_readings(request: web.Request) -> web.Response:
    """Ingest a batch of readings (admin, integration)."""
    principal = require_scope(request, "admin", "integration")
    batch = await parse_body(request, ReadingsBatch)  # bad input fails before the write lock
    db = db_of(request)
    workers = state_of(request.app).backlog_workers
    size = readings.PART_SIZE if workers is None else workers.part_size
    parts = readings.split_batch(batch, size)  # a backlog's big batch: a transaction per part
    if len(parts) == 1:
        workers = None
    actor, site_id = principal.actor, principal.site_id
    if workers is not None:
        results = await workers.write_parts(db, parts, actor, site_id)
    else:  # a poll's batch, or no workers (SQLite, or turned off)
        results = [await readings.write_part(db, part, actor, site_id) for part in parts]
    return model_response(readings.merge_results(results))


@routes.get("/api/v1/readings/held")
@documented(
    "Readings the guard held, waiting for a decision (admin, integration)",
    response=HeldReadings,
    params=(id_query("meter"), CURSOR, LIMIT),
    errors=(401, 403, 422),
)
async def get_held_readings(request: web.Request) -> web.Response:
    """List the readings the guard held, oldest first, a page at a time (admin, integration)."""
    principal = require_scope(request, "admin", "integration")
    meter_id = query_int(request, "meter")
    cursor, limit = request.query.get("cursor"), limit_param(request)
    return model_response(
        await db_of(request).read(
            lambda s: held_readings.list_held(
                s, meter_id, cursor=cursor, limit=limit, site_id=principal.site_id
            )
        )
    )


@routes.post("/api/v1/readings/{id}/resolve")
@documented(
    "Accept (a surge), reject, or re-base from (a reset) a held reading; audited",
    response=ResolvedReading,
    body=ResolveReading,
    errors=(400, 401, 403, 404, 409, 422),
)
async def post_resolve_reading(request: web.Request) -> web.Response:
    """Accept, reject or re-base from a held reading, with a reason (admin, integration)."""
    principal = require_scope(request, "admin", "integration")
    reading_id = path_id(request)
    decision = await parse_body(request, ResolveReading)
    result = await db_of(request).write(
        lambda s: held_readings.resolve(s, reading_id, decision, principal.actor, principal.site_id)
    )
    return model_response(result)
