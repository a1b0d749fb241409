"""The ledger-site config flow: user, add-on discovery, reauth and reconfigure, with every error."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from homeassistant.config_entries import SOURCE_HASSIO, SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.const import CONF_TOKEN, CONF_URL, DOMAIN

from .conftest import LedgerSite


async def _start_user_flow(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    return str(result["flow_id"])


async def test_user_flow_creates_entry(hass: HomeAssistant, ledger: LedgerSite) -> None:
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: ledger.url + "/", CONF_TOKEN: ledger.admin_token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_URL: ledger.url, CONF_TOKEN: ledger.admin_token}
    assert result["result"].unique_id == ledger.ledger_id


async def test_user_flow_errors_then_recovers(
    hass: HomeAssistant, ledger: LedgerSite, socket_enabled: None
) -> None:
    flow_id = await _start_user_flow(hass)
    cases = [
        ({CONF_URL: "http://127.0.0.1:9", CONF_TOKEN: ledger.admin_token}, "cannot_connect"),
        ({CONF_URL: ledger.url + "/nothing-here", CONF_TOKEN: "x"}, "cannot_connect"),
        ({CONF_URL: ledger.url, CONF_TOKEN: "wrong"}, "invalid_auth"),
        ({CONF_URL: ledger.url, CONF_TOKEN: ledger.tenant_token}, "insufficient_scope"),
    ]
    for user_input, error in cases:
        result = await hass.config_entries.flow.async_configure(flow_id, user_input)
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"base": error}, user_input
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: ledger.url, CONF_TOKEN: ledger.admin_token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


BAD_URLS = [
    "http://ledger:99999",  # port out of range: yarl raised outside the flow's error handling
    "http://ledger:0",
    "http://[::1",  # malformed IPv6 host: the same
    "ftp://ledger:8099",
    "ledger:8099",
    "http://",
]


@pytest.mark.parametrize("url", BAD_URLS)
async def test_user_flow_shows_invalid_url(
    hass: HomeAssistant, ledger: LedgerSite, url: str
) -> None:
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: url, CONF_TOKEN: ledger.admin_token}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_url"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: ledger.url, CONF_TOKEN: ledger.admin_token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize("url", BAD_URLS)
async def test_reconfigure_shows_invalid_url(
    hass: HomeAssistant, ledger: LedgerSite, site_entry: MockConfigEntry, url: str
) -> None:
    site_entry.add_to_hass(hass)
    before = dict(site_entry.data)
    result = await site_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: url, CONF_TOKEN: ledger.integration_token}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_url"}
    assert dict(site_entry.data) == before


async def test_user_flow_rejects_same_ledger_twice(
    hass: HomeAssistant, ledger: LedgerSite, site_entry: MockConfigEntry
) -> None:
    site_entry.add_to_hass(hass)
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: ledger.url, CONF_TOKEN: ledger.admin_token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


def _discovery(ledger: LedgerSite, token: str) -> HassioServiceInfo:
    host, port = ledger.url.removeprefix("http://").split(":")
    return HassioServiceInfo(
        config={"host": host, "port": int(port), CONF_TOKEN: token},
        name="Prepaid Meter Ledger",
        slug="prepaid_meter_ledger",
        uuid="1234",
    )


async def test_hassio_discovery_confirm(hass: HomeAssistant, ledger: LedgerSite) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=_discovery(ledger, ledger.admin_token)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "hassio_confirm"
    assert result["description_placeholders"] == {"url": ledger.url}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_URL: ledger.url, CONF_TOKEN: ledger.admin_token}


async def test_hassio_discovery_moves_the_url_and_keeps_a_working_hand_set_token(
    hass: HomeAssistant, ledger: LedgerSite
) -> None:
    """The user chose the narrower integration token; discovery must not widen it to admin."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=ledger.ledger_id,
        data={CONF_URL: "http://old-host:8099", CONF_TOKEN: ledger.integration_token},
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=_discovery(ledger, ledger.admin_token)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == {CONF_URL: ledger.url, CONF_TOKEN: ledger.integration_token}


