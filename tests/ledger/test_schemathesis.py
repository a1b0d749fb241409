"""Schemathesis against the served OpenAPI document: no 5xx, responses match the schema.

The service runs as a real subprocess with a seeded account, tariff, meter and order, so path
ids point at existing rows and the generated requests reach the ledger's logic.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_socket
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from prepaid_ledger.api.openapi import openapi_document
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.ledger.conftest import STANDARD_SECRET, STRIPE_SECRET, free_port

ADMIN = "schemathesis-admin"
HEADERS = {"Authorization": f"Bearer {ADMIN}"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
schema = schemathesis.openapi.from_dict(openapi_document()).exclude(path="/api/v1/events")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest_socket.enable_socket()  # module scope runs before the per-test socket_enabled fixture
    data_dir: Path = tmp_path_factory.mktemp("schemathesis")
    port = free_port()
    env = os.environ | {
        "PREPAID_LEDGER_ADMIN_TOKEN": ADMIN,
        "PREPAID_LEDGER_STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "PREPAID_LEDGER_STANDARD_WEBHOOK_SECRET": STANDARD_SECRET,
    }
    with (data_dir / "service.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prepaid_ledger",
                "serve",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(base + "/api/v1/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        seed = [
            (
                "/api/v1/tariffs",
                {"name": "Flat", "currency": "EUR", "unit": "kWh", "kind": "flat", "price": "0.25"},
            ),
            ("/api/v1/accounts", {"name": "Seed", "currency": "EUR", "timezone": "UTC"}),
            ("/api/v1/meters", {"account_id": 1, "tariff_id": 1, "name": "m", "unit": "kWh"}),
            ("/api/v1/topups", {"account": 1, "amount_minor": 500}),
        ]
        for path, body in seed:
            resp = requests.post(
                base + path, json=body, timeout=5, headers=HEADERS | {"Idempotency-Key": "seed"}
            )
            assert resp.status_code == 201, resp.text
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


EXPLORE = os.environ.get("PREPAID_SCHEMATHESIS_EXPLORE")


@pytest.mark.usefixtures("socket_enabled")
@schema.parametrize()
@settings(
    # The test suite replays the same examples every run, so CI never fails by chance; set
    # PREPAID_SCHEMATHESIS_EXPLORE=N to search with N fresh random examples per operation.
    max_examples=int(EXPLORE) if EXPLORE else 25,
    derandomize=not EXPLORE,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case, service: str) -> None:
    if "id" in (case.path_parameters or {}):
        case.path_parameters["id"] = 1  # the seeded rows; other ids only test 404s
    case.call_and_validate(base_url=service, headers=HEADERS, checks=CHECKS)
