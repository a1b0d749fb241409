"""A loaded site's meters come and go without reloading the site (dynamic devices).

Adding a meter subentry starts that meter alone: its unit on the line, its poll, its readings
to the ledger, its relay control and its entities. Removing one stops it alone (Home Assistant
removes its device and entities with the subentry). Every other meter, relay and the ledger's
event stream carry on untouched, so no relay is written because a neighbour was added.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from prepaid_meter_contract.client import LedgerClient, LedgerIdentity

from .const import (
    CONF_ENFORCE_WHEN_OFFLINE,
    CONF_LEDGER_METER_ID,
    CONF_STALE_POLLS,
    DEFAULT_STALE_POLLS,
    DOMAIN,
    SUBENTRY_METER,
)
from .coordinator import MeterCoordinator
from .ledger_sync import LedgerSync
from .meter_config import profile_from_config
from .meter_errors import EndpointConflict
from .meter_link import async_attach_meter
from .problems import async_raise_problem
from .supply_control import OverrideStore, SupplyController

if TYPE_CHECKING:
    from . import PrepaidConfigEntry

_LOGGER = logging.getLogger(__name__)


def meter_added_signal(entry_id: str) -> str:
    """Dispatcher signal (subentry_id) telling each platform to add a new meter's entities."""
    return f"{DOMAIN}_{entry_id}_meter_added"


def meter_subentries(entry: PrepaidConfigEntry) -> dict[str, ConfigSubentry]:
    """Return the entry's meter subentries by subentry id."""
    return {
        subentry_id: subentry
        for subentry_id, subentry in entry.subentries.items()
        if subentry.subentry_type == SUBENTRY_METER
    }


def ledger_meter_id(subentry: ConfigSubentry) -> int | None:
    """Return the ledger meter a meter subentry is linked to, if any."""
    raw = subentry.data.get(CONF_LEDGER_METER_ID)
    return None if raw is None else int(raw)


@dataclass(frozen=True, slots=True)
class SupplyOptions:
    """The site's options for relay control, read once from the entry."""

    stale_polls: int
    enforce_when_offline: bool

    @classmethod
    def of(cls, entry: PrepaidConfigEntry) -> SupplyOptions:
        """Read them from the entry's options (defaults when unset)."""
        return cls(
            int(entry.options.get(CONF_STALE_POLLS, DEFAULT_STALE_POLLS)),
            bool(entry.options.get(CONF_ENFORCE_WHEN_OFFLINE, False)),
        )


@dataclass(slots=True)
class PrepaidRuntimeData:
    """What a loaded ledger site keeps while it runs."""

    client: LedgerClient
    identity: LedgerIdentity
    sync: LedgerSync
    overrides: OverrideStore
    #: The entry's data the site was started with: a change needs a restart of the site.
    started_with: dict[str, Any]
    supply_options: SupplyOptions
    meters: dict[str, MeterCoordinator] = field(default_factory=dict)
    #: Ledger meter id of each linked meter subentry.
    ledger_meters: dict[str, int] = field(default_factory=dict)
    #: Relay control of each linked meter that has a relay.
    supply: dict[str, SupplyController] = field(default_factory=dict)
    #: Each meter subentry as it was started (also one that could not start).
    started: dict[str, ConfigSubentry] = field(default_factory=dict)
    #: What to undo when a meter stops (its readings to the ledger).
    meter_unsubs: dict[str, list[CALLBACK_TYPE]] = field(default_factory=dict)
    #: One change of the meter set at a time (five meters added in a row arrive as five).
    change_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@callback
def start_meter(hass: HomeAssistant, entry: PrepaidConfigEntry, subentry: ConfigSubentry) -> None:
    """Hold the meter's unit and build its poll, ledger link and relay control; no I/O yet.

    A line in use with other settings raises a repair issue and leaves the meter stopped.
    """
    runtime = entry.runtime_data
    runtime.started[subentry.subentry_id] = subentry
    coordinator = _attach(hass, entry, subentry)
    if coordinator is None:
        return
    runtime.meters[subentry.subentry_id] = coordinator
    if (meter_id := ledger_meter_id(subentry)) is None:
        return
    runtime.ledger_meters[subentry.subentry_id] = meter_id
    runtime.sync.meter_ids.add(meter_id)
    runtime.meter_unsubs[subentry.subentry_id] = [runtime.sync.follow_meter(coordinator, meter_id)]
    if coordinator.profile.relay is not None:
        options = runtime.supply_options
        runtime.supply[subentry.subentry_id] = SupplyController(
            hass,
            coordinator,
            runtime.sync,
            meter_id,
            stale_polls=options.stale_polls,
            enforce_when_offline=options.enforce_when_offline,
            overrides=runtime.overrides,
        )


