"""The add-on as the Supervisor sees it: config, options, translations, repository, run.sh.

The Supervisor's rules are restated in tests/addon/supervisor_rules.py (each with its source
file and function); each rule here is also fed a known-bad input, so every check can fail.
Docker cannot run here, so run.sh is started directly with bash: the options file the
Supervisor would write, the bashio functions it uses (tests/addon/bashio_shim.sh; bashio is on
no package registry) and a fake Supervisor at its HTTP boundary that records the discovery.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import voluptuous as vol
import yaml
from aiohttp import web
from homeassistant.generated.languages import LANGUAGES as HA_LANGUAGES

from tests.addon.supervisor_rules import (
    CONFIG_SUFFIXES,
    OPTION_TYPE,
    config_advisories,
    dropped_config_keys,
    unknown_option_keys,
    validate_app_config,
    validate_options,
    validate_repository,
    validate_translation,
)

ROOT = Path(__file__).resolve().parents[2]
ADDON = ROOT / "addon"
SHIM = Path(__file__).with_name("bashio_shim.sh")
CONFIG = yaml.safe_load((ADDON / "config.yaml").read_text(encoding="utf-8"))
TRANSLATIONS = {
    path.stem: path for path in sorted((ADDON / "translations").iterdir())
}  # supervisor/store/data.py `_read_app_translations`: the language is the file's stem


def refused(check: Any, *args: Any) -> str:
    """The Supervisor's message when CHECK refuses ARGS; fails the test when it accepts them."""
    with pytest.raises(vol.Invalid) as caught:
        check(*args)
    return str(caught.value)


# ---- Option types: supervisor/apps/options.py RE_SCHEMA_ELEMENT ----------------------------


@pytest.mark.parametrize(
    "kind",
    [
        "str", "str?", "str(1,)", "str(,64)", "password", "password(8,64)?", "int", "int?",
        "int(-5,5)", "int(0,)", "float", "float(0.5,)", "float(.5,1)", "float(-1.5,-0.5)",
        "bool", "email?", "url", "url?", "port", "port?", "match(^[A-Z]{3}$)",
        "match(^[A-Z]{3}$)?", "list(debug|info|warning)", "list(a)?", "device",
        "device(subsystem=tty)?",
    ],
)  # fmt: skip
def test_option_types_the_supervisor_knows(kind: str) -> None:
    assert OPTION_TYPE.match(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "string", "integer", "url??", "?url", "str(-1,)", "password(a,)", "int(1.5,2)",
        "float(1e3,)", "list()", "list", "match", "device(subsystem=TTY)", "device(tty)", "URL",
        "bool(1,2)", "port(1,)",
    ],
)  # fmt: skip
def test_option_types_the_supervisor_refuses(kind: str) -> None:
    assert not OPTION_TYPE.match(kind)
    # supervisor/apps/validate.py SCHEMA_ELEMENT: such a config is not loaded at all.
    refused(validate_app_config, CONFIG | {"schema": {"x": kind}, "options": {}})


# ---- Option values: supervisor/apps/options.py AppOptions._single_validate ------------------


