"""Routes for the landlord's settings: which payment methods Stripe Checkout offers."""

from __future__ import annotations

from aiohttp import web
from prepaid_meter_contract.payment_settings import PaymentMethodsRequest, PaymentMethodsSettings
from sqlalchemy.exc import IntegrityError

from prepaid_ledger.api.auth import require_scope
from prepaid_ledger.api.context import db_of, settings_of
from prepaid_ledger.api.documented import documented
from prepaid_ledger.api.http_helpers import model_response, parse_body
from prepaid_ledger.services import payment_settings

routes = web.RouteTableDef()
PAYMENT_METHODS_PATH = "/api/v1/settings/payment-methods"
#: Two first choices at once both insert the row; the loser runs again and updates it.
_ATTEMPTS = 3


@routes.get(PAYMENT_METHODS_PATH)
@documented(
    "The payment methods Stripe Checkout offers, where that comes from, and every method the"
    " ledger can offer with the currencies Stripe takes it in (admin)",
    response=PaymentMethodsSettings,
    errors=(401, 403),
)
async def get_payment_methods(request: web.Request) -> web.Response:
    """Answer the payment methods in force (admin)."""
    require_scope(request, "admin")
    settings = settings_of(request)
    return model_response(await db_of(request).read(lambda s: payment_settings.read(s, settings)))


@routes.put(PAYMENT_METHODS_PATH)
@documented(
    "Choose the payment methods Stripe Checkout offers (over the add-on option); each must"
    " take the ledger's default currency; audited (admin)",
    response=PaymentMethodsSettings,
    body=PaymentMethodsRequest,
    errors=(400, 401, 403, 422),
)
async def put_payment_methods(request: web.Request) -> web.Response:
    """Store the landlord's choice of payment methods (admin)."""
    principal = require_scope(request, "admin")
    wanted = await parse_body(request, PaymentMethodsRequest)
    settings = settings_of(request)
    for attempt in range(_ATTEMPTS):
        try:
            chosen = await db_of(request).write(
                lambda s: payment_settings.choose(s, settings, wanted.methods, principal.actor)
            )
        except IntegrityError:
            if attempt == _ATTEMPTS - 1:
                raise
            continue
        return model_response(chosen)
    raise AssertionError("unreachable")  # pragma: no cover
