"""Prepaid Meter Ledger: exact prepaid accounting for Home Assistant prepaid meters."""

__version__ = "0.1.0"
