"""Meters: creation, moving to another account (tenant change), register replacement."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from prepaid_meter_contract.meter_ratings import (
    MAX_POWER_LIMIT,
    default_max_power,
    default_register_modulus,
)
from prepaid_meter_contract.reading_guard import MeterLimits
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain.money import format_decimal, parse_non_negative_decimal
from prepaid_ledger.errors import ConflictError, InputError, NotFoundError
from prepaid_ledger.services import audit
from prepaid_ledger.services.accounts import get_account
from prepaid_ledger.services.lookup import load_by_id
from prepaid_ledger.services.validation import (
    in_id_range,
    optional_observed_time,
    optional_str,
    require_int,
    require_str,
)
from prepaid_ledger.store.models import Meter, MeterAssignment, Reading, Tariff, utcnow

UNITS = ("kWh", "m3")


def meter_json(meter: Meter) -> dict[str, Any]:
    """Return the API shape of a meter."""
    return {
        "id": meter.id,
        "name": meter.name,
        "unit": meter.unit,
        "account_id": meter.account_id,
        "tariff_id": meter.tariff_id,
        "last_value": _optional_text(meter.last_value),
        "last_at": meter.last_at.isoformat() if meter.last_at else None,
        "created_at": meter.created_at.isoformat(),
        "model": meter.model,
        "max_power": _optional_text(meter.max_power),
        "register_modulus": _optional_text(meter.register_modulus),
        "limits": _limits_json(limits_of(meter)),
    }


def _optional_text(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def _limits_json(limits: MeterLimits) -> dict[str, Any]:
    return {
        "max_power": format_decimal(limits.max_power),
        "register_modulus": _optional_text(limits.register_modulus),
    }


def limits_of(meter: Meter) -> MeterLimits:
    """Return the guard's limits for a meter: its own settings, else its model's defaults."""
    max_power = (
        meter.max_power
        if meter.max_power is not None
        else default_max_power(meter.model, meter.unit)
    )
    modulus = (
        meter.register_modulus
        if meter.register_modulus is not None
        else default_register_modulus(meter.model)
    )
    return MeterLimits(max_power, modulus)


LIMIT_FIELDS = ("model", "max_power", "register_modulus")


def _apply_limits(meter: Meter, body: Mapping[str, object]) -> None:
    """Set the guard's settings present in the body (null clears one back to its default)."""
    if "model" in body:
        meter.model = optional_str(body, "model", max_length=64)
    if "max_power" in body:
        meter.max_power = _optional_positive(body, "max_power", MAX_POWER_LIMIT)
    if "register_modulus" in body:
        meter.register_modulus = _optional_positive(body, "register_modulus", Decimal(10**15))


def _optional_positive(body: Mapping[str, object], field: str, limit: Decimal) -> Decimal | None:
    if body.get(field) is None:
        return None
    number = parse_non_negative_decimal(body.get(field), field)
    if not 0 < number <= limit:
        raise InputError("out_of_range", f"{field} must be above 0 and at most {limit}")
    return number


async def _check_tariff(session: AsyncSession, tariff_id: int, unit: str, currency: str) -> None:
    tariff = await session.get(Tariff, tariff_id) if in_id_range(tariff_id) else None
    if tariff is None:
        raise InputError("unknown_tariff", f"tariff {tariff_id} does not exist")
    if tariff.unit != unit:
        raise InputError("unit_mismatch", f"tariff {tariff_id} prices {tariff.unit}, not {unit}")
    if tariff.currency != currency:
        raise InputError(
            "currency_mismatch",
            f"tariff {tariff_id} is in {tariff.currency}, account in {currency}",
        )


async def create_meter(
    session: AsyncSession, body: Mapping[str, object], actor: str
) -> dict[str, Any]:
    """Create a meter on an account with a tariff."""
    name = require_str(body, "name")
    unit = body.get("unit")
    if unit not in UNITS:
        raise InputError("invalid_field", "unit must be 'kWh' or 'm3'")
    account_id = require_int(body, "account_id", minimum=1)
    tariff_id = require_int(body, "tariff_id", minimum=1)
    try:
        account = await get_account(session, account_id)
    except NotFoundError as err:
        raise InputError("unknown_account", f"account {account_id} does not exist") from err
    if account.status != "open":
        raise ConflictError("account_closed", f"account {account_id} is closed")
    await _check_tariff(session, tariff_id, str(unit), account.currency)
    meter = Meter(
        name=name,
        unit=str(unit),
        tariff_id=tariff_id,
        account_id=account_id,
        register_offset=Decimal(0),
    )
    _apply_limits(meter, body)
    session.add(meter)
    await session.flush()
    session.add(MeterAssignment(meter_id=meter.id, account_id=account_id, from_at=meter.created_at))
    result = meter_json(meter)
    audit.record(
        session,
        actor=actor,
        action="meter.create",
        target=f"meter:{meter.id}",
        before=None,
        after=result,
    )
    return result


