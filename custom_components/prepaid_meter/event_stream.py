"""The ledger's events in: its stream held open for as long as the site is loaded.

Each connection starts with ``stream.hello``; the site then reads the whole state once and
applies every later event, so nothing falls between the read and the stream. A lost connection
is retried with a growing pause and resumed after the last event seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant
from prepaid_meter_contract.client import LedgerClient
from prepaid_meter_contract.errors import LedgerError
from prepaid_meter_contract.events import StreamEvent, StreamHello, StreamReset

from .const import DOMAIN

if TYPE_CHECKING:
    from . import PrepaidConfigEntry

_LOGGER = logging.getLogger(__name__)

RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 60.0


class EventFollower:
    """Follow one ledger's event stream; hand each event to the site."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: PrepaidConfigEntry,
        client: LedgerClient,
        *,
        on_hello: Callable[[], Awaitable[None]],
        on_connected: Callable[[], Awaitable[None]],
        on_reset: Callable[[], Awaitable[None]],
        on_event: Callable[[StreamEvent], Awaitable[None]],
        on_change: Callable[[], None],
    ) -> None:
        """Wire the follower to the site.

        ``on_hello`` reads the state (raising ``LedgerError`` if it cannot), ``on_connected``
        runs once the stream is followed, ``on_reset`` re-reads the state, ``on_event``
        applies one event, ``on_change`` tells listeners the connection changed.
        """
        self._hass = hass
        self._entry = entry
        self._client = client
        self._on_hello = on_hello
        self._on_connected = on_connected
        self._on_reset = on_reset
        self._on_event = on_event
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None
        #: Open and past its hello: every change of the ledger reaches us now.
        self.connected = False
        self.last_event_id: int | None = None
        self.events_received = 0

    def start(self) -> None:
        """Hold the stream open for as long as the entry is loaded."""
        self._task = self._entry.async_create_background_task(
            self._hass, self._forever(), f"{DOMAIN} event stream"
        )

    async def async_stop(self) -> None:
        """Close the stream."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _forever(self) -> None:
        delay = RECONNECT_MIN_S
        while True:
            try:
                await self._follow()
                delay = RECONNECT_MIN_S
            except (LedgerError, OSError, ValueError) as err:
                _LOGGER.debug("Event stream from %s ended: %s", self._client.url, err)
            except Exception as err:  # noqa: BLE001 - aiohttp raises many kinds; keep the loop
                _LOGGER.debug("Event stream from %s failed: %s", self._client.url, err)
            if self.connected:
                _LOGGER.warning("Lost the event stream of the ledger at %s", self._client.url)
                self.connected = False
                self._on_change()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _follow(self) -> None:
        after = "latest" if self.last_event_id is None else str(self.last_event_id)
        async for event in self._client.events(after):
            if isinstance(event, StreamHello):
                self.last_event_id = event.last_event_id
                await self._on_hello()
                if not self.connected:
                    _LOGGER.info("Following the ledger at %s", self._client.url)
                self.connected = True
                self._on_change()
                await self._on_connected()
            elif isinstance(event, StreamReset):
                await self._on_reset()
            else:
                if event.id is not None:
                    self.last_event_id = event.id
                self.events_received += 1
                await self._on_event(event)
