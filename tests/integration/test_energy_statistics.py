"""No glitch reaches Home Assistant's long-term statistics (the Energy dashboard).

Every glitch kind of the simulator is injected into the room meter's total register for one
read, through a real Home Assistant with its recorder, the real ledger and the simulated meter.
Then HA's own statistics compiler runs, and the recorded sum of the energy sensor must equal
the energy the simulated meter really counted (its own total, an independent truth) within
1 Wh. Before the fix a zero read was recorded as a meter reset and a jump as 1,000,000 kWh.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from homeassistant.components.recorder import Recorder
from homeassistant.components.recorder.statistics import statistics_during_period
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
)

from custom_components.prepaid_meter.const import DOMAIN

from .live_room import Room, RoomFactory, entity_id, wait_for


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder first (it must exist before Home Assistant starts), then our integration."""


GLITCHES = ("zero", "jump", "swap_words", "nan", "garbage", "step_back")


def _period_start(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 5, second=0, microsecond=0)


async def _recorded_sum(hass: HomeAssistant, energy: str, since: datetime) -> float:
    """Compile every 5-minute period since ``since`` with HA's compiler; return the sum."""
    await async_wait_recording_done(hass)
    start = _period_start(since)
    end = dt_util.utcnow()
    while start <= end:
        do_adhoc_statistics(hass, start=start)
        await async_wait_recording_done(hass)
        start += timedelta(minutes=5)
    stats: dict[str, list[Any]] = await hass.async_add_executor_job(
        statistics_during_period,
        hass,
        _period_start(since),
        None,
        {energy},
        "5minute",
        None,
        {"sum"},
    )
    assert stats.get(energy), "HA compiled no statistics for the energy sensor"
    return float(stats[energy][-1]["sum"])


async def _sdm120_room(hass: HomeAssistant, make_room: RoomFactory) -> Room:
    room = await make_room(credit_minor=100_000)
    await room.ledger.call(
        "PATCH", f"/api/v1/meters/{room.ledger_meter_id}", {"model": "eastron_sdm120"}
    )
    await room.sync.async_refresh()  # the ledger's limits for this model reach the integration
    return room


async def test_no_glitch_kind_reaches_the_energy_statistics(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    since = dt_util.utcnow()
    room = await _sdm120_room(hass, make_room)
    energy = entity_id(hass, room, "energy_total")
    first = room.meter.total  # what the entity shows now: the last read, as the meter counted
    for glitch in GLITCHES:
        shown = hass.states.get(energy).state
        room.meter.inject_glitch(glitch)
        await room.poll_and_post(hass)
        state = hass.states.get(energy)
        if state.state != "unavailable":  # garbage and NaN fail the poll as a whole
            assert state.state == shown, f"{glitch}: the entity showed {state.state}"
        if glitch in ("zero", "jump", "swap_words"):
            assert state.attributes["held_kind"] in {"reset", "surge", "backwards"}, glitch
        await room.poll_and_post(hass)  # the next read is true again
        state = hass.states.get(energy)
        assert abs(float(state.state) - room.meter.total) < 1e-5, glitch
        assert "held_kind" not in state.attributes
    last = room.meter.total
    recorded = await _recorded_sum(hass, energy, since)
    assert abs(recorded - (last - first)) <= 0.001, (recorded, last - first)


async def test_a_burst_of_held_reads_is_one_repair_issue(
    hass: HomeAssistant, make_room: RoomFactory
) -> None:
    room = await _sdm120_room(hass, make_room)
    energy = entity_id(hass, room, "energy_total")
    shown = hass.states.get(energy).state
    room.meter.inject_glitch("zero", reads=3)
    for _ in range(3):
        await room.poll_and_post(hass)
    assert hass.states.get(energy).state == shown
    assert hass.states.get(energy).attributes["held_reads"] == 3

    def issues() -> list[ir.IssueEntry]:
        return [
            issue
            for (domain, _), issue in ir.async_get(hass).issues.items()
            if domain == DOMAIN and issue.translation_key == "reading_held_reset"
        ]

    await wait_for(lambda: len(issues()) == 1)
    await room.sync.async_refresh()
    assert len(issues()) == 1, "one issue for the meter, not one per reading"
    (issue,) = issues()
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["value"].count(",") == 2  # its three values
