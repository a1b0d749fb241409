"""Fix flows for repair issues: deciding on a reading the ledger's guard held.

The person picks what the reading was (a real surge to accept, a glitch to reject, a reset or
swap to re-base from) and gives a reason; the ledger applies it and audits both.
"""

from __future__ import annotations

from typing import Any

import probatio
from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.selector import (
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)

from .const import DOMAIN
from .held_readings import ACTIONS
from .ledger_client import LedgerAuthError, LedgerError, LedgerRequestError

MAX_REASON = 500


class HeldReadingRepairFlow(RepairsFlow):
    """Accept, reject or re-base from one held reading, with a reason."""

    def __init__(self, issue_id: str, entry_id: str, reading_id: int, hold: str) -> None:
        """Remember which reading of which entry this flow decides on."""
        self._issue_id = issue_id
        self._entry_id = entry_id
        self._reading_id = reading_id
        self._hold = hold

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Ask for the decision and its reason, then send it to the ledger."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="entry_not_loaded")
        actions = ACTIONS[self._hold]
        errors: dict[str, str] = {}
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self._issue_id)
        placeholders = {**((issue and issue.translation_placeholders) or {}), "detail": ""}
        # Home Assistant opens the flow with {"issue_id": ...}; a submission carries "action".
        if user_input is not None and "action" in user_input:
            reason = str(user_input.get("reason", "")).strip()
            if not reason or len(reason) > MAX_REASON:
                errors["reason"] = "reason_required"
            else:
                try:
                    await entry.runtime_data.client.async_resolve_reading(
                        self._reading_id, str(user_input["action"]), reason
                    )
                except LedgerAuthError:
                    errors["base"] = "invalid_auth"
                except LedgerRequestError as err:
                    errors["base"] = "ledger_rejected"
                    placeholders["detail"] = str(err)
                except LedgerError as err:
                    errors["base"] = "ledger_unavailable"
                    placeholders["detail"] = str(err)
                else:
                    entry.runtime_data.sync.forget_held(self._reading_id)
                    return self.async_create_entry(data={})
        schema = probatio.Schema(
            {
                probatio.Required("action", default=actions[0]): SelectSelector(
                    SelectSelectorConfig(
                        options=list(actions),
                        mode=SelectSelectorMode.LIST,
                        translation_key="held_reading_action",
                    )
                ),
                probatio.Required("reason"): TextSelector(),
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                schema, {k: v for k, v in (user_input or {}).items() if k != "issue_id"}
            ),
            errors=errors,
            description_placeholders=placeholders,
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """Create the fix flow of a held-reading issue (the only fixable issue we raise)."""
    if data is None or not issue_id.startswith("reading_held_"):
        raise ValueError(f"{DOMAIN}: no fix flow for issue {issue_id}")
    return HeldReadingRepairFlow(
        issue_id, str(data["entry_id"]), int(str(data["reading_id"])), str(data["hold"])
    )
