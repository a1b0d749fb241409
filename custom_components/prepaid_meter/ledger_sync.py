"""One ledger site, live: readings go out in batches, the ledger's events come in at once.

``LedgerSync`` is the site's coordinator. Its data is what the ledger says about the accounts
of the linked meters (balance, supply decision, last top-up) and about the meters (cost so far,
current price, days left). The ledger pushes changes over its event stream, so entities and
relays react within milliseconds of a payment; a full re-read every few minutes (and after
every reconnect) is only the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import TYPE_CHECKING, Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from . import order_attention
from .automation_events import ORDER_NEEDS_ATTENTION, bus_event_type, from_ledger_event
from .const import CONF_LEDGER_METER_ID, DOMAIN
from .coordinator import MeterCoordinator
from .held_readings import async_sync_issues, held_from_alert
from .ledger_client import LedgerClient, LedgerConnectionError, LedgerError, LedgerRequestError
from .money import minor_to_major
from .problems import async_raise_problem
from .reading_queue import ReadingQueue
from .shared.reading_guard import MeterLimits

if TYPE_CHECKING:
    from . import PrepaidConfigEntry

_LOGGER = logging.getLogger(__name__)

#: Full re-read of accounts and meter statuses, in case an event was lost in a way we missed.
RESYNC_INTERVAL = timedelta(minutes=5)
#: Meters polled in one cycle finish within this of each other: one batch per cycle.
FLUSH_DELAY_S = 0.5
#: Meter statuses (cost, price, days left) are re-read at most this often per meter.
STATUS_REFRESH_S = 30.0
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 60.0
#: An outage longer than this becomes a repair issue (shorter ones are routine restarts).
OUTAGE_REPAIR_AFTER = timedelta(minutes=5)


def _merged(current: AccountState | None, changes: dict[str, Any]) -> AccountState | None:
    """Return the account with the changes applied, or ``None`` if nothing changes.

    Unchanged accounts keep their state object, so entities can tell news by identity.
    """
    if current is None or all(current.data.get(k) == v for k, v in changes.items()):
        return None
    return replace(current, data={**current.data, **changes}, as_of=dt_util.utcnow())


#: What a readings response tells about each account.
_INGEST_FIELDS = ("balance_minor", "emergency_credit_remaining_minor", "debt_minor", "supply")


def account_event_signal(entry_id: str) -> str:
    """Dispatcher signal carrying (account_id, kind, data) to the event entities."""
    return f"{DOMAIN}_{entry_id}_account_event"


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account as the ledger last described it, and its latest top-up order."""

    data: dict[str, Any]
    last_topup: dict[str, Any] | None = None
    #: When the ledger last told us this account's state (a read, a push, a readings answer).
    as_of: datetime | None = None

    @property
    def supply_allowed(self) -> bool | None:
        """The ledger's supply decision (None when it gave none)."""
        supply = self.data.get("supply")
        return None if not isinstance(supply, dict) else bool(supply.get("allowed"))


@dataclass(frozen=True, slots=True)
class SiteData:
    """Accounts by ledger account id, meter statuses and owners by ledger meter id."""

    accounts: dict[int, AccountState] = field(default_factory=dict)
    meter_status: dict[int, dict[str, Any]] = field(default_factory=dict)
    meter_account: dict[int, int] = field(default_factory=dict)
    #: Readings of followed meters the ledger's guard holds, by reading id.
    held: dict[int, dict[str, Any]] = field(default_factory=dict)


