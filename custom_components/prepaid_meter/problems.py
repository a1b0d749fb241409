"""Repair issues that report a problem a person must fix on site (nothing to click)."""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN


@callback
def async_raise_problem(
    hass: HomeAssistant, issue_id: str, translation_key: str, **placeholders: str
) -> None:
    """Raise (or refresh) a non-fixable error issue; the code that found it clears it."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=translation_key,
        translation_placeholders=placeholders,
    )
