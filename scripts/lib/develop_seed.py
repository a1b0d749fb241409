"""Give scripts/develop's Home Assistant a ledger site with the simulator's meters, once.

In the ledger: demo tariffs (flat and time-of-use), one prepaid account and ledger meter per
tenant room (reused when they exist; Room 3 is protected, never cut) and a little credit.
The homeowner's own meter is shown in Home Assistant without a prepaid account.
In Home Assistant: the site (URL + token) and one meter subentry per simulated meter, each
linked to its ledger meter, written into the config entry storage before Home Assistant
starts with Home Assistant's own ConfigEntry class, so the stored shape is exactly what it
expects. Leaves an existing prepaid_meter entry alone (the user may have changed it), except
that an integration-scope token from an older scripts/develop is swapped for the admin token.

The site's token is the ledger's admin token, like the landlord's own site set up from the
add-on: "Add meter" can then open a new prepaid account (creating accounts needs the admin
scope). ``PREPAID_DEVELOP_SITE_SCOPE=integration`` gives it a new integration-scope token
instead (the narrowest that runs a site: it links existing ledger meters only).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from homeassistant.config_entries import (
    STORAGE_VERSION,
    STORAGE_VERSION_MINOR,
    ConfigEntry,
    ConfigSubentryData,
)

from custom_components.prepaid_meter.const import DOMAIN, SUBENTRY_METER
from custom_components.prepaid_meter.meter_flow import meter_unique_id

STORAGE_KEY = "core.config_entries"
#: "admin" (default, the landlord's own site) or "integration" (the narrowest site token).
SITE_SCOPE = os.environ.get("PREPAID_DEVELOP_SITE_SCOPE", "admin")

#: name, unit id, profile, extra settings, credit in cents, tariff, account settings; must
#: match the simulated meters in scripts/develop. Credit None: no prepaid account (the home).
DEMO_METERS: list[tuple[str, int, str, dict[str, Any], int | None, str, dict[str, Any]]] = [
    ("Room 1", 1, "acrel_ddsy1352", {}, 300, "Demo flat", {}),
    ("Room 2", 2, "eastron_sdm120", {"relay_unit_id": 20, "relay_coil": 0}, 800,
     "Demo time-of-use", {}),
    ("Room 3", 3, "hiking_dds238_2", {}, 500, "Demo flat", {"protected": True}),
    ("Home", 4, "eastron_sdm630", {}, None, "", {}),
]  # fmt: skip
#: Demo prices far above real ones so that credit visibly drains: Room 1 (1.5 kW at
#: 50 EUR/kWh, 75 EUR an hour) runs out of its 3.00 EUR in about two and a half minutes.
DEMO_TARIFFS = [
    {
        "name": "Demo flat",
        "currency": "EUR",
        "unit": "kWh",
        "kind": "flat",
        "price": "50.00",
        "standing_charge_minor_per_day": 0,
    },
    {
        "name": "Demo time-of-use",
        "currency": "EUR",
        "unit": "kWh",
        "kind": "tou",
        "segments": [
            {"start": "00:00", "price": "30.00", "band": "night"},
            {"start": "07:00", "price": "60.00", "band": "day"},
            {"start": "22:00", "price": "30.00", "band": "night"},
        ],
        "standing_charge_minor_per_day": 0,
    },
]


def _call(ledger_url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - the local ledger's URL
        f"{ledger_url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Idempotency-Key": uuid.uuid4().hex,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.load(response)


def ledger_meters(ledger_url: str, admin_token: str) -> dict[str, int]:
    """Ledger meter id per room: existing ones by name, otherwise a new account and meter."""
    existing = {
        m["name"]: m["id"]
        for m in _call(ledger_url, admin_token, "GET", "/api/v1/meters")["meters"]
    }
    tariffs = {
        t["name"]: t for t in _call(ledger_url, admin_token, "GET", "/api/v1/tariffs")["tariffs"]
    }
    for wanted in DEMO_TARIFFS:
        if wanted["name"] not in tariffs:
            tariffs[wanted["name"]] = _call(
                ledger_url, admin_token, "POST", "/api/v1/tariffs", wanted
            )
    found = {}
    for name, _unit, profile, _extra, credit, tariff_name, settings in DEMO_METERS:
        if credit is None:
            continue
        if name in existing:
            found[name] = existing[name]
            continue
        account = _call(
            ledger_url,
            admin_token,
            "POST",
            "/api/v1/accounts",
            {"name": name, "currency": "EUR", "timezone": "Europe/Berlin",
             "low_balance_minor": [200, 50], **settings},
        )  # fmt: skip
        meter = _call(
            ledger_url,
            admin_token,
            "POST",
            "/api/v1/meters",
            {"account_id": account["id"], "tariff_id": tariffs[tariff_name]["id"], "name": name,
             "unit": "kWh", "model": profile},
        )  # fmt: skip
        top_up = {"account": account["id"], "amount_minor": credit, "reference": f"demo-{name}"}
        _call(ledger_url, admin_token, "POST", "/api/v1/topups", top_up)
        found[name] = meter["id"]
    return found


def _upgrade_token(
    entries: list[dict[str, Any]], ledger_url: str, ledger_id: str, admin_token: str
) -> bool:
    """Give this ledger's site the admin token if it has an integration token; True if changed.

    Older versions of scripts/develop seeded an integration token, with which "Add meter"
    cannot open an account. Not done with ``PREPAID_DEVELOP_SITE_SCOPE=integration``.
    """
    if SITE_SCOPE != "admin":
        return False
    changed = False
    for entry in entries:
        data = entry.get("data") or {}
        if entry.get("unique_id") != ledger_id or data.get("token") == admin_token:
            continue
        try:
            scope = _call(ledger_url, str(data.get("token")), "GET", "/api/v1/whoami")["scope"]
        except OSError:  # urllib's HTTPError (a revoked token) is an OSError too
            continue
        if scope == "integration":
            entry["data"] = {**data, "token": admin_token}
            changed = True
    return changed


def main(config_dir: str, ledger_url: str, admin_token: str, sim_port: str) -> int:
    """Seed the storage file; print what was done."""
    path = Path(config_dir) / ".storage" / STORAGE_KEY
    stored: dict[str, Any] = (
        json.loads(path.read_text(encoding="utf-8"))
        if path.exists()
        else {
            "version": STORAGE_VERSION,
            "minor_version": STORAGE_VERSION_MINOR,
            "key": STORAGE_KEY,
            "data": {"entries": []},
        }
    )
    entries: list[dict[str, Any]] = stored["data"]["entries"]
    with urllib.request.urlopen(f"{ledger_url}/api/v1/health", timeout=5) as response:  # noqa: S310
        ledger_id = json.load(response)["ledger_id"]
    existing = [entry for entry in entries if entry["domain"] == DOMAIN]
    if existing:
        if _upgrade_token(existing, ledger_url, ledger_id, admin_token):
            path.write_text(json.dumps(stored, indent=2, default=str), encoding="utf-8")
            print("develop: the demo site now uses the ledger's admin token (Add meter can "
                  "open accounts)")  # fmt: skip
        else:
            print("develop: Home Assistant already has a Prepaid Meter entry; left as it is")
        return 0
    links = ledger_meters(ledger_url, admin_token)
    token = (
        admin_token
        if SITE_SCOPE == "admin"
        else _call(
            ledger_url, admin_token, "POST", "/api/v1/tokens",
            {"scope": "integration", "name": "ha"},
        )["token"]
    )  # fmt: skip
    subentries = []
    for name, unit, profile, extra, _credit, _tariff, _settings in DEMO_METERS:
        data = {
            "name": name,
            "profile": profile,
            "connection": "tcp",
            "host": "127.0.0.1",
            "port": int(sim_port),
            "unit_id": unit,
            "ledger_meter_id": links.get(name),  # None: shown, not prepaid (the home)
            **extra,
        }
        subentries.append(
            ConfigSubentryData(
                data=data,
                subentry_type=SUBENTRY_METER,
                title=name,
                unique_id=meter_unique_id(data),
            )
        )
    entry = ConfigEntry(
        data={"url": ledger_url, "token": token},
        discovery_keys={},  # type: ignore[arg-type]
        domain=DOMAIN,
        minor_version=1,
        options={},
        source="user",
        subentries_data=subentries,
        title="Prepaid Meter Ledger",
        unique_id=ledger_id,
        version=1,
    )
    entries.append(entry.as_dict())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=2, default=str), encoding="utf-8")
    print(f"develop: added the ledger site with {len(subentries)} simulated meters, linked")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
