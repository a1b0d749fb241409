"""Tests of the contract package shared by the integration and the ledger."""
