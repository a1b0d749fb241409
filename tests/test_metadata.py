"""Repository metadata checked the way hassfest, HACS and the add-on store check it."""

from __future__ import annotations

import json
import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import homeassistant
import prepaid_ledger
import prepaid_meter_contract
import pytest
import yaml
from awesomeversion import AwesomeVersion, AwesomeVersionStrategy
from homeassistant.const import __version__ as ha_version
from packaging.requirements import Requirement
from packaging.version import Version

from custom_components.prepaid_meter.const import PARITY_OPTIONS, PROFILE_CUSTOM
from custom_components.prepaid_meter.meter_flow import BAUD_RATES
from custom_components.prepaid_meter.profiles import PROFILES

ROOT = Path(__file__).resolve().parent.parent
INTEGRATION = ROOT / "custom_components" / "prepaid_meter"
ADDON = ROOT / "addon"

IOT_CLASSES = {
    "assumed_state", "calculated", "cloud_polling", "cloud_push", "local_polling", "local_push",
}  # fmt: skip
INTEGRATION_TYPES = {
    "device",
    "entity",
    "hardware",
    "helper",
    "hub",
    "service",
    "system",
    "virtual",
}
ADDON_ARCHES = {"aarch64", "amd64", "armhf", "armv7", "i386"}
TIERS = ["bronze", "silver", "gold", "platinum"]
# The 2026 rule list of hassfest (script/hassfest/quality_scale.py): docs-conditions and
# docs-triggers joined Bronze in 2026.
QUALITY_RULES = {
    # Bronze
    "action-setup", "appropriate-polling", "brands", "common-modules",
    "config-flow-test-coverage", "config-flow", "dependency-transparency", "docs-actions",
    "docs-conditions", "docs-triggers", "docs-high-level-description",
    "docs-installation-instructions", "docs-removal-instructions",
    "entity-event-setup", "entity-unique-id", "has-entity-name", "runtime-data",
    "test-before-configure", "test-before-setup", "unique-config-entry",
    # Silver
    "action-exceptions", "config-entry-unloading", "docs-configuration-parameters",
    "docs-installation-parameters", "entity-unavailable", "integration-owner",
    "log-when-unavailable", "parallel-updates", "reauthentication-flow", "test-coverage",
    # Gold
    "devices", "diagnostics", "discovery-update-info", "discovery", "docs-data-update",
    "docs-examples", "docs-known-limitations", "docs-supported-devices",
    "docs-supported-functions", "docs-troubleshooting", "docs-use-cases", "dynamic-devices",
    "entity-category", "entity-device-class", "entity-disabled-by-default", "entity-translations",
    "exception-translations", "icon-translations", "reconfiguration-flow", "repair-issues",
    "stale-devices",
    # Platinum
    "async-dependency", "inject-websession", "strict-typing",
}  # fmt: skip


def _json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _ha_constraints() -> dict[str, Version]:
    """Exact pins from Home Assistant's package_constraints.txt."""
    text = (Path(homeassistant.__file__).parent / "package_constraints.txt").read_text()
    pins = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line and ";" not in line:
            req = Requirement(line)
            (spec,) = req.specifier
            pins[req.name.lower().replace("_", "-")] = Version(spec.version)
    return pins


def test_manifest_like_hassfest() -> None:
    manifest = _json(INTEGRATION / "manifest.json")
    assert manifest["domain"] == INTEGRATION.name
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"], "hassfest wants domain, name, then sorted keys"
    assert keys[2:] == sorted(keys[2:])
    for key in ("codeowners", "documentation", "issue_tracker", "requirements", "version"):
        assert key in manifest, key
    assert manifest["iot_class"] in IOT_CLASSES
    assert manifest["integration_type"] in INTEGRATION_TYPES
    assert manifest["config_flow"] is True
    assert all(re.fullmatch(r"@[\w-]+(/[\w-]+)?", owner) for owner in manifest["codeowners"])
    version = AwesomeVersion(manifest["version"])
    assert version.strategy in {
        AwesomeVersionStrategy.SEMVER, AwesomeVersionStrategy.CALVER,
        AwesomeVersionStrategy.SIMPLEVER, AwesomeVersionStrategy.PEP440,
    }  # fmt: skip
    assert manifest["version"] == prepaid_ledger.__version__, "integration and add-on ship together"


