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
from prepaid_meter_contract.wire import EARLIEST_TIME, LATEST_TIME
from pydantic import BaseModel
from pydantic.json_schema import (
    GenerateJsonSchema,
    JsonSchemaMode,
    JsonSchemaValue,
    models_json_schema,
)
from pydantic_core import core_schema

from prepaid_ledger import __version__
from prepaid_ledger.api.documented import (
    ERROR_STATUSES,
    Body,
    Operation,
    Schema,
    component,
    documented,
    operation_of,
)
from prepaid_ledger.domain.money import MAX_MINOR
from prepaid_ledger.services.topups import STATUSES as ORDER_STATUSES

if TYPE_CHECKING:  # the type models_json_schema itself names
    from pydantic._internal._dataclasses import PydanticDataclass

_DECIMAL = {"type": "string", "pattern": r"^\d+(\.\d+)?$", "example": "0.2513"}
_TIME = {"type": "string", "format": "date-time"}
#: Times a request sends: inside the window every route enforces (services/validation.py).
_TIME_IN = _TIME | {
    "description": f"with a UTC offset, from {EARLIEST_TIME.isoformat()} "
    f"to before {LATEST_TIME.isoformat()}"
}
#: Money a request sets (domain/money.py).
_MINOR_SETTING = {"type": "integer", "minimum": 0, "maximum": MAX_MINOR}
_NULLABLE_TIME = {"type": "string", "format": "date-time", "nullable": True}
_SEGMENT = {
    "type": "object",
    "required": ["start", "price"],
    "properties": {
        "start": {"type": "string", "example": "07:00"},
        "price": _DECIMAL,
        "band": {"type": "string"},
    },
}