@pytest.mark.parametrize(
    ("kind", "value", "accepted"),
    [
        # The defect of issue 18: an unset url? as "" stops the add-on at every start.
        ("url?", "", False),
        ("url?", "https://pay.example.com", True),
        ("url?", "http://192.168.1.20:8099", True),
        ("url", "pay.example.com", False),
        # "" passes only str?/password? (a str); every other type refuses it.
        ("str?", "", True),
        ("password?", "", True),
        ("email?", "", False),
        ("int?", "", False),
        ("float?", "", False),
        ("port?", "", False),
        ("bool?", "", False),
        ("match(^[A-Z]{3}$)?", "", False),
        ("list(debug|info)?", "", False),
        # null is a missing value, optional or not.
        ("str?", None, False),
        ("url?", None, False),
        # str/password: strings only (no coercion), lengths from str(min,max).
        ("str", 5, False),
        ("str(2,4)", "a", False),
        ("str(2,4)", "abcd", True),
        ("str(2,4)", "abcde", False),
        ("password(8,)", "short", False),
        # int/float coerce, then check the range.
        ("int(1,1440)", 0, False),
        ("int(1,1440)", 1440, True),
        ("int(1,1440)", 1441, False),
        ("int(1,1440)", "15", True),
        ("int(1,10)", 1.5, True),  # vol.Coerce(int) truncates
        ("int", "1.5", False),
        ("int(-5,)", -5, True),
        ("float(0.5,)", 0.4, False),
        ("float(0.5,)", "0.5", True),
        ("bool", "yes", True),
        ("bool", False, True),
        ("bool", "maybe", False),
        ("email", "landlord@example.com", True),
        ("email", "landlord", False),
        ("port", 0, False),
        ("port", 65535, True),
        ("port", 65536, False),
        ("port", "8099", True),
        # match(): re.match on str(value), anchored at the start only.
        ("match(^[A-Z]{3}$)", "eur", False),
        ("match(^[A-Z]{3}$)", "EUR", True),
        ("match([A-Z]{3})", "EURO", True),
        ("match(^\\d+$)", 42, True),
        ("list(debug|info)", "loud", False),
        ("list(debug|info)", "info", True),
        ("device", 5, False),
        # "" and "?" pass the grammar (its empty alternative) but no value passes them.
        ("", "x", False),
        ("?", "x", False),
    ],
)
def test_option_values(kind: str, value: Any, accepted: bool) -> None:
    schema = {"opt": kind}
    if accepted:
        assert validate_options(schema, {"opt": value}) is not None
    else:
        refused(validate_options, schema, {"opt": value})


def test_empty_string_for_url_gives_the_supervisors_message() -> None:
    # What the add-on log showed: voluptuous's Url validator, through AppOptions.
    assert "expected a URL" in refused(validate_options, {"u": "url?"}, {"u": ""})


def test_secrets_lists_and_nested_options() -> None:
    # "!secret NAME" is looked up in secrets.yaml; an unknown one is refused.
    assert validate_options({"p": "password"}, {"p": "!secret ledger"}, {"ledger": "s3"}) == {
        "p": "s3"
    }
    assert "Unknown secret" in refused(validate_options, {"p": "password"}, {"p": "!secret x"})
    # A list option: each item is checked; ["str?"] may be left out, ["str"] may not.
    assert validate_options({"l": ["int(1,)"]}, {"l": [1, "2"]}) == {"l": [1, 2]}
    refused(validate_options, {"l": ["int(1,)"]}, {"l": [0]})
    refused(validate_options, {"l": ["int"]}, {"l": 3})
    assert validate_options({"l": ["str?"]}, {}) == {}
    assert "Missing option 'l'" in refused(validate_options, {"l": ["str"]}, {})
    # A dict option: nested keys are required unless optional, unknown ones dropped.
    nested = {"d": {"host": "str", "port": "port?"}}
    assert validate_options(nested, {"d": {"host": "h", "x": 1}}) == {"d": {"host": "h"}}
    assert "Missing option 'host' in d" in refused(validate_options, nested, {"d": {}})
    assert "Missing option 'd'" in refused(validate_options, nested, {})


# ---- Our options: what the Supervisor validates and writes at every start ------------------


def test_default_options_pass_the_supervisor_at_start() -> None:
    schema, options = CONFIG["schema"], CONFIG["options"]
    # supervisor/apps/app.py App.write_options -> options.py AppOptions: the defaults alone
    # (nothing set by the user) must pass, and are written to /data/options.json unchanged.
    assert validate_options(schema, options) == options
    # A default for an option the schema does not know is dropped silently: a typo.
    assert unknown_option_keys(schema, options) == set()
    # Every required option has a default (a missing one stops the add-on) ...
    required = {key for key, kind in schema.items() if not str(kind).endswith("?")}
    assert required <= set(options)
    # ... and an optional option is left out of the defaults, never given "": that is our rule
    # (issue 18), as "" is refused for url?, email?, int?, port?, match() and list().
    assert [key for key, kind in schema.items() if str(kind).endswith("?") and key in options] == []
    for secret in ("admin_token", "stripe_webhook_secret", "stripe_api_key"):
        assert schema[secret] == "password?"


