"""Readings out: each meter's register after every poll, one batch per poll cycle.

The queue is saved before a batch leaves, so a crash or an outage loses nothing; a reading the
ledger refuses for good (the field of its error names it) is set aside and the rest go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import TYPE_CHECKING

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later
from prepaid_meter_contract.client import LedgerClient
from prepaid_meter_contract.errors import LedgerError, LedgerRequestError
from prepaid_meter_contract.readings import ReadingsResult

from .const import DOMAIN
from .coordinator import MeterCoordinator
from .reading_queue import ReadingQueue

if TYPE_CHECKING:
    from . import PrepaidConfigEntry

_LOGGER = logging.getLogger(__name__)

#: Meters polled in one cycle finish within this of each other: one batch per cycle.
FLUSH_DELAY_S = 0.5
#: Readings go to the ledger in millionths (1 Wh / 1 ml is far below any meter's resolution).
READING_QUANTUM = Decimal("0.000001")


def ledger_value(value: Decimal) -> Decimal:
    """Return a register value as the ledger takes it: in millionths, sent without exponent.

    A float register can decode to ``1.4E-36`` (a torn read): quantized, it goes out as a plain
    decimal the ledger judges (and holds) instead of refusing it as malformed.
    """
    exact = Context(prec=80)  # a float32 reaches 3.4e38: 39 digits before the point
    return value.quantize(READING_QUANTUM, rounding=ROUND_HALF_EVEN, context=exact)


class ReadingPoster:
    """The site's queue of readings and the one task that sends it."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: PrepaidConfigEntry,
        client: LedgerClient,
        on_result: Callable[[ReadingsResult], None],
        on_change: Callable[[], None],
    ) -> None:
        """Send through ``client``; ``on_result`` takes each answer, ``on_change`` a new state."""
        self._hass = hass
        self._entry = entry
        self._client = client
        self._on_result = on_result
        self._on_change = on_change
        self.queue = ReadingQueue(hass, entry.entry_id)
        #: False since a batch failed to go out, until one does.
        self.posting_ok = True
        self._lock = asyncio.Lock()
        self._flush_unsub: CALLBACK_TYPE | None = None
        self._in_flight: set[int] = set()

    async def async_load(self) -> None:
        """Restore readings a previous run had not delivered."""
        await self.queue.async_load()

    @callback
    def follow_meter(self, meter: MeterCoordinator, meter_id: int) -> CALLBACK_TYPE:
        """Queue the meter's cumulative register after every successful poll."""
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
    def add_reading(self, meter_id: int, value: Decimal, at: datetime) -> None:
        """Queue a meter's cumulative register and send the cycle's batch shortly."""
        self.queue.add(meter_id, value, at)
        if self._flush_unsub is None:
            self._flush_unsub = async_call_later(self._hass, FLUSH_DELAY_S, self._flush_later)

    @callback
    def _flush_later(self, _now: datetime) -> None:
        self._flush_unsub = None
        self._entry.async_create_background_task(
            self._hass, self.async_flush(), f"{DOMAIN} post readings"
        )

    def has_unsent(self, meter_id: int) -> bool:
        """Tell whether readings of this meter are queued or in flight (not yet decided on)."""
        return meter_id in self._in_flight or meter_id in self.queue.pending_meters()

    async def async_flush(self) -> None:
        """Send queued readings in order until the queue is empty or the ledger fails."""
        async with self._lock:
            while len(self.queue):
                batch = self.queue.head()
                await self.queue.async_save()  # persisted before it leaves
                self._in_flight = {item.meter_id for item in batch}
                try:
                    result = await self._client.async_post_readings(batch)
                except LedgerRequestError as err:
                    index = err.item_index("readings")
                    if err.status != 422 or index is None or index >= len(batch):
                        self._failed(err)
                        return
                    _LOGGER.error("Ledger refused reading %s: %s", batch[index], err)
                    self.queue.reject(index, str(err))
                    continue
                except LedgerError as err:
                    self._failed(err)
                    return
                finally:
                    self._in_flight = set()
                self.queue.acknowledge(len(batch))
                if not self.posting_ok:
                    _LOGGER.info("Ledger at %s takes readings again", self._client.url)
                self.posting_ok = True
                self._on_result(result)
            await self.queue.async_save()

    def _failed(self, err: LedgerError) -> None:
        if self.posting_ok:
            _LOGGER.warning(
                "Readings kept for later (%d queued): ledger at %s: %s",
                len(self.queue),
                self._client.url,
                err,
            )
        self.posting_ok = False
        self._on_change()

    async def async_stop(self) -> None:
        """Cancel a pending send; the queue stays on disk."""
        if self._flush_unsub is not None:
            self._flush_unsub()
            self._flush_unsub = None
        await self.queue.async_save()
