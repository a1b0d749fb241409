"""The money actions against the real ledger over HTTP: exact amounts, targets, every refusal.

Expected minor units are worked out by hand from ISO 4217 (EUR and most currencies 2 decimals,
JPY 0, KWD 3). After every refused call the ledger is read again to show nothing changed.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import aiohttp
import probatio
import pytest
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError, Unauthorized
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from prepaid_meter_contract.client import LedgerClient
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from custom_components.prepaid_meter.const import CONF_TOKEN, CONF_URL, DOMAIN
from custom_components.prepaid_meter.services import (
    ADJUST_BALANCE_SCHEMA,
    GET_STATEMENT_SCHEMA,
    SET_SUPPLY_OVERRIDE_SCHEMA,
    TOP_UP_SCHEMA,
)
from meter_simulator import MeterSimulator
from tests.integration.conftest import (
    ACREL_UNIT,
    HIKING_UNIT,
    LedgerSite,
    meter_subentry,
    tcp_meter,
)
from tests.ledger.webhook_helpers import (
    FakeStripe,
    checkout_completed,
    serve_fake_stripe,
    stripe_delivery,
)

STRIPE_SECRET = "whsec_actions_test"
#: Audit actions of the ledger that record money moving or an order changing.
MONEY_ACTIONS = {
    "topup.create",
    "topup.credit",
    "topup.fail",
    "topup.recheck",
    "topup.refund",
    "account.adjust",
    "voucher.redeem",
}
#: Price 0 so that readings, once they are posted, never move a balance these tests check.
FREE_TARIFF = {
    "name": "Free",
    "currency": "EUR",
    "unit": "kWh",
    "kind": "flat",
    "price": "0",
    "standing_charge_minor_per_day": 0,
}


@pytest.fixture
async def fake_stripe(socket_enabled: None) -> AsyncIterator[tuple[FakeStripe, str]]:
    """A local stand-in for Stripe's API (the only thing here that cannot run for real)."""
    async with serve_fake_stripe() as served:
        yield served


@pytest.fixture
def ledger_settings(fake_stripe: tuple[FakeStripe, str]) -> dict[str, Any]:
    """The ledger takes Stripe webhooks and may ask the fake Stripe API about orders."""
    return {
        "stripe_webhook_secret": STRIPE_SECRET,
        "stripe_api_key": "sk_test_actions",
        "stripe_api_base": fake_stripe[1],
    }


@dataclass
class Site:
    """A loaded ledger site with one linked and one unlinked meter, plus accounts to target."""

    entry: MockConfigEntry
    linked: str  # device id of Room 1, linked to a ledger meter
    unlinked: str  # device id of Room 3, not linked
    room: dict[str, Any]  # Room 1's account (EUR)
    jpy: dict[str, Any]
    kwd: dict[str, Any]


async def _load_site(
    hass: HomeAssistant, ledger: LedgerSite, sim: MeterSimulator, token: str
) -> Site:
    tariff = await ledger.call("POST", "/api/v1/tariffs", FREE_TARIFF)
    room = await ledger.call(
        "POST", "/api/v1/accounts", {"name": "Room 1", "currency": "EUR", "timezone": "UTC"}
    )
    meter = await ledger.call(
        "POST",
        "/api/v1/meters",
        {"account_id": room["id"], "tariff_id": tariff["id"], "name": "Room 1", "unit": "kWh"},
    )
    jpy = await ledger.call(
        "POST", "/api/v1/accounts", {"name": "Tokyo", "currency": "JPY", "timezone": "Asia/Tokyo"}
    )
    kwd = await ledger.call(
        "POST", "/api/v1/accounts", {"name": "Kuwait", "currency": "KWD", "timezone": "Asia/Kuwait"}
    )
    linked = meter_subentry(
        tcp_meter(sim, "Room 1", ACREL_UNIT, "acrel_ddsy1352", ledger_meter_id=meter["id"])
    )
    unlinked = meter_subentry(tcp_meter(sim, "Room 3", HIKING_UNIT, "hiking_dds238_2"))
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Prepaid Meter Ledger",
        unique_id=ledger.ledger_id,
        data={CONF_URL: ledger.url, CONF_TOKEN: token},
        subentries_data=[linked, unlinked],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    devices = dr.async_get(hass)
    ids = {}
    for subentry_id, subentry in entry.subentries.items():
        device = devices.async_get_device_by_identifier((DOMAIN, subentry_id), entry.entry_id)
        assert device is not None
        ids[subentry.title] = device.id
    return Site(entry, ids["Room 1"], ids["Room 3"], room, jpy, kwd)


