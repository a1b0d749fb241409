"""One ledger site, live: what the ledger says about the accounts of the site's meters.

``LedgerSync`` is the site's coordinator. Its data is the accounts of the linked meters
(balance, supply decision, last top-up), the meters' statuses (cost so far, current price, days
left) and the readings the ledger's guard holds. Two helpers feed it: ``ReadingPoster`` sends
the meters' readings and hands back each answer, ``EventFollower`` holds the ledger's event
stream open and hands over each event, so entities and relays react within milliseconds of a
payment. A full re-read every few minutes (and after every reconnect) is only the safety net.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Self

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util
from prepaid_meter_contract.client import LedgerClient
from prepaid_meter_contract.errors import LedgerConnectionError, LedgerError, LedgerRequestError
from prepaid_meter_contract.events import (
    AccountUpdated,
    OrderNeedsAttentionAlert,
    ReadingHeldAlert,
    ReadingResolved,
    Recorded,
    StreamEvent,
    TopupUpdated,
)
from prepaid_meter_contract.reading_guard import MeterLimits
from prepaid_meter_contract.readings import MeterIngest, ReadingsResult
from prepaid_meter_contract.resources import Account, MeterStatus, TopupOrder
from prepaid_meter_contract.vocabulary import OrderStatus, ResolveAction

from . import held_readings, order_attention
from .automation_events import (
    ORDER_NEEDS_ATTENTION,
    AutomationEvent,
    bus_event_type,
    from_ledger_event,
)
from .const import CONF_LEDGER_METER_ID, DOMAIN
from .coordinator import MeterCoordinator
from .event_stream import EventFollower
from .held_readings import Held
from .money import minor_to_major
from .problems import async_raise_problem
from .reading_poster import ReadingPoster
from .reading_queue import ReadingQueue

if TYPE_CHECKING:
    from . import PrepaidConfigEntry

_LOGGER = logging.getLogger(__name__)

#: Full re-read of accounts and meter statuses, in case an event was lost in a way we missed.
RESYNC_INTERVAL = timedelta(minutes=5)
#: Meter statuses (cost, price, days left) are re-read at most this often per meter.
STATUS_REFRESH_S = 30.0
#: An outage longer than this becomes a repair issue (shorter ones are routine restarts).
OUTAGE_REPAIR_AFTER = timedelta(minutes=5)
#: The account fields an ``account.updated`` event or a readings answer may change.
_ACCOUNT_FIELDS = frozenset(Account.model_fields)
#: What the stream adds to every event (its own id and time), not news about an account.
_STREAM_FIELDS = frozenset(Recorded.model_fields)


def account_event_signal(entry_id: str) -> str:
    """Dispatcher signal carrying (account_id, kind, data) to the event entities."""
    return f"{DOMAIN}_{entry_id}_account_event"


@dataclass(frozen=True, slots=True)
class LastTopUp:
    """An account's latest top-up order, as a sensor shows it."""

    order_id: int
    status: OrderStatus
    amount_minor: int
    at: datetime | None

    @classmethod
    def from_order(cls, order: TopupOrder) -> Self:
        """Read it from a listed order."""
        return cls(order.id, order.status, order.amount_minor, order.updated_at)

    @classmethod
    def from_event(cls, event: TopupUpdated) -> Self:
        """Read it from a ``topup.updated`` event."""
        return cls(event.order_id, event.status, event.amount_minor, event.at)


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account as the ledger last described it, and its latest top-up order."""

    data: Account
    last_topup: LastTopUp | None = None
    #: When the ledger last told us this account's state (a read, a push, a readings answer).
    as_of: datetime | None = None

    @property
    def supply_allowed(self) -> bool:
        """The ledger's supply decision."""
        return self.data.supply.allowed

    def merged(self, news: AccountUpdated | MeterIngest) -> AccountState | None:
        """Return the account with what ``news`` tells about it, or ``None`` if nothing changes.

        Only the account's fields the news really carries count, never the stream's own ``id``
        and ``at`` (an event's id is not the account's). Unchanged accounts keep their state
        object, so entities can tell news by identity.
        """
        names = (news.model_fields_set & _ACCOUNT_FIELDS) - _STREAM_FIELDS
        changes = {name: getattr(news, name) for name in names}
        if all(getattr(self.data, k) == v for k, v in changes.items()):
            return None
        return replace(self, data=self.data.model_copy(update=changes), as_of=dt_util.utcnow())


