"""API tokens: integration and tenant tokens issued and revoked by the admin (hashes only)."""

from __future__ import annotations

import hashlib
import secrets

from prepaid_meter_contract.admin import IssuedToken, RevokedToken, TokenInfo, TokenRequest
from prepaid_meter_contract.vocabulary import Scope
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.errors import NotFoundError
from prepaid_ledger.services import audit
from prepaid_ledger.services.accounts import get_account
from prepaid_ledger.services.sites import require_site
from prepaid_ledger.services.validation import in_id_range
from prepaid_ledger.store.models import DEFAULT_SITE_ID, ApiToken, utcnow


def hash_token(token: str) -> str:
    """SHA-256 of a token; only this is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(session: AsyncSession, request: TokenRequest, actor: str) -> IssuedToken:
    """Issue an integration or tenant token; the secret is shown only in this response."""
    account_id: int | None = None
    site_id: int | None = None
    if request.scope is Scope.TENANT and request.account_id is not None:
        account_id = (await get_account(session, request.account_id)).id
    if request.scope is Scope.INTEGRATION:  # bound to one site: it sees that site's rooms only
        site_id = (await require_site(session, request.site_id or DEFAULT_SITE_ID)).id
    token = "plt_" + secrets.token_urlsafe(32)
    row = ApiToken(
        token_hash=hash_token(token),
        scope=request.scope.value,
        account_id=account_id,
        name=request.name,
        site_id=site_id,
    )
    session.add(row)
    await session.flush()
    info = TokenInfo(
        id=row.id, scope=request.scope, account_id=account_id, name=request.name, site_id=site_id
    )
    audit.record(
        session,
        actor=actor,
        action="token.create",
        target=f"token:{row.id}",
        before=None,
        after=info,
    )
    return IssuedToken(**info.model_dump(), token=token)


async def revoke_token(session: AsyncSession, token_id: int, actor: str) -> RevokedToken:
    """Revoke a token (kept for the audit trail)."""
    row = await session.get(ApiToken, token_id) if in_id_range(token_id) else None
    if row is None:
        raise NotFoundError(f"token {token_id}")
    row.revoked_at = row.revoked_at or utcnow()
    info = RevokedToken(id=row.id, scope=Scope(row.scope), revoked_at=row.revoked_at)
    audit.record(
        session,
        actor=actor,
        action="token.revoke",
        target=f"token:{row.id}",
        before=None,
        after=info,
    )
    return info
