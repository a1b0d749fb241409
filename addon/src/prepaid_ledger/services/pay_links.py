"""Tenant pay links: a tenant-scoped token in a URL, one live link per account.

Issuing a new link revokes the account's previous one, so a landlord who suspects a leaked
QR code prints a new one and the old code stops working at once.

A link a tenant gets (and Stripe's return address) is built from the configured public base
URL only: never from the request's Host header (whoever sent the request chose it, and the
landlord reaches the ledger through Home Assistant's ingress, an address no tenant can use),
and never with a guessed port. Without that setting there is no link to give.
"""

from __future__ import annotations

from urllib.parse import urlencode

from prepaid_meter_contract.admin import IssuedToken, TokenRequest
from prepaid_meter_contract.vocabulary import AccountStatus, Scope
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.errors import ConflictError
from prepaid_ledger.services import audit
from prepaid_ledger.services.accounts import get_account
from prepaid_ledger.services.tokens import create_token, hash_token
from prepaid_ledger.store.models import Account, ApiToken, utcnow

PAY_LINK_NAME = "pay link"
MAX_TOKEN_LENGTH = 200
NO_PUBLIC_BASE_URL = "no_public_base_url"
NO_PUBLIC_BASE_URL_MESSAGE = (
    "pay links need the public base URL: set the add-on option public_base_url to the address "
    "where tenants and Stripe reach the ledger, e.g. https://pay.example.com"
)


def public_base(public_base_url: str | None) -> str:
    """Return the configured public base URL without a trailing slash; 409 when unset."""
    base = (public_base_url or "").strip().rstrip("/")
    if not base:
        raise ConflictError(NO_PUBLIC_BASE_URL, NO_PUBLIC_BASE_URL_MESSAGE)
    return base


def pay_link_url(public_base_url: str | None, token: str) -> str:
    """Return the tenant's pay page for TOKEN under the public base URL, exactly as set."""
    return f"{public_base(public_base_url)}/pay/{token}"


#: Where a voucher card's QR code leads (web/tenant_page.py sends the phone on to its pay page).
VOUCHER_SCAN_PATH = "/pay/voucher"


def voucher_scan_url(public_base_url: str | None, code: str) -> str | None:
    """Return the address a voucher card's QR code opens, or None without a public base URL.

    A card does not know its tenant: the address names the code only, and the phone that
    scans it is sent on to the pay page it last opened.
    """
    base = (public_base_url or "").strip().rstrip("/")
    if not base:
        return None
    return f"{base}{VOUCHER_SCAN_PATH}?{urlencode({'code': code})}"


async def issue_pay_link(session: AsyncSession, account_id: int, actor: str) -> IssuedToken:
    """Revoke the account's current pay link and issue a new tenant token for it."""
    account = await get_account(session, account_id, lock=True)
    if account.status != AccountStatus.OPEN:
        raise ConflictError("account_closed", f"account {account.id} is closed")
    current = await session.scalars(
        select(ApiToken).where(
            ApiToken.account_id == account.id,
            ApiToken.scope == "tenant",
            ApiToken.name == PAY_LINK_NAME,
            ApiToken.revoked_at.is_(None),
        )
    )
    for row in current:
        row.revoked_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="token.revoke",
            target=f"token:{row.id}",
            before=None,
            after={"id": row.id, "reason": "a new pay link was issued"},
        )
    wanted = TokenRequest(scope=Scope.TENANT, account_id=account.id, name=PAY_LINK_NAME)
    return await create_token(session, wanted, actor)


async def account_for_pay_token(session: AsyncSession, token: str) -> Account | None:
    """Return the open account a live pay-link token belongs to, or None."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = await session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(token),
            ApiToken.scope == "tenant",
            ApiToken.revoked_at.is_(None),
        )
    )
    if row is None or row.account_id is None:
        return None
    account = await session.get(Account, row.account_id)
    return account if account is not None and account.status == AccountStatus.OPEN else None
