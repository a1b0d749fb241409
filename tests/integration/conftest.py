"""Fixtures for the Home Assistant side: a real ledger over HTTP on 127.0.0.1."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.const import CONF_TOKEN, CONF_URL, DOMAIN


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/prepaid_meter in every test here."""


@dataclass
class LedgerSite:
    """A running ledger: where it is and the tokens it accepts."""

    url: str
    ledger_id: str
    admin_token: str
    integration_token: str
    tenant_token: str


@pytest.fixture
async def ledger(socket_enabled: None) -> AsyncIterator[LedgerSite]:
    """Serve the ledger's identity endpoints on a free loopback port.

    Stand-in until the ledger service lands: implements the documented contract of
    GET /api/v1/health and GET /api/v1/whoami.
    """
    site_info = LedgerSite(
        url="",
        ledger_id="3f1e8e8e-5b7e-4c43-9b55-0d7c1c0b2d11",
        admin_token=secrets.token_urlsafe(16),
        integration_token=secrets.token_urlsafe(16),
        tenant_token=secrets.token_urlsafe(16),
    )

    async def health(_: web.Request) -> web.Response:
        return web.json_response(
            {"status": "ok", "version": "0.1.0", "ledger_id": site_info.ledger_id}
        )

    async def whoami(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token == site_info.admin_token:
            return web.json_response({"scope": "admin", "account_id": None})
        if token == site_info.integration_token:
            return web.json_response({"scope": "integration", "account_id": None})
        if token == site_info.tenant_token:
            return web.json_response({"scope": "tenant", "account_id": 1})
        return web.json_response(
            {"error": {"code": "unauthorized", "message": "bad token"}}, status=401
        )

    app = web.Application()
    app.router.add_get("/api/v1/health", health)
    app.router.add_get("/api/v1/whoami", whoami)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    site_info.url = f"http://127.0.0.1:{port}"
    yield site_info
    await runner.cleanup()


@pytest.fixture
def site_entry(ledger: LedgerSite) -> MockConfigEntry:
    """A config entry for the running ledger (not yet added to hass)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Prepaid Meter Ledger",
        unique_id=ledger.ledger_id,
        data={CONF_URL: ledger.url, CONF_TOKEN: ledger.admin_token},
    )
