"""The HTTP API of the ledger service (aiohttp)."""
