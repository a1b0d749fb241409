"""Blueprints loaded by Home Assistant's own blueprint machinery, in a real `hass`."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import async_mock_service

BLUEPRINTS = Path(__file__).resolve().parents[2] / "blueprints" / "automation" / "prepaid_meter"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load prepaid_meter from custom_components."""


@pytest.fixture
def notifications(hass: HomeAssistant) -> list[ServiceCall]:
    """`notify.send_message` calls: the one part replaced (no phone to send to here)."""
    return async_mock_service(hass, "notify", "send_message")


async def use_blueprint(hass: HomeAssistant, name: str, inputs: dict[str, Any]) -> None:
    """Copy the blueprint where HA looks for it and create an automation from it."""
    target = Path(hass.config.path("blueprints", "automation", "prepaid_meter"))
    await hass.async_add_executor_job(_copy, BLUEPRINTS / name, target)
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "id": name.removesuffix(".yaml"),
                "alias": name.removesuffix(".yaml"),
                "use_blueprint": {"path": f"prepaid_meter/{name}", "input": inputs},
            }
        },
    )
    await hass.async_block_till_done()
    state = hass.states.get(f"automation.{name.removesuffix('.yaml')}")
    assert state is not None, "the blueprint did not validate"
    assert state.state == "on"


def sent_to(calls: list[ServiceCall]) -> list[tuple[list[str], str]]:
    """(targets, message) of each notification, in order."""
    result = []
    for call in calls:
        targets = call.data[ATTR_ENTITY_ID]
        result.append(
            ([targets] if isinstance(targets, str) else list(targets), call.data["message"])
        )
    return result


def _copy(source: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, folder / source.name)


async def settle(hass: HomeAssistant) -> None:
    """Let triggered runs proceed to their next wait.

    ``hass.async_block_till_done`` would wait for runs that are waiting for quiet hours to
    end or for a top-up, which is the point of these blueprints; so yield instead.
    """
    await asyncio.wait_for(_yield(), timeout=10)


async def _yield() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


# The live-room fixtures (a real ledger, a simulated meter, a configured entry).
from tests.integration.live_room import (  # noqa: E402
    ledger_backend,  # noqa: F401
    ledger_database_url,  # noqa: F401
    make_room,  # noqa: F401
)
from tests.ledger.conftest import postgres_server  # noqa: E402, F401
