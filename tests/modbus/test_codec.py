"""The codec decodes what it encodes, for every type and order, and refuses garbage."""

from __future__ import annotations

import struct
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.prepaid_meter.modbus import DecodeError, decode, encode
from custom_components.prepaid_meter.profiles import Register


def reg(data_type, word_order="big", byte_order="big", scale="1"):
    return Register(
        key="v",
        address=0,
        data_type=data_type,
        word_order=word_order,
        byte_order=byte_order,
        scale=Decimal(scale),
    )


@pytest.mark.parametrize(
    ("register", "words", "expected"),
    [
        (reg("uint32", scale="0.01"), [0x0001, 0x0002], Decimal("655.38")),
        (reg("uint32", word_order="little", scale="0.01"), [0x0002, 0x0001], Decimal("655.38")),
        (reg("uint16", byte_order="little"), [0x3412], Decimal(0x1234)),
        (reg("int16"), [0xFFFF], Decimal(-1)),
        (reg("int32"), [0xFFFF, 0xFFFE], Decimal(-2)),
        (reg("uint16", scale="0.1"), [2301], Decimal("230.1")),
        (reg("float32"), list(struct.unpack(">HH", struct.pack(">f", 230.1))), Decimal("230.1")),
        (
            reg("float32", word_order="little"),
            list(reversed(struct.unpack(">HH", struct.pack(">f", 49.98)))),
            Decimal("49.98"),
        ),
        (
            reg("float32", scale="1000"),
            list(struct.unpack(">HH", struct.pack(">f", 1.5))),
            Decimal(1500),
        ),
    ],
)
def test_decode_known_values(register, words, expected):
    assert decode(register, words) == expected


def test_decode_refuses_nan_and_wrong_length():
    nan = list(struct.unpack(">HH", struct.pack(">f", float("nan"))))
    with pytest.raises(DecodeError, match="not a finite"):
        decode(reg("float32"), nan)
    with pytest.raises(DecodeError, match="expected 2 words"):
        decode(reg("uint32"), [1])
    with pytest.raises(DecodeError, match="16-bit"):
        decode(reg("uint16"), [70000])


def test_encode_refuses_out_of_range():
    with pytest.raises(ValueError, match="does not fit"):
        encode(reg("uint16"), Decimal(70000))
    with pytest.raises(ValueError, match="does not fit"):
        encode(reg("uint32"), Decimal(-1))
    with pytest.raises(ValueError, match="cannot encode"):
        encode(reg("uint32"), Decimal("NaN"))


orders = st.sampled_from(["big", "little"])
scales = st.sampled_from(["1", "0.1", "0.01", "0.001", "10"])


@given(
    st.sampled_from(["uint16", "int16", "uint32", "int32"]),
    orders,
    orders,
    scales,
    st.integers(min_value=-(2**31), max_value=2**32 - 1),
)
def test_integer_round_trip(data_type, word_order, byte_order, scale, raw):
    register = reg(data_type, word_order, byte_order, scale)
    bits = 16 if data_type.endswith("16") else 32
    low, high = (
        (0, 2**bits - 1) if data_type.startswith("u") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    )
    value = Decimal(raw) * Decimal(scale)
    if not low <= raw <= high:
        with pytest.raises(ValueError, match="does not fit"):
            encode(register, value)
        return
    words = encode(register, value)
    assert len(words) == register.count
    assert decode(register, words) == value


@given(orders, orders, st.floats(min_value=-1e6, max_value=1e6, width=32, allow_nan=False))
def test_float_round_trip_keeps_float32_precision(word_order, byte_order, number):
    register = reg("float32", word_order, byte_order)
    value = Decimal(repr(number))
    decoded = decode(register, encode(register, value))
    assert abs(decoded - value) <= abs(value) * Decimal("1e-6") + Decimal("1e-30")