def test_user_options_pass_the_supervisor() -> None:
    schema = CONFIG["schema"]
    options = CONFIG["options"] | {
        "admin_token": "landlord-admin-token-1",
        "database_url": "postgresql+asyncpg://ledger:pw@db/ledger",
        "public_base_url": "https://pay.example.com",
        "stuck_order_minutes": 30,
    }
    assert validate_options(schema, options) == options


def bad_defaults() -> list[Any]:
    return [
        pytest.param({"public_base_url": ""}, "expected a URL", id="public_base_url-empty"),
        pytest.param({"public_base_url": "pay.example.com"}, "URL", id="url-without-scheme"),
        pytest.param({"currency": "eur"}, "match", id="currency-lowercase"),
        pytest.param({"stuck_order_minutes": 0}, "at least", id="minutes-zero"),
        pytest.param({"max_topup": "lots"}, "int", id="max-topup-text"),
        pytest.param({"log_level": "loud"}, "value must be one of", id="log-level"),
        pytest.param({"timezone": None}, "Missing required option", id="timezone-null"),
    ]


@pytest.mark.parametrize(("change", "message"), bad_defaults())
def test_checker_refuses_known_bad_defaults(change: dict[str, Any], message: str) -> None:
    assert message in refused(validate_options, CONFIG["schema"], CONFIG["options"] | change)


def test_checker_refuses_missing_required_and_flags_unknown_options() -> None:
    options = {key: value for key, value in CONFIG["options"].items() if key != "currency"}
    assert "Missing option 'currency' in root" in refused(
        validate_options, CONFIG["schema"], options
    )
    typo = CONFIG["options"] | {"public_base_ur": "https://pay.example.com"}
    assert unknown_option_keys(CONFIG["schema"], typo) == {"public_base_ur"}
    # The Supervisor drops it without an error: the option never reaches the ledger.
    assert "public_base_ur" not in validate_options(CONFIG["schema"], typo)


# ---- config.yaml: supervisor/apps/validate.py SCHEMA_APP_CONFIG ----------------------------


def test_config_yaml_is_loaded_by_the_supervisor() -> None:
    validate_app_config(CONFIG)
    assert dropped_config_keys(CONFIG) == set()
    assert config_advisories(CONFIG) == []
    # Ours: the discovery service the integration listens for, ingress for the sidebar page
    # (admins only), the ledger's port closed on the host until the user maps it.
    assert CONFIG["slug"] == "prepaid_meter_ledger"
    assert CONFIG["discovery"] == ["prepaid_meter"]
    assert CONFIG["ingress"] is True
    assert CONFIG["panel_admin"] is True
    # Two listeners, both closed until mapped: 8100 public (webhooks, pay pages), the ingress
    # port 8099 private (admin API, landlord page), each described.
    assert CONFIG["ingress_port"] == 8099
    assert CONFIG["ports"] == {"8100/tcp": None, "8099/tcp": None}
    assert set(CONFIG["ports_description"]) == set(CONFIG["ports"])
    assert CONFIG["init"] is False
    assert CONFIG["panel_icon"].startswith("mdi:")


def bad_configs() -> list[Any]:
    def without(key: str) -> dict[str, Any]:
        return {k: v for k, v in CONFIG.items() if k != key}

    return [
        pytest.param(without("name"), id="no-name"),
        pytest.param(CONFIG | {"name": ""}, id="empty-name"),
        pytest.param(without("version"), id="no-version"),
        pytest.param(without("slug"), id="no-slug"),
        pytest.param(without("description"), id="no-description"),
        pytest.param(without("arch"), id="no-arch"),
        pytest.param(CONFIG | {"slug": "prepaid meter"}, id="slug-with-space"),
        pytest.param(CONFIG | {"arch": ["x86"]}, id="unknown-arch"),
        pytest.param(CONFIG | {"arch": "amd64"}, id="arch-not-a-list"),
        pytest.param(CONFIG | {"url": "prepaid-meter"}, id="url"),
        pytest.param(CONFIG | {"startup": "later"}, id="startup"),
        pytest.param(CONFIG | {"boot": "always"}, id="boot"),
        pytest.param(CONFIG | {"init": "maybe"}, id="init"),
        pytest.param(CONFIG | {"ports": {"8099/tcp": 70000}}, id="host-port-out-of-range"),
        pytest.param(CONFIG | {"ports": {"http": 80}}, id="container-port-name"),
        pytest.param(CONFIG | {"ports": {"8099/sctp": None}}, id="port-protocol"),
        pytest.param(CONFIG | {"ingress_port": 70000}, id="ingress-port"),
        pytest.param(
            CONFIG | {"ingress_port": 0, "ports": {"62001/tcp": None}}, id="dynamic-ingress-port"
        ),
        pytest.param(CONFIG | {"ingress": "sometimes"}, id="ingress"),
        pytest.param(CONFIG | {"discovery": "prepaid_meter"}, id="discovery-not-a-list"),
        pytest.param(CONFIG | {"hassio_role": "root"}, id="hassio-role"),
        pytest.param(CONFIG | {"schema": {"x": ["str", ["str"]]}}, id="list-in-list"),
        pytest.param(CONFIG | {"schema": ["url?"]}, id="schema-not-a-mapping"),
        pytest.param(CONFIG | {"options": []}, id="options-not-a-mapping"),
        pytest.param(["name"], id="not-a-mapping"),
    ]


