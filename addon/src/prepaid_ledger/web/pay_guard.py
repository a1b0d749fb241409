"""What the pay page remembers between checkout requests: limits, open sessions, one at a time.

A printed QR code is a pay link anyone can see; without these, a burst of checkout requests
would open a Stripe Checkout Session and a pending order each. Kept in memory (one ledger
process; lost on restart, when Stripe is asked again before a session is reused).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web

from prepaid_ledger.api.context import db_of
from prepaid_ledger.api.rate_limit import MAX_TRACKED_KEYS, SlidingWindow
from prepaid_ledger.store.database import Database

#: New Checkout Sessions one pay link may open per window.
LINK_SESSIONS = 5
#: New Checkout Sessions one client address may open per window (all its pay links together).
ADDRESS_SESSIONS = 10
WINDOW_S = 600.0


@dataclass
class OpenCheckout:
    """A Stripe Checkout Session this ledger opened (or saw open) and where to send the tenant."""

    url: str
    expires_at: datetime
    checked_at: float


@dataclass
class PayGuard:
    """What one running ledger remembers between checkout requests (lost on restart: fine)."""

    links: SlidingWindow = field(default_factory=lambda: SlidingWindow(LINK_SESSIONS, WINDOW_S))
    addresses: SlidingWindow = field(
        default_factory=lambda: SlidingWindow(ADDRESS_SESSIONS, WINDOW_S)
    )
    sessions: OrderedDict[str, OpenCheckout] = field(default_factory=OrderedDict)
    #: Sessions a tenant came back from as paid: never offered again.
    paid: OrderedDict[str, None] = field(default_factory=OrderedDict)
    locks: weakref.WeakValueDictionary[int, asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary
    )

    def lock(self, account_id: int) -> asyncio.Lock:
        """One checkout at a time per account, so a burst finds the session the first opened."""
        found = self.locks.get(account_id)
        if found is None:
            found = self.locks[account_id] = asyncio.Lock()
        return found

    def remember(self, session_id: str, checkout: OpenCheckout) -> None:
        """Keep an open session (bounded: the oldest is forgotten, Stripe still knows it)."""
        self.sessions[session_id] = checkout
        self.sessions.move_to_end(session_id)
        while len(self.sessions) > MAX_TRACKED_KEYS:
            self.sessions.popitem(last=False)

    def mark_paid(self, session_id: str) -> None:
        """Never offer SESSION_ID again: the tenant came back from it as paid."""
        if self.sessions.pop(session_id, None) is None:
            return  # not one of ours (or forgotten): Stripe is asked before any reuse
        self.paid[session_id] = None
        while len(self.paid) > MAX_TRACKED_KEYS:
            self.paid.popitem(last=False)


#: By the open Database of a ledger, which its private and public apps share (a started app takes
#: no new keys, LedgerState no weak references); an entry goes when its database does.
_GUARDS: weakref.WeakKeyDictionary[Database, PayGuard] = weakref.WeakKeyDictionary()


def guard_of(request: web.Request) -> PayGuard:
    """Return the pay page's state of the request's ledger, one for both of its listeners.

    Shared, so a burst split between the two neither doubles the limits nor opens two sessions.
    """
    db = db_of(request)
    found = _GUARDS.get(db)
    if found is None:
        found = _GUARDS[db] = PayGuard()
    return found


def link_key(token: str) -> str:
    """Rate-limit key of a pay link: a digest, so the in-memory table holds no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Reservation:
    """One new session counted against a link and an address (taken back if Stripe fails)."""

    link: str
    address: str
    at: float


def reserve(guard: PayGuard, token: str, address: str) -> Reservation | float:
    """Count one new session, or return the seconds to wait when a limit is reached."""
    now = time.monotonic()
    link = link_key(token)
    wait = max(guard.links.wait_s(link, now), guard.addresses.wait_s(address, now))
    if wait > 0:
        return wait
    guard.links.add(link, now)
    guard.addresses.add(address, now)
    return Reservation(link, address, now)
