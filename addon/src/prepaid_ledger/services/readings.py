"""Reading ingestion and exact, cumulative charging.

For every meter, account and price band the ledger keeps the exact (unrounded) total charged
so far and the minor units already posted; each new reading posts
``amount_to_post(exact_total, posted)``, so many small readings never drift from one big one.
All readings of one meter in a batch become one journal transaction with charge lines per
local day and band (the statement's source), which keeps the journal small.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Final, Protocol, cast
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
from sqlalchemy import Select, Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain import charging
from prepaid_ledger.domain.charging import STANDING_BAND
from prepaid_ledger.domain.money import format_decimal
from prepaid_ledger.domain.tariffs import MAX_STANDING_DAYS, TieredTariff
from prepaid_ledger.domain.tariffs import Tariff as TariffModel
from prepaid_ledger.errors import InputError
from prepaid_ledger.services import audit, events, journal
from prepaid_ledger.services.accounts import AccountState, book_of, refresh_account
from prepaid_ledger.services.meters import limits_of
from prepaid_ledger.services.sites import site_accounts
from prepaid_ledger.services.tariffs import PricedVersions, versions_for_pricing_many
from prepaid_ledger.services.validation import in_id_range
from prepaid_ledger.store.bulk_insert import insert_rows
from prepaid_ledger.store.database import Database
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
from prepaid_ledger.store.priority import GiveWay, give_way
from prepaid_ledger.store.snapshot_write import take_writer
from prepaid_ledger.store.transient import StaleReadError

#: The longest interval one reading may charge. Charging walks the interval day by day (charge
#: lines per local day, time-of-use segments, tier periods, standing charges), so the work of
#: one request must not grow with a span the sender picks: a reading further than this after
#: the meter's previous one is held (``flagged_gap``) for a person, who re-bases the meter
#: (``/replace``). A meter that really was silent this long needs a look anyway.
MAX_CHARGE_GAP = timedelta(days=MAX_STANDING_DAYS)


class ChargedMeter(Protocol):
    """What charging reads and moves on a meter: a stored row, or a batch's copy of one."""

    id: int
    account_id: int
    tariff_id: int
    unit: str
    model: str | None
    max_power: Decimal | None
    register_modulus: Decimal | None
    last_value: Decimal | None
    last_at: datetime | None
    last_standing_day: date | None


