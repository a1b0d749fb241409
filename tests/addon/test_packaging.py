"""The add-on as the Supervisor sees it: options schema, images, Dockerfile, and run.sh for real.

Docker cannot run here, so run.sh is started directly with bash: a sample options file, the
bashio functions it uses (tests/addon/bashio_shim.sh; bashio is on no package registry) and a
fake Supervisor at its HTTP boundary that records the discovery request.
"""

from __future__ import annotations

import asyncio
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
import yaml
from aiohttp import web

ADDON = Path(__file__).resolve().parents[2] / "addon"
SHIM = Path(__file__).with_name("bashio_shim.sh")
CONFIG = yaml.safe_load((ADDON / "config.yaml").read_text(encoding="utf-8"))

# The Supervisor's option types (developers.home-assistant.io, "Add-on configuration": Options
# / Schema), each optionally followed by "?" for an optional option.
_TYPE = re.compile(
    r"^(str|bool|email|url|password|port|device(\(subsystem=\w+\))?"
    r"|(int|float)(\((-?[0-9.]*),(-?[0-9.]*)\))?"
    r"|match\(.+\)|list\([^|()]+(\|[^|()]+)*\))\??$"
)


def valid(kind: str, value: Any) -> bool:
    """Whether VALUE satisfies the Supervisor schema type KIND (the documented semantics)."""
    optional = kind.endswith("?")
    base = kind.removesuffix("?")
    if value in ("", None):
        return optional
    if base in ("str", "password"):
        return isinstance(value, str)
    if base == "bool":
        return isinstance(value, bool)
    if base == "url":
        return isinstance(value, str) and re.match(r"^https?://\S+$", value) is not None
    if base == "port":
        return isinstance(value, int) and 1 <= value <= 65535
    if match := re.fullmatch(r"(int|float)(?:\((-?[0-9.]*),(-?[0-9.]*)\))?", base):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if match[1] == "int" and not isinstance(value, int):
            return False
        low, high = match[2], match[3]
        return (not low or value >= float(low)) and (not high or value <= float(high))
    if match := re.fullmatch(r"match\((.+)\)", base):
        return isinstance(value, str) and re.fullmatch(match[1], value) is not None
    if match := re.fullmatch(r"list\((.+)\)", base):
        return value in match[1].split("|")
    return False


def test_config_is_valid_for_the_supervisor() -> None:
    for key in ("name", "version", "slug", "description", "arch"):
        assert CONFIG[key], key
    assert re.fullmatch(r"[a-z0-9_]+", CONFIG["slug"])
    assert set(CONFIG["arch"]) <= {"aarch64", "amd64", "armhf", "armv7", "i386"}
    assert CONFIG["init"] is False
    assert CONFIG["ingress"] is True
    assert isinstance(CONFIG["ingress_port"], int)
    assert CONFIG["discovery"] == ["prepaid_meter"]
    assert CONFIG["panel_icon"].startswith("mdi:")
    schema, options = CONFIG["schema"], CONFIG["options"]
    assert set(options) == set(schema)
    for key, kind in schema.items():
        assert _TYPE.match(kind), f"{key}: {kind} is not a Supervisor type"
        assert valid(kind, options[key]), f"default of {key} breaks {kind}"
    for secret in ("admin_token", "stripe_webhook_secret", "stripe_api_key"):
        assert schema[secret] == "password?"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("log_level", "loud"),
        ("currency", "eur"),
        ("stuck_order_minutes", 0),
        ("max_topup", 1.5),
        ("public_base_url", "pay.example.com"),
    ],
)
def test_schema_refuses_bad_options(key: str, value: Any) -> None:
    assert not valid(CONFIG["schema"][key], value)


def test_translations_name_every_option() -> None:
    translations = yaml.safe_load((ADDON / "translations" / "en.yaml").read_text(encoding="utf-8"))
    assert set(translations["configuration"]) == set(CONFIG["schema"])
    for key, text in translations["configuration"].items():
        assert text["name"], key
        assert text["description"], key
    assert set(translations["network"]) == set(CONFIG["ports"])


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


@pytest.mark.usefixtures("socket_enabled")
async def test_run_script_starts_the_ledger_and_announces_it(tmp_path: Path) -> None:
    discoveries: list[tuple[str, Any]] = []

    async def discovery(request: web.Request) -> web.Response:
        discoveries.append((request.headers.get("Authorization", ""), await request.json()))
        return web.json_response({"result": "ok", "data": {"uuid": "5f1e0c0a"}})

    supervisor = web.Application()
    supervisor.router.add_post("/discovery", discovery)
    runner = web.AppRunner(supervisor)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    supervisor_url = f"http://127.0.0.1:{runner.addresses[0][1]}"

    data = tmp_path / "data"
    data.mkdir()
    options = CONFIG["options"] | {
        "admin_token": "landlord-admin-token-1",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "max_topup": 300,
        "log_level": "warning",
    }
    (tmp_path / "options.json").write_text(json.dumps(options), encoding="utf-8")
    port = free_port()
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("PREPAID_LEDGER_")
    } | {
        "BASHIO_OPTIONS": str(tmp_path / "options.json"),
        "SUPERVISOR_API": supervisor_url,
        "SUPERVISOR_TOKEN": "supervisor-token-xyz",
        "PREPAID_LEDGER_DATA": str(data),
        "PREPAID_LEDGER_PORT": str(port),
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
            assert discoveries == [
                (
                    "Bearer supervisor-token-xyz",
                    {
                        "service": "prepaid_meter",
                        "config": {
                            "host": socket.gethostname(),
                            "port": port,
                            "token": "landlord-admin-token-1",
                        },
                    },
                )
            ]
            token = discoveries[0][1]["config"]["token"]
            headers = {"Authorization": f"Bearer {token}"}
            async with http.get(f"http://127.0.0.1:{port}/api/v1/whoami", headers=headers) as resp:
                assert (await resp.json())["scope"] == "admin"
            # The options reached the ledger: max_topup 300 EUR is 30000 cents.
            account_body = {"name": "Room 1", "currency": "EUR", "timezone": "Europe/Berlin"}
            async with http.post(
                f"http://127.0.0.1:{port}/api/v1/accounts", json=account_body, headers=headers
            ) as resp:
                account = await resp.json()
            too_much = {"account": account["id"], "amount_minor": 30_001}
            async with http.post(
                f"http://127.0.0.1:{port}/api/v1/topups",
                json=too_much,
                headers=headers | {"Idempotency-Key": "k1"},
            ) as resp:
                assert resp.status == 422
                assert "30000" in (await resp.json())["error"]["message"]
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 20)
        await runner.cleanup()
