"""Two listeners and a transport that holds: what the public port serves, and nothing else;
security headers on every response; oversize, slow and malformed clients at the socket level.

Expected values come from the brief: public = webhooks, pay pages, health (404 for the rest);
413 before the body for a declared oversize body; a silent client dropped within about 10 s.
"""

from __future__ import annotations

import asyncio
import gc
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp import web
from multidict import CIMultiDictProxy
from prepaid_ledger.server import freeze_startup_heap
from prepaid_ledger.web import tenant_page

from tests.ledger.conftest import ADMIN_TOKEN, Ledger, make_settings, running_ledger
from tests.ledger.webhook_helpers import checkout_completed, stripe_delivery

pytestmark = pytest.mark.usefixtures("socket_enabled")
ROOT = Path(__file__).resolve().parents[2]
DROP_WITHIN_S = 12.0  # "within ~10 s", with slack for a loaded 2-core machine


@pytest.fixture
async def both(tmp_path: Path) -> AsyncIterator[Ledger]:
    settings = make_settings(tmp_path, None, public_base_url="https://pay.example.com")
    async with running_ledger(settings) as running:
        yield running


async def get(
    ledger: Ledger,
    url: str,
    *,
    token: str | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    data: Any = None,
) -> tuple[int, CIMultiDictProxy[str], str]:
    """One request, no redirects followed: status, headers, text."""
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    async with ledger.http.request(
        method, url, headers=all_headers, data=data, allow_redirects=False
    ) as resp:
        return resp.status, resp.headers, await resp.text()


async def pay_path(ledger: Ledger) -> str:
    account = await ledger.account()
    issued = await ledger.ok("POST", f"/api/v1/accounts/{account['id']}/pay-link")
    return str(urlsplit(str(issued["url"])).path)


# ---- what each listener serves ------------------------------------------------------------


