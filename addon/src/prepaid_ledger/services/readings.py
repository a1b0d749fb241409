"""Reading ingestion and exact, cumulative charging.

For every meter, account and price band the ledger keeps the exact (unrounded) total charged
so far and the minor units already posted; each new reading posts
``amount_to_post(exact_total, posted)``, so many small readings never drift from one big one.
All readings of one meter in a batch become one journal transaction with charge lines per
local day and band (the statement's source), which keeps the journal small.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from prepaid_meter_contract.events import ReadingHeldAlert
from prepaid_meter_contract.reading_guard import Step, classify
from prepaid_meter_contract.readings import MeterIngest, ReadingsBatch, ReadingsResult
from prepaid_meter_contract.readings import Reading as IncomingReading
from prepaid_meter_contract.vocabulary import AlertKind, ReadingStatus, StepKind
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain.apportion import split_by_time
from prepaid_ledger.domain.errors import InputError
from prepaid_ledger.domain.money import (
    EXACT,
    amount_to_post,
    format_decimal,
)
from prepaid_ledger.domain.tariffs import (
    MAX_STANDING_DAYS,
    ChargePart,
    period_keys,
    price_consumption,
    standing_charge_days,
)
from prepaid_ledger.domain.tariffs import Tariff as TariffModel
from prepaid_ledger.services import audit, events, journal
from prepaid_ledger.services.accounts import book_of, refresh_account
from prepaid_ledger.services.meters import limits_of
from prepaid_ledger.services.tariffs import versions_for_pricing
from prepaid_ledger.services.validation import in_id_range
from prepaid_ledger.store.models import (
    Account,
    ChargeLine,
    ChargeState,
    Meter,
    PeriodUsage,
    Reading,
    utcnow,
)

#: The longest interval one reading may charge. Charging walks the interval day by day (charge
#: lines per local day, time-of-use segments, tier periods, standing charges), so the work of
#: one request must not grow with a span the sender picks: a reading further than this after
#: the meter's previous one is held (``flagged_gap``) for a person, who re-bases the meter
#: (``/replace``). A meter that really was silent this long needs a look anyway.
MAX_CHARGE_GAP = timedelta(days=MAX_STANDING_DAYS)
STANDING_BAND = "standing"
TOTAL_BAND = "__total__"  # charge-state row holding the running total over all bands


@dataclass(slots=True)
class MeterOutcome:
    """What one meter's readings did in this batch."""

    meter_id: int
    account_id: int
    accepted: int = 0
    baseline: int = 0
    duplicates: int = 0
    flagged: int = 0
    noise: int = 0
    unbilled: int = 0
    held: list[tuple[Reading, Step, Decimal | None, datetime | None]] = field(default_factory=list)
    charged_minor: int = 0
    standing_minor: int = 0
    lines: dict[tuple[date, str], list[Decimal]] = field(default_factory=dict)


