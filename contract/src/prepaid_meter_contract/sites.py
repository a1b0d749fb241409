"""Sites: the buildings of a fleet, each with its own Home Assistant, on one ledger."""

from __future__ import annotations

from prepaid_meter_contract.wire import Text, Timestamp, WireModel


class SiteInput(WireModel):
    """``POST /api/v1/sites``: a building with its own Home Assistant."""

    name: Text


class Site(WireModel):
    """A site with how many accounts it has and how many of them are cut off now."""

    id: int
    name: str
    created_at: Timestamp
    accounts: int = 0
    supply_off: int = 0


class Sites(WireModel):
    """``GET /api/v1/sites``."""

    sites: list[Site]
