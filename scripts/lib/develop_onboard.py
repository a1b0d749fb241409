"""Finish scripts/develop's Home Assistant once it runs: owner, token, dashboard.

On first start it creates the owner user through Home Assistant's onboarding API (the same
calls the onboarding screens make), finishes onboarding, writes a long-lived access token to
``.dev/ha_token`` and the login to ``.dev/ha_login``, and saves a dashboard built from the
integration's real entities. Later starts reuse the token and only refresh the dashboard.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from pathlib import Path
from typing import Any

import aiohttp

CLIENT_ID = "http://127.0.0.1/"  # any URL works as an onboarding client id
USERNAME = "owner"
DASHBOARD = "prepaid-meters"  # the dashboard's URL path


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
    for step, body in (
        ("core_config", {}),
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


def dashboard(entities: list[dict[str, Any]], devices: dict[str, str]) -> dict[str, Any]:
    """One section per meter: balance, days left, supply, relay, energy and power."""
    by_device: dict[str, dict[str, str]] = {}
    for entity in entities:
        if entity.get("platform") != "prepaid_meter" or entity.get("disabled_by"):
            continue
        key = str(entity.get("unique_id", "")).split("_", 1)[-1]
        by_device.setdefault(entity.get("device_id") or "", {})[key] = entity["entity_id"]
    wanted = (
        "balance", "days_left", "supply_allowed", "relay", "energy_total", "power",
        "total_cost", "price", "next_supply_change", "last_top_up",
    )  # fmt: skip
    sections = []
    for device_id, keys in sorted(by_device.items(), key=lambda item: devices.get(item[0], "")):
        rows = [keys[k] for k in wanted if k in keys]
        if not rows:
            continue
        cards: list[dict[str, Any]] = [
            {"type": "heading", "heading": devices.get(device_id, "Meter")},
        ]
        if "balance" in keys:
            cards.append({"type": "tile", "entity": keys["balance"]})
        if "relay" in keys:
            cards.append(
                {"type": "tile", "entity": keys["relay"], "features": [{"type": "toggle"}]}
            )
        cards.append({"type": "entities", "entities": rows})
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
        async with http.get(f"{base}/api/onboarding") as response:
            steps = await response.json() if response.status == 200 else []
        user_done = any(s.get("step") == "user" and s.get("done") for s in steps)
        token = token_file.read_text(encoding="utf-8").strip() if token_file.exists() else ""
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
    login = dev / "ha_login"
    words = login.read_text(encoding="utf-8").split() if login.exists() else []
    user, password = [*words, "?", "?"][:2]
    print(f"develop: Home Assistant ready at {base}  user: {user}  password: {password}")
    print(f"develop: dashboard {base}/{DASHBOARD}; long-lived access token in .dev/ha_token")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:])))