@pytest.fixture
async def site(hass: HomeAssistant, ledger: LedgerSite, sim: MeterSimulator) -> AsyncIterator[Site]:
    """A site whose token is the ledger's admin token."""
    loaded = await _load_site(hass, ledger, sim, ledger.admin_token)
    yield loaded
    assert await hass.config_entries.async_unload(loaded.entry.entry_id)


@pytest.fixture
async def integration_site(
    hass: HomeAssistant, ledger: LedgerSite, sim: MeterSimulator
) -> AsyncIterator[Site]:
    """A site whose token has the integration scope."""
    loaded = await _load_site(hass, ledger, sim, ledger.integration_token)
    yield loaded
    assert await hass.config_entries.async_unload(loaded.entry.entry_id)


async def act(hass: HomeAssistant, service: str, data: dict[str, Any], **kwargs: Any) -> Any:
    """Call one of our actions and return its response."""
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True, **kwargs
    )


async def ledger_state(ledger: LedgerSite) -> Any:
    """Everything an action could change: balances, orders, the audit log of money moves.

    (Readings and relay changes write audit entries of their own while a test runs.)
    """
    accounts = await ledger.call("GET", "/api/v1/accounts")
    orders = await ledger.call("GET", "/api/v1/topups")
    audit = await ledger.call("GET", "/api/v1/audit")
    return (
        {a["id"]: a["balance_minor"] for a in accounts["accounts"]},
        orders["topups"],
        [e for e in audit["entries"] if e["action"] in MONEY_ACTIONS],
    )


async def refused(
    hass: HomeAssistant, ledger: LedgerSite, service: str, data: dict[str, Any], key: str
) -> ServiceValidationError:
    """Call an action that must be refused with ``key`` and must change nothing in the ledger."""
    before = await ledger_state(ledger)
    with pytest.raises(ServiceValidationError) as info:
        await act(hass, service, data)
    assert info.value.translation_domain == DOMAIN
    assert info.value.translation_key == key, info.value.translation_placeholders
    assert await ledger_state(ledger) == before
    return info.value


async def balance(ledger: LedgerSite, account_id: int) -> int:
    """An account's balance as the ledger reports it."""
    return int((await ledger.call("GET", f"/api/v1/accounts/{account_id}"))["balance_minor"])


# ------------------------------------------------------------------ which fields go together

Schema = Callable[[dict[str, Any]], dict[str, Any]]
BOTH = {"device_id": "a-device", "account": "7"}
OVERRIDE = {"device_id": "a-device", "supply": "on"}


@pytest.mark.parametrize(
    ("schema", "data", "key"),
    [
        (TOP_UP_SCHEMA, {"amount": "1"}, "target_required"),
        (TOP_UP_SCHEMA, BOTH | {"amount": "1"}, "target_required"),
        (TOP_UP_SCHEMA, {"device_id": "", "account": "", "amount": "1"}, "target_required"),
        (TOP_UP_SCHEMA, {"config_entry_id": "a-site", "amount": "1"}, "target_required"),
        (ADJUST_BALANCE_SCHEMA, {"amount": "1", "reason": "x"}, "target_required"),
        (ADJUST_BALANCE_SCHEMA, BOTH | {"amount": "1", "reason": "x"}, "target_required"),
        (GET_STATEMENT_SCHEMA, {}, "target_required"),
        (GET_STATEMENT_SCHEMA, BOTH | {"format": "csv"}, "target_required"),
        (
            SET_SUPPLY_OVERRIDE_SCHEMA,
            OVERRIDE | {"duration": {"hours": 1}, "until": "2030-01-01 00:00:00"},
            "override_duration_or_until",
        ),
    ],
)
def test_schema_refuses_fields_that_do_not_go_together(
    schema: Schema, data: dict[str, Any], key: str
) -> None:
    """The schemas refuse no target, two targets, or two ends of an override: our own words."""
    with pytest.raises(ServiceValidationError) as info:
        schema(data)
    assert (info.value.translation_domain, info.value.translation_key) == (DOMAIN, key)