@pytest.mark.parametrize("config", bad_configs())
def test_checker_refuses_known_bad_configs(config: Any) -> None:
    refused(validate_app_config, config)


def test_checker_flags_dropped_keys_and_advisories() -> None:
    typo = CONFIG | {"ingres": True, "hassio_ap": True}
    validate_app_config(typo)  # the Supervisor loads it and drops both keys without a word
    assert dropped_config_keys(typo) == {"ingres", "hassio_ap"}
    assert config_advisories(CONFIG | {"arch": ["armv7", "amd64"], "startup": "before"}) == [
        "deprecated startup value before",
        "deprecated arch armv7",
    ]


def test_the_supervisor_finds_exactly_our_add_on_and_repository() -> None:
    # supervisor/store/data.py StoreData._find_app_configs: every config.{yaml,yml,json} in the
    # repository outside dot-folders and rootfs is read as an add-on (and warned about when it
    # is not one); _read_git_repository takes the first repository.* anywhere in it.
    # The Supervisor reads a git clone; here, the working tree less what .gitignore keeps out
    # (and, for repository.*, dot-folders: local caches, never tracked).
    ignored = {"__pycache__", "build", "htmlcov"}
    files = [
        path.relative_to(ROOT)
        for path in ROOT.rglob("*.*")
        if not ignored & set(path.relative_to(ROOT).parts)
        and not any(part.endswith(".egg-info") for part in path.parts)
        and path.stem in ("config", "repository")
    ]
    configs = [
        path
        for path in files
        if path.stem == "config"
        and path.suffix in CONFIG_SUFFIXES
        and not any(part.startswith(".") or part == "rootfs" for part in path.parts)
    ]
    assert configs == [Path("addon/config.yaml")]
    repositories = [
        path
        for path in files
        if path.stem == "repository"
        and path.suffix in CONFIG_SUFFIXES
        and not any(part.startswith(".") for part in path.parts)
    ]
    assert repositories == [Path("repository.yaml")]


# ---- repository.yaml: supervisor/store/validate.py SCHEMA_REPOSITORY_CONFIG -----------------


def test_repository_yaml() -> None:
    data = yaml.safe_load((ROOT / "repository.yaml").read_text(encoding="utf-8"))
    assert validate_repository(data) == data  # valid, and nothing dropped (no typo'd key)


@pytest.mark.parametrize(
    "data",
    [
        {"url": "https://github.com/prepaid-meter/prepaid_meter"},
        {"name": "Prepaid Meter add-ons", "url": "github.com/prepaid-meter"},
        {"name": 5},
        {"name": "Prepaid Meter add-ons", "maintainer": ["a", "b"]},
    ],
)
def test_checker_refuses_known_bad_repository_files(data: dict[str, Any]) -> None:
    refused(validate_repository, data)


# ---- translations/*.yaml: supervisor/apps/validate.py SCHEMA_APP_TRANSLATIONS ---------------


def load_translation(language: str) -> Any:
    return yaml.safe_load(TRANSLATIONS[language].read_text(encoding="utf-8"))