def test_manifest_requirements_fit_home_assistant_constraints() -> None:
    constraints = _ha_constraints()
    assert "pymodbus" in constraints, "HA pins pymodbus; our range must admit its pin"
    for line in _json(INTEGRATION / "manifest.json")["requirements"]:
        req = Requirement(line)
        name = req.name.lower().replace("_", "-")
        if name in constraints:
            assert req.specifier.contains(constraints[name]), f"{line} excludes HA's {name} pin"
        installed = Version(metadata.version(req.name))
        assert req.specifier.contains(installed), f"{line} not satisfied by {installed}"


def test_hacs_json() -> None:
    hacs = _json(ROOT / "hacs.json")
    allowed = {
        "name", "content_in_root", "zip_release", "filename", "hide_default_branch", "country",
        "homeassistant", "hacs", "persistent_directory", "render_readme",
    }  # fmt: skip
    assert set(hacs) <= allowed
    assert hacs["name"]
    minimum = AwesomeVersion(hacs["homeassistant"])
    assert minimum.valid
    assert minimum <= AwesomeVersion(ha_version), "minimum HA must be one the tests run on"


def test_translations_match_strings() -> None:
    strings = _json(INTEGRATION / "strings.json")
    assert _json(INTEGRATION / "translations" / "en.json") == strings


def _keys(tree: object, path: str = "") -> list[str]:
    if not isinstance(tree, dict):
        return []
    return [
        found
        for key, value in tree.items()
        for found in (f"{path}{key}", *_keys(value, f"{path}{key}."))
    ]


def test_translation_keys_pass_hassfest() -> None:
    """hassfest: every translation key, selector options included, matches [a-z0-9-_]+."""
    keys = _keys(_json(INTEGRATION / "strings.json"))
    assert "selector.parity.options.none" in keys
    bad = [key for key in keys if not re.fullmatch(r"[a-z0-9-_]+", key.rsplit(".", 1)[-1])]
    assert bad == []


def test_every_selector_option_is_translated() -> None:
    selectors = _json(INTEGRATION / "strings.json")["selector"]
    assert set(selectors["parity"]["options"]) == set(PARITY_OPTIONS)
    assert set(selectors["profile"]["options"]) == {*PROFILES, PROFILE_CUSTOM}
    assert set(selectors["baudrate"]["options"]) == set(BAUD_RATES)


def test_every_flow_error_and_abort_is_translated() -> None:
    strings = _json(INTEGRATION / "strings.json")["config"]
    source = (INTEGRATION / "config_flow.py").read_text()
    errors = set(re.findall(r'errors\["base"\] = "(\w+)"', source))
    aborts = set(re.findall(r'reason="(\w+)"', source)) | errors
    assert errors, "the regex must find the flow's errors"
    assert errors <= set(strings["error"])
    assert aborts <= set(strings["abort"])


def test_every_action_is_described_translated_and_has_an_icon() -> None:
    services = _yaml(INTEGRATION / "services.yaml")
    strings = _json(INTEGRATION / "strings.json")
    icons = _json(INTEGRATION / "icons.json")["services"]
    source = (INTEGRATION / "services.py").read_text()
    registered = set(re.findall(r'SERVICE_\w+: Final = "(\w+)"', source))
    assert registered == set(services) == set(strings["services"]) == set(icons)
    key = re.compile(r"[a-z0-9_-]+")
    for name, spec in services.items():
        translated = strings["services"][name]
        assert translated["name"], name
        assert translated["description"], name
        assert set(spec["fields"]) == set(translated["fields"]), name
        assert all(key.fullmatch(field) for field in spec["fields"]), name
        for select in (f["selector"].get("select") for f in spec["fields"].values()):
            if select:
                options = strings["selector"][select["translation_key"]]["options"]
                assert set(select["options"]) == set(options), name


def test_every_action_error_is_translated() -> None:
    exceptions = _json(INTEGRATION / "strings.json")["exceptions"]
    source = (INTEGRATION / "services.py").read_text()
    keys = set(re.findall(r'_(?:invalid|refused_as)\(\s*"(\w+)"', source))
    keys |= set(re.findall(r'translation_key="(\w+)"', source))
    money = (INTEGRATION / "money.py").read_text()
    keys |= set(re.findall(r'"((?:invalid_)?amount\w*)"', money))
    assert {"amount_too_precise", "amount_not_positive", "amount_not_zero"} <= keys
    assert len(keys) >= 15, "the regexes must find the actions' errors"
    assert keys <= set(exceptions)
    assert all(re.fullmatch(r"[a-z0-9_-]+", key) for key in exceptions)


