"""How the ledger says no, and the exceptions its client raises.

Every refusal is ``{"error": {"code", "message", "field"?}}`` with a 4xx status; ``field`` names
the value at fault (``readings[3].value``) when there is one, so a client can set exactly that
value aside instead of reading the message.
"""

from __future__ import annotations

import re
from typing import Final

from prepaid_meter_contract.wire import WireModel


class ErrorDetail(WireModel):
    """What went wrong: a stable code, a message for people, the field at fault if any."""

    code: str
    message: str
    field: str | None = None


class ErrorBody(WireModel):
    """The body of every error response."""

    error: ErrorDetail


class LedgerError(Exception):
    """Base class for problems talking to the ledger."""


class LedgerConnectionError(LedgerError):
    """The ledger could not be reached or answered with something that is not the ledger API."""


class LedgerAuthError(LedgerError):
    """The ledger rejected the token."""


class LedgerRequestError(LedgerError):
    """The ledger refused a request (HTTP 4xx); code, message and field come from the ledger."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        """Keep the ledger's own error code, message and field."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.field = field

    def item_index(self, collection: str) -> int | None:
        """Return which item of a list in the request was refused (``readings[3].at`` -> 3)."""
        if self.field is None:
            return None
        found = _INDEX.match(self.field)
        if found is None or found["name"] != collection:
            return None
        return int(found["index"])


_INDEX: Final = re.compile(r"(?P<name>[a-z_]+)\[(?P<index>[0-9]+)\]")
