"""Entities of a linked meter's prepaid account, shown on the meter's device.

They read ``LedgerSync``'s data, which the ledger's event stream keeps current, so a payment
shows within milliseconds. Money arrives in integer minor units and is shown in major units
as an exact ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity
from prepaid_meter_contract.resources import MeterStatus

from .const import DOMAIN
from .entity import add_entities_per_meter
from .ledger_sync import AccountState, LedgerSync
from .money import minor_to_major

if TYPE_CHECKING:
    from . import PrepaidConfigEntry


def add_account_entities(
    hass: HomeAssistant,
    entry: PrepaidConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[LedgerSync, str, int], Sequence[Entity]],
) -> None:
    """Add one platform's account entities to each linked meter's device (later ones too)."""
    runtime = entry.runtime_data

    def build_for(subentry_id: str) -> Sequence[Entity]:
        meter_id = runtime.ledger_meters.get(subentry_id)
        if meter_id is None or subentry_id not in runtime.meters:
            return []
        return build(runtime.sync, subentry_id, meter_id)

    add_entities_per_meter(hass, entry, async_add_entities, build_for)


class AccountEntity(CoordinatorEntity[LedgerSync]):
    """An entity about the account (and ledger meter) a meter device is linked to."""

    _attr_has_entity_name = True

    def __init__(
        self, sync: LedgerSync, subentry_id: str, meter_id: int, description: EntityDescription
    ) -> None:
        """Attach to the meter's device; unique per subentry and key."""
        super().__init__(sync)
        self.entity_description = description
        self.meter_id = meter_id
        self._attr_unique_id = f"{subentry_id}_{description.key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, subentry_id)})
        self._seen: tuple[object, ...] = ()

    @callback
    def _handle_coordinator_update(self) -> None:
        """Write state only when this entity's account or meter changed.

        The site's data changes with every event of every account; state objects are replaced
        only when their content changes, so identity tells which entities have news.
        """
        seen = (self.account, self.meter_status, self.coordinator.last_update_success)
        if len(seen) == len(self._seen) and all(
            a is b for a, b in zip(seen, self._seen, strict=True)
        ):
            return
        self._seen = seen
        super()._handle_coordinator_update()

    @property
    def account(self) -> AccountState | None:
        """The account as last pushed or read."""
        return self.coordinator.account_of_meter(self.meter_id)

    @property
    def meter_status(self) -> MeterStatus | None:
        """Cost, price and days left of the ledger meter."""
        data = self.coordinator.data
        return None if data is None else data.meter_status.get(self.meter_id)

    @property
    def available(self) -> bool:
        """Unavailable while the ledger cannot be read or the meter is unknown to it."""
        return super().available and self.account is not None

    @property
    def currency(self) -> str | None:
        """The account's ISO 4217 currency."""
        account = self.account
        return None if account is None else account.data.currency

    def with_as_of(self, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
        """Add ``as_of``: when the ledger last told us the state shown (stale in an outage)."""
        account = self.account
        as_of = None if account is None or account.as_of is None else account.as_of.isoformat()
        return {**(attributes or {}), "as_of": as_of}

    def money(self, amount_minor: int) -> Decimal | None:
        """Return an amount of the account's minor units in major units (``None`` if unknown)."""
        account = self.account
        if account is None:
            return None
        return minor_to_major(amount_minor, account.data.currency_exponent)