@pytest.mark.parametrize(
    ("schema", "data", "validated"),
    [
        (TOP_UP_SCHEMA, {"device_id": "d", "amount": "1"}, {"device_id": "d", "amount": "1"}),
        (TOP_UP_SCHEMA, {"account": "7", "amount": 2}, {"account": "7", "amount": 2}),
        # An empty field, as a cleared form field sends it, is a field not given.
        (
            TOP_UP_SCHEMA,
            {"device_id": "", "account": "7", "config_entry_id": "", "amount": "1"},
            {"account": "7", "amount": "1"},
        ),
        (
            ADJUST_BALANCE_SCHEMA,
            {"device_id": "d", "account": "", "amount": "-1", "reason": "x"},
            {"device_id": "d", "amount": "-1", "reason": "x"},
        ),
        (GET_STATEMENT_SCHEMA, {"account": "7"}, {"account": "7", "format": "json"}),
        (SET_SUPPLY_OVERRIDE_SCHEMA, OVERRIDE, OVERRIDE),
        (
            SET_SUPPLY_OVERRIDE_SCHEMA,
            OVERRIDE | {"duration": {"hours": 1}},
            OVERRIDE | {"duration": timedelta(hours=1)},
        ),
    ],
)
def test_schema_takes_fields_that_go_together(
    schema: Schema, data: dict[str, Any], validated: dict[str, Any]
) -> None:
    assert schema(data) == validated


def test_schema_names_a_missing_field_before_the_targets() -> None:
    """A call without an amount is told so (a schema error, as before), not about targets."""
    with pytest.raises(probatio.Invalid, match="amount"):
        TOP_UP_SCHEMA(BOTH)


# --------------------------------------------------------------------------- top_up


async def test_top_up_by_meter_credits_exact_minor_units(
    hass: HomeAssistant, ledger: LedgerSite, site: Site
) -> None:
    order = await act(hass, "top_up", {"device_id": site.linked, "amount": "10.50"})
    assert order["amount_minor"] == 1050
    assert order["currency"] == "EUR"
    assert order["status"] == "succeeded"
    assert order["account_id"] == site.room["id"]
    assert await balance(ledger, site.room["id"]) == 1050
    # A number works the same (10.5 -> "10.5" -> 1050), and "10.500" is still exact cents.
    await act(hass, "top_up", {"device_id": site.linked, "amount": 10.5})
    await act(hass, "top_up", {"device_id": site.linked, "amount": "10.500"})
    assert await balance(ledger, site.room["id"]) == 3150
    # Without a reference every call is a new top-up: three orders.
    orders = (await ledger.call("GET", f"/api/v1/topups?account={site.room['id']}"))["topups"]
    assert [o["amount_minor"] for o in orders] == [1050, 1050, 1050]


async def test_top_up_retry_with_reference_credits_once(
    hass: HomeAssistant, ledger: LedgerSite, site: Site
) -> None:
    data = {"device_id": site.linked, "amount": "7.25", "reference": "receipt 0815"}
    first = await act(hass, "top_up", data)
    again = await act(hass, "top_up", data)
    assert again["id"] == first["id"]
    assert first["reference"] == "receipt 0815"
    assert await balance(ledger, site.room["id"]) == 725
    # The same reference for another amount is a different top-up: the ledger refuses it.
    err = await refused(hass, ledger, "top_up", data | {"amount": "7.26"}, "ledger_refused")
    placeholders = err.translation_placeholders or {}
    assert placeholders["code"] == "duplicate_reference"
    assert f"already used by order {first['id']}" in placeholders["message"]
    assert await balance(ledger, site.room["id"]) == 725


@pytest.mark.parametrize(
    ("currency", "amount", "minor"),
    [
        ("jpy", "500", 500),
        ("jpy", 500, 500),
        ("kwd", "1.234", 1234),
        ("kwd", "0.001", 1),
        ("kwd", "12", 12000),
    ],
)
async def test_top_up_uses_the_currency_exponent(
    hass: HomeAssistant, ledger: LedgerSite, site: Site, currency: str, amount: Any, minor: int
) -> None:
    account = getattr(site, currency)
    order = await act(hass, "top_up", {"account": str(account["id"]), "amount": amount})
    assert order["amount_minor"] == minor
    assert await balance(ledger, account["id"]) == minor


