"""Administration: API tokens, the audit log and refused webhook deliveries."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from prepaid_meter_contract.vocabulary import Scope
from prepaid_meter_contract.wire import (
    MAX_TEXT_CHARS,
    Id,
    Timestamp,
    WireError,
    WireModel,
    rule_validator,
)


def check_label(value: object) -> str:
    """Return a label that may be empty (a token's name): text of at most MAX_TEXT_CHARS."""
    if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
        raise WireError("invalid_field", f"must be a string of at most {MAX_TEXT_CHARS} characters")
    return value.strip()


Label = Annotated[
    str,
    PlainValidator(rule_validator(check_label)),
    WithJsonSchema({"type": "string", "maxLength": MAX_TEXT_CHARS}),
]


class TokenRequest(WireModel):
    """``POST /api/v1/tokens``: a token for Home Assistant, or for one tenant's account."""

    scope: Literal[Scope.INTEGRATION, Scope.TENANT]
    #: The tenant's account (required for, and only for, a tenant token).
    account_id: Id | None = None
    name: Label = ""
    #: The site an integration token is confined to (default: site 1, the landlord's own).
    site_id: Id | None = None

    @model_validator(mode="after")
    def _tenant_has_account(self) -> TokenRequest:
        if self.scope is Scope.TENANT and self.account_id is None:
            raise PydanticCustomError("invalid_field", "account_id is required for a tenant token")
        if self.scope is Scope.TENANT and self.site_id is not None:
            raise PydanticCustomError(
                "invalid_field", "site_id is for integration tokens (a tenant's is its account's)"
            )
        return self


class TokenInfo(WireModel):
    """A token as the audit log records it (never its secret)."""

    id: Id
    scope: Scope
    account_id: int | None = None
    name: str
    #: An integration token's site.
    site_id: int | None = None


class IssuedToken(TokenInfo):
    """The new token, with its secret: shown in this answer only (the ledger keeps a hash)."""

    token: Annotated[str, Field(min_length=20)]


class RevokedToken(WireModel):
    """``DELETE /api/v1/tokens/{id}``: the token no longer opens anything from this time on."""

    id: Id
    scope: Scope
    revoked_at: Timestamp


class AuditEntry(WireModel):
    """One change, who made it, and the changed row before and after."""

    id: int
    at: Timestamp
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class AuditLog(WireModel):
    """``GET /api/v1/audit``: the newest changes first."""

    entries: list[AuditEntry]
    #: Pass as ``?cursor=`` (with the same search) for the next page.
    next_cursor: str | None = None


class WebhookRejection(WireModel):
    """A webhook delivery that failed verification (its body is kept as a hash only)."""

    id: int
    provider: str
    reason: str
    body_sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
    received_at: Timestamp


class WebhookRejections(WireModel):
    """``GET /api/v1/webhook-rejections``: the newest refused deliveries first."""

    rejections: list[WebhookRejection]
