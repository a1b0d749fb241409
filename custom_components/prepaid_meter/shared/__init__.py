"""Pure rules both halves must apply identically, copied byte for byte from the ledger.

The integration (installed through HACS) and the ledger (an add-on image built from ``addon/``)
ship separately, so neither can import the other. The ledger's ``domain/reading_guard.py`` and
``domain/meter_ratings.py`` are the source; ``scripts/sync-shared`` copies them here and
``tests/test_shared_code.py`` fails when the copies differ, so the judgement of a reading in
Home Assistant can never drift from the one that decides what is charged.
"""