async def test_top_up_by_account_number(
    hass: HomeAssistant, ledger: LedgerSite, site: Site
) -> None:
    number = site.kwd["number"]
    grouped = f"{number[:3]} {number[3:6]}-{number[6:]}"
    order = await act(hass, "top_up", {"account": grouped, "amount": "0.5"})
    assert (order["account_id"], order["amount_minor"]) == (site.kwd["id"], 500)
    # One digit wrong: no such account (the check digit cannot match), nothing credited.
    typo = number[:-1] + str((int(number[-1]) + 1) % 10)
    await refused(
        hass, ledger, "top_up", {"account": typo, "amount": "1"}, "unknown_account_number"
    )


@pytest.mark.parametrize(
    ("amount", "key"),
    [
        ("10.505", "amount_too_precise"),  # EUR has 2 decimals
        (0.1 + 0.2, "amount_too_precise"),  # 0.30000000000000004
        ("0.001", "amount_too_precise"),
        ("nan", "invalid_amount"),
        ("NaN", "invalid_amount"),
        (float("nan"), "invalid_amount"),
        ("inf", "invalid_amount"),
        (float("inf"), "invalid_amount"),
        ("-Infinity", "invalid_amount"),
        ("1e3", "invalid_amount"),
        ("10,50", "invalid_amount"),
        ("", "invalid_amount"),
        ("ten", "invalid_amount"),
        ("1_000", "invalid_amount"),
        ("\u0661\u0660", "invalid_amount"),  # Arabic-Indic digits: Decimal() would take them
        (True, "invalid_amount"),
        ("9" * 40, "invalid_amount"),
        (1e300, "invalid_amount"),  # str() is "1e+300"
        ("1000000000000", "amount_too_large"),
        ("0", "amount_not_positive"),
        ("0.00", "amount_not_positive"),
        ("-5", "amount_not_positive"),
        (-0.01, "amount_not_positive"),
    ],
)
async def test_top_up_bad_amount_changes_nothing(
    hass: HomeAssistant, ledger: LedgerSite, site: Site, amount: Any, key: str
) -> None:
    await refused(hass, ledger, "top_up", {"device_id": site.linked, "amount": amount}, key)
    assert await balance(ledger, site.room["id"]) == 0


async def test_top_up_jpy_refuses_decimals(
    hass: HomeAssistant, ledger: LedgerSite, site: Site
) -> None:
    err = await refused(
        hass,
        ledger,
        "top_up",
        {"account": str(site.jpy["id"]), "amount": "500.5"},
        "amount_too_precise",
    )
    assert err.translation_placeholders == {"amount": "500.5", "currency": "JPY", "decimals": "0"}
    await refused(
        hass,
        ledger,
        "top_up",
        {"account": str(site.kwd["id"]), "amount": "1.2345"},
        "amount_too_precise",
    )


async def test_top_up_over_the_ledger_cap_shows_the_ledger_message(
    hass: HomeAssistant, ledger: LedgerSite, site: Site
) -> None:
    # The ledger's default cap is 1 000 000 minor units: 10000.00 EUR passes, 10000.01 not.
    err = await refused(
        hass, ledger, "top_up", {"device_id": site.linked, "amount": "10000.01"}, "ledger_refused"
    )
    assert (err.translation_placeholders or {})["message"] == "amount_minor must be at most 1000000"
    order = await act(hass, "top_up", {"device_id": site.linked, "amount": "10000"})
    assert order["amount_minor"] == 1_000_000


async def test_targets_that_do_not_resolve(
    hass: HomeAssistant, ledger: LedgerSite, site: Site
) -> None:
    amount = {"amount": "1"}
    await refused(hass, ledger, "top_up", amount, "target_required")
    await refused(
        hass,
        ledger,
        "top_up",
        amount | {"device_id": site.linked, "account": str(site.room["id"])},
        "target_required",
    )
    await refused(hass, ledger, "top_up", amount | {"device_id": "no-such-device"}, "not_a_meter")
    foreign = dr.async_get(hass).async_get_or_create(
        config_entry_id=site.entry.entry_id, identifiers={("other_domain", "x")}
    )
    await refused(hass, ledger, "top_up", amount | {"device_id": foreign.id}, "not_a_meter")
    err = await refused(
        hass, ledger, "top_up", amount | {"device_id": site.unlinked}, "meter_not_linked"
    )
    assert err.translation_placeholders == {"meter": "Room 3"}
    await refused(hass, ledger, "top_up", amount | {"account": "room one"}, "invalid_account")
    err = await refused(hass, ledger, "top_up", amount | {"account": "9999"}, "ledger_refused")
    assert (err.translation_placeholders or {})["code"] == "not_found"
    await refused(
        hass,
        ledger,
        "top_up",
        amount | {"account": "1", "config_entry_id": "nope"},
        "unknown_site",
    )
    other_integration = MockConfigEntry(domain="other_domain", title="Not a ledger")
    other_integration.add_to_hass(hass)
    err = await refused(
        hass,
        ledger,
        "top_up",
        amount | {"account": "1", "config_entry_id": other_integration.entry_id},
        "unknown_site",
    )
    assert err.translation_placeholders == {"config_entry_id": other_integration.entry_id}


