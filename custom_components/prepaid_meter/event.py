"""An event entity per linked meter: top-ups credited, low balance, supply changes, attention.

The same events are fired on the bus (``prepaid_meter_<kind>``); the entity lets automations
and the logbook use them without typing event names.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import PrepaidConfigEntry
from .account_entity import AccountEntity, add_account_entities
from .automation_events import EVENT_KINDS
from .ledger_sync import account_event_signal

PARALLEL_UPDATES = 0

ACCOUNT_EVENTS = EventEntityDescription(
    key="account_events", translation_key="account_events", event_types=list(EVENT_KINDS)
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrepaidConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the account event entity to each linked meter's device."""
    add_account_entities(
        hass,
        entry,
        async_add_entities,
        lambda sync, subentry_id, meter_id: [
            AccountEvents(sync, subentry_id, meter_id, ACCOUNT_EVENTS)
        ],
    )


class AccountEvents(AccountEntity, EventEntity):
    """Shows each event of the meter's account as it happens."""

    async def async_added_to_hass(self) -> None:
        """Listen for the site's account events."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                account_event_signal(self.coordinator.config_entry.entry_id),
                self._on_event,
            )
        )

    @callback
    def _on_event(self, account_id: int | None, kind: str, data: dict[str, Any]) -> None:
        account = self.account
        if account is None or account.data.id != account_id:
            return
        attributes = {k: v for k, v in data.items() if k != "config_entry_id"}
        self._trigger_event(kind, attributes)
        self.async_write_ha_state()
