"""Readings the ledger's guard holds, shown as repair issues a person can fix.

The ledger charges nothing for a reading no meter can physically show (a glitch, a surge
beyond the meter's maximum power, a reset or a swap) and holds it for a decision. The held
readings of one meter are one fixable repair issue (a burst of glitches is one thing to
decide, listed with its values); its fix flow (``repairs.py``) decides on the latest through
the ledger, which audits it, and rejects the earlier ones of the burst with the same reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN

ISSUE_PREFIX: Final = "reading_held_"
HOLD_KINDS: Final = ("surge", "reset", "backwards")
#: What a person may decide for each kind of hold (the ledger enforces the same).
ACTIONS: Final[dict[str, tuple[str, ...]]] = {
    "surge": ("reject", "accept"),
    "reset": ("reject", "rebase"),
    "backwards": ("reject", "rebase"),
}


#: How many held values an issue lists before it says "and N more".
LISTED_VALUES: Final = 5


def issue_id(entry_id: str, meter_id: int) -> str:
    """Return the repair issue id of one meter's held readings in one config entry."""
    return f"{ISSUE_PREFIX}{entry_id}_{meter_id}"


def _listed(readings: list[Mapping[str, Any]]) -> str:
    """Return the held values, oldest first, for a person to read."""
    shown = ", ".join(str(r.get("value")) for r in readings[:LISTED_VALUES])
    more = len(readings) - LISTED_VALUES
    return shown if more <= 0 else f"{shown} (+{more})"


def held_from_alert(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Return a held reading as ``GET /readings/held`` lists it, from an ``alert`` event."""
    return {
        "id": payload.get("reading_id"),
        "meter_id": payload.get("meter_id"),
        "value": payload.get("value"),
        "at": payload.get("at"),
        "hold": payload.get("hold"),
    }


@callback
def async_sync_issues(
    hass: HomeAssistant,
    entry_id: str,
    held: Mapping[int, Mapping[str, Any]],
    meter_names: Mapping[int, str],
) -> None:
    """Make the entry's repair issues match the held readings: one per meter, no more."""
    by_meter: dict[int, list[Mapping[str, Any]]] = {}
    for _, reading in sorted(held.items()):
        if reading.get("meter_id") in meter_names and reading.get("hold") in HOLD_KINDS:
            by_meter.setdefault(int(reading["meter_id"]), []).append(reading)
    wanted = {issue_id(entry_id, meter_id): readings for meter_id, readings in by_meter.items()}
    prefix = f"{ISSUE_PREFIX}{entry_id}_"
    registry = ir.async_get(hass)
    for domain, existing in list(registry.issues):
        if domain == DOMAIN and existing.startswith(prefix) and existing not in wanted:
            ir.async_delete_issue(hass, DOMAIN, existing)
    for issue, readings in wanted.items():
        latest = readings[-1]
        hold = str(latest["hold"])
        ids = [int(r["id"]) for r in readings]
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
                "meter": meter_names[int(latest["meter_id"])],
                "value": _listed(readings),
                "at": str(latest.get("at")),
            },
            data={
                "entry_id": entry_id,
                "reading_id": ids[-1],
                "hold": hold,
                "ids": listed,
            },
        )
