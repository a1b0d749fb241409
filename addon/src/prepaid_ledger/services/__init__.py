"""Ledger use cases: each function runs inside one database transaction it is given."""
