"""Base entity: one device per meter, named by the user, tied to the meter's subentry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import MeterCoordinator

if TYPE_CHECKING:
    from . import PrepaidConfigEntry


def add_meter_entities(
    entry: PrepaidConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[MeterCoordinator], Sequence[Entity]],
) -> None:
    """Add each meter's entities of one platform, attached to the meter's subentry."""
    for subentry_id, coordinator in entry.runtime_data.meters.items():
        if entities := build(coordinator):
            async_add_entities(entities, config_subentry_id=subentry_id)


class MeterEntity(CoordinatorEntity[MeterCoordinator]):
    """An entity of one meter; unique ids are stable across reconfiguration."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: MeterCoordinator, description: EntityDescription) -> None:
        """Describe the entity and the meter's device."""
        super().__init__(coordinator)
        self.entity_description = description
        subentry = coordinator.subentry
        self._attr_unique_id = f"{subentry.subentry_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, subentry.subentry_id)},
            name=subentry.title,
            manufacturer=coordinator.profile.manufacturer or None,
            model=coordinator.profile.model,
            model_id=coordinator.profile.id,
        )
