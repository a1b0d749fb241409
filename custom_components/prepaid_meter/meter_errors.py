"""Typed errors of a meter's Modbus link, so callers can tell a dead gateway from a dead meter.

Names say what happened (``NoResponse``, ``RelayMismatch``) rather than carrying an ``Error``
suffix: they are the vocabulary the integration maps to form errors and repair issues.
"""

from __future__ import annotations

#: Exception codes of the Modbus application protocol, for readable messages.
EXCEPTION_NAMES: dict[int, str] = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


class MeterLinkError(Exception):
    """Base of every error a meter link raises."""


class EndpointUnreachable(MeterLinkError):  # noqa: N818
    """The gateway or serial port cannot be opened (refused, unplugged, rebooting)."""


class NoResponse(MeterLinkError):  # noqa: N818
    """The endpoint is up but this unit did not answer in time (or answered garbage)."""

    def __init__(self, unit_id: int, detail: str = "no response") -> None:
        super().__init__(f"unit {unit_id}: {detail}")
        self.unit_id = unit_id


class ExceptionResponse(MeterLinkError):  # noqa: N818
    """The unit answered with a Modbus exception code."""

    def __init__(self, unit_id: int, code: int, detail: str) -> None:
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(f"unit {unit_id}: refused with code {code} ({name}): {detail}")
        self.unit_id = unit_id
        self.code = code


class DecodeError(MeterLinkError):
    """Register words do not hold a valid value of the declared type (e.g. NaN)."""


class WrongProfile(MeterLinkError):  # noqa: N818
    """The unit answers, but not like the chosen meter profile describes."""


class RelayMismatch(MeterLinkError):  # noqa: N818
    """A relay write was accepted but the read-back shows a different state."""

    def __init__(self, unit_id: int, wanted_closed: bool, confirmed_closed: bool | None) -> None:
        wanted = "closed" if wanted_closed else "open"
        seen = {True: "closed", False: "open", None: "unknown"}[confirmed_closed]
        super().__init__(f"unit {unit_id}: relay should be {wanted} but reads back {seen}")
        self.unit_id = unit_id
        self.wanted_closed = wanted_closed
        self.confirmed_closed = confirmed_closed


class RelayNotConfigured(MeterLinkError):  # noqa: N818
    """The profile has no relay, or its relay module's unit id has not been set."""


class EndpointConflict(MeterLinkError):  # noqa: N818
    """One physical endpoint was requested with two incompatible configurations."""


class SerialSettingsConflict(EndpointConflict):
    """One serial port was requested with two different line settings."""