def test_quality_scale_lists_every_rule() -> None:
    rules = _yaml(INTEGRATION / "quality_scale.yaml")["rules"]
    assert set(rules) == QUALITY_RULES
    for name, value in rules.items():
        if isinstance(value, dict):
            assert value["status"] in {"done", "todo", "exempt"}, name
            if value["status"] == "exempt":
                assert value.get("comment"), f"{name}: exempt needs a comment"
        else:
            assert value in {"done", "todo"}, name


def test_brand_icon_is_a_png() -> None:
    icon = (INTEGRATION / "brand" / "icon.png").read_bytes()
    assert icon.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(icon[16:20]), int.from_bytes(icon[20:24])
    assert (width, height) == (256, 256)


def test_repository_yaml() -> None:
    repo = _yaml(ROOT / "repository.yaml")
    assert repo["name"]
    assert repo["url"].startswith("https://")
    assert repo["maintainer"]


def test_addon_config() -> None:
    config = _yaml(ADDON / "config.yaml")
    for key in ("name", "version", "slug", "description", "arch"):
        assert config.get(key), key
    assert re.fullmatch(r"[a-z0-9_]+", config["slug"])
    assert set(config["arch"]) <= ADDON_ARCHES
    assert {"aarch64", "amd64"} <= set(config["arch"])
    # Every required option has a default; an optional one (``?``) the user has not set is
    # absent, as the Supervisor's rules want (tests/addon/supervisor_rules.py checks them all).
    required = {k for k, v in config["schema"].items() if not str(v).endswith("?")}
    assert set(config["options"]) == required
    assert "prepaid_meter" in config["discovery"]
    pyproject = tomllib.loads((ADDON / "pyproject.toml").read_text())
    assert config["version"] == pyproject["project"]["version"] == prepaid_ledger.__version__
    dockerfile = (ADDON / "Dockerfile").read_text()
    assert re.search(r"^FROM ghcr\.io/home-assistant/", dockerfile, re.MULTILINE)


@pytest.mark.parametrize(
    "requirement",
    tomllib.loads((ADDON / "pyproject.toml").read_text())["project"]["dependencies"],
)
def test_ledger_dependencies_installed(requirement: str) -> None:
    """The pinned environment satisfies what the ledger package declares."""
    req = Requirement(requirement)
    assert req.specifier.contains(Version(metadata.version(req.name)))


def test_both_halves_pin_the_contract_this_checkout_builds() -> None:
    """The integration's manifest and the add-on require the contract version in contract/.

    Home Assistant installs the manifest's pin from PyPI and the add-on image installs the
    add-on's, so a pin that differs from contract/pyproject.toml would ship another contract.
    """
    version = tomllib.loads((ROOT / "contract" / "pyproject.toml").read_text())["project"][
        "version"
    ]
    assert prepaid_meter_contract.__version__ == version
    wanted = f"prepaid-meter-contract=={version}"
    assert wanted in _json(INTEGRATION / "manifest.json")["requirements"]
    addon = tomllib.loads((ADDON / "pyproject.toml").read_text())["project"]["dependencies"]
    assert wanted in addon
    assert metadata.version("prepaid-meter-contract") == version, "run scripts/setup"


def _tier_rules() -> dict[str, set[str]]:
    """Rules by tier, read from the comments that head each group in QUALITY_RULES."""
    source = Path(__file__).read_text(encoding="utf-8")
    block = source[
        source.index("QUALITY_RULES = {") : source.index(
            "}  # fmt: skip", source.index("QUALITY_RULES = {")
        )
    ]
    tiers: dict[str, set[str]] = {}
    current = ""
    for line in block.splitlines():
        if line.strip().startswith("# "):
            current = line.strip()[2:].lower()
            tiers[current] = set()
        else:
            tiers.setdefault(current, set()).update(re.findall(r'"([a-z-]+)"', line))
    return tiers


def test_claimed_quality_tier_holds() -> None:
    claimed = _json(INTEGRATION / "manifest.json")["quality_scale"]
    rules = _yaml(INTEGRATION / "quality_scale.yaml")["rules"]
    tiers = _tier_rules()
    assert set().union(*tiers.values()) == QUALITY_RULES
    for tier in TIERS[: TIERS.index(claimed) + 1]:
        for rule in tiers[tier]:
            value = rules[rule]
            status = value["status"] if isinstance(value, dict) else value
            assert status in {"done", "exempt"}, f"{claimed} claimed but {rule} is {status}"
