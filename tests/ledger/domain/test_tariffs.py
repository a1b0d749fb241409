"""Tariff parsing and pricing: examples that pin the semantics, DST cases included."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prepaid_ledger.domain.apportion import apportion, split_by_time
from prepaid_ledger.domain.localtime import parse_timezone
from prepaid_ledger.domain.tariffs import (
    FlatTariff,
    TieredTariff,
    TouTariff,
    parse_tariff,
    period_keys,
    price_consumption,
    standing_charge_days,
    tariff_to_json,
)
from prepaid_ledger.errors import InputError

LONDON = ZoneInfo("Europe/London")
D = Decimal


def flat(**extra: Any) -> dict[str, Any]:
    return {
        "name": "Flat",
        "currency": "EUR",
        "unit": "kWh",
        "kind": "flat",
        "price": "0.25",
    } | extra


def tou(**extra: Any) -> dict[str, Any]:
    body = {
        "name": "Economy 7",
        "currency": "GBP",
        "unit": "kWh",
        "kind": "tou",
        "standing_charge_minor_per_day": 53,
        "segments": [
            {"start": "00:00", "price": "0.10", "band": "night"},
            {"start": "07:00", "price": "0.30", "band": "day"},
            {"start": "23:00", "price": "0.10", "band": "night"},
        ],
    }
    return body | extra


def tiered(**extra: Any) -> dict[str, Any]:
    body = {
        "name": "Blocks",
        "currency": "ZAR",
        "unit": "kWh",
        "kind": "tiered",
        "period": "month",
        "bands": [
            {"up_to": "50", "price": "0"},
            {"up_to": "350", "price": "2.5"},
            {"up_to": None, "price": "3.1"},
        ],
    }
    return body | extra


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- parsing ------------------------------------------------------------------------------


def test_parse_each_kind_and_round_trip() -> None:
    for body in (
        flat(),
        tou(),
        tiered(),
        tou(weekend_segments=[{"start": "00:00", "price": "0.2"}]),
    ):
        tariff = parse_tariff(body)
        again = parse_tariff(tariff_to_json(tariff))
        assert again == tariff
        assert tariff_to_json(again) == tariff_to_json(tariff)
    assert isinstance(parse_tariff(flat()), FlatTariff)
    economy = parse_tariff(tou())
    assert isinstance(economy, TouTariff)
    assert [s.band for s in economy.segments] == ["night", "day", "night"]
    assert economy.standing_charge_minor_per_day == 53
    blocks = parse_tariff(tiered())
    assert isinstance(blocks, TieredTariff)
    assert [b.band for b in blocks.bands] == ["tier1", "tier2", "tier3"]
    assert blocks.bands[-1].up_to is None


def test_default_band_names_and_ignored_keys() -> None:
    tariff = parse_tariff(
        tou(
            segments=[{"start": "00:00", "price": "1"}, {"start": "16:30", "price": "2"}],
            weekend_segments=[{"start": "00:00", "price": "0.5"}],
            id=7,
        ),
        ignore={"id"},
    )
    assert isinstance(tariff, TouTariff)
    assert [s.band for s in tariff.segments] == ["00:00", "16:30"]
    assert tariff.weekend_segments is not None
    assert tariff.weekend_segments[0].band == "weekend 00:00"
    assert tariff.schedule_for(date(2026, 11, 21)) == tariff.weekend_segments  # Saturday
    assert tariff.schedule_for(date(2026, 11, 20)) == tariff.segments  # Friday


def test_fourteen_segments_allowed() -> None:
    segments = [{"start": f"{h:02d}:00", "price": "0.1"} for h in range(14)]
    tariff = parse_tariff(tou(segments=segments))
    assert isinstance(tariff, TouTariff)
    assert len(tariff.segments) == 14


BAD_TARIFFS: list[tuple[str, object]] = [
    ("kind", flat(kind="stepped")),
    ("kind", flat(kind={})),
    ("kind", flat(kind=["flat"])),
    ("name", flat(name="")),
    ("name", flat(name="x" * 101)),
    ("currency", flat(currency="euro")),
    ("unit", flat(unit="kwh")),
    ("standing_charge_minor_per_day", flat(standing_charge_minor_per_day=-1)),
    ("standing_charge_minor_per_day", flat(standing_charge_minor_per_day=1.5)),
    ("standing_charge_minor_per_day", flat(standing_charge_minor_per_day=True)),
    # Bounded to what the ledger can post (10**12 minor units, docs/ledger-api.md).
    ("standing_charge_minor_per_day", flat(standing_charge_minor_per_day=10**12 + 1)),
    ("standing_charge_minor_per_day", flat(standing_charge_minor_per_day=10**30)),
    ("price", flat(price="10000.0000000001")),
    ("price", flat(price="99999999999999999999999999999999")),
    (
        "bands[1].price",
        tiered(bands=[{"up_to": "10", "price": "1"}, {"up_to": None, "price": "10001"}]),
    ),
    ("price", flat(price=0.25)),
    ("price", flat(price="-0.25")),
    ("price", flat(price="1e-3")),
    ("price", flat(price="0.12345678901")),
    ("segments[0].price", tou(segments=[{"start": "00:00", "price": "0.00000000001"}])),
    ("segments", flat(segments=[])),
    ("missing", {"kind": "flat", "price": "1", "currency": "EUR", "unit": "kWh"}),
    ("flat", {"kind": "flat", "name": "x", "currency": "EUR", "unit": "kWh"}),
    ("tou", {k: v for k, v in tou().items() if k != "segments"}),
    ("segments", tou(segments=[])),
    ("segments[0].start", tou(segments=[{"start": "01:00", "price": "1"}])),
    (
        "segments[1].start",
        tou(segments=[{"start": "00:00", "price": "1"}, {"start": "24:00", "price": "1"}]),
    ),
    (
        "segments[1].start",
        tou(segments=[{"start": "00:00", "price": "1"}, {"start": "7:00", "price": "1"}]),
    ),
    (
        "segments[2].start",
        tou(
            segments=[
                {"start": "00:00", "price": "1"},
                {"start": "08:00", "price": "1"},
                {"start": "08:00", "price": "2"},
            ]
        ),
    ),
    ("segments[1]", tou(segments=[{"start": "00:00", "price": "1"}, {"start": "08:00"}])),
    ("segments[0]", tou(segments=[{"start": "00:00", "price": "1", "rate": "x"}])),
    ("segments[0]", tou(segments=["00:00"])),
    ("segments[0].band", tou(segments=[{"start": "00:00", "price": "1", "band": ""}])),
    ("segments[0].band", tou(segments=[{"start": "00:00", "price": "1", "band": "b" * 33}])),
    ("at most 14", tou(segments=[{"start": f"{h:02d}:00", "price": "1"} for h in range(15)])),
    ("weekend_segments[0].price", tou(weekend_segments=[{"start": "00:00", "price": "-1"}])),
    ("weekend_segments", tou(weekend_segments={"start": "00:00"})),
    ("period", tiered(period="week")),
    ("tiered", {k: v for k, v in tiered().items() if k != "bands"}),
    (
        "bands[2].up_to",
        tiered(
            bands=[
                {"up_to": "5", "price": "1"},
                {"up_to": "9", "price": "1"},
                {"up_to": "10", "price": "1"},
            ]
        ),
    ),
    (
        "bands[0].up_to",
        tiered(bands=[{"up_to": None, "price": "1"}, {"up_to": None, "price": "1"}]),
    ),
    (
        "bands[1].up_to",
        tiered(
            bands=[
                {"up_to": "5", "price": "1"},
                {"up_to": "5", "price": "1"},
                {"up_to": None, "price": "1"},
            ]
        ),
    ),
    ("bands[0].up_to", tiered(bands=[{"up_to": "0", "price": "1"}, {"up_to": None, "price": "1"}])),
    ("bands[0].up_to", tiered(bands=[{"up_to": 100, "price": "1"}, {"up_to": None, "price": "1"}])),
    ("bands[0]", tiered(bands=[{"price": "1"}])),
    ("unknown field(s) segments", flat(segments=[])),
    ("tariff must be a JSON object", ["flat"]),
]


@pytest.mark.parametrize(("field", "body"), BAD_TARIFFS)
def test_bad_tariffs_name_the_field(field: str, body: Any) -> None:
    with pytest.raises(InputError) as info:
        parse_tariff(body)
    assert field in info.value.message
    assert info.value.code in {
        "invalid_tariff",
        "invalid_currency",
        "invalid_decimal",
        "negative_decimal",
        "invalid_amount",
    }


# --- pricing ------------------------------------------------------------------------------


def test_flat_is_one_exact_part() -> None:
    parts = price_consumption(
        parse_tariff(flat(price="0.2513")), at(2026, 5, 1), at(2026, 5, 2), D("3.33"), LONDON
    )
    assert len(parts) == 1
    assert (parts[0].band, parts[0].period, parts[0].quantity, parts[0].amount) == (
        "flat",
        None,
        D("3.33"),
        D("0.836829"),
    )
    assert (parts[0].start, parts[0].end) == (at(2026, 5, 1), at(2026, 5, 2))


def test_tou_splits_in_proportion_to_local_time() -> None:
    # Wednesday 2026-11-18, London on GMT: 06:00-08:00 local is 1 h night then 1 h day.
    parts = price_consumption(
        parse_tariff(tou()), at(2026, 11, 18, 6), at(2026, 11, 18, 8), D("3"), LONDON
    )
    assert [(p.band, p.quantity, p.amount) for p in parts] == [
        ("night", D("1.5"), D("0.15")),
        ("day", D("1.5"), D("0.45")),
    ]
    assert parts[0].end == parts[1].start == at(2026, 11, 18, 7)


def test_tou_follows_summer_time() -> None:
    # In July London is UTC+1, so the 07:00 local boundary is 06:00 UTC.
    parts = price_consumption(
        parse_tariff(tou()), at(2026, 7, 15, 5), at(2026, 7, 15, 7), D("2"), LONDON
    )
    assert [(p.band, p.start, p.end, p.quantity) for p in parts] == [
        ("night", at(2026, 7, 15, 5), at(2026, 7, 15, 6), D("1")),
        ("day", at(2026, 7, 15, 6), at(2026, 7, 15, 7), D("1")),
    ]


def test_tou_boundary_inside_spring_forward_gap_is_the_transition() -> None:
    # 2026-03-29: London clocks jump 01:00 GMT -> 02:00 BST, so 01:30 never happens;
    # the 01:30 segment starts at the jump (01:00 UTC).
    tariff = parse_tariff(
        tou(
            segments=[
                {"start": "00:00", "price": "1", "band": "a"},
                {"start": "01:30", "price": "2", "band": "b"},
            ]
        )
    )
    parts = price_consumption(tariff, at(2026, 3, 29, 0), at(2026, 3, 29, 2), D("2"), LONDON)
    assert [(p.band, p.start, p.end, p.quantity) for p in parts] == [
        ("a", at(2026, 3, 29, 0), at(2026, 3, 29, 1), D("1")),
        ("b", at(2026, 3, 29, 1), at(2026, 3, 29, 2), D("1")),
    ]


def test_tou_repeated_hour_in_autumn_is_billed_twice() -> None:
    # 2026-10-25: 01:00-02:00 local happens twice (BST, then GMT).
    tariff = parse_tariff(
        tou(
            segments=[
                {"start": "00:00", "price": "1", "band": "a"},
                {"start": "01:30", "price": "2", "band": "b"},
            ]
        )
    )
    parts = price_consumption(tariff, at(2026, 10, 24, 23), at(2026, 10, 25, 2), D("6"), LONDON)
    assert [(p.band, p.start, p.end, p.quantity) for p in parts] == [
        ("a", at(2026, 10, 24, 23), at(2026, 10, 25, 0, 30), D("3")),
        ("b", at(2026, 10, 25, 0, 30), at(2026, 10, 25, 1), D("1")),
        ("a", at(2026, 10, 25, 1), at(2026, 10, 25, 1, 30), D("1")),
        ("b", at(2026, 10, 25, 1, 30), at(2026, 10, 25, 2), D("1")),
    ]
    assert sum(p.amount for p in parts) == D(3 + 2 + 1 + 2)


def test_tou_weekend_schedule_starts_at_local_midnight() -> None:
    tariff = parse_tariff(
        tou(weekend_segments=[{"start": "00:00", "price": "0.05", "band": "weekend"}])
    )
    # Friday 2026-11-20 22:00 UTC -> Saturday 02:00 UTC (GMT): day, night, then weekend.
    parts = price_consumption(tariff, at(2026, 11, 20, 22), at(2026, 11, 21, 2), D("4"), LONDON)
    assert [(p.band, p.quantity) for p in parts] == [
        ("day", D("1")),
        ("night", D("1")),
        ("weekend", D("2")),
    ]


def test_tou_merges_neighbours_that_bill_alike() -> None:
    # 23:00 night runs into 00:00 night of the next weekday: one part.
    parts = price_consumption(
        parse_tariff(tou()), at(2026, 11, 17, 23), at(2026, 11, 18, 6), D("7"), LONDON
    )
    assert [(p.band, p.quantity) for p in parts] == [("night", D("7"))]


def test_tiered_splits_at_band_limits_and_counts_usage() -> None:
    tariff = parse_tariff(tiered())
    start, end = at(2026, 11, 10), at(2026, 11, 11)
    parts = price_consumption(tariff, start, end, D("100"), LONDON, {"2026-11": D("30")})
    assert [(p.band, p.period, p.quantity, p.amount) for p in parts] == [
        ("tier1", "2026-11", D("20"), D("0")),
        ("tier2", "2026-11", D("80"), D("200.0")),
    ]
    # Steady use: the limit is crossed a fifth of the way through the interval.
    assert parts[0].end == parts[1].start == start + timedelta(hours=24) / 5
    later = price_consumption(tariff, start, end, D("10"), LONDON, {"2026-11": D("345")})
    assert [(p.band, p.quantity) for p in later] == [("tier2", D("5")), ("tier3", D("5"))]
    top = price_consumption(tariff, start, end, D("0"), LONDON, {"2026-11": D("350")})
    assert [(p.band, p.quantity) for p in top] == [("tier3", D("0"))]


def test_tiered_usage_resets_at_local_month_start() -> None:
    tariff = parse_tariff(tiered(currency="EUR"))
    berlin = ZoneInfo("Europe/Berlin")
    # 2026-11-30 22:00 UTC is 23:00 in Berlin; local December starts at 23:00 UTC.
    start, end = at(2026, 11, 30, 22), at(2026, 12, 1, 0)
    assert period_keys(tariff, start, end, berlin) == ["2026-11", "2026-12"]
    parts = price_consumption(tariff, start, end, D("10"), berlin, {"2026-11": D("400")})
    assert [(p.band, p.period, p.quantity, p.start, p.end) for p in parts] == [
        ("tier3", "2026-11", D("5"), start, at(2026, 11, 30, 23)),
        ("tier1", "2026-12", D("5"), at(2026, 11, 30, 23), end),
    ]


def test_tiered_year_period_and_period_keys() -> None:
    tariff = parse_tariff(tiered(period="year"))
    assert period_keys(tariff, at(2026, 12, 31, 12), at(2027, 1, 2), LONDON) == ["2026", "2027"]
    assert period_keys(tariff, at(2026, 5, 1), at(2026, 5, 1), LONDON) == ["2026"]
    assert period_keys(parse_tariff(tou()), at(2026, 5, 1), at(2026, 6, 1), LONDON) == []


def test_zero_length_interval_and_zero_quantity() -> None:
    parts = price_consumption(
        parse_tariff(tou()), at(2026, 11, 18, 12), at(2026, 11, 18, 12), D("0.5"), LONDON
    )
    assert [(p.band, p.quantity) for p in parts] == [("day", D("0.5"))]
    none_used = price_consumption(
        parse_tariff(tou()), at(2026, 11, 18, 6), at(2026, 11, 18, 8), D("0"), LONDON
    )
    assert sum(p.quantity for p in none_used) == 0
    assert sum(p.amount for p in none_used) == 0


@pytest.mark.parametrize(
    ("start", "end", "quantity", "used", "code"),
    [
        (datetime(2026, 1, 1), at(2026, 1, 2), D(1), None, "naive_datetime"),  # noqa: DTZ001
        (at(2026, 1, 2), at(2026, 1, 1), D(1), None, "invalid_interval"),
        (at(2026, 1, 1), at(2026, 1, 2), D(-1), None, "negative_quantity"),
        (at(2026, 1, 1), at(2026, 1, 2), D("NaN"), None, "negative_quantity"),
        (at(2026, 1, 1), at(2026, 1, 2), D(1), {"2026-01": D(-1)}, "invalid_usage"),
    ],
)
def test_pricing_rejects_bad_input(
    start: datetime, end: datetime, quantity: Decimal, used: Any, code: str
) -> None:
    with pytest.raises(InputError) as info:
        price_consumption(parse_tariff(tiered()), start, end, quantity, LONDON, used)
    assert info.value.code == code


def test_standing_charge_days_are_local() -> None:
    sydney = ZoneInfo("Australia/Sydney")
    now = at(2026, 11, 21, 14)  # already 22 November in Sydney
    assert standing_charge_days(None, now, sydney) == [date(2026, 11, 22)]
    assert standing_charge_days(None, now, UTC) == [date(2026, 11, 21)]
    assert standing_charge_days(date(2026, 11, 19), now, sydney) == [
        date(2026, 11, 20),
        date(2026, 11, 21),
        date(2026, 11, 22),
    ]
    assert standing_charge_days(date(2026, 11, 22), now, sydney) == []
    # Never more than 366 days at once, the latest ones: 2025-11-22 .. 2026-11-22 in Sydney.
    long_ago = standing_charge_days(date(2000, 1, 1), now, sydney)
    assert (len(long_ago), long_ago[0], long_ago[-1]) == (
        366,
        date(2025, 11, 22),
        date(2026, 11, 22),
    )
    with pytest.raises(InputError):
        standing_charge_days(None, datetime(2026, 1, 1), sydney)  # noqa: DTZ001


def test_split_by_time_for_price_changes() -> None:
    pieces = split_by_time(
        at(2026, 1, 1), at(2026, 1, 1, 3), D("1"), [at(2026, 1, 1, 1), at(2026, 1, 2)]
    )
    assert [(p[0], p[1], p[2]) for p in pieces] == [
        (at(2026, 1, 1), at(2026, 1, 1, 1), D("0.333333333")),
        (at(2026, 1, 1, 1), at(2026, 1, 1, 3), D("0.666666667")),
    ]


def test_apportion_rules() -> None:
    assert apportion(D("1"), [1, 1, 1]) == [D("0.333333334"), D("0.333333333"), D("0.333333333")]
    assert apportion(D("0.5"), [0, 0]) == [D("0.25"), D("0.25")]
    assert sum(apportion(D("1E-12"), [2, 1])) == D("1E-12")
    with pytest.raises(ValueError, match="weight"):
        apportion(D(1), [])
    with pytest.raises(ValueError, match="negative"):
        apportion(D(1), [-1, 2])
    with pytest.raises(InputError):
        apportion(D(-1), [1])


@pytest.mark.parametrize("name", ["Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires"])
def test_parse_timezone_accepts_iana_names(name: str) -> None:
    assert parse_timezone(name).key == name


@pytest.mark.parametrize(
    "value", ["", "Mars/Olympus", "../etc/passwd", "/etc/localtime", 5, None, "Europe/" + "x" * 80]
)
def test_parse_timezone_rejects_others(value: object) -> None:
    with pytest.raises(InputError) as info:
        parse_timezone(value)
    assert info.value.code == "invalid_timezone"
