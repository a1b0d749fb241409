"""Finish scripts/develop's Home Assistant once it runs: owner, token, dashboards, events.

On first start it creates the owner user through Home Assistant's onboarding API (the same
calls the onboarding screens make), finishes onboarding, writes a long-lived access token to
``.dev/ha_token`` and the login to ``.dev/ha_login``, and saves a dashboard built from the
integration's real entities (each room's balance history and daily consumption; see
docs/dashboard.md). The core-config step is not posted (scripts/lib/develop_config.py
marks it done): it would set up integrations that need the internet; an older .dev that has
them gets them removed. The Energy dashboard gets the house meter as the grid and each room
as a device inside it, unless it was configured already. Later starts reuse the token.
Then it stays and prints one line per integration event (top-up credited, supply cut or
restored, low balance, ...) to the terminal, reconnecting when Home Assistant restarts.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

CLIENT_ID = "http://127.0.0.1/"  # any URL works as an onboarding client id
USERNAME = "owner"
DASHBOARD = "prepaid-meters"  # the dashboard's URL path
#: Set up by an older scripts/develop's onboarding; they need the internet (errors offline).
INTERNET_DOMAINS = ("met", "radio_browser", "google_translate")
#: The house meter's grid price in EUR/kWh (it has no prepaid account, so no cost entity):
#: Home Assistant computes the grid cost from it.
GRID_PRICE = 0.35
#: The integration's events shown on the terminal (``prepaid_meter_<kind>``).
EVENT_KINDS = (
    "top_up_credited", "supply_changed", "low_balance", "order_needs_attention", "reading_held",
)  # fmt: skip


async def _wait_for_http(http: aiohttp.ClientSession, base: str) -> None:
    for _ in range(600):
        try:
            async with http.get(f"{base}/api/onboarding") as response:
                if response.status in (200, 401, 404):
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.5)
    raise SystemExit("develop: Home Assistant did not start within 5 minutes")


async def _onboard(http: aiohttp.ClientSession, base: str, dev: Path) -> str:
    """Create the owner and return a short-lived access token."""
    password = secrets.token_urlsafe(12)
    async with http.post(
        f"{base}/api/onboarding/users",
        json={
            "client_id": CLIENT_ID,
            "name": "Owner",
            "username": USERNAME,
            "password": password,
            "language": "en",
        },
    ) as response:
        response.raise_for_status()
        code = (await response.json())["auth_code"]
    (dev / "ha_login").write_text(f"{USERNAME}\n{password}\n", encoding="utf-8")
    async with http.post(
        f"{base}/auth/token",
        data={"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID},
    ) as response:
        response.raise_for_status()
        access: str = (await response.json())["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    # Not core_config: it sets up weather, radio and TTS integrations that need the internet
    # (scripts/lib/develop_config.py marks it done before the first start).
    for step, body in (
        ("analytics", {}),
        ("integration", {"client_id": CLIENT_ID, "redirect_uri": CLIENT_ID}),
    ):
        async with http.post(f"{base}/api/onboarding/{step}", json=body, headers=headers):
            pass  # a step already done answers 403; nothing to do then
    return access


async def _ws(
    http: aiohttp.ClientSession, base: str, token: str, *messages: dict[str, Any]
) -> list[Any]:
    """Send websocket commands with a token; return their results in order."""
    results = []
    async with http.ws_connect(f"{base}/api/websocket") as ws:
        await ws.receive_json()  # auth_required
        await ws.send_json({"type": "auth", "access_token": token})
        if (await ws.receive_json())["type"] != "auth_ok":
            raise SystemExit("develop: Home Assistant refused the token")
        for number, message in enumerate(messages, start=1):
            await ws.send_json({"id": number, **message})
            while (reply := await ws.receive_json()).get("id") != number:
                continue
            if not reply.get("success"):
                raise SystemExit(f"develop: {message['type']} failed: {reply.get('error')}")
            results.append(reply.get("result"))
    return results


def meters_by_device(entities: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Group the integration's enabled entities: device id -> key ("power", ...) -> entity id."""
    by_device: dict[str, dict[str, str]] = {}
    for entity in entities:
        if entity.get("platform") != "prepaid_meter" or entity.get("disabled_by"):
            continue
        key = str(entity.get("unique_id", "")).split("_", 1)[-1]
        by_device.setdefault(entity.get("device_id") or "", {})[key] = entity["entity_id"]
    return by_device


