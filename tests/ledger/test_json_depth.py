"""The JSON depth limit (services/validation.py): 32 levels pass, the 33rd is refused.

Depths are counted by hand: ``[]`` is one level, ``{"a": []}`` two; a scalar is none.
"""

from __future__ import annotations

import json

import pytest
from prepaid_ledger.errors import InputError
from prepaid_ledger.services.validation import MAX_JSON_DEPTH, loads_bounded


def nested_lists(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_objects(depth: int) -> str:
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


def test_the_limit_is_thirty_two() -> None:
    assert MAX_JSON_DEPTH == 32


@pytest.mark.parametrize("make", [nested_lists, nested_objects])
def test_thirty_two_levels_pass(make: object) -> None:
    assert callable(make)
    loads_bounded(make(32))


@pytest.mark.parametrize("make", [nested_lists, nested_objects])
def test_the_thirty_third_level_is_refused(make: object) -> None:
    assert callable(make)
    with pytest.raises(InputError) as refused:
        loads_bounded(make(33))
    assert refused.value.code == "too_deep"


def test_a_deep_branch_beside_shallow_ones_is_found() -> None:
    """The object is level 1, so 31 lists inside it make 32 and 32 lists make 33."""
    shallow = '{"readings": [1, 2, {"x": "y"}], "other": '
    loads_bounded(shallow + nested_lists(31) + "}")
    with pytest.raises(InputError):
        loads_bounded(shallow + nested_lists(32) + "}")


def test_scalars_and_wide_flat_bodies_pass() -> None:
    assert loads_bounded("5") == 5
    flat = {"readings": [{"meter_id": i, "value": "1.5", "at": "t"} for i in range(5000)]}
    assert loads_bounded(json.dumps(flat)) == flat