async def get_meter(session: AsyncSession, meter_id: int, *, lock: bool = False) -> Meter:
    """Load a meter or raise NotFoundError."""
    return await load_by_id(session, Meter, meter_id, "meter", lock=lock)


async def list_meters(session: AsyncSession, account_id: int | None) -> list[dict[str, Any]]:
    """Meters, optionally of one account."""
    query = select(Meter).order_by(Meter.id)
    if account_id is not None:
        query = query.where(Meter.account_id == account_id)
    return [meter_json(m) for m in await session.scalars(query)]


async def update_limits(
    session: AsyncSession, meter_id: int, body: Mapping[str, object], actor: str
) -> dict[str, Any]:
    """Change the reading guard's settings of a meter (model, max_power, register_modulus)."""
    unknown = sorted(set(body) - set(LIMIT_FIELDS))
    if unknown or not body:
        raise InputError(
            "invalid_field", f"only {', '.join(LIMIT_FIELDS)} can be changed; got {unknown}"
        )
    meter = await get_meter(session, meter_id, lock=True)
    before = meter_json(meter)
    _apply_limits(meter, body)
    await session.flush()
    result = meter_json(meter)
    audit.record(
        session,
        actor=actor,
        action="meter.limits",
        target=f"meter:{meter.id}",
        before=before,
        after=result,
    )
    return result


async def assign_meter(
    session: AsyncSession, meter_id: int, body: Mapping[str, object], actor: str
) -> dict[str, Any]:
    """Move a meter to another account from a time on (readings after it charge the new one)."""
    meter = await get_meter(session, meter_id, lock=True)
    before = meter_json(meter)
    account_id = require_int(body, "account_id", minimum=1)
    account = await get_account(session, account_id)
    if account.status != "open":
        raise ConflictError("account_closed", f"account {account_id} is closed")
    tariff_id = require_int(body, "tariff_id", minimum=1, default=meter.tariff_id)
    await _check_tariff(session, tariff_id, meter.unit, account.currency)
    at = optional_observed_time(body, "from", utcnow())
    if meter.last_at is not None and at < meter.last_at:
        raise InputError("invalid_field", "from must not be before the meter's last reading")
    current = await session.scalar(
        select(MeterAssignment).where(
            MeterAssignment.meter_id == meter_id, MeterAssignment.to_at.is_(None)
        )
    )
    if current is not None:
        current.to_at = at
    session.add(MeterAssignment(meter_id=meter_id, account_id=account_id, from_at=at))
    meter.account_id = account_id
    meter.tariff_id = tariff_id
    meter.last_standing_day = None
    await session.flush()
    result = meter_json(meter)
    audit.record(
        session,
        actor=actor,
        action="meter.assign",
        target=f"meter:{meter.id}",
        before=before,
        after=result,
    )
    return result


async def replace_register(
    session: AsyncSession, meter_id: int, body: Mapping[str, object], actor: str
) -> dict[str, Any]:
    """Return a meter replacement: the new register's start value becomes the new baseline."""
    meter = await get_meter(session, meter_id, lock=True)
    before = meter_json(meter)
    start_value = parse_non_negative_decimal(body.get("new_start_value"), "new_start_value")
    at = optional_observed_time(body, "at", utcnow())
    if meter.last_at is not None and at < meter.last_at:
        raise InputError("invalid_field", "at must not be before the meter's last reading")
    meter.last_value = start_value
    meter.last_at = at
    session.add(
        Reading(
            meter_id=meter.id,
            account_id=meter.account_id,
            value=meter.last_value,
            at=at,
            status="baseline_replacement",
            charged_minor=0,
        )
    )
    await session.flush()
    result = meter_json(meter)
    audit.record(
        session,
        actor=actor,
        action="meter.replace",
        target=f"meter:{meter.id}",
        before=before,
        after=result,
    )
    return result
