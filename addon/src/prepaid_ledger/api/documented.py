"""What each API route takes and answers, kept on its handler.

A handler is marked with ``@documented(summary, response=Model, body=Model, ...)`` next to its
``@routes.post(path)``; the OpenAPI document is generated from these marks and the app's own
route table (``api/openapi.py``), so a route cannot be served undocumented, and its document
names the very contract models the handler parses and answers with.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from prepaid_meter_contract.wire import EARLIEST_TIME, LATEST_TIME
from pydantic import BaseModel

type Schema = dict[str, Any]
#: A request or response body: a contract model, or a plain JSON Schema where no model fits
#: (a payment provider's own payload, this document itself).
type Body = type[BaseModel] | Schema
type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Every status a route can answer with an ErrorBody, and what it means.
ERROR_STATUSES: Mapping[int, str] = {
    400: "Malformed request",
    401: "Missing or invalid token",
    403: "Token scope does not allow this",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Body too large",
    422: "Invalid input",
    429: "Too many requests",
    502: "The payment provider did not answer",
}


@dataclass(frozen=True, slots=True)
class Param:
    """A query or header parameter (path parameters come from the route's own path)."""

    name: str
    where: Literal["query", "header"]
    schema: Schema
    required: bool = False
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Operation:
    """One route's description: what it does, takes and answers, and how it can fail."""

    summary: str
    #: The JSON answer; ``None`` when ``content`` gives the answer's media types instead.
    response: Body | None
    status: int = 200
    body: Body | None = None
    errors: tuple[int, ...] = (401, 403, 422)
    params: tuple[Param, ...] = ()
    secured: bool = True
    #: Other media types answered, each with its schema (a CSV, an event stream).
    content: Mapping[str, Schema] = field(default_factory=dict)


_OPERATIONS: dict[Handler, Operation] = {}


def documented[H: Handler](
    summary: str,
    *,
    response: Body | None,
    status: int = 200,
    body: Body | None = None,
    errors: tuple[int, ...] = (401, 403, 422),
    params: tuple[Param, ...] = (),
    secured: bool = True,
    content: Mapping[str, Schema] | None = None,
) -> Callable[[H], H]:
    """Mark a handler with its description (the handler itself is returned unchanged)."""
    unknown = set(errors) - set(ERROR_STATUSES)
    if unknown:
        raise ValueError(f"no description for error statuses {sorted(unknown)}")
    operation = Operation(
        summary,
        response,
        status=status,
        body=body,
        errors=errors,
        params=params,
        secured=secured,
        content=dict(content or {}),
    )

    def mark(handler: H) -> H:
        _OPERATIONS[handler] = operation
        return handler

    return mark


def operation_of(handler: Handler) -> Operation | None:
    """Return the description a handler was marked with, if any."""
    return _OPERATIONS.get(handler)


#: A time a request sends: with an offset, inside the window every route enforces.
TIME_IN: Schema = {
    "type": "string",
    "format": "date-time",
    "description": f"with a UTC offset, from {EARLIEST_TIME.isoformat()} "
    f"to before {LATEST_TIME.isoformat()}",
}
#: Query parameters several listings share.
LIMIT = Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000})
CURSOR = Param(
    "cursor",
    "query",
    {"type": "string", "maxLength": 512},
    description="the next_cursor of the previous page (same search, filters and sort)",
)


def search_param(description: str = "search text (server-side)") -> Param:
    """Return a list's ?q=: text the ledger searches for (at most 100 characters)."""
    return Param("q", "query", {"type": "string", "maxLength": 100}, description=description)


SEARCH = search_param()
IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    "header",
    {"type": "string", "minLength": 1, "maxLength": 255},
    required=True,
)
OPTIONAL_IDEMPOTENCY_KEY = Param(
    "Idempotency-Key", "header", {"type": "string", "minLength": 1, "maxLength": 255}
)


def id_query(name: str, description: str | None = None) -> Param:
    """Return an optional query parameter that names a row by its id."""
    return Param(name, "query", {"type": "integer", "minimum": 1}, description=description)