class Charger:
    """Charging state for one meter during one batch."""

    def __init__(
        self,
        session: AsyncSession,
        meter: Meter,
        account: Account,
        versions: list[tuple[datetime, TariffModel]],
    ) -> None:
        self.session = session
        self.meter = meter
        self.account = account
        self.versions = versions
        self.tz = ZoneInfo(account.timezone)
        self.states: dict[str, ChargeState] = {}
        self.usage: dict[str, PeriodUsage] = {}
        self.outcome = MeterOutcome(meter.id, account.id)
        self.limits = limits_of(meter)

    async def _state(self, band: str) -> ChargeState:
        state = self.states.get(band)
        if state is None:
            key = (self.meter.id, self.account.id, band)
            state = await self.session.get(ChargeState, key)
            if state is None:
                state = ChargeState(
                    meter_id=key[0],
                    account_id=key[1],
                    band=band,
                    exact_total=Decimal(0),
                    posted_minor=0,
                )
                self.session.add(state)
            self.states[band] = state
        return state

    async def _usage(self, period: str) -> PeriodUsage:
        usage = self.usage.get(period)
        if usage is None:
            key = (self.meter.id, self.account.id, period)
            usage = await self.session.get(PeriodUsage, key)
            if usage is None:
                usage = PeriodUsage(
                    meter_id=key[0], account_id=key[1], period=period, quantity=Decimal(0)
                )
                self.session.add(usage)
            self.usage[period] = usage
        return usage

    def _line(self, day: date, band: str, quantity: Decimal, minor: int) -> None:
        line = self.outcome.lines.setdefault((day, band), [Decimal(0), Decimal(0)])
        line[0] += quantity
        line[1] += minor

    async def charge(self, start: datetime, end: datetime, quantity: Decimal) -> int:
        """Charge consumption over [start, end]; returns the minor units posted.

        The total posted follows the exact running total of all bands (so it never drifts by
        more than half a minor unit, however many bands); each band's share follows its own
        running total, and a rounding difference between the two goes to the reading's
        largest part, so statement lines always add up to what was posted.
        """
        cuts = [effective for effective, _ in self.versions[1:]]
        parts: list[ChargePart] = []
        for low, high, piece in split_by_time(start, end, quantity, cuts):
            tariff = self.versions[0][1]
            for effective, version in self.versions:
                if effective <= low:
                    tariff = version
            used = {
                key: (await self._usage(key)).quantity
                for key in period_keys(tariff, low, high, self.tz)
            }
            priced = price_consumption(tariff, low, high, piece, self.tz, used)
            for part in priced:
                if part.period is not None:
                    usage = await self._usage(part.period)
                    usage.quantity = EXACT.add(usage.quantity, part.quantity)
            parts.extend(priced)
        if not parts:
            return 0
        currency = self.account.currency
        shares: list[int] = []
        for part in parts:
            state = await self._state(part.band)
            exact = EXACT.add(state.exact_total, part.amount)
            share = amount_to_post(exact, state.posted_minor, currency)
            state.exact_total = exact
            state.posted_minor += share
            shares.append(share)
        total = await self._state(TOTAL_BAND)
        exact_total = total.exact_total
        for part in parts:
            exact_total = EXACT.add(exact_total, part.amount)
        posted = amount_to_post(exact_total, total.posted_minor, currency)
        total.exact_total = exact_total
        total.posted_minor += posted
        difference = posted - sum(shares)
        if difference:
            largest = max(range(len(parts)), key=lambda i: parts[i].amount)
            shares[largest] += difference
            (await self._state(parts[largest].band)).posted_minor += difference
        for part, share in zip(parts, shares, strict=True):
            self._line(part.start.astimezone(self.tz).date(), part.band, part.quantity, share)
        return posted

    def standing(self, now: datetime) -> int:
        """Daily standing charges due up to now (one per local day, charged once)."""
        per_day = self.versions[-1][1].standing_charge_minor_per_day
        for effective, version in self.versions:
            if effective <= now:
                per_day = version.standing_charge_minor_per_day
        days = standing_charge_days(self.meter.last_standing_day, now, self.tz)
        if not days:
            return 0
        self.meter.last_standing_day = days[-1]
        if per_day == 0:
            return 0
        for day in days:
            self._line(day, STANDING_BAND, Decimal(1), per_day)
        return per_day * len(days)


async def _is_resent(session: AsyncSession, meter_id: int, reading: IncomingReading) -> bool:
    found = await session.scalar(
        select(Reading.id)
        .where(
            Reading.meter_id == meter_id,
            Reading.at == reading.at,
            Reading.value == reading.value,
        )
        .limit(1)
    )
    return found is not None