async def test_every_account_action_takes_exactly_one_target(
    hass: HomeAssistant, ledger: LedgerSite, site: Site
) -> None:
    both = {"device_id": site.linked, "account": str(site.room["id"])}
    for service, data in (
        ("top_up", {"amount": "1"}),
        ("adjust_balance", {"amount": "1", "reason": "x"}),
        ("get_statement", {}),
    ):
        await refused(hass, ledger, service, data, "target_required")
        await refused(hass, ledger, service, data | both, "target_required")
        blank = {"device_id": "", "account": ""}
        await refused(hass, ledger, service, data | blank, "target_required")
    # Empty fields, as a cleared form sends them, are fields not given.
    order = await act(
        hass,
        "top_up",
        {"device_id": "", "account": str(site.jpy["id"]), "config_entry_id": "", "amount": 5},
    )
    assert (order["account_id"], order["amount_minor"]) == (site.jpy["id"], 5)
    result = await act(hass, "get_statement", {"device_id": site.linked, "account": ""})
    assert result["account_id"] == site.room["id"]


async def test_several_sites_need_a_site_for_an_account(
    hass: HomeAssistant, ledger: LedgerSite, site: Site
) -> None:
    other = MockConfigEntry(
        domain=DOMAIN,
        title="Second site",
        unique_id="second",
        data={CONF_URL: ledger.url, CONF_TOKEN: ledger.admin_token},
    )
    other.add_to_hass(hass)
    assert await hass.config_entries.async_setup(other.entry_id)
    account = {"account": str(site.room["id"]), "amount": "1"}
    await refused(hass, ledger, "top_up", account, "site_ambiguous")
    # The device says which site it belongs to; naming another one is refused.
    await refused(
        hass,
        ledger,
        "top_up",
        {"device_id": site.linked, "amount": "1", "config_entry_id": other.entry_id},
        "site_mismatch",
    )
    await act(hass, "top_up", account | {"config_entry_id": site.entry.entry_id})
    await act(hass, "top_up", {"device_id": site.linked, "amount": "1"})
    assert await balance(ledger, site.room["id"]) == 200
    assert await hass.config_entries.async_unload(other.entry_id)
    await refused(
        hass, ledger, "top_up", account | {"config_entry_id": other.entry_id}, "site_not_loaded"
    )


