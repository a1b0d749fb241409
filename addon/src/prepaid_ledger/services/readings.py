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
from prepaid_meter_contract.vocabulary import (
    HELD_PREFIX,
    AccountStatus,
    AlertKind,
    ReadingStatus,
    StepKind,
)
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain import charging
from prepaid_ledger.domain.charging import STANDING_BAND
from prepaid_ledger.domain.money import format_decimal
from prepaid_ledger.domain.tariffs import MAX_STANDING_DAYS
from prepaid_ledger.domain.tariffs import Tariff as TariffModel
from prepaid_ledger.errors import InputError
from prepaid_ledger.services import audit, events, journal
from prepaid_ledger.services.accounts import book_of, refresh_account
from prepaid_ledger.services.meters import limits_of
from prepaid_ledger.services.sites import site_accounts
from prepaid_ledger.services.tariffs import PricedVersions, versions_for_pricing_many
from prepaid_ledger.services.validation import in_id_range
from prepaid_ledger.store.models import (
    Account,
    ChargeLine,
    Meter,
    PeriodUsage,
    Reading,
    utcnow,
)
from prepaid_ledger.store.models import (
    ChargeState as ChargeStateRow,
)

#: The longest interval one reading may charge. Charging walks the interval day by day (charge
#: lines per local day, time-of-use segments, tier periods, standing charges), so the work of
#: one request must not grow with a span the sender picks: a reading further than this after
#: the meter's previous one is held (``flagged_gap``) for a person, who re-bases the meter
#: (``/replace``). A meter that really was silent this long needs a look anyway.
MAX_CHARGE_GAP = timedelta(days=MAX_STANDING_DAYS)


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
    #: Readings to store that nobody needs the id of (all but held ones): one bulk INSERT.
    stored: list[Reading] = field(default_factory=list)


class Charger:
    """One meter's charging in one batch: its state read once, charged in memory, written once.

    The prices are a pure function (``domain.charging``); this holds the rows around it.
    """

    def __init__(  # noqa: PLR0917 - built by load() only
        self,
        session: AsyncSession,
        meter: Meter,
        account: Account,
        versions: list[tuple[datetime, TariffModel]],
        band_rows: dict[str, ChargeStateRow],
        usage_rows: dict[str, PeriodUsage],
    ) -> None:
        self.session = session
        self.meter = meter
        self.account = account
        self.versions = versions
        self.tz = ZoneInfo(account.timezone)
        self.outcome = MeterOutcome(meter.id, account.id)
        self.limits = limits_of(meter)
        self._band_rows = band_rows
        self._usage_rows = usage_rows
        self.state = charging.ChargeState(
            {
                band: charging.Running(row.exact_total, row.posted_minor)
                for band, row in band_rows.items()
            },
            {period: row.quantity for period, row in usage_rows.items()},
        )

    @classmethod
    async def load(cls, session: AsyncSession, meter: Meter, account: Account) -> Charger:
        """Read the meter's tariff versions and its charge state for the account."""
        rows = await ChargeRows.read(session, [(meter, account)])
        return rows.charger(session, meter, account)

    def _line(self, day: date, band: str, quantity: Decimal, minor: int) -> None:
        line = self.outcome.lines.setdefault((day, band), [Decimal(0), Decimal(0)])
        line[0] += quantity
        line[1] += minor

    def charge(self, start: datetime, end: datetime, quantity: Decimal) -> int:
        """Charge consumption over [start, end]; returns the minor units posted."""
        result = charging.charge_consumption(
            self.versions,
            self.tz,
            self.account.currency,
            self.state,
            start=start,
            end=end,
            quantity=quantity,
        )
        self.state = result.state
        for line in result.lines:
            self._line(line.day, line.band, line.quantity, line.minor)
        return result.posted

    def standing(self, now: datetime) -> int:
        """Daily standing charges due up to now (one per local day, charged once)."""
        due = charging.standing_due(self.versions, self.meter.last_standing_day, now, self.tz)
        if not due.days:
            return 0
        self.meter.last_standing_day = due.days[-1]
        for day in due.days if due.per_day_minor else ():
            self._line(day, STANDING_BAND, Decimal(1), due.per_day_minor)
        return due.minor

    def store(self) -> None:
        """Write the charge state back onto its rows (the unit of work writes what changed)."""
        ids = {"meter_id": self.meter.id, "account_id": self.account.id}
        for band, running in self.state.bands.items():
            if (row := self._band_rows.get(band)) is None:
                row = self._band_rows[band] = ChargeStateRow(**ids, band=band)
                self.session.add(row)
            row.exact_total, row.posted_minor = running.exact, running.posted
        for period, quantity in self.state.usage.items():
            if (usage := self._usage_rows.get(period)) is None:
                usage = self._usage_rows[period] = PeriodUsage(**ids, period=period)
                self.session.add(usage)
            usage.quantity = quantity