async def _ingest_meter(charger: Charger, readings: Sequence[IncomingReading]) -> None:
    session, meter, outcome = charger.session, charger.meter, charger.outcome
    # Held readings do not move the meter's last reading, so a re-sent one is found here.
    # A reading is its exact text, as in the database: 5.0 and 5.00 are not the same reading.
    held = {
        (at, format_decimal(value))
        for at, value in await session.execute(
            select(Reading.at, Reading.value).where(
                Reading.meter_id == meter.id, Reading.status.startswith("held_")
            )
        )
    }
    for reading in sorted(readings, key=lambda r: r.at):
        value_text = format_decimal(reading.value)
        if (reading.at, value_text) in held:
            outcome.duplicates += 1
            continue
        if meter.last_at is not None and reading.at <= meter.last_at:
            last_text = None if meter.last_value is None else format_decimal(meter.last_value)
            if reading.at == meter.last_at and value_text == last_text:
                outcome.duplicates += 1
                continue
            if await _is_resent(session, meter.id, reading):
                outcome.duplicates += 1
                continue
        row = Reading(
            meter_id=meter.id,
            account_id=charger.account.id,
            value=reading.value,
            at=reading.at,
            status=ReadingStatus.CHARGED,
            charged_minor=0,
        )
        await apply_reading(charger, row)
        session.add(row)


async def apply_reading(charger: Charger, row: Reading, *, accept: bool = False) -> None:
    """Decide what one reading does to its meter, charge it if it may, and set its status.

    The reading guard (``domain.reading_guard``) holds a step no meter can make (a surge, a
    reset or swap, garbage below the last value) instead of charging it; later readings
    charge from the last accepted value, so a glitch in the middle of good data costs
    nothing. ``accept`` charges a held surge as it is, for a person who says it was real.
    """
    meter, outcome = charger.meter, charger.outcome
    value = row.value
    if meter.last_value is None or meter.last_at is None:
        row.status = ReadingStatus.BASELINE
        outcome.baseline += 1
        meter.last_value, meter.last_at = row.value, row.at
        if charger.account.status == "open":
            outcome.standing_minor += charger.standing(row.at)
        return
    if row.at <= meter.last_at:
        row.status = ReadingStatus.FLAGGED_OUT_OF_ORDER
        outcome.flagged += 1
        return
    if row.at - meter.last_at > MAX_CHARGE_GAP:
        row.status = ReadingStatus.FLAGGED_GAP
        outcome.flagged += 1
        return
    last_value = meter.last_value
    step = classify(last_value, meter.last_at, value, row.at, charger.limits)
    if accept and step.kind == StepKind.SURGE:
        step = Step(StepKind.CONSUMPTION, step.quantity, step.allowed)
    if step.held:
        row.status = ReadingStatus.held(step.kind)
        outcome.held.append((row, step, last_value, meter.last_at))
        return
    if step.kind == StepKind.NOISE:
        # A small step back: not consumption, and the last accepted value stays where it was.
        row.status = ReadingStatus.IGNORED_NOISE
        outcome.noise += 1
        return
    row.consumption = step.quantity
    if charger.account.status != "open":
        # A vacant meter (its account was closed): keep the register moving, bill no one.
        row.status = ReadingStatus.UNBILLED_ACCOUNT_CLOSED
        outcome.unbilled += 1
    else:
        charged = await charger.charge(meter.last_at, row.at, step.quantity)
        row.charged_minor = charged
        row.status = (
            ReadingStatus.CHARGED_WRAP if step.kind == StepKind.WRAP else ReadingStatus.CHARGED
        )
        outcome.charged_minor += charged
        outcome.standing_minor += charger.standing(row.at)
        outcome.accepted += 1
    meter.last_value, meter.last_at = row.value, row.at


def alert_held(charger: Charger) -> None:
    """Emit an ``alert`` for each reading held in this batch (after a flush gave ids)."""
    for row, step, last_value, last_at in charger.outcome.held:
        events.emit(
            charger.session,
            charger.account.id,
            ReadingHeldAlert(
                kind=AlertKind.READING_HELD,
                reading_id=row.id,
                meter_id=charger.meter.id,
                account_id=charger.account.id,
                hold=step.kind,
                value=row.value,
                at=row.at,
                last_value=last_value,
                last_at=last_at,
                allowed=step.allowed.quantize(Decimal("0.001")),
            ),
        )


