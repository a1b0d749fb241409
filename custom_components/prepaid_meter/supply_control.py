"""The relay of a ledger-linked meter follows the ledger's supply decision.

One controller per linked meter with a relay. It re-decides whenever the meter is polled, the
ledger's state changes (a payment pushed over the event stream), the stream drops, or an
override starts or ends; the decision itself is ``relay_policy.decide_relay``. Each change is
written with read-back, and the confirmed result is announced as ``prepaid_meter_supply_changed``
(which the logbook shows with its reason).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .automation_events import RELAY_FAILED, SUPPLY_CHANGED, AutomationEvent
from .const import DEFAULT_SCAN_INTERVAL, DOMAIN
from .coordinator import MeterCoordinator
from .ledger_sync import LedgerSync
from .problems import async_raise_problem
from .relay_policy import (
    RelayAction,
    RelayDecision,
    RelayFailure,
    RelayInputs,
    SupplyOverride,
    after_failure,
    decide_relay,
    failure_resolved,
)

_LOGGER = logging.getLogger(__name__)

#: Commands a relay gets before a person is told that it does not obey.
TRIES_BEFORE_REPAIR = 3
#: The longest wait between two commands to a relay that does not obey.
LONGEST_RETRY_WAIT = timedelta(minutes=10)


class SupplyController:
    """Keeps one meter's relay in line with its account's supply decision."""

    def __init__(
        self,
        hass: HomeAssistant,
        meter: MeterCoordinator,
        sync: LedgerSync,
        ledger_meter_id: int,
        *,
        stale_polls: int,
        enforce_when_offline: bool,
        overrides: OverrideStore,
    ) -> None:
        """Bind a meter (Modbus side) to its ledger meter (money side)."""
        self.hass = hass
        self.meter = meter
        self.sync = sync
        self.ledger_meter_id = ledger_meter_id
        self.stale_after = timedelta(0)
        self.enforce_when_offline = False
        self.overrides = overrides
        self.override: SupplyOverride | None = None
        self.last_decision: RelayDecision | None = None
        self._lock = asyncio.Lock()
        self._unsubs: list[CALLBACK_TYPE] = []
        self._expiry_unsub: CALLBACK_TYPE | None = None
        self._seen_site: tuple[object, bool] = (None, False)
        #: The relay did not take the last command: backing off, maybe a repair raised.
        self.failure: RelayFailure | None = None
        #: Wait after the first failed command (one poll: retries never outpace the poll),
        #: doubling up to the longest.
        self.first_retry_wait = timedelta(seconds=DEFAULT_SCAN_INTERVAL)
        self.longest_retry_wait = LONGEST_RETRY_WAIT
        self.configure(stale_polls=stale_polls, enforce_when_offline=enforce_when_offline)

    @callback
    def configure(self, *, stale_polls: int, enforce_when_offline: bool) -> None:
        """Take the site's options (also while running: an options change needs no restart)."""
        self.stale_after = timedelta(seconds=DEFAULT_SCAN_INTERVAL) * stale_polls
        self.enforce_when_offline = enforce_when_offline
        if self._unsubs:
            self._schedule()

    @callback
    def start(self) -> None:
        """Restore a stored override; re-decide on every change of the meter or the ledger."""
        self._hold(self.overrides.get(self.meter.subentry.subentry_id, dt_util.utcnow()))
        self._unsubs.append(self.meter.async_add_listener(self._schedule))
        self._unsubs.append(self.sync.async_add_listener(self._site_changed))

    @callback
    def stop(self) -> None:
        """Stop following (the entry unloads, or the meter is removed)."""
        ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        if self._expiry_unsub is not None:
            self._expiry_unsub()
            self._expiry_unsub = None

    def inputs(self) -> RelayInputs:
        """Return what the decision rests on right now."""
        account = self.sync.account_of_meter(self.ledger_meter_id)
        data = self.meter.data
        return RelayInputs(
            now=dt_util.utcnow(),
            relay_closed=None if data is None else data.relay_closed,
            supply_allowed=None if account is None else account.supply_allowed,
            supply_reason=None if account is None else account.data.supply.reason,
            last_reading_at=None
            if data is None or not self.meter.last_update_success
            else data.read_at,
            stale_after=self.stale_after,
            ledger_ok=self.sync.ledger_ok,
            enforce_when_offline=self.enforce_when_offline,
            unsent_readings=self.sync.has_unsent(self.ledger_meter_id),
            override=self.override,
        )

    @callback
    def _site_changed(self) -> None:
        """Re-decide only when this meter's account or the ledger's reachability changed."""
        seen = (self.sync.account_of_meter(self.ledger_meter_id), self.sync.ledger_ok)
        if seen[0] is self._seen_site[0] and seen[1] == self._seen_site[1]:
            return
        self._seen_site = seen
        self._schedule()

    @callback
    def _schedule(self) -> None:
        self.meter.config_entry.async_create_background_task(
            self.hass, self.async_evaluate(), f"{DOMAIN} supply {self.meter.subentry.title}"
        )

    async def async_evaluate(self) -> RelayDecision:
        """Decide and, if needed, move the relay (one move at a time per meter).

        A relay that did not take a command is retried after a growing wait, never in a loop.
        """
        async with self._lock:
            inputs = self.inputs()
            decision = decide_relay(inputs)
            self.last_decision = decision
            now = inputs.now
            if self.failure is not None and failure_resolved(self.failure, inputs):
                self._obeyed()
            if decision.action is RelayAction.NONE:
                return decision
            if self.failure is not None and self.failure.waiting(decision.action, now):
                return decision
            closed = decision.action is RelayAction.CLOSE
            try:
                await self.meter.async_set_relay(closed=closed)
            except HomeAssistantError as err:
                self._disobeyed(decision, err, now)
                return decision
            self._obeyed()
            self._announce(closed=closed, reason=decision.reason)
            return decision

    @property
    def issue_id(self) -> str:
        """Repair issue raised while the relay does not obey."""
        return f"relay_not_obeying_{self.meter.subentry.subentry_id}"

    def _disobeyed(self, decision: RelayDecision, err: HomeAssistantError, now: datetime) -> None:
        first = self.failure is None or self.failure.action is not decision.action
        self.failure = after_failure(
            self.failure,
            decision.action,
            now,
            first_wait=self.first_retry_wait,
            longest_wait=self.longest_retry_wait,
        )
        title = self.meter.subentry.title
        if first:  # one line per state change, not per try
            _LOGGER.warning(
                "%s: could not %s the relay: %s; retrying with growing pauses",
                title,
                decision.action,
                err,
            )
        else:
            _LOGGER.debug("%s: relay try %d failed: %s", title, self.failure.tries, err)
        if self.failure.tries != TRIES_BEFORE_REPAIR:
            return
        wanted = "closed" if decision.action is RelayAction.CLOSE else "open"
        async_raise_problem(
            self.hass,
            self.issue_id,
            f"relay_not_{wanted}",
            meter=title,
            tries=str(self.failure.tries),
        )
        account = self.sync.account_of_meter(self.ledger_meter_id)
        self.sync.notify_account_event(
            None if account is None else account.data.id,
            AutomationEvent(
                RELAY_FAILED,
                {
                    **self._relay_ids(),
                    "meter": title,
                    "wanted": wanted,
                    "reason": decision.reason,
                    "tries": self.failure.tries,
                    "error": str(err),
                },
            ),
        )

    def _obeyed(self) -> None:
        if self.failure is None:
            return
        _LOGGER.info("%s: the relay obeys again", self.meter.subentry.title)
        self.failure = None
        ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)

    def _relay_ids(self) -> dict[str, str | None]:
        """Return the meter's device and relay entity (automations tell the room by them)."""
        device = dr.async_get(self.hass).async_get_device_by_identifier(
            (DOMAIN, self.meter.subentry.subentry_id), self.meter.config_entry.entry_id
        )
        relay_entity = er.async_get(self.hass).async_get_entity_id(
            "switch", DOMAIN, f"{self.meter.subentry.subentry_id}_relay"
        )
        return {"device_id": device.id if device else None, "entity_id": relay_entity}

    def _announce(self, *, closed: bool, reason: str) -> None:
        account = self.sync.account_of_meter(self.ledger_meter_id)
        data: dict[str, Any] = {
            **self._relay_ids(),
            "meter": self.meter.subentry.title,
            "state": "restored" if closed else "cut",
            "reason": reason,
        }
        _LOGGER.info("%s: supply %s (%s)", self.meter.subentry.title, data["state"], reason)
        self.sync.notify_account_event(
            None if account is None else account.data.id, AutomationEvent(SUPPLY_CHANGED, data)
        )

    async def async_set_override(self, *, closed: bool, until: datetime | None) -> None:
        """Hold the relay closed or open until ``until`` (``None``: until cleared)."""
        self._hold(SupplyOverride(closed, until))
        await self.overrides.async_put(self.meter.subentry.subentry_id, self.override)
        await self.async_evaluate()

    async def async_clear_override(self) -> None:
        """Give the relay back to the ledger's decision."""
        self._hold(None)
        await self.overrides.async_put(self.meter.subentry.subentry_id, None)
        await self.async_evaluate()

    @callback
    def _hold(self, override: SupplyOverride | None) -> None:
        """Set the override in memory and arm its expiry."""
        self.override = override
        if self._expiry_unsub is not None:
            self._expiry_unsub()
            self._expiry_unsub = None
        if override is not None and override.until is not None:
            self._expiry_unsub = async_track_point_in_utc_time(
                self.hass, self._expire, override.until
            )

    @callback
    def _expire(self, _now: datetime) -> None:
        self._expiry_unsub = None
        self.override = None
        self.hass.async_create_task(
            self.overrides.async_put(self.meter.subentry.subentry_id, None), eager_start=True
        )
        self._schedule()


class OverrideStore:
    """Overrides of one site, kept across restarts (a person's decision must not vanish)."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Bind to the site's storage file."""
        self._store: Store[dict[str, dict[str, Any]]] = Store(
            hass, 1, f"{DOMAIN}.{entry_id}.overrides"
        )
        self._data: dict[str, dict[str, Any]] = {}

    async def async_load(self) -> None:
        """Read the stored overrides."""
        self._data = await self._store.async_load() or {}

    def get(self, subentry_id: str, now: datetime) -> SupplyOverride | None:
        """Return a meter's stored override if it is still in force."""
        raw = self._data.get(subentry_id)
        if raw is None:
            return None
        until = dt_util.parse_datetime(raw["until"]) if raw.get("until") else None
        override = SupplyOverride(bool(raw["closed"]), until)
        return override if override.active(now) else None

    async def async_put(self, subentry_id: str, override: SupplyOverride | None) -> None:
        """Store (or forget) a meter's override now."""
        if override is None:
            self._data.pop(subentry_id, None)
        else:
            until = None if override.until is None else override.until.isoformat()
            self._data[subentry_id] = {"closed": override.closed, "until": until}
        await self._store.async_save(self._data)
