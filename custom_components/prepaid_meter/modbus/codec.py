"""Register words <-> Decimal values, in both directions.

The hub decodes with it and the simulator encodes with it, so both sides agree on word order,
byte order, signedness and scale by construction. Values are Decimals: energy totals feed
money calculations, where binary floats must not appear.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from ..profiles.model import Register  # noqa: TID252  # mypy maps this package as prepaid_meter
from .errors import DecodeError

_INT_LIMITS: dict[str, tuple[int, int]] = {
    "uint16": (0, 0xFFFF),
    "int16": (-0x8000, 0x7FFF),
    "uint32": (0, 0xFFFF_FFFF),
    "int32": (-0x8000_0000, 0x7FFF_FFFF),
}
#: float32 carries about 7.2 significant decimal digits; more would only be binary noise.
_FLOAT32_DIGITS = 7


def _words_to_bytes(register: Register, words: Sequence[int]) -> bytes:
    ordered = list(words) if register.word_order == "big" else list(reversed(words))
    raw = b"".join(word.to_bytes(2, "big") for word in ordered)
    if register.byte_order == "little":
        raw = b"".join(raw[i : i + 2][::-1] for i in range(0, len(raw), 2))
    return raw


def _bytes_to_words(register: Register, raw: bytes) -> list[int]:
    if register.byte_order == "little":
        raw = b"".join(raw[i : i + 2][::-1] for i in range(0, len(raw), 2))
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return words if register.word_order == "big" else list(reversed(words))


def decode(register: Register, words: Sequence[int]) -> Decimal:
    """Decode the register's words (exactly ``register.count`` of them) into a scaled value."""
    if len(words) != register.count:
        raise DecodeError(f"{register.key}: expected {register.count} words, got {len(words)}")
    if not all(0 <= word <= 0xFFFF for word in words):
        raise DecodeError(f"{register.key}: words must be 16-bit")
    raw = _words_to_bytes(register, words)
    if register.data_type == "float32":
        number = struct.unpack(">f", raw)[0]
        if not math.isfinite(number):
            raise DecodeError(f"{register.key}: not a finite number ({number})")
        value = Decimal(f"{number:.{_FLOAT32_DIGITS}g}")
    else:
        signed = register.data_type.startswith("int")
        value = Decimal(int.from_bytes(raw, "big", signed=signed))
    # Scales are bounded (model.MAX_SCALE), so this product cannot overflow Decimal.
    return value * register.scale


def encode(register: Register, value: Decimal) -> list[int]:
    """Encode a scaled value into the register's words (rounding to the register's step)."""
    if not value.is_finite():
        raise ValueError(f"{register.key}: cannot encode {value}")
    unscaled = value / register.scale
    if register.data_type == "float32":
        raw = struct.pack(">f", float(unscaled))
    else:
        low, high = _INT_LIMITS[register.data_type]
        number = int(unscaled.to_integral_value(rounding=ROUND_HALF_EVEN))
        if not low <= number <= high:
            raise ValueError(f"{register.key}: {value} does not fit {register.data_type}")
        size = 2 * register.count
        raw = number.to_bytes(size, "big", signed=register.data_type.startswith("int"))
    return _bytes_to_words(register, raw)
