"""Routes for vouchers: mint and list batches, void one, redeem a code (exactly once)."""

from __future__ import annotations

import math

from aiohttp import web
from prepaid_meter_contract.vouchers import (
    MintedBatch,
    RedeemedVoucher,
    RedeemVoucher,
    VoidBatch,
    VoucherBatch,
    VoucherBatches,
    VoucherBatchRequest,
)
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.api.auth import Principal, require_scope
from prepaid_ledger.api.context import db_of, settings_of, state_of
from prepaid_ledger.api.documented import documented
from prepaid_ledger.api.http_helpers import model_response, parse_body, path_id
from prepaid_ledger.api.throttle import client_address
from prepaid_ledger.domain.voucher_codes import parse_code
from prepaid_ledger.errors import ApiError, ConflictError, InputError
from prepaid_ledger.services import sites, vouchers
from prepaid_ledger.store.models import utcnow

routes = web.RouteTableDef()


@routes.post("/api/v1/vouchers/batches")
@documented(
    "Mint a batch of vouchers; the answer carries their codes, shown this once (admin)",
    response=MintedBatch,
    status=201,
    body=VoucherBatchRequest,
    errors=(400, 401, 403, 404, 422),
)
async def post_batch(request: web.Request) -> web.Response:
    """Mint a batch (admin)."""
    principal = require_scope(request, "admin")
    wanted = await parse_body(request, VoucherBatchRequest)
    ledger_id = state_of(request.app).ledger_id
    minted = await db_of(request).write(
        lambda s: vouchers.mint(s, wanted, ledger_id, principal.actor)
    )
    return model_response(minted, status=201)


@routes.get("/api/v1/vouchers/batches")
@documented("Voucher batches, newest first, with how many were redeemed", response=VoucherBatches)
async def get_batches(request: web.Request) -> web.Response:
    """List batches (admin)."""
    require_scope(request, "admin")
    return model_response(await db_of(request).read(vouchers.list_batches))


@routes.post("/api/v1/vouchers/batches/{id}/void")
@documented(
    "Void a batch: its unused codes credit nothing from now on (admin)",
    response=VoucherBatch,
    body=VoidBatch,
    errors=(400, 401, 403, 404, 409, 422),
)
async def post_void(request: web.Request) -> web.Response:
    """Void a batch (admin)."""
    principal = require_scope(request, "admin")
    batch_id = path_id(request)
    voiding = await parse_body(request, VoidBatch)
    return model_response(
        await db_of(request).write(
            lambda s: vouchers.void_batch(s, batch_id, voiding.reason, principal.actor)
        )
    )


@routes.post("/api/v1/vouchers/redeem")
@documented(
    "Redeem a voucher code into a credited top-up (admin, integration, the account's tenant);"
    " wrong codes earn a growing wait (429 with Retry-After)",
    response=RedeemedVoucher,
    status=201,
    body=RedeemVoucher,
    errors=(400, 401, 403, 404, 409, 422, 429),
)
async def post_redeem(request: web.Request) -> web.Response:
    """Redeem a code; a typo is refused before it counts as an attempt."""
    principal = require_scope(request, "admin", "integration", "tenant")
    wanted = await parse_body(request, RedeemVoucher)
    code = parse_code(wanted.code)
    account_ref = _account_for(principal, wanted.account)
    sources = []
    if principal.scope == "tenant":  # the public side: the link and the address count too
        address = client_address(request, settings_of(request).trusted_proxies)
        sources = [f"token:{principal.actor}"[:96], f"address:{address}"[:96]]
    ledger_id = state_of(request.app).ledger_id

    async def work(session: AsyncSession) -> vouchers.Redemption:
        # A site's token redeems for its own site's rooms only.
        await sites.check_account_ref(session, principal.site_id, account_ref)
        return await vouchers.redeem(
            session,
            account_ref=account_ref,
            code=code,
            ledger_id=ledger_id,
            sources=sources,
            actor=principal.actor,
        )

    outcome = await db_of(request).write(work)  # a counted failure is committed, then refused
    if outcome.redeemed is not None:
        return model_response(outcome.redeemed, status=201)
    raise refusal_error(outcome)


def _account_for(principal: Principal, account: int | str) -> int | str:
    """Return the account to credit; a tenant's token credits its own account only."""
    if principal.scope != "tenant":
        return account
    own = principal.account_id
    if own is None or account not in (own, str(own)):
        raise ApiError(403, "forbidden", "a tenant token can only redeem for its own account")
    return own


def refusal_error(outcome: vouchers.Redemption) -> Exception:
    """Return the HTTP error of a refused redemption (429 with Retry-After while a source waits)."""
    refusal = outcome.refusal or vouchers.Refusal.UNKNOWN
    seconds = outcome.retry_after(utcnow())
    if seconds is not None:
        return ApiError(
            429,
            refusal.value,
            f"{outcome.message} (about {math.ceil(seconds / 60)} min)",
            headers={"Retry-After": str(seconds)},
        )
    if refusal is vouchers.Refusal.UNKNOWN:
        return InputError(refusal.value, outcome.message, "code")
    return ConflictError(refusal.value, outcome.message)
