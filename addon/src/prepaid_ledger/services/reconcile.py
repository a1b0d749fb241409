"""Reconciliation with Stripe: a payment whose webhook never arrived is still credited, once.

Every ``reconcile_minutes`` (with a Stripe API key) the ledger lists Stripe's paid-checkout
events created since its last successful run, less an overlap, and feeds each one through
``handle_stripe_event``: the very function the webhook calls. The UNIQUE constraints on the
provider event id and on the checkout session id therefore decide, as for a webhook, that an
event or a session counts once however it arrives (webhook first, list first, both at once,
the same event listed again by the next run's overlap).

The run's cursor and its last outcome are kept in ``ledger_meta`` (key ``stripe_reconcile``),
so a restart resumes from the last successful run instead of Stripe's whole 30 days. Nothing
here talks to Stripe: ``api/provider_check.py`` lists the events and hands them in.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from prepaid_meter_contract.vocabulary import PaymentOutcome
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.services.webhooks import apply_event, handle_stripe_event
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.models import LedgerMeta, utcnow

_LOGGER = logging.getLogger(__name__)
META_KEY = "stripe_reconcile"
ACTOR = "reconcile"
#: Stripe keeps events for 30 days: the first run (no cursor yet) looks back that far.
STRIPE_RETENTION = timedelta(days=30)
#: Each run looks back this much before the previous run started (an event may become
#: listable a little after its ``created`` time); re-reading an event changes nothing.
OVERLAP = timedelta(hours=1)
#: The outcomes a run counts, each under its own name in the stored state (besides ``seen``).
COUNTED = (PaymentOutcome.CREDITED, PaymentOutcome.NEEDS_ATTENTION)

#: Lists Stripe's paid-checkout events created at or after a Unix time, oldest first.
EventLister = Callable[[int], AsyncIterator[list[Mapping[str, Any]]]]


async def load_state(session: AsyncSession) -> dict[str, Any]:
    """Return the stored cursor and last outcome (empty before the first run)."""
    row = await session.scalar(select(LedgerMeta).where(LedgerMeta.key == META_KEY))
    if row is None:
        return {}
    try:
        state = json.loads(row.value)
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


async def _save_state(session: AsyncSession, state: dict[str, Any]) -> None:
    row = await session.scalar(
        select(LedgerMeta).where(LedgerMeta.key == META_KEY).with_for_update()
    )
    value = json.dumps(state, sort_keys=True)
    if row is None:
        session.add(LedgerMeta(key=META_KEY, value=value))
    else:
        row.value = value


def window_start(state: Mapping[str, Any], now: datetime) -> datetime:
    """Return the earliest event creation time the next run lists."""
    oldest = now - STRIPE_RETENTION
    cursor = state.get("cursor")
    if not isinstance(cursor, str):
        return oldest
    try:
        previous = datetime.fromisoformat(cursor)
    except ValueError:
        return oldest
    return max(oldest, previous - OVERLAP)


def status_json(state: Mapping[str, Any], *, enabled: bool, every_minutes: float) -> dict[str, Any]:
    """Return the reconciliation's status as the API shows it."""
    return {
        "enabled": enabled,
        "every_minutes": every_minutes,
        "last_run_at": state.get("last_run_at"),
        "last_success_at": state.get("last_success_at"),
        "since": state.get("since"),
        "seen": state.get("seen", 0),
        PaymentOutcome.CREDITED: state.get(PaymentOutcome.CREDITED, 0),
        PaymentOutcome.NEEDS_ATTENTION: state.get(PaymentOutcome.NEEDS_ATTENTION, 0),
        "last_error": state.get("last_error"),
    }


async def status(session: AsyncSession, *, enabled: bool, every_minutes: float) -> dict[str, Any]:
    """Read the reconciliation's status (for health / admin endpoints)."""
    return status_json(await load_state(session), enabled=enabled, every_minutes=every_minutes)


async def _apply(db: Database, event: Mapping[str, Any]) -> dict[str, Any]:
    payload = json.dumps(event, separators=(",", ":"), sort_keys=True)
    result: dict[str, Any] = await apply_event(
        db, lambda s: handle_stripe_event(s, event, payload, ACTOR)
    )
    return result


def _log_outcome(event: Mapping[str, Any], result: Mapping[str, Any]) -> None:
    obj = event.get("data", {}).get("object", {}) if isinstance(event.get("data"), dict) else {}
    session_id = obj.get("id") if isinstance(obj, Mapping) else None
    if result["outcome"] == PaymentOutcome.CREDITED:
        _LOGGER.info(
            "reconcile: credited order %s from Stripe event %s (session %s, %s %s); "
            "its webhook had not arrived",
            result["order_id"],
            event.get("id"),
            session_id,
            obj.get("amount_total") if isinstance(obj, Mapping) else None,
            obj.get("currency") if isinstance(obj, Mapping) else None,
        )
    elif result["outcome"] == PaymentOutcome.NEEDS_ATTENTION:
        _LOGGER.warning(
            "reconcile: Stripe event %s (session %s) could not be credited: order %s needs "
            "attention",
            event.get("id"),
            session_id,
            result["order_id"],
        )


async def run_once(
    db: Database, list_events: EventLister, now: datetime | None = None
) -> dict[str, Any]:
    """List Stripe's paid-checkout events since the cursor and apply each; return the outcome.

    Everything is listed before anything is applied, so a Stripe outage part-way through the
    pages changes nothing; the error is stored and the cursor stays where it was, so the next
    run covers the same window again.
    """
    started = now or utcnow()
    state = await db.read(load_state)
    since = window_start(state, started)
    counts: dict[str, int] = {"seen": 0} | dict.fromkeys(COUNTED, 0)
    error: str | None = None
    try:
        listed: list[Mapping[str, Any]] = []
        async for page in list_events(int(since.timestamp())):
            listed.extend(page)
        for event in sorted(listed, key=_created):  # oldest first, as Stripe sent them
            counts["seen"] += 1
            result = await _apply(db, event)
            if result.get("duplicate"):
                continue
            _log_outcome(event, result)
            if result["outcome"] in COUNTED:
                counts[result["outcome"]] += 1
    except Exception as err:  # noqa: BLE001 - any failure is reported and retried next run
        error = str(err) or type(err).__name__
        _LOGGER.warning("reconcile with Stripe failed (will retry next run): %s", error)
    new_state = dict(state) | counts
    new_state |= {"last_run_at": started.isoformat(), "last_error": error}
    if error is None:
        new_state |= {
            "cursor": started.isoformat(),
            "last_success_at": started.isoformat(),
            "since": since.astimezone(UTC).isoformat(),
        }

    async def save(session: AsyncSession) -> None:
        await _save_state(session, new_state)

    await db.write(save)
    return new_state


def _created(event: Mapping[str, Any]) -> tuple[int, str]:
    created = event.get("created")
    stamp = created if isinstance(created, int) and not isinstance(created, bool) else 0
    return stamp, str(event.get("id") or "")
