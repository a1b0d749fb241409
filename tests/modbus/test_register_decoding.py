"""``Register`` fields decode exact Decimals for every type and order, and refuse garbage.

Expected words are packed here with ``struct`` (an independent encoder), never by our code.
"""

from __future__ import annotations

import struct
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.prepaid_meter.profiles import Register, UndecodableWords


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
    assert register.decode(words) == expected


def test_decode_refuses_nan_and_wrong_length():
    nan = list(struct.unpack(">HH", struct.pack(">f", float("nan"))))
    with pytest.raises(UndecodableWords, match="not a finite"):
        reg("float32").decode(nan)
    inf = list(struct.unpack(">HH", struct.pack(">f", float("inf"))))
    with pytest.raises(UndecodableWords, match="not a finite"):
        reg("float32").decode(inf)
    with pytest.raises(UndecodableWords, match="expected 2 16-bit words"):
        reg("uint32").decode([1])
    with pytest.raises(UndecodableWords, match="16-bit"):
        reg("uint16").decode([70000])


orders = st.sampled_from(["big", "little"])
scales = st.sampled_from(["1", "0.1", "0.01", "0.001", "10"])
FORMATS = {"uint16": ">H", "int16": ">h", "uint32": ">I", "int32": ">i", "float32": ">f"}


def pack(data_type: str, value: int | float, word_order: str, byte_order: str) -> list[int]:
    """Words as a device with these orders sends ``value`` (struct, not our decoder)."""
    raw = struct.pack(FORMATS[data_type], value)
    words = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    if byte_order == "little":
        words = [word[::-1] for word in words]
    if word_order == "little":
        words.reverse()
    return [int.from_bytes(word, "big") for word in words]


@given(
    st.sampled_from(["uint16", "int16", "uint32", "int32"]),
    orders,
    orders,
    scales,
    st.integers(min_value=-(2**31), max_value=2**32 - 1),
)
def test_integer_decoding_is_exact(data_type, word_order, byte_order, scale, raw):
    bits = 16 if data_type.endswith("16") else 32
    low, high = (
        (0, 2**bits - 1) if data_type.startswith("u") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    )
    if not low <= raw <= high:
        return
    register = reg(data_type, word_order, byte_order, scale)
    assert register.decode(pack(data_type, raw, word_order, byte_order)) == Decimal(raw) * Decimal(
        scale
    )


@given(orders, orders, st.floats(min_value=-1e6, max_value=1e6, width=32, allow_nan=False))
def test_float_decoding_keeps_float32_precision(word_order, byte_order, number):
    register = reg("float32", word_order, byte_order)
    decoded = register.decode(pack("float32", number, word_order, byte_order))
    value = Decimal(repr(number))
    assert abs(decoded - value) <= abs(value) * Decimal("1e-6") + Decimal("1e-30")
