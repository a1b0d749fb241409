"""Diagnostics download: the site, every meter's settings, last values and its Modbus line.

The ledger token is redacted, and so are the tenants' names and account numbers: a
diagnostics file is attached to public bug reports.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.components.modbus.connection import async_get_connection_info
from homeassistant.core import HomeAssistant

from . import PrepaidConfigEntry
from .const import CONF_ACCOUNT_NAME, CONF_TOKEN
from .ledger_sync import AccountState

TO_REDACT = {CONF_TOKEN}
#: Who a tenant is and how to pay into their account: never in a bug report.
TENANT_REDACT = {"name", "number", "account_number", CONF_ACCOUNT_NAME}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: PrepaidConfigEntry
) -> dict[str, Any]:
    """Describe the site and its meters for a bug report."""
    runtime = entry.runtime_data
    meters: dict[str, Any] = {}
    for subentry_id, coordinator in runtime.meters.items():
        data = coordinator.data
        meters[subentry_id] = {
            "title": coordinator.subentry.title,
            "settings": async_redact_data(dict(coordinator.subentry.data), {CONF_ACCOUNT_NAME}),
            "endpoint": coordinator.link.endpoint,
            "profile": coordinator.profile.id,
            "last_update_success": coordinator.last_update_success,
            "failing_since": coordinator.failing_since,
            "values": None if data is None else {k: str(v) for k, v in data.values.items()},
            "relay_closed": None if data is None else data.relay_closed,
            "relay_error": None if data is None else data.relay_error,
            "read_at": None if data is None else data.read_at.isoformat(),
            "link_stats": dataclasses.asdict(coordinator.link.stats),
        }
    # Core modbus's shared connections this site holds units on, with every other holder
    # (another integration on the same gateway shows up here too).
    connections = [
        {
            "endpoint": list(info.endpoint),
            "connected": info.connected,
            "units": info.units,
        }
        for info in async_get_connection_info(hass)
        if entry.entry_id in info.units
    ]
    sync = runtime.sync
    supply = {
        subentry_id: {
            "ledger_meter_id": controller.ledger_meter_id,
            "override": None
            if controller.override is None
            else dataclasses.asdict(controller.override),
            "last_decision": None
            if controller.last_decision is None
            else dataclasses.asdict(controller.last_decision),
            "stale_after_s": controller.stale_after.total_seconds(),
            "enforce_when_offline": controller.enforce_when_offline,
        }
        for subentry_id, controller in runtime.supply.items()
    }
    return {
        "entry": async_redact_data(dict(entry.data), TO_REDACT),
        "options": dict(entry.options),
        "ledger_sync": {
            "stream_connected": sync.stream_connected,
            "posting_ok": sync.posting_ok,
            "last_event_id": sync.last_event_id,
            "events_received": sync.events_received,
            "reading_queue": dataclasses.asdict(sync.queue.stats()),
            "accounts": {}
            if sync.data is None
            else {
                str(k): async_redact_data(_account(v), TENANT_REDACT)
                for k, v in sync.data.accounts.items()
            },
        },
        "supply": supply,
        "ledger": {
            "ledger_id": runtime.identity.ledger_id,
            "version": runtime.identity.version,
            "scope": runtime.identity.scope,
        },
        "meters": meters,
        "modbus_connections": connections,
    }


def _account(state: AccountState) -> dict[str, Any]:
    """Return an account as the ledger described it, with its last top-up."""
    last = state.last_topup
    return {
        **state.data.model_dump(mode="json"),
        "last_topup": None
        if last is None
        else {
            "order_id": last.order_id,
            "status": str(last.status),
            "amount_minor": last.amount_minor,
            "at": None if last.at is None else last.at.isoformat(),
        },
    }
