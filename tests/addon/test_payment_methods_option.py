"""The add-on option ``payment_methods``: what the Supervisor accepts, and what run.sh hands on.

The Supervisor's rules are those of tests/addon/supervisor_rules.py (a ``list(a|b)`` element
type in a one-element list: each item must be one of the alternatives; an empty list passes
the Supervisor). run.sh turns the list bashio prints (one item a line) into the ledger's
``PREPAID_LEDGER_PAYMENT_METHODS``; the ledger then refuses to start, naming the variable,
if a method does not take the currency or none is left.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prepaid_meter_contract.payment_settings import PaymentMethod

from tests.addon.supervisor_rules import OPTION_TYPE, validate_options
from tests.addon.test_packaging import (
    ADDON,
    CONFIG,
    SHIM,
    TRANSLATIONS,
    fake_supervisor,
    free_port,
    refused,
    supervisor_options,
)


def test_the_option_lists_exactly_the_methods_the_ledger_offers() -> None:
    (kind,) = CONFIG["schema"]["payment_methods"]
    found = OPTION_TYPE.match(kind)
    assert found is not None
    assert found.group("list").split("|") == [method.value for method in PaymentMethod]
    assert CONFIG["options"]["payment_methods"] == ["card"]


def test_the_supervisor_takes_a_list_of_known_methods() -> None:
    schema = CONFIG["schema"]
    assert supervisor_options({})["payment_methods"] == ["card"]
    chosen = ["wechat_pay", "alipay", "card"]
    assert validate_options(schema, CONFIG["options"] | {"payment_methods": chosen}) == (
        CONFIG["options"] | {"payment_methods": chosen}
    )
    # An empty list passes the Supervisor; the ledger refuses it at start (below).
    assert supervisor_options({"payment_methods": []})["payment_methods"] == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["paypal"], "value must be one of"),
        (["card", "Card"], "value must be one of"),
        ("card", "Invalid list for option 'payment_methods'"),
        ([None], "Missing required option 'payment_methods'"),
    ],
)
def test_the_supervisor_refuses_other_values(value: Any, message: str) -> None:
    options = CONFIG["options"] | {"payment_methods": value}
    assert message in refused(validate_options, CONFIG["schema"], options)


@pytest.mark.parametrize("language", sorted(TRANSLATIONS))
def test_every_translation_names_and_explains_the_option(language: str) -> None:
    import yaml  # noqa: PLC0415 - only this test reads YAML itself

    data = yaml.safe_load(TRANSLATIONS[language].read_text(encoding="utf-8"))
    text = data["configuration"]["payment_methods"]
    assert text["name"]
    for word in ("card", "alipay", "wechat_pay", "sepa_debit", "EUR"):
        assert word in text["description"], (language, word)


async def start_run_script(
    tmp_path: Path, user: dict[str, Any]
) -> tuple[asyncio.subprocess.Process, int, list[tuple[str, Any]], Any]:
    """Start run.sh with the options the Supervisor would write for USER."""
    discoveries: list[tuple[str, Any]] = []
    runner, supervisor_url = await fake_supervisor(discoveries)
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "options.json").write_text(json.dumps(supervisor_options(user)), encoding="utf-8")
    port = free_port()
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("PREPAID_LEDGER_")
    } | {
        "BASHIO_OPTIONS": str(tmp_path / "options.json"),
        "SUPERVISOR_API": supervisor_url,
        "SUPERVISOR_TOKEN": "supervisor-token-xyz",
        "PREPAID_LEDGER_DATA": str(data),
        "PREPAID_LEDGER_PORT": str(port),
        "PREPAID_LEDGER_PUBLIC_PORT": str(free_port()),
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
    return process, port, discoveries, runner


@pytest.mark.usefixtures("socket_enabled")
async def test_run_script_hands_the_option_to_the_ledger(tmp_path: Path) -> None:
    user = {"currency": "CNY", "payment_methods": ["wechat_pay", "card", "alipay"]}
    process, port, discoveries, runner = await start_run_script(tmp_path, user)
    try:
        for _ in range(200):
            if discoveries:
                break
            assert process.returncode is None, await process.stdout.read()  # type: ignore[union-attr]
            await asyncio.sleep(0.1)
        token = discoveries[0][1]["config"]["token"]
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"http://127.0.0.1:{port}/api/v1/settings/payment-methods",
                headers={"Authorization": f"Bearer {token}"},
            ) as resp,
        ):
            setting = await resp.json()
        assert setting["methods"] == ["wechat_pay", "card", "alipay"]
        assert (setting["source"], setting["default_currency"]) == ("add_on_option", "CNY")
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 20)
        await runner.cleanup()


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize(
    ("user", "words"),
    [
        (
            {"currency": "CNY", "payment_methods": ["card", "sepa_debit"]},
            ["sepa_debit", "CNY", "EUR only"],
        ),
        ({"payment_methods": []}, ["at least one"]),
    ],
)
async def test_a_wrong_choice_stops_the_add_on_with_a_clear_message(
    tmp_path: Path, user: dict[str, Any], words: list[str]
) -> None:
    process, _, discoveries, runner = await start_run_script(tmp_path, user)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 20)
        await runner.cleanup()
    text = out.decode()
    assert process.returncode != 0, text
    assert "prepaid-ledger: PREPAID_LEDGER_PAYMENT_METHODS:" in text
    for word in words:
        assert word in text, text
    assert "Traceback" not in text
    assert discoveries == []  # nothing announced to Home Assistant
