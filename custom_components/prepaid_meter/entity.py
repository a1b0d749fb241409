"""Base entity: one device per meter, named by the user, tied to the meter's subentry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import MeterCoordinator
from .site_meters import meter_added_signal

if TYPE_CHECKING:
    from . import PrepaidConfigEntry


def add_entities_per_meter(
    hass: HomeAssistant,
    entry: PrepaidConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[str], Sequence[Entity]],
) -> None:
    """Add one platform's entities for each meter now, and for each meter added later.

    ``build`` gets the meter's subentry id; the entities are attached to that subentry, so
    Home Assistant removes them with it.
    """

    @callback
    def add(subentry_id: str) -> None:
        if entities := build(subentry_id):
            async_add_entities(entities, config_subentry_id=subentry_id)

    for subentry_id in list(entry.runtime_data.started):
        add(subentry_id)
    entry.async_on_unload(async_dispatcher_connect(hass, meter_added_signal(entry.entry_id), add))


def add_meter_entities(
    hass: HomeAssistant,
    entry: PrepaidConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[MeterCoordinator], Sequence[Entity]],
) -> None:
    """Add each meter's entities of one platform (meters added later included)."""

    def build_for(subentry_id: str) -> Sequence[Entity]:
        coordinator = entry.runtime_data.meters.get(subentry_id)
        return [] if coordinator is None else build(coordinator)

    add_entities_per_meter(hass, entry, async_add_entities, build_for)


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
