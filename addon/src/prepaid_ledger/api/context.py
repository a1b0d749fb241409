"""Typed access to what the application holds (database, settings, ledger id)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from prepaid_ledger.api.rate_limit import SlidingWindow
from prepaid_ledger.config import Settings
from prepaid_ledger.store.database import Database

if TYPE_CHECKING:  # these modules read the state: imported only for the annotation
    from prepaid_ledger.api.admission import AdmissionGate
    from prepaid_ledger.api.stream_tail import StreamTail
    from prepaid_ledger.backlog_worker import BacklogWorkers


@dataclass(slots=True)
class LedgerState:
    """What the application opens at startup (the app itself is frozen by then)."""

    db: Database | None = None
    ledger_id: str = ""
    # How many rejected webhooks are written per minute (api/webhooks.py, made on first use).
    rejection_log_limit: SlidingWindow | None = None
    # Open event streams per caller (api/stream.py caps them).
    open_streams: Counter[str] = field(default_factory=Counter)
    # Admission control shared by both listeners (api/admission.py; None: nothing queued).
    admission: AdmissionGate | None = None
    # The newest stream events, read once for every open stream (api/stream.py, first use).
    stream_tail: StreamTail | None = None
    # The processes that write backlogs (backlog_worker.py; None: written in this one).
    backlog_workers: BacklogWorkers | None = None


STATE_KEY = web.AppKey("ledger_state", LedgerState)
SETTINGS_KEY = web.AppKey("settings", Settings)


def state_of(app: web.Application) -> LedgerState:
    """Return the running state of an app."""
    return app[STATE_KEY]


def db_of(request: web.Request) -> Database:
    """Return the database of the app serving a request."""
    db = request.app[STATE_KEY].db
    if db is None:  # pragma: no cover - requests are only served after startup
        raise RuntimeError("ledger database is not open")
    return db


def settings_of(request: web.Request) -> Settings:
    """Return the settings of the app serving a request."""
    return request.app[SETTINGS_KEY]
