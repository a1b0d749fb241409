"""Connectivity of each meter: whether its last poll was answered."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import PrepaidConfigEntry
from .entity import MeterEntity, add_meter_entities

PARALLEL_UPDATES = 0

CONNECTIVITY = BinarySensorEntityDescription(
    key="connectivity",
    translation_key="connectivity",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrepaidConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add one connectivity sensor per meter."""
    add_meter_entities(
        entry,
        async_add_entities,
        lambda coordinator: [MeterConnectivity(coordinator, CONNECTIVITY)],
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