def energy_prefs(entities: list[dict[str, Any]], devices: dict[str, str]) -> dict[str, Any]:
    """Energy dashboard preferences: the house meter is the grid, each room a device in it.

    The house meter is the meter without a prepaid account (no balance); its cost comes from
    ``GRID_PRICE``. Each room is nested under it (``included_in_stat``), with its power.
    Home Assistant has no cost field for individual devices; a room's cost is its Total cost
    entity (on the Prepaid meters dashboard).
    """
    by_device = meters_by_device(entities)

    def name(device_id: str) -> str:
        return devices.get(device_id, "")

    house = sorted(
        (d for d, keys in by_device.items() if "energy_total" in keys and "balance" not in keys),
        key=name,
    )
    rooms = sorted(
        (d for d, keys in by_device.items() if "energy_total" in keys and "balance" in keys),
        key=name,
    )
    sources: list[dict[str, Any]] = []
    grid_stat = None
    if house:
        keys = by_device[house[0]]
        grid_stat = keys["energy_total"]
        grid: dict[str, Any] = {
            "type": "grid",
            "stat_energy_from": grid_stat,
            "stat_energy_to": None,
            "stat_cost": None,
            "entity_energy_price": None,
            "number_energy_price": GRID_PRICE,
            "stat_compensation": None,
            "entity_energy_price_export": None,
            "number_energy_price_export": None,
            "cost_adjustment_day": 0.0,
        }
        if "power" in keys:
            grid["stat_rate"] = keys["power"]
        sources.append(grid)
    consumption = []
    for device_id in rooms:
        keys = by_device[device_id]
        device: dict[str, Any] = {"stat_consumption": keys["energy_total"], "name": name(device_id)}
        if "power" in keys:
            device["stat_rate"] = keys["power"]
        if grid_stat is not None:
            device["included_in_stat"] = grid_stat
        consumption.append(device)
    return {
        "energy_sources": sources,
        "device_consumption": consumption,
        "device_consumption_water": [],
    }


#: Days of daily consumption bars and hours of balance history on each meter's cards.
CONSUMPTION_DAYS = 30
BALANCE_HOURS = 48
#: The meter's total register (``total_increasing``: Home Assistant keeps long-term statistics
#: of it, so a statistics graph can show the consumption per day), electricity or water.
CONSUMPTION_KEYS = ("energy_total", "water_total")


def meter_cards(keys: dict[str, str], name: str) -> list[dict[str, Any]]:
    """One meter's cards (``keys``: key -> entity id, as ``meters_by_device`` gives them).

    Tiles for the balance, days left and the supply relay (with its switch); the balance's
    history graph; the consumption per day as a statistics graph (bars of the change of the
    total's long-term statistics); an entities card with the rest.
    """
    cards: list[dict[str, Any]] = [{"type": "heading", "heading": name or "Meter"}]
    cards.extend({"type": "tile", "entity": keys[k]} for k in ("balance", "days_left") if k in keys)
    if "relay" in keys:
        cards.append({"type": "tile", "entity": keys["relay"], "features": [{"type": "toggle"}]})
    if "balance" in keys:
        cards.append(
            {"type": "history-graph", "title": "Balance", "hours_to_show": BALANCE_HOURS,
             "entities": [keys["balance"]]}
        )  # fmt: skip
    if total := next((keys[k] for k in CONSUMPTION_KEYS if k in keys), None):
        cards.append(
            {"type": "statistics-graph", "title": "Consumption per day", "entities": [total],
             "chart_type": "bar", "period": "day", "stat_types": ["change"],
             "days_to_show": CONSUMPTION_DAYS}
        )  # fmt: skip
    details = (
        "supply_allowed", "power", "energy_total", "water_total", "total_cost", "price",
        "next_supply_change", "last_top_up",
    )  # fmt: skip
    if rows := [keys[k] for k in details if k in keys]:
        cards.append({"type": "entities", "entities": rows})
    return cards


