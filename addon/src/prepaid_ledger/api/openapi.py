"""The OpenAPI 3 document of the ledger API (served at /api/v1/openapi.json).

Generated from the routes the app serves and the ``@documented`` description on each handler
(``api/documented.py``); bodies and answers are the contract's own pydantic models.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prepaid_meter_contract.errors import ErrorBody
from pydantic import BaseModel
from pydantic.json_schema import (
    GenerateJsonSchema,
    JsonSchemaMode,
    JsonSchemaValue,
    models_json_schema,
)
from pydantic_core import core_schema

from prepaid_ledger import __version__
from prepaid_ledger.api.admission import lane_for
from prepaid_ledger.api.documented import (
    ERROR_STATUSES,
    Body,
    Operation,
    Schema,
    documented,
    operation_of,
)

if TYPE_CHECKING:  # the type models_json_schema itself names
    from pydantic._internal._dataclasses import PydanticDataclass


class OpenApi30Schema(GenerateJsonSchema):
    """pydantic's JSON Schema, written the way OpenAPI 3.0 reads it.

    OpenAPI 3.0 knows ``nullable`` rather than a ``null`` type, and ``enum`` rather than
    ``const``; everything else pydantic writes is valid there as it is.
    """

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        """Write ``X | None`` as X with ``nullable: true``."""
        inner = self.generate_inner(schema["schema"])
        if "$ref" in inner:
            return {"allOf": [inner], "nullable": True}
        return {**inner, "nullable": True}

    def literal_schema(self, schema: core_schema.LiteralSchema) -> JsonSchemaValue:
        """Write a single allowed value as a one-value ``enum``."""
        result = super().literal_schema(schema)
        if "const" in result:
            result["enum"] = [result.pop("const")]
        return result


def _api_routes(router: web.UrlDispatcher) -> Iterator[tuple[str, str, Operation]]:
    """Yield (path, method, description) of every JSON API and webhook route the app serves."""
    for route in router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD" or not path.startswith(("/api/", "/webhooks/")):
            continue  # the HTML pages (landlord UI, pay page) are not part of the API
        operation = operation_of(route.handler)
        if operation is None:
            raise RuntimeError(f"{route.method} {path} has no @documented description")
        yield path, route.method.lower(), operation


def _models(operations: list[Operation]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    """Return the contract models the routes use: bodies as validated, answers as written."""
    used: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    for operation in operations:
        if isinstance(operation.body, type):
            used[operation.body, "validation"] = None
        if isinstance(operation.response, type):
            used[operation.response, "serialization"] = None
    used[ErrorBody, "serialization"] = None
    return list(used)


type _Refs = Mapping[tuple[type[BaseModel] | type[PydanticDataclass], JsonSchemaMode], Schema]


def _operation(path: str, method: str, operation: Operation, refs: _Refs) -> Schema:
    """Return the OpenAPI operation object of one route."""

    def schema(body: Body, mode: JsonSchemaMode) -> Schema:
        return refs[body, mode] if isinstance(body, type) else body

    content = dict(operation.content)
    if operation.response is not None:
        content["application/json"] = {"schema": schema(operation.response, "serialization")}
    error = {"application/json": {"schema": refs[ErrorBody, "serialization"]}}
    described: Schema = {
        "summary": operation.summary,
        "responses": {
            str(operation.status): {
                "description": "Created" if operation.status == 201 else "OK",
                "content": content,
            },
            **{
                str(code): {"description": ERROR_STATUSES[code], "content": error}
                for code in operation.errors
            },
        },
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
        for name in re.findall(r"{(\w+)}", path)
    ]
    params += [
        {"name": p.name, "in": p.where, "required": p.required, "schema": p.schema}
        | ({"description": p.description} if p.description else {})
        for p in operation.params
    ]
    if lane_for(method.upper(), path) is not None:  # queued: may be shed (api/admission.py)
        described["responses"]["503"] = {
            "description": "Overloaded: not processed, nothing changed; send it again after "
            "Retry-After seconds",
            "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
            "content": error,
        }
    if params:
        described["parameters"] = params
    if operation.body is not None:
        described["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema(operation.body, "validation")}},
        }
    if not operation.secured:
        described["security"] = []
    return described


def openapi_document(router: web.UrlDispatcher) -> dict[str, Any]:
    """Return the OpenAPI document of the routes a ledger app serves."""
    routes = list(_api_routes(router))
    refs, definitions = models_json_schema(
        _models([operation for _, _, operation in routes]),
        ref_template="#/components/schemas/{model}",
        schema_generator=OpenApi30Schema,
    )
    paths: dict[str, Schema] = {}
    for path, method, operation in sorted(routes, key=lambda route: route[:2]):
        paths.setdefault(path, {})[method] = _operation(path, method, operation, refs)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Prepaid Meter Ledger",
            "version": __version__,
            "description": "Exact prepaid accounting: money is always integer minor units "
            "(*_minor); prices and quantities are decimal strings.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": definitions.get("$defs", {}),
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


@documented("This document", response={"type": "object"}, errors=(), secured=False)
async def openapi_handler(request: web.Request) -> web.Response:
    """Serve the OpenAPI document of this app's routes (no auth)."""
    return web.json_response(openapi_document(request.app.router))
