"""Every error type of the ledger, in one place, each with the HTTP answer it becomes.

The domain and the services raise them; ``api/error_middleware.py`` turns each into the
contract's error body: ``InputError`` 422, ``NotFoundError`` 404, ``ConflictError`` 409,
``ApiError`` its own status.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prepaid_meter_contract.wire import WireError


class InputError(ValueError):
    """Input that breaks a domain rule; carries a stable code and a human message (HTTP 422).

    ``field`` (``readings[3].at``) names the value at fault when there is one.
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


class NotFoundError(Exception):
    """A referenced row does not exist (HTTP 404)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")
        self.message = f"{what} not found"


class ConflictError(Exception):
    """The request conflicts with the current state (HTTP 409)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ApiError(Exception):
    """An error with an explicit HTTP status (and headers, such as ``Retry-After``)."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class UnreadableFormError(Exception):
    """A form's body is not UTF-8 form data (a hostile or broken client)."""
