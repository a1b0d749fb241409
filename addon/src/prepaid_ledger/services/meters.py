"""Meters: creation, moving to another account (tenant change), register replacement."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

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
from prepaid_meter_contract.vocabulary import HELD_PREFIX, AccountStatus, ReadingStatus
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain.money import format_decimal
from prepaid_ledger.errors import ConflictError, InputError, NotFoundError
from prepaid_ledger.services import audit
from prepaid_ledger.services.accounts import get_account, refresh_account
from prepaid_ledger.services.lookup import load_by_id
from prepaid_ledger.services.sites import site_accounts
from prepaid_ledger.services.validation import (
    in_id_range,
)
from prepaid_ledger.store.models import Meter, MeterAssignment, Reading, Tariff, utcnow


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


class GuardedMeter(Protocol):
    """What the reading guard's limits are worked out from (a stored meter, or a batch's copy)."""

    unit: str
    model: str | None
    max_power: Decimal | None
    register_modulus: Decimal | None


def limits_of(meter: GuardedMeter) -> MeterLimits:
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
        query = query.where(Meter.account_id.in_(site_accounts(site_id)))
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


def _effective_time(meter: Meter, given: datetime | None, field: str) -> datetime:
    """Return when a change to a meter takes effect (GIVEN, else now): not before its last one."""
    at = given or utcnow()
    if meter.last_at is not None and at < meter.last_at:
        raise InputError("invalid_field", f"{field} must not be before the meter's last reading")
    return at


def _new_baseline(
    session: AsyncSession,
    meter: Meter,
    *,
    account_id: int,
    value: Decimal,
    at: datetime,
    status: str,
) -> None:
    """Make VALUE at AT the meter's starting point (the next reading charges from it), on record."""
    meter.last_value, meter.last_at = value, at
    session.add(
        Reading(
            meter_id=meter.id,
            account_id=account_id,
            value=value,
            at=at,
            status=status,
            charged_minor=0,
        )
    )


async def _final_reading(
    session: AsyncSession, meter: Meter, value: Decimal, at: datetime
) -> dict[str, Any]:
    """Charge the account a meter leaves for its consumption up to VALUE at AT (a tenant change).

    The reading goes through the reading guard and the charging of every other reading; a
    value it would hold, or one below the last reading, is refused: nothing is changed.
    """
    # readings imports this module (limits_of): import it when a meter actually moves.
    from prepaid_ledger.services import readings  # noqa: PLC0415

    old = await get_account(session, meter.account_id, lock=True)
    final: dict[str, Any] = {
        "account_id": old.id,
        "status": None,
        "charged_minor": 0,
        "standing_charged_minor": 0,
    }
    last_value, last_at = meter.last_value, meter.last_at
    if last_value is None or last_at is None:
        return final  # the meter never read: nothing to charge before its start
    if value < last_value:
        raise InputError(
            "start_value_below_last",
            f"start_value {format_decimal(value)} is below the meter's last reading "
            f"{format_decimal(last_value)} "
            f"(at {last_at.isoformat()}): a register does not run backwards. If the register "
            f"was replaced, re-base it first (POST /api/v1/meters/{meter.id}/replace), "
            "then move the meter",
            "start_value",
        )
    if at == last_at:
        if value != last_value:
            raise InputError(
                "invalid_field",
                "start_value must be the meter's reading at that time: it read "
                f"{format_decimal(last_value)} at {last_at.isoformat()}",
                "start_value",
            )
        return final
    charger = await readings.Charger.load(session, meter, old)
    row = Reading(
        meter_id=meter.id,
        account_id=old.id,
        value=value,
        at=at,
        status=ReadingStatus.CHARGED,
        charged_minor=0,
    )
    await readings.apply_reading(charger, row)
    if row.status == ReadingStatus.FLAGGED_GAP:
        raise InputError(
            "invalid_field",
            f"from lies more than {readings.MAX_CHARGE_GAP.days} days after the meter's last "
            f"reading ({last_at.isoformat()}): that consumption cannot be charged; re-base the "
            f"meter first (POST /api/v1/meters/{meter.id}/replace)",
            "from",
        )
    if row.status.startswith(HELD_PREFIX):
        _, step, _, _ = charger.outcome.held[-1]
        raise InputError(
            "implausible_start_value",
            f"start_value {format_decimal(value)} means {format_decimal(step.quantity)} "
            f"{meter.unit} since the last reading ({format_decimal(last_value)} at "
            f"{last_at.isoformat()}), more than the meter can use in that "
            f"time (at most {step.allowed.quantize(Decimal('0.001'))}): check the value; if it "
            f"is real, raise the meter's max_power first (PATCH /api/v1/meters/{meter.id})",
            "start_value",
        )
    session.add(row)
    await readings.post_charges(session, charger)
    if old.status == AccountStatus.OPEN:  # a closed one was billed nothing (unbilled)
        await refresh_account(session, old, utcnow())
    return final | {
        "status": str(row.status),
        "charged_minor": row.charged_minor,
        "standing_charged_minor": charger.outcome.standing_minor,
    }


async def assign_meter(
    session: AsyncSession, meter_id: int, move: AssignMeter, actor: str
) -> MeterView:
    """Move a meter to another account from a time on (readings after it charge the new one).

    With ``start_value`` (a move-in), the meter read that value at ``from``: the account it
    leaves is charged up to it, and the new account pays from it on.
    """
    meter = await get_meter(session, meter_id, lock=True)
    before = meter_view(meter)
    account_id = move.account_id
    account = await get_account(session, account_id)
    if account.status != AccountStatus.OPEN:
        raise ConflictError("account_closed", f"account {account_id} is closed")
    tariff_id = move.tariff_id or meter.tariff_id
    await _check_tariff(session, tariff_id, meter.unit, account.currency)
    at = _effective_time(meter, move.from_, "from")
    extra: dict[str, Any] = {}
    if move.start_value is not None:
        final = await _final_reading(session, meter, move.start_value, at)
        _new_baseline(
            session,
            meter,
            account_id=account_id,
            value=move.start_value,
            at=at,
            status=ReadingStatus.BASELINE,
        )
        extra = {
            "from": at.isoformat(),
            "start_value": format_decimal(move.start_value),
            "final_reading": final,
        }
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
        after=(result.model_dump(mode="json") | extra) if extra else result,
    )
    return result


async def replace_register(
    session: AsyncSession, meter_id: int, replacement: ReplaceRegister, actor: str
) -> MeterView:
    """Return a meter replacement: the new register's start value becomes the new baseline."""
    meter = await get_meter(session, meter_id, lock=True)
    before = meter_view(meter)
    at = _effective_time(meter, replacement.at, "at")
    _new_baseline(
        session,
        meter,
        account_id=meter.account_id,
        value=replacement.new_start_value,
        at=at,
        status="baseline_replacement",
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
