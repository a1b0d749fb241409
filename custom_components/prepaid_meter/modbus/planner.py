"""Plan the fewest read requests that cover a meter's registers.

Each request reads one contiguous block with one function code. A block may include unused
addresses between registers (reading them is cheaper than another round trip on a 9600-baud
line) but never more than the device's maximum span and never an address the device refuses
(a forbidden range). Greedy "extend the block while it still fits" is optimal here: the first
register must start some block, starting that block exactly at it reaches furthest, and the
same argument repeats for the first register not yet covered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from ..profiles.model import AddressRange, MeterProfile, Register  # noqa: TID252  # mypy maps this package as prepaid_meter
from . import codec


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: ``count`` registers from ``address`` with ``function``."""

    function: int
    address: int
    count: int
    registers: tuple[Register, ...]

    @property
    def end(self) -> int:
        """Last address read (inclusive)."""
        return self.address + self.count - 1

    def decode(self, words: Sequence[int]) -> dict[str, Decimal]:
        """Decode every register of the block from the words one request returned."""
        return {
            register.key: codec.decode(
                register,
                words[register.address - self.address : register.end - self.address + 1],
            )
            for register in self.registers
        }


def _spans_forbidden(
    forbidden: Iterable[AddressRange], function: int, start: int, end: int
) -> bool:
    return any(gap.applies_to(function) and gap.overlaps(start, end) for gap in forbidden)


def plan_registers(
    registers: Iterable[Register], max_span: int, forbidden: Sequence[AddressRange] = ()
) -> list[ReadBlock]:
    """Group registers into the fewest blocks allowed by ``max_span`` and ``forbidden``."""
    by_function: dict[int, list[Register]] = {}
    for register in registers:
        by_function.setdefault(register.function, []).append(register)
    blocks: list[ReadBlock] = []
    for function in sorted(by_function):
        current: list[Register] = []
        for register in sorted(by_function[function], key=lambda r: r.address):
            if current and (
                register.end - current[0].address + 1 > max_span
                or _spans_forbidden(forbidden, function, current[0].address, register.end)
            ):
                blocks.append(_block(function, current))
                current = []
            current.append(register)
        blocks.append(_block(function, current))
    return blocks


def _block(function: int, registers: list[Register]) -> ReadBlock:
    start = registers[0].address
    end = max(register.end for register in registers)
    return ReadBlock(function, start, end - start + 1, tuple(registers))


def plan_reads(profile: MeterProfile, keys: Iterable[str] | None = None) -> list[ReadBlock]:
    """Blocks that read ``keys`` (default: every register) of ``profile``."""
    wanted = set(keys) if keys is not None else None
    if wanted is not None and (unknown := wanted - {r.key for r in profile.registers}):
        raise KeyError(f"profile {profile.id!r} has no registers {sorted(unknown)}")
    registers = [r for r in profile.registers if wanted is None or r.key in wanted]
    return plan_registers(registers, profile.max_registers_per_request, profile.forbidden)