def dashboard(entities: list[dict[str, Any]], devices: dict[str, str]) -> dict[str, Any]:
    """One section per meter: balance (now and its history), days left, supply, consumption."""
    sections = []
    for device_id, keys in sorted(
        meters_by_device(entities).items(), key=lambda item: devices.get(item[0], "")
    ):
        cards = meter_cards(keys, devices.get(device_id, ""))
        if len(cards) > 1:  # more than its heading
            sections.append({"type": "grid", "cards": cards})
    return {
        "title": "Prepaid meters",
        "views": [{"title": "Meters", "path": "meters", "type": "sections", "sections": sections}],
    }


async def main(base: str, dev_dir: str) -> int:
    """Onboard if needed, keep a working token in .dev/ha_token, save the dashboard."""
    dev = Path(dev_dir)
    token_file = dev / "ha_token"
    async with aiohttp.ClientSession() as http:
        await _wait_for_http(http, base)
        token = token_file.read_text(encoding="utf-8").strip() if token_file.exists() else ""
        # /api/onboarding answers 404 once onboarding is over, and also while it is not set up
        # yet: with a token we are past onboarding; without one, wait for the steps.
        steps: list[dict[str, Any]] | None = None
        for _ in range(120):
            async with http.get(f"{base}/api/onboarding") as response:
                if response.status == 200:
                    steps = await response.json()
                    break
            if token:
                break
            await asyncio.sleep(0.5)
        user_done = steps is None or any(s.get("step") == "user" and s.get("done") for s in steps)
        if not user_done:
            access = await _onboard(http, base, dev)
            (token,) = await _ws(
                http,
                base,
                access,
                {"type": "auth/long_lived_access_token", "client_name": "scripts/develop",
                 "lifespan": 3650},
            )  # fmt: skip
            token_file.write_text(f"{token}\n", encoding="utf-8")
            token_file.chmod(0o600)
        if not token:
            print("develop: no .dev/ha_token and onboarding is done; delete .dev to start over")
            return 0
        for _ in range(120):  # the integration's entities appear once its entry has loaded
            entities, devices = await _ws(
                http, base, token,
                {"type": "config/entity_registry/list"},
                {"type": "config/device_registry/list"},
            )  # fmt: skip
            if any(e.get("platform") == "prepaid_meter" for e in entities):
                break
            await asyncio.sleep(1)
        names = {d["id"]: d.get("name_by_user") or d.get("name") or "" for d in devices}
        (dashboards,) = await _ws(http, base, token, {"type": "lovelace/dashboards/list"})
        if not any(d.get("url_path") == DASHBOARD for d in dashboards):
            await _ws(
                http, base, token,
                {"type": "lovelace/dashboards/create", "url_path": DASHBOARD,
                 "title": "Prepaid meters", "icon": "mdi:meter-electric",
                 "show_in_sidebar": True, "require_admin": False},
            )  # fmt: skip
        await _ws(
            http, base, token,
            {"type": "lovelace/config/save", "url_path": DASHBOARD,
             "config": dashboard(entities, names)},
        )  # fmt: skip
        await _energy(http, base, token, entities, names)
        await _remove_internet_integrations(http, base, token)
    login = dev / "ha_login"
    words = login.read_text(encoding="utf-8").split() if login.exists() else []
    user, password = [*words, "?", "?"][:2]
    print(f"develop: Home Assistant ready at {base}  user: {user}  password: {password}")
    print(f"develop: dashboard {base}/{DASHBOARD}, energy {base}/energy; "
          "long-lived access token in .dev/ha_token", flush=True)  # fmt: skip
    await follow_events(base, token)
    return 0


