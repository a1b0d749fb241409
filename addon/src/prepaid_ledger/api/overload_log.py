"""Warnings about overload, at most one per kind per interval: a storm must not flood the log."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Final

#: Seconds between two warnings of the same kind; the ones in between are counted.
WARN_INTERVAL_S: Final = 10.0
_MAX_KINDS: Final = 256


class OverloadLog:
    """Log one warning per kind per ``interval_s``, saying how many were left out since."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = WARN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._left_out: Counter[str] = Counter()
        #: Every shed request and transient failure since start, per kind (for tests, metrics).
        self.counts: Counter[str] = Counter()

    def warn(self, kind: str, message: str) -> None:
        """Count one event of KIND; log MESSAGE unless KIND was logged within the interval."""
        now = self._clock()
        self.counts[kind] += 1
        last = self._last.get(kind)
        if last is not None and now - last < self.interval_s:
            self._left_out[kind] += 1
            return
        if len(self._last) >= _MAX_KINDS and kind not in self._last:
            self._last.clear()  # kinds are few (lanes, reasons); never grow without bound
        self._last[kind] = now
        left_out = self._left_out.pop(kind, 0)
        if left_out:
            self.logger.warning(
                "overload: %s (and %d more like it in the last %.0f s)",
                message,
                left_out,
                now - last if last is not None else self.interval_s,
            )
        else:
            self.logger.warning("overload: %s", message)


OVERLOAD_LOG: Final = OverloadLog(logging.getLogger("prepaid_ledger.overload"))
