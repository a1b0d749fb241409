"""Readings on their way to the ledger: ordered, persisted before sending, bounded.

A reading is a meter's cumulative register, so the ledger charges the difference to the
previous one and ignores a re-sent reading. That makes the queue simple and safe: save it
before sending, drop what the ledger acknowledged, and after a crash send the rest again.
A reading that never arrives costs no money either (the next one covers its interval); the
bound therefore drops the oldest readings first and counts them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .const import DOMAIN

STORAGE_VERSION = 1
#: 13 hours of 32 meters polled every 30 s (6 days of 4). Past it the oldest readings go: that
#: costs no money, only how finely the outage's consumption is placed in time-of-use bands.
MAX_QUEUED = 50_000
#: The ledger accepts up to 5000 readings per request; 500 is its normal batch.
BATCH_SIZE = 500


class QueuedReading(TypedDict):
    """One reading as the ledger's ``POST /api/v1/readings`` takes it."""

    meter_id: int
    value: str
    at: str


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
        self._items: deque[QueuedReading] = deque()
        self.dropped = 0
        self.rejected = 0
        self.last_rejection: str | None = None

    async def async_load(self) -> None:
        """Restore readings a previous run had not delivered."""
        stored = await self._store.async_load()
        if stored:
            self._items.extend(stored.get("readings", []))
            self.dropped = int(stored.get("dropped", 0))

    def __len__(self) -> int:
        """Return how many readings are waiting."""
        return len(self._items)

    def add(self, meter_id: int, value: str, at: datetime) -> None:
        """Append a reading; past the bound the oldest one goes (the next covers its interval)."""
        self._items.append({"meter_id": meter_id, "value": value, "at": at.isoformat()})
        while len(self._items) > MAX_QUEUED:
            self._items.popleft()
            self.dropped += 1

    def head(self) -> list[QueuedReading]:
        """Return the oldest readings, at most one batch, in order."""
        return [self._items[i] for i in range(min(BATCH_SIZE, len(self._items)))]

    def pending_meters(self) -> set[int]:
        """Ledger meters with readings not yet acknowledged."""
        return {item["meter_id"] for item in self._items}

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
        await self._store.async_save({"readings": list(self._items), "dropped": self.dropped})

    def stats(self) -> QueueStats:
        """Depth, age and losses, for diagnostics."""
        return QueueStats(
            depth=len(self._items),
            oldest_at=self._items[0]["at"] if self._items else None,
            dropped=self.dropped,
            rejected=self.rejected,
            last_rejection=self.last_rejection,
        )
