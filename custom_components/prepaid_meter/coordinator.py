"""One coordinator per meter: poll its registers (and relay) through its link.

Per meter, not per line, so a meter that stops answering makes only its own entities
unavailable. Requests of meters on one line are still serialised by the shared connection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util
from prepaid_meter_contract.meter_ratings import default_max_power, default_register_modulus
from prepaid_meter_contract.reading_guard import MeterLimits

from .const import (
    CONF_UNREACHABLE_MINUTES,
    DEFAULT_SCAN_INTERVAL,
    DEFAULT_UNREACHABLE_MINUTES,
    DOMAIN,
)
from .meter_errors import MeterLinkError, RelayMismatch
from .meter_link import MeterLink
from .problems import async_raise_problem
from .profiles import MeterProfile
from .total_guard import HeldTotal, TotalGuard

if TYPE_CHECKING:
    from . import PrepaidConfigEntry

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MeterData:
    """One successful poll: decoded values, the relay as the meter reports it, and when."""

    values: dict[str, Decimal]
    relay_closed: bool | None
    relay_error: str | None
    read_at: datetime
    #: The total register as read, for the ledger (``values`` holds the total to show).
    raw_total: Decimal | None = None
    #: The total register's value that is not shown, while a step is held.
    held_total: HeldTotal | None = None


class MeterCoordinator(DataUpdateCoordinator[MeterData | None]):
    """Polls one meter and switches its relay, always reporting confirmed states."""

    config_entry: PrepaidConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: PrepaidConfigEntry,
        subentry: ConfigSubentry,
        link: MeterLink,
    ) -> None:
        """Bind the meter's subentry to its link (its unit on the line, its profile)."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{subentry.title} ({link})",
            # The integration picks the interval (quality scale: appropriate-polling); a
            # scan_interval stored by older versions is ignored.
            update_interval=timedelta(seconds=DEFAULT_SCAN_INTERVAL),
        )
        self.subentry = subentry
        self.link = link
        self.profile: MeterProfile = link.profile
        self.unit_id = link.unit_id
        self._unreachable_after = timedelta(
            minutes=subentry.data.get(CONF_UNREACHABLE_MINUTES, DEFAULT_UNREACHABLE_MINUTES)
        )
        self.failing_since: datetime | None = None
        self.guard = TotalGuard(model_limits(self.profile))

    @property
    def issue_id(self) -> str:
        """Repair issue raised when this meter has been unreachable too long."""
        return f"meter_unreachable_{self.subentry.subentry_id}"

    async def _async_update_data(self) -> MeterData:
        try:
            values = await self.link.read_values()
        except MeterLinkError as err:
            self._note_failure()
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="meter_unreachable",
                translation_placeholders={"meter": self.subentry.title, "error": str(err)},
            ) from err
        if implausible := self.profile.implausible(values):
            # A glitched read (a 0, garbage, swapped words): a failed poll, never a reading
            # to show, post or charge.
            self._note_failure()
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="implausible_reading",
                translation_placeholders={
                    "meter": self.subentry.title,
                    "values": ", ".join(implausible),
                },
            )
        now = dt_util.utcnow()
        raw_total = values.get(self.profile.total_key)
        if raw_total is not None:
            # The total's step is judged like the ledger judges it: a glitch is never shown.
            values[self.profile.total_key] = self.guard.judge(raw_total, now)
        relay_closed: bool | None = None
        relay_error: str | None = None
        if self.profile.relay is not None:
            try:
                relay_closed = await self.link.read_relay()
            except MeterLinkError as err:
                # The measurements stay valid; only the relay entity becomes unavailable.
                relay_error = str(err)
        self._note_success()
        return MeterData(values, relay_closed, relay_error, now, raw_total, self.guard.held)

    def _note_failure(self) -> None:
        now = dt_util.utcnow()
        if self.failing_since is None:
            self.failing_since = now
        if now - self.failing_since >= self._unreachable_after:
            async_raise_problem(
                self.hass,
                self.issue_id,
                "meter_unreachable",
                meter=self.subentry.title,
                endpoint=self.link.endpoint,
                unit_id=str(self.unit_id),
                since=self.failing_since.isoformat(timespec="seconds"),
            )

    def _note_success(self) -> None:
        if self.failing_since is not None:
            self.failing_since = None
            ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)

    async def async_set_relay(self, *, closed: bool) -> None:
        """Switch the relay and publish the state the meter confirms on read-back."""
        try:
            confirmed = await self.link.set_relay(closed)
        except RelayMismatch as err:
            self._publish_relay(err.confirmed_closed)
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="relay_mismatch",
                translation_placeholders={
                    "meter": self.subentry.title,
                    "wanted": "closed" if closed else "open",
                    "actual": _relay_word(err.confirmed_closed),
                },
            ) from err
        except MeterLinkError as err:
            # The write may have reached the meter (a timeout after it switched): show what
            # the meter says now, or unavailable, never the state from before the command.
            await self._async_read_back_relay()
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="relay_failed",
                translation_placeholders={"meter": self.subentry.title, "error": str(err)},
            ) from err
        self._publish_relay(confirmed)

    async def _async_read_back_relay(self) -> None:
        try:
            state = await self.link.read_relay()
        except MeterLinkError as err:
            self._publish_relay(None, str(err))
        else:
            self._publish_relay(state)

    def _publish_relay(self, closed: bool | None, error: str | None = None) -> None:
        """Show the relay as read back, leaving the poll schedule where it is.

        ``async_set_updated_data`` would restart the poll timer: a relay switched every few
        seconds would then hold off the meter's next reading (and a cut's fresh reading).
        """
        if self.data is None:
            return
        self.data = replace(self.data, relay_closed=closed, relay_error=error)
        self.async_update_listeners()

    def follow_ledger_limits(
        self, limits: MeterLimits, value: Decimal | None, at: datetime | None
    ) -> None:
        """Judge the total by the ledger meter's limits; show its new starting point if newer.

        After a person accepts or re-bases a held reading in the ledger, the entity moves to it.
        """
        if not self.guard.follow_ledger(limits, value, at) or self.data is None:
            return
        shown = self.guard.shown
        if shown is None:
            return
        values = {**self.data.values, self.profile.total_key: shown}
        self.data = replace(self.data, values=values, held_total=self.guard.held)
        self.async_update_listeners()


def _relay_word(state: bool | None) -> str:
    return "unknown" if state is None else ("closed" if state else "open")


def model_limits(profile: MeterProfile) -> MeterLimits:
    """Return the limits the ledger gives a meter of this model until it says otherwise."""
    unit = "kWh" if profile.quantity == "energy" else "m3"
    return MeterLimits(
        default_max_power(profile.id, unit),
        default_register_modulus(profile.id) if unit == "kWh" else None,
    )
