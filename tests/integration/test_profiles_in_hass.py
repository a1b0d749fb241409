"""Every built-in meter model, polled in a real Home Assistant from the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.const import DOMAIN
from custom_components.prepaid_meter.profiles import PROFILES, get_profile
from meter_simulator import ConstantLoad, MeterSimulator, SimulatedMeter

from .conftest import LedgerSite, meter_subentry, tcp_meter

UNITS = {profile_id: unit for unit, profile_id in enumerate(PROFILES, start=1)}
#: Per model, the optional sensors (off by default) its manual's registers give, written out by
#: hand: per-phase values on the three-phase meter, tariff bands on the Acrel, export energy,
#: frequency and power factor where the meter has them.
OPTIONAL = {
    "acrel_ddsy1352": {"energy_sharp", "energy_peak", "energy_flat", "energy_valley"},
    "eastron_sdm120": {"energy_export", "frequency", "power_factor"},
    "eastron_sdm230": {"energy_export", "frequency", "power_factor"},
    "eastron_sdm630": {
        "energy_export", "frequency", "power_factor",
        *(f"{q}_{p}" for q in ("voltage", "current", "power") for p in ("l1", "l2", "l3")),
    },
    "chint_ddsu666": {"energy_export", "frequency", "power_factor"},
    "hiking_dds238_2": {"energy_export", "frequency", "power_factor"},
}  # fmt: skip
#: Entity suffix and simulator key of the values every model is checked for, where it has them.
CHECKED = {"energy": "energy_total", "power": "power", "voltage": "voltage", "current": "current"}


@pytest.fixture
async def fleet(socket_enabled: None) -> AsyncIterator[MeterSimulator]:
    """One simulated meter of every model on one TCP gateway."""
    simulator = MeterSimulator()
    for profile_id, unit in UNITS.items():
        simulator.add(unit, SimulatedMeter(profile_id, load=ConstantLoad(2300), total=42.5))
    await simulator.start_tcp()
    yield simulator
    await simulator.close()


@pytest.mark.parametrize("profile_id", list(PROFILES))
async def test_model_values_match_the_meter(
    hass: HomeAssistant, ledger: LedgerSite, fleet: MeterSimulator, profile_id: str
) -> None:
    unit = UNITS[profile_id]
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=ledger.ledger_id,
        data={"url": ledger.url, "token": ledger.integration_token},
        subentries_data=[meter_subentry(tcp_meter(fleet, "Meter", unit, profile_id))],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    truth = fleet.meter(unit).values()
    keys = {register.key for register in get_profile(profile_id).registers}
    checked = 0
    for suffix, key in CHECKED.items():
        state = hass.states.get(f"sensor.meter_{suffix}")
        if key not in keys:
            assert state is None, f"{profile_id} has no {key}"
            continue
        assert state is not None, f"{profile_id}: sensor.meter_{suffix}"
        # Energy moves while the test runs (2.3 kW); everything else is steady.
        tolerance = 0.05 if key == "energy_total" else float(truth[key]) * 0.01 + 0.01
        assert float(state.state) == pytest.approx(float(truth[key]), abs=tolerance), key
        checked += 1
    assert checked >= 2

    registry = er.async_get(hass)
    (subentry_id,) = entry.subentries
    disabled = {
        e.unique_id.removeprefix(f"{subentry_id}_")
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if e.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    }
    assert disabled == OPTIONAL[profile_id]
    assert await hass.config_entries.async_unload(entry.entry_id)
