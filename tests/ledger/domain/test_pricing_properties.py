"""Property tests for pricing: no drift under cumulative charging, exact apportioning.

The reference computations here are deliberately naive (minute sampling, band arithmetic on
totals) so they check the real implementation rather than repeat it.
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from prepaid_ledger.domain.apportion import apportion, whole
from prepaid_ledger.domain.charging import TOTAL_BAND, ChargeState, Running, charge_consumption
from prepaid_ledger.domain.money import amount_to_post, to_minor
from prepaid_ledger.domain.tariffs import (
    ChargePart,
    FlatTariff,
    Tariff,
    TieredTariff,
    TouTariff,
    parse_tariff,
    period_key,
    period_keys,
    price_consumption,
    tariff_to_json,
)

from .strategies import (
    DST_CHANGES,
    ZONES,
    around_dst_change,
    durations,
    flat_payloads,
    instants,
    quantities,
    tariffs,
    tiered_payloads,
    tou_payloads,
)

FAST = settings(max_examples=60, deadline=None)
QUANTUM = Decimal("1E-9")


def charge_cumulatively(
    tariff: Tariff,
    tz: ZoneInfo,
    start: datetime,
    step: timedelta,
    readings: list[Decimal],
) -> tuple[int, Decimal, dict[str, Decimal]]:
    """Charge readings one by one as the service does; return posted minor units and totals."""
    posted = 0
    exact_total = Decimal(0)
    used: dict[str, Decimal] = defaultdict(Decimal)
    for index, quantity in enumerate(readings):
        low, high = start + step * index, start + step * (index + 1)
        parts = price_consumption(tariff, low, high, quantity, tz, used)
        assert sum(p.quantity for p in parts) == quantity
        for part in parts:
            exact_total += part.amount
            if part.period is not None:
                used[part.period] += part.quantity
        charge = amount_to_post(exact_total, posted, tariff.currency)
        assert charge >= 0
        posted += charge
    return posted, exact_total, used


@FAST
@given(
    tariff=tariffs,
    zone=st.sampled_from(ZONES),
    start=instants,
    count=st.integers(min_value=1, max_value=60),
    each=st.decimals(min_value=0, max_value=2, places=3),
    step_minutes=st.integers(min_value=1, max_value=180),
)
def test_many_small_readings_cost_what_one_big_reading_costs(
    tariff: Tariff, zone: str, start: datetime, count: int, each: Decimal, step_minutes: int
) -> None:
    """Drift: N steady readings charged cumulatively vs the same consumption in one reading."""
    tz = ZoneInfo(zone)
    step = timedelta(minutes=step_minutes)
    posted, exact_total, _ = charge_cumulatively(tariff, tz, start, step, [each] * count)
    # The cumulative rule: what was posted is exactly the rounded exact total.
    assert posted == to_minor(exact_total, tariff.currency)
    one_go = price_consumption(tariff, start, start + step * count, each * count, tz, {})
    one_go_minor = to_minor(sum((p.amount for p in one_go), Decimal(0)), tariff.currency)
    if isinstance(tariff, FlatTariff) or (
        isinstance(tariff, TieredTariff)
        and len(period_keys(tariff, start, start + step * count, tz)) == 1
    ):
        # Quantity-based splits are exact, so the totals agree to the last digit.
        assert posted == one_go_minor
    else:
        # Time-proportional splits differ only by 1e-9 quantities: within one minor unit.
        assert abs(posted - one_go_minor) <= 1


def test_thousand_readings_of_a_hundredth_cost_ten_kwh() -> None:
    tariff = parse_tariff(
        {"name": "f", "currency": "EUR", "unit": "kWh", "kind": "flat", "price": "0.2513"}
    )
    start = datetime(2026, 11, 1, tzinfo=UTC)
    posted, _, _ = charge_cumulatively(
        tariff, ZoneInfo("UTC"), start, timedelta(minutes=1), [Decimal("0.01")] * 1000
    )
    assert posted == 251 == to_minor(Decimal("2.513"), "EUR")


def minutes_by_band(
    tariff: TouTariff, tz: ZoneInfo, start: datetime, end: datetime
) -> dict[str, int]:
    """Reference: sample every minute's middle and look its local time up in the schedule."""
    found: dict[str, int] = defaultdict(int)
    moment = start + timedelta(seconds=30)
    while moment < end:
        local = moment.astimezone(tz)
        schedule = tariff.schedule_for(local.date())
        current = schedule[0]
        for segment in schedule:
            if segment.start <= local.time():
                current = segment
        found[f"{current.band}@{current.price}"] += 1
        moment += timedelta(minutes=1)
    return found


def minutes_priced(parts: list[ChargePart]) -> dict[str, int]:
    """The whole minutes each band and price was charged for, as pricing split them."""
    found: dict[str, int] = defaultdict(int)
    for part in parts:
        found[f"{part.band}@{part.price}"] += (part.end - part.start) // timedelta(minutes=1)
    return dict(found)