def _attach(
    hass: HomeAssistant, entry: PrepaidConfigEntry, subentry: ConfigSubentry
) -> MeterCoordinator | None:
    issue_id = f"endpoint_conflict_{subentry.subentry_id}"
    profile = profile_from_config(subentry.data)
    try:
        link = async_attach_meter(hass, entry, subentry.data, profile)
    except EndpointConflict as err:
        _LOGGER.error("Meter %s not started: %s", subentry.title, err)
        async_raise_problem(
            hass, issue_id, "endpoint_conflict", meter=subentry.title, detail=str(err)
        )
        return None
    ir.async_delete_issue(hass, DOMAIN, issue_id)
    return MeterCoordinator(hass, entry, subentry, link)


async def async_add_meter(
    hass: HomeAssistant, entry: PrepaidConfigEntry, subentry: ConfigSubentry
) -> None:
    """Start a meter added while the site runs: first poll, its account, entities, relay."""
    runtime = entry.runtime_data
    start_meter(hass, entry, subentry)
    subentry_id = subentry.subentry_id
    if (coordinator := runtime.meters.get(subentry_id)) is None:
        return
    await coordinator.async_refresh()
    if (meter_id := runtime.ledger_meters.get(subentry_id)) is not None:
        await runtime.sync.async_read_meters([meter_id])
    async_dispatcher_send(hass, meter_added_signal(entry.entry_id), subentry_id)
    if (controller := runtime.supply.get(subentry_id)) is not None:
        controller.start()
    _LOGGER.info("Meter %s added to the running site", subentry.title)


async def async_remove_meter(
    hass: HomeAssistant, entry: PrepaidConfigEntry, subentry_id: str
) -> None:
    """Stop a meter whose subentry is gone (its device and entities went with it).

    Its unit on the shared line stays held until the site unloads: core ``modbus`` releases
    holds per config entry.
    """
    runtime = entry.runtime_data
    subentry = runtime.started.pop(subentry_id, None)
    if (controller := runtime.supply.pop(subentry_id, None)) is not None:
        controller.stop()
    for unsub in runtime.meter_unsubs.pop(subentry_id, []):
        unsub()
    if (meter_id := runtime.ledger_meters.pop(subentry_id, None)) is not None:
        runtime.sync.forget_meter(meter_id)
    if (coordinator := runtime.meters.pop(subentry_id, None)) is not None:
        await coordinator.async_shutdown()
        ir.async_delete_issue(hass, DOMAIN, coordinator.issue_id)
    ir.async_delete_issue(hass, DOMAIN, f"endpoint_conflict_{subentry_id}")
    if subentry is not None:
        _LOGGER.info("Meter %s removed from the running site", subentry.title)


async def async_apply_entry_update(hass: HomeAssistant, entry: PrepaidConfigEntry) -> None:
    """Follow a change of the entry: the update listener, the one place that reloads.

    New ledger URL or token (reconfigure, reauth, discovery): the site restarts. New options:
    each relay controller takes them at once. Meters added or removed: only those start or
    stop. A meter whose settings changed restarts the site (its line settings may differ).
    """
    runtime = entry.runtime_data
    if dict(entry.data) != runtime.started_with:
        hass.config_entries.async_schedule_reload(entry.entry_id)
        return
    options = SupplyOptions.of(entry)
    if options != runtime.supply_options:
        runtime.supply_options = options
        for controller in runtime.supply.values():
            controller.configure(
                stale_polls=options.stale_polls,
                enforce_when_offline=options.enforce_when_offline,
            )
    async with runtime.change_lock:
        current = meter_subentries(entry)
        if any(
            (old.data, old.title) != (current[subentry_id].data, current[subentry_id].title)
            for subentry_id, old in runtime.started.items()
            if subentry_id in current
        ):
            hass.config_entries.async_schedule_reload(entry.entry_id)
            return
        for subentry_id in [s for s in runtime.started if s not in current]:
            await async_remove_meter(hass, entry, subentry_id)
        for subentry_id, subentry in current.items():
            if subentry_id not in runtime.started:
                await async_add_meter(hass, entry, subentry)
