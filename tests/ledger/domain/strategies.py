"""Hypothesis strategies shared by the ledger domain property tests."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st
from prepaid_ledger.domain.tariffs import Tariff, parse_tariff

# Zones with DST at 01:00 UTC (London), local 02:00 (New York), midnight (Santiago: the
# month can start in a gap), 30-minute DST (Lord Howe), none (Kolkata, +05:30) and UTC.
ZONES = [
    "UTC",
    "Europe/London",
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
]

prices = st.decimals(min_value=0, max_value=2, places=4).map(str)
band_names = st.sampled_from([None, "peak", "offpeak", "shoulder"])


@st.composite
def hhmm_starts(draw: st.DrawFn) -> list[str]:
    # Half the starts fall in 00:00-03:00 local, where DST changes and their gaps happen.
    minute = st.integers(1, 1439) | st.integers(1, 180)
    minutes = draw(st.lists(minute, max_size=13, unique=True))
    return [f"{m // 60:02d}:{m % 60:02d}" for m in sorted([0, *minutes])]


@st.composite
def segments(draw: st.DrawFn) -> list[dict[str, object]]:
    result: list[dict[str, object]] = []
    for start in draw(hhmm_starts()):
        entry: dict[str, object] = {"start": start, "price": draw(prices)}
        name = draw(band_names)
        if name is not None:
            entry["band"] = name
        result.append(entry)
    return result


@st.composite
def tou_payloads(draw: st.DrawFn) -> dict[str, object]:
    return {
        "name": "tou",
        "currency": "EUR",
        "unit": "kWh",
        "kind": "tou",
        "standing_charge_minor_per_day": draw(st.integers(0, 500)),
        "segments": draw(segments()),
        "weekend_segments": draw(st.none() | segments()),
    }


@st.composite
def tiered_payloads(draw: st.DrawFn) -> dict[str, object]:
    steps = draw(
        st.lists(st.decimals(min_value="0.5", max_value=200, places=2), min_size=0, max_size=4)
    )
    limits: list[Decimal] = []
    total = Decimal(0)
    for step in steps:
        total += step
        limits.append(total)
    bands: list[dict[str, object]] = [
        {"up_to": str(limit), "price": draw(prices)} for limit in limits
    ]
    bands.append({"up_to": None, "price": draw(prices)})
    return {
        "name": "tiered",
        "currency": "EUR",
        "unit": "kWh",
        "kind": "tiered",
        "period": draw(st.sampled_from(["month", "year"])),
        "bands": bands,
    }


flat_payloads = st.builds(
    lambda price: {"name": "flat", "currency": "EUR", "unit": "m3", "kind": "flat", "price": price},
    prices,
)

tariffs: st.SearchStrategy[Tariff] = st.one_of(
    flat_payloads, tou_payloads(), tiered_payloads()
).map(parse_tariff)

# Instants where local-time rules are hard: DST changes of the zones above and month starts.
SPECIAL_INSTANTS = [
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # New York springs forward at 02:00 local
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),  # New York falls back at 02:00 local
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # London springs forward
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),  # London falls back
    datetime(2026, 4, 5, 3, 0, tzinfo=UTC),  # Santiago falls back at local midnight
    datetime(2026, 9, 6, 4, 0, tzinfo=UTC),  # Santiago springs forward at local midnight
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),  # Lord Howe springs forward by 30 minutes
    datetime(2026, 12, 31, 23, 0, tzinfo=UTC),  # year end
    datetime(2026, 11, 30, 23, 30, tzinfo=UTC),  # month end
]
_uniform = st.datetimes(
    min_value=datetime(2026, 1, 1),  # noqa: DTZ001 - made aware right below
    max_value=datetime(2027, 12, 31),  # noqa: DTZ001
).map(lambda naive: naive.replace(tzinfo=UTC))
_near_special = st.builds(
    lambda base, shift: base + timedelta(seconds=shift),
    st.sampled_from(SPECIAL_INSTANTS),
    st.integers(min_value=-36 * 3600, max_value=6 * 3600),
)
instants = st.one_of(_uniform, _near_special)
durations = st.integers(min_value=0, max_value=3 * 24 * 3600 * 1_000_000).map(
    lambda us: timedelta(microseconds=us)
)
quantities = st.decimals(min_value=0, max_value=1000, places=3)


# Each zone with its DST changes in 2026 (UTC instants), for tests that must straddle one.
DST_CHANGES = {
    "Europe/London": [datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC)],
    "America/New_York": [datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC)],
    "America/Santiago": [datetime(2026, 4, 5, 3, tzinfo=UTC), datetime(2026, 9, 6, 4, tzinfo=UTC)],
    "Australia/Lord_Howe": [
        datetime(2026, 4, 4, 15, tzinfo=UTC),
        datetime(2026, 10, 3, 15, 30, tzinfo=UTC),
    ],
}


@st.composite
def around_dst_change(draw: st.DrawFn) -> tuple[str, datetime, datetime]:
    """Return a zone and an interval of whole minutes that contains one of its DST changes."""
    zone = draw(st.sampled_from(sorted(DST_CHANGES)))
    change = draw(st.sampled_from(DST_CHANGES[zone]))
    before = draw(st.integers(min_value=1, max_value=26 * 60))
    after = draw(st.integers(min_value=1, max_value=26 * 60))
    return zone, change - timedelta(minutes=before), change + timedelta(minutes=after)
