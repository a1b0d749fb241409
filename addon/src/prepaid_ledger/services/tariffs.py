"""Tariffs with versions: a price change takes effect at a time and never re-prices the past."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.domain.tariffs import Tariff as TariffModel
from prepaid_ledger.domain.tariffs import parse_tariff, tariff_to_json
from prepaid_ledger.errors import InputError, NotFoundError
from prepaid_ledger.services import audit
from prepaid_ledger.services.validation import in_id_range, parse_time
from prepaid_ledger.store.models import Tariff, TariffVersion, utcnow

BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
_IGNORED = ("effective_from", "id")


def _definition(body: Mapping[str, object]) -> tuple[TariffModel, dict[str, Any]]:
    parsed = parse_tariff(body, ignore=_IGNORED)
    return parsed, dict(tariff_to_json(parsed))


async def _versions(session: AsyncSession, tariff_id: int) -> list[TariffVersion]:
    return list(
        await session.scalars(
            select(TariffVersion)
            .where(TariffVersion.tariff_id == tariff_id)
            .order_by(TariffVersion.effective_from)
        )
    )


def _json(tariff: Tariff, versions: list[TariffVersion], now: datetime) -> dict[str, Any]:
    current = versions[0]
    for version in versions:
        if version.effective_from <= now:
            current = version
    return {
        **current.definition,
        "id": tariff.id,
        "created_at": tariff.created_at.isoformat(),
        "versions": [
            {"effective_from": v.effective_from.isoformat(), **v.definition} for v in versions
        ],
    }


async def create_tariff(
    session: AsyncSession, body: Mapping[str, object], actor: str
) -> dict[str, Any]:
    """Create a tariff; its first version applies to all consumption until a later version."""
    parsed, definition = _definition(body)
    tariff = Tariff(
        name=parsed.name, currency=parsed.currency, unit=parsed.unit, kind=str(definition["kind"])
    )
    session.add(tariff)
    await session.flush()
    version = TariffVersion(tariff_id=tariff.id, effective_from=BEGINNING, definition=definition)
    session.add(version)
    await session.flush()
    result = _json(tariff, [version], utcnow())
    audit.record(
        session,
        actor=actor,
        action="tariff.create",
        target=f"tariff:{tariff.id}",
        before=None,
        after=result,
    )
    return result


async def add_version(
    session: AsyncSession, tariff_id: int, body: Mapping[str, object], actor: str
) -> dict[str, Any]:
    """Add a price version effective from a future-or-later time than every existing version."""
    tariff = (
        await session.get(Tariff, tariff_id, with_for_update=True)
        if in_id_range(tariff_id)
        else None
    )
    if tariff is None:
        raise NotFoundError(f"tariff {tariff_id}")
    effective_from = parse_time(body.get("effective_from"), "effective_from")
    parsed, definition = _definition(body)
    if parsed.currency != tariff.currency or parsed.unit != tariff.unit:
        raise InputError("invalid_tariff", "a new version must keep the currency and unit")
    versions = await _versions(session, tariff_id)
    before = _json(tariff, versions, utcnow())
    if effective_from <= versions[-1].effective_from:
        raise InputError("invalid_field", "effective_from must be later than the newest version's")
    version = TariffVersion(
        tariff_id=tariff_id, effective_from=effective_from, definition=definition
    )
    session.add(version)
    tariff.name = parsed.name
    tariff.kind = str(definition["kind"])
    await session.flush()
    result = _json(tariff, [*versions, version], utcnow())
    audit.record(
        session,
        actor=actor,
        action="tariff.version",
        target=f"tariff:{tariff.id}",
        before=before,
        after=result,
    )
    return result


async def get_tariff(session: AsyncSession, tariff_id: int) -> dict[str, Any]:
    """Return a tariff with its versions."""
    tariff = await session.get(Tariff, tariff_id) if in_id_range(tariff_id) else None
    if tariff is None:
        raise NotFoundError(f"tariff {tariff_id}")
    return _json(tariff, await _versions(session, tariff_id), utcnow())


async def list_tariffs(session: AsyncSession) -> list[dict[str, Any]]:
    """Every tariff."""
    tariffs = list(await session.scalars(select(Tariff).order_by(Tariff.id)))
    now = utcnow()
    return [_json(t, await _versions(session, t.id), now) for t in tariffs]


async def versions_for_pricing(
    session: AsyncSession, tariff_id: int
) -> list[tuple[datetime, TariffModel]]:
    """(effective_from, parsed tariff) pairs, oldest first, for the charging engine."""
    return [
        (v.effective_from, parse_tariff(v.definition, ignore=_IGNORED))
        for v in await _versions(session, tariff_id)
    ]