@dataclass(slots=True)
class ChargeRows:
    """What charging a batch's meters needs from the database, read with one query each.

    A Home Assistant posts one reading per meter per poll: per-meter queries would make a batch
    of a hundred meters cost hundreds of round trips.
    """

    versions: dict[int, PricedVersions]
    #: (meter, account) -> band -> running charge state.
    bands: dict[tuple[int, int], dict[str, ChargeStateRow]]
    #: (meter, account) -> period -> quantity used in it.
    usage: dict[tuple[int, int], dict[str, PeriodUsage]]
    #: meter -> (at, exact value text) of its held readings.
    held: dict[int, set[tuple[datetime, str]]]

    @classmethod
    async def read(
        cls, session: AsyncSession, pairs: Sequence[tuple[Meter, Account]]
    ) -> ChargeRows:
        """Read the rows of every (meter, account) pair."""
        owners = {(meter.id, account.id) for meter, account in pairs}
        meter_ids = sorted({meter_id for meter_id, _ in owners})
        account_ids = sorted({account_id for _, account_id in owners})
        found = cls(
            await versions_for_pricing_many(session, {meter.tariff_id for meter, _ in pairs}),
            defaultdict(dict),
            defaultdict(dict),
            defaultdict(set),
        )
        for band in await session.scalars(
            select(ChargeStateRow).where(
                ChargeStateRow.meter_id.in_(meter_ids), ChargeStateRow.account_id.in_(account_ids)
            )
        ):
            if (band.meter_id, band.account_id) in owners:
                found.bands[band.meter_id, band.account_id][band.band] = band
        for usage in await session.scalars(
            select(PeriodUsage).where(
                PeriodUsage.meter_id.in_(meter_ids), PeriodUsage.account_id.in_(account_ids)
            )
        ):
            if (usage.meter_id, usage.account_id) in owners:
                found.usage[usage.meter_id, usage.account_id][usage.period] = usage
        # Held readings do not move the meter's last reading, so a re-sent one is found here.
        # A reading is its exact text, as in the database: 5.0 and 5.00 are not the same one.
        for meter_id, at, value in await session.execute(
            select(Reading.meter_id, Reading.at, Reading.value).where(
                Reading.meter_id.in_(meter_ids), Reading.status.startswith(HELD_PREFIX)
            )
        ):
            found.held[meter_id].add((at, format_decimal(value)))
        return found

    def charger(self, session: AsyncSession, meter: Meter, account: Account) -> Charger:
        """Return the charger of one meter for its account, on the rows read."""
        owner = (meter.id, account.id)
        return Charger(
            session,
            meter,
            account,
            self.versions[meter.tariff_id],
            self.bands.get(owner, {}),
            self.usage.get(owner, {}),
        )


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