async def test_public_listener_hides_the_admin_surface(both: Ledger) -> None:
    account = await both.account()
    public = both.public_url
    for method, path in [
        ("GET", "/api/v1/accounts"),
        ("GET", f"/api/v1/accounts/{account['id']}"),
        ("GET", "/api/v1/whoami"),
        ("GET", "/api/v1/events"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/"),
        ("GET", "/ui/landlord.js"),
        ("POST", "/api/v1/topups"),
    ]:
        status, _, body = await get(both, public + path, token=ADMIN_TOKEN, method=method)
        assert status == 404, (method, path, status, body)
        assert "admin" not in body.lower(), (path, body)


async def test_public_listener_serves_webhooks_pay_pages_and_health(both: Ledger) -> None:
    public = both.public_url
    status, _, body = await get(both, public + "/api/v1/health")
    assert status == 200
    assert '"status": "ok"' in body or '"status":"ok"' in body
    path = await pay_path(both)
    status, headers, body = await get(both, public + path)
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/html")
    # Whatever else the pay page module serves (its assets) is public too.
    fixed = [
        route.path
        for route in tenant_page.routes
        if isinstance(route, web.RouteDef) and route.method == "GET" and "{" not in route.path
    ]
    for asset in fixed:
        status, _, _ = await get(both, public + asset)
        assert status == 200, asset
    account = (await both.ok("GET", "/api/v1/accounts"))["accounts"][0]
    payload, signed = stripe_delivery(checkout_completed(account["number"], 1500))
    status, _, body = await get(
        both, public + "/webhooks/stripe", method="POST", data=payload, headers=signed
    )
    assert status == 200, body
    assert await both.balance(account["id"]) == 1500
    # A bad signature is refused there as on the private port (the route is the same).
    bad = signed | {"Stripe-Signature": "t=1,v1=00"}
    status, _, _ = await get(
        both, public + "/webhooks/stripe", method="POST", data=payload, headers=bad
    )
    assert status == 400


async def test_private_listener_keeps_everything(both: Ledger) -> None:
    private = both.base_url
    assert private != both.public_url
    account = await both.account()
    for path in ("/api/v1/accounts", f"/api/v1/accounts/{account['id']}", "/api/v1/whoami",
                 "/api/v1/openapi.json", "/api/v1/health"):  # fmt: skip
        status, _, body = await get(both, private + path, token=ADMIN_TOKEN)
        assert status == 200, (path, body)
    status, _, body = await get(both, private + "/login")
    assert status == 200
    assert "<form" in body
    status, headers, _ = await get(both, private + "/")
    assert status == 303
    assert headers["Location"].endswith("login")
    status, _, _ = await get(both, private + "/ui/landlord.js")
    assert status == 200
    status, _, _ = await get(both, private + await pay_path(both))
    assert status == 200
    payload, signed = stripe_delivery(checkout_completed(account["number"], 700))
    status, _, body = await get(
        both, private + "/webhooks/stripe", method="POST", data=payload, headers=signed
    )
    assert status == 200, body
    # The event stream answers (headers only: it then stays open).
    async with both.http.get(
        private + "/api/v1/events", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"


# ---- headers on every response --------------------------------------------------------------

VERSIONED = re.compile(r"\d|aiohttp|python", re.IGNORECASE)


def assert_hardened(kind: str, headers: CIMultiDictProxy[str]) -> None:
    assert headers.get("X-Content-Type-Options") == "nosniff", kind
    assert not VERSIONED.search(headers.get("Server", "")), (kind, headers.get("Server"))
    assert headers.get("Content-Security-Policy"), kind
    assert headers.get("Referrer-Policy"), kind


async def test_every_kind_of_response_carries_the_security_headers(both: Ledger) -> None:
    account = await both.account()
    private, public = both.base_url, both.public_url
    pay = await pay_path(both)
    samples: dict[str, tuple[str, str, str | None, bytes | None]] = {
        "health json (public)": ("GET", public + "/api/v1/health", None, None),
        "404 json (public)": ("GET", public + "/api/v1/accounts", ADMIN_TOKEN, None),
        "404 json (private)": ("GET", private + "/no/such/path", ADMIN_TOKEN, None),
        "401 json": ("GET", private + "/api/v1/accounts", None, None),
        "413 json (public)": ("POST", public + "/webhooks/stripe", None, b"x" * 300_000),
        "csv statement": (
            "GET", private + f"/api/v1/accounts/{account['id']}/statement?format=csv",
            ADMIN_TOKEN, None,
        ),
        "landlord.js": ("GET", private + "/ui/landlord.js", None, None),
        "pay page (public)": ("GET", public + pay, None, None),
        "pay page 404 (public)": ("GET", public + "/pay/not-a-token", None, None),
        "login page": ("GET", private + "/login", None, None),
        "redirect": ("GET", private + "/", None, None),
        "400 webhook (public)": ("POST", public + "/webhooks/stripe", None, b"{}"),
    }  # fmt: skip
    seen = {}
    for kind, (method, url, token, data) in samples.items():
        status, headers, _ = await get(both, url, token=token, method=method, data=data)
        seen[kind] = status
        assert_hardened(kind, headers)
    assert seen["404 json (public)"] == 404
    assert seen["401 json"] == 401
    assert seen["413 json (public)"] == 413
    assert seen["csv statement"] == 200
    # Responses without a policy of their own get the strict default; the pages keep theirs.
    _, headers, _ = await get(both, public + "/api/v1/health")
    assert headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert headers["Referrer-Policy"] == "no-referrer"
    _, page_headers, _ = await get(both, public + pay)
    _, login_headers, _ = await get(both, private + "/login")
    for own in (page_headers, login_headers):
        assert own["Content-Security-Policy"] != headers["Content-Security-Policy"]
        assert len(own.getall("Content-Security-Policy")) == 1


# ---- the transport, at the socket ---------------------------------------------------------


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname
    assert parts.port
    return parts.hostname, parts.port


async def exchange(url: str, data: bytes, wait_s: float) -> tuple[bytes, float, bool]:
    """Send DATA, then read until the server closes or WAIT_S passes.

    Returns what came back, the seconds until the first bytes (or the close), and whether
    the server closed the connection within WAIT_S.
    """
    reader, writer = await asyncio.open_connection(*host_port(url))
    started = time.monotonic()
    answered_at: float | None = None
    received = b""
    closed = False
    try:
        writer.write(data)
        await writer.drain()
        deadline = started + wait_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), left)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if answered_at is None:
                answered_at = time.monotonic()
            if not chunk:
                closed = True
                break
            received += chunk
    finally:
        writer.close()
    return received, (answered_at or time.monotonic()) - started, closed


