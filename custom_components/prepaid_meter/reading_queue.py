"""Readings on their way to the ledger: ordered, persisted before sending, bounded.

A reading is a meter's cumulative register, so the ledger charges the difference to the
previous one and ignores a re-sent reading. That makes the queue simple and safe: save it
before sending, drop what the ledger acknowledged, and after a crash send the rest again.
A reading that never arrives costs no money either (the next one covers its interval); the
bound therefore drops the oldest readings first and counts them.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from prepaid_meter_contract.readings import MAX_BATCH, Reading
from prepaid_meter_contract.wire import describe
from pydantic import ValidationError

from .const import DOMAIN

_LOGGER = logging.getLogger(__name__)

STORAGE_VERSION = 1
#: 13 hours of 32 meters polled every 30 s (6 days of 4). Past it the oldest readings go: that
#: costs no money, only how finely the outage's consumption is placed in time-of-use bands.
MAX_QUEUED = 50_000
#: A poll queues one reading per meter; a backlog (the ledger was unreachable) leaves in
#: batches of the most the ledger accepts, which it writes in parts of 500: the queue is
#: saved and each meter's state is read once per 5,000 readings, not per 500.
BATCH_SIZE = MAX_BATCH


@dataclass(slots=True)
class QueueStats:
    """What diagnostics show about the queue."""

    depth: int
    oldest_at: str | None
    dropped: int
    rejected: int
    last_rejection: str | None


class ReadingQueue:
    """A FIFO of readings for one ledger site, stored in Home Assistant's ``.storage``."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Bind the queue to the site's storage file."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.readings"
        )
        self._items: deque[Reading] = deque()
        self.dropped = 0
        self.rejected = 0
        self.last_rejection: str | None = None

    async def async_load(self) -> None:
        """Restore readings a previous run had not delivered."""
        stored = await self._store.async_load()
        if not stored:
            return
        self.dropped = int(stored.get("dropped", 0))
        for item in stored.get("readings", []):
            try:
                self._items.append(Reading.model_validate(item))
            except ValidationError as err:  # a damaged file: that reading is lost, not the rest
                _LOGGER.warning("Dropped a stored reading that is not valid: %s", err)
                self.dropped += 1

    def __len__(self) -> int:
        """Return how many readings are waiting."""
        return len(self._items)

    def add(self, meter_id: int, value: Decimal, at: datetime) -> None:
        """Append a reading; past the bound the oldest one goes (the next covers its interval).

        A reading the contract refuses (a garbage register with more digits than any meter
        has) is set aside here, as the ledger would refuse it.
        """
        try:
            reading = Reading(meter_id=meter_id, value=value, at=at)
        except ValidationError as err:
            self.rejected += 1
            self.last_rejection = describe(err).message()
            _LOGGER.error("Reading %s of ledger meter %s not sent: %s", value, meter_id, err)
            return
        self._items.append(reading)
        while len(self._items) > MAX_QUEUED:
            self._items.popleft()
            self.dropped += 1

    def head(self) -> list[Reading]:
        """Return the oldest readings, at most one batch, in order."""
        return [self._items[i] for i in range(min(BATCH_SIZE, len(self._items)))]

    def pending_meters(self) -> set[int]:
        """Ledger meters with readings not yet acknowledged."""
        return {item.meter_id for item in self._items}

    def acknowledge(self, count: int) -> None:
        """Drop the first ``count`` readings: the ledger has them."""
        for _ in range(count):
            self._items.popleft()

    def reject(self, index: int, message: str) -> None:
        """Drop one reading the ledger refused for good (e.g. its meter was deleted)."""
        del self._items[index]
        self.rejected += 1
        self.last_rejection = message

    async def async_save(self) -> None:
        """Write the queue to disk now (before sending, so a crash cannot lose a reading)."""
        await self._store.async_save(
            {
                "readings": [item.model_dump(mode="json") for item in self._items],
                "dropped": self.dropped,
            }
        )

    def stats(self) -> QueueStats:
        """Depth, age and losses, for diagnostics."""
        return QueueStats(
            depth=len(self._items),
            oldest_at=self._items[0].at.isoformat() if self._items else None,
            dropped=self.dropped,
            rejected=self.rejected,
            last_rejection=self.last_rejection,
        )
