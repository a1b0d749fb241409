"""How a background loop reports a failed round: busy is one line, a bug keeps its traceback.

Under load the database answers "no connection free in time", "database is locked" and the
like (store/transient.py). For a loop that simply runs again next round, that is a one-line
warning, not an error with a traceback in the log for every round of a busy hour.
"""

from __future__ import annotations

import logging

from prepaid_ledger.store.transient import overload_reason


def log_round_failure(logger: logging.Logger, what: str, error: BaseException) -> None:
    """Log a failed round of WHAT: a warning when the database was busy, else the traceback."""
    reason = overload_reason(error)
    if reason is not None:
        logger.warning("%s: database busy (%s); trying again next round", what, reason)
    else:
        logger.error("%s failed", what, exc_info=error)