async def test_unreachable_ledger_is_an_error_not_a_validation_error(
    hass: HomeAssistant, ledger: LedgerSite, site: Site
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runtime = site.entry.runtime_data
    runtime.client = LedgerClient(
        async_get_clientsession(hass), f"http://127.0.0.1:{port}", ledger.admin_token
    )
    with pytest.raises(HomeAssistantError) as info:
        await act(hass, "top_up", {"device_id": site.linked, "amount": "1"})
    assert not isinstance(info.value, ServiceValidationError)
    assert info.value.translation_key == "ledger_unavailable"
    assert await balance(ledger, site.room["id"]) == 0


async def test_money_actions_need_a_home_assistant_admin(
    hass: HomeAssistant, ledger: LedgerSite, site: Site, hass_read_only_user: MockUser
) -> None:
    assert not hass_read_only_user.is_admin
    for service, data in (
        ("top_up", {"device_id": site.linked, "amount": "1"}),
        ("adjust_balance", {"device_id": site.linked, "amount": "1", "reason": "x"}),
    ):
        with pytest.raises(Unauthorized):
            await act(hass, service, data, context=Context(user_id=hass_read_only_user.id))
    assert await balance(ledger, site.room["id"]) == 0


async def test_top_up_with_integration_token(
    hass: HomeAssistant, ledger: LedgerSite, integration_site: Site
) -> None:
    order = await act(hass, "top_up", {"device_id": integration_site.linked, "amount": "3"})
    assert order["amount_minor"] == 300
    assert await balance(ledger, integration_site.room["id"]) == 300


# --------------------------------------------------------------------------- adjust_balance


async def test_adjust_balance_signed(hass: HomeAssistant, ledger: LedgerSite, site: Site) -> None:
    await act(hass, "top_up", {"device_id": site.linked, "amount": "10"})
    result = await act(
        hass,
        "adjust_balance",
        {"device_id": site.linked, "amount": "-2.40", "reason": "meter swap"},
    )
    assert (result["amount_minor"], result["reason"]) == (-240, "meter swap")
    assert await balance(ledger, site.room["id"]) == 760
    await act(
        hass, "adjust_balance", {"account": str(site.jpy["id"]), "amount": 3, "reason": "gift"}
    )
    assert await balance(ledger, site.jpy["id"]) == 3
    statement = await ledger.call("GET", f"/api/v1/accounts/{site.room['id']}/statement")
    assert [a["amount_minor"] for a in statement["adjustments"]] == [-240]
    assert statement["adjustments"][0]["description"] == "meter swap"


@pytest.mark.parametrize(
    ("amount", "reason", "key"),
    [
        ("0", "why", "amount_not_zero"),
        ("-0.00", "why", "amount_not_zero"),
        ("-2.405", "why", "amount_too_precise"),
        ("-nan", "why", "invalid_amount"),
        ("-1000000000000", "why", "amount_too_large"),
        ("1", "   ", "text_required"),
    ],
)
async def test_adjust_balance_bad_input_changes_nothing(
    hass: HomeAssistant, ledger: LedgerSite, site: Site, amount: str, reason: str, key: str
) -> None:
    await refused(
        hass,
        ledger,
        "adjust_balance",
        {"device_id": site.linked, "amount": amount, "reason": reason},
        key,
    )


async def test_adjust_balance_over_the_ledger_cap(
    hass: HomeAssistant, ledger: LedgerSite, site: Site
) -> None:
    err = await refused(
        hass,
        ledger,
        "adjust_balance",
        {"device_id": site.linked, "amount": "-10000.01", "reason": "x"},
        "ledger_refused",
    )
    assert "amount_minor" in (err.translation_placeholders or {})["message"]


async def test_adjust_balance_needs_an_admin_token(
    hass: HomeAssistant, ledger: LedgerSite, integration_site: Site
) -> None:
    err = await refused(
        hass,
        ledger,
        "adjust_balance",
        {"device_id": integration_site.linked, "amount": "5", "reason": "goodwill"},
        "admin_token_required",
    )
    assert (err.translation_placeholders or {})["scope"] == "integration"
    assert "admin token" in str(err)


# --------------------------------------------------------------------------- refresh_top_up


async def processing_order(ledger: LedgerSite, account_id: int, amount: int) -> tuple[int, Any]:
    """A Stripe payment whose money is not final yet (a signed webhook to the real ledger)."""
    event = checkout_completed(account_id, amount, payment_status="unpaid")
    body, headers = stripe_delivery(event, secret=STRIPE_SECRET)
    async with (
        aiohttp.ClientSession() as http,
        http.post(ledger.url + "/webhooks/stripe", data=body, headers=headers) as response,
    ):
        result = await response.json()
    assert result["outcome"] == "processing", result
    return result["order_id"], event["data"]["object"]


async def test_refresh_top_up_credits_a_paid_order(
    hass: HomeAssistant,
    ledger: LedgerSite,
    integration_site: Site,
    fake_stripe: tuple[FakeStripe, str],
) -> None:
    fake, _ = fake_stripe
    account_id = integration_site.room["id"]
    order_id, checkout = await processing_order(ledger, account_id, 1250)
    fake.sessions[checkout["id"]] = checkout
    still = await act(hass, "refresh_top_up", {"order_id": order_id})
    assert (still["status"], still["provider_status"]) == ("processing", "complete/unpaid")
    assert await balance(ledger, account_id) == 0
    fake.sessions[checkout["id"]] = checkout | {"payment_status": "paid"}
    order = await act(hass, "refresh_top_up", {"order_id": order_id, "reason": "tenant paid"})
    assert (order["id"], order["status"], order["credited_minor"]) == (order_id, "succeeded", 1250)
    assert await balance(ledger, account_id) == 1250
    timeline = (await ledger.call("GET", f"/api/v1/topups/{order_id}"))["timeline"]
    assert "refresh requested from Home Assistant" in timeline[2]["reason"]


async def test_refresh_top_up_refusals(
    hass: HomeAssistant,
    ledger: LedgerSite,
    integration_site: Site,
    fake_stripe: tuple[FakeStripe, str],
) -> None:
    fake, _ = fake_stripe
    account_id = integration_site.room["id"]
    err = await refused(hass, ledger, "refresh_top_up", {"order_id": 999}, "ledger_refused")
    assert (err.translation_placeholders or {})["code"] == "not_found"
    err = await refused(hass, ledger, "refresh_top_up", {"order_id": 10**30}, "ledger_refused")
    manual = await act(hass, "top_up", {"device_id": integration_site.linked, "amount": "1"})
    err = await refused(
        hass, ledger, "refresh_top_up", {"order_id": manual["id"]}, "ledger_refused"
    )
    assert "has no provider to ask" in (err.translation_placeholders or {})["message"]
    order_id, checkout = await processing_order(ledger, account_id, 500)
    err = await refused(hass, ledger, "refresh_top_up", {"order_id": order_id}, "ledger_refused")
    assert (err.translation_placeholders or {})["code"] == "provider_not_found"
    fake.sessions[checkout["id"]] = checkout | {"payment_status": "paid"}
    fake.broken = True
    with pytest.raises(HomeAssistantError) as info:
        await act(hass, "refresh_top_up", {"order_id": order_id})
    assert not isinstance(info.value, ServiceValidationError)
    assert "Stripe did not answer" in (info.value.translation_placeholders or {})["error"]
    assert await balance(ledger, account_id) == 100


# --------------------------------------------------------------------------- get_statement


async def test_get_statement_json_and_csv(
    hass: HomeAssistant, ledger: LedgerSite, site: Site
) -> None:
    await act(hass, "top_up", {"device_id": site.linked, "amount": "10.50"})
    await act(
        hass, "adjust_balance", {"device_id": site.linked, "amount": "-0.50", "reason": "fee"}
    )
    result = await act(hass, "get_statement", {"device_id": site.linked})
    assert (result["account_id"], result["format"]) == (site.room["id"], "json")
    statement = result["statement"]
    assert statement["opening_balance_minor"] == 0
    assert statement["topups_total_minor"] == 1050
    assert statement["adjustments_total_minor"] == -50
    assert statement["closing_balance_minor"] == 1000
    assert statement["ties_out"] is True
    csv = await act(hass, "get_statement", {"device_id": site.linked, "format": "csv"})
    lines = csv["csv"].splitlines()
    assert lines[0] == "section,date,description,quantity,amount_minor"
    assert lines[-1] == "closing_balance,,,,1000"
    assert sum(line.startswith("topups,") for line in lines) == 1
    # A period that ends before anything happened still ties out at zero.
    early = await act(
        hass,
        "get_statement",
        {"device_id": site.linked, "from": date(2000, 1, 1), "to": date(2001, 1, 1)},
    )
    assert early["statement"]["closing_balance_minor"] == 0
    # Years 1 and 9999 lie outside the ledger's time window: its own message, nothing changed.
    for period in (
        {"device_id": site.linked, "from": date(1, 1, 1), "to": date(2000, 1, 1)},
        {"account": site.room["number"], "from": "9999-12-30", "to": "9999-12-31"},
    ):
        with pytest.raises(ServiceValidationError) as caught:
            await act(hass, "get_statement", period)
        assert "2000-01-01" in str(caught.value)


async def test_get_statement_refusals(hass: HomeAssistant, ledger: LedgerSite, site: Site) -> None:
    err = await refused(
        hass,
        ledger,
        "get_statement",
        {"device_id": site.linked, "from": "2026-02-01", "to": "2026-01-01"},
        "ledger_refused",
    )
    assert (err.translation_placeholders or {})["message"] == "to must not be before from"
    await refused(hass, ledger, "get_statement", {"device_id": site.unlinked}, "meter_not_linked")
    with pytest.raises(Exception, match="format"):
        await act(hass, "get_statement", {"device_id": site.linked, "format": "pdf"})


async def test_get_statement_with_integration_token(
    hass: HomeAssistant, ledger: LedgerSite, integration_site: Site
) -> None:
    await act(hass, "top_up", {"device_id": integration_site.linked, "amount": "2"})
    result = await act(hass, "get_statement", {"device_id": integration_site.linked})
    assert result["statement"]["closing_balance_minor"] == 200


async def test_revoked_token_is_an_auth_error(
    hass: HomeAssistant, ledger: LedgerSite, integration_site: Site
) -> None:
    audit = await ledger.call("GET", "/api/v1/audit")
    (created,) = [
        e
        for e in audit["entries"]
        if e["action"] == "token.create" and e["after"]["scope"] == "integration"
    ]
    await ledger.call("DELETE", f"/api/v1/tokens/{created['after']['id']}")
    with pytest.raises(HomeAssistantError) as info:
        await act(hass, "top_up", {"account": str(integration_site.room["id"]), "amount": "1"})
    assert info.value.translation_key == "invalid_auth"
    assert await balance(ledger, integration_site.room["id"]) == 0


async def test_unloaded_site_is_refused(
    hass: HomeAssistant, ledger: LedgerSite, site: Site
) -> None:
    assert await hass.config_entries.async_unload(site.entry.entry_id)
    await refused(
        hass, ledger, "top_up", {"device_id": site.linked, "amount": "1"}, "site_not_loaded"
    )
    await refused(
        hass, ledger, "top_up", {"account": str(site.room["id"]), "amount": "1"}, "no_site_loaded"
    )
    await refused(hass, ledger, "refresh_top_up", {"order_id": 1}, "no_site_loaded")
    assert await hass.config_entries.async_setup(site.entry.entry_id)


# ------------------------------------------------------------------ vouchers


async def mint_vouchers(ledger: LedgerSite, count: int = 1, **extra: Any) -> list[str]:
    """Mint vouchers of 20.00 EUR at the ledger (as the landlord does) and return their codes."""
    body = {"value_minor": 2000, "currency": "EUR", "count": count} | extra
    minted = await ledger.call("POST", "/api/v1/vouchers/batches", body)
    return [card["code"] for card in minted["codes"]]


async def test_redeem_voucher_credits_once(
    hass: HomeAssistant, ledger: LedgerSite, site: Site
) -> None:
    (code,) = await mint_vouchers(ledger)
    redeemed = await act(hass, "redeem_voucher", {"device_id": site.linked, "code": code})
    assert redeemed["order"]["source"] == "voucher"
    assert redeemed["order"]["status"] == "succeeded"
    assert (redeemed["order"]["account_id"], redeemed["serial"]) == (site.room["id"], 1)
    assert await balance(ledger, site.room["id"]) == 2000
    # Scanned twice (an NFC tag read twice, a retried automation): credited once.
    err = await refused(
        hass, ledger, "redeem_voucher", {"device_id": site.linked, "code": code}, "ledger_refused"
    )
    assert (err.translation_placeholders or {})["code"] == "voucher_used"
    assert "already used on" in (err.translation_placeholders or {})["message"]
    assert await balance(ledger, site.room["id"]) == 2000


async def test_redeem_voucher_refuses_extreme_input(
    hass: HomeAssistant, ledger: LedgerSite, site: Site
) -> None:
    (real,) = await mint_vouchers(ledger)
    (voided,) = await mint_vouchers(ledger)
    batches = await ledger.call("GET", "/api/v1/vouchers/batches")
    await ledger.call(
        "POST", f"/api/v1/vouchers/batches/{batches['batches'][0]['id']}/void", {"reason": "lost"}
    )
    (bound,) = await mint_vouchers(ledger, account_id=site.jpy["id"], currency="JPY")
    typo = real[:-1] + str((int(real[-1]) + 1) % 10)
    room = {"device_id": site.linked}
    for code, why in (
        ("1" * 10_000, "invalid_voucher_code"),
        ("not a code", "invalid_voucher_code"),
        (typo, "voucher_typo"),
        (voided, "voucher_void"),
        (bound, "voucher_other_account"),
    ):
        err = await refused(hass, ledger, "redeem_voucher", room | {"code": code}, "ledger_refused")
        assert (err.translation_placeholders or {})["code"] == why, err.translation_placeholders
    await refused(hass, ledger, "redeem_voucher", room | {"code": "  "}, "text_required")
    await refused(hass, ledger, "redeem_voucher", {"code": real}, "target_required")
    assert await balance(ledger, site.room["id"]) == 0
