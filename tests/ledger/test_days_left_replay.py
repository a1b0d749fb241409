"""Days left from the first hours, through the real ledger over HTTP, against the true run-out.

A household's week of load (tests/ledger/runout_model.py: an hourly profile with a morning and
an evening peak, a quiet day, a heavier weekend) is replayed as hourly readings on a
time-of-use tariff with a cheap night and a daily standing charge. After 1 hour, 6 hours,
1 day and 3 days of data, the days left the ledger shows are compared with the true run-out,
found independently by summing the model's cost forward hour by hour.

The ledger's clock is the real one, so each replay ends at the last whole hour; the account's
time zone (``Etc/GMT...``) is chosen so that the data begins at the wanted local hour.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.ledger.conftest import Ledger
from tests.ledger.runout_model import Household, days_between, tariff_body

pytestmark = pytest.mark.usefixtures("socket_enabled")
TOPUP_MINOR = 4000
#: Data since ... : (the most the days shown may exceed the true days left, the most they may
#: fall short), as fractions of the true days left, and the confidence the ledger must state.
CHECKPOINTS = {
    timedelta(hours=1): (Decimal("0.40"), Decimal("-0.75"), "low"),
    timedelta(hours=6): (Decimal("0.35"), Decimal("-0.60"), "medium"),
    timedelta(days=1): (Decimal("0.15"), Decimal("-0.15"), "medium"),
    # The average of the complete days so far (2, or 3 from midnight: then "high"): the
    # weekend ahead uses a quarter more than the days averaged, which no past average can know.
    timedelta(days=3): (Decimal("0.20"), Decimal("-0.15"), "medium"),
}
#: The local hours the replays begin at: night, morning peak, noon, evening peak.
START_HOURS = (0, 6, 12, 18)


def zone_starting_at(start_utc: datetime, local_hour: int) -> ZoneInfo:
    """A fixed-offset zone in which START_UTC (a whole UTC hour) is LOCAL_HOUR o'clock."""
    offset = (local_hour - start_utc.hour) % 24
    if offset > 14:
        offset -= 24
    # POSIX-style names: Etc/GMT-3 is three hours ahead of UTC.
    name = "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
    zone = ZoneInfo(name)
    assert start_utc.astimezone(zone).hour == local_hour
    return zone


async def replay(ledger: Ledger, span: timedelta, local_hour: int) -> tuple[Decimal, str, Decimal]:
    """Replay SPAN of the household from LOCAL_HOUR; return shown, confidence and true days."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - span
    tz = zone_starting_at(start, local_hour)
    household = Household(tz, start.astimezone(tz).date())
    tariff = await ledger.tariff(**tariff_body())
    account = await ledger.account(name=f"{span} from {local_hour}", timezone=str(tz))
    meter = await ledger.meter(account["id"], tariff["id"])
    await ledger.topup(account["id"], TOPUP_MINOR, f"replay-{span}-{local_hour}")
    readings = [
        {"meter_id": meter["id"], "value": str(value), "at": at.isoformat()}
        for at, value in household.readings(start, end)
    ]
    await ledger.ok("POST", "/api/v1/readings", json={"readings": readings})
    balance = await ledger.balance(account["id"])
    # The ledger charged what the model says the data cost (rounding: a cent per band).
    assert abs(TOPUP_MINOR - household.cost_so_far_minor(start, end) - balance) <= 3
    status = await ledger.ok("GET", f"/api/v1/meters/{meter['id']}/status")
    asked = datetime.now(UTC)
    view = await ledger.ok("GET", f"/api/v1/accounts/{account['id']}")
    assert (view["days_left"], view["days_left_confidence"]) == (
        status["days_left"],
        status["days_left_confidence"],
    )
    true = days_between(asked, household.true_runout(end, balance))
    return Decimal(status["days_left"]), status["days_left_confidence"], true


@pytest.mark.parametrize("local_hour", START_HOURS)
async def test_days_left_against_the_true_run_out(sqlite_ledger: Ledger, local_hour: int) -> None:
    """After 1 h, 6 h, 1 day and 3 days of data the days left stay inside the stated bound."""
    measured = []
    for span, (over, under, stated) in CHECKPOINTS.items():
        shown, said, true = await replay(sqlite_ledger, span, local_hour)
        error = (shown - true) / true
        measured.append((span, f"shown {shown} true {true:.2f} error {error:+.2f}"))
        # From midnight, 3 days of data are three complete local days: high.
        confidence = "high" if span == timedelta(days=3) and local_hour == 0 else stated
        assert said == confidence, (span, said)
        assert error <= over, measured  # never promises much more than the credit buys
        assert error >= under, measured
    print(local_hour, measured)
