"""API tokens: integration and tenant tokens issued and revoked by the admin (hashes only)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.errors import InputError, NotFoundError
from prepaid_ledger.services import audit
from prepaid_ledger.services.accounts import get_account
from prepaid_ledger.services.validation import in_id_range
from prepaid_ledger.store.models import ApiToken, utcnow


def hash_token(token: str) -> str:
    """SHA-256 of a token; only this is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(
    session: AsyncSession, body: Mapping[str, object], actor: str
) -> dict[str, Any]:
    """Issue an integration or tenant token; the secret is shown only in this response."""
    scope = body.get("scope")
    if scope not in ("integration", "tenant"):
        raise InputError("invalid_field", "scope must be integration or tenant")
    account_id: int | None = None
    if scope == "tenant":
        raw = body.get("account_id")
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise InputError("invalid_field", "account_id (integer) is required for a tenant token")
        account_id = (await get_account(session, raw)).id
    name = body.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        raise InputError("invalid_field", "name must be a string of at most 200 characters")
    token = "plt_" + secrets.token_urlsafe(32)
    row = ApiToken(token_hash=hash_token(token), scope=scope, account_id=account_id, name=name)
    session.add(row)
    await session.flush()
    info = {"id": row.id, "scope": scope, "account_id": account_id, "name": name}
    audit.record(
        session,
        actor=actor,
        action="token.create",
        target=f"token:{row.id}",
        before=None,
        after=info,
    )
    return info | {"token": token}


async def revoke_token(session: AsyncSession, token_id: int, actor: str) -> dict[str, Any]:
    """Revoke a token (kept for the audit trail)."""
    row = await session.get(ApiToken, token_id) if in_id_range(token_id) else None
    if row is None:
        raise NotFoundError(f"token {token_id}")
    row.revoked_at = row.revoked_at or utcnow()
    info = {"id": row.id, "scope": row.scope, "revoked_at": row.revoked_at.isoformat()}
    audit.record(
        session,
        actor=actor,
        action="token.revoke",
        target=f"token:{row.id}",
        before=None,
        after=info,
    )
    return info