def test_translation_files_are_languages_home_assistant_uses() -> None:
    # The frontend picks addon.translations[hass.language] (falling back to "en"); the
    # Supervisor keys each file by its stem, so a file must be named by HA's language code:
    # Simplified Chinese is zh-Hans (not zh-CN or zh).
    assert set(TRANSLATIONS) == {"en", "de", "zh-Hans"}
    assert set(TRANSLATIONS) <= set(HA_LANGUAGES)
    assert all(path.suffix in CONFIG_SUFFIXES for path in TRANSLATIONS.values())


@pytest.mark.parametrize("language", sorted(TRANSLATIONS))
def test_translation_matches_the_supervisor_schema_and_our_options(language: str) -> None:
    data = load_translation(language)
    # A file that fails is skipped with a warning (store/data.py _read_app_translations); keys
    # the schema does not know are dropped (REMOVE_EXTRA): both would lose text silently.
    assert validate_translation(data) == data
    assert set(data["configuration"]) == set(CONFIG["schema"])  # every option, only those
    assert set(data["network"]) == set(CONFIG["ports"])
    english = load_translation("en")
    assert set(data["configuration"]) == set(english["configuration"])
    assert set(data["network"]) == set(english["network"])
    for key, text in data["configuration"].items():
        assert text["name"].strip(), key
        assert text["description"].strip(), key


@pytest.mark.parametrize(
    "data",
    [
        {"configuration": {"currency": {"description": "no name"}}},
        {"configuration": {"currency": {"name": 3}}},
        {"configuration": {"currency": "Currency"}},
        {"configuration": {"currency": {"name": "C", "fields": {"x": {"description": "d"}}}}},
        {"network": {"8099/tcp": {"description": "nested"}}},
    ],
)
def test_checker_refuses_known_bad_translations(data: dict[str, Any]) -> None:
    refused(validate_translation, data)


