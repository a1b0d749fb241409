"""The Prepaid Meter integration: Modbus meters as prepaid meters backed by the ledger add-on."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .const import CONF_TOKEN, CONF_URL, DOMAIN
from .ledger_client import LedgerAuthError, LedgerClient, LedgerConnectionError, LedgerIdentity

PLATFORMS: list[Platform] = []


@dataclass(slots=True)
class PrepaidRuntimeData:
    """What a loaded ledger site keeps while it runs."""

    client: LedgerClient
    identity: LedgerIdentity


type PrepaidConfigEntry = ConfigEntry[PrepaidRuntimeData]


async def async_setup_entry(hass: HomeAssistant, entry: PrepaidConfigEntry) -> bool:
    """Connect to the ledger site; retry later if it is down, ask for a new token if rejected."""
    client = LedgerClient(
        async_get_clientsession(hass), entry.data[CONF_URL], entry.data[CONF_TOKEN]
    )
    try:
        identity = await client.async_identify()
    except LedgerAuthError as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="invalid_auth"
        ) from err
    except LedgerConnectionError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"url": client.url, "error": str(err)},
        ) from err
    entry.runtime_data = PrepaidRuntimeData(client=client, identity=identity)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: PrepaidConfigEntry) -> bool:
    """Unload the site's platforms."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
