"""Plan the fewest read requests that cover a meter's registers.

Each request reads one contiguous block with one function code. A block may include unused
addresses between registers (reading them is cheaper than another round trip on a 9600-baud
line) but never more than the device's maximum span and never an address the device refuses
(a forbidden range). Greedy "extend the block while it still fits" is optimal here: the first
register must start some block, starting that block exactly at it reaches furthest, and the
same argument repeats for the first register not yet covered.

On a slow serial line the fewest requests is not always the fastest poll: a gap of 40 unused
registers costs 80 bytes on the wire, more than a second request (about 20 characters with
its silences). ``request_cost`` switches to that objective: the plan then minimises
``requests * request_cost + registers read`` (an exact dynamic programme, ties broken towards
fewer requests). ``RTU_REQUEST_COST`` is that price for RTU framing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from ..profiles.model import AddressRange, MeterProfile, Register  # noqa: TID252  # mypy maps this package as prepaid_meter
from . import codec

#: One more RTU request costs its 8-byte frame, the 5 bytes around the answer's data and two
#: 3.5-character silences: about 20 characters, i.e. the bytes of 10 registers.
RTU_REQUEST_COST = 10.0


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
    registers: Iterable[Register],
    max_span: int,
    forbidden: Sequence[AddressRange] = (),
    request_cost: float | None = None,
) -> list[ReadBlock]:
    """Group registers into blocks allowed by ``max_span`` and ``forbidden``.

    ``request_cost`` None: the fewest blocks. Otherwise: the cheapest plan, where a block
    costs ``request_cost`` plus the number of registers it reads.
    """
    if request_cost is not None and request_cost < 0:
        raise ValueError("request cost must not be negative")
    by_function: dict[int, list[Register]] = {}
    for register in registers:
        by_function.setdefault(register.function, []).append(register)
    blocks: list[ReadBlock] = []
    for function in sorted(by_function):
        ordered = sorted(by_function[function], key=lambda r: r.address)
        if request_cost is not None:
            blocks.extend(_cheapest(function, ordered, max_span, forbidden, request_cost))
            continue
        current: list[Register] = []
        for register in ordered:
            if current and (
                register.end - current[0].address + 1 > max_span
                or _spans_forbidden(forbidden, function, current[0].address, register.end)
            ):
                blocks.append(_block(function, current))
                current = []
            current.append(register)
        blocks.append(_block(function, current))
    return blocks


def _cheapest(
    function: int,
    ordered: list[Register],
    max_span: int,
    forbidden: Sequence[AddressRange],
    request_cost: float,
) -> list[ReadBlock]:
    """Split ``ordered`` (one function code) into consecutive groups of least total cost."""
    count = len(ordered)
    # best[i]: (cost, blocks, end of the first group) for registers i.. ; best[count] is empty.
    best: list[tuple[float, int, int]] = [(0.0, 0, 0)] * (count + 1)
    for first in range(count - 1, -1, -1):
        start = ordered[first].address
        options = []
        for last in range(first, count):
            span = ordered[last].end - start + 1
            if span > max_span or _spans_forbidden(forbidden, function, start, ordered[last].end):
                break
            cost, blocks, _ = best[last + 1]
            options.append((cost + request_cost + span, blocks + 1, last + 1))
        best[first] = min(options)
    plan: list[ReadBlock] = []
    first = 0
    while first < count:
        after = best[first][2]
        plan.append(_block(function, ordered[first:after]))
        first = after
    return plan


def _block(function: int, registers: list[Register]) -> ReadBlock:
    start = registers[0].address
    end = max(register.end for register in registers)
    return ReadBlock(function, start, end - start + 1, tuple(registers))


def plan_reads(
    profile: MeterProfile,
    keys: Iterable[str] | None = None,
    request_cost: float | None = None,
) -> list[ReadBlock]:
    """Blocks that read ``keys`` (default: every register) of ``profile``.

    ``request_cost`` None plans the fewest requests; see the module docstring otherwise.
    """
    wanted = set(keys) if keys is not None else None
    if wanted is not None and (unknown := wanted - {r.key for r in profile.registers}):
        raise KeyError(f"profile {profile.id!r} has no registers {sorted(unknown)}")
    registers = [r for r in profile.registers if wanted is None or r.key in wanted]
    return plan_registers(
        registers, profile.max_registers_per_request, profile.forbidden, request_cost
    )