class LedgerSync(DataUpdateCoordinator[SiteData]):
    """Readings to the ledger, the ledger's decisions and events back into Home Assistant."""

    config_entry: PrepaidConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: PrepaidConfigEntry,
        client: LedgerClient,
        meter_ids: set[int],
    ) -> None:
        """Follow the given ledger meters (those linked from meter subentries)."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"ledger {client.url}",
            update_interval=RESYNC_INTERVAL,
            always_update=True,
        )
        self.data = SiteData()  # until the first read; entities show unavailable meanwhile
        self.client = client
        self.meter_ids = meter_ids
        self.queue = ReadingQueue(hass, entry.entry_id)
        self.stream_connected = False
        self.posting_ok = True
        self.last_event_id: int | None = None
        self.events_received = 0
        self._flush_lock = asyncio.Lock()
        self._flush_unsub: CALLBACK_TYPE | None = None
        self._in_flight: set[int] = set()
        self._status_read_at: dict[int, float] = {}
        self._stream_task: asyncio.Task[None] | None = None
        self.meter_subentries: dict[int, str] = {}
        #: Since when the ledger cannot be followed (None: it can); a repair issue after a while.
        self.unreachable_since: datetime | None = None
        self.outage_repair_after = OUTAGE_REPAIR_AFTER
        self._outage_unsub: CALLBACK_TYPE | None = None
        #: The coordinator of each followed ledger meter (its total is judged by its limits).
        self._followed: dict[int, MeterCoordinator] = {}

    # ------------------------------------------------------------------ state

    async def _async_setup(self) -> None:
        await self.queue.async_load()

    async def _async_update_data(self) -> SiteData:
        """Read every followed meter, its account, status and last top-up."""
        try:
            return await self._read_all()
        except LedgerError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="ledger_unreachable",
                translation_placeholders={"url": self.client.url, "error": str(err)},
            ) from err

    async def _read_all(self) -> SiteData:
        meter_account: dict[int, int] = {}
        statuses: dict[int, dict[str, Any]] = {}
        for meter_id in sorted(self.meter_ids):
            try:
                status = await self.client.async_get(f"meters/{meter_id}/status")
            except LedgerRequestError as err:
                # A meter deleted in the ledger: its entities go unavailable, the rest carry on.
                _LOGGER.warning("Ledger meter %s: %s", meter_id, err)
                continue
            statuses[meter_id] = status
            meter_account[meter_id] = int(status["account_id"])
            self._status_read_at[meter_id] = self.hass.loop.time()
        self._apply_limits(statuses)
        accounts: dict[int, AccountState] = {}
        for account_id in sorted(set(meter_account.values())):
            accounts[account_id] = await self._read_account(account_id)
        await self._sync_orders_needing_attention(accounts)
        return SiteData(accounts, statuses, meter_account, await self._read_held())

    async def _read_held(self) -> dict[int, dict[str, Any]]:
        try:
            readings = await self.client.async_held_readings()
        except LedgerRequestError as err:
            # An older ledger, or a token that may not list them: no repair issues, no failure.
            _LOGGER.debug("Held readings not available: %s", err)
            return dict(self.data.held)
        return {
            int(r["id"]): r
            for r in readings
            if r.get("meter_id") in self.meter_ids and isinstance(r.get("id"), int)
        }

    async def async_read_meters(self, meter_ids: list[int]) -> None:
        """Follow meters added while the site runs: read their status and account now.

        Only their data changes, so no other meter's entities or relay react. A meter the
        ledger cannot describe yet is read again by the next full re-read.
        """
        self.meter_ids.update(meter_ids)
        statuses: dict[int, dict[str, Any]] = {}
        meter_account: dict[int, int] = {}
        accounts: dict[int, AccountState] = {}
        try:
            for meter_id in meter_ids:
                status = await self.client.async_get(f"meters/{meter_id}/status")
                statuses[meter_id] = status
                meter_account[meter_id] = int(status["account_id"])
                self._status_read_at[meter_id] = self.hass.loop.time()
            for account_id in sorted(set(meter_account.values())):
                accounts[account_id] = await self._read_account(account_id)
        except LedgerError as err:
            _LOGGER.warning("Ledger meters %s not read yet: %s", meter_ids, err)
        self._apply_limits(statuses)
        if statuses:
            self.async_set_updated_data(
                replace(
                    self.data,
                    accounts={**self.data.accounts, **accounts},
                    meter_status={**self.data.meter_status, **statuses},
                    meter_account={**self.data.meter_account, **meter_account},
                )
            )

    async def _sync_orders_needing_attention(self, accounts: dict[int, AccountState]) -> None:
        """Raise (or clear) the repair issues of orders that need a person, from the ledger.

        An order lists no minor-unit exponent; the site's accounts in that currency tell it.
        """
        exponents = {
            str(a.data.get("currency")): a.data.get("currency_exponent") for a in accounts.values()
        }
        try:
            listed = await self.client.async_get(
                "topups", params={"status": "needs_attention", "limit": "100"}
            )
        except LedgerRequestError as err:
            _LOGGER.debug("Orders needing attention not available: %s", err)
            return
        orders = listed.get("topups") if isinstance(listed, dict) else None
        if isinstance(orders, list):
            order_attention.async_sync(
                self.hass,
                self.config_entry.entry_id,
                self.client.url,
                [
                    {"currency_exponent": exponents.get(str(o.get("currency"))), **o}
                    for o in orders
                    if isinstance(o, dict)
                ],
            )

    @callback
    def _apply_limits(self, statuses: dict[int, dict[str, Any]]) -> None:
        """Give each followed meter its ledger meter's guard limits and last accepted reading."""
        for meter_id, status in statuses.items():
            if (meter := self._followed.get(meter_id)) is None:
                continue
            if (guard := guard_state(status)) is not None:
                meter.follow_ledger_limits(*guard)

    @callback
    def forget_meter(self, meter_id: int) -> None:
        """Stop following a meter whose subentry was removed (its held readings' issues go)."""
        self.meter_ids.discard(meter_id)
        self.meter_subentries.pop(meter_id, None)
        self._followed.pop(meter_id, None)
        self._status_read_at.pop(meter_id, None)
        data = self.data
        self.async_set_updated_data(
            replace(
                data,
                meter_status={k: v for k, v in data.meter_status.items() if k != meter_id},
                meter_account={k: v for k, v in data.meter_account.items() if k != meter_id},
                held={k: v for k, v in data.held.items() if v.get("meter_id") != meter_id},
            )
        )

    @callback
    def sync_repair_issues(self) -> None:
        """One fixable repair issue per held reading of a followed meter (coordinator listener)."""
        entry = self.config_entry
        names = {
            int(subentry.data[CONF_LEDGER_METER_ID]): subentry.title
            for subentry in entry.subentries.values()
            if subentry.data.get(CONF_LEDGER_METER_ID) is not None
        }
        async_sync_issues(self.hass, entry.entry_id, self.data.held, names)

    @callback
    def forget_held(self, reading_id: int) -> None:
        """Drop a reading a person has decided on (its issue goes with it)."""
        if reading_id in self.data.held:
            held = {k: v for k, v in self.data.held.items() if k != reading_id}
            self.async_set_updated_data(replace(self.data, held=held))

    async def _read_account(self, account_id: int) -> AccountState:
        account = await self.client.async_get(f"accounts/{account_id}")
        orders = await self.client.async_get(
            "topups", params={"account": str(account_id), "limit": "1"}
        )
        items = orders.get("topups") or []
        return AccountState(account, items[0] if items else None, dt_util.utcnow())

    @property
    def ledger_ok(self) -> bool:
        """The ledger answers and its event stream is open: decisions are current."""
        return self.stream_connected and self.posting_ok and self.last_update_success

    def account_of_meter(self, meter_id: int) -> AccountState | None:
        """Return the account a ledger meter belongs to, as last known."""
        if (account_id := self.data.meter_account.get(meter_id)) is None:
            return None
        return self.data.accounts.get(account_id)

    @property
    def outage_issue_id(self) -> str:
        """Repair issue raised while the ledger has been unreachable for a while."""
        return f"ledger_unreachable_{self.config_entry.entry_id}"

    @callback
    def watch_reachability(self) -> None:
        """Note when the ledger stops being followable; tell a person if it lasts (listener)."""
        if self.ledger_ok:
            if self.unreachable_since is not None:
                self.unreachable_since = None
                self._cancel_outage_timer()
                ir.async_delete_issue(self.hass, DOMAIN, self.outage_issue_id)
            return
        if self.unreachable_since is None:
            self.unreachable_since = dt_util.utcnow()
            self._outage_unsub = async_call_later(
                self.hass, self.outage_repair_after, self._raise_outage
            )

    @callback
    def _raise_outage(self, _now: datetime) -> None:
        self._outage_unsub = None
        if self.unreachable_since is None:
            return
        async_raise_problem(
            self.hass,
            self.outage_issue_id,
            "ledger_unreachable",
            url=self.client.url,
            since=self.unreachable_since.isoformat(timespec="seconds"),
            queued=str(len(self.queue)),
        )

    def _cancel_outage_timer(self) -> None:
        if self._outage_unsub is not None:
            self._outage_unsub()
            self._outage_unsub = None

    def has_unsent(self, meter_id: int) -> bool:
        """Tell whether readings of this meter are queued or in flight (not yet decided on)."""
        return meter_id in self._in_flight or meter_id in self.queue.pending_meters()

    @callback
    def _apply_account(self, account_id: int, changes: dict[str, Any]) -> None:
        if (updated := _merged(self.data.accounts.get(account_id), changes)) is not None:
            self.async_set_updated_data(
                replace(self.data, accounts={**self.data.accounts, account_id: updated})
            )

    # ------------------------------------------------------------------ readings out

    @callback
    def follow_meter(self, meter: MeterCoordinator, meter_id: int) -> CALLBACK_TYPE:
        """Queue the meter's cumulative register after every successful poll."""
        self.meter_subentries[meter_id] = meter.subentry.subentry_id
        self._followed[meter_id] = meter
        last_sent: list[datetime | None] = [None]

        @callback
        def _polled() -> None:
            data = meter.data
            if data is None or not meter.last_update_success or data.read_at == last_sent[0]:
                return  # a relay update republishes the same reading
            # The register as read: the ledger judges (and holds) it itself.
            value = data.raw_total
            if value is None or not value.is_finite():
                return  # never post what cannot be a register value
            last_sent[0] = data.read_at
            self.add_reading(meter_id, ledger_value(value), data.read_at)

        return meter.async_add_listener(_polled)

    @callback
    def add_reading(self, meter_id: int, value: str, at: datetime) -> None:
        """Queue a meter's cumulative register and send the cycle's batch shortly."""
        self.queue.add(meter_id, value, at)
        if self._flush_unsub is None:
            self._flush_unsub = async_call_later(self.hass, FLUSH_DELAY_S, self._flush_later)

    @callback
    def _flush_later(self, _now: datetime) -> None:
        self._flush_unsub = None
        self.config_entry.async_create_background_task(
            self.hass, self.async_flush(), f"{DOMAIN} post readings"
        )

    async def async_flush(self) -> None:
        """Send queued readings in order until the queue is empty or the ledger fails."""
        async with self._flush_lock:
            while len(self.queue):
                batch = self.queue.head()
                await self.queue.async_save()  # persisted before it leaves
                self._in_flight = {item["meter_id"] for item in batch}
                try:
                    result = await self.client.async_post_readings(list(batch))  # type: ignore[arg-type]
                except LedgerRequestError as err:
                    if (index := _rejected_index(err, len(batch))) is None:
                        self._posting_failed(err)
                        return
                    _LOGGER.error("Ledger refused reading %s: %s", batch[index], err)
                    self.queue.reject(index, str(err))
                    continue
                except LedgerError as err:
                    self._posting_failed(err)
                    return
                finally:
                    self._in_flight = set()
                self.queue.acknowledge(len(batch))
                if not self.posting_ok:
                    _LOGGER.info("Ledger at %s takes readings again", self.client.url)
                self.posting_ok = True
                self._apply_ingest_result(result)
            await self.queue.async_save()

    def _posting_failed(self, err: LedgerError) -> None:
        if self.posting_ok:
            _LOGGER.warning(
                "Readings kept for later (%d queued): ledger at %s: %s",
                len(self.queue),
                self.client.url,
                err,
            )
        self.posting_ok = False
        self.async_update_listeners()

    @callback
    def _apply_ingest_result(self, result: dict[str, Any]) -> None:
        """Apply each account's new balance and supply decision from a readings response."""
        accounts = dict(self.data.accounts)
        charged: list[int] = []
        for item in result.get("meters", []):
            account_id = item.get("account_id")
            changes = {key: item[key] for key in _INGEST_FIELDS if key in item}
            if (updated := _merged(accounts.get(account_id), changes)) is not None:
                accounts[account_id] = updated
            if item.get("charged_minor") or item.get("standing_charged_minor"):
                charged.append(int(item["meter_id"]))
        if accounts != self.data.accounts:
            self.async_set_updated_data(replace(self.data, accounts=accounts))
        self._refresh_statuses(charged)

    @callback
    def _refresh_statuses(self, meter_ids: list[int]) -> None:
        now = self.hass.loop.time()
        due = [
            meter_id
            for meter_id in meter_ids
            if now - self._status_read_at.get(meter_id, 0.0) >= STATUS_REFRESH_S
        ]
        if due:
            self.config_entry.async_create_background_task(
                self.hass, self._async_read_statuses(due), f"{DOMAIN} meter status"
            )

    async def _async_read_statuses(self, meter_ids: list[int]) -> None:
        statuses: dict[int, dict[str, Any]] = {}
        for meter_id in meter_ids:
            self._status_read_at[meter_id] = self.hass.loop.time()
            with contextlib.suppress(LedgerError):
                statuses[meter_id] = await self.client.async_get(f"meters/{meter_id}/status")
        self._apply_limits(statuses)
        if statuses:
            self.async_set_updated_data(
                replace(self.data, meter_status={**self.data.meter_status, **statuses})
            )

    # ------------------------------------------------------------------ events in

    @callback
    def notify_account_event(self, account_id: int | None, kind: str, data: dict[str, Any]) -> None:
        """Fire ``prepaid_meter_<kind>`` on the bus and show it on the account's event entities."""
        event = {
            "config_entry_id": self.config_entry.entry_id,
            "account_id": account_id,
            "device_ids": self._account_devices(account_id),
            **data,
        }
        account = self.data.accounts.get(account_id) if account_id is not None else None
        exponent = (
            account.data.get("currency_exponent")
            if account is not None
            else data.get("currency_exponent")
        )
        if isinstance(data.get("amount_minor"), int) and isinstance(exponent, int):
            event["amount"] = str(minor_to_major(data["amount_minor"], exponent))
        self.hass.bus.async_fire(bus_event_type(kind), event)
        async_dispatcher_send(
            self.hass, account_event_signal(self.config_entry.entry_id), account_id, kind, event
        )

    def _account_devices(self, account_id: int | None) -> list[str]:
        """Devices (meters) of an account, so automations can tell which room it was."""
        registry = dr.async_get(self.hass)
        found = []
        for meter_id, subentry_id in self.meter_subentries.items():
            if self.data.meter_account.get(meter_id) != account_id:
                continue
            if device := registry.async_get_device_by_identifier(
                (DOMAIN, subentry_id), self.config_entry.entry_id
            ):
                found.append(device.id)
        return found

    def start_stream(self) -> None:
        """Hold the event stream open for as long as the entry is loaded."""
        self._stream_task = self.config_entry.async_create_background_task(
            self.hass, self._stream_forever(), f"{DOMAIN} event stream"
        )

    async def async_stop(self) -> None:
        """Stop the stream and any pending flush; the queue stays on disk."""
        self._cancel_outage_timer()
        ir.async_delete_issue(self.hass, DOMAIN, self.outage_issue_id)
        if self._flush_unsub is not None:
            self._flush_unsub()
            self._flush_unsub = None
        if self._stream_task is not None:
            self._stream_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stream_task
        await self.queue.async_save()

    async def _stream_forever(self) -> None:
        delay = RECONNECT_MIN_S
        while True:
            try:
                await self._read_stream()
                delay = RECONNECT_MIN_S
            except (
                LedgerError,
                OSError,
                TimeoutError,
                ValueError,
                asyncio.IncompleteReadError,
            ) as err:
                _LOGGER.debug("Event stream from %s ended: %s", self.client.url, err)
            except Exception as err:  # noqa: BLE001 - aiohttp raises many kinds; keep the loop
                _LOGGER.debug("Event stream from %s failed: %s", self.client.url, err)
            if self.stream_connected:
                _LOGGER.warning("Lost the event stream of the ledger at %s", self.client.url)
                self.stream_connected = False
                self.async_update_listeners()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _read_stream(self) -> None:
        after = "latest" if self.last_event_id is None else str(self.last_event_id)
        async with self.client.open_event_stream(after) as response:
            if response.status != 200:
                raise LedgerConnectionError(f"event stream: HTTP {response.status}")
            event_type, data_lines = "message", []
            async for raw in response.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event_type = line[6:].strip()
                elif line.startswith("data:"):
                    data_lines.append(line[5:].strip())
                elif not line and data_lines:
                    await self._handle_event(event_type, json.loads("\n".join(data_lines)))
                    event_type, data_lines = "message", []

    async def _handle_event(self, event_type: str, payload: dict[str, Any]) -> None:
        if event_type == "stream.hello":
            # From here on every change arrives as an event: read the state once, now.
            self.last_event_id = int(payload["last_event_id"])
            await self.async_refresh()
            if not self.last_update_success:
                raise LedgerConnectionError("could not read the accounts")
            if not self.stream_connected:
                _LOGGER.info("Following the ledger at %s", self.client.url)
            self.stream_connected = True
            self.async_update_listeners()
            if len(self.queue):
                await self.async_flush()
            return
        if event_type == "stream.reset":
            await self.async_refresh()
            return
        if isinstance(event_id := payload.get("id"), int):
            self.last_event_id = event_id
        self.events_received += 1
        if event_type == "alert" and payload.get("kind") == ORDER_NEEDS_ATTENTION:
            # Also for a payment no account of ours matches (a typo): a person must see it.
            order = order_attention.order_data(payload)
            order_attention.async_raise(
                self.hass, self.config_entry.entry_id, self.client.url, order
            )
            self.notify_account_event(order["account_id"], ORDER_NEEDS_ATTENTION, order)
        elif (
            event_type == "topup.updated"
            and payload.get("status") != "needs_attention"
            and isinstance(order_id := payload.get("order_id"), int)
        ):
            order_attention.async_resolved(self.hass, self.config_entry.entry_id, order_id)
        if event_type == "alert" and payload.get("kind") == "reading_held":
            if payload.get("meter_id") in self.meter_ids and isinstance(
                reading_id := payload.get("reading_id"), int
            ):
                held = {**self.data.held, reading_id: held_from_alert(payload)}
                self.async_set_updated_data(replace(self.data, held=held))
        elif event_type == "reading.resolved" and isinstance(
            reading_id := payload.get("reading_id"), int
        ):
            self.forget_held(reading_id)
            if payload.get("action") in ("accept", "rebase") and (
                payload.get("meter_id") in self.meter_ids
            ):
                # A person moved the meter's starting point: the total entity follows now.
                await self._async_read_statuses([int(payload["meter_id"])])
        account_id = payload.get("account_id")
        if account_id not in self.data.accounts:
            return
        if event_type == "account.updated":
            self._apply_account(
                account_id, {k: v for k, v in payload.items() if k not in ("id", "at")}
            )
        elif event_type == "topup.updated":
            current = self.data.accounts[account_id]
            self.async_set_updated_data(
                replace(
                    self.data,
                    accounts={
                        **self.data.accounts,
                        account_id: replace(current, last_topup=_order_from_event(payload)),
                    },
                )
            )
        if (mapped := from_ledger_event(event_type, payload)) is not None:
            self.notify_account_event(account_id, *mapped)


