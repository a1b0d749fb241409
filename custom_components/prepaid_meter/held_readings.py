"""Readings the ledger's guard holds, shown as repair issues a person can fix.

The ledger charges nothing for a reading no meter can physically show (a glitch, a surge
beyond the meter's maximum power, a reset or a swap) and holds it for a decision. Each held
reading of a meter this entry follows is one fixable repair issue; its fix flow
(``repairs.py``) accepts, rejects or re-bases through the ledger, which audits it.
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


def issue_id(entry_id: str, reading_id: int) -> str:
    """Return the repair issue id of one held reading of one config entry."""
    return f"{ISSUE_PREFIX}{entry_id}_{reading_id}"


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
    """Make the entry's repair issues match the held readings: one per reading, no more."""
    wanted: dict[str, Mapping[str, Any]] = {
        issue_id(entry_id, reading_id): reading
        for reading_id, reading in held.items()
        if reading.get("meter_id") in meter_names and reading.get("hold") in HOLD_KINDS
    }
    prefix = f"{ISSUE_PREFIX}{entry_id}_"
    registry = ir.async_get(hass)
    for domain, existing in list(registry.issues):
        if domain == DOMAIN and existing.startswith(prefix) and existing not in wanted:
            ir.async_delete_issue(hass, DOMAIN, existing)
    for issue, reading in wanted.items():
        if registry.async_get_issue(DOMAIN, issue) is not None:
            continue
        hold = str(reading["hold"])
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue,
            is_fixable=True,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=f"reading_held_{hold}",
            translation_placeholders={
                "meter": meter_names[int(reading["meter_id"])],
                "value": str(reading.get("value")),
                "at": str(reading.get("at")),
            },
            data={"entry_id": entry_id, "reading_id": int(reading["id"]), "hold": hold},
        )
