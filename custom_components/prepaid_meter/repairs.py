"""Fix flows for repair issues: deciding on a reading the ledger's guard held.

The person picks what the reading was (a real surge to accept, a glitch to reject, a reset or
swap to re-base from) and gives a reason; the ledger applies it and audits both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from . import PrepaidConfigEntry
from prepaid_meter_contract.errors import LedgerAuthError, LedgerError, LedgerRequestError
from prepaid_meter_contract.vocabulary import RESOLUTIONS, ResolveAction, StepKind

MAX_REASON = 500


class HeldReadingRepairFlow(RepairsFlow):
    """Decide on a meter's held readings with a reason: the latest as chosen, earlier rejected.

    A burst of glitches is rejected as one; a real surge or a meter reset is accepted or
    re-based from its latest reading, and the earlier readings of the burst are rejected (the
    latest decides where the meter stands).
    """

    def __init__(self, issue_id: str, entry_id: str, reading_ids: list[int], hold: str) -> None:
        """Remember which readings (oldest first) of which entry this flow decides on."""
        self._issue_id = issue_id
        self._entry_id = entry_id
        self._reading_ids = reading_ids
        self._hold = hold

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Ask for the decision and its reason, then send it to the ledger."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="entry_not_loaded")
        actions = [str(action) for action in RESOLUTIONS[StepKind(self._hold)]]
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
                    await self._async_decide(entry, str(user_input["action"]), reason)
                except LedgerAuthError:
                    errors["base"] = "invalid_auth"
                except LedgerRequestError as err:
                    errors["base"] = "ledger_rejected"
                    placeholders["detail"] = str(err)
                except LedgerError as err:
                    errors["base"] = "ledger_unavailable"
                    placeholders["detail"] = str(err)
                else:
                    for reading_id in self._reading_ids:
                        entry.runtime_data.sync.forget_held(reading_id)
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

    async def _async_decide(self, entry: PrepaidConfigEntry, action: str, reason: str) -> None:
        """Send the decision on the latest reading, then reject the earlier ones of the burst."""
        client = entry.runtime_data.client
        *earlier, latest = self._reading_ids
        await client.async_resolve_reading(latest, ResolveAction(action), reason)
        for reading_id in earlier:
            try:
                await client.async_resolve_reading(reading_id, ResolveAction.REJECT, reason)
            except LedgerRequestError as err:
                if err.status != 409:  # already decided elsewhere: nothing left to do
                    raise


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """Create the fix flow of a held-reading issue (the only fixable issue we raise)."""
    if data is None or not issue_id.startswith("reading_held_"):
        raise ValueError(f"{DOMAIN}: no fix flow for issue {issue_id}")
    ids = str(data.get("ids") or data["reading_id"])
    return HeldReadingRepairFlow(
        issue_id,
        str(data["entry_id"]),
        [int(reading_id) for reading_id in ids.split(",")],
        str(data["hold"]),
    )
