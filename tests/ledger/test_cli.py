"""The command line: serve as a real subprocess, migrate, verify (and verify catching damage)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.ledger.conftest import free_port

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "prepaid_ledger",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env or os.environ.copy(),
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_help_lists_the_commands() -> None:
    code, out = await run_cli("--help")
    assert code == 0
    for command in ("serve", "migrate", "verify"):
        assert command in out


async def test_serve_subprocess_end_to_end(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREPAID_LEDGER_ADMIN_TOKEN"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "prepaid_ledger",
        "serve",
        "--data-dir",
        str(tmp_path),
        "--port",
        str(port),
        "--public-port",
        str(free_port()),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    assert proc.stdout is not None
    try:
        token_file = tmp_path / "admin-token"
        output = ""
        while "listening on" not in output:
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            assert line, output
            output += line
        assert f"admin token is stored in {token_file}" in output
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(base + "/api/v1/health") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            async with http.post(
                base + "/api/v1/accounts",
                headers=headers,
                json={"name": "A", "currency": "EUR", "timezone": "UTC"},
            ) as resp:
                assert resp.status == 201
                account = await resp.json()
            async with http.post(
                base + "/api/v1/topups",
                json={"account": account["number"], "amount_minor": 1234},
                headers=headers | {"Idempotency-Key": "cli"},
            ) as resp:
                assert resp.status == 201
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        await proc.stdout.read()
    code, out = await run_cli("verify", "--data-dir", str(tmp_path))
    assert code == 0, out
    assert "ok" in out
    code, out = await run_cli("migrate", "--data-dir", str(tmp_path))
    assert code == 0
    assert "ledger_id" in out

    # Damage the stored balance behind the ledger's back: verify must say which book.
    with contextlib.closing(sqlite3.connect(tmp_path / "ledger.sqlite3")) as db, db:
        db.execute("UPDATE books SET balance_minor = balance_minor + 1 WHERE kind = 'customer'")
    code, out = await run_cli("verify", "--data-dir", str(tmp_path))
    assert code == 1
    assert "stored balance 1235 != sum of entries 1234" in out


@pytest.mark.parametrize("limit", ["0", "1000000000001", "10" * 20, "x"])
async def test_serve_refuses_a_top_up_limit_beyond_what_the_ledger_can_post(
    tmp_path: Path, limit: str
) -> None:
    code, out = await run_cli("serve", "--data-dir", str(tmp_path), "--max-topup-minor", limit)
    assert code == 2
    assert "--max-topup-minor" in out


async def test_verify_needs_a_store() -> None:
    code, out = await run_cli("verify")
    assert code == 2
    assert "--data-dir" in out


def test_cli_in_process_migrate_and_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from prepaid_ledger.cli import main  # noqa: PLC0415

    assert main(["migrate", "--data-dir", str(tmp_path)]) == 0
    assert "ledger_id" in capsys.readouterr().out
    assert main(["verify", "--data-dir", str(tmp_path)]) == 0
    assert "verify: ok" in capsys.readouterr().out
    assert main([]) == 0
    assert "serve" in capsys.readouterr().out


def test_admin_token_from_env_or_generated_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prepaid_ledger.config import settings_from  # noqa: PLC0415

    monkeypatch.setenv("PREPAID_LEDGER_ADMIN_TOKEN", "from-env")
    monkeypatch.setenv("PREPAID_LEDGER_STRIPE_WEBHOOK_SECRET", "whsec_x")
    settings = settings_from(tmp_path / "a", None)
    assert settings.admin_token == "from-env"
    assert settings.admin_token_path is None
    assert settings.stripe_webhook_secret == "whsec_x"
    assert settings.database_url.endswith("ledger.sqlite3")
    monkeypatch.delenv("PREPAID_LEDGER_ADMIN_TOKEN")
    first = settings_from(tmp_path / "b", "postgresql+asyncpg://x@127.0.0.1/db")
    assert first.admin_token_path is not None
    assert stat.S_IMODE(first.admin_token_path.stat().st_mode) == 0o600
    assert first.database_url.startswith("postgresql")
    again = settings_from(tmp_path / "b", None)
    assert again.admin_token == first.admin_token


def test_settings_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What run.sh exports becomes the settings: lists split at commas, blanks are unset."""
    from prepaid_ledger.config import settings_from  # noqa: PLC0415

    monkeypatch.setenv("PREPAID_LEDGER_TRUSTED_PROXIES", " 172.30.32.1 , 10.0.0.2,")
    monkeypatch.setenv("PREPAID_LEDGER_PUBLIC_BASE_URL", "https://pay.example.org/ ")
    monkeypatch.setenv("PREPAID_LEDGER_STRIPE_API_KEY", "   ")
    monkeypatch.setenv("PREPAID_LEDGER_CURRENCY", "")
    monkeypatch.setenv("PREPAID_LEDGER_RECONCILE_MINUTES", "0")
    monkeypatch.setenv("PREPAID_LEDGER_TENANT_MIN_TOPUP_MINOR", "500")
    settings = settings_from(tmp_path, None)
    assert settings.trusted_proxies == ("172.30.32.1", "10.0.0.2")
    assert settings.public_base_url == "https://pay.example.org"
    assert settings.stripe_api_key is None
    assert settings.default_currency == "EUR"
    assert settings.reconcile_minutes == 0
    assert settings.tenant_min_topup_minor == 500


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PREPAID_LEDGER_RECONCILE_MINUTES", "soon"),
        ("PREPAID_LEDGER_RECONCILE_MINUTES", "-1"),
        ("PREPAID_LEDGER_TENANT_MIN_TOPUP_MINOR", "1.5"),
        ("PREPAID_LEDGER_TENANT_MIN_TOPUP_MINOR", "-100"),
    ],
)
async def test_serve_names_a_wrong_environment_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    """A wrong value stops the start with the variable's name, not a traceback."""
    code, out = await run_cli(
        "serve", "--data-dir", str(tmp_path), env=os.environ.copy() | {variable: value}
    )
    assert code == 2
    assert f"prepaid-ledger: {variable}:" in out
    assert "Traceback" not in out
