"""The OpenAPI 3 document of the ledger API (served at /api/v1/openapi.json).

Written by hand next to the handlers; tests compare it with the routes the app serves.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prepaid_meter_contract.errors import ErrorBody
from prepaid_meter_contract.readings import (
    HeldReading,
    ReadingsBatch,
    ReadingsResult,
    ResolvedReading,
    ResolveReading,
)
from prepaid_meter_contract.resources import Meter, MeterStatus, Supply
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
from prepaid_ledger.domain.money import MAX_MINOR
from prepaid_ledger.services.topups import STATUSES as ORDER_STATUSES

type Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _listing(key: str, item: str) -> Schema:
    """Describe a list response: ``{key: [item, ...]}``."""
    return {"type": "object", "properties": {key: {"type": "array", "items": _ref(item)}}}


def _json(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Schema]:
    texts = {
        400: "Malformed request",
        401: "Missing or invalid token",
        403: "Token scope does not allow this",
        404: "Not found",
        409: "Conflicts with the current state",
        422: "Invalid input",
        502: "The payment provider did not answer",
    }
    return {str(code): _json(_ref("ErrorBody"), texts[code]) for code in codes}


def _op(
    summary: str,
    ok: Schema,
    *,
    status: int = 200,
    body: Schema | None = None,
    errors: tuple[int, ...] = (401, 403, 422),
    params: list[Schema] | None = None,
    secured: bool = True,
) -> Schema:
    op: Schema = {"summary": summary, "responses": {str(status): ok, **_errors(*errors)}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    if not secured:
        op["security"] = []
    return op


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
_IDEMPOTENCY_OPTIONAL = _IDEMPOTENCY | {"required": False}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
}
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
            "supply": _ref("Supply"),
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


def _paths() -> dict[str, Schema]:
    obj = {"type": "object"}
    return {
        "/api/v1/health": {
            "get": _op(
                "Liveness and the ledger's identity",
                _json(
                    {
                        "type": "object",
                        "required": ["status", "version", "ledger_id"],
                        "properties": {
                            "status": {"type": "string"},
                            "version": {"type": "string"},
                            "ledger_id": {"type": "string", "format": "uuid"},
                        },
                    }
                ),
                errors=(),
                secured=False,
            )
        },
        "/api/v1/openapi.json": {"get": _op("This document", _json(obj), errors=(), secured=False)},
        "/api/v1/whoami": {
            "get": _op(
                "The caller's scope",
                _json(
                    {
                        "type": "object",
                        "required": ["scope", "account_id"],
                        "properties": {
                            "scope": {"type": "string", "enum": ["admin", "integration", "tenant"]},
                            "account_id": {"type": "integer", "nullable": True},
                        },
                    }
                ),
                errors=(401,),
            )
        },
        "/api/v1/tokens": {
            "post": _op(
                "Issue an integration or tenant token (admin)",
                _json(obj),
                status=201,
                body={
                    "type": "object",
                    "required": ["scope"],
                    "properties": {
                        "scope": {"type": "string", "enum": ["integration", "tenant"]},
                        "account_id": {"type": "integer"},
                        "name": {"type": "string"},
                    },
                },
                errors=(400, 401, 403, 404, 422),
            )
        },
        "/api/v1/tokens/{id}": {
            "delete": _op(
                "Revoke a token (admin)", _json(obj), params=[_ID], errors=(401, 403, 404, 422)
            )
        },
        "/api/v1/tariffs": {
            "post": _op(
                "Create a tariff (admin)",
                _json(_ref("Tariff")),
                status=201,
                body=_ref("TariffInput"),
                errors=(400, 401, 403, 422),
            ),
            "get": _op(
                "List tariffs",
                _json(_listing("tariffs", "Tariff")),
            ),
        },
        "/api/v1/tariffs/{id}": {
            "get": _op(
                "One tariff with its versions",
                _json(_ref("Tariff")),
                params=[_ID],
                errors=(401, 403, 404, 422),
            )
        },
        "/api/v1/tariffs/{id}/versions": {
            "post": _op(
                "Add a price version effective from a time (admin)",
                _json(_ref("Tariff")),
                status=201,
                body=_ref("TariffInput"),
                params=[_ID],
                errors=(400, 401, 403, 404, 422),
            )
        },
        "/api/v1/accounts": {
            "post": _op(
                "Create an account (admin)",
                _json(_ref("Account")),
                status=201,
                body=_ref("AccountInput"),
                errors=(400, 401, 403, 422),
            ),
            "get": _op(
                "List accounts (tenants: their own)",
                _json(_listing("accounts", "Account")),
            ),
        },
        "/api/v1/accounts/{id}": {
            "patch": _op(
                "Change an account's name or policy settings (admin)",
                _json(_ref("Account")),
                params=[_ID],
                body=_ref("AccountUpdate"),
                errors=(400, 401, 403, 404, 409, 422),
            ),
            "get": _op(
                "One account with balance and supply",
                _json(_ref("Account")),
                params=[_ID],
                errors=(401, 403, 404, 422),
            ),
        },
        "/api/v1/accounts/{id}/close": {
            "post": _op(
                "Close and settle an account (admin)",
                _json(_ref("Account")),
                params=[_ID],
                body={
                    "type": "object",
                    "required": ["reason"],
                    "properties": {"reason": {"type": "string"}},
                },
                errors=(400, 401, 403, 404, 409, 422),
            )
        },
        "/api/v1/accounts/{id}/statement": {
            "get": _op(
                "Statement for a period; lines tie out to the closing balance",
                {
                    "description": "OK",
                    "content": {
                        "application/json": {"schema": obj},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                params=[
                    _ID,
                    *(
                        {
                            "name": bound,
                            "in": "query",
                            "required": False,
                            "schema": {
                                "anyOf": [{"type": "string", "format": "date"}, _TIME_IN],
                                "description": "a local date or a time with offset",
                            },
                        }
                        for bound in ("from", "to")
                    ),
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["json", "csv"]},
                    },
                ],
                errors=(401, 403, 404, 422),
            )
        },
        "/api/v1/accounts/{id}/pay-link": {
            "post": _op(
                "Issue the tenant's pay link, revoking the previous one; with a QR code (admin)",
                _json(
                    {
                        "type": "object",
                        "required": ["account_id", "token_id", "url", "qr_svg"],
                        "properties": {
                            "account_id": {"type": "integer"},
                            "token_id": {"type": "integer"},
                            "url": {"type": "string"},
                            "qr_svg": {"type": "string", "description": "an SVG document"},
                        },
                    }
                ),
                status=201,
                params=[_ID],
                errors=(401, 403, 404, 409),
            )
        },
        "/api/v1/meters": {
            "post": _op(
                "Create a meter (admin)",
                _json(_ref("Meter")),
                status=201,
                body=_ref("MeterInput"),
                errors=(400, 401, 403, 409, 422),
            ),
            "get": _op(
                "List meters",
                _json(_listing("meters", "Meter")),
                params=[
                    {
                        "name": "account",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1},
                    }
                ],
            ),
        },
        "/api/v1/meters/{id}": {
            "get": _op(
                "One meter", _json(_ref("Meter")), params=[_ID], errors=(401, 403, 404, 422)
            ),
            "patch": _op(
                "Change the reading guard's limits of a meter (admin)",
                _json(_ref("Meter")),
                params=[_ID],
                body=_ref("MeterLimitsInput"),
                errors=(400, 401, 403, 404, 422),
            ),
        },
        "/api/v1/meters/{id}/status": {
            "get": _op(
                "Cost so far, the current price and band, and the account's days left",
                _json(_ref("MeterStatus")),
                params=[_ID],
                errors=(401, 403, 404, 422),
            )
        },
        "/api/v1/meters/{id}/assign": {
            "post": _op(
                "Move a meter to another account from a time on (admin)",
                _json(_ref("Meter")),
                params=[_ID],
                body={
                    "type": "object",
                    "required": ["account_id"],
                    "properties": {
                        "account_id": {"type": "integer"},
                        "tariff_id": {"type": "integer"},
                        "from": _TIME_IN,
                    },
                },
                errors=(400, 401, 403, 404, 409, 422),
            )
        },
        "/api/v1/meters/{id}/replace": {
            "post": _op(
                "Re-base a meter after a register replacement (admin)",
                _json(_ref("Meter")),
                params=[_ID],
                body={
                    "type": "object",
                    "required": ["new_start_value"],
                    "properties": {"new_start_value": _DECIMAL, "at": _TIME_IN},
                },
                errors=(400, 401, 403, 404, 422),
            )
        },
        "/api/v1/readings": {
            "post": _op(
                "Ingest a batch of readings (admin, integration)",
                _json(_ref("ReadingsResult")),
                body=_ref("ReadingsBatch"),
                errors=(400, 401, 403, 422),
            )
        },
        "/api/v1/readings/held": {
            "get": _op(
                "Readings the guard held, waiting for a decision (admin, integration)",
                _json(_listing("readings", "HeldReading")),
                params=[
                    {
                        "name": "meter",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1},
                    }
                ],
            )
        },
        "/api/v1/readings/{id}/resolve": {
            "post": _op(
                "Accept (a surge), reject, or re-base from (a reset) a held reading; audited",
                _json(_ref("ResolvedReading")),
                params=[_ID],
                body=_ref("ResolveReading"),
                errors=(400, 401, 403, 404, 409, 422),
            )
        },
        "/api/v1/topups": {
            "post": _op(
                "Manual/cash top-up (idempotent)",
                _json(_ref("Order")),
                status=201,
                body=_ref("TopupInput"),
                params=[_IDEMPOTENCY],
                errors=(400, 401, 403, 404, 409, 422),
            ),
            "get": _op(
                "List orders",
                _json(_listing("topups", "Order")),
                params=[
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "account",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1},
                    },
                    _LIMIT,
                ],
            ),
        },
        "/api/v1/topups/batch": {
            "post": _op(
                "Top up many accounts, one result per item (admin)",
                _json(
                    {"type": "object", "properties": {"results": {"type": "array", "items": obj}}}
                ),
                body={
                    "type": "object",
                    "required": ["items"],
                    "properties": {
                        "items": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 1000,
                            "items": _ref("TopupInput"),
                        }
                    },
                },
                params=[_IDEMPOTENCY],
                errors=(400, 401, 403, 422),
            )
        },
        "/api/v1/topups/{id}": {
            "get": _op(
                "One order with its status timeline",
                _json(_ref("Order")),
                params=[_ID],
                errors=(401, 403, 404, 422),
            )
        },
        "/api/v1/topups/{id}/actions": {
            "post": _op(
                "Resolve an order: credit, refund, fail (admin); recheck (admin, integration)",
                _json(_ref("Order")),
                params=[_ID, _IDEMPOTENCY_OPTIONAL],
                body=_ref("OrderAction"),
                errors=(400, 401, 403, 404, 409, 422, 502),
            )
        },
        "/api/v1/adjustments": {
            "post": _op(
                "Signed balance correction with a reason (admin)",
                _json(obj),
                status=201,
                params=[_IDEMPOTENCY_OPTIONAL],
                body={
                    "type": "object",
                    "required": ["account", "amount_minor", "reason"],
                    "properties": {
                        "account": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                        "amount_minor": {"type": "integer"},
                        "reason": {"type": "string"},
                    },
                },
                errors=(400, 401, 403, 404, 409, 422),
            )
        },
        "/api/v1/audit": {
            "get": _op("Audit log, newest first (admin)", _json(obj), params=[_LIMIT])
        },
        "/api/v1/webhook-rejections": {
            "get": _op(
                "Webhook deliveries that failed verification (admin)", _json(obj), params=[_LIMIT]
            )
        },
        "/api/v1/events": {
            "get": _op(
                "Event stream (SSE): account.updated, topup.updated, alert; Last-Event-ID resumes",
                {
                    "description": "An event stream",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                params=[
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                    }
                ],
            )
        },
        "/webhooks/stripe": {
            "post": _op(
                "Stripe webhook (Stripe-Signature, 300 s tolerance)",
                _json(_ref("WebhookResult")),
                body=obj,
                errors=(400, 404),
                secured=False,
                params=[
                    {
                        "name": "Stripe-Signature",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
            )
        },
        "/webhooks/standard": {
            "post": _op(
                "Standard Webhooks payment event",
                _json(_ref("WebhookResult")),
                body=obj,
                errors=(400, 404),
                secured=False,
                params=[
                    {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
                    for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
                ],
            )
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


#: The contract's models, by how they are used: request bodies are described as the ledger
#: validates them, responses as it writes them.
_REQUESTS: tuple[type[BaseModel], ...] = (ReadingsBatch, ResolveReading)
_RESPONSES: tuple[type[BaseModel], ...] = (
    ErrorBody,
    Supply,
    HeldReading,
    ResolvedReading,
    Meter,
    MeterStatus,
    ReadingsResult,
)


def contract_schemas() -> dict[str, Schema]:
    """Return the components generated from the contract's models (their ``$defs``)."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "validation") for model in _REQUESTS),
        *((model, "serialization") for model in _RESPONSES),
    ]
    _, document = models_json_schema(
        models, ref_template="#/components/schemas/{model}", schema_generator=OpenApi30Schema
    )
    return dict(document["$defs"])


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document."""
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
            "schemas": SCHEMAS | contract_schemas(),
        },
        "security": [{"bearer": []}],
        "paths": _paths(),
    }


async def openapi_handler(request: web.Request) -> web.Response:
    """Serve the OpenAPI document (no auth)."""
    del request
    return web.json_response(openapi_document())
