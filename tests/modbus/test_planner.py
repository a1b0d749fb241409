"""The planner covers every register in the fewest requests the device allows."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.prepaid_meter.modbus import RTU_REQUEST_COST, plan_reads, plan_registers
from custom_components.prepaid_meter.profiles import PROFILES, AddressRange, Register, get_profile

EXPECTED_REQUESTS = {
    "acrel_ddsy1352": 1,
    "eastron_sdm120": 1,
    "eastron_sdm230": 1,
    "eastron_sdm630": 1,
    "chint_ddsu666": 2,
    "hiking_dds238_2": 1,
}


@pytest.mark.parametrize("profile_id", sorted(PROFILES))
def test_builtin_profiles_request_counts(profile_id):
    profile = get_profile(profile_id)
    blocks = plan_reads(profile)
    assert len(blocks) == EXPECTED_REQUESTS[profile_id]
    assert all(b.count <= profile.max_registers_per_request for b in blocks)
    assert sorted(r.key for b in blocks for r in b.registers) == sorted(
        r.key for r in profile.registers
    )


def test_eastron_span_limit_splits_at_80():
    # 0x0000..0x004B is 76 registers: one request at 80, two at 64.
    registers = get_profile("eastron_sdm120").registers
    assert len(plan_registers(registers, 80)) == 1
    assert len(plan_registers(registers, 64)) == 2


def test_forbidden_gap_splits_the_block():
    registers = [Register(key="a", address=0), Register(key="b", address=10)]
    assert len(plan_registers(registers, 125)) == 1
    gap = AddressRange(start=5, end=5, function=3)
    blocks = plan_registers(registers, 125, [gap])
    assert [(b.address, b.count) for b in blocks] == [(0, 1), (10, 1)]
    # A gap for another function code does not matter.
    assert len(plan_registers(registers, 125, [AddressRange(start=5, end=5, function=4)])) == 1


def test_function_codes_never_share_a_block():
    registers = [Register(key="a", address=0, function=3), Register(key="b", address=1, function=4)]
    assert sorted((b.function, b.address) for b in plan_registers(registers, 125)) == [
        (3, 0),
        (4, 1),
    ]


def test_plan_subset_of_keys_and_unknown_key():
    profile = get_profile("chint_ddsu666")
    blocks = plan_reads(profile, ["energy_total"])
    assert [(b.function, b.address, b.count) for b in blocks] == [(4, 0x4000, 2)]
    with pytest.raises(KeyError, match="nope"):
        plan_reads(profile, ["nope"])


@st.composite
def layouts(draw):
    """Non-overlapping registers, a span limit and forbidden gaps that avoid the registers."""
    count = draw(st.integers(min_value=1, max_value=12))
    address = 0
    registers = []
    for index in range(count):
        address += draw(st.integers(min_value=0, max_value=20))
        data_type = draw(st.sampled_from(["uint16", "uint32"]))
        registers.append(Register(key=f"r{index}", address=address, data_type=data_type))
        address = registers[-1].end + 1
    occupied = {a for r in registers for a in range(r.address, r.end + 1)}
    free = [a for a in range(address + 5) if a not in occupied]
    gaps = draw(st.lists(st.sampled_from(free), max_size=4)) if free else []
    forbidden = [AddressRange(start=a, end=a) for a in gaps]
    max_span = draw(st.integers(min_value=2, max_value=40))
    return registers, max_span, forbidden


def optimum(registers, max_span, forbidden):
    """Brute force: fewest contiguous groups of consecutive registers that are all legal."""
    ordered = sorted(registers, key=lambda r: r.address)

    def legal(i, j):
        start, end = ordered[i].address, ordered[j].end
        return end - start + 1 <= max_span and not any(g.overlaps(start, end) for g in forbidden)

    @functools.cache
    def best(i):
        if i == len(ordered):
            return 0
        return min(1 + best(j + 1) for j in range(i, len(ordered)) if legal(i, j))

    return best(0)


@settings(max_examples=300)
@given(layouts())
def test_plan_is_legal_complete_and_minimal(layout):
    registers, max_span, forbidden = layout
    blocks = plan_registers(registers, max_span, forbidden)
    covered = [r.key for b in blocks for r in b.registers]
    assert sorted(covered) == sorted(r.key for r in registers)
    for block in blocks:
        assert block.count <= max_span
        assert not any(g.overlaps(block.address, block.end) for g in forbidden)
        for register in block.registers:
            assert block.address <= register.address <= register.end <= block.end
    assert len(blocks) == optimum(registers, max_span, forbidden)


def test_wire_cost_plan_reads_less_on_eastron():
    profile = get_profile("eastron_sdm120")
    blocks = plan_reads(profile, request_cost=RTU_REQUEST_COST)
    assert [(b.address, b.count) for b in blocks] == [(0x0000, 14), (0x001E, 2), (0x0046, 6)]
    # A request priced above the whole span falls back to one block.
    assert len(plan_reads(profile, request_cost=1000)) == 1
    with pytest.raises(ValueError, match="negative"):
        plan_reads(profile, request_cost=-1)


def cheapest(registers, max_span, forbidden, request_cost):
    """Brute force over every split of the address-ordered registers into groups."""
    ordered = sorted(registers, key=lambda r: r.address)
    best = None
    for mask in range(2 ** (len(ordered) - 1)):
        groups, current = [], [ordered[0]]
        for index, register in enumerate(ordered[1:]):
            if mask >> index & 1:
                groups.append(current)
                current = []
            current.append(register)
        groups.append(current)
        spans = [(g[0].address, g[-1].end) for g in groups]
        if any(
            end - start + 1 > max_span or any(f.overlaps(start, end) for f in forbidden)
            for start, end in spans
        ):
            continue
        cost = sum(request_cost + end - start + 1 for start, end in spans)
        best = cost if best is None else min(best, cost)
    return best


@settings(max_examples=200)
@given(layouts(), st.sampled_from([0.0, 1.0, 10.0, 25.0]))
def test_wire_cost_plan_is_legal_and_cheapest(layout, request_cost):
    registers, max_span, forbidden = layout
    registers = registers[:8]
    blocks = plan_registers(registers, max_span, forbidden, request_cost)
    assert sorted(r.key for b in blocks for r in b.registers) == sorted(r.key for r in registers)
    for block in blocks:
        assert block.count <= max_span
        assert not any(g.overlaps(block.address, block.end) for g in forbidden)
    cost = sum(request_cost + b.count for b in blocks)
    assert cost == pytest.approx(cheapest(registers, max_span, forbidden, request_cost))
