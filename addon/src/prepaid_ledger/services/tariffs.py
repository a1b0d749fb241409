"""Tariffs with versions: a price change takes effect at a time and never re-prices the past."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from prepaid_meter_contract.tariffs import Tariff, TariffInput, TariffVersion
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain.tariffs import Tariff as TariffModel
from prepaid_ledger.domain.tariffs import parse_tariff, tariff_to_json
from prepaid_ledger.errors import InputError, NotFoundError
from prepaid_ledger.services import audit
from prepaid_ledger.services.validation import in_id_range
from prepaid_ledger.store.models import Tariff as TariffRow
from prepaid_ledger.store.models import TariffVersion as VersionRow
from prepaid_ledger.store.models import utcnow

BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
_IGNORED = ("effective_from", "id")


def _definition(body: TariffInput) -> tuple[TariffModel, dict[str, object]]:
    """Apply the tariff rules that need more than one value (order of starts, band limits).

    The body's shape was checked at the edge; the domain reads what was sent, so a field of
    another kind (``segments`` on a flat tariff) is still refused there.
    """
    parsed = parse_tariff(body.definition(), ignore=_IGNORED)
    return parsed, tariff_to_json(parsed)


async def _versions(session: AsyncSession, tariff_id: int) -> list[VersionRow]:
    return list(
        await session.scalars(
            select(VersionRow)
            .where(VersionRow.tariff_id == tariff_id)
            .order_by(VersionRow.effective_from)
        )
    )


def _tariff(tariff: TariffRow, versions: list[VersionRow], now: datetime) -> Tariff:
    """Return the tariff as the API shows it: the version in effect at ``now``, and all."""
    current = versions[0]
    for version in versions:
        if version.effective_from <= now:
            current = version
    return Tariff.model_validate(
        {
            **current.definition,
            "id": tariff.id,
            "created_at": tariff.created_at,
            "versions": [
                TariffVersion.model_validate({**v.definition, "effective_from": v.effective_from})
                for v in versions
            ],
        }
    )


async def create_tariff(session: AsyncSession, body: TariffInput, actor: str) -> Tariff:
    """Create a tariff; its first version applies to all consumption until a later version."""
    parsed, definition = _definition(body)
    tariff = TariffRow(
        name=parsed.name, currency=parsed.currency, unit=parsed.unit, kind=parsed.kind
    )
    session.add(tariff)
    await session.flush()
    version = VersionRow(tariff_id=tariff.id, effective_from=BEGINNING, definition=definition)
    session.add(version)
    await session.flush()
    result = _tariff(tariff, [version], utcnow())
    audit.record(
        session,
        actor=actor,
        action="tariff.create",
        target=f"tariff:{tariff.id}",
        before=None,
        after=result.model_dump(mode="json"),
    )
    return result


async def add_version(
    session: AsyncSession, tariff_id: int, body: TariffInput, actor: str
) -> Tariff:
    """Add a price version effective from a future-or-later time than every existing version."""
    tariff = (
        await session.get(TariffRow, tariff_id, with_for_update=True)
        if in_id_range(tariff_id)
        else None
    )
    if tariff is None:
        raise NotFoundError(f"tariff {tariff_id}")
    effective_from = body.effective_from
    if effective_from is None:
        raise InputError("invalid_field", "effective_from is required", "effective_from")
    parsed, definition = _definition(body)
    if parsed.currency != tariff.currency or parsed.unit != tariff.unit:
        raise InputError("invalid_tariff", "a new version must keep the currency and unit")
    versions = await _versions(session, tariff_id)
    before = _tariff(tariff, versions, utcnow())
    if effective_from <= versions[-1].effective_from:
        raise InputError("invalid_field", "effective_from must be later than the newest version's")
    version = VersionRow(tariff_id=tariff_id, effective_from=effective_from, definition=definition)
    session.add(version)
    tariff.name = parsed.name
    tariff.kind = parsed.kind
    await session.flush()
    result = _tariff(tariff, [*versions, version], utcnow())
    audit.record(
        session,
        actor=actor,
        action="tariff.version",
        target=f"tariff:{tariff.id}",
        before=before.model_dump(mode="json"),
        after=result.model_dump(mode="json"),
    )
    return result


async def get_tariff(session: AsyncSession, tariff_id: int) -> Tariff:
    """Return a tariff with its versions."""
    tariff = await session.get(TariffRow, tariff_id) if in_id_range(tariff_id) else None
    if tariff is None:
        raise NotFoundError(f"tariff {tariff_id}")
    return _tariff(tariff, await _versions(session, tariff_id), utcnow())


async def list_tariffs(session: AsyncSession) -> list[Tariff]:
    """Every tariff."""
    tariffs = list(await session.scalars(select(TariffRow).order_by(TariffRow.id)))
    now = utcnow()
    return [_tariff(t, await _versions(session, t.id), now) for t in tariffs]


type PricedVersions = list[tuple[datetime, TariffModel]]


async def versions_for_pricing(session: AsyncSession, tariff_id: int) -> PricedVersions:
    """(effective_from, parsed tariff) pairs, oldest first, for the charging engine."""
    return (await versions_for_pricing_many(session, {tariff_id}))[tariff_id]


async def versions_for_pricing_many(
    session: AsyncSession, tariff_ids: Collection[int]
) -> dict[int, PricedVersions]:
    """``versions_for_pricing`` of several tariffs in one query (a batch of many meters)."""
    found: dict[int, PricedVersions] = {tariff_id: [] for tariff_id in tariff_ids}
    rows = await session.scalars(
        select(VersionRow)
        .where(VersionRow.tariff_id.in_(found))
        .order_by(VersionRow.tariff_id, VersionRow.effective_from)
    )
    for version in rows:
        found[version.tariff_id].append(
            (version.effective_from, parse_tariff(version.definition, ignore=_IGNORED))
        )
    return found
