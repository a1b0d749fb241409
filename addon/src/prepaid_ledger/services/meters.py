"""Meters: creation, moving to another account (tenant change), register replacement."""

from __future__ import annotations

from decimal import Decimal

from prepaid_meter_contract.meter_ratings import (
    default_max_power,
    default_register_modulus,
)
from prepaid_meter_contract.meters import (
    AssignMeter,
    MeterInput,
    MeterLimitsChange,
    ReplaceRegister,
)
from prepaid_meter_contract.reading_guard import MeterLimits
from prepaid_meter_contract.resources import Meter as MeterView
from prepaid_meter_contract.resources import MeterLimits as WireLimits
from prepaid_meter_contract.resources import Meters
from prepaid_meter_contract.vocabulary import AccountStatus
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.errors import ConflictError, InputError, NotFoundError
from prepaid_ledger.services import audit
from prepaid_ledger.services.accounts import get_account
from prepaid_ledger.services.lookup import load_by_id
from prepaid_ledger.services.validation import (
    in_id_range,
)
from prepaid_ledger.store.models import Account, Meter, MeterAssignment, Reading, Tariff, utcnow


def meter_view(meter: Meter) -> MeterView:
    """Return a meter as the API shows it, with the limits its guard applies."""
    limits = limits_of(meter)
    return MeterView(
        id=meter.id,
        name=meter.name,
        unit=meter.unit,
        account_id=meter.account_id,
        tariff_id=meter.tariff_id,
        last_value=meter.last_value,
        last_at=meter.last_at,
        created_at=meter.created_at,
        model=meter.model,
        max_power=meter.max_power,
        register_modulus=meter.register_modulus,
        limits=WireLimits(max_power=limits.max_power, register_modulus=limits.register_modulus),
    )


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


def _apply_limits(meter: Meter, given: MeterInput | MeterLimitsChange) -> None:
    """Set the guard's settings the request gave (null sets one back to its model's default)."""
    if "model" in given.model_fields_set:
        meter.model = given.model
    if "max_power" in given.model_fields_set:
        meter.max_power = given.max_power
    if "register_modulus" in given.model_fields_set:
        meter.register_modulus = given.register_modulus


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


async def create_meter(session: AsyncSession, request: MeterInput, actor: str) -> MeterView:
    """Create a meter on an account with a tariff."""
    account_id, tariff_id, unit = request.account_id, request.tariff_id, request.unit
    try:
        account = await get_account(session, account_id)
    except NotFoundError as err:
        raise InputError("unknown_account", f"account {account_id} does not exist") from err
    if account.status != AccountStatus.OPEN:
        raise ConflictError("account_closed", f"account {account_id} is closed")
    await _check_tariff(session, tariff_id, unit, account.currency)
    meter = Meter(
        name=request.name,
        unit=unit,
        tariff_id=tariff_id,
        account_id=account_id,
        register_offset=Decimal(0),
    )
    _apply_limits(meter, request)
    session.add(meter)
    await session.flush()
    session.add(MeterAssignment(meter_id=meter.id, account_id=account_id, from_at=meter.created_at))
    result = meter_view(meter)
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


async def list_meters(
    session: AsyncSession, account_id: int | None, site_id: int | None = None
) -> Meters:
    """Meters, optionally of one account, of one site's accounts."""
    query = select(Meter).order_by(Meter.id)
    if account_id is not None:
        query = query.where(Meter.account_id == account_id)
    if site_id is not None:
        query = query.join(Account, Account.id == Meter.account_id).where(
            Account.site_id == site_id
        )
    return Meters(meters=[meter_view(m) for m in await session.scalars(query)])


async def update_limits(
    session: AsyncSession, meter_id: int, change: MeterLimitsChange, actor: str
) -> MeterView:
    """Change the reading guard's settings of a meter (model, max_power, register_modulus)."""
    meter = await get_meter(session, meter_id, lock=True)
    before = meter_view(meter)
    _apply_limits(meter, change)
    await session.flush()
    result = meter_view(meter)
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
    session: AsyncSession, meter_id: int, move: AssignMeter, actor: str
) -> MeterView:
    """Move a meter to another account from a time on (readings after it charge the new one)."""
    meter = await get_meter(session, meter_id, lock=True)
    before = meter_view(meter)
    account_id = move.account_id
    account = await get_account(session, account_id)
    if account.status != AccountStatus.OPEN:
        raise ConflictError("account_closed", f"account {account_id} is closed")
    tariff_id = move.tariff_id or meter.tariff_id
    await _check_tariff(session, tariff_id, meter.unit, account.currency)
    at = move.from_ or utcnow()
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
    result = meter_view(meter)
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
    session: AsyncSession, meter_id: int, replacement: ReplaceRegister, actor: str
) -> MeterView:
    """Return a meter replacement: the new register's start value becomes the new baseline."""
    meter = await get_meter(session, meter_id, lock=True)
    before = meter_view(meter)
    start_value = replacement.new_start_value
    at = replacement.at or utcnow()
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
    result = meter_view(meter)
    audit.record(
        session,
        actor=actor,
        action="meter.replace",
        target=f"meter:{meter.id}",
        before=before,
        after=result,
    )
    return result
