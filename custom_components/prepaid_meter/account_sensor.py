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
from prepaid_meter_contract.resources import Account

from .account_entity import AccountEntity

_UNIT_LABEL = {"kWh": "kWh", "m3": UnitOfVolume.CUBIC_METERS}


@dataclass(frozen=True, kw_only=True)
class AccountSensorDescription(SensorEntityDescription):
    """``value`` reads the entity's state from the account entity itself."""

    value: Callable[[AccountEntity], Any]
    money: bool = False


def _account_money(amount: Callable[[Account], int]) -> Callable[[AccountEntity], Decimal | None]:
    def read(entity: AccountEntity) -> Decimal | None:
        account = entity.account
        return None if account is None else entity.money(amount(account.data))

    return read


def _status_money(entity: AccountEntity) -> Decimal | None:
    status = entity.meter_status
    return None if status is None else entity.money(status.cost_total_minor)


def _price(entity: AccountEntity) -> Decimal | None:
    status = entity.meter_status
    return None if status is None else status.price.per_unit


def _days_left(entity: AccountEntity) -> Decimal | None:
    status = entity.meter_status
    return None if status is None else status.days_left


def _last_top_up(entity: AccountEntity) -> Decimal | None:
    account = entity.account
    if account is None or account.last_topup is None:
        return None
    return entity.money(account.last_topup.amount_minor)


def _next_supply_change(entity: AccountEntity) -> datetime | None:
    account = entity.account
    return None if account is None else account.data.supply.changes_at


ACCOUNT_SENSORS: tuple[AccountSensorDescription, ...] = (
    AccountSensorDescription(
        key="balance",
        translation_key="balance",
        device_class=SensorDeviceClass.MONETARY,
        state_class=SensorStateClass.TOTAL,
        suggested_display_precision=2,
        value=_account_money(lambda account: account.balance_minor),
        money=True,
    ),
    AccountSensorDescription(
        key="emergency_credit_remaining",
        translation_key="emergency_credit_remaining",
        device_class=SensorDeviceClass.MONETARY,
        state_class=SensorStateClass.TOTAL,
        suggested_display_precision=2,
        value=_account_money(lambda account: account.emergency_credit_remaining_minor),
        money=True,
    ),
    AccountSensorDescription(
        key="debt",
        translation_key="debt",
        device_class=SensorDeviceClass.MONETARY,
        state_class=SensorStateClass.TOTAL,
        suggested_display_precision=2,
        value=_account_money(lambda account: account.debt_minor),
        money=True,
    ),
    AccountSensorDescription(
        key="total_cost",
        translation_key="total_cost",
        device_class=SensorDeviceClass.MONETARY,
        state_class=SensorStateClass.TOTAL,
        suggested_display_precision=2,
        value=_status_money,
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
            status = self.meter_status
            if self.currency is None or status is None:
                return None
            return f"{self.currency}/{_UNIT_LABEL.get(status.unit, status.unit)}"
        return self.entity_description.native_unit_of_measurement

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Details of the value, and ``as_of``: when the ledger last confirmed it."""
        return self.with_as_of(self._details())

    def _details(self) -> dict[str, Any] | None:
        """Band of the price; status and time of the last top-up; history behind days left."""
        key = self.entity_description.key
        status = self.meter_status
        if key == "price" and status is not None:
            return {"band": status.price.band, "tariff_kind": status.price.kind}
        if key == "last_top_up" and (account := self.account) and account.last_topup:
            order = account.last_topup
            return {
                "status": str(order.status),
                "order_id": order.order_id,
                "time": None if order.at is None else order.at.isoformat(),
            }
        if key == "days_left":
            if status is None:
                return {"days_averaged": None, "confidence": None}
            confidence = status.days_left_confidence
            return {
                "days_averaged": status.forecast_days,
                "confidence": None if confidence is None else str(confidence),
            }
        return None
