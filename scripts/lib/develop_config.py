"""Write scripts/develop's Home Assistant configuration (on every start: these files are ours).

``configuration.yaml``: a real install's integrations that work offline (history, logbook,
energy, the recorder, ...), the UI editors' ``automations.yaml``/``scripts.yaml``/``scenes.yaml``
included (created empty when missing, never overwritten), and no integration that needs the
internet. ``.storage/http``: the port. The blueprints are copied from this checkout.
Standard library only (scripts/develop runs it before Home Assistant starts; the tests import it).

    python scripts/lib/develop_config.py CONFIG_DIR PORT
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: What a default install (``default_config:``) has, minus what needs the internet or the
#: hardware of a real host (cloud, alerts, go2rtc, bluetooth, usb, network discovery).
#: Core integrations (automation, script, scene, person, zone, input_*, ...) load anyway.
CONFIGURATION_YAML = """\
# Written by scripts/develop on every start: edit scripts/lib/develop_config.py instead.
# Automations, scripts and scenes made in the UI live in their own files (kept across starts).
homeassistant:
  name: Prepaid Meter demo
  country: DE
  currency: EUR
  unit_system: metric
  time_zone: Europe/Berlin
  latitude: 52.52
  longitude: 13.40
  elevation: 34
frontend:
config:
automation: !include automations.yaml
script: !include scripts.yaml
scene: !include scenes.yaml
recorder:
  purge_keep_days: 30
history:
logbook:
energy:
sun:
my:
image_upload:
media_source:
logger:
  default: info
  logs:
    custom_components.prepaid_meter: debug
    # Home Assistant sets up TTS (needs ffmpeg) and image processing (camera snapshots use
    # libturbojpeg) on every install; the demo has neither binary nor any use for them.
    haffmpeg: critical
    homeassistant.components.camera.img_util: critical
"""

#: The UI editors' files and what an empty one holds.
UI_FILES = {"automations.yaml": "[]\n", "scripts.yaml": "", "scenes.yaml": "[]\n"}


def http_storage(port: int) -> dict[str, object]:
    """Home Assistant's HTTP settings (the port lives in storage; YAML for it raises a repair)."""
    return {
        "version": 2,
        "minor_version": 2,
        "key": "http",
        "data": {
            "stable": {
                "server_port": port,
                "cors_allowed_origins": ["https://cast.home-assistant.io"],
                "login_attempts_threshold": -1,
                "ip_ban_enabled": True,
                "ssl_profile": "modern",
                "use_x_frame_options": True,
                "created_at": "2026-01-01T00:00:00+00:00",
                "error": None,
                "error_message": None,
            },
            "pending": None,
            "yaml_migration_done": True,
        },
    }


#: Onboarding steps marked done before the first start. The core-config step is skipped: the
#: location is in configuration.yaml, and finishing it sets up met (weather), radio browser,
#: Google Translate and the shopping list, the first three of which need the internet.
ONBOARDING_DONE = ["core_config", "analytics"]


def onboarding_storage() -> dict[str, object]:
    """Home Assistant's onboarding progress: all but the owner user and the frontend login."""
    return {
        "version": 4,
        "minor_version": 1,
        "key": "onboarding",
        "data": {"done": ONBOARDING_DONE},
    }


def write_config(config_dir: Path, port: int) -> None:
    """Write (or refresh) everything scripts/develop owns in Home Assistant's config dir."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "configuration.yaml").write_text(CONFIGURATION_YAML, encoding="utf-8")
    for name, empty in UI_FILES.items():
        path = config_dir / name
        if not path.exists():
            path.write_text(empty, encoding="utf-8")
    storage = config_dir / ".storage"
    storage.mkdir(exist_ok=True)
    (storage / "http").write_text(json.dumps(http_storage(port), indent=2), encoding="utf-8")
    if not (storage / "onboarding").exists() and not (storage / "auth").exists():
        (storage / "onboarding").write_text(
            json.dumps(onboarding_storage(), indent=2), encoding="utf-8"
        )
    blueprints = config_dir / "blueprints" / "automation" / "prepaid_meter"
    blueprints.mkdir(parents=True, exist_ok=True)
    for source in sorted((REPO / "blueprints" / "automation" / "prepaid_meter").glob("*.yaml")):
        shutil.copyfile(source, blueprints / source.name)


if __name__ == "__main__":
    write_config(Path(sys.argv[1]), int(sys.argv[2]))
