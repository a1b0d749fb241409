"""One error format for every failure: the contract's {"error": {"code", "message", "field"?}}."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prepaid_meter_contract.errors import ErrorBody, ErrorDetail

from prepaid_ledger.errors import ApiError, ConflictError, InputError, NotFoundError
from prepaid_ledger.services.validation import loads_bounded

_LOGGER = logging.getLogger(__name__)
type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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


async def read_json(request: web.Request) -> object:
    """Parse the request body as JSON or fail with 400 invalid_json."""
    raw = await request.read()
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
    except ConnectionResetError:
        # The client went away while sending (e.g. Home Assistant reloading): not a fault of
        # the service, and nothing was started. The answer reaches no one.
        _LOGGER.info("client disconnected during %s %s", request.method, request.path)
        return error_response(400, "client_disconnected", "the request body did not arrive")
    except Exception:
        _LOGGER.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; see the service log")
