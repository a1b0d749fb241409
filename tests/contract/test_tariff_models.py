"""The tariff models: bodies as docs/ledger-domain.md ("Tariffs") describes them, and answers.

Expected values come from the documentation (kinds, units, 1 to 14 segments, 1 to 10 bands,
"HH:MM" starts, decimal strings, 0 to 10^12 minor units, the time window) and from the
codes and messages the ledger has always answered, not from the models' code.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from prepaid_meter_contract.tariffs import Segment, Tariff, TariffInput, Tariffs
from prepaid_meter_contract.wire import describe
from pydantic import ValidationError


def flat(**extra: Any) -> dict[str, Any]:
    body = {"name": "Flat", "currency": "EUR", "unit": "kWh", "kind": "flat", "price": "0.25"}
    return body | extra


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
        "unit": "m3",
        "kind": "tiered",
        "period": "month",
        "bands": [
            {"up_to": "100", "price": "0"},
            {"up_to": "350", "price": "2.5"},
            {"up_to": None, "price": "3.1"},
        ],
    }
    return body | extra


def refusal(body: object) -> tuple[str, str, str | None]:
    """Return (code, message, field) of the first breach, as the ledger would answer it."""
    with pytest.raises(ValidationError) as info:
        TariffInput.model_validate(body)
    wrong = describe(info.value)
    return wrong.code, wrong.message(), wrong.field


# --------------------------------------------------------------------------- valid bodies


@pytest.mark.parametrize("body", [flat(), tou(), tiered()], ids=["flat", "tou", "tiered"])
def test_each_kind_parses_and_gives_back_what_was_sent(body: dict[str, Any]) -> None:
    assert TariffInput.model_validate(body).definition() == body


def test_a_flat_price_is_an_exact_decimal() -> None:
    tariff = TariffInput.model_validate(flat(price="0.2513", standing_charge_minor_per_day=0))
    assert tariff.price == Decimal("0.2513")
    assert tariff.standing_charge_minor_per_day == 0


def test_optional_parts_default_as_documented() -> None:
    """Band names may be left out; the standing charge defaults to 0; weekends are optional."""
    body = tou(
        segments=[{"start": "00:00", "price": "1"}, {"start": "16:30", "price": "2"}],
        weekend_segments=[{"start": "00:00", "price": "0.5"}],
    )
    del body["standing_charge_minor_per_day"]
    tariff = TariffInput.model_validate(body)
    assert tariff.standing_charge_minor_per_day == 0
    assert tariff.segments is not None
    assert [s.band for s in tariff.segments] == [None, None]
    assert tariff.weekend_segments is not None
    assert tariff.definition()["weekend_segments"] == [{"start": "00:00", "price": "0.5"}]


def test_fourteen_segments_and_ten_bands_are_the_most_allowed() -> None:
    segments = [{"start": f"{h:02d}:00", "price": "0.1"} for h in range(14)]
    assert TariffInput.model_validate(tou(segments=segments)).segments is not None
    bands: list[dict[str, str | None]] = [
        {"up_to": str(n * 10), "price": "1"} for n in range(1, 10)
    ]
    bands.append({"up_to": None, "price": "2"})
    assert TariffInput.model_validate(tiered(bands=bands)).bands is not None


def test_a_new_version_carries_its_time() -> None:
    tariff = TariffInput.model_validate(flat(effective_from="2030-01-01T00:00:00+01:00"))
    assert tariff.effective_from is not None
    assert tariff.effective_from.isoformat() == "2030-01-01T00:00:00+01:00"
    assert "effective_from" not in tariff.definition()


def test_an_id_sent_back_from_an_answer_is_tolerated() -> None:
    assert "id" not in TariffInput.model_validate(flat(id=7)).definition()


def test_a_body_built_in_python_gives_only_its_fields() -> None:
    tariff = TariffInput(
        kind="tou",
        name="Night",
        currency="EUR",
        unit="kWh",
        segments=[Segment(start="00:00", price=Decimal("0.10"))],
    )
    assert tariff.definition() == {
        "kind": "tou",
        "name": "Night",
        "currency": "EUR",
        "unit": "kWh",
        "segments": [{"start": "00:00", "price": "0.10"}],
    }


# --------------------------------------------------------------------------- refusals

REFUSALS: list[tuple[str, object, str, str | None, str | None]] = [
    (
        "kind",
        flat(kind="stepped"),
        "invalid_tariff",
        "kind must be one of 'flat', 'tou', 'tiered'; got 'stepped'",
        None,
    ),
    ("unit", flat(unit="kwh"), "invalid_tariff", "unit must be 'kWh' or 'm3'; got 'kwh'", "unit"),
    (
        "period",
        tiered(period="week"),
        "invalid_tariff",
        "period must be 'month' or 'year'; got 'week'",
        "period",
    ),
    ("blank name", flat(name=" "), "invalid_tariff", "name must be a non-empty string", "name"),
    (
        "long name",
        flat(name="x" * 101),
        "invalid_tariff",
        "name must be at most 100 characters",
        "name",
    ),
    (
        "currency",
        flat(currency="euro"),
        "invalid_currency",
        "currency must be an ISO 4217 code such as 'EUR'; got 'euro'",
        "currency",
    ),
    (
        "missing",
        {"kind": "flat", "price": "1", "currency": "EUR", "unit": "kWh"},
        "invalid_tariff",
        "tariff is missing field(s) name",
        None,
    ),
    (
        "typo",
        flat(segment=[]),
        "invalid_tariff",
        "tariff has unknown field(s) segment",
        None,
    ),
    (
        "exponent",
        flat(price="1e3"),
        "invalid_decimal",
        (
            'price must be a plain decimal string such as "0.25" '
            "(at most 32 characters, no exponent); got '1e3'"
        ),
        "price",
    ),
    (
        "float",
        flat(price=0.25),
        "invalid_decimal",
        'price must be a decimal string such as "0.25", not float',
        "price",
    ),
    ("negative", flat(price="-0.25"), "negative_decimal", None, "price"),
    (
        "standing too large",
        flat(standing_charge_minor_per_day=10**12 + 1),
        "invalid_amount",
        f"standing_charge_minor_per_day must be at most {10**12}; got {10**12 + 1}",
        "standing_charge_minor_per_day",
    ),
    (
        "standing boolean",
        flat(standing_charge_minor_per_day=True),
        "invalid_amount",
        None,
        "standing_charge_minor_per_day",
    ),
    (
        "segment price",
        tou(segments=[{"start": "00:00", "price": "1"}, {"start": "08:00", "price": "-1"}]),
        "negative_decimal",
        "segments[1].price must not be negative; got '-1'",
        "segments[1].price",
    ),
    (
        "segment start",
        tou(segments=[{"start": "00:00", "price": "1"}, {"start": "7:00", "price": "1"}]),
        "invalid_tariff",
        "segments[1].start must be a local time \"HH:MM\" between 00:00 and 23:59; got '7:00'",
        "segments[1].start",
    ),
    (
        "segment 24:00",
        tou(segments=[{"start": "24:00", "price": "1"}]),
        "invalid_tariff",
        None,
        "segments[0].start",
    ),
    (
        "segment without price",
        tou(segments=[{"start": "00:00", "price": "1"}, {"start": "08:00"}]),
        "invalid_tariff",
        "segments[1] needs 'start' and 'price'",
        "segments[1]",
    ),
    (
        "segment unknown field",
        tou(segments=[{"start": "00:00", "price": "1", "rate": "x"}]),
        "invalid_tariff",
        "segments[0] has unknown field(s) rate",
        "segments[0]",
    ),
    (
        "segment not an object",
        tou(segments=["00:00"]),
        "invalid_tariff",
        "segments[0] must be an object",
        "segments[0]",
    ),
    (
        "band name",
        tou(segments=[{"start": "00:00", "price": "1", "band": "b" * 33}]),
        "invalid_tariff",
        "segments[0].band must be at most 32 characters",
        "segments[0].band",
    ),
    (
        "no segments",
        tou(segments=[]),
        "invalid_tariff",
        "segments must be a non-empty list",
        "segments",
    ),
    (
        "weekend price",
        tou(weekend_segments=[{"start": "00:00", "price": "-1"}]),
        "negative_decimal",
        None,
        "weekend_segments[0].price",
    ),
    (
        "weekend not a list",
        tou(weekend_segments={"start": "00:00"}),
        "invalid_tariff",
        "weekend_segments must be a non-empty list",
        "weekend_segments",
    ),
    (
        "band limit a number",
        tiered(bands=[{"up_to": 100, "price": "1"}, {"up_to": None, "price": "1"}]),
        "invalid_decimal",
        'bands[0].up_to must be a decimal string such as "0.25", not int',
        "bands[0].up_to",
    ),
    (
        "band without limit",
        tiered(bands=[{"price": "1"}]),
        "invalid_tariff",
        "bands[0] needs 'up_to' and 'price'",
        "bands[0]",
    ),
    (
        "effective_from too early",
        flat(effective_from="1999-12-31T23:59:59+00:00"),
        "time_out_of_range",
        (
            "effective_from must lie from 2000-01-01T00:00:00+00:00 to before "
            "2100-01-01T00:00:00+00:00"
        ),
        "effective_from",
    ),
    (
        "effective_from naive",
        flat(effective_from="2030-01-01T00:00:00"),
        "invalid_field",
        "effective_from must include a UTC offset",
        "effective_from",
    ),
    ("not an object", ["flat"], "invalid_field", "must be an object", None),
]


@pytest.mark.parametrize(
    ("body", "code", "message", "field"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_each_documented_refusal_names_its_field(
    body: object, code: str, message: str | None, field: str | None
) -> None:
    got_code, got_message, got_field = refusal(body)
    assert (got_code, got_field) == (code, field)
    if message is not None:
        assert got_message == message
    elif field is not None:
        assert got_message.startswith(f"{field} ")


@pytest.mark.parametrize(("field", "limit"), [("segments", 14), ("bands", 10)])
def test_huge_lists_are_refused_before_their_entries_are_read(field: str, limit: int) -> None:
    body = tou() if field == "segments" else tiered()
    body[field] = [{"not": "an entry"}] * 1_000_000
    started = time.perf_counter()
    assert refusal(body) == (
        "invalid_tariff",
        f"{field} may hold at most {limit} entries; got 1000000",
        field,
    )
    assert time.perf_counter() - started < 1.0
    body[field] = [{"not": "an entry"}] * (limit + 1)
    assert refusal(body)[1] == f"{field} may hold at most {limit} entries; got {limit + 1}"


def test_the_request_schema_states_the_documented_limits() -> None:
    schema = TariffInput.model_json_schema()
    fields = schema["properties"]
    assert fields["unit"]["enum"] == ["kWh", "m3"]
    assert fields["kind"]["enum"] == ["flat", "tou", "tiered"]
    assert fields["name"]["maxLength"] == 100
    assert fields["standing_charge_minor_per_day"]["maximum"] == 10**12
    segments = next(s for s in fields["segments"]["anyOf"] if s.get("type") == "array")
    assert (segments["minItems"], segments["maxItems"]) == (1, 14)
    bands = next(s for s in fields["bands"]["anyOf"] if s.get("type") == "array")
    assert (bands["minItems"], bands["maxItems"]) == (1, 10)
    assert set(schema["required"]) == {"kind", "name", "currency", "unit"}


# --------------------------------------------------------------------------- answers

FLAT_ANSWER: dict[str, Any] = {
    "name": "Flat",
    "currency": "EUR",
    "unit": "kWh",
    "kind": "flat",
    "standing_charge_minor_per_day": 12,
    "price": "0.25",
    "id": 1,
    "created_at": "2026-05-01T10:00:00+00:00",
    "versions": [
        {
            "effective_from": "1970-01-01T00:00:00+00:00",
            "name": "Flat",
            "currency": "EUR",
            "unit": "kWh",
            "kind": "flat",
            "standing_charge_minor_per_day": 12,
            "price": "0.25",
        },
        {
            "effective_from": "2030-01-01T00:00:00+00:00",
            "name": "Flat",
            "currency": "EUR",
            "unit": "kWh",
            "kind": "flat",
            "standing_charge_minor_per_day": 12,
            "price": "0.30",
        },
    ],
}


def _answer(definition: dict[str, Any]) -> dict[str, Any]:
    version = {"effective_from": "1970-01-01T00:00:00+00:00", **definition}
    return {**definition, "id": 2, "created_at": "2026-05-01T10:00:00+00:00", "versions": [version]}


TOU_ANSWER = _answer(
    {
        "name": "Economy 7",
        "currency": "GBP",
        "unit": "kWh",
        "kind": "tou",
        "standing_charge_minor_per_day": 53,
        "segments": [
            {"start": "00:00", "price": "0.10", "band": "night"},
            {"start": "07:00", "price": "0.30", "band": "day"},
        ],
        "weekend_segments": [{"start": "00:00", "price": "0.2", "band": "weekend 00:00"}],
    }
)
TIERED_ANSWER = _answer(
    {
        "name": "Blocks",
        "currency": "ZAR",
        "unit": "m3",
        "kind": "tiered",
        "standing_charge_minor_per_day": 0,
        "period": "year",
        "bands": [
            {"up_to": "100", "price": "0", "band": "tier1"},
            {"up_to": None, "price": "3.1", "band": "tier2"},
        ],
    }
)


@pytest.mark.parametrize(
    "answer", [FLAT_ANSWER, TOU_ANSWER, TIERED_ANSWER], ids=["flat", "tou", "tiered"]
)
def test_answers_round_trip_without_the_other_kinds_fields(answer: dict[str, Any]) -> None:
    tariff = Tariff.model_validate(answer)
    assert tariff.model_dump(mode="json") == answer
    listing = Tariffs.model_validate({"tariffs": [answer]})
    assert listing.model_dump(mode="json") == {"tariffs": [answer]}


def test_a_tariff_answer_can_be_sent_back_as_a_new_version() -> None:
    """The landlord page sends a tariff back, less created_at and versions, with a new price."""
    answer = Tariff.model_validate(FLAT_ANSWER).model_dump(mode="json")
    del answer["created_at"], answer["versions"]
    body = TariffInput.model_validate(
        answer | {"price": "0.31", "effective_from": "2031-01-01T00:00:00+00:00"}
    )
    assert body.price == Decimal("0.31")


def test_money_in_an_answer_is_exactly_an_integer() -> None:
    for wrong in ("12", 12.0, True):
        with pytest.raises(ValidationError):
            Tariff.model_validate(FLAT_ANSWER | {"standing_charge_minor_per_day": wrong})


def test_a_price_in_an_answer_is_decimal_text() -> None:
    with pytest.raises(ValidationError):
        Tariff.model_validate(FLAT_ANSWER | {"price": 0.25})
    assert Tariff.model_validate(FLAT_ANSWER).price == Decimal("0.25")
