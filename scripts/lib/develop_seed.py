"""Give scripts/develop's Home Assistant a ledger site with the simulator's meters, once.

Writes the site (URL + token of the local ledger) and one meter subentry per simulated meter
into Home Assistant's config entry storage before Home Assistant starts, using Home
Assistant's own ConfigEntry class so the stored shape is exactly what it expects. Leaves an
existing prepaid_meter entry alone (the user may have changed it).
"""

from __future__ import annotations

import json
import sys
import urllib.request
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

#: name, unit id, profile, extra settings; must match the meters scripts/develop simulates.
DEMO_METERS: list[tuple[str, int, str, dict[str, Any]]] = [
    ("Room 1", 1, "acrel_ddsy1352", {}),
    ("Room 2", 2, "eastron_sdm120", {"relay_unit_id": 20, "relay_coil": 0}),
    ("Room 3", 3, "hiking_dds238_2", {}),
]


def main(config_dir: str, ledger_url: str, token: str, sim_port: str) -> int:
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
    if any(entry["domain"] == DOMAIN for entry in entries):
        print("develop: Home Assistant already has a Prepaid Meter entry; left as it is")
        return 0
    with urllib.request.urlopen(f"{ledger_url}/api/v1/health", timeout=5) as response:  # noqa: S310
        ledger_id = json.load(response)["ledger_id"]
    subentries = []
    for name, unit, profile, extra in DEMO_METERS:
        data = {
            "name": name,
            "profile": profile,
            "connection": "tcp",
            "host": "127.0.0.1",
            "port": int(sim_port),
            "unit_id": unit,
            "scan_interval": 10,
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
    print(f"develop: added the ledger site with {len(subentries)} simulated meters")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
