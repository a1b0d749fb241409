"""Measurement sensors of each meter, created for the registers its profile actually has."""

from __future__ import annotations

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
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfFrequency,
    UnitOfPower,
    UnitOfVolume,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import PrepaidConfigEntry
from .account_entity import add_account_entities
from .account_sensor import ACCOUNT_SENSORS, AccountSensor
from .coordinator import MeterCoordinator
from .entity import MeterEntity, add_meter_entities
from .profiles import (
    CURRENT,
    ENERGY_EXPORT,
    ENERGY_TOTAL,
    FREQUENCY,
    POWER,
    POWER_FACTOR,
    VOLTAGE,
    WATER_TOTAL,
)

# Polling happens in the coordinator; entities only read its data.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class MeterSensorDescription(SensorEntityDescription):
    """A measurement sensor; ``scale`` converts the profile's unit to the entity's."""

    scale: Decimal = Decimal(1)


MEASUREMENTS: tuple[MeterSensorDescription, ...] = (
    MeterSensorDescription(
        key=ENERGY_TOTAL,
        translation_key="energy_total",
        device_class=SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
    ),
    MeterSensorDescription(
        key=ENERGY_EXPORT,
        translation_key="energy_export",
        device_class=SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        entity_registry_enabled_default=False,
    ),
    MeterSensorDescription(
        key=WATER_TOTAL,
        translation_key="water_total",
        device_class=SensorDeviceClass.WATER,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfVolume.CUBIC_METERS,
        suggested_display_precision=3,
    ),
    MeterSensorDescription(
        key=POWER,
        translation_key="power",
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.WATT,
        suggested_display_precision=0,
    ),
    MeterSensorDescription(
        key=VOLTAGE,
        translation_key="voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=1,
    ),
    MeterSensorDescription(
        key=CURRENT,
        translation_key="current",
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=2,
    ),
    MeterSensorDescription(
        key=FREQUENCY,
        translation_key="frequency",
        device_class=SensorDeviceClass.FREQUENCY,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfFrequency.HERTZ,
        suggested_display_precision=2,
        entity_registry_enabled_default=False,
    ),
    MeterSensorDescription(
        key=POWER_FACTOR,
        translation_key="power_factor",
        device_class=SensorDeviceClass.POWER_FACTOR,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        scale=Decimal(100),
        suggested_display_precision=0,
        entity_registry_enabled_default=False,
    ),
)

PHASES = ("l1", "l2", "l3")
#: Per-phase values of three-phase meters, off by default (the totals are what most want).
PHASE_MEASUREMENTS: tuple[MeterSensorDescription, ...] = tuple(
    MeterSensorDescription(
        key=f"{quantity}_{phase}",
        translation_key=f"{quantity}_phase",
        translation_placeholders={"phase": phase.upper()},
        device_class=device_class,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=unit,
        suggested_display_precision=precision,
        entity_registry_enabled_default=False,
    )
    for quantity, device_class, unit, precision in (
        (VOLTAGE, SensorDeviceClass.VOLTAGE, UnitOfElectricPotential.VOLT, 1),
        (CURRENT, SensorDeviceClass.CURRENT, UnitOfElectricCurrent.AMPERE, 2),
        (POWER, SensorDeviceClass.POWER, UnitOfPower.WATT, 0),
    )
    for phase in PHASES
)
#: Time-of-use registers of meters that keep them (Acrel: sharp/peak/flat/valley), off by default.
TOU_ENERGY: tuple[MeterSensorDescription, ...] = tuple(
    MeterSensorDescription(
        key=f"energy_{band}",
        translation_key=f"energy_{band}",
        device_class=SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        entity_registry_enabled_default=False,
    )
    for band in ("sharp", "peak", "flat", "valley")
)
ALL_MEASUREMENTS = MEASUREMENTS + PHASE_MEASUREMENTS + TOU_ENERGY

LAST_READING = SensorEntityDescription(
    key="last_reading",
    translation_key="last_reading",
    device_class=SensorDeviceClass.TIMESTAMP,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrepaidConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each meter's sensors: the measurements its profile has, and the last reading."""

    def build(coordinator: MeterCoordinator) -> list[SensorEntity]:
        keys = {register.key for register in coordinator.profile.registers}
        entities: list[SensorEntity] = [
            MeasurementSensor(coordinator, description)
            for description in ALL_MEASUREMENTS
            if description.key in keys
        ]
        entities.append(LastReadingSensor(coordinator, LAST_READING))
        return entities

    add_meter_entities(hass, entry, async_add_entities, build)
    add_account_entities(
        hass,
        entry,
        async_add_entities,
        lambda sync, subentry_id, meter_id: [
            AccountSensor(sync, subentry_id, meter_id, description)
            for description in ACCOUNT_SENSORS
        ],
    )


class MeasurementSensor(MeterEntity, SensorEntity):
    """A value read from the meter's registers."""

    entity_description: MeterSensorDescription

    def __init__(self, coordinator: MeterCoordinator, description: MeterSensorDescription) -> None:
        """Create the sensor for one register key."""
        super().__init__(coordinator, description)

    @property
    def native_value(self) -> Decimal | None:
        """The last value read, in the entity's unit."""
        if self.coordinator.data is None:
            return None
        value = self.coordinator.data.values.get(self.entity_description.key)
        return None if value is None else value * self.entity_description.scale

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """On the meter's total: the register value that is held, not shown, and why.

        The state keeps the last good total, so the Energy dashboard never records a glitch.
        """
        data = self.coordinator.data
        if (
            data is None
            or data.held_total is None
            or self.entity_description.key != self.coordinator.profile.total_key
        ):
            return None
        held = data.held_total
        return {
            "held_value": str(held.value * self.entity_description.scale),
            "held_kind": held.kind,
            "held_since": held.since.isoformat(),
            "held_reads": held.reads,
        }


class LastReadingSensor(MeterEntity, SensorEntity):
    """When the meter last answered; stays available while the meter is down."""

    @property
    def available(self) -> bool:
        """Known once the meter has answered at least once."""
        return self.coordinator.data is not None

    @property
    def native_value(self) -> datetime | None:
        """Time of the last successful poll."""
        return None if self.coordinator.data is None else self.coordinator.data.read_at