@dataclass(slots=True)
class BatchRow:
    """A row as a batch of readings reads it with Core and moves it in memory.

    Not an ORM object: a poll batch holds a hundred meters and their accounts, and loading,
    tracking and flushing them through the ORM cost about a third of the batch. Its fields are
    its columns, read in their order (``id`` first, ``columns``); what moved of ``MOVABLE`` is
    written back with one UPDATE (``write_moved``).
    """

    MOVABLE: ClassVar[tuple[str, ...]]
    id: int
    #: The MOVABLE columns as read.
    read_as: tuple[object, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.read_as = self._movable()

    def _movable(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.MOVABLE)

    @property
    def moved(self) -> bool:
        """Whether anything in MOVABLE changed since it was read."""
        return self._movable() != self.read_as

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        """Return the row's columns: its fields, in order, all but ``read_as``."""
        return _columns_of(cls)

    def reread(self, row: Sequence[Any]) -> None:
        """Take every column again from ROW (read in ``columns`` order)."""
        for name, value in zip(self.columns(), row, strict=True):
            setattr(self, name, value)
        self.read_as = self._movable()

    @classmethod
    def query(cls, table: Table, ids: Sequence[int]) -> Select[Any]:
        """Select the columns of the rows with these ids, by id."""
        return (
            select(*(table.c[name] for name in cls.columns()))
            .where(table.c.id.in_(ids))
            .order_by(table.c.id)
        )


#: Each kind of BatchRow's columns, worked out once (a PostgreSQL batch rereads a hundred rows).
_COLUMNS: dict[type[BatchRow], tuple[str, ...]] = {}


def _columns_of(kind: type[BatchRow]) -> tuple[str, ...]:
    if kind not in _COLUMNS:
        _COLUMNS[kind] = tuple(each.name for each in fields(kind) if each.init)
    return _COLUMNS[kind]


async def write_moved(session: AsyncSession, table: Table, rows: Iterable[BatchRow]) -> None:
    """Write back the MOVABLE columns of the rows that moved (one executemany UPDATE)."""
    moved = [
        {"b_id": row.id} | {name: getattr(row, name) for name in row.MOVABLE}
        for row in rows
        if row.moved
    ]
    if moved:
        await session.execute(update(table).where(table.c.id == bindparam("b_id")), moved)


@dataclass(slots=True)
class BatchMeter(BatchRow):
    """A meter of a batch: read locked; charging moves its last reading and standing day."""

    MOVABLE: ClassVar = ("last_value", "last_at", "last_standing_day")

    account_id: int
    tariff_id: int
    unit: str
    model: str | None
    max_power: Decimal | None
    register_modulus: Decimal | None
    last_value: Decimal | None
    last_at: datetime | None
    last_standing_day: date | None


@dataclass(slots=True)
class BatchAccount(BatchRow):
    """An account of a batch: read unlocked for pricing; ``refresh_account`` moves its state."""

    MOVABLE: ClassVar = (
        "supply_allowed",
        "exhausted_since",
        "alert_level",
        "cut_scheduled_at",
        "last_published",
    )

    currency: str
    timezone: str
    status: str
    settings: dict[str, Any]
    book_id: int | None
    site_id: int
    supply_allowed: bool
    exhausted_since: datetime | None
    alert_level: int
    cut_scheduled_at: datetime | None
    last_published: dict[str, Any] | None


_METERS = cast("Table", Meter.__table__)
_ACCOUNTS = cast("Table", Account.__table__)


class ReadingLike(Protocol):
    """What charging reads and sets on a reading: a stored row or one on its way in."""

    value: Decimal
    at: datetime
    status: str
    consumption: Decimal | None
    charged_minor: int


@dataclass(slots=True)
class NewReading:
    """A reading on its way in: charged in memory and stored with the batch's one INSERT.

    A plain object, not an ORM row: a backlog brings thousands, and nobody needs their ids
    (held ones become rows, for the id their alert names).
    """

    meter_id: int
    account_id: int
    value: Decimal
    at: datetime
    status: str = ReadingStatus.CHARGED
    consumption: Decimal | None = None
    charged_minor: int = 0


type Held = tuple[ReadingLike, Step, Decimal | None, datetime | None]


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
    held: list[Held] = field(default_factory=list)
    charged_minor: int = 0
    standing_minor: int = 0
    lines: dict[tuple[date, str], list[Decimal]] = field(default_factory=dict)
    #: Readings to store that nobody needs the id of (all but held ones): one bulk INSERT.
    stored: list[NewReading] = field(default_factory=list)


class Charger:
    """One meter's charging in one batch: its state read once, charged in memory, written once.

    The prices are a pure function (``domain.charging``); this holds the rows around it.
    """

    def __init__(
        self,
        session: AsyncSession,
        meter: ChargedMeter,
        account: AccountState,
        versions: list[tuple[datetime, TariffModel]],
        stored: charging.ChargeState,
    ) -> None:
        self.session = session
        self.meter = meter
        self.account = account
        self.versions = versions
        self.tz = ZoneInfo(account.timezone)
        self.outcome = MeterOutcome(meter.id, account.id)
        self.limits = limits_of(meter)
        #: The charge state as stored; ``state`` as charged so far.
        self.stored = self.state = stored

    @classmethod
    async def load(
        cls, session: AsyncSession, meter: ChargedMeter, account: AccountState
    ) -> Charger:
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

    def changes(self, writes: StateWrites) -> None:
        """Add what charging changed in the stored state to WRITES (and take it as stored)."""
        ids = {"meter_id": self.meter.id, "account_id": self.account.id}
        for band, running in self.state.bands.items():
            values = ids | {"band": band, "exact_total": running.exact}
            before = self.stored.bands.get(band)
            if before is None:
                writes.new_bands.append(values | {"posted_minor": running.posted})
            elif before != running:
                writes.bands.append(values | {"posted_minor": running.posted})
        for period, quantity in self.state.usage.items():
            values = ids | {"period": period, "quantity": quantity}
            before_quantity = self.stored.usage.get(period)
            if before_quantity is None:
                writes.new_usage.append(values)
            elif before_quantity != quantity:
                writes.usage.append(values)
        self.stored = self.state


_CHARGE_STATE = cast("Table", ChargeStateRow.__table__)
#: Readings are written with Core: a backlog part is hundreds of rows no ORM object needs.
_READINGS = cast("Table", Reading.__table__)
_PERIOD_USAGE = cast("Table", PeriodUsage.__table__)
_CHARGE_LINES = cast("Table", ChargeLine.__table__)


@dataclass(slots=True)
class StateWrites:
    """The charge state rows a batch changes, written with one statement per kind."""

    bands: list[dict[str, object]] = field(default_factory=list)
    new_bands: list[dict[str, object]] = field(default_factory=list)
    usage: list[dict[str, object]] = field(default_factory=list)
    new_usage: list[dict[str, object]] = field(default_factory=list)

    async def write(self, session: AsyncSession) -> None:
        """Run the UPDATEs and INSERTs (executemany; no ORM object per row)."""
        await _update_rows(session, _CHARGE_STATE, "band", self.bands)
        await _insert_rows(session, _CHARGE_STATE, self.new_bands)
        await _update_rows(session, _PERIOD_USAGE, "period", self.usage)
        await _insert_rows(session, _PERIOD_USAGE, self.new_usage)


async def _update_rows(
    session: AsyncSession, table: Table, key: str, rows: list[dict[str, object]]
) -> None:
    """Set the other columns of each (meter, account, KEY) row to the row's values."""
    if rows:
        columns = table.c
        await session.execute(
            update(table).where(
                columns.meter_id == bindparam("b_meter"),
                columns.account_id == bindparam("b_account"),
                columns[key] == bindparam(f"b_{key}"),
            ),
            [_keyed(row, key) for row in rows],
        )


async def _insert_rows(session: AsyncSession, table: Table, rows: list[dict[str, object]]) -> None:
    if rows:
        await session.execute(insert(table), rows)


def _keyed(row: dict[str, object], key: str) -> dict[str, object]:
    """Return an UPDATE's parameters: the primary key under names no column has."""
    return {
        "b_meter": row["meter_id"],
        "b_account": row["account_id"],
        f"b_{key}": row[key],
    } | {name: value for name, value in row.items() if name not in {"meter_id", "account_id", key}}


@dataclass(slots=True)
class ChargeRows:
    """What charging a batch's meters needs from the database, read with one query each.

    A Home Assistant posts one reading per meter per poll: per-meter queries would make a batch
    of a hundred meters cost hundreds of round trips.
    """

    versions: dict[int, PricedVersions]
    #: (meter, account) -> band -> running charge state.
    bands: dict[tuple[int, int], dict[str, charging.Running]]
    #: (meter, account) -> period -> quantity used in it.
    usage: dict[tuple[int, int], dict[str, Decimal]]

    @classmethod
    async def read(
        cls, session: AsyncSession, pairs: Sequence[tuple[ChargedMeter, AccountState]]
    ) -> ChargeRows:
        """Read the rows of every (meter, account) pair."""
        found = cls(
            await versions_for_pricing_many(session, {meter.tariff_id for meter, _ in pairs}),
            defaultdict(dict),
            defaultdict(dict),
        )
        await found.read_state(session, pairs)
        return found

    @property
    def tiered(self) -> bool:
        """Whether a tariff read is tiered (only its price depends on what a period used)."""
        return any(
            isinstance(tariff, TieredTariff)
            for versions in self.versions.values()
            for _, tariff in versions
        )

    async def read_state(
        self, session: AsyncSession, pairs: Sequence[tuple[ChargedMeter, AccountState]]
    ) -> None:
        """Read the pairs' charge state into ``bands`` (and ``usage``, for a tiered tariff)."""
        owners = {(meter.id, account.id) for meter, account in pairs}
        meter_ids = sorted({meter_id for meter_id, _ in owners})
        account_ids = sorted({account_id for _, account_id in owners})
        state = _CHARGE_STATE.c
        for meter_id, account_id, band, exact, posted in await session.execute(
            select(
                state.meter_id, state.account_id, state.band, state.exact_total, state.posted_minor
            ).where(state.meter_id.in_(meter_ids), state.account_id.in_(account_ids))
        ):
            if (meter_id, account_id) in owners:
                self.bands[meter_id, account_id][band] = charging.Running(exact, posted)
        if not self.tiered:
            return  # only a tiered price depends on what a period used: nothing to read
        usage = _PERIOD_USAGE.c
        for meter_id, account_id, period, quantity in await session.execute(
            select(usage.meter_id, usage.account_id, usage.period, usage.quantity).where(
                usage.meter_id.in_(meter_ids), usage.account_id.in_(account_ids)
            )
        ):
            if (meter_id, account_id) in owners:
                self.usage[meter_id, account_id][period] = quantity

    def charger(self, session: AsyncSession, meter: ChargedMeter, account: AccountState) -> Charger:
        """Return the charger of one meter for its account, on the rows read."""
        owner = (meter.id, account.id)
        return Charger(
            session,
            meter,
            account,
            self.versions[meter.tariff_id],
            charging.ChargeState(self.bands.get(owner, {}), self.usage.get(owner, {})),
        )


#: meter -> (at, exact value text) -> whether the guard holds it: the readings a part of a batch
#: might be re-sending.
type Stored = dict[int, dict[tuple[datetime, str], bool]]


async def stored_between(
    session: AsyncSession, meter_ids: Sequence[int], first: datetime, last: datetime
) -> Stored:
    """Return the readings these meters already sent that were taken in [first, last].

    Only the batch's own time span can hold a re-sent reading: one index range for the whole
    batch (a re-sent backlog of 5,000 readings is not 5,000 lookups). A reading is its exact
    text, as in the database: 5.0 and 5.00 are not the same one.
    """
    stored: Stored = defaultdict(dict)
    for meter_id, at, value, status in await session.execute(
        select(Reading.meter_id, Reading.at, Reading.value, Reading.status).where(
            Reading.meter_id.in_(meter_ids), Reading.at >= first, Reading.at <= last
        )
    ):
        stored[meter_id][at, format_decimal(value)] = status.startswith(HELD_PREFIX)
    return stored


#: Readings priced between two turns of other requests on the event loop (a millisecond or
#: two): a backlog part prices hundreds of one meter's readings, and the other sites' payments
#: and polls wait for each turn. PostgreSQL, 10 sites polled every 3 s with 5 payments/s while
#: 200,000 backlog readings go in: their credit p99 351 -> 238 ms, batch p99 398 -> 254 ms,
#: the backfill 4,514 -> 4,269 readings/s. Not on SQLite (see _ingest_meter). At each turn a
#: payment in flight goes first (store/priority.py).
READINGS_PER_TURN: Final = 16


async def _ingest_meter(
    charger: Charger,
    readings: Sequence[IncomingReading],
    known: dict[tuple[datetime, str], bool],
    budget: GiveWay,
) -> None:
    """Charge one meter's readings of a batch; KNOWN: its readings in the batch's span."""
    session, meter, outcome = charger.session, charger.meter, charger.outcome
    this_batch: set[tuple[datetime, str]] = set()  # written at the end, so not found by SQL
    # SQLite: the part holds the one write lock; others could only work up to it, and wait.
    turns = session.get_bind().dialect.name != "sqlite"
    for position, reading in enumerate(sorted(readings, key=lambda r: r.at)):
        if turns and position and position % READINGS_PER_TURN == 0:
            await give_way(session, budget)  # a backlog meter's readings: let others go
        key = (reading.at, format_decimal(reading.value))
        # Held readings do not move the meter's last reading: a re-sent one is known here.
        if known.get(key):
            outcome.duplicates += 1
            continue
        if meter.last_at is not None and reading.at <= meter.last_at:
            last_text = None if meter.last_value is None else format_decimal(meter.last_value)
            if key == (meter.last_at, last_text) or key in this_batch or key in known:
                outcome.duplicates += 1
                continue
        this_batch.add(key)
        row = NewReading(meter.id, charger.account.id, reading.value, reading.at)
        await apply_reading(charger, row)
        if row.status.startswith(HELD_PREFIX):
            stored = Reading(
                meter_id=row.meter_id,
                account_id=row.account_id,
                value=row.value,
                at=row.at,
                status=row.status,
                charged_minor=row.charged_minor,
            )
            session.add(stored)  # its id goes into the held-reading alert
            outcome.held[-1] = (stored, *outcome.held[-1][1:])
        else:
            outcome.stored.append(row)


async def apply_reading(charger: Charger, row: ReadingLike, *, accept: bool = False) -> None:
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
        if not isinstance(row, Reading):  # _ingest_meter stores every held one as a row
            raise TypeError(f"held reading of meter {charger.meter.id} was not stored")
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


#: Readings written per transaction. A site back from an outage posts its backlog in batches
#: of up to 5,000: written in parts of this many, the database lock (all of SQLite's) and the
#: event loop are free for everyone else's payments between parts, about ten times a second
#: (at 10 sites on SQLite, parts of 500 instead of 1,000: the others' credit p99 during a
#: backfill 348 -> 212 ms, the backfill itself 5,100 -> 5,656 readings/s).
PART_SIZE: Final = 500

#: Part of a batch: each reading with its position in the batch (errors name the position).
type Part = Sequence[tuple[int, IncomingReading]]


def split_batch(batch: ReadingsBatch, size: int = PART_SIZE) -> list[Part]:
    """Cut a batch into parts of at most SIZE readings, each meter's readings in time order.

    A meter's readings may run on into the next part: written after the first, they charge
    from where it ended, as one batch would. A re-sent reading is free, so a batch of which
    only the first parts were written is simply sent again.
    """
    ordered = sorted(enumerate(batch.readings), key=lambda item: (item[1].meter_id, item[1].at))
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


#: What a meter's readings did, counted: a meter in two parts of a batch adds them up.
_COUNTS: Final = (
    "accepted",
    "baseline",
    "duplicates",
    "flagged",
    "held",
    "ignored_noise",
    "unbilled",
    "charged_minor",
    "standing_charged_minor",
)


def merge_results(results: Sequence[ReadingsResult]) -> ReadingsResult:
    """Join the answers of a batch's parts into the batch's.

    Counts add up per meter; each account's state is as the last part that moved it left it.
    """
    meters: dict[int, MeterIngest] = {}
    latest: dict[int, MeterIngest] = {}
    for result in results:
        for meter in result.meters:
            latest[meter.account_id] = meter
            before = meters.get(meter.meter_id)
            meters[meter.meter_id] = (
                meter
                if before is None
                else meter.model_copy(
                    update={name: getattr(before, name) + getattr(meter, name) for name in _COUNTS}
                )
            )
    state = ("balance_minor", "emergency_credit_remaining_minor", "debt_minor", "supply")
    return ReadingsResult(
        received=sum(result.received for result in results),
        meters=[
            meter.model_copy(
                update={name: getattr(latest[meter.account_id], name) for name in state}
            )
            for meter in meters.values()
        ],
    )


async def ingest(
    session: AsyncSession, part: Part, actor: str = "system", site_id: int | None = None
) -> ReadingsResult:
    """Ingest a part of a batch; returns per meter what was charged and the account's state.

    SITE_ID: the posting site's; another site's meter is an unknown meter to it.
    """
    by_meter: dict[int, list[IncomingReading]] = defaultdict(list)
    for _, reading in part:
        by_meter[reading.meter_id].append(reading)
    # Lock order: meters, then accounts, then books (inside journal.post), all by id.
    # Ids no row can have (they would overflow the column) are simply unknown meters.
    wanted = BatchMeter.query(_METERS, [i for i in by_meter if in_id_range(i)]).with_for_update()
    if site_id is not None:
        wanted = wanted.where(_METERS.c.account_id.in_(site_accounts(site_id)))
    read = {row[0]: tuple(row) for row in await session.execute(wanted)}
    meters = {meter_id: BatchMeter(*row) for meter_id, row in read.items()}
    missing = sorted(set(by_meter) - set(meters))
    if missing:
        first = next(i for i, r in part if r.meter_id not in meters)
        # Name the first reading at fault, so a client can set it aside and send the rest.
        field = f"readings[{first}].meter_id"
        raise InputError("unknown_meter", f"{field}: meter(s) {missing} do not exist", field)
    account_ids = sorted({m.account_id for m in meters.values()})
    # Read, not locked: pricing takes most of the part's time, and a payment to one of these
    # accounts (which locks it) must not wait for all of it. Locked before writing, below.
    accounts = {
        row[0]: BatchAccount(*row)
        for row in await session.execute(BatchAccount.query(_ACCOUNTS, account_ids))
    }
    priced_as = {a.id: a.status for a in accounts.values()}
    pairs = [(meters[i], accounts[meters[i].account_id]) for i in sorted(by_meter)]
    rows = await ChargeRows.read(session, pairs)
    times = [reading.at for _, reading in part]
    known = await stored_between(session, sorted(meters), min(times), max(times))
    chargers: list[Charger] = []
    budget = GiveWay()
    for meter, account in pairs:
        charger = rows.charger(session, meter, account)
        await _ingest_meter(charger, by_meter[meter.id], known.get(meter.id, {}), budget)
        chargers.append(charger)
        # Pricing a part takes tens of milliseconds of CPU: let other requests (a payment, an
        # event stream) have the event loop between meters rather than wait for all of it,
        # and payments in flight finish first (store/priority.py).
        await give_way(session, budget)
    outcomes = [charger.outcome for charger in chargers]
    received = utcnow()
    stored = [_reading_values(row, received) for outcome in outcomes for row in outcome.stored]
    on_snapshot = await take_writer(session)  # SQLite, priced on a snapshot in a worker
    if on_snapshot:
        await PricedOn(read, rows, known).check(session, wanted, pairs, min(times), max(times))
    await _lock_accounts(session, accounts, priced_as, on_snapshot=on_snapshot)
    await write_moved(session, _METERS, meters.values())
    await post_all_charges(session, chargers)
    await insert_rows(session, _READINGS, stored)
    await session.flush()
    for charger in chargers:
        alert_held(charger)
    now = utcnow()
    balances = await journal.book_balances(session, [book_of(a) for a in accounts.values()])
    states = {
        a.id: await refresh_account(session, a, now, balance=balances.get(book_of(a), 0))
        for a in accounts.values()
    }
    await write_moved(session, _ACCOUNTS, accounts.values())
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
    result = ReadingsResult(received=len(part), meters=results)
    audit.record(
        session,
        actor=actor,
        action="readings.ingest",
        target=",".join(f"meter:{m}" for m in sorted(by_meter))[:64],
        before=None,
        after=result.model_dump(mode="json"),
    )
    return result


async def meter_owners(session: AsyncSession, meter_ids: Sequence[int]) -> dict[int, int]:
    """Return the account of each of these meters that exists (meter -> account)."""
    wanted = [meter_id for meter_id in meter_ids if in_id_range(meter_id)]
    found = await session.execute(select(Meter.id, Meter.account_id).where(Meter.id.in_(wanted)))
    return dict(found.tuples().all())


async def write_part(db: Database, part: Part, actor: str, site_id: int | None) -> ReadingsResult:
    """Ingest PART in a write transaction of its own (the service's, or the backlog worker's)."""
    return await db.write(functools.partial(ingest, part=part, actor=actor, site_id=site_id))


@dataclass(frozen=True, slots=True)
class PricedOn:
    """What pricing a part read of its meters: their rows, charge state and stored readings."""

    meters: dict[int, tuple[Any, ...]]
    rows: ChargeRows
    known: Stored

    async def check(
        self,
        session: AsyncSession,
        wanted: Select[Any],
        pairs: Sequence[tuple[ChargedMeter, AccountState]],
        first: datetime,
        last: datetime,
    ) -> None:
        """StaleReadError if any of it moved since (read again with the writer taken).

        Only charging these meters moves any of it: another batch of theirs, a held reading
        accepted, a meter replaced. The accounts are read again by ``_lock_accounts``.
        """
        meters = {row[0]: tuple(row) for row in await session.execute(wanted)}
        rows = ChargeRows(self.rows.versions, defaultdict(dict), defaultdict(dict))
        await rows.read_state(session, pairs)
        known = await stored_between(session, sorted(meters), first, last)
        if (meters, rows.bands, rows.usage, known) != (
            self.meters,
            self.rows.bands,
            self.rows.usage,
            self.known,
        ):
            raise StaleReadError("a meter of the batch was charged while the batch was priced")


async def _lock_accounts(
    session: AsyncSession,
    accounts: dict[int, BatchAccount],
    priced_as: dict[int, str],
    *,
    on_snapshot: bool = False,
) -> None:
    """Lock and read again a part's accounts; StaleReadError if one was opened or closed since.

    Pricing reads only an account's status besides what never changes (its currency and time
    zone); what a payment meanwhile moved (supply, alerts, what was published) is taken as
    locked, so writing back the batch's changes loses none of the payment's. On SQLite the
    part holds the one writer throughout (nothing can have changed) unless it was priced ON A
    SNAPSHOT (store/snapshot_write.py), and has the writer now: no lock needed.
    """
    if session.get_bind().dialect.name == "sqlite" and not on_snapshot:
        return
    for row in await session.execute(
        BatchAccount.query(_ACCOUNTS, sorted(accounts)).with_for_update()
    ):
        accounts[row[0]].reread(row)
    if any(account.status != priced_as[account.id] for account in accounts.values()):
        raise StaleReadError("an account of the batch was opened or closed while it was priced")


async def post_charges(session: AsyncSession, charger: Charger) -> None:
    """One journal transaction for a meter's charges in this batch, with its charge lines."""
    await post_all_charges(session, [charger])


async def post_all_charges(session: AsyncSession, chargers: Sequence[Charger]) -> None:
    """One journal transaction per meter with charges, with its charge lines, posted together.

    Written in one go, the revenue books every meter of a site shares move once per batch
    (each site has its own: journal.system_book_key).
    """
    books: dict[tuple[str, str, int], int] = {}

    async def revenue(name: str, account: AccountState) -> int:
        key = (name, account.currency, account.site_id)
        if key not in books:
            books[key] = await journal.system_book(session, *key)
        return books[key]

    postings: list[journal.Posting] = []
    posted: list[Charger] = []
    writes = StateWrites()
    for charger in chargers:
        charger.changes(writes)
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
    await writes.write(session)
    if not postings:
        return
    txn_ids = await journal.post_many(session, postings)
    lines = [
        {
            "transaction_id": txn_id,
            "account_id": charger.account.id,
            "meter_id": charger.meter.id,
            "day": day,
            "band": band,
            "quantity": quantity,
            "amount_minor": int(minor),
        }
        for txn_id, charger in zip(txn_ids, posted, strict=True)
        for (day, band), (quantity, minor) in sorted(charger.outcome.lines.items())
    ]
    if lines:
        await session.execute(insert(_CHARGE_LINES), lines)


def _reading_values(row: NewReading, received: datetime) -> dict[str, object]:
    """Return a reading's columns for a bulk insert."""
    return {
        "meter_id": row.meter_id,
        "account_id": row.account_id,
        "value": row.value,
        "at": row.at,
        "received_at": received,
        "status": row.status,
        "consumption": row.consumption,
        "charged_minor": row.charged_minor or 0,
    }
