"""Health, auth scopes, error format, OpenAPI, tariffs and accounts over real HTTP."""

from __future__ import annotations

import pytest

from tests.ledger.conftest import Ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def test_health_is_public_and_names_the_ledger(ledger: Ledger) -> None:
    status, body = await ledger.call("GET", "/api/v1/health", token=None)
    assert status == 200
    assert body["status"] == "ok"
    assert len(body["ledger_id"]) == 36
    # The ledger id is created once per database.
    _, again = await ledger.call("GET", "/api/v1/health", token=None)
    assert again["ledger_id"] == body["ledger_id"]


async def test_auth_scopes_and_error_format(ledger: Ledger) -> None:
    status, body = await ledger.call("GET", "/api/v1/whoami", token=None)
    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    status, body = await ledger.call("GET", "/api/v1/whoami", token="wrong")
    assert status == 401
    assert await ledger.ok("GET", "/api/v1/whoami") == {
        "scope": "admin",
        "account_id": None,
        "site_id": None,
    }

    account = await ledger.account()
    other = await ledger.account(name="Room 2")
    integration = await ledger.ok("POST", "/api/v1/tokens", json={"scope": "integration"})
    tenant = await ledger.ok(
        "POST", "/api/v1/tokens", json={"scope": "tenant", "account_id": account["id"]}
    )
    assert await ledger.ok("GET", "/api/v1/whoami", token=integration["token"]) == {
        "scope": "integration",
        "account_id": None,
        "site_id": 1,  # the landlord's own site, without one named
    }
    assert await ledger.ok("GET", "/api/v1/whoami", token=tenant["token"]) == {
        "scope": "tenant",
        "account_id": account["id"],
        "site_id": None,
    }
    # A tenant sees its own account only.
    await ledger.ok("GET", f"/api/v1/accounts/{account['id']}", token=tenant["token"])
    status, body = await ledger.call(
        "GET", f"/api/v1/accounts/{other['id']}", token=tenant["token"]
    )
    assert status == 403
    listed = await ledger.ok("GET", "/api/v1/accounts", token=tenant["token"])
    assert [a["id"] for a in listed["accounts"]] == [account["id"]]
    # The integration cannot create accounts.
    status, body = await ledger.call(
        "POST", "/api/v1/accounts", json={}, token=integration["token"]
    )
    assert status == 403
    assert body["error"]["code"] == "forbidden"
    # The integration posts readings and top-ups; a tenant can do neither.
    status, _ = await ledger.call(
        "POST",
        "/api/v1/topups",
        token=integration["token"],
        headers={"Idempotency-Key": "i1"},
        json={"account": account["id"], "amount_minor": 100},
    )
    assert status == 201
    for path in ("/api/v1/topups", "/api/v1/readings"):
        status, _ = await ledger.call(
            "POST", path, token=tenant["token"], headers={"Idempotency-Key": "t1"}, json={}
        )
        assert status == 403, path
    # Revoked tokens stop working.
    await ledger.ok("DELETE", f"/api/v1/tokens/{tenant['id']}")
    status, _ = await ledger.call("GET", "/api/v1/whoami", token=tenant["token"])
    assert status == 401


async def test_bad_input_is_a_clear_4xx(ledger: Ledger) -> None:
    status, body = await ledger.call(
        "POST", "/api/v1/accounts", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert body["error"]["code"] == "invalid_json"
    status, body = await ledger.call(
        "POST", "/api/v1/accounts", json={"name": "x", "currency": "EUR", "timezone": "Mars/Base"}
    )
    assert status == 422
    assert "timezone" in body["error"]["message"]
    status, body = await ledger.call("POST", "/api/v1/accounts", json=[1, 2])
    assert status == 422
    status, body = await ledger.call("GET", "/api/v1/accounts/abc")
    assert status == 422
    status, body = await ledger.call("GET", "/api/v1/accounts/999999")
    assert status == 404
    assert body["error"]["code"] == "not_found"
    status, body = await ledger.call("GET", "/api/v1/nothing-here")
    assert status == 404
    assert body["error"]["code"] == "not_found"
    status, body = await ledger.call("POST", "/api/v1/tariffs", json={"kind": "flat"})
    assert status == 422


async def test_openapi_document_is_public(ledger: Ledger) -> None:
    status, body = await ledger.call("GET", "/api/v1/openapi.json", token=None)
    assert status == 200
    assert body["openapi"].startswith("3.")
    assert "/api/v1/readings" in body["paths"]


async def test_tariff_versions_and_accounts(ledger: Ledger) -> None:
    tariff = await ledger.tariff(standing_charge_minor_per_day=12)
    assert tariff["kind"] == "flat"
    assert tariff["price"] == "0.25"
    changed = await ledger.ok(
        "POST",
        f"/api/v1/tariffs/{tariff['id']}/versions",
        json={
            "name": "Flat",
            "currency": "EUR",
            "unit": "kWh",
            "kind": "flat",
            "price": "0.30",
            "effective_from": "2030-01-01T00:00:00+00:00",
        },
    )
    assert [v["price"] for v in changed["versions"]] == ["0.25", "0.30"]
    assert changed["price"] == "0.25"  # the new price is not in effect yet
    status, _ = await ledger.call(
        "POST",
        f"/api/v1/tariffs/{tariff['id']}/versions",
        json={
            "name": "Flat",
            "currency": "USD",
            "unit": "kWh",
            "kind": "flat",
            "price": "0.30",
            "effective_from": "2031-01-01T00:00:00+00:00",
        },
    )
    assert status == 422

    account = await ledger.account(emergency_credit_minor=500, low_balance_minor=[1000, 200])
    assert account["number"].isdigit()
    assert account["balance_minor"] == 0
    assert account["emergency_credit_remaining_minor"] == 500
    assert account["debt_minor"] == 0
    assert set(account["supply"]) == {"allowed", "reason", "changes_at"}
    fetched = await ledger.ok("GET", f"/api/v1/accounts/{account['id']}")
    assert fetched["number"] == account["number"]


async def test_openapi_documents_every_route(ledger: Ledger) -> None:
    from prepaid_ledger.app import create_app  # noqa: PLC0415

    document = await ledger.ok("GET", "/api/v1/openapi.json", token=None)
    app = create_app(ledger.settings)
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.method != "HEAD"
        # The JSON API and webhooks; the HTML pages (landlord UI, pay page) are not part of it.
        and route.resource.canonical.startswith(("/api/", "/webhooks/"))
    }
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert served == documented


async def test_inputs_found_by_fuzzing_are_4xx(ledger: Ledger) -> None:
    status, body = await ledger.call(
        "POST", "/api/v1/tokens", json={"scope": "tenant", "account_id": -(10**30)}
    )
    assert status == 422  # an id is a positive integer: refused before any lookup
    assert body["error"]["field"] == "account_id"
    status, body = await ledger.call("GET", "/api/v1/accounts/%C2%B2")  # "²" is a digit
    assert status == 422
    status, body = await ledger.call(
        "POST",
        "/api/v1/accounts",
        data=b'{"name": "\\udb35", "currency": "EUR"}',
        headers={"Content-Type": "application/json"},
    )
    assert status == 422
    assert body["error"]["code"] == "invalid_unicode"
    status, body = await ledger.call("POST", "/api/v1/tariffs", json={"kind": {}})
    assert status == 422
    status, body = await ledger.call(
        "POST",
        "/api/v1/topups",
        headers={"Idempotency-Key": "huge"},
        json={"account": 10**40, "amount_minor": 100},
    )
    assert status == 404
