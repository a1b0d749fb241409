"""Binary sensors: each meter's connectivity; supply allowed and low balance of its account."""

from __future__ import annotations

from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import PrepaidConfigEntry
from .account_entity import AccountEntity, add_account_entities
from .entity import MeterEntity, add_meter_entities

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

    def _supply(self) -> dict[str, Any]:
        account = self.account
        supply = None if account is None else account.data.get("supply")
        return supply if isinstance(supply, dict) else {}

    @property
    def is_on(self) -> bool | None:
        """On while the ledger allows supply."""
        allowed = self._supply().get("allowed")
        return None if allowed is None else bool(allowed)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Why (``credit``, ``friendly_hours``, ``protected``, ...) and until when."""
        supply = self._supply()
        return {"reason": supply.get("reason"), "changes_at": supply.get("changes_at")}


class LowBalance(AccountEntity, BinarySensorEntity):
    """On once the balance has fallen to a low-balance level set on the account."""

    @property
    def is_on(self) -> bool | None:
        """On at level 1 or deeper."""
        account = self.account
        return None if account is None else int(account.data.get("low_balance_level", 0)) > 0

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The level crossed (0 none, 1 first, 2 second) and its threshold."""
        account = self.account
        if account is None:
            return {}
        level = int(account.data.get("low_balance_level", 0))
        thresholds = list(account.data.get("low_balance_minor") or [])
        threshold = self.money(thresholds[level - 1]) if 0 < level <= len(thresholds) else None
        return {"level": level, "threshold": None if threshold is None else str(threshold)}
