"""The Prepaid Meter integration: Modbus meters as prepaid meters backed by the ledger add-on."""

from __future__ import annotations

import asyncio
import logging

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType
from prepaid_meter_contract.client import LedgerClient
from prepaid_meter_contract.errors import LedgerAuthError, LedgerError

from .const import CONF_TOKEN, CONF_URL, DOMAIN
from .ledger_sync import LedgerSync
from .services import async_setup_services
from .site_meters import (
    PrepaidRuntimeData,
    SupplyOptions,
    async_apply_entry_update,
    meter_subentries,
    start_meter,
)
from .supply_control import OverrideStore

_LOGGER = logging.getLogger(__name__)

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.EVENT,
    Platform.SENSOR,
    Platform.SWITCH,
]

__all__ = ["PrepaidConfigEntry", "PrepaidRuntimeData"]

type PrepaidConfigEntry = ConfigEntry[PrepaidRuntimeData]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions once, whether or not a ledger site is loaded yet."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: PrepaidConfigEntry) -> bool:
    """Connect to the ledger site and start polling its meters."""
    client = LedgerClient(
        async_get_clientsession(hass), entry.data[CONF_URL], entry.data[CONF_TOKEN]
    )
    try:
        identity = await client.async_identify()
    except LedgerAuthError as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="invalid_auth"
        ) from err
    except LedgerError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"url": client.url, "error": str(err)},
        ) from err
    sync = LedgerSync(hass, entry, client, set())
    overrides = OverrideStore(hass, entry.entry_id)
    await overrides.async_load()
    runtime = PrepaidRuntimeData(
        client,
        identity,
        sync,
        overrides,
        started_with=dict(entry.data),
        supply_options=SupplyOptions.of(entry),
    )
    entry.runtime_data = runtime
    for subentry in meter_subentries(entry).values():
        start_meter(hass, entry, subentry)
    await sync.async_config_entry_first_refresh()
    entry.async_on_unload(sync.async_add_listener(sync.sync_repair_issues))
    sync.sync_repair_issues()
    entry.async_on_unload(sync.async_add_listener(sync.watch_reachability))
    # A meter that does not answer yet is unavailable, never a reason to fail the site. Lines
    # are read in parallel; a shared connection serialises the meters on one line.
    await asyncio.gather(*(coordinator.async_refresh() for coordinator in runtime.meters.values()))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    for controller in runtime.supply.values():
        controller.start()
    sync.start_stream()
    sync.watch_reachability()  # until the stream says hello, the ledger counts as unreachable
    # The one place that reacts to a change of the entry: flows only update it (HA 2026.12).
    entry.async_on_unload(entry.add_update_listener(async_apply_entry_update))
    return True


def _release_meters(hass: HomeAssistant, runtime: PrepaidRuntimeData) -> None:
    """Forget the meters; core ``modbus`` releases their units when the entry unloads."""
    for unsubs in runtime.meter_unsubs.values():
        for unsub in unsubs:
            unsub()
    runtime.meter_unsubs.clear()
    for coordinator in runtime.meters.values():
        ir.async_delete_issue(hass, DOMAIN, coordinator.issue_id)
    runtime.meters.clear()


async def async_unload_entry(hass: HomeAssistant, entry: PrepaidConfigEntry) -> bool:
    """Stop polling and give the Modbus lines back."""
    if not await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        return False
    runtime = entry.runtime_data
    for controller in runtime.supply.values():
        controller.stop()
    await runtime.sync.async_stop()
    _release_meters(hass, runtime)
    return True