@dataclass(frozen=True, slots=True)
class SiteData:
    """Accounts by ledger account id, meter statuses and owners by ledger meter id."""

    accounts: dict[int, AccountState] = field(default_factory=dict)
    meter_status: dict[int, MeterStatus] = field(default_factory=dict)
    meter_account: dict[int, int] = field(default_factory=dict)
    #: Readings of followed meters the ledger's guard holds, by reading id.
    held: dict[int, Held] = field(default_factory=dict)


class LedgerSync(DataUpdateCoordinator[SiteData]):
    """The ledger's decisions about the site's accounts and meters, kept current."""

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
        self.poster = ReadingPoster(
            hass, entry, client, self._apply_ingest_result, self.async_update_listeners
        )
        self.stream = EventFollower(
            hass,
            entry,
            client,
            on_hello=self._async_read_state,
            on_connected=self._async_send_queued,
            on_reset=self.async_refresh,
            on_event=self._async_handle_event,
            on_change=self.async_update_listeners,
        )
        self._status_read_at: dict[int, float] = {}
        self.meter_subentries: dict[int, str] = {}
        #: Since when the ledger cannot be followed (None: it can); a repair issue after a while.
        self.unreachable_since: datetime | None = None
        self.outage_repair_after = OUTAGE_REPAIR_AFTER
        self._outage_unsub: CALLBACK_TYPE | None = None
        #: The coordinator of each followed ledger meter (its total is judged by its limits).
        self._followed: dict[int, MeterCoordinator] = {}

    # ------------------------------------------------------------------ the helpers' state

    @property
    def queue(self) -> ReadingQueue:
        """Readings on their way to the ledger."""
        return self.poster.queue

    @property
    def posting_ok(self) -> bool:
        """Whether the last batch of readings reached the ledger."""
        return self.poster.posting_ok

    @property
    def stream_connected(self) -> bool:
        """Whether the event stream is open (every change of the ledger reaches us)."""
        return self.stream.connected

    @property
    def last_event_id(self) -> int | None:
        """The id of the last event seen (the stream resumes after it)."""
        return self.stream.last_event_id

    @property
    def events_received(self) -> int:
        """How many events arrived since the site was loaded."""
        return self.stream.events_received

    async def async_flush(self) -> None:
        """Send the queued readings now."""
        await self.poster.async_flush()

    @callback
    def add_reading(self, meter_id: int, value: Decimal, at: datetime) -> None:
        """Queue a meter's cumulative register (sent with the poll cycle's batch)."""
        self.poster.add_reading(meter_id, value, at)

    def has_unsent(self, meter_id: int) -> bool:
        """Tell whether readings of this meter are queued or in flight (not yet decided on)."""
        return self.poster.has_unsent(meter_id)

    @property
    def ledger_ok(self) -> bool:
        """The ledger answers and its event stream is open: decisions are current."""
        return self.stream_connected and self.posting_ok and self.last_update_success

    def start_stream(self) -> None:
        """Hold the event stream open for as long as the entry is loaded."""
        self.stream.start()

    async def async_stop(self) -> None:
        """Stop the stream and any pending send; the queue stays on disk."""
        self._cancel_outage_timer()
        ir.async_delete_issue(self.hass, DOMAIN, self.outage_issue_id)
        await self.stream.async_stop()
        await self.poster.async_stop()

    # ------------------------------------------------------------------ reading the state

    async def _async_setup(self) -> None:
        await self.poster.async_load()

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
        statuses: dict[int, MeterStatus] = {}
        for meter_id in sorted(self.meter_ids):
            try:
                statuses[meter_id] = await self._read_status(meter_id)
            except LedgerRequestError as err:
                # A meter deleted in the ledger: its entities go unavailable, the rest carry on.
                _LOGGER.warning("Ledger meter %s: %s", meter_id, err)
        self._apply_limits(statuses)
        meter_account = {meter_id: status.account_id for meter_id, status in statuses.items()}
        accounts = {
            account_id: await self._read_account(account_id)
            for account_id in sorted(set(meter_account.values()))
        }
        await self._sync_orders_needing_attention(accounts)
        return SiteData(accounts, statuses, meter_account, await self._read_held())

    async def _read_status(self, meter_id: int) -> MeterStatus:
        self._status_read_at[meter_id] = self.hass.loop.time()
        return await self.client.async_meter_status(meter_id)

    async def _read_account(self, account_id: int) -> AccountState:
        account = await self.client.async_get_account(account_id)
        orders = await self.client.async_topups(account_id=account_id, limit=1)
        last = LastTopUp.from_order(orders[0]) if orders else None
        return AccountState(account, last, dt_util.utcnow())

    async def _read_held(self) -> dict[int, Held]:
        try:
            readings = await self.client.async_held_readings()
        except LedgerRequestError as err:
            # An older ledger, or a token that may not list them: no repair issues, no failure.
            _LOGGER.debug("Held readings not available: %s", err)
            return dict(self.data.held)
        return held_readings.followed(readings, self.meter_ids)

    async def _sync_orders_needing_attention(self, accounts: dict[int, AccountState]) -> None:
        """Raise (or clear) the repair issues of orders that need a person, from the ledger."""
        try:
            orders = await self.client.async_topups(status=OrderStatus.NEEDS_ATTENTION)
        except LedgerRequestError as err:
            _LOGGER.debug("Orders needing attention not available: %s", err)
            return
        # An order lists no minor-unit exponent; the site's accounts in that currency tell it.
        exponents = {a.data.currency: a.data.currency_exponent for a in accounts.values()}
        order_attention.async_sync(
            self.hass, self.config_entry.entry_id, self.client.url, orders, exponents
        )

    async def async_read_meters(self, meter_ids: list[int]) -> None:
        """Follow meters added while the site runs: read their status and account now.

        Only their data changes, so no other meter's entities or relay react. A meter the
        ledger cannot describe yet is read again by the next full re-read.
        """
        self.meter_ids.update(meter_ids)
        statuses: dict[int, MeterStatus] = {}
        accounts: dict[int, AccountState] = {}
        try:
            for meter_id in meter_ids:
                statuses[meter_id] = await self._read_status(meter_id)
            for account_id in sorted({status.account_id for status in statuses.values()}):
                accounts[account_id] = await self._read_account(account_id)
        except LedgerError as err:
            _LOGGER.warning("Ledger meters %s not read yet: %s", meter_ids, err)
        self._apply_limits(statuses)
        if statuses:
            owners = {meter_id: status.account_id for meter_id, status in statuses.items()}
            self.async_set_updated_data(
                replace(
                    self.data,
                    accounts={**self.data.accounts, **accounts},
                    meter_status={**self.data.meter_status, **statuses},
                    meter_account={**self.data.meter_account, **owners},
                )
            )

    @callback
    def _apply_limits(self, statuses: dict[int, MeterStatus]) -> None:
        """Give each followed meter its ledger meter's guard limits and last accepted reading."""
        for meter_id, status in statuses.items():
            if (meter := self._followed.get(meter_id)) is not None:
                meter.follow_ledger_limits(*guard_state(status))

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
        statuses: dict[int, MeterStatus] = {}
        for meter_id in meter_ids:
            with contextlib.suppress(LedgerError):
                statuses[meter_id] = await self._read_status(meter_id)
        self._apply_limits(statuses)
        if statuses:
            self.async_set_updated_data(
                replace(self.data, meter_status={**self.data.meter_status, **statuses})
            )

    # ------------------------------------------------------------------ meters followed

    @callback
    def follow_meter(self, meter: MeterCoordinator, meter_id: int) -> CALLBACK_TYPE:
        """Send the meter's register after every poll; judge its total by the ledger's limits."""
        self.meter_subentries[meter_id] = meter.subentry.subentry_id
        self._followed[meter_id] = meter
        return self.poster.follow_meter(meter, meter_id)

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
                held={k: v for k, v in data.held.items() if v.meter_id != meter_id},
            )
        )

    def account_of_meter(self, meter_id: int) -> AccountState | None:
        """Return the account a ledger meter belongs to, as last known."""
        if (account_id := self.data.meter_account.get(meter_id)) is None:
            return None
        return self.data.accounts.get(account_id)

    # ------------------------------------------------------------------ held readings

    @callback
    def sync_repair_issues(self) -> None:
        """One fixable repair issue per held reading of a followed meter (coordinator listener)."""
        entry = self.config_entry
        names = {
            int(subentry.data[CONF_LEDGER_METER_ID]): subentry.title
            for subentry in entry.subentries.values()
            if subentry.data.get(CONF_LEDGER_METER_ID) is not None
        }
        held_readings.async_sync_issues(self.hass, entry.entry_id, self.data.held, names)

    @callback
    def forget_held(self, reading_id: int) -> None:
        """Drop a reading a person has decided on (its issue goes with it)."""
        if reading_id in self.data.held:
            held = {k: v for k, v in self.data.held.items() if k != reading_id}
            self.async_set_updated_data(replace(self.data, held=held))

    # ------------------------------------------------------------------ reachability

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

    # ------------------------------------------------------------------ what the ledger says

    @callback
    def _apply_account(self, event: AccountUpdated) -> None:
        account_id = event.account_id
        current = self.data.accounts.get(account_id)
        if current is not None and (updated := current.merged(event)) is not None:
            self.async_set_updated_data(
                replace(self.data, accounts={**self.data.accounts, account_id: updated})
            )

    @callback
    def _apply_ingest_result(self, result: ReadingsResult) -> None:
        """Apply each account's new balance and supply decision from a readings answer."""
        accounts = dict(self.data.accounts)
        charged: list[int] = []
        for item in result.meters:
            current = accounts.get(item.account_id)
            if current is not None and (updated := current.merged(item)) is not None:
                accounts[item.account_id] = updated
            if item.charged_minor or item.standing_charged_minor:
                charged.append(item.meter_id)
        if accounts != self.data.accounts:
            self.async_set_updated_data(replace(self.data, accounts=accounts))
        self._refresh_statuses(charged)

    async def _async_read_state(self) -> None:
        """Read the state once when a stream (re)opens; every later change arrives as an event."""
        await self.async_refresh()
        if not self.last_update_success:
            raise LedgerConnectionError("could not read the accounts")

    async def _async_send_queued(self) -> None:
        if len(self.queue):
            await self.poster.async_flush()

    async def _async_handle_event(self, event: StreamEvent) -> None:
        """Apply one event of the ledger's stream to the site's state and tell automations."""
        match event:
            case OrderNeedsAttentionAlert():
                # Also for a payment no account of ours matches (a typo): a person must see it.
                order_attention.async_raise(
                    self.hass,
                    self.config_entry.entry_id,
                    self.client.url,
                    order_attention.AttentionOrder.from_alert(event),
                )
                self.notify_account_event(
                    event.account_id,
                    AutomationEvent(
                        ORDER_NEEDS_ATTENTION, order_attention.order_data(event), event.amount_minor
                    ),
                    exponent=event.currency_exponent,
                )
                return
            case TopupUpdated():
                if event.status != OrderStatus.NEEDS_ATTENTION:
                    order_attention.async_resolved(
                        self.hass, self.config_entry.entry_id, event.order_id
                    )
                if (current := self._followed_account(event.account_id)) is not None:
                    last = LastTopUp.from_event(event)
                    self.async_set_updated_data(
                        replace(
                            self.data,
                            accounts={
                                **self.data.accounts,
                                current.data.id: replace(current, last_topup=last),
                            },
                        )
                    )
            case ReadingHeldAlert() if event.meter_id in self.meter_ids:
                held = {**self.data.held, event.reading_id: Held.from_alert(event)}
                self.async_set_updated_data(replace(self.data, held=held))
            case ReadingResolved():
                self.forget_held(event.reading_id)
                moved = event.action in (ResolveAction.ACCEPT, ResolveAction.REBASE)
                if moved and event.meter_id in self.meter_ids:
                    # A person moved the meter's starting point: the total entity follows now.
                    await self._async_read_statuses([event.meter_id])
            case AccountUpdated():
                self._apply_account(event)
        account_id = getattr(event, "account_id", None)
        if self._followed_account(account_id) is None:
            return
        if (mapped := from_ledger_event(event)) is not None:
            self.notify_account_event(account_id, mapped)

    def _followed_account(self, account_id: int | None) -> AccountState | None:
        return None if account_id is None else self.data.accounts.get(account_id)

    # ------------------------------------------------------------------ telling automations

    @callback
    def notify_account_event(
        self, account_id: int | None, event: AutomationEvent, *, exponent: int | None = None
    ) -> None:
        """Fire ``prepaid_meter_<kind>`` on the bus and show it on the account's event entities.

        An amount is added in major units, in the account's currency (else ``exponent``'s).
        """
        data = {
            "config_entry_id": self.config_entry.entry_id,
            "account_id": account_id,
            "device_ids": self._account_devices(account_id),
            **event.data,
        }
        if (account := self._followed_account(account_id)) is not None:
            exponent = account.data.currency_exponent
        if event.amount_minor is not None and exponent is not None:
            data["amount"] = str(minor_to_major(event.amount_minor, exponent))
        self.hass.bus.async_fire(bus_event_type(event.kind), data)
        async_dispatcher_send(
            self.hass,
            account_event_signal(self.config_entry.entry_id),
            account_id,
            event.kind,
            data,
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


def guard_state(status: MeterStatus) -> tuple[MeterLimits, Decimal | None, datetime | None]:
    """Read the guard's limits and the last accepted reading from a meter status."""
    limits = MeterLimits(status.limits.max_power, status.limits.register_modulus)
    return limits, status.last_value, status.last_at
