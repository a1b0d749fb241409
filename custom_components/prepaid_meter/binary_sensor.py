"""Binary sensors: the ledger's and each meter's connectivity; supply and low balance."""

from __future__ import annotations

from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity
from prepaid_meter_contract.resources import Supply

from . import PrepaidConfigEntry
from .account_entity import AccountEntity, add_account_entities
from .const import DOMAIN
from .entity import MeterEntity, add_meter_entities
from .ledger_sync import LedgerSync

PARALLEL_UPDATES = 0

CONNECTIVITY = BinarySensorEntityDescription(
    key="connectivity",
    translation_key="connectivity",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)

SUPPLY_ALLOWED = BinarySensorEntityDescription(
    key="supply_allowed",
    translation_key="supply_allowed",
    device_class=BinarySensorDeviceClass.POWER,
)
LOW_BALANCE = BinarySensorEntityDescription(
    key="low_balance",
    translation_key="low_balance",
    device_class=BinarySensorDeviceClass.PROBLEM,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrepaidConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add one connectivity sensor per meter."""
    add_meter_entities(
        hass,
        entry,
        async_add_entities,
        lambda coordinator: [MeterConnectivity(coordinator, CONNECTIVITY)],
    )
    async_add_entities([LedgerConnection(entry)])
    add_account_entities(
        hass,
        entry,
        async_add_entities,
        lambda sync, subentry_id, meter_id: [
            SupplyAllowed(sync, subentry_id, meter_id, SUPPLY_ALLOWED),
            LowBalance(sync, subentry_id, meter_id, LOW_BALANCE),
        ],
    )


class MeterConnectivity(MeterEntity, BinarySensorEntity):
    """On while the meter answers; itself always available, so "off" is visible."""

    @property
    def available(self) -> bool:
        """Always report, also (especially) when the meter is silent."""
        return True

    @property
    def is_on(self) -> bool:
        """Whether the last poll succeeded."""
        return self.coordinator.last_update_success


class SupplyAllowed(AccountEntity, BinarySensorEntity):
    """The ledger's supply decision for the account, with its reason and next change."""

    def _supply(self) -> Supply | None:
        account = self.account
        return None if account is None else account.data.supply

    @property
    def is_on(self) -> bool | None:
        """On while the ledger allows supply."""
        supply = self._supply()
        return None if supply is None else supply.allowed

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Why (``credit``, ``friendly_hours``, ``protected``, ...) and until when."""
        supply = self._supply()
        if supply is None:
            return self.with_as_of({"reason": None, "changes_at": None})
        changes_at = None if supply.changes_at is None else supply.changes_at.isoformat()
        return self.with_as_of({"reason": str(supply.reason), "changes_at": changes_at})


class LowBalance(AccountEntity, BinarySensorEntity):
    """On once the balance has fallen to a low-balance level set on the account."""

    @property
    def is_on(self) -> bool | None:
        """On at level 1 or deeper."""
        account = self.account
        return None if account is None else account.data.low_balance_level > 0

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The level crossed (0 none, 1 first, 2 second) and its threshold."""
        account = self.account
        if account is None:
            return {}
        level = account.data.low_balance_level
        thresholds = account.data.low_balance_minor
        threshold = self.money(thresholds[level - 1]) if 0 < level <= len(thresholds) else None
        return {"level": level, "threshold": None if threshold is None else str(threshold)}


class LedgerConnection(CoordinatorEntity[LedgerSync], BinarySensorEntity):
    """On while the ledger site answers and its event stream is open: balances are current.

    Always available, so an outage shows as "disconnected" (with since when and how many
    readings wait), not as a dashboard of silently frozen balances.
    """

    _attr_has_entity_name = True
    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "ledger_connection"

    def __init__(self, entry: PrepaidConfigEntry) -> None:
        """Describe the ledger site as a service device of its own."""
        runtime = entry.runtime_data
        super().__init__(runtime.sync)
        self._attr_unique_id = f"{entry.entry_id}_ledger_connection"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.title,
            manufacturer="Prepaid Meter",
            model="Ledger",
            sw_version=runtime.identity.version,
            entry_type=DeviceEntryType.SERVICE,
            configuration_url=runtime.client.url,
        )
        self._shown: tuple[object, ...] = ()

    @callback
    def _handle_coordinator_update(self) -> None:
        """Write only when the connection's state or its details changed (not per event)."""
        shown = (self.is_on, tuple(self.extra_state_attributes.items()))
        if shown != self._shown:
            self._shown = shown
            super()._handle_coordinator_update()

    @property
    def available(self) -> bool:
        """Always report, also (especially) when the ledger is down."""
        return True

    @property
    def is_on(self) -> bool:
        """Connected: the ledger answers and pushes its changes."""
        return self.coordinator.ledger_ok

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """What is wrong, since when, and how many readings wait to be sent."""
        sync = self.coordinator
        since = sync.unreachable_since
        return {
            "event_stream": sync.stream_connected,
            "readings_accepted": sync.posting_ok,
            "last_read_ok": sync.last_update_success,
            "unreachable_since": None if since is None else since.isoformat(),
            "queued_readings": len(sync.queue),
        }
