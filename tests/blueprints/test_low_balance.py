"""The low-balance blueprint: once per crossing, quiet hours, cut warnings, escalation.

The meter's entities are set as states (what the integration's sensors show); expected
notifications follow the blueprint's description, not its templates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.util import dt as dt_util

from tests.blueprints.conftest import sent_to, settle, use_blueprint

BALANCE, DAYS, SUPPLY = (
    "sensor.room_1_balance",
    "sensor.room_1_days_left",
    "binary_sensor.room_1_supply",
)
TENANT, LANDLORD = "notify.tenant_phone", "notify.landlord_phone"


def clock(offset: timedelta = timedelta()) -> str:
    """A local wall-clock time (HH:MM:SS) this far from now."""
    return (dt_util.now() + offset).strftime("%H:%M:%S")


async def set_balance(hass: HomeAssistant, value: float) -> None:
    hass.states.async_set(
        BALANCE, str(value), {"unit_of_measurement": "EUR", "device_class": "monetary"}
    )
    await settle(hass)


@pytest.fixture
async def room(hass: HomeAssistant) -> None:
    """A room at 20 EUR with 10 days left and supply on.

    Time runs for real here: quiet hours and escalation delays are set a second or two from
    now, so each wait ends by itself, as it would in a running Home Assistant.
    """
    await hass.config.async_set_time_zone("Europe/Berlin")
    await set_balance(hass, 20)
    hass.states.async_set(DAYS, "10")
    hass.states.async_set(SUPPLY, "on", {"changes_at": None})
    await hass.async_block_till_done()


async def setup(hass: HomeAssistant, **extra: object) -> None:
    """The blueprint with quiet hours that do not include now (unless a test says so)."""
    await use_blueprint(
        hass,
        "low_balance.yaml",
        {
            "balance": BALANCE,
            "days_left": DAYS,
            "supply_allowed": SUPPLY,
            "warning_level": 10,
            "critical_level": 3,
            "days_left_level": 3,
            "tenant": [TENANT],
            "message": "Pay at https://pay.example/room1",
            "quiet_start": clock(timedelta(hours=2)),
            "quiet_end": clock(timedelta(hours=3)),
        }
        | extra,
    )


async def wait_until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.mark.usefixtures("room")
async def test_once_per_level_crossed_and_again_only_after_a_top_up(
    hass: HomeAssistant, notifications: list[ServiceCall]
) -> None:
    await setup(hass)
    await set_balance(hass, 9.5)
    await set_balance(hass, 8)
    await set_balance(hass, 5)
    assert len(notifications) == 1
    targets, message = sent_to(notifications)[0]
    assert targets == [TENANT]
    assert "9.5 EUR is below 10.0 EUR" in message
    assert "Pay at https://pay.example/room1" in message
    await set_balance(hass, 2.5)
    assert len(notifications) == 2
    assert "below 3.0 EUR" in sent_to(notifications)[1][1]
    await set_balance(hass, 1)
    assert len(notifications) == 2
    await set_balance(hass, 25)  # a top-up lifts it above both levels
    await set_balance(hass, 9)
    assert len(notifications) == 3
    # Straight from above both levels to below both: both levels were crossed.
    await set_balance(hass, 30)
    await set_balance(hass, 1)
    assert len(notifications) == 5


@pytest.mark.usefixtures("room")
async def test_days_left_warning(hass: HomeAssistant, notifications: list[ServiceCall]) -> None:
    await setup(hass)
    hass.states.async_set(DAYS, "2.5")
    await settle(hass)
    (call,) = notifications
    assert "about 2.5 days of credit left" in call.data["message"]


@pytest.mark.usefixtures("room")
async def test_warns_before_a_scheduled_cut_with_its_time(
    hass: HomeAssistant, notifications: list[ServiceCall]
) -> None:
    await setup(hass)
    # 17:30 UTC on Monday 23 November 2026 is 18:30 in Berlin (CET, UTC+1).
    cut_at = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)
    hass.states.async_set(SUPPLY, "on", {"changes_at": cut_at.isoformat()})
    await settle(hass)
    (call,) = notifications
    assert call.data["title"] == "Supply cut scheduled"
    assert "supply will be cut at Mon 23 Nov 18:30" in call.data["message"]
    # A restore time while supply is off is not a cut warning.
    hass.states.async_set(SUPPLY, "off", {"changes_at": (cut_at + timedelta(hours=2)).isoformat()})
    await settle(hass)
    assert len(notifications) == 1


@pytest.mark.usefixtures("room")
async def test_quiet_hours_hold_a_warning_until_they_end(
    hass: HomeAssistant, notifications: list[ServiceCall]
) -> None:
    await setup(hass, quiet_start=clock(-timedelta(hours=1)), quiet_end=clock(timedelta(seconds=6)))
    await set_balance(hass, 9)
    assert notifications == []  # quiet for a few more seconds
    await wait_until(lambda: len(notifications) == 1)
    assert "9 EUR is below 10.0 EUR" in notifications[0].data["message"]


@pytest.mark.usefixtures("room")
async def test_a_top_up_in_the_quiet_hours_cancels_the_held_warning(
    hass: HomeAssistant, notifications: list[ServiceCall]
) -> None:
    await setup(hass, quiet_start=clock(-timedelta(hours=1)), quiet_end=clock(timedelta(seconds=6)))
    await set_balance(hass, 9)
    await set_balance(hass, 40)
    await asyncio.sleep(7)  # past the end of the quiet hours
    assert notifications == []
    assert hass.states.get("automation.low_balance").attributes["current"] == 0


@pytest.mark.usefixtures("room")
async def test_escalates_to_the_landlord_without_a_top_up(
    hass: HomeAssistant, notifications: list[ServiceCall]
) -> None:
    await setup(hass, landlord=[LANDLORD], escalate_after={"seconds": 5})
    await set_balance(hass, 9)
    assert [t for t, _ in sent_to(notifications)] == [[TENANT]]
    await wait_until(lambda: len(notifications) == 2)
    assert sent_to(notifications)[1][0] == [LANDLORD]
    assert "Balance now 9 EUR" in notifications[1].data["message"]


@pytest.mark.usefixtures("room")
async def test_no_escalation_when_the_tenant_tops_up_in_time(
    hass: HomeAssistant, notifications: list[ServiceCall]
) -> None:
    await setup(hass, landlord=[LANDLORD], escalate_after={"seconds": 5})
    await set_balance(hass, 9)
    await set_balance(hass, 30)
    await asyncio.sleep(6)
    assert [t for t, _ in sent_to(notifications)] == [[TENANT]]
    assert hass.states.get("automation.low_balance").attributes["current"] == 0
