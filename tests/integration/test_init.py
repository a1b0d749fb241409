"""Setting up and unloading a ledger site in a real Home Assistant."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.const import CONF_TOKEN, DOMAIN

from .conftest import LedgerSite


async def test_setup_and_unload(hass: HomeAssistant, site_entry: MockConfigEntry) -> None:
    site_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(site_entry.entry_id)
    await hass.async_block_till_done()
    assert site_entry.state is ConfigEntryState.LOADED
    assert site_entry.runtime_data.identity.ledger_id == site_entry.unique_id
    assert site_entry.runtime_data.identity.scope == "admin"

    assert await hass.config_entries.async_unload(site_entry.entry_id)
    assert site_entry.state is ConfigEntryState.NOT_LOADED


async def test_setup_retries_when_ledger_down(hass: HomeAssistant, socket_enabled: None) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, data={"url": "http://127.0.0.1:9", CONF_TOKEN: "x"}, unique_id="x"
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert "Could not reach the ledger" in str(entry.reason)


async def test_setup_starts_reauth_on_rejected_token(
    hass: HomeAssistant, ledger: LedgerSite
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, data={"url": ledger.url, CONF_TOKEN: "wrong"}, unique_id=ledger.ledger_id
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress()
    assert [f["context"]["source"] for f in flows] == ["reauth"]
