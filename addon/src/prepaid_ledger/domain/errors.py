"""The one error type the domain raises for bad input, so the API can answer 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prepaid_meter_contract.wire import WireError


class InputError(ValueError):
    """Input that breaks a domain rule; carries a stable code and a human message.

    The service turns it into ``{"error": {"code": code, "message": message, "field": field}}``
    with a 4xx; ``field`` (``readings[3].at``) names the value at fault when there is one.
    """

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"InputError(code={self.code!r}, message={self.message!r})"


@contextmanager
def wire_rule(field: str) -> Iterator[None]:
    """Turn a contract rule's ``WireError`` into an ``InputError`` naming ``field``."""
    try:
        yield
    except WireError as err:
        raise InputError(err.code, err.message(field), field) from None