async def _ingest_meter(
    charger: Charger, readings: Sequence[IncomingReading], held: set[tuple[datetime, str]]
) -> None:
    session, meter, outcome = charger.session, charger.meter, charger.outcome
    this_batch: set[tuple[datetime, str]] = set()  # written at the end, so not found by SQL
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
            if (reading.at, value_text) in this_batch or await _is_resent(
                session, meter.id, reading
            ):
                outcome.duplicates += 1
                continue
        this_batch.add((reading.at, value_text))
        row = Reading(
            meter_id=meter.id,
            account_id=charger.account.id,
            value=reading.value,
            at=reading.at,
            status=ReadingStatus.CHARGED,
            charged_minor=0,
        )
        await apply_reading(charger, row)
        if row.status.startswith(HELD_PREFIX):
            session.add(row)  # its id goes into the held-reading alert
        else:
            outcome.stored.append(row)


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
        if charger.account.status == AccountStatus.OPEN:
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
    if charger.account.status != AccountStatus.OPEN:
        # A vacant meter (its account was closed): keep the register moving, bill no one.
        row.status = ReadingStatus.UNBILLED_ACCOUNT_CLOSED
        outcome.unbilled += 1
    else:
        charged = charger.charge(meter.last_at, row.at, step.quantity)
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
    session: AsyncSession, batch: ReadingsBatch, actor: str = "system", site_id: int | None = None
) -> ReadingsResult:
    """Ingest a batch; returns per meter what was charged and the account's balance/supply.

    SITE_ID: the posting site's; another site's meter is an unknown meter to it.
    """
    by_meter: dict[int, list[IncomingReading]] = defaultdict(list)
    for reading in batch.readings:
        by_meter[reading.meter_id].append(reading)
    # Lock order: meters, then accounts, then books (inside journal.post), all by id.
    wanted = (
        select(Meter)
        # Ids no row can have (they would overflow the column) are simply unknown meters.
        .where(Meter.id.in_([i for i in by_meter if in_id_range(i)]))
        .order_by(Meter.id)
        .with_for_update()
    )
    if site_id is not None:
        wanted = wanted.where(Meter.account_id.in_(site_accounts(site_id)))
    meters = {m.id: m for m in await session.scalars(wanted)}
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
    pairs = [(meters[i], accounts[meters[i].account_id]) for i in sorted(by_meter)]
    rows = await ChargeRows.read(session, pairs)
    chargers: list[Charger] = []
    for meter, account in pairs:
        charger = rows.charger(session, meter, account)
        await _ingest_meter(charger, by_meter[meter.id], rows.held.get(meter.id, set()))
        chargers.append(charger)
    await post_all_charges(session, chargers)
    outcomes = [charger.outcome for charger in chargers]
    stored = [_reading_values(row) for outcome in outcomes for row in outcome.stored]
    if stored:
        await session.execute(insert(Reading), stored)
    await session.flush()
    for charger in chargers:
        alert_held(charger)
    now = utcnow()
    balances = await journal.book_balances(session, [book_of(a) for a in accounts.values()])
    states = {
        a.id: await refresh_account(session, a, now, balance=balances.get(book_of(a), 0))
        for a in accounts.values()
    }
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
    await post_all_charges(session, [charger])


async def post_all_charges(session: AsyncSession, chargers: Sequence[Charger]) -> None:
    """One journal transaction per meter with charges, with its charge lines, posted together.

    Written in one go, the revenue books every meter of a site shares move once per batch
    (each site has its own: journal.system_book_key).
    """
    books: dict[tuple[str, str, int], int] = {}

    async def revenue(name: str, account: Account) -> int:
        key = (name, account.currency, account.site_id)
        if key not in books:
            books[key] = await journal.system_book(session, *key)
        return books[key]

    postings: list[journal.Posting] = []
    posted: list[Charger] = []
    for charger in chargers:
        charger.store()
        outcome, account = charger.outcome, charger.account
        consumption = outcome.charged_minor
        standing = outcome.standing_minor
        if consumption == 0 and standing == 0 and not outcome.lines:
            continue
        legs = [journal.Leg(book_of(account), -(consumption + standing))]
        if consumption:
            book = await revenue(journal.REVENUE_CONSUMPTION, account)
            legs.append(journal.Leg(book, consumption))
        if standing:
            book = await revenue(journal.REVENUE_STANDING, account)
            legs.append(journal.Leg(book, standing))
        description = f"meter {charger.meter.id} consumption"
        postings.append(journal.Posting("charge", account.id, description, legs))
        posted.append(charger)
    if not postings:
        return
    txns = await journal.post_many(session, postings)
    lines = [
        {
            "transaction_id": txn.id,
            "account_id": charger.account.id,
            "meter_id": charger.meter.id,
            "day": day,
            "band": band,
            "quantity": quantity,
            "amount_minor": int(minor),
        }
        for txn, charger in zip(txns, posted, strict=True)
        for (day, band), (quantity, minor) in sorted(charger.outcome.lines.items())
    ]
    if lines:
        await session.execute(insert(ChargeLine), lines)


def _reading_values(row: Reading) -> dict[str, object]:
    """Return a reading's columns for a bulk INSERT."""
    return {
        "meter_id": row.meter_id,
        "account_id": row.account_id,
        "value": row.value,
        "at": row.at,
        "received_at": utcnow(),
        "status": row.status,
        "consumption": row.consumption,
        "charged_minor": row.charged_minor or 0,
    }
