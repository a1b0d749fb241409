"""Pages the ledger serves to people: the tenant's pay page (and its stylesheet)."""
