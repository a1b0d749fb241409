"""The landlord's browser sessions: random ids, stored hashed, that expire and can be ended.

A session id is `secrets.token_urlsafe(32)`, new at every sign-in (a cookie set beforehand is
never adopted); only its SHA-256 is stored, so a copy of the database opens no session. A
session ends when it has been idle too long, when it is too old, at sign-out, and when the
admin token changes (each row keeps a fingerprint of the token it was started with).
`last_seen_at` is written at most once a minute, so browsing does not write per request.
Expired rows are deleted when met and at every sign-in.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.store.models import WebSession

TOUCH_INTERVAL = timedelta(minutes=1)
MAX_SESSION_ID_LENGTH = 128  # ids are 43 characters; longer cookies are not even hashed


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """The admin token sessions belong to and how long they last (from Settings)."""

    admin_token: str
    idle_s: float
    absolute_s: float

    @property
    def fingerprint(self) -> str:
        """The admin token's fingerprint stored in each session row."""
        return token_fingerprint(self.admin_token)


class Verdict(enum.Enum):
    """What a presented session id turned out to be."""

    VALID = "valid"
    VALID_STALE = "valid_stale"  # valid, and last_seen_at is due to be written
    EXPIRED = "expired"  # the row exists but must go (idle, too old or another admin token)
    UNKNOWN = "unknown"


def hash_session_id(session_id: str) -> str:
    """SHA-256 of a session id (what the table stores)."""
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def token_fingerprint(admin_token: str) -> str:
    """Return a MAC keyed with the admin token: equal only for the same token, reveals nothing."""
    key = admin_token.encode("utf-8", "surrogatepass")
    return hmac.new(key, b"prepaid-ledger web session fingerprint", "sha256").hexdigest()


def _is_expired(row: WebSession, policy: SessionPolicy, now: datetime) -> bool:
    if not hmac.compare_digest(row.token_fingerprint, policy.fingerprint):
        return True
    if now - row.last_seen_at >= timedelta(seconds=policy.idle_s):
        return True
    return now - row.created_at >= timedelta(seconds=policy.absolute_s)


async def check(
    session: AsyncSession, session_id: str, policy: SessionPolicy, now: datetime
) -> Verdict:
    """Judge a presented session id without writing (callers touch or end it as told)."""
    if not session_id or len(session_id) > MAX_SESSION_ID_LENGTH:
        return Verdict.UNKNOWN
    row = await session.get(WebSession, hash_session_id(session_id))
    if row is None:
        return Verdict.UNKNOWN
    if _is_expired(row, policy, now):
        return Verdict.EXPIRED
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        return Verdict.VALID_STALE
    return Verdict.VALID


async def touch(session: AsyncSession, session_id: str, now: datetime) -> None:
    """Record activity on a session (called at most once a minute per session)."""
    await session.execute(
        update(WebSession)
        .where(
            WebSession.id_hash == hash_session_id(session_id),
            WebSession.last_seen_at < now,
        )
        .values(last_seen_at=now)
    )


async def prune(session: AsyncSession, policy: SessionPolicy, now: datetime) -> None:
    """Delete every session that has expired or belongs to another admin token."""
    await session.execute(
        delete(WebSession).where(
            or_(
                WebSession.token_fingerprint != policy.fingerprint,
                WebSession.last_seen_at <= now - timedelta(seconds=policy.idle_s),
                WebSession.created_at <= now - timedelta(seconds=policy.absolute_s),
            )
        )
    )


async def start(session: AsyncSession, policy: SessionPolicy, now: datetime) -> str:
    """Start a new session and return its id (for the cookie); prune expired ones first."""
    await prune(session, policy, now)
    session_id = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            id_hash=hash_session_id(session_id),
            token_fingerprint=policy.fingerprint,
            created_at=now,
            last_seen_at=now,
        )
    )
    await session.flush()
    return session_id


async def end(session: AsyncSession, session_id: str) -> None:
    """End a session (sign-out, or an expired one met on a request); unknown ids are ignored."""
    if not session_id or len(session_id) > MAX_SESSION_ID_LENGTH:
        return
    digest = hash_session_id(session_id)
    await session.execute(delete(WebSession).where(WebSession.id_hash == digest))
