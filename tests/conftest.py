"""Settings shared by every test suite."""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterator

import pytest
from hypothesis import settings

# In CI, property tests replay the same generated examples every run, so a submission never
# fails by chance; a developer's run (no CI variable) keeps searching with fresh examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


class _UsageReports(logging.Handler):
    """Collects Home Assistant's reports of deprecated use by our integration."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if _OUR_USAGE.search(message):
            self.reports.append(message)


#: ``helpers.frame.report_usage`` ("Detected that custom integration 'prepaid_meter' ...") and
#: ``helpers.deprecation`` ("The deprecated function x was called from prepaid_meter. ...").
_OUR_USAGE = re.compile(r"Detected that custom integration|The deprecated .* from prepaid_meter\b")


@pytest.fixture(autouse=True)
def fail_on_usage_reports() -> Iterator[None]:
    """Fail any test in which Home Assistant reports a deprecated use by a custom integration.

    Such a report is logged once per process, the day a deprecation is introduced, and turns
    into an error in a later release (an update listener with a flow's reload broke in
    2026.12). Forgetting what was reported makes every test that triggers it fail, here.
    """
    frame = sys.modules.get("homeassistant.helpers.frame")
    if frame is not None:
        frame._REPORTED_INTEGRATIONS.clear()  # the once-per-process memory
    handler = _UsageReports()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    if handler.reports:
        pytest.fail("Home Assistant reported deprecated use:\n" + "\n".join(handler.reports))


@pytest.fixture(autouse=True)
def database_threads_end() -> Iterator[None]:
    """Wait (briefly) for the aiosqlite worker threads a test's ledgers started to end.

    aiosqlite's thread ends a moment after its connection closed; Home Assistant's test plugin,
    which fails a test that leaves a thread behind, would otherwise now and then see it still
    alive. This fixture is torn down after the test's own fixtures (the ledger closed its
    database) and before the plugin's check.
    """
    before = set(threading.enumerate())
    yield
    for thread in threading.enumerate():
        if thread not in before and "_connection_worker_thread" in thread.name:
            thread.join(timeout=5)