async def test_hassio_discovery_with_the_same_token_just_moves_the_url(
    hass: HomeAssistant, ledger: LedgerSite
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=ledger.ledger_id,
        data={CONF_URL: "http://old-host:8099", CONF_TOKEN: ledger.admin_token},
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=_discovery(ledger, ledger.admin_token)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == {CONF_URL: ledger.url, CONF_TOKEN: ledger.admin_token}


@pytest.mark.parametrize("kind", ["revoked", "tenant"])
async def test_hassio_discovery_asks_before_the_admin_token_replaces_a_failing_one(
    hass: HomeAssistant, ledger: LedgerSite, kind: str
) -> None:
    """A token that fails at the new URL (or may not run a site) is replaced only on confirm."""
    old_token = "revoked-token" if kind == "revoked" else ledger.tenant_token
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=ledger.ledger_id,
        title="Prepaid Meter Ledger",
        data={CONF_URL: "http://old-host:8099", CONF_TOKEN: old_token},
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=_discovery(ledger, ledger.admin_token)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "hassio_token"
    assert result["description_placeholders"] == {
        "url": ledger.url,
        "title": "Prepaid Meter Ledger",
    }
    assert entry.data == {CONF_URL: "http://old-host:8099", CONF_TOKEN: old_token}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "discovery_token_accepted"
    assert entry.data == {CONF_URL: ledger.url, CONF_TOKEN: ledger.admin_token}


async def test_hassio_discovery_with_bad_token_aborts(
    hass: HomeAssistant, ledger: LedgerSite
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=_discovery(ledger, "wrong")
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "invalid_auth"


async def test_reauth(hass: HomeAssistant, ledger: LedgerSite) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=ledger.ledger_id, data={CONF_URL: ledger.url, CONF_TOKEN: "old"}
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: "still-wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: ledger.admin_token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_TOKEN] == ledger.admin_token


async def test_reauth_refuses_another_ledger(hass: HomeAssistant, ledger: LedgerSite) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id="another-ledger", data={CONF_URL: ledger.url, CONF_TOKEN: "old"}
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: ledger.admin_token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_ledger"
    assert entry.data[CONF_TOKEN] == "old"


async def test_reconfigure(
    hass: HomeAssistant, ledger: LedgerSite, site_entry: MockConfigEntry
) -> None:
    site_entry.add_to_hass(hass)
    result = await site_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: "http://127.0.0.1:9", CONF_TOKEN: ledger.admin_token}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: ledger.url + "/", CONF_TOKEN: ledger.integration_token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert site_entry.data == {CONF_URL: ledger.url, CONF_TOKEN: ledger.integration_token}


@pytest.fixture
async def other_service(socket_enabled: None) -> AsyncIterator[str]:
    """Some other HTTP service that is not a Prepaid Meter Ledger."""

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def whoami(_: web.Request) -> web.Response:
        return web.json_response({"scope": "admin"})

    async def listing(_: web.Request) -> web.Response:
        return web.json_response(["not", "an", "object"])

    app = web.Application()
    app.router.add_get("/a/api/v1/health", health)
    app.router.add_get("/a/api/v1/whoami", whoami)
    app.router.add_get("/b/api/v1/health", listing)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.mark.parametrize("path", ["/a", "/b"])
async def test_user_flow_refuses_a_service_that_is_not_the_ledger(
    hass: HomeAssistant, other_service: str, path: str
) -> None:
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: other_service + path, CONF_TOKEN: "x"}
    )
    assert result["errors"] == {"base": "cannot_connect"}


async def test_reconfigure_restarts_a_loaded_site_through_its_update_listener(
    hass: HomeAssistant, ledger: LedgerSite, site_entry: MockConfigEntry
) -> None:
    """A running site takes its new token by restarting, with no deprecated reload.

    Home Assistant 2026.12 refuses a flow's reload of an entry that has an update listener
    (2026.10 reports it, which ``tests/conftest.py`` turns into a failure).
    """
    site_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(site_entry.entry_id)
    await hass.async_block_till_done()
    old_client = site_entry.runtime_data.client
    assert site_entry.update_listeners
    result = await site_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: ledger.url, CONF_TOKEN: ledger.integration_token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert site_entry.state is ConfigEntryState.LOADED
    assert site_entry.runtime_data.client is not old_client
    assert site_entry.runtime_data.identity.scope == "integration"


@pytest.mark.parametrize(("host", "port"), [("", 8099), ("127.0.0.1", 0), ("127.0.0.1", 70000)])
async def test_hassio_discovery_with_unusable_address_aborts(
    hass: HomeAssistant, host: str, port: int
) -> None:
    """A discovery whose host and port cannot form a ledger URL ends at once, creating nothing."""
    info = HassioServiceInfo(
        config={"host": host, "port": port, CONF_TOKEN: "whatever"},
        name="Prepaid Meter Ledger",
        slug="prepaid_meter_ledger",
        uuid="1234",
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=info
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "invalid_url"
    assert hass.config_entries.async_entries(DOMAIN) == []
