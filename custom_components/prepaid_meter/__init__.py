"""The Prepaid Meter integration: Modbus meters as prepaid meters backed by the ledger add-on."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .const import (
    CONF_ENFORCE_WHEN_OFFLINE,
    CONF_LEDGER_METER_ID,
    CONF_STALE_POLLS,
    CONF_TOKEN,
    CONF_URL,
    DEFAULT_STALE_POLLS,
    DOMAIN,
    SUBENTRY_METER,
)
from .coordinator import MeterCoordinator
from .ledger_client import LedgerAuthError, LedgerClient, LedgerError, LedgerIdentity
from .ledger_sync import LedgerSync
from .meter_config import profile_from_config
from .meter_errors import EndpointConflict
from .meter_link import async_attach_meter
from .services import async_setup_services
from .supply_control import OverrideStore, SupplyController

_LOGGER = logging.getLogger(__name__)

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.EVENT,
    Platform.SENSOR,
    Platform.SWITCH,
]


@dataclass(slots=True)
class PrepaidRuntimeData:
    """What a loaded ledger site keeps while it runs."""

    client: LedgerClient
    identity: LedgerIdentity
    sync: LedgerSync
    meters: dict[str, MeterCoordinator] = field(default_factory=dict)
    #: Ledger meter id of each linked meter subentry.
    ledger_meters: dict[str, int] = field(default_factory=dict)
    #: Relay control of each linked meter that has a relay.
    supply: dict[str, SupplyController] = field(default_factory=dict)


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
    ledger_meters = {
        subentry.subentry_id: int(subentry.data[CONF_LEDGER_METER_ID])
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_METER
        and subentry.data.get(CONF_LEDGER_METER_ID) is not None
    }
    sync = LedgerSync(hass, entry, client, set(ledger_meters.values()))
    runtime = PrepaidRuntimeData(client, identity, sync, ledger_meters=ledger_meters)
    entry.runtime_data = runtime
    for subentry in entry.subentries.values():
        if subentry.subentry_type == SUBENTRY_METER:
            coordinator = _start_meter(hass, entry, subentry)
            if coordinator is not None:
                runtime.meters[subentry.subentry_id] = coordinator
    await sync.async_config_entry_first_refresh()
    entry.async_on_unload(sync.async_add_listener(sync.sync_repair_issues))
    sync.sync_repair_issues()
    overrides = OverrideStore(hass, entry.entry_id)
    await overrides.async_load()
    for subentry_id, meter_id in ledger_meters.items():
        if (coordinator := runtime.meters.get(subentry_id)) is None:
            continue
        entry.async_on_unload(sync.follow_meter(coordinator, meter_id))
        if coordinator.profile.relay is not None:
            runtime.supply[subentry_id] = SupplyController(
                hass,
                coordinator,
                sync,
                meter_id,
                stale_polls=int(entry.options.get(CONF_STALE_POLLS, DEFAULT_STALE_POLLS)),
                enforce_when_offline=bool(entry.options.get(CONF_ENFORCE_WHEN_OFFLINE, False)),
                overrides=overrides,
            )
    # A meter that does not answer yet is unavailable, never a reason to fail the site. Lines
    # are read in parallel; a shared connection serialises the meters on one line.
    await asyncio.gather(*(coordinator.async_refresh() for coordinator in runtime.meters.values()))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    for controller in runtime.supply.values():
        controller.start()
    sync.start_stream()
    entry.async_on_unload(entry.add_update_listener(_async_reload_on_change))
    return True


def _start_meter(
    hass: HomeAssistant,
    entry: PrepaidConfigEntry,
    subentry: ConfigSubentry,
) -> MeterCoordinator | None:
    """Hold the meter's unit on its line's shared connection; a repair issue on a conflict."""
    issue_id = f"endpoint_conflict_{subentry.subentry_id}"
    profile = profile_from_config(subentry.data)
    try:
        link = async_attach_meter(hass, entry, subentry.data, profile)
    except EndpointConflict as err:
        _LOGGER.error("Meter %s not started: %s", subentry.title, err)
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="endpoint_conflict",
            translation_placeholders={"meter": subentry.title, "detail": str(err)},
        )
        return None
    ir.async_delete_issue(hass, DOMAIN, issue_id)
    return MeterCoordinator(hass, entry, subentry, link)


def _release_meters(hass: HomeAssistant, runtime: PrepaidRuntimeData) -> None:
    """Forget the meters; core ``modbus`` releases their units when the entry unloads."""
    for coordinator in runtime.meters.values():
        ir.async_delete_issue(hass, DOMAIN, coordinator.issue_id)
    runtime.meters.clear()


async def _async_reload_on_change(hass: HomeAssistant, entry: PrepaidConfigEntry) -> None:
    """Meters were added, changed or removed: restart the site with the new set."""
    await hass.config_entries.async_reload(entry.entry_id)


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
