"""Typed errors of a meter's Modbus link, so callers can tell a dead gateway from a dead meter.

Names say what happened (``NoResponse``, ``RelayMismatch``) rather than carrying an ``Error``
suffix: they are the vocabulary the integration maps to form errors and repair issues.
"""

from __future__ import annotations

import modbus_connection as mc


class MeterLinkError(Exception):
    """Base of every error a meter link raises."""


class EndpointUnreachable(MeterLinkError):  # noqa: N818
    """The gateway or serial port cannot be opened (refused, unplugged, rebooting)."""


class NoResponse(MeterLinkError):  # noqa: N818
    """The endpoint is up but this unit did not answer in time (or answered garbage)."""

    def __init__(self, unit_id: int, detail: str = "no response") -> None:
        super().__init__(f"unit {unit_id}: {detail}")
        self.unit_id = unit_id


def _typed(error: mc.ModbusExceptionError) -> mc.ModbusExceptionError:
    """Return the library's typed exception for ``error``'s code (``IllegalFunctionError``, ...).

    The backends already raise those; a bare ``ModbusExceptionError`` with a standard code
    (raised by hand, e.g. by a test double) is rebuilt as its typed subclass.
    """
    if type(error) is not mc.ModbusExceptionError:
        return error
    return mc.ModbusExceptionError.from_code(error.exception_code, str(error), block=error.block)


class ExceptionResponse(MeterLinkError):  # noqa: N818
    """The unit answered with a Modbus exception code.

    ``error`` is ``modbus_connection``'s typed exception for it (``IllegalFunctionError``,
    ``ServerDeviceBusyError``, ...; the base ``ModbusExceptionError`` for a non-standard
    code): branch on its type rather than on ``code``.
    """

    def __init__(self, unit_id: int, error: mc.ModbusExceptionError) -> None:
        """Name the code as the library's ``ExceptionCode`` does ("illegal data address")."""
        error = _typed(error)
        code = error.exception_code
        if isinstance(code, mc.ExceptionCode):
            name = code.name.lower().replace("_", " ")
        else:
            name = "unknown exception"
        number = int(code or 0)
        super().__init__(f"unit {unit_id}: refused with code {number} ({name}): {error}")
        self.unit_id = unit_id
        self.code = number
        self.error = error


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
