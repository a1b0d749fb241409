"""A background loop's failed round: a busy database is one warning line, a bug its traceback."""

from __future__ import annotations

import logging

import pytest
from prepaid_ledger.services.loop_errors import log_round_failure
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

LOGGER = logging.getLogger("tests.loop")


def throw(error: BaseException) -> None:
    raise error


def raised(error: BaseException) -> BaseException:
    """Return ERROR as a loop catches it (raised, with its traceback)."""
    try:
        throw(error)
    except BaseException as caught:  # noqa: BLE001 - the point is to catch anything
        return caught
    raise AssertionError("not raised")


@pytest.mark.parametrize(
    "error",
    [
        PoolTimeoutError("QueuePool limit of size 5 overflow 5 reached, connection timed out"),
        OperationalError("INSERT ...", {}, Exception("database is locked")),
    ],
    ids=["pool-timeout", "sqlite-locked"],
)
def test_a_busy_database_is_one_warning_line(
    caplog: pytest.LogCaptureFixture, error: BaseException
) -> None:
    with caplog.at_level(logging.INFO, logger="tests.loop"):
        log_round_failure(LOGGER, "watchdog run", raised(error))
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert record.getMessage().startswith("watchdog run: database busy (")


def test_a_bug_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="tests.loop"):
        log_round_failure(LOGGER, "watchdog run", raised(KeyError("account")))
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.exc_info[0] is KeyError
    assert "Traceback" in caplog.text
