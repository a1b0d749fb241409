"""The Modbus hub manager shared by every config entry of this integration.

One manager per Home Assistant instance, so two ledger sites (or a config flow's test read)
never open a second session to a gateway or serial port that a running meter already uses.
"""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .modbus.connection import HubManager

HUB_MANAGER: HassKey[HubManager] = HassKey(f"{DOMAIN}_hubs")


def async_get_hub_manager(hass: HomeAssistant) -> HubManager:
    """Return the instance-wide hub manager, creating it on first use."""
    return hass.data.setdefault(HUB_MANAGER, HubManager())