def test_checker_notices_a_translation_for_an_option_that_does_not_exist() -> None:
    data = copy.deepcopy(load_translation("en"))
    data["configuration"]["public_url"] = data["configuration"].pop("public_base_url")
    assert validate_translation(data) == data  # the Supervisor takes it ...
    assert set(data["configuration"]) != set(CONFIG["schema"])  # ... our test does not


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_images_and_dockerfile() -> None:
    assert png_size(ADDON / "icon.png") == (128, 128)
    width, height = png_size(ADDON / "logo.png")
    assert width <= 250
    assert height <= 100
    dockerfile = (ADDON / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM ghcr\.io/home-assistant/\S+:\S+$", dockerfile, re.MULTILINE)
    assert not (ADDON / "build.yaml").exists()
    for line in re.findall(r"^COPY (.+)$", dockerfile, re.MULTILINE):
        *sources, _target = line.split()
        for source in sources:
            assert (ADDON / source).exists(), f"COPY source {source} is missing"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def fake_supervisor(discoveries: list[tuple[str, Any]]) -> tuple[web.AppRunner, str]:
    """The Supervisor's /discovery endpoint on a free loopback port, recording each call."""

    async def discovery(request: web.Request) -> web.Response:
        discoveries.append((request.headers.get("Authorization", ""), await request.json()))
        return web.json_response({"result": "ok", "data": {"uuid": "5f1e0c0a"}})

    supervisor = web.Application()
    supervisor.router.add_post("/discovery", discovery)
    runner = web.AppRunner(supervisor)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def supervisor_options(user: dict[str, Any]) -> dict[str, Any]:
    """The /data/options.json the Supervisor writes: defaults merged with the user's, validated.

    supervisor/apps/app.py App.options (defaults, then the user's) and App.write_options.
    """
    return validate_options(CONFIG["schema"], CONFIG["options"] | user)


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        pytest.param(
            {},
            {
                "admin_token": None,
                "max_topup_minor": 50_000,
                "public_base_url": None,
                # The ledger's own defaults (docs/performance.md, "Overload").
                "limits": "load limits: 12 requests at once (6 of them reading batches), "
                "database connections 10 + 10 under load, backlogs written by 2 more processes",
            },
            id="defaults-only",
        ),
        pytest.param(
            {
                "admin_token": "landlord-admin-token-1",
                "currency": "EUR",
                "timezone": "Europe/Berlin",
                "max_topup": 300,
                "log_level": "info",
                "public_base_url": "https://pay.example.com/ledger/",
                "max_active_requests": 30,
                "max_active_readings": 9,
                "db_pool_size": 20,
                "db_max_overflow": 5,
                "backlog_worker": False,
            },
            {
                "admin_token": "landlord-admin-token-1",
                "max_topup_minor": 30_000,
                "public_base_url": "https://pay.example.com/ledger",
                "limits": "load limits: 30 requests at once (9 of them reading batches), "
                "database connections 20 + 5 under load, backlogs written in this process "
                "(backlog_worker off)",
            },
            id="user-options",
        ),
    ],
)
@pytest.mark.usefixtures("socket_enabled")
async def test_run_script_starts_the_ledger_and_announces_it(
    tmp_path: Path, user: dict[str, Any], expected: dict[str, Any]
) -> None:
    discoveries: list[tuple[str, Any]] = []
    runner, supervisor_url = await fake_supervisor(discoveries)
    data = tmp_path / "data"
    data.mkdir()
    options = supervisor_options(user)
    (tmp_path / "options.json").write_text(json.dumps(options), encoding="utf-8")
    port, public_port = free_port(), free_port()
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("PREPAID_LEDGER_")
    } | {
        "BASHIO_OPTIONS": str(tmp_path / "options.json"),
        "SUPERVISOR_API": supervisor_url,
        "SUPERVISOR_TOKEN": "supervisor-token-xyz",
        "PREPAID_LEDGER_DATA": str(data),
        "PREPAID_LEDGER_PORT": str(port),
        "PREPAID_LEDGER_PUBLIC_PORT": str(public_port),
        "PREPAID_LEDGER_PYTHON": sys.executable,
    }
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        'source "$0"; source "$1"',
        str(SHIM),
        str(ADDON / "run.sh"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                if discoveries:
                    break
                assert process.returncode is None, await process.stdout.read()  # type: ignore[union-attr]
                await asyncio.sleep(0.1)
            async with http.get(f"http://127.0.0.1:{port}/api/v1/health") as resp:
                assert resp.status == 200
            async with http.get(f"http://127.0.0.1:{public_port}/api/v1/health") as resp:
                assert resp.status == 200
            # Without the option the ledger made its own token (0600 in its data folder).
            token = expected["admin_token"] or (data / "admin-token").read_text().strip()
            assert discoveries == [
                (
                    "Bearer supervisor-token-xyz",
                    {
                        "service": "prepaid_meter",
                        "config": {"host": socket.gethostname(), "port": port, "token": token},
                    },
                )
            ]
            headers = {"Authorization": f"Bearer {token}"}
            async with http.get(f"http://127.0.0.1:{port}/api/v1/whoami", headers=headers) as resp:
                assert (await resp.json())["scope"] == "admin"
            # The options reached the ledger: the largest top-up in minor units.
            limit = expected["max_topup_minor"]
            account_body = {"name": "Room 1", "currency": "EUR", "timezone": "Europe/Berlin"}
            async with http.post(
                f"http://127.0.0.1:{port}/api/v1/accounts", json=account_body, headers=headers
            ) as resp:
                account = await resp.json()
            too_much = {"account": account["id"], "amount_minor": limit + 1}
            async with http.post(
                f"http://127.0.0.1:{port}/api/v1/topups",
                json=too_much,
                headers=headers | {"Idempotency-Key": "k1"},
            ) as resp:
                assert resp.status == 422
                assert str(limit) in (await resp.json())["error"]["message"]
            # Pay links: under public_base_url exactly, or a clear refusal without it.
            async with http.post(
                f"http://127.0.0.1:{port}/api/v1/accounts/{account['id']}/pay-link",
                headers=headers,
            ) as resp:
                body = await resp.json()
            if expected["public_base_url"] is None:
                assert resp.status == 409
                assert body["error"]["code"] == "no_public_base_url"
            else:
                assert resp.status == 201
                assert re.fullmatch(
                    re.escape(expected["public_base_url"]) + r"/pay/[\w-]+", body["url"]
                )
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 20)
        await runner.cleanup()
    # The load limits reached the ledger (it says which it runs with at start).
    output = (await process.stdout.read()).decode()  # type: ignore[union-attr]
    assert expected["limits"] in output, output[-2000:]
