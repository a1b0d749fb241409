"""Pure accounting rules of the ledger: money, account numbers, tariffs and supply policy.

Nothing in this package does I/O; the service layer imports it and owns storage and HTTP.
"""
