"""The relay of each meter that has one; shows only states the meter confirmed on read-back."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.components.switch.const import SwitchDeviceClass
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from . import PrepaidConfigEntry
from .const import DOMAIN
from .entity import MeterEntity, add_meter_entities

# One relay write at a time: each write is followed by its read-back on a shared line.
PARALLEL_UPDATES = 1

RELAY = SwitchEntityDescription(
    key="relay", translation_key="relay", device_class=SwitchDeviceClass.SWITCH
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrepaidConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a relay switch for meters whose profile has a relay."""
    add_meter_entities(
        hass,
        entry,
        async_add_entities,
        lambda coordinator: (
            [MeterRelay(coordinator, RELAY)] if coordinator.profile.relay is not None else []
        ),
    )


class MeterRelay(MeterEntity, SwitchEntity):
    """On = relay closed = supply connected."""

    @property
    def available(self) -> bool:
        """Unavailable when the meter or its relay did not answer the last poll.

        A relay that answers without saying its state (an Acrel never commanded remotely) is
        available with an unknown state, so the user can send the first command.
        """
        data = self.coordinator.data
        return super().available and data is not None and data.relay_error is None

    @property
    def is_on(self) -> bool | None:
        """The relay state the meter last reported (None: unknown)."""
        return None if self.coordinator.data is None else self.coordinator.data.relay_closed

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Close the relay (restore supply) and confirm by reading it back."""
        self._check_follows_ledger(closed=True)
        await self.coordinator.async_set_relay(closed=True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Open the relay (cut supply) and confirm by reading it back."""
        self._check_follows_ledger(closed=False)
        await self.coordinator.async_set_relay(closed=False)

    def _check_follows_ledger(self, *, closed: bool) -> None:
        """Refuse a switch against the ledger's decision (that takes an override)."""
        runtime = self.coordinator.config_entry.runtime_data
        controller = runtime.supply.get(self.coordinator.subentry.subentry_id)
        if controller is None:
            return
        override = controller.override
        if override is not None and override.active(dt_util.utcnow()):
            if override.closed == closed:
                return
        else:
            allowed = controller.inputs().supply_allowed
            if allowed is None or allowed == closed:
                return
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="relay_follows_credit",
            translation_placeholders={
                "meter": self.coordinator.subentry.title,
                "wanted": "on" if closed else "off",
            },
        )