def check_chain(parts: list[ChargePart], start: datetime, end: datetime, quantity: Decimal) -> None:
    assert parts, "pricing must return at least one part"
    assert sum(p.quantity for p in parts) == quantity
    assert parts[0].start == start
    assert parts[-1].end == end
    for before, after in pairwise(parts):
        assert before.end == after.start
    for part in parts:
        assert part.start <= part.end
        assert part.quantity >= 0
        assert part.amount == part.quantity * part.price  # exact, never rounded


@FAST
@given(
    payload=tou_payloads(),
    zone=st.sampled_from(ZONES),
    start=instants,
    minutes=st.integers(min_value=1, max_value=2 * 24 * 60),
    quantity=quantities,
)
def test_tou_split_is_proportional_to_local_time(
    payload: dict[str, object], zone: str, start: datetime, minutes: int, quantity: Decimal
) -> None:
    tariff = parse_tariff(payload)
    assert isinstance(tariff, TouTariff)
    tz = ZoneInfo(zone)
    start = start.replace(second=0, microsecond=0)
    end = start + timedelta(minutes=minutes)
    parts = price_consumption(tariff, start, end, quantity, tz)
    check_chain(parts, start, end, quantity)
    total_us = (end - start) // timedelta(microseconds=1)
    for part in parts:
        share = quantity * ((part.end - part.start) // timedelta(microseconds=1)) / total_us
        assert abs(part.quantity - share) <= QUANTUM
    # Segment starts are whole minutes and so are DST changes in these zones.
    assert minutes_priced(parts) == dict(minutes_by_band(tariff, tz, start, end))


@FAST
@given(payload=tou_payloads(), case=around_dst_change(), quantity=quantities)
def test_tou_split_across_dst_changes(
    payload: dict[str, object], case: tuple[str, datetime, datetime], quantity: Decimal
) -> None:
    """Boundaries inside a spring-forward gap or a repeated hour land where the clock says."""
    zone, start, end = case
    tariff = parse_tariff(payload)
    assert isinstance(tariff, TouTariff)
    tz = ZoneInfo(zone)
    parts = price_consumption(tariff, start, end, quantity, tz)
    check_chain(parts, start, end, quantity)
    assert minutes_priced(parts) == dict(minutes_by_band(tariff, tz, start, end))


@settings(max_examples=300, deadline=None)
@given(
    payload=tou_payloads(),
    zone=st.sampled_from(sorted(DST_CHANGES)),
    which=st.integers(min_value=0, max_value=1),
    offset=st.integers(min_value=-240, max_value=240),
    minutes=st.integers(min_value=1, max_value=180),
    quantity=quantities,
)
def test_tou_short_intervals_near_dst_changes(
    payload: dict[str, object],
    zone: str,
    which: int,
    offset: int,
    minutes: int,
    quantity: Decimal,
) -> None:
    """Readings minutes apart (a backlog) near a DST change: priced where the clock says.

    Most such intervals lie within one segment of one local day, which pricing recognises
    without splitting; those that touch a segment start or the change itself must still split.
    """
    tariff = parse_tariff(payload)
    assert isinstance(tariff, TouTariff)
    tz = ZoneInfo(zone)
    start = DST_CHANGES[zone][which] + timedelta(minutes=offset)
    end = start + timedelta(minutes=minutes)
    parts = price_consumption(tariff, start, end, quantity, tz)
    check_chain(parts, start, end, quantity)
    assert minutes_priced(parts) == dict(minutes_by_band(tariff, tz, start, end))


@FAST
@given(
    payload=tou_payloads(),
    zone=st.sampled_from(sorted(DST_CHANGES)),
    which=st.integers(min_value=0, max_value=1),
    before=st.integers(min_value=0, max_value=26 * 60),
    steps=st.lists(st.integers(min_value=1, max_value=45), min_size=1, max_size=120),
)
def test_a_backlog_of_short_readings_is_priced_where_the_clock_says(
    payload: dict[str, object], zone: str, which: int, before: int, steps: list[int]
) -> None:
    """Consecutive readings minutes apart through segment starts, midnight and a DST change.

    Pricing remembers the last run at one price (tariffs._LAST_RUN): every reading of the
    chain, taken in turn as a backlog sends them, must still be priced as the clock says.
    """
    tariff = parse_tariff(payload)
    assert isinstance(tariff, TouTariff)
    tz = ZoneInfo(zone)
    start = DST_CHANGES[zone][which] - timedelta(minutes=before)
    for minutes in steps:
        end = start + timedelta(minutes=minutes)
        parts = price_consumption(tariff, start, end, Decimal("0.025") * minutes, tz)
        check_chain(parts, start, end, Decimal("0.025") * minutes)
        assert minutes_priced(parts) == dict(minutes_by_band(tariff, tz, start, end)), start
        start = end


@FAST
@given(
    tariff=tariffs,
    zone=st.sampled_from(ZONES),
    start=instants,
    steps=st.lists(
        st.tuples(st.integers(min_value=1, max_value=600), quantities), min_size=1, max_size=40
    ),
)
def test_charged_lines_and_bands_add_up_to_what_was_posted(
    tariff: Tariff, zone: str, start: datetime, steps: list[tuple[int, Decimal]]
) -> None:
    """Whatever path a reading takes (one part or several), the books agree to the cent.

    Each charge's statement lines add up to what it posted; every band's posted count adds up
    to the total posted, which is the rounded exact total of all bands.
    """
    tz = ZoneInfo(zone)
    versions = [(datetime(1970, 1, 1, tzinfo=UTC), tariff)]
    state = ChargeState()
    posted = 0
    for minutes, quantity in steps:
        end = start + timedelta(minutes=minutes)
        charge = charge_consumption(
            versions, tz, tariff.currency, state, start=start, end=end, quantity=quantity
        )
        assert sum(line.minor for line in charge.lines) == charge.posted
        posted += charge.posted
        state, start = charge.state, end
    total = state.bands.get(TOTAL_BAND, Running())
    bands = [running for band, running in state.bands.items() if band != TOTAL_BAND]
    assert total.posted == posted == sum(running.posted for running in bands)
    assert total.exact == sum((running.exact for running in bands), Decimal(0))
    assert posted == to_minor(total.exact, tariff.currency)


@FAST
@given(
    quantity=st.one_of(
        quantities,
        st.decimals(min_value=0, max_value=10, places=12),
        st.decimals(min_value=0, allow_nan=False, allow_infinity=False),
    )
)
def test_one_part_is_the_part_apportioning_would_make(quantity: Decimal) -> None:
    """An unsplit interval's quantity has the digits and exponent a split's part would have."""
    alone = whole(quantity)
    assert alone == quantity
    assert alone.as_tuple() == apportion(quantity, [1, 0])[0].as_tuple()


def reference_bands(tariff: TieredTariff, used: Decimal, quantity: Decimal) -> list[Decimal]:
    """Reference: the overlap of [used, used + quantity] with each band's range."""
    result = []
    lower = Decimal(0)
    for band in tariff.bands:
        upper = band.up_to if band.up_to is not None else used + quantity
        result.append(max(Decimal(0), min(upper, used + quantity) - max(lower, used)))
        lower = upper if band.up_to is not None else lower
    return result


@FAST
@given(
    payload=tiered_payloads(),
    zone=st.sampled_from(ZONES),
    start=instants,
    duration=durations,
    quantity=quantities,
    used_before=st.decimals(min_value=0, max_value=800, places=2),
)
def test_tiered_split_at_band_and_period_boundaries(
    payload: dict[str, object],
    zone: str,
    start: datetime,
    duration: timedelta,
    quantity: Decimal,
    used_before: Decimal,
) -> None:
    tariff = parse_tariff(payload)
    assert isinstance(tariff, TieredTariff)
    tz = ZoneInfo(zone)
    end = start + duration
    keys = period_keys(tariff, start, end, tz)
    assert keys == sorted(set(keys))
    assert keys[0] == period_key(tariff.period, start.astimezone(tz))
    assert keys[-1] == period_key(tariff.period, end.astimezone(tz))
    used = {keys[0]: used_before}
    parts = price_consumption(tariff, start, end, quantity, tz, used)
    check_chain(parts, start, end, quantity)
    assert [p.period for p in parts] == sorted(p.period for p in parts)  # type: ignore[type-var]
    assert {p.period for p in parts} == set(keys)
    total_us = (end - start) // timedelta(microseconds=1)
    for key in keys:
        mine = [p for p in parts if p.period == key]
        period_quantity = sum((p.quantity for p in mine), Decimal(0))
        span_us = (mine[-1].end - mine[0].start) // timedelta(microseconds=1)
        if total_us:
            assert abs(period_quantity - quantity * span_us / total_us) <= QUANTUM
        # Within a period, bands fill in order exactly as the reference says.
        expected = reference_bands(tariff, used.get(key, Decimal(0)), period_quantity)
        got = {p.band: p.quantity for p in mine}
        for band, amount in zip(tariff.bands, expected, strict=True):
            assert got.get(band.band, Decimal(0)) == amount
        for part in mine:  # every part lies inside its period, in local time
            assert (
                period_key(tariff.period, part.start.astimezone(tz)) == key
                or part.start == part.end
            )
            if part.end > part.start:
                last_instant = part.end - timedelta(microseconds=1)
                assert period_key(tariff.period, last_instant.astimezone(tz)) == key


@FAST
@given(
    tariff=tariffs,
    zone=st.sampled_from(ZONES),
    start=instants,
    duration=durations,
    quantity=quantities,
)
def test_parts_always_sum_exactly(
    tariff: Tariff, zone: str, start: datetime, duration: timedelta, quantity: Decimal
) -> None:
    tz = ZoneInfo(zone)
    parts = price_consumption(tariff, start, start + duration, quantity, tz, {})
    check_chain(parts, start, start + duration, quantity)


@settings(max_examples=40, deadline=None)
@given(payload=st.one_of(flat_payloads, tou_payloads(), tiered_payloads()))
def test_json_round_trip(payload: dict[str, object]) -> None:
    tariff = parse_tariff(payload)
    assert parse_tariff(tariff_to_json(tariff)) == tariff