def guard_state(
    status: dict[str, Any],
) -> tuple[MeterLimits, Decimal | None, datetime | None] | None:
    """Read the guard's limits and the last accepted reading from a meter status."""
    limits = status.get("limits")
    if not isinstance(limits, dict) or limits.get("max_power") is None:
        return None  # an older ledger: the model's own limits stay
    try:
        modulus = limits.get("register_modulus")
        parsed = MeterLimits(
            Decimal(str(limits["max_power"])), None if modulus is None else Decimal(str(modulus))
        )
        value = None if status.get("last_value") is None else Decimal(str(status["last_value"]))
        at = None if status.get("last_at") is None else datetime.fromisoformat(status["last_at"])
    except ArithmeticError, ValueError, TypeError:
        return None
    return parsed, value, at


#: Readings go to the ledger in millionths (1 Wh / 1 ml is far below any meter's resolution).
READING_QUANTUM = Decimal("0.000001")


def ledger_value(value: Decimal) -> str:
    """Return a register value as the ledger takes it: a plain decimal, never an exponent.

    A float register can decode to ``1.4E-36`` (a torn read); ``str`` would send that in
    scientific notation, which the ledger refuses as malformed instead of judging it.
    """
    exact = Context(prec=80)  # a float32 reaches 3.4e38: 39 digits before the point
    return f"{value.quantize(READING_QUANTUM, rounding=ROUND_HALF_EVEN, context=exact):f}"


def _order_from_event(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": payload.get("order_id"),
        "account_id": payload.get("account_id"),
        "status": payload.get("status"),
        "amount_minor": payload.get("amount_minor"),
        "currency": payload.get("currency"),
        "updated_at": payload.get("at"),
    }


def _rejected_index(err: LedgerRequestError, size: int) -> int | None:
    """Which reading a 422 names (``readings[3].value``), if it names one in the batch."""
    if err.status != 422:
        return None
    message = str(err)
    start = message.find("readings[")
    if start < 0:
        return None
    digits = message[start + 9 : message.find("]", start)]
    if not digits.isdigit() or int(digits) >= size:
        return None
    return int(digits)
