"""Sensors of a linked meter's account: balance, credit, debt, cost, price, days left."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import UnitOfTime, UnitOfVolume
from homeassistant.util import dt as dt_util

from .account_entity import AccountEntity

_UNIT_LABEL = {"kWh": "kWh", "m3": UnitOfVolume.CUBIC_METERS}


@dataclass(frozen=True, kw_only=True)
class AccountSensorDescription(SensorEntityDescription):
    """``value`` reads the entity's state from the account entity itself."""

    value: Callable[[AccountEntity], Any]
    money: bool = False


def _account_money(field: str) -> Callable[[AccountEntity], Decimal | None]:
    def read(entity: AccountEntity) -> Decimal | None:
        account = entity.account
        return None if account is None else entity.money(account.data.get(field))

    return read


def _status(entity: AccountEntity, field: str) -> Any:
    status = entity.meter_status
    return None if status is None else status.get(field)


def _price(entity: AccountEntity) -> Decimal | None:
    price = _status(entity, "price")
    return None if not isinstance(price, dict) else Decimal(str(price["per_unit"]))


def _days_left(entity: AccountEntity) -> Decimal | None:
    days = _status(entity, "days_left")
    return None if days is None else Decimal(str(days))


def _last_top_up(entity: AccountEntity) -> Decimal | None:
    account = entity.account
    if account is None or account.last_topup is None:
        return None
    return entity.money(account.last_topup.get("amount_minor"))


def _next_supply_change(entity: AccountEntity) -> datetime | None:
    account = entity.account
    supply = None if account is None else account.data.get("supply")
    changes_at = supply.get("changes_at") if isinstance(supply, dict) else None
    return None if not changes_at else dt_util.parse_datetime(str(changes_at))


ACCOUNT_SENSORS: tuple[AccountSensorDescription, ...] = (
    AccountSensorDescription(
        key="balance",
        translation_key="balance",
        device_class=SensorDeviceClass.MONETARY,
        state_class=SensorStateClass.TOTAL,
        suggested_display_precision=2,
        value=_account_money("balance_minor"),
        money=True,
    ),
    AccountSensorDescription(
        key="emergency_credit_remaining",
        translation_key="emergency_credit_remaining",
        device_class=SensorDeviceClass.MONETARY,
        state_class=SensorStateClass.TOTAL,
        suggested_display_precision=2,
        value=_account_money("emergency_credit_remaining_minor"),
        money=True,
    ),
    AccountSensorDescription(
        key="debt",
        translation_key="debt",
        device_class=SensorDeviceClass.MONETARY,
        state_class=SensorStateClass.TOTAL,
        suggested_display_precision=2,
        value=_account_money("debt_minor"),
        money=True,
    ),
    AccountSensorDescription(
        key="total_cost",
        translation_key="total_cost",
        device_class=SensorDeviceClass.MONETARY,
        state_class=SensorStateClass.TOTAL,
        suggested_display_precision=2,
        value=lambda entity: entity.money(_status(entity, "cost_total_minor")),
        money=True,
    ),
    AccountSensorDescription(
        key="price",
        translation_key="price",
        suggested_display_precision=4,
        value=_price,
    ),
    AccountSensorDescription(
        key="days_left",
        translation_key="days_left",
        device_class=SensorDeviceClass.DURATION,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfTime.DAYS,
        suggested_display_precision=1,
        value=_days_left,
    ),
    AccountSensorDescription(
        key="last_top_up",
        translation_key="last_top_up",
        device_class=SensorDeviceClass.MONETARY,
        suggested_display_precision=2,
        value=_last_top_up,
        money=True,
    ),
    AccountSensorDescription(
        key="next_supply_change",
        translation_key="next_supply_change",
        device_class=SensorDeviceClass.TIMESTAMP,
        value=_next_supply_change,
    ),
)


class AccountSensor(AccountEntity, SensorEntity):
    """One value of the account or its ledger meter."""

    entity_description: AccountSensorDescription

    @property
    def native_value(self) -> Any:
        """The value, exact (money as Decimal in major units)."""
        return self.entity_description.value(self)

    @property
    def native_unit_of_measurement(self) -> str | None:
        """Money in the account's currency; the price per kWh or m³."""
        if self.entity_description.money:
            return self.currency
        if self.entity_description.key == "price":
            unit = _status(self, "unit")
            if self.currency is None or unit is None:
                return None
            return f"{self.currency}/{_UNIT_LABEL.get(str(unit), str(unit))}"
        return self.entity_description.native_unit_of_measurement

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Details of the value, and ``as_of``: when the ledger last confirmed it."""
        return self.with_as_of(self._details())

    def _details(self) -> dict[str, Any] | None:
        """Band of the price; status and time of the last top-up; history behind days left."""
        key = self.entity_description.key
        if key == "price" and isinstance(price := _status(self, "price"), dict):
            return {"band": price.get("band"), "tariff_kind": price.get("kind")}
        if key == "last_top_up" and (account := self.account) and account.last_topup:
            order = account.last_topup
            return {
                "status": order.get("status"),
                "order_id": order.get("id"),
                "time": order.get("updated_at") or order.get("created_at"),
            }
        if key == "days_left":
            return {"days_averaged": _status(self, "forecast_days")}
        return None
