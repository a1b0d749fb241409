"""The packages the Home Assistant smoke (scripts/smoke-newest-ha) needs beyond ``homeassistant``.

Runs with the smoke venv's own Python, so it asks the Home Assistant release under test (not the
one the test suite is pinned to): the integrations that release sets up by default
(``bootstrap.CORE_INTEGRATIONS`` and ``DEFAULT_INTEGRATIONS``), the ones in scripts/develop's
``configuration.yaml`` (the smoke uses the same configuration) and our manifest's dependencies
(``modbus``), each with its dependencies and after-dependencies (as Home Assistant's own
requirements handling follows them), as that release's manifests list them; plus the login
modules' requirements (TOTP). Prints the requirements that are not installed yet, one a line, as
the manifests pin them (``modbus-connection[tmodbus]==...``); nothing when the venv is complete.

Home Assistant then runs with ``--skip-pip``: it installs nothing at run time, so the smoke
works offline once the venv exists, and a requirement missing from this list fails loudly.

    python scripts/lib/smoke_ha_requirements.py [--all]
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path

import homeassistant
from homeassistant import bootstrap
from homeassistant.util.package import is_installed

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "lib"))

from develop_config import CONFIGURATION_YAML  # noqa: E402 - stdlib-only module of this checkout

COMPONENTS = Path(homeassistant.__file__).parent / "components"
#: Login (multi-factor) modules Home Assistant loads with its default auth configuration.
MFA_MODULES = ("totp", "notify")


def configured_domains() -> set[str]:
    """Return the top-level keys of scripts/develop's configuration.yaml."""
    return set(re.findall(r"^([a-z_][a-z0-9_]*):", CONFIGURATION_YAML, flags=re.MULTILINE))


def our_dependencies() -> set[str]:
    """Return the Home Assistant integrations prepaid_meter's manifest depends on."""
    manifest = json.loads(
        (REPO / "custom_components" / "prepaid_meter" / "manifest.json").read_text("utf-8")
    )
    return {*manifest.get("dependencies", []), *manifest.get("after_dependencies", [])}


def domains_to_load() -> set[str]:
    """Return the integrations the smoke's Home Assistant sets up, with their dependencies."""
    todo = [
        *bootstrap.CORE_INTEGRATIONS,
        *bootstrap.DEFAULT_INTEGRATIONS,
        *configured_domains(),
        *our_dependencies(),
    ]
    seen: set[str] = set()
    while todo:
        domain = todo.pop()
        manifest_path = COMPONENTS / domain / "manifest.json"
        if domain in seen or not manifest_path.exists():
            continue
        seen.add(domain)
        manifest = json.loads(manifest_path.read_text("utf-8"))
        # Home Assistant installs the requirements of both (requirements.py), and a default
        # integration may import an after-dependency's helpers (analytics imports hassio's).
        todo.extend([*manifest.get("dependencies", []), *manifest.get("after_dependencies", [])])
    return seen


def requirements() -> list[str]:
    """Return every requirement of those integrations and the login modules, once each."""
    wanted: dict[str, None] = {}
    for domain in sorted(domains_to_load()):
        manifest = json.loads((COMPONENTS / domain / "manifest.json").read_text("utf-8"))
        wanted.update(dict.fromkeys(manifest.get("requirements", [])))
    for name in MFA_MODULES:
        module = importlib.import_module(f"homeassistant.auth.mfa_modules.{name}")
        wanted.update(dict.fromkeys(getattr(module, "REQUIREMENTS", [])))
    return list(wanted)


if __name__ == "__main__":
    show_all = "--all" in sys.argv[1:]
    for requirement in requirements():
        if show_all or not is_installed(requirement):
            print(requirement)
