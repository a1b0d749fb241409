"""Readings the guard held, and what a person decides about them.

A held reading charged nothing. A person decides, with a reason that is audited:

- ``accept`` a surge (it was real consumption): it is charged from the last accepted reading;
- ``reject`` any held reading (a glitch): it stays on record and charges nothing;
- ``rebase`` from a reset or a reading below the last one (the meter was reset or swapped):
  the reading becomes the meter's new starting point, charging nothing for the step.

Accepting or re-basing is only possible while no later reading has been charged (the later
readings were charged from the last accepted value, which would otherwise count twice).
Afterwards the meter's later held readings are judged again from the new starting point, so
a real surge followed by steady readings charges each of them once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from prepaid_meter_contract.events import ReadingResolved
from prepaid_meter_contract.readings import (
    HeldReading,
    HeldReadings,
    ResolvedReading,
    ResolveReading,
)
from prepaid_meter_contract.vocabulary import (
    HELD_PREFIX,
    RESOLUTIONS,
    ReadingStatus,
    ResolveAction,
    StepKind,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.errors import ConflictError, InputError, NotFoundError
from prepaid_ledger.services import audit, events
from prepaid_ledger.services.accounts import get_account, refresh_account
from prepaid_ledger.services.lookup import load_by_id
from prepaid_ledger.services.meters import get_meter
from prepaid_ledger.services.paging import Order, cut_page, decode_cursor, page_query
from prepaid_ledger.services.readings import Charger, apply_reading, post_charges
from prepaid_ledger.services.sites import check_meters, site_accounts
from prepaid_ledger.store.models import Meter, Reading, utcnow

#: For each decision, the held statuses it may be taken on (the contract's RESOLUTIONS).
ACTIONS: Final = {
    action: frozenset(
        ReadingStatus.held(kind) for kind, allowed in RESOLUTIONS.items() if action in allowed
    )
    for action in ResolveAction
}


def held_view(row: Reading) -> HeldReading:
    """Return a held (or resolved) reading as the API shows it."""
    return HeldReading(
        id=row.id,
        meter_id=row.meter_id,
        account_id=row.account_id,
        value=row.value,
        at=row.at,
        status=ReadingStatus(row.status),
        hold=StepKind(row.status.removeprefix(HELD_PREFIX))
        if row.status.startswith(HELD_PREFIX)
        else None,
        charged_minor=row.charged_minor,
        received_at=row.received_at,
    )


#: Held readings oldest first; the reading id breaks ties.
OLDEST_HELD = Order("held:oldest", (Reading.at, Reading.id))


async def list_held(
    session: AsyncSession,
    meter_id: int | None,
    *,
    cursor: str | None = None,
    limit: int = 100,
    site_id: int | None = None,
) -> HeldReadings:
    """One page of readings waiting for a decision, oldest first (of one meter, of one site)."""
    query = select(Reading).where(Reading.status.startswith(HELD_PREFIX))
    if meter_id is not None:
        query = query.where(Reading.meter_id == meter_id)
    if site_id is not None:
        meters = select(Meter.id).where(Meter.account_id.in_(site_accounts(site_id)))
        query = query.where(Reading.meter_id.in_(meters))
    after = decode_cursor(OLDEST_HELD, cursor)
    if after is not None:  # the cursor carries the time as text: compare it as a time
        after = (_cursor_time(after[0]), after[1])
    rows = list(await session.scalars(page_query(query, OLDEST_HELD, after, limit)))
    page = cut_page(rows, OLDEST_HELD, limit, key=lambda row: (row.at.isoformat(), row.id))
    return HeldReadings(
        readings=[held_view(row) for row in page.rows], next_cursor=page.next_cursor
    )


def _cursor_time(value: object) -> datetime:
    """Return the reading time a held-readings cursor carries (422 if it is not one)."""
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise InputError(
            "invalid_field", "cursor is not one this list gave out", "cursor"
        ) from None


async def resolve(
    session: AsyncSession,
    reading_id: int,
    decision: ResolveReading,
    actor: str,
    site_id: int | None = None,
) -> ResolvedReading:
    """Apply a person's decision on one held reading (audited; SITE_ID: the deciding site's)."""
    action = decision.action
    row = await load_by_id(session, Reading, reading_id, "reading", lock=True)
    try:
        await check_meters(session, site_id, [row.meter_id])
    except NotFoundError:
        raise NotFoundError(f"reading {reading_id}") from None
    meter = await get_meter(session, row.meter_id, lock=True)
    if not row.status.startswith(HELD_PREFIX):
        raise ConflictError("not_held", f"reading {reading_id} is not held (it is {row.status})")
    if row.status not in ACTIONS[action]:
        allowed = [name for name, statuses in ACTIONS.items() if row.status in statuses]
        raise ConflictError(
            "action_not_allowed",
            f"a reading held as {row.status.removeprefix(HELD_PREFIX)} can be: "
            + ", ".join(allowed),
        )
    before = held_view(row)
    account = await get_account(session, meter.account_id, lock=True)
    charger = await Charger.load(session, meter, account)
    if action is not ResolveAction.REJECT:
        if row.account_id != meter.account_id:
            raise ConflictError(
                "meter_moved", "the meter has moved to another account since; reject it instead"
            )
        if meter.last_at is not None and meter.last_at >= row.at:
            raise ConflictError(
                "superseded",
                "a later reading was charged from the last accepted value; reject this one",
            )
    if action is ResolveAction.REJECT:
        row.status = ReadingStatus.REJECTED
    elif action is ResolveAction.REBASE:
        row.status = ReadingStatus.REBASED
        meter.last_value, meter.last_at = row.value, row.at
    else:
        await apply_reading(charger, row, accept=True)
        # Not charged: e.g. a year later than the last reading (flagged_gap).
        if row.status != ReadingStatus.CHARGED:
            raise ConflictError("cannot_accept", f"reading {reading_id} cannot be charged")
        row.status = ReadingStatus.ACCEPTED
    if action is not ResolveAction.REJECT:
        # Later held readings are judged again from the new starting point.
        later = await session.scalars(
            select(Reading)
            .where(
                Reading.meter_id == meter.id,
                Reading.status.startswith(HELD_PREFIX),
                Reading.at > row.at,
            )
            .order_by(Reading.at, Reading.id)
        )
        for following in list(later):
            await apply_reading(charger, following)
        charger.outcome.held.clear()  # still held: already announced when they arrived
    await post_charges(session, charger)
    await session.flush()
    events.emit(
        session,
        account.id,
        ReadingResolved(
            reading_id=row.id,
            meter_id=meter.id,
            action=action,
            status=ReadingStatus(row.status),
        ),
    )
    await refresh_account(session, account, utcnow())
    result = ResolvedReading(**held_view(row).model_dump(), action=action, reason=decision.reason)
    audit.record(
        session,
        actor=actor,
        action=f"reading.{action}",
        target=f"reading:{row.id}",
        before=before,
        after=result,
    )
    return result