SCHEMAS: dict[str, Schema] = {
    "TariffInput": {
        "type": "object",
        "required": ["name", "currency", "unit", "kind"],
        "properties": {
            "name": {"type": "string"},
            "currency": {"type": "string", "example": "EUR"},
            "unit": {"type": "string", "enum": ["kWh", "m3"]},
            "kind": {"type": "string", "enum": ["flat", "tou", "tiered"]},
            "standing_charge_minor_per_day": _MINOR_SETTING,
            "price": _DECIMAL,
            "segments": {"type": "array", "maxItems": 14, "items": _SEGMENT},
            "weekend_segments": {
                "type": "array",
                "maxItems": 14,
                "items": _SEGMENT,
                "nullable": True,
            },
            "period": {"type": "string", "enum": ["month", "year"]},
            "bands": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["up_to", "price"],
                    "properties": {
                        "up_to": {"type": "string", "nullable": True},
                        "price": _DECIMAL,
                        "band": {"type": "string"},
                    },
                },
            },
            "effective_from": {**_TIME_IN, "description": "required for a new version"},
        },
    },
    "Tariff": {
        "type": "object",
        "required": ["id", "name", "currency", "unit", "kind", "versions"],
        "additionalProperties": True,
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "currency": {"type": "string"},
            "unit": {"type": "string"},
            "kind": {"type": "string"},
            "created_at": _TIME,
            "versions": {"type": "array", "items": {"type": "object"}},
        },
    },
    "AccountInput": {
        "type": "object",
        "required": ["name", "currency", "timezone"],
        "properties": {
            "name": {"type": "string"},
            "currency": {"type": "string"},
            "timezone": {"type": "string", "example": "Europe/Berlin"},
            "emergency_credit_minor": _MINOR_SETTING,
            "protected": {"type": "boolean"},
            "low_balance_minor": {
                "type": "array",
                "items": _MINOR_SETTING,
                "minItems": 2,
                "maxItems": 2,
            },
            "friendly_hours": {"type": "object", "description": "weekly HH:MM windows + holidays"},
            "grace_minutes": {"type": "integer", "minimum": 0},
            "reconnect_margin_minor": _MINOR_SETTING,
        },
    },
    "AccountUpdate": {
        "type": "object",
        "description": "any subset of the editable fields; currency and timezone cannot change",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "emergency_credit_minor": _MINOR_SETTING,
            "protected": {"type": "boolean"},
            "low_balance_minor": {
                "type": "array",
                "items": _MINOR_SETTING,
                "minItems": 2,
                "maxItems": 2,
            },
            "friendly_hours": {"type": "object"},
            "grace_minutes": {"type": "integer", "minimum": 0},
            "reconnect_margin_minor": _MINOR_SETTING,
        },
    },
    "Account": {
        "type": "object",
        "required": [
            "id",
            "number",
            "name",
            "currency",
            "timezone",
            "status",
            "balance_minor",
            "emergency_credit_remaining_minor",
            "debt_minor",
            "supply",
        ],
        "properties": {
            "id": {"type": "integer"},
            "number": {"type": "string"},
            "name": {"type": "string"},
            "currency": {"type": "string"},
            "currency_exponent": {"type": "integer"},
            "timezone": {"type": "string"},
            "status": {"type": "string", "enum": ["open", "closed"]},
            "balance_minor": {"type": "integer"},
            "emergency_credit_minor": {"type": "integer"},
            "emergency_credit_remaining_minor": {"type": "integer"},
            "debt_minor": {"type": "integer"},
            "protected": {"type": "boolean"},
            "low_balance_minor": {"type": "array", "items": {"type": "integer"}},
            "low_balance_level": {"type": "integer"},
            "friendly_hours": {"type": "object"},
            "grace_minutes": {"type": "integer"},
            "reconnect_margin_minor": {"type": "integer"},
            "days_left": {
                "type": "string",
                "nullable": True,
                "description": "in listings and single reads: days the credit lasts at the "
                "recent daily cost (null without a complete day of history)",
            },
            "supply": component("Supply"),
            "created_at": _TIME,
            "closed_at": _NULLABLE_TIME,
            "settlement": {"type": "object"},
        },
    },
    "MeterInput": {
        "type": "object",
        "required": ["account_id", "tariff_id", "name", "unit"],
        "properties": {
            "account_id": {"type": "integer"},
            "tariff_id": {"type": "integer"},
            "name": {"type": "string"},
            "unit": {"type": "string", "enum": ["kWh", "m3"]},
            "model": {"type": "string", "nullable": True, "maxLength": 64},
            "max_power": {**_DECIMAL, "nullable": True},
            "register_modulus": {**_DECIMAL, "nullable": True},
        },
    },
    "MeterLimitsInput": {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            "model": {"type": "string", "nullable": True, "maxLength": 64},
            "max_power": {**_DECIMAL, "nullable": True},
            "register_modulus": {**_DECIMAL, "nullable": True},
        },
    },
    "TopupInput": {
        "type": "object",
        "required": ["account", "amount_minor"],
        "properties": {
            "account": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
            "amount_minor": {"type": "integer", "minimum": 1},
            "reference": {"type": "string", "maxLength": 200},
        },
    },
    "Order": {
        "type": "object",
        "required": ["id", "account_id", "amount_minor", "currency", "status", "source"],
        "properties": {
            "id": {"type": "integer"},
            "account_id": {"type": "integer", "nullable": True},
            "account_ref": {"type": "string"},
            "amount_minor": {"type": "integer"},
            "currency": {"type": "string"},
            "status": {
                "type": "string",
                "enum": list(ORDER_STATUSES),
            },
            "source": {"type": "string"},
            "reference": {"type": "string", "nullable": True},
            "provider": {"type": "string"},
            "provider_payment_id": {"type": "string", "nullable": True},
            "credited_minor": {"type": "integer"},
            "refunded_minor": {"type": "integer"},
            "provider_status": {"type": "string", "description": "after a recheck"},
            "attention_reason": {"type": "string", "nullable": True},
            "created_at": _TIME,
            "updated_at": _TIME,
            "timeline": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["status", "at"],
                    "properties": {
                        "status": {"type": "string"},
                        "at": _TIME,
                        "reason": {"type": "string", "nullable": True},
                        "actor": {"type": "string"},
                    },
                },
            },
        },
    },
    "OrderAction": {
        "type": "object",
        "required": ["action", "reason"],
        "properties": {
            "action": {"type": "string", "enum": ["credit", "refund", "fail", "recheck"]},
            "reason": {"type": "string"},
            "amount_minor": {"type": "integer"},
            "account": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
        },
    },
    "WebhookResult": {
        "type": "object",
        "required": ["received", "duplicate", "outcome"],
        "properties": {
            "received": {"type": "boolean"},
            "duplicate": {"type": "boolean"},
            "outcome": {"type": "string"},
            "order_id": {"type": "integer", "nullable": True},
            "status": {"type": "string", "nullable": True},
        },
    },
}


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


def _operation(path: str, operation: Operation, refs: _Refs) -> Schema:
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
        paths.setdefault(path, {})[method] = _operation(path, operation, refs)
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
            "schemas": SCHEMAS | definitions.get("$defs", {}),
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


@documented("This document", response={"type": "object"}, errors=(), secured=False)
async def openapi_handler(request: web.Request) -> web.Response:
    """Serve the OpenAPI document of this app's routes (no auth)."""
    return web.json_response(openapi_document(request.app.router))