async def ingest(
    session: AsyncSession, batch: ReadingsBatch, actor: str = "system"
) -> ReadingsResult:
    """Ingest a batch; returns per meter what was charged and the account's balance/supply."""
    by_meter: dict[int, list[IncomingReading]] = defaultdict(list)
    for reading in batch.readings:
        by_meter[reading.meter_id].append(reading)
    # Lock order: meters, then accounts, then books (inside journal.post), all by id.
    meters = {
        m.id: m
        for m in await session.scalars(
            select(Meter)
            # Ids no row can have (they would overflow the column) are simply unknown meters.
            .where(Meter.id.in_([i for i in by_meter if in_id_range(i)]))
            .order_by(Meter.id)
            .with_for_update()
        )
    }
    missing = sorted(set(by_meter) - set(meters))
    if missing:
        first = next(i for i, r in enumerate(batch.readings) if r.meter_id not in meters)
        # Name the first reading at fault, so a client can set it aside and send the rest.
        field = f"readings[{first}].meter_id"
        raise InputError("unknown_meter", f"{field}: meter(s) {missing} do not exist", field)
    account_ids = sorted({m.account_id for m in meters.values()})
    accounts = {
        a.id: a
        for a in await session.scalars(
            select(Account)
            .where(Account.id.in_(account_ids))
            .order_by(Account.id)
            .with_for_update()
        )
    }
    outcomes: list[MeterOutcome] = []
    chargers: list[Charger] = []
    for meter_id in sorted(by_meter):
        meter = meters[meter_id]
        account = accounts[meter.account_id]
        versions = await versions_for_pricing(session, meter.tariff_id)
        charger = Charger(session, meter, account, versions)
        await _ingest_meter(charger, by_meter[meter_id])
        await post_charges(session, charger)
        outcomes.append(charger.outcome)
        chargers.append(charger)
    await session.flush()
    for charger in chargers:
        alert_held(charger)
    now = utcnow()
    states = {a.id: await refresh_account(session, a, now) for a in accounts.values()}
    await session.flush()
    results = []
    for outcome in outcomes:
        state = states[outcome.account_id]
        results.append(
            MeterIngest(
                meter_id=outcome.meter_id,
                account_id=outcome.account_id,
                accepted=outcome.accepted,
                baseline=outcome.baseline,
                duplicates=outcome.duplicates,
                flagged=outcome.flagged,
                held=len(outcome.held),
                ignored_noise=outcome.noise,
                unbilled=outcome.unbilled,
                charged_minor=outcome.charged_minor,
                standing_charged_minor=outcome.standing_minor,
                balance_minor=state.balance_minor,
                emergency_credit_remaining_minor=state.emergency_credit_remaining_minor,
                debt_minor=state.debt_minor,
                supply=state.supply,
            )
        )
    result = ReadingsResult(received=len(batch.readings), meters=results)
    audit.record(
        session,
        actor=actor,
        action="readings.ingest",
        target=",".join(f"meter:{m}" for m in sorted(by_meter))[:64],
        before=None,
        after=result.model_dump(mode="json"),
    )
    return result


async def post_charges(session: AsyncSession, charger: Charger) -> None:
    """One journal transaction for a meter's charges in this batch, with its charge lines."""
    outcome, account = charger.outcome, charger.account
    consumption = outcome.charged_minor
    standing = outcome.standing_minor
    if consumption == 0 and standing == 0 and not outcome.lines:
        return
    book_id = book_of(account)
    legs = [journal.Leg(book_id, -(consumption + standing))]
    if consumption:
        revenue = await journal.system_book(session, journal.REVENUE_CONSUMPTION, account.currency)
        legs.append(journal.Leg(revenue, consumption))
    if standing:
        revenue = await journal.system_book(session, journal.REVENUE_STANDING, account.currency)
        legs.append(journal.Leg(revenue, standing))
    txn = await journal.post(
        session,
        kind="charge",
        account_id=account.id,
        description=f"meter {charger.meter.id} consumption",
        legs=legs,
    )
    session.add_all(
        ChargeLine(
            transaction_id=txn.id,
            account_id=account.id,
            meter_id=charger.meter.id,
            day=day,
            band=band,
            quantity=quantity,
            amount_minor=int(minor),
        )
        for (day, band), (quantity, minor) in sorted(outcome.lines.items())
    )
