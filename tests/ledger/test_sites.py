"""Sites on one ledger (issue 24): a site's token sees and posts for its own site only.

Two buildings, North and South, each with its own Home Assistant token. Everything the North
token names of South's (an account, a meter, a reading, an order, a voucher, an event) answers
exactly like a row that does not exist, and changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prepaid_ledger.api import stream
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.models import Book
from sqlalchemy import select

from tests.ledger.conftest import Ledger
from tests.ledger.test_held_readings import reading
from tests.ledger.test_stream import read_events
from tests.ledger.webhook_helpers import checkout_completed, stripe_delivery

pytestmark = pytest.mark.usefixtures("socket_enabled")


class Fleet:
    """Sites North and South with one room and meter each, and a token per site."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.north: dict[str, Any] = {}
        self.south: dict[str, Any] = {}

    async def build(self) -> Fleet:
        ledger = self.ledger
        tariff = await ledger.tariff(price="1.00")
        for side, name in ((self.north, "North"), (self.south, "South")):
            side["site"] = await ledger.ok("POST", "/api/v1/sites", json={"name": name})
            site_id = side["site"]["id"]
            side["account"] = await ledger.account(name=f"{name} flat 1", site_id=site_id)
            side["meter"] = await ledger.meter(
                side["account"]["id"], tariff["id"], model="eastron_sdm120"
            )
            side["token"] = (
                await ledger.ok(
                    "POST",
                    "/api/v1/tokens",
                    json={"scope": "integration", "site_id": site_id, "name": f"HA {name}"},
                )
            )["token"]
        return self

    async def as_north(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.ledger.call(method, path, token=self.north["token"], **kwargs)


@pytest.fixture
async def fleet(ledger: Ledger) -> Fleet:
    return await Fleet(ledger).build()


async def test_sites_are_listed_with_their_rooms(fleet: Fleet) -> None:
    listed = (await fleet.ledger.ok("GET", "/api/v1/sites"))["sites"]
    by_name = {s["name"]: s for s in listed}
    assert set(by_name) == {"Home", "North", "South"}  # Home: every ledger's first site
    assert by_name["Home"]["id"] == 1
    assert (by_name["North"]["accounts"], by_name["South"]["accounts"]) == (1, 1)
    assert by_name["North"]["supply_off"] == 1  # a new room has no credit
    assert fleet.north["account"]["site_id"] == fleet.north["site"]["id"]
    unplaced = await fleet.ledger.account(name="Somewhere")
    assert unplaced["site_id"] == 1
    status, body = await fleet.ledger.call("POST", "/api/v1/sites", json={"name": "North"})
    assert (status, body["error"]["code"]) == (409, "duplicate_site")


async def test_a_site_token_lists_only_its_own_site(fleet: Fleet) -> None:
    status, me = await fleet.as_north("GET", "/api/v1/whoami")
    assert (status, me["site_id"]) == (200, fleet.north["site"]["id"])
    north_id = fleet.north["account"]["id"]
    for query in ("", f"?site={fleet.south['site']['id']}", "?q=South"):
        status, page = await fleet.as_north("GET", f"/api/v1/accounts{query}")
        assert status == 200
        assert [a["id"] for a in page["accounts"]] == ([north_id] if query != "?q=South" else [])
    status, meters = await fleet.as_north("GET", "/api/v1/meters")
    assert [m["id"] for m in meters["meters"]] == [fleet.north["meter"]["id"]]
    every = await fleet.ledger.ok("GET", "/api/v1/accounts")  # the landlord sees all
    assert {a["name"] for a in every["accounts"]} == {"North flat 1", "South flat 1"}
    south_only = await fleet.ledger.ok("GET", f"/api/v1/accounts?site={fleet.south['site']['id']}")
    assert [a["name"] for a in south_only["accounts"]] == ["South flat 1"]


async def test_another_sites_rows_answer_like_rows_that_do_not_exist(fleet: Fleet) -> None:
    south_account, south_meter = fleet.south["account"]["id"], fleet.south["meter"]["id"]
    for path, what in (
        (f"/api/v1/accounts/{south_account}", f"account {south_account}"),
        (f"/api/v1/accounts/{south_account}/statement", f"account {south_account}"),
        (f"/api/v1/meters/{south_meter}", f"meter {south_meter}"),
        (f"/api/v1/meters/{south_meter}/status", f"meter {south_meter}"),
    ):
        status, body = await fleet.as_north("GET", path)
        assert (status, body["error"]["message"]) == (404, f"{what} not found"), path
        missing = path.replace(str(south_account if "accounts" in path else south_meter), "9999")
        status, absent = await fleet.as_north("GET", missing)
        assert (status, absent["error"]["code"]) == (404, body["error"]["code"])


async def test_a_site_token_cannot_post_for_another_site(fleet: Fleet) -> None:
    ledger = fleet.ledger
    south_account = fleet.south["account"]
    north_meter, south_meter = fleet.north["meter"]["id"], fleet.south["meter"]["id"]
    # Readings: another site's meter is an unknown meter; the whole batch is refused.
    status, body = await fleet.as_north(
        "POST",
        "/api/v1/readings",
        json={"readings": [reading(north_meter, "100", 0), reading(south_meter, "100", 0)]},
    )
    assert (status, body["error"]["code"]) == (422, "unknown_meter")
    assert body["error"]["field"] == "readings[1].meter_id"
    status, _ = await fleet.as_north(
        "POST", "/api/v1/readings", json={"readings": [reading(north_meter, "100", 0)]}
    )
    assert status == 200
    # Top-ups and vouchers: by id or by printed number, another site's room is not found.
    minted = await ledger.ok(
        "POST", "/api/v1/vouchers/batches", json={"value_minor": 900, "currency": "EUR", "count": 2}
    )
    codes = iter(c["code"] for c in minted["codes"])
    for ref in (south_account["id"], south_account["number"]):
        status, body = await fleet.as_north(
            "POST",
            "/api/v1/topups",
            json={"account": ref, "amount_minor": 500},
            headers={"Idempotency-Key": f"north-{ref}"},
        )
        assert (status, body["error"]["code"]) == (404, "not_found"), ref
        status, body = await fleet.as_north(
            "POST", "/api/v1/vouchers/redeem", json={"account": ref, "code": next(codes)}
        )
        assert status == 404, body
    assert await ledger.balance(south_account["id"]) == 0
    # The South site's own token does what the North one may not.
    status, _ = await ledger.call(
        "POST",
        "/api/v1/topups",
        json={"account": south_account["id"], "amount_minor": 500},
        headers={"Idempotency-Key": "south-1"},
        token=fleet.south["token"],
    )
    assert status == 201
    assert await ledger.balance(south_account["id"]) == 500


async def test_orders_held_readings_and_events_stay_within_the_site(fleet: Fleet) -> None:
    ledger = fleet.ledger
    north, south = fleet.north, fleet.south
    await ledger.topup(north["account"]["id"], 300, "n-1")
    south_order = await ledger.topup(south["account"]["id"], 700, "s-1")
    status, orders = await fleet.as_north("GET", "/api/v1/topups")
    assert [o["account_id"] for o in orders["topups"]] == [north["account"]["id"]]
    for path in (
        f"/api/v1/topups/{south_order['id']}",
        f"/api/v1/topups/{south_order['id']}/receipt",
    ):
        status, body = await fleet.as_north("GET", path)
        assert (status, body["error"]["message"]) == (404, f"order {south_order['id']} not found")
    status, body = await fleet.as_north(
        "POST",
        f"/api/v1/topups/{south_order['id']}/actions",
        json={"action": "recheck", "reason": "tenant asks"},
    )
    assert status == 404, body

    # A glitch on South's meter is held; North neither sees nor resolves it.
    south_meter = south["meter"]["id"]
    await ledger.ok(
        "POST", "/api/v1/readings", json={"readings": [reading(south_meter, "5000", 0)]}
    )
    result = await ledger.ok(
        "POST", "/api/v1/readings", json={"readings": [reading(south_meter, "9999999", 15)]}
    )
    assert result["meters"][0]["held"] == 1
    (waiting,) = (await ledger.ok("GET", "/api/v1/readings/held"))["readings"]
    status, held = await fleet.as_north("GET", "/api/v1/readings/held")
    assert (status, held["readings"]) == (200, [])
    status, body = await fleet.as_north(
        "POST",
        f"/api/v1/readings/{waiting['id']}/resolve",
        json={"action": "reject", "reason": "not ours"},
    )
    assert (status, body["error"]["message"]) == (404, f"reading {waiting['id']} not found")
    assert len((await ledger.ok("GET", "/api/v1/readings/held"))["readings"]) == 1

    # The event stream: North's token gets North's events only; the landlord's gets both.
    everything = await read_events(ledger, 100, last_id=0, stop_idle=1.0)
    accounts_seen = {e["data"].get("account_id") for e in everything}
    assert south["account"]["id"] in accounts_seen
    mine = await read_events(ledger, 100, token=north["token"], last_id=0, stop_idle=1.0)
    assert mine, "North's own events must arrive"
    assert {e["data"].get("account_id") for e in mine} == {north["account"]["id"]}


async def test_site_tokens_and_accounts_name_existing_sites(ledger: Ledger) -> None:
    status, body = await ledger.call(
        "POST", "/api/v1/tokens", json={"scope": "integration", "site_id": 99}
    )
    assert (status, body["error"]["message"]) == (404, "site 99 not found")
    account = await ledger.account()
    status, body = await ledger.call(
        "POST",
        "/api/v1/tokens",
        json={"scope": "tenant", "account_id": account["id"], "site_id": 1},
    )
    assert status == 422
    assert "site_id is for integration tokens" in body["error"]["message"]
    status, body = await ledger.call(
        "POST",
        "/api/v1/accounts",
        json={"name": "Nowhere", "currency": "EUR", "timezone": "UTC", "site_id": 99},
    )
    assert (status, body["error"]["message"]) == (404, "site 99 not found")
    home = await ledger.ok("POST", "/api/v1/tokens", json={"scope": "integration"})
    assert home["site_id"] == 1  # without a site: the landlord's own


async def test_each_site_has_its_own_revenue_books(fleet: Fleet) -> None:
    """Concurrent sites never wait on one revenue row: each posts to its own book."""
    ledger = fleet.ledger
    for side, kwh in ((fleet.north, "2.5"), (fleet.south, "4")):
        meter = side["meter"]["id"]
        await ledger.ok("POST", "/api/v1/readings", json={"readings": [reading(meter, "100", 0)]})
        later = str(100 + float(kwh))
        await ledger.ok("POST", "/api/v1/readings", json={"readings": [reading(meter, later, 60)]})
    database = Database(ledger.settings.database_url)
    try:
        rows = await database.read(
            lambda s: s.execute(
                select(Book.key, Book.balance_minor).where(
                    Book.key.like("system:revenue:consumption:EUR%")
                )
            )
        )
        books = dict(rows.all())
    finally:
        await database.engine.dispose()
    north, south = fleet.north["site"]["id"], fleet.south["site"]["id"]
    # 2.5 kWh and 4 kWh at 1.00 EUR/kWh, each on its own site's book (the customer pays it).
    assert books == {
        f"system:revenue:consumption:EUR:site:{north}": 250,
        f"system:revenue:consumption:EUR:site:{south}": 400,
    }
    assert (await ledger.ok("GET", "/api/v1/health"))["status"] == "ok"


async def test_a_quiet_sites_stream_keeps_alive_while_others_commit(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site with nothing to say still gets keep-alives while other sites commit all the time.

    (Home Assistant's client reconnects a stream that is silent for 45 s.)
    """
    monkeypatch.setattr(stream, "KEEPALIVE_S", 1.0)
    ledger = fleet.ledger
    south = fleet.south["account"]["id"]
    headers = {"Authorization": f"Bearer {fleet.north['token']}", "Last-Event-ID": "latest"}
    keepalives = 0

    async def busy_south() -> None:
        for n in range(20):  # a commit every 0.15 s, each waking every stream
            await ledger.topup(south, 1, f"busy-{n}")
            await asyncio.sleep(0.15)

    async with ledger.http.get(ledger.base_url + "/api/v1/events", headers=headers) as resp:
        assert resp.status == 200
        busy = asyncio.create_task(busy_south())
        try:
            async with asyncio.timeout(10):
                while not busy.done() or keepalives < 2:
                    line = (await resp.content.readline()).decode()
                    assert not line.startswith("id:"), line  # South's events stay South's
                    keepalives += line.startswith(": keepalive")
                    if busy.done() and keepalives >= 2:
                        break
        finally:
            await busy
    assert keepalives >= 2


async def test_a_payment_no_account_claims_reaches_the_landlords_own_site_only(
    fleet: Fleet,
) -> None:
    """A mistyped account number belongs to no building: site 1 (the landlord's) sees it."""
    ledger = fleet.ledger
    home = (await ledger.ok("POST", "/api/v1/tokens", json={"scope": "integration"}))["token"]
    body, headers = stripe_delivery(checkout_completed("9999-9999-99", 1234))
    status, _ = await ledger.call(
        "POST", "/webhooks/stripe", data=body, headers=headers, token=None
    )
    assert status == 200
    (stuck,) = (await ledger.ok("GET", "/api/v1/topups?status=needs_attention"))["topups"]
    assert stuck["account_id"] is None
    mine = await ledger.ok("GET", "/api/v1/topups?status=needs_attention", token=home)
    assert [o["id"] for o in mine["topups"]] == [stuck["id"]]
    assert (await ledger.ok("GET", f"/api/v1/topups/{stuck['id']}", token=home))["id"] == stuck[
        "id"
    ]
    status, north = await fleet.as_north("GET", "/api/v1/topups?status=needs_attention")
    assert (status, north["topups"]) == (200, [])
    status, _ = await fleet.as_north("GET", f"/api/v1/topups/{stuck['id']}")
    assert status == 404
    alerts = await read_events(ledger, 50, token=home, last_id=0, stop_idle=1.0)
    assert any(
        e["type"] == "alert" and e["data"].get("kind") == "order_needs_attention" for e in alerts
    )
    north_events = await read_events(
        ledger, 50, token=fleet.north["token"], last_id=0, stop_idle=1.0
    )
    assert not any(e["data"].get("kind") == "order_needs_attention" for e in north_events)