async def _energy(
    http: aiohttp.ClientSession,
    base: str,
    token: str,
    entities: list[dict[str, Any]],
    names: dict[str, str],
) -> None:
    """Configure the Energy dashboard unless someone already did."""
    async with http.ws_connect(f"{base}/api/websocket") as ws:
        await ws.receive_json()
        await ws.send_json({"type": "auth", "access_token": token})
        await ws.receive_json()
        await ws.send_json({"id": 1, "type": "energy/get_prefs"})
        reply = await ws.receive_json()
    current = reply.get("result") or {} if reply.get("success") else {}
    if current.get("energy_sources") or current.get("device_consumption"):
        return
    prefs = energy_prefs(entities, names)
    if prefs["energy_sources"] or prefs["device_consumption"]:
        await _ws(http, base, token, {"type": "energy/save_prefs", **prefs})
        print("develop: Energy dashboard set up: the house meter as the grid, rooms inside it")


async def _remove_internet_integrations(http: aiohttp.ClientSession, base: str, token: str) -> None:
    """Delete what an older scripts/develop's onboarding set up and needs the internet."""
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{base}/api/config/config_entries/entry", headers=headers) as response:
        entries = await response.json() if response.status == 200 else []
    for entry in entries:
        if entry.get("domain") in INTERNET_DOMAINS:
            async with http.delete(
                f"{base}/api/config/config_entries/entry/{entry['entry_id']}", headers=headers
            ) as response:
                if response.status == 200:
                    print(f"develop: removed {entry['domain']} (needs the internet)")


def event_line(event: dict[str, Any], devices: dict[str, str]) -> str | None:
    """One terminal line for one of the integration's bus events, or None."""
    kind = str(event.get("event_type", "")).removeprefix("prepaid_meter_")
    data: dict[str, Any] = event.get("data") or {}
    who = ", ".join(devices.get(d, d) for d in data.get("device_ids") or []) or (
        data.get("meter") or f"account {data.get('account_id')}"
    )
    money = f"{data.get('amount', '?')} {data.get('currency') or ''}".strip()
    if kind == "top_up_credited":
        return f"{who}: top-up of {money} credited"
    if kind == "supply_changed":
        return f"{data.get('meter') or who}: supply {data.get('state')} ({data.get('reason')})"
    if kind == "low_balance":
        balance = data.get("balance_minor")
        shown = f"{balance / 100:.2f}" if isinstance(balance, int) else "?"
        return f"{who}: low balance (level {data.get('level')}, balance {shown})"
    if kind == "order_needs_attention":
        return f"{who}: payment of {money} needs attention ({data.get('reason')})"
    if kind == "reading_held":
        return f"{who}: reading {data.get('value')} held ({data.get('hold')})"
    return None


async def follow_events(base: str, token: str) -> None:
    """Print the integration's events as they happen; reconnect after a restart."""
    while True:
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(f"{base}/api/websocket", heartbeat=30) as ws,
            ):
                await ws.receive_json()
                await ws.send_json({"type": "auth", "access_token": token})
                if (await ws.receive_json())["type"] != "auth_ok":
                    return
                await ws.send_json({"id": 1, "type": "config/device_registry/list"})
                while (reply := await ws.receive_json()).get("id") != 1:
                    continue
                devices = {
                    d["id"]: d.get("name_by_user") or d.get("name") or ""
                    for d in reply.get("result") or []
                }
                for number, kind in enumerate(EVENT_KINDS, start=2):
                    await ws.send_json(
                        {"id": number, "type": "subscribe_events",
                         "event_type": f"prepaid_meter_{kind}"}
                    )  # fmt: skip
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    payload = message.json()
                    if payload.get("type") == "event" and (
                        line := event_line(payload["event"], devices)
                    ):
                        print(f"event {time.strftime('%H:%M:%S')} {line}", flush=True)
        except aiohttp.ClientError, OSError, ValueError, KeyError:
            pass
        await asyncio.sleep(2)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:])))
