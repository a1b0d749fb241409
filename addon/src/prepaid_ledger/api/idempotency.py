"""Idempotency-Key handling: the first response is stored with the effect and replayed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.api.auth import Principal
from prepaid_ledger.api.context import db_of
from prepaid_ledger.errors import ApiError
from prepaid_ledger.store.models import IdempotencyKey

type Work = Callable[[AsyncSession], Awaitable[tuple[int, Any]]]
_ATTEMPTS = 3


def request_hash(request: web.Request, body: bytes) -> str:
    """Return what makes two requests 'the same': method, path and the canonical JSON body."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (UnicodeDecodeError, json.JSONDecodeError):
        canonical = body
    return hashlib.sha256(request.method.encode() + request.path.encode() + canonical).hexdigest()


def idempotency_key(request: web.Request, *, required: bool) -> str | None:
    """Return the Idempotency-Key header, validated."""
    key = request.headers.get("Idempotency-Key")
    if key is None or not key.strip():
        if required:
            raise ApiError(400, "idempotency_key_required", "an Idempotency-Key header is required")
        return None
    if len(key) > 255:
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key is at most 255 characters")
    return key.strip()


async def run_idempotent(
    request: web.Request, principal: Principal, key: str | None, body: bytes, work: Work
) -> web.Response:
    """Run work once per key: same key + same body replays, same key + other body is 422."""
    db = db_of(request)
    digest = request_hash(request, body)

    async def attempt(session: AsyncSession) -> tuple[int, Any, bool]:
        if key is not None:
            stored = await session.scalar(
                select(IdempotencyKey).where(
                    IdempotencyKey.actor == principal.actor, IdempotencyKey.key == key
                )
            )
            if stored is not None:
                if stored.request_hash != digest:
                    raise ApiError(
                        422,
                        "idempotency_key_reused",
                        "this Idempotency-Key was already used with a different request",
                    )
                return stored.response_status, json.loads(stored.response_body), True
        status, payload = await work(session)
        if key is not None:
            session.add(
                IdempotencyKey(
                    actor=principal.actor,
                    key=key,
                    request_hash=digest,
                    response_status=status,
                    response_body=json.dumps(payload),
                )
            )
            await session.flush()
        return status, payload, False

    for attempt_no in range(_ATTEMPTS):
        try:
            status, payload, replayed = await db.write(attempt)
        except IntegrityError:
            # A concurrent request with the same key (or reference) committed first: look again.
            if attempt_no == _ATTEMPTS - 1:
                raise
            continue
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        return web.json_response(payload, status=status, headers=headers)
    raise AssertionError("unreachable")  # pragma: no cover