def status_of(raw: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", raw)
    assert match, raw[:200]
    return int(match.group(1))


async def test_declared_oversize_body_is_refused_before_it_is_sent(both: Ledger) -> None:
    cases = [
        (both.public_url, "/webhooks/stripe", 256 * 1024 + 1),
        (both.public_url, "/pay/x/checkout", 10**9),
        (both.base_url, "/api/v1/readings", 4 * 1024 * 1024 + 1),
        (both.base_url, "/webhooks/stripe", 10**9),
    ]
    heads = [
        (
            f"POST {path} HTTP/1.1\r\nHost: ledger\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
        ).encode()
        for _, path, size in cases
    ]
    # Headers only: the answer must come without the body (the server then closes).
    results = await asyncio.gather(
        *(exchange(url, head, wait_s=2.0) for (url, _, _), head in zip(cases, heads, strict=True))
    )
    for case, (raw, seconds, _) in zip(cases, results, strict=True):
        assert raw, (case, "no answer within 2 s")
        assert status_of(raw) == 413, raw[:300]
        assert seconds < 2.0
        assert b"payload_too_large" in raw
        assert b"x-content-type-options: nosniff" in raw.lower()


async def test_public_body_limit_is_smaller_than_the_private_one(both: Ledger) -> None:
    body = b"{" + b" " * 300_000 + b"}"
    status, _, _ = await get(both, both.public_url + "/webhooks/stripe", method="POST", data=body)
    assert status == 413
    status, _, _ = await get(both, both.base_url + "/webhooks/stripe", method="POST", data=body)
    assert status == 400  # read in full, then refused for its signature: not a size refusal


async def test_slow_clients_are_dropped(both: Ledger) -> None:
    """Headers then 10 of 100 body bytes; or half the headers: both end within ~10 s."""
    slow_body = (
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: ledger\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n0123456789"
    )
    slow_private_body = (
        b"POST /api/v1/accounts HTTP/1.1\r\nHost: ledger\r\nAuthorization: Bearer "
        + ADMIN_TOKEN.encode()
        + b'\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name": '
    )
    slow_header = b"GET /api/v1/health HTTP/1.1\r\nHost: ledger\r\nX-Slow: "
    cases = {
        "public slow body": (both.public_url, slow_body),
        "private slow body": (both.base_url, slow_private_body),
        "public slow header": (both.public_url, slow_header),
        "private slow header": (both.base_url, slow_header),
        "public silent": (both.public_url, b""),
    }
    results = await asyncio.gather(
        *(exchange(url, data, wait_s=DROP_WITHIN_S + 3) for url, data in cases.values())
    )
    for kind, (raw, seconds, closed) in zip(cases, results, strict=True):
        assert raw or closed, (kind, "still open")
        assert seconds < DROP_WITHIN_S, (kind, seconds)
        if "body" in kind:
            assert status_of(raw) == 408, (kind, raw[:200])
            assert b"connection: close" in raw.lower()
        else:
            assert closed, kind
            assert not raw, (kind, raw[:200])
    # Nothing half-sent reached the ledger.
    assert (await both.ok("GET", "/api/v1/accounts"))["accounts"] == []


async def test_huge_or_too_many_headers_are_refused_at_once(both: Ledger) -> None:
    huge = b"GET /api/v1/health HTTP/1.1\r\nHost: ledger\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    many = (
        b"GET /api/v1/health HTTP/1.1\r\nHost: ledger\r\n"
        + b"".join(b"X-H%d: 1\r\n" % i for i in range(300))
        + b"\r\n"
    )
    long_line = b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: ledger\r\n\r\n"
    for url in (both.public_url, both.base_url):
        for data in (huge, many, long_line):
            raw, seconds, _ = await exchange(url, data, wait_s=3.0)
            assert raw, "no answer"
            assert status_of(raw) in (400, 414, 431), raw[:200]
            assert seconds < 2.0
            server = re.search(rb"\r\nServer: ([^\r]*)", raw, re.IGNORECASE)
            assert server is None or not VERSIONED.search(server.group(1).decode()), raw[:300]


async def test_a_multipart_body_is_refused(both: Ledger) -> None:
    status, _, body = await get(
        both,
        both.public_url + "/pay/x/checkout",
        method="POST",
        data=b"--b\r\nContent-Disposition: form-data; name=amount\r\n\r\n5\r\n--b--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert status == 415, body


async def test_ordinary_bodies_still_arrive(both: Ledger) -> None:
    """The body read by the middleware is the one the handlers get (JSON and chunked)."""
    account = await both.account(name="Room 7")
    assert account["name"] == "Room 7"

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "Room 8", "currency": "EUR", '
        await asyncio.sleep(0.2)
        yield b'"timezone": "UTC"}'

    status, _, body = await get(
        both, both.base_url + "/api/v1/accounts", token=ADMIN_TOKEN, method="POST",
        data=chunks(), headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 201, body
    assert "Room 8" in body


# ---- the add-on maps the public port ------------------------------------------------------


def test_addon_maps_the_public_port_and_keeps_ingress_private() -> None:
    config = yaml.safe_load((ROOT / "addon" / "config.yaml").read_text(encoding="utf-8"))
    assert config["ingress_port"] == 8099
    assert "8100/tcp" in config["ports"]
    assert "8099/tcp" in config["ports"]
    assert set(config["ports_description"]) == set(config["ports"])
    run_sh = (ROOT / "addon" / "run.sh").read_text(encoding="utf-8")
    assert re.search(r"--public-port\s", run_sh)
    assert re.search(r"PREPAID_LEDGER_PUBLIC_PORT:-8100", run_sh)


def test_the_start_up_heap_is_left_out_of_later_collections() -> None:
    """What exists once the listeners run is frozen: full collections skip it (server.py)."""
    before = gc.get_freeze_count()  # the test process may have frozen some already
    kept = [[] for _ in range(1000)]  # tracked objects made before the freeze
    freeze_startup_heap()
    assert gc.get_freeze_count() >= before + len(kept)
