"""Sliding-window rate limits kept in memory: what one client may do per window.

One process serves the ledger, so memory is the right place: no write per request (a database
row per refused request would itself be the flood). Memory is bounded: beyond ``max_keys``
the least recently used key is forgotten, which can only make a limit more lenient, never lock
anyone else out.
"""

from __future__ import annotations

from collections import OrderedDict, deque

MAX_TRACKED_KEYS = 4096


class SlidingWindow:
    """At most ``limit`` events per key in the last ``window_s`` seconds."""

    def __init__(self, limit: int, window_s: float, max_keys: int = MAX_TRACKED_KEYS) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            return deque()
        while events and events[0] <= now - self.window_s:
            events.popleft()
        return events

    def wait_s(self, key: str, now: float) -> float:
        """Seconds until ``key`` may have one more event (0 when it may now)."""
        events = self._recent(key, now)
        if len(events) < self.limit:
            return 0.0
        return events[0] + self.window_s - now

    def add(self, key: str, now: float) -> None:
        """Count one event for ``key`` (forgetting the least recently used key beyond the bound)."""
        events = self._recent(key, now)
        events.append(now)
        self._events[key] = events
        self._events.move_to_end(key)
        while len(self._events) > self.max_keys:
            self._events.popitem(last=False)

    def remove(self, key: str, at: float) -> None:
        """Take back the event counted at ``at`` (nothing was created after all)."""
        events = self._events.get(key)
        if events is not None and at in events:
            events.remove(at)

    def allow(self, key: str, now: float) -> bool:
        """Count one event for ``key`` if it is within the limit; return whether it was."""
        if self.wait_s(key, now) > 0:
            return False
        self.add(key, now)
        return True
