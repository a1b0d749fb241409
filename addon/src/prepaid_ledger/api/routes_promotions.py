"""Routes for top-up promotions: add one, list them with their uses, end one early (admin)."""

from __future__ import annotations

from aiohttp import web
from prepaid_meter_contract.promotions import EndPromotion, Promotion, PromotionInput, Promotions

from prepaid_ledger.api.auth import require_scope
from prepaid_ledger.api.context import db_of
from prepaid_ledger.api.documented import documented
from prepaid_ledger.api.http_helpers import model_response, parse_body, path_id
from prepaid_ledger.services import promotions

routes = web.RouteTableDef()


@routes.post("/api/v1/promotions")
@documented(
    "Add a top-up promotion: a fixed or percentage bonus for top-ups of at least an amount (admin)",
    response=Promotion,
    status=201,
    body=PromotionInput,
    errors=(400, 401, 403, 404, 422),
)
async def post_promotion(request: web.Request) -> web.Response:
    """Add a promotion (admin)."""
    principal = require_scope(request, "admin")
    wanted = await parse_body(request, PromotionInput)
    made = await db_of(request).write(lambda s: promotions.create(s, wanted, principal.actor))
    return model_response(made, status=201)


@routes.get("/api/v1/promotions")
@documented("Promotions, newest first, with the bonuses each has given", response=Promotions)
async def get_promotions(request: web.Request) -> web.Response:
    """List promotions (admin)."""
    require_scope(request, "admin")
    return model_response(await db_of(request).read(promotions.list_promotions))


@routes.post("/api/v1/promotions/{id}/end")
@documented(
    "End a promotion now: top-ups ordered from now on earn nothing from it (admin)",
    response=Promotion,
    body=EndPromotion,
    errors=(400, 401, 403, 404, 409, 422),
)
async def post_end(request: web.Request) -> web.Response:
    """End a promotion (admin)."""
    principal = require_scope(request, "admin")
    promotion_id = path_id(request)
    ending = await parse_body(request, EndPromotion)
    return model_response(
        await db_of(request).write(
            lambda s: promotions.end(s, promotion_id, ending.reason, principal.actor)
        )
    )
