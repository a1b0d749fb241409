"""The one error type the domain raises for bad input, so the API can answer 4xx."""

from __future__ import annotations


class InputError(ValueError):
    """Input that breaks a domain rule; carries a stable code and a human message.

    The service turns it into ``{"error": {"code": code, "message": message}}`` with a 4xx.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"InputError(code={self.code!r}, message={self.message!r})"
