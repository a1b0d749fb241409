"""One error format for every failure: the contract's {"error": {"code", "message", "field"?}}."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from prepaid_meter_contract.errors import ErrorBody, ErrorDetail

from prepaid_ledger.api.overload_log import OVERLOAD_LOG
from prepaid_ledger.errors import ApiError, ConflictError, InputError, NotFoundError
from prepaid_ledger.services.validation import loads_bounded
from prepaid_ledger.store.transient import overload_reason

_LOGGER = logging.getLogger(__name__)
type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Retry-After (seconds) when the database itself reported an overload (store/transient.py).
DATABASE_BUSY_RETRY_AFTER_S: Final = 5


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    field: str | None = None,
) -> web.Response:
    """Return the contract's error body (``field``: the value at fault, when there is one)."""
    detail = ErrorDetail(code=code, message=message, field=field)
    return web.json_response(
        ErrorBody(error=detail).model_dump(mode="json", exclude_none=True),
        status=status,
        headers=headers,
    )


def overloaded_response(retry_after_s: int, message: str) -> web.Response:
    """Return 503 ``overloaded`` with Retry-After: the request changed nothing; send it again.

    Stripe and Standard Webhooks senders retry a 5xx on their own schedule; Home Assistant
    sends the readings again with its next batch.
    """
    return error_response(
        503, "overloaded", message, headers={"Retry-After": str(max(1, retry_after_s))}
    )


def decode_json(raw: bytes) -> object:
    """Parse a body as JSON or fail with 400 invalid_json."""
    try:
        return loads_bounded(raw)
    except InputError as err:
        if err.code == "invalid_unicode":
            raise
        raise ApiError(400, err.code, err.message) from err


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every exception into the JSON error format; log only real faults."""
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(err.status, err.code, err.message, err.headers)
    except InputError as err:
        return error_response(422, err.code, err.message, field=err.field)
    except NotFoundError as err:
        return error_response(404, "not_found", err.message)
    except ConflictError as err:
        return error_response(409, err.code, err.message)
    except web.HTTPException as err:
        if err.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            err.status, "http_error"
        )
        return error_response(err.status, code, err.reason)
    except Exception as err:
        reason = overload_reason(err)  # first: a reset from the database is an outage
        if reason is None and isinstance(err, ConnectionResetError):
            # The client went away while sending (e.g. Home Assistant reloading): not a fault
            # of the service, and nothing was started. The answer reaches no one.
            _LOGGER.info("client disconnected during %s %s", request.method, request.path)
            return error_response(400, "client_disconnected", "the request body did not arrive")
        if reason is None:
            _LOGGER.exception("unhandled error on %s %s", request.method, request.path)
            return error_response(500, "internal_error", "internal error; see the service log")
        # The database is overloaded (pool timeout, too many connections, lock timeout,
        # deadlock beyond the retries, SQLite locked): the transaction rolled back, so the
        # request changed nothing and may be sent again.
        OVERLOAD_LOG.warn(
            f"database:{reason}",
            f"{request.method} {request.path} answered 503 (database busy: {reason})",
        )
        return overloaded_response(
            DATABASE_BUSY_RETRY_AFTER_S,
            f"the ledger's database is busy or unreachable ({reason}); "
            f"send the request again in {DATABASE_BUSY_RETRY_AFTER_S} s",
        )
