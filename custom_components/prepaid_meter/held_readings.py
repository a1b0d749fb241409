"""Readings the ledger's guard holds, shown as repair issues a person can fix.

The ledger charges nothing for a reading no meter can physically show (a glitch, a surge
beyond the meter's maximum power, a reset or a swap) and holds it for a decision. The held
readings of one meter are one fixable repair issue (a burst of glitches is one thing to
decide, listed with its values); its fix flow (``repairs.py``) decides on the latest through
the ledger, which audits it, and rejects the earlier ones of the burst with the same reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final, Self

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from prepaid_meter_contract.events import ReadingHeldAlert
from prepaid_meter_contract.readings import HeldReading
from prepaid_meter_contract.vocabulary import RESOLUTIONS, StepKind
from prepaid_meter_contract.wire import format_decimal

from .const import DOMAIN

ISSUE_PREFIX: Final = "reading_held_"
#: How many held values an issue lists before it says "and N more".
LISTED_VALUES: Final = 5


@dataclass(frozen=True, slots=True)
class Held:
    """A reading the ledger's guard holds: which meter, what value, when, and why."""

    id: int
    meter_id: int
    value: Decimal
    at: datetime
    hold: StepKind

    @classmethod
    def from_listed(cls, reading: HeldReading) -> Self | None:
        """Read it from ``GET /readings/held`` (a decided reading has no hold: ``None``)."""
        if reading.hold is None:
            return None
        return cls(reading.id, reading.meter_id, reading.value, reading.at, reading.hold)

    @classmethod
    def from_alert(cls, alert: ReadingHeldAlert) -> Self:
        """Read it from the ledger's ``reading_held`` alert."""
        return cls(alert.reading_id, alert.meter_id, alert.value, alert.at, alert.hold)


def followed(readings: Iterable[HeldReading], meter_ids: set[int]) -> dict[int, Held]:
    """Return the held readings of the followed meters, by reading id."""
    found = (Held.from_listed(r) for r in readings if r.meter_id in meter_ids)
    return {held.id: held for held in found if held is not None}


def issue_id(entry_id: str, meter_id: int) -> str:
    """Return the repair issue id of one meter's held readings in one config entry."""
    return f"{ISSUE_PREFIX}{entry_id}_{meter_id}"


def _listed(readings: list[Held]) -> str:
    """Return the held values, oldest first, for a person to read."""
    shown = ", ".join(format_decimal(r.value) for r in readings[:LISTED_VALUES])
    more = len(readings) - LISTED_VALUES
    return shown if more <= 0 else f"{shown} (+{more})"


@callback
def async_sync_issues(
    hass: HomeAssistant,
    entry_id: str,
    held: Mapping[int, Held],
    meter_names: Mapping[int, str],
) -> None:
    """Make the entry's repair issues match the held readings: one per meter, no more."""
    by_meter: dict[int, list[Held]] = {}
    for _, reading in sorted(held.items()):
        if reading.meter_id in meter_names and reading.hold in RESOLUTIONS:
            by_meter.setdefault(reading.meter_id, []).append(reading)
    wanted = {issue_id(entry_id, meter_id): readings for meter_id, readings in by_meter.items()}
    prefix = f"{ISSUE_PREFIX}{entry_id}_"
    registry = ir.async_get(hass)
    for domain, existing in list(registry.issues):
        if domain == DOMAIN and existing.startswith(prefix) and existing not in wanted:
            ir.async_delete_issue(hass, DOMAIN, existing)
    for issue, readings in wanted.items():
        latest = readings[-1]
        hold = str(latest.hold)
        ids = [r.id for r in readings]
        listed = ",".join(map(str, ids))
        current = registry.async_get_issue(DOMAIN, issue)
        if current is not None and current.data is not None and current.data.get("ids") == listed:
            continue
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue,
            is_fixable=True,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=f"reading_held_{hold}",
            translation_placeholders={
                "meter": meter_names[latest.meter_id],
                "value": _listed(readings),
                "at": latest.at.isoformat(),
            },
            data={
                "entry_id": entry_id,
                "reading_id": ids[-1],
                "hold": hold,
                "ids": listed,
            },
        )
