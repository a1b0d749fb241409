"""The wire rules (``prepaid_meter_contract.wire``) and how a breach is described.

Expected codes and messages are written out from the documented rules, not computed:

- docs/ledger-domain.md "Money": decimals are ``-?digits[.digits]`` of up to 32 characters;
  JSON numbers, floats, exponents, NaN, infinities, blanks, ``+``, ``.5``, ``5.`` and
  non-ASCII digits are refused;
- docs/ledger-api.md "Limits on what a request may say": times carry a UTC offset and lie from
  2000-01-01T00:00:00Z to before 2100-01-01T00:00:00Z (else ``time_out_of_range``; year 1 or
  9999 with an offset must not overflow); observed times lie at most 5 minutes ahead of the
  ledger's clock (else ``time_in_future``); up to 5000 readings per request; a 422 names the
  field like ``readings[3].value``;
- the docstrings of ``wire.py`` and ``readings.py`` for the exact wording of each detail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from prepaid_meter_contract.readings import ReadingsBatch, ResolveReading
from prepaid_meter_contract.wire import (
    WireError,
    check_decimal,
    check_non_negative_decimal,
    check_not_in_future,
    check_positive_int,
    check_time_window,
    check_timestamp,
    describe,
    field_path,
    format_decimal,
)
from pydantic import ValidationError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GOOD_AT = "2026-03-01T11:00:00+00:00"
WINDOW = "must lie from 2000-01-01T00:00:00+00:00 to before 2100-01-01T00:00:00+00:00"
DECIMAL_SHAPE = (
    'must be a plain decimal string such as "0.25" (at most 32 characters, no exponent); got '
)


def _refusal(rule: Any, value: object) -> WireError:
    with pytest.raises(WireError) as caught:
        rule(value)
    return caught.value


# --------------------------------------------------------------------------- decimals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Decimal(0)),
        ("0.2513", Decimal("0.2513")),
        ("-12", Decimal(-12)),
        ("007.50", Decimal("7.50")),
        ("1" * 32, Decimal("1" * 32)),
        ("-" + "9" * 31, Decimal("-" + "9" * 31)),
    ],
)
def test_check_decimal_accepts_plain_text(text: str, expected: Decimal) -> None:
    result = check_decimal(text)
    assert result == expected
    assert str(result) == str(expected)  # exact digits, the trailing zero of "7.50" kept


@pytest.mark.parametrize(
    "text",
    [
        "1e3",
        "1E3",
        "1.5e-2",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        "",
        " ",
        " 1",
        "1 ",
        "1\n",
        "+1",
        ".5",
        "5.",
        "-",
        "--1",
        "1,5",
        "1_000",
        "0x10",
        "\u0661",  # ARABIC-INDIC DIGIT ONE
        "\uff11",  # FULLWIDTH DIGIT ONE
        "1.2.3",
    ],
)
def test_check_decimal_refuses_anything_but_plain_digits(text: str) -> None:
    err = _refusal(check_decimal, text)
    assert err.code == "invalid_decimal"
    assert err.detail == DECIMAL_SHAPE + repr(text)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(0.25, "float"), (1, "int"), (True, "bool"), (None, "NoneType"), (b"1", "bytes")],
)
def test_check_decimal_refuses_non_strings(value: object, type_name: str) -> None:
    err = _refusal(check_decimal, value)
    assert err.code == "invalid_decimal"
    assert err.detail == f'must be a decimal string such as "0.25", not {type_name}'


def test_check_decimal_33_characters_is_one_too_many_and_is_shown_cut() -> None:
    text = "1" * 33
    err = _refusal(check_decimal, text)
    assert err.code == "invalid_decimal"
    assert err.detail == DECIMAL_SHAPE + "'" + "1" * 32 + "...'"


def test_check_decimal_huge_string_gives_a_short_message() -> None:
    err = _refusal(check_decimal, "9" * 10_000_000)
    assert err.code == "invalid_decimal"
    assert err.detail == DECIMAL_SHAPE + "'" + "9" * 32 + "...'"


def test_check_non_negative_decimal() -> None:
    assert check_non_negative_decimal("0.25") == Decimal("0.25")
    err = _refusal(check_non_negative_decimal, "-0.01")
    assert err.code == "negative_decimal"
    assert err.detail == "must not be negative; got '-0.01'"


@pytest.mark.parametrize("text", ["-0", "-0.000"])
def test_negative_zero_is_zero_without_sign(text: str) -> None:
    result = check_non_negative_decimal(text)
    assert result == 0
    assert not result.is_signed()
    assert format_decimal(result) == text.removeprefix("-")


def test_check_non_negative_decimal_still_refuses_bad_text_as_invalid() -> None:
    assert _refusal(check_non_negative_decimal, "-1e3").code == "invalid_decimal"
    assert _refusal(check_non_negative_decimal, -1).code == "invalid_decimal"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.2513"), "0.2513"),
        (Decimal("1E+3"), "1000"),
        (Decimal("1.5E-7"), "0.00000015"),
        (Decimal("-12.50"), "-12.50"),
        (Decimal("-0"), "0"),
        (Decimal("-0.00"), "0.00"),
        (Decimal("0E-3"), "0.000"),
    ],
)
def test_format_decimal_is_plain_text_without_exponent(value: Decimal, text: str) -> None:
    assert format_decimal(value) == text
    assert check_decimal(text) == value


# --------------------------------------------------------------------------- times


@pytest.mark.parametrize(
    "text",
    [
        "2000-01-01T00:00:00+00:00",
        "2000-01-01T00:00:00Z",
        "1999-12-31T23:00:00-01:00",  # = 2000-01-01T00:00Z
        "2099-12-31T23:59:59.999999+00:00",
        "2100-01-01T00:30:00+01:00",  # = 2099-12-31T23:30Z
        "2026-03-01T12:00:00+05:30",
    ],
)
def test_check_timestamp_accepts_times_inside_the_window(text: str) -> None:
    result = check_timestamp(text)
    assert result == datetime.fromisoformat(text)
    assert result.utcoffset() is not None


@pytest.mark.parametrize(
    "text",
    [
        "1999-12-31T23:59:59.999999+00:00",
        "2000-01-01T00:00:00+01:00",  # = 1999-12-31T23:00Z
        "2000-01-01T23:58:00+23:59",  # = 1999-12-31T23:59Z
        "2100-01-01T00:00:00+00:00",
        "2099-12-31T23:00:00-01:00",  # = 2100-01-01T00:00Z
        "0001-01-01T00:00:00+00:00",
        "0001-01-01T00:00:00+05:00",  # year 1 with an offset: UTC would be before year 1
        "0001-01-01T00:00:00-23:59",
        "9999-12-31T23:59:59-05:00",  # year 9999 with an offset: UTC would be after 9999
        "9999-12-31T23:59:59.999999-23:59",
        "9999-12-31T23:59:59+23:59",
    ],
)
def test_check_timestamp_refuses_times_outside_the_window(text: str) -> None:
    err = _refusal(check_timestamp, text)
    assert err.code == "time_out_of_range"
    assert err.detail == WINDOW


@pytest.mark.parametrize(
    "value",
    [
        datetime.min.replace(tzinfo=timezone(timedelta(hours=23, minutes=59))),
        datetime.min.replace(tzinfo=timezone(-timedelta(hours=23, minutes=59))),
        datetime.max.replace(tzinfo=timezone(-timedelta(hours=23, minutes=59))),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=23, minutes=59))),
        datetime.max.replace(tzinfo=UTC),
    ],
)
def test_check_time_window_extremes_do_not_overflow(value: datetime) -> None:
    err = _refusal(check_time_window, value)
    assert err.code == "time_out_of_range"


def test_check_time_window_bounds() -> None:
    assert check_time_window(datetime(2000, 1, 1, tzinfo=UTC)) == datetime(2000, 1, 1, tzinfo=UTC)
    assert _refusal(check_time_window, datetime(2100, 1, 1, tzinfo=UTC)).code == (
        "time_out_of_range"
    )


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("2026-03-01T12:00:00", "must include a UTC offset"),
        ("2026-03-01", "must include a UTC offset"),
        (datetime(2026, 3, 1, 12, 0), "must include a UTC offset"),  # noqa: DTZ001 - naive on purpose
        ("yesterday", "is not a valid ISO-8601 timestamp"),
        ("", "is not a valid ISO-8601 timestamp"),
        ("10000-01-01T00:00:00+00:00", "is not a valid ISO-8601 timestamp"),
        ("0000-01-01T00:00:00+00:00", "is not a valid ISO-8601 timestamp"),
        ("2026-02-30T00:00:00+00:00", "is not a valid ISO-8601 timestamp"),
        ("2026-03-01T12:00:00+24:00", "is not a valid ISO-8601 timestamp"),
        ("9" * 1_000_000, "is not a valid ISO-8601 timestamp"),
        (1_767_225_600, "must be an ISO-8601 timestamp string"),
        (1.5, "must be an ISO-8601 timestamp string"),
        (True, "must be an ISO-8601 timestamp string"),
        (None, "must be an ISO-8601 timestamp string"),
    ],
)
def test_check_timestamp_refuses_malformed_times(value: object, detail: str) -> None:
    err = _refusal(check_timestamp, value)
    assert err.code == "invalid_field"
    assert err.detail == detail


def test_check_not_in_future_allows_five_minutes_of_skew() -> None:
    assert check_not_in_future(NOW, NOW) == NOW
    assert check_not_in_future(NOW + timedelta(minutes=5), NOW) == NOW + timedelta(minutes=5)
    ahead = datetime(2026, 3, 1, 13, 4, tzinfo=timezone(timedelta(hours=1)))  # 12:04Z
    assert check_not_in_future(ahead, NOW) == ahead
    assert check_not_in_future(datetime(2000, 1, 1, tzinfo=UTC), NOW).year == 2000


@pytest.mark.parametrize(
    "value",
    [
        NOW + timedelta(minutes=5, microseconds=1),
        NOW + timedelta(days=365),
        datetime(2026, 3, 1, 7, 6, tzinfo=timezone(-timedelta(hours=5))),  # 12:06Z
    ],
)
def test_check_not_in_future_refuses_more(value: datetime) -> None:
    err = _refusal(lambda v: check_not_in_future(v, NOW), value)
    assert err.code == "time_in_future"
    assert err.detail == (
        "lies more than 5 minutes ahead of the ledger's clock (2026-03-01T12:00:00+00:00); "
        "check the clock of the sender"
    )


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize("value", [1, 7, 2**62])
def test_check_positive_int_accepts(value: int) -> None:
    assert check_positive_int(value) == value


@pytest.mark.parametrize("value", [0, -1, True, False, "1", 1.0, None, "9" * 100_000, [1]])
def test_check_positive_int_refuses(value: object) -> None:
    err = _refusal(check_positive_int, value)
    assert err.code == "invalid_field"
    assert err.detail == "must be a positive integer"


# --------------------------------------------------------------------------- field paths


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("readings", 3, "value"), "readings[3].value"),
        (("readings", 0), "readings[0]"),
        (("readings",), "readings"),
        (("a", "b", "c"), "a.b.c"),
        (("items", 2, "bands", 0, "price"), "items[2].bands[0].price"),
        ((0, "x"), "[0].x"),
        ((), ""),
    ],
)
def test_field_path(loc: tuple[int | str, ...], path: str) -> None:
    assert field_path(loc) == path


def test_wire_error_message_names_the_field() -> None:
    err = WireError("invalid_decimal", "must be ...")
    assert err.message() == "must be ..."
    assert err.message("readings[3].value") == "readings[3].value must be ..."
    assert WireError("x", "is bad", "at").message() == "at is bad"


# --------------------------------------------------------------------------- describing a batch


def _reading(**overrides: object) -> dict[str, object]:
    return {"meter_id": 1, "value": "100.25", "at": GOOD_AT} | overrides


def _described(body: object, *, now: datetime | None = NOW) -> WireError:
    context = None if now is None else {"now": now}
    with pytest.raises(ValidationError) as caught:
        ReadingsBatch.model_validate(body, context=context)
    return describe(caught.value)


def _batch_with(bad: dict[str, object], index: int = 3) -> dict[str, object]:
    readings = [_reading(meter_id=i + 1) for i in range(5)]
    readings[index] = bad
    return {"readings": readings}


@pytest.mark.parametrize(
    ("bad", "code", "message"),
    [
        (
            _reading(value="1e3"),
            "invalid_decimal",
            "readings[3].value " + DECIMAL_SHAPE + "'1e3'",
        ),
        (
            _reading(value="NaN"),
            "invalid_decimal",
            "readings[3].value " + DECIMAL_SHAPE + "'NaN'",
        ),
        (
            _reading(value=100.25),
            "invalid_decimal",
            'readings[3].value must be a decimal string such as "0.25", not float',
        ),
        (
            _reading(value=100),
            "invalid_decimal",
            'readings[3].value must be a decimal string such as "0.25", not int',
        ),
        (
            _reading(value="-5"),
            "negative_decimal",
            "readings[3].value must not be negative; got '-5'",
        ),
        (
            _reading(value="1" * 41),
            "invalid_decimal",
            "readings[3].value has too many digits",
        ),
        (
            _reading(value="1" * 10_000_000),
            "invalid_decimal",
            "readings[3].value has too many digits",
        ),
        (
            _reading(value="1" * 40),
            "invalid_decimal",
            "readings[3].value " + DECIMAL_SHAPE + "'" + "1" * 32 + "...'",
        ),
        (
            _reading(at="0001-01-01T00:00:00+05:00"),
            "time_out_of_range",
            "readings[3].at " + WINDOW,
        ),
        (
            _reading(at="9999-12-31T23:59:59-05:00"),
            "time_out_of_range",
            "readings[3].at " + WINDOW,
        ),
        (
            _reading(at="1999-12-31T23:59:59Z"),
            "time_out_of_range",
            "readings[3].at " + WINDOW,
        ),
        (
            _reading(at="2026-03-01T12:05:01+00:00"),
            "time_in_future",
            (
                "readings[3].at lies more than 5 minutes ahead of the ledger's clock "
                "(2026-03-01T12:00:00+00:00); check the clock of the sender"
            ),
        ),
        (
            _reading(at="2026-03-01T12:00:00"),
            "invalid_field",
            "readings[3].at must include a UTC offset",
        ),
        (
            _reading(at="x" * 1_000_000),
            "invalid_field",
            "readings[3].at is not a valid ISO-8601 timestamp",
        ),
        (
            _reading(at=1_767_225_600),
            "invalid_field",
            "readings[3].at must be an ISO-8601 timestamp string",
        ),
        (
            _reading(meter_id=True),
            "invalid_field",
            "readings[3].meter_id must be a positive integer",
        ),
        (
            _reading(meter_id=False),
            "invalid_field",
            "readings[3].meter_id must be a positive integer",
        ),
        (
            _reading(meter_id="4"),
            "invalid_field",
            "readings[3].meter_id must be a positive integer",
        ),
        (
            _reading(meter_id=0),
            "invalid_field",
            "readings[3].meter_id must be a positive integer",
        ),
        (
            _reading(meter_id=4.0),
            "invalid_field",
            "readings[3].meter_id must be a positive integer",
        ),
        (
            {"value": "1", "at": GOOD_AT},
            "invalid_field",
            "readings[3].meter_id is required",
        ),
    ],
)
def test_describe_names_the_reading_and_keeps_the_rule_code(
    bad: dict[str, object], code: str, message: str
) -> None:
    err = _described(_batch_with(bad))
    assert (err.code, err.field, err.message()) == (code, message.split(" ", 1)[0], message)


def test_describe_an_item_that_is_not_an_object() -> None:
    err = _described({"readings": [_reading(), "not a reading"]})
    assert (err.code, err.field, err.message()) == (
        "invalid_field",
        "readings[1]",
        "readings[1] must be an object",
    )


@pytest.mark.parametrize("readings", [[], "x", None, {"0": {}}])
def test_describe_readings_not_a_non_empty_list(readings: object) -> None:
    err = _described({"readings": readings})
    assert (err.code, err.field, err.message()) == (
        "invalid_field",
        "readings",
        "readings must be a non-empty list",
    )


def test_describe_missing_readings() -> None:
    err = _described({})
    assert (err.code, err.field, err.message()) == (
        "invalid_field",
        "readings",
        "readings is required",
    )


@pytest.mark.parametrize("body", [[_reading()], "readings", 5, None])
def test_describe_body_not_an_object_names_no_field(body: object) -> None:
    err = _described(body)
    assert (err.code, err.field, err.message()) == ("invalid_field", None, "must be an object")


def test_describe_reports_the_first_bad_reading() -> None:
    readings = [_reading() for _ in range(6)]
    readings[4] = _reading(value="1e3")
    readings[2] = _reading(at="2200-01-01T00:00:00Z")
    err = _described({"readings": readings})
    assert (err.code, err.field) == ("time_out_of_range", "readings[2].at")


def test_batch_of_5000_is_accepted_and_5001_is_too_large() -> None:
    readings = [_reading(meter_id=i + 1) for i in range(5000)]
    assert len(ReadingsBatch.model_validate({"readings": readings}).readings) == 5000
    # 5001 items, all bad: the size is refused before any item is looked at.
    err = _described({"readings": [{"value": "1e3"}] * 5001})
    assert (err.code, err.field) == ("batch_too_large", "readings")
    assert err.message().startswith("readings ")
    assert "5000" in err.message()


def test_observed_time_is_not_checked_against_a_clock_without_one() -> None:
    batch = ReadingsBatch.model_validate({"readings": [_reading(at="2099-12-31T00:00:00Z")]})
    assert batch.readings[0].at == datetime(2099, 12, 31, tzinfo=UTC)


def test_future_check_allows_exactly_five_minutes() -> None:
    body = {"readings": [_reading(at="2026-03-01T12:05:00+00:00")]}
    batch = ReadingsBatch.model_validate(body, context={"now": NOW})
    assert batch.readings[0].at == NOW + timedelta(minutes=5)


def test_unknown_fields_are_ignored() -> None:
    body = {"readings": [_reading(unit="kWh")], "sender": "ha"}
    assert ReadingsBatch.model_validate(body).readings[0].value == Decimal("100.25")


def test_a_valid_batch_goes_on_the_wire_as_text() -> None:
    """Decimals are sent as strings and times as ISO-8601 with their offset."""
    body = {"readings": [_reading(value="0012.50", at="2026-03-01T11:00:00+01:00")]}
    batch = ReadingsBatch.model_validate(body, context={"now": NOW})
    assert batch.model_dump(mode="json") == {
        "readings": [{"meter_id": 1, "value": "12.50", "at": "2026-03-01T11:00:00+01:00"}]
    }


def test_decimal_objects_built_in_python_pass_as_their_text() -> None:
    built = ReadingsBatch.model_validate(
        {"readings": [_reading(value=Decimal("1E+3")), _reading(value=Decimal("-0"))]}
    )
    assert [format_decimal(r.value) for r in built.readings] == ["1000", "0"]
    err = _described({"readings": [_reading(value=Decimal("NaN"))]})
    assert (err.code, err.field) == ("invalid_decimal", "readings[0].value")
    err = _described({"readings": [_reading(value=Decimal("-0.5"))]})
    assert (err.code, err.message()) == (
        "negative_decimal",
        "readings[0].value must not be negative; got '-0.5'",
    )


def test_describe_pydantic_checks_are_invalid_field() -> None:
    with pytest.raises(ValidationError) as caught:
        ResolveReading.model_validate({"action": "approve", "reason": "r"})
    err = describe(caught.value)
    assert (err.code, err.field) == ("invalid_field", "action")
    assert err.message().startswith("action must be one of ")
    for word in ("accept", "reject", "rebase"):
        assert word in err.message()

    with pytest.raises(ValidationError) as caught:
        ResolveReading.model_validate({"action": "reject", "reason": "r" * 501})
    err = describe(caught.value)
    assert (err.code, err.field) == ("invalid_field", "reason")
    assert err.message() == "reason must be at most 500 characters"


def test_describe_messages_stay_short_for_huge_input() -> None:
    for bad in (
        _reading(value="7" * 5_000_000),
        _reading(at="2" * 5_000_000),
        _reading(meter_id="3" * 5_000_000),
    ):
        assert len(_described({"readings": [bad]}).message()) < 200
