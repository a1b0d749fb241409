"""Schemathesis against the served OpenAPI document: no 5xx, responses match the schema.

The service runs as a real subprocess with a seeded account, tariff, meter and order, so path
ids point at existing rows and the generated requests reach the ledger's logic. Generated
date-times include the extremes (year 1 and 9999 with offsets, the window's edges, far
future), and any integer in a body may be swapped for a huge one, so the examples reach the
bounds every route must enforce (docs/ledger-api.md, "Limits on what a request may say").
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_socket
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from prepaid_ledger.api.openapi import openapi_document
from prepaid_ledger.app import create_app
from prepaid_ledger.config import Settings
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
#: The app's own routes document it (nothing is opened until the app starts).
_APP = create_app(Settings(data_dir=Path(), database_url="sqlite+aiosqlite://", admin_token=ADMIN))
schema = schemathesis.openapi.from_dict(openapi_document(_APP.router)).exclude(
    path="/api/v1/events"
)

#: Times at and beyond every edge: astimezone overflowed on the first and third before the
#: window existed; the others sit just inside or outside 2000-01-01 .. 2100-01-01 UTC.
BOUNDARY_TIMES = [
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00-23:59",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59.999999+00:00",
    "1999-12-31T23:59:59+00:00",
    "2000-01-01T00:00:00+00:00",
    "2099-12-31T23:59:59+00:00",
    "2100-01-01T00:00:00+00:00",
]
HUGE_INTEGERS = [10**12, 10**12 + 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 10**30, -(2**63) - 1]


def _date_times() -> st.SearchStrategy[str]:
    now = datetime.now(UTC)
    near_now = st.timedeltas(timedelta(days=-400), timedelta(days=400)).map(
        lambda delta: (now + delta).isoformat()
    )
    return st.one_of(st.sampled_from(BOUNDARY_TIMES), near_now)


schemathesis.openapi.format("date-time", _date_times())


def _integer_paths(value: object, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [path]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _integer_paths(item, (*path, key))]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _integer_paths(item, (*path, index))]
    return []


def _replace(body: Any, path: tuple[Any, ...], new: int) -> Any:
    if not path:
        return new
    changed = copy.deepcopy(body)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return changed


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """Keep the body or swap one of its integers for a huge one."""
    paths = _integer_paths(body)
    if not paths:
        return st.just(body)
    swapped = st.builds(
        lambda path, new: _replace(body, path, new),
        st.sampled_from(paths),
        st.sampled_from(HUGE_INTEGERS),
    )
    return st.one_of(st.just(body), swapped)


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
                "--public-port",  # not the default 8100, which another ledger may hold
                str(free_port()),
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
    items = case.body.get("readings") if isinstance(case.body, dict) else None
    if case.path == "/api/v1/readings" and isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and item.get("meter_id") not in HUGE_INTEGERS:
                item["meter_id"] = 1  # the seeded meter, so readings reach the charging
    case.call_and_validate(base_url=service, headers=HEADERS, checks=CHECKS)
