"""The landlord's browser sessions, login throttling and the web UI's security headers.

Everything runs against the real ledger over HTTP. Cookies are read from Set-Cookie and sent
back by hand, so a test can replay an old cookie exactly as an attacker would.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prepaid_ledger.api.throttle import FailureTracker
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.models import WebSession
from sqlalchemy import select, update

from tests.ledger.conftest import ADMIN_TOKEN, Ledger, make_settings, running_ledger

pytestmark = pytest.mark.usefixtures("socket_enabled")

COOKIE = "prepaid_ledger_session"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@contextlib.asynccontextmanager
async def ledger_with(tmp_path: Path, **overrides: Any) -> AsyncIterator[Ledger]:
    async with running_ledger(make_settings(tmp_path, None, **overrides)) as running:
        yield running


async def post_login(
    ledger: Ledger,
    token: str = ADMIN_TOKEN,
    *,
    headers: dict[str, str] | None = None,
    http: aiohttp.ClientSession | None = None,
) -> aiohttp.ClientResponse:
    """POST the login form (no redirects followed); the body is read before returning."""
    client = http or ledger.http
    async with client.post(
        ledger.base_url + "/login",
        data={"token": token},
        headers=headers or {},
        allow_redirects=False,
    ) as resp:
        await resp.read()
        return resp


def set_cookie(resp: aiohttp.ClientResponse) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in resp.headers.getall("Set-Cookie", []):
        jar.load(header)
    return jar


async def login(ledger: Ledger, headers: dict[str, str] | None = None) -> str:
    resp = await post_login(ledger, headers=headers)
    assert resp.status == 303, resp.status
    session_id = set_cookie(resp)[COOKIE].value
    assert session_id
    return session_id


def with_cookie(session_id: str, **extra: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={session_id}"} | extra


async def whoami(ledger: Ledger, session_id: str) -> int:
    status, _ = await ledger.call(
        "GET", "/api/v1/whoami", token=None, headers=with_cookie(session_id)
    )
    return status


async def session_rows(ledger: Ledger) -> list[dict[str, Any]]:
    """The web_sessions table as stored (read through a second connection)."""
    db = Database(ledger.settings.database_url)
    try:
        async with db.engine.connect() as conn:
            result = await conn.execute(select(WebSession.__table__))
            return [dict(row._mapping) for row in result]
    finally:
        await db.close()


async def test_every_login_starts_a_new_random_session_stored_only_hashed(ledger: Ledger) -> None:
    first = await login(ledger)
    second = await login(ledger)
    assert first != second
    assert len(first) >= 43  # secrets.token_urlsafe(32)
    assert await whoami(ledger, first) == 200
    assert await whoami(ledger, second) == 200
    stored = {row["id_hash"] for row in await session_rows(ledger)}
    assert stored == {hashlib.sha256(s.encode()).hexdigest() for s in (first, second)}
    # A cookie planted before the login is never adopted, and the session it rode in on ends.
    planted = "attacker-chosen-session-id-0123456789abcdef"
    fresh = await login(ledger, headers=with_cookie(planted))
    assert fresh not in (planted, first, second)
    assert await whoami(ledger, planted) == 401
    replaced = await login(ledger, headers=with_cookie(first))
    assert replaced != first
    assert await whoami(ledger, first) == 401
    assert await whoami(ledger, replaced) == 200


async def test_logout_ends_the_session_on_the_server(ledger: Ledger) -> None:
    session_id = await login(ledger)
    assert await whoami(ledger, session_id) == 200
    async with ledger.http.post(
        ledger.base_url + "/logout", headers=with_cookie(session_id), allow_redirects=False
    ) as resp:
        assert resp.status == 303
        assert resp.headers["Location"] == "login"
        cleared = set_cookie(resp)[COOKIE]
        assert cleared.value == ""
        assert cleared["max-age"] == "0" or "1970" in cleared["expires"]
    # Replaying the logged-out cookie reads nothing.
    assert await whoami(ledger, session_id) == 401
    status, _ = await ledger.call(
        "GET", "/api/v1/accounts", token=None, headers=with_cookie(session_id)
    )
    assert status == 401
    async with ledger.http.get(
        ledger.base_url + "/", headers=with_cookie(session_id), allow_redirects=False
    ) as resp:
        assert resp.status == 303
        assert resp.headers["Location"] == "login"
    assert await session_rows(ledger) == []


async def test_a_session_ends_after_the_idle_time(tmp_path: Path) -> None:
    async with ledger_with(tmp_path, session_idle_s=1.0) as ledger:
        session_id = await login(ledger)
        assert await whoami(ledger, session_id) == 200
        await asyncio.sleep(1.3)
        assert await whoami(ledger, session_id) == 401
        assert await session_rows(ledger) == []  # the expired row went when it was met


async def test_a_session_ends_after_the_absolute_time_even_when_busy(tmp_path: Path) -> None:
    async with ledger_with(tmp_path, session_idle_s=3600.0, session_absolute_s=1.5) as ledger:
        session_id = await login(ledger)
        for _ in range(3):
            assert await whoami(ledger, session_id) == 200
            await asyncio.sleep(0.3)
        await asyncio.sleep(1.0)
        assert await whoami(ledger, session_id) == 401


async def test_last_seen_is_written_at_most_once_a_minute(tmp_path: Path) -> None:
    async with ledger_with(tmp_path) as ledger:
        session_id = await login(ledger)
        (row,) = await session_rows(ledger)
        for _ in range(5):
            assert await whoami(ledger, session_id) == 200
        (again,) = await session_rows(ledger)
        assert again["last_seen_at"] == row["last_seen_at"]  # no write per request
        # Five minutes of quiet (well within the 30 minute idle time): the next request
        # keeps the session alive and records it.
        quiet = datetime.now(UTC) - timedelta(minutes=5)
        db = Database(ledger.settings.database_url)
        try:
            async with db.engine.begin() as conn:
                await conn.execute(update(WebSession).values(last_seen_at=quiet, created_at=quiet))
        finally:
            await db.close()
        assert await whoami(ledger, session_id) == 200
        (touched,) = await session_rows(ledger)
        assert touched["last_seen_at"] > quiet + timedelta(minutes=4)
        assert touched["created_at"] == quiet


async def test_a_session_outlives_a_restart_but_not_a_new_admin_token(tmp_path: Path) -> None:
    async with ledger_with(tmp_path) as ledger:
        session_id = await login(ledger)
    async with ledger_with(tmp_path) as ledger:
        assert await whoami(ledger, session_id) == 200
    async with ledger_with(tmp_path, admin_token="a-new-admin-token") as ledger:
        assert await whoami(ledger, session_id) == 401
        assert await session_rows(ledger) == []


async def test_session_cookie_flags_and_when_it_is_secure(tmp_path: Path) -> None:
    https = {"X-Forwarded-Proto": "https"}
    for sub in ("plain", "proxied", "public"):
        (tmp_path / sub).mkdir()
    async with ledger_with(tmp_path / "plain") as ledger:
        cookie = set_cookie(await post_login(ledger))[COOKIE]
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Strict"
        assert cookie["path"] == "/"
        assert not cookie["secure"]
        # X-Forwarded-Proto from an address that is not a trusted proxy is not believed.
        assert not set_cookie(await post_login(ledger, headers=https))[COOKIE]["secure"]
    async with ledger_with(tmp_path / "proxied", trusted_proxies=("127.0.0.1",)) as ledger:
        assert set_cookie(await post_login(ledger, headers=https))[COOKIE]["secure"] is True
        assert not set_cookie(await post_login(ledger))[COOKIE]["secure"]
    async with ledger_with(tmp_path / "public", public_base_url="https://ledger.example") as ledger:
        cookie = set_cookie(await post_login(ledger))[COOKIE]
        assert cookie["secure"] is True
        assert cookie["httponly"] is True


async def create_account(ledger: Ledger, session_id: str, **headers: str) -> tuple[int, Any]:
    return await ledger.call(
        "POST",
        "/api/v1/accounts",
        json={"name": "Room 1", "currency": "EUR", "timezone": "UTC"},
        token=None,
        headers=with_cookie(session_id, **headers),
    )


async def test_state_changes_through_the_cookie_must_come_from_our_own_origin(
    tmp_path: Path,
) -> None:
    async with ledger_with(tmp_path, public_base_url="https://ledger.example") as ledger:
        session_id = await login(ledger)
        ajax = {"X-Requested-With": "prepaid-ledger"}
        refused = [
            {"Origin": "http://evil.example"},
            {"Origin": "null"},
            {"Origin": ledger.base_url.replace("127.0.0.1", "localhost")},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"},
        ]
        for headers in refused:
            status, body = await create_account(ledger, session_id, **ajax, **headers)
            assert status == 403, headers
            assert body["error"]["code"] == "forbidden"
            assert "origin" in body["error"]["message"] or "request" in body["error"]["message"]
        # The header a cross-site form cannot set is still required.
        status, body = await create_account(ledger, session_id, Origin=ledger.base_url)
        assert status == 403
        assert (await ledger.ok("GET", "/api/v1/accounts"))["accounts"] == []
        allowed = [
            {"Origin": ledger.base_url, "Sec-Fetch-Site": "same-origin"},
            {"Origin": "https://ledger.example"},  # the configured public address
            {"Sec-Fetch-Site": "none"},
            {},  # neither header: an older browser or a script; X-Requested-With suffices
        ]
        for headers in allowed:
            status, body = await create_account(ledger, session_id, **ajax, **headers)
            assert status == 201, (headers, status, body)
        # Reading is not affected.
        status, _ = await ledger.call(
            "GET",
            "/api/v1/accounts",
            token=None,
            headers=with_cookie(session_id, **{"Sec-Fetch-Site": "cross-site"}),
        )
        assert status == 200
        # Another site cannot sign the landlord out either ...
        async with ledger.http.post(
            ledger.base_url + "/logout",
            headers=with_cookie(session_id, Origin="http://evil.example"),
            allow_redirects=False,
        ) as resp:
            assert resp.status == 403
            assert (await resp.json())["error"]["code"] == "forbidden"
        assert await whoami(ledger, session_id) == 200
        # ... while our own page can.
        async with ledger.http.post(
            ledger.base_url + "/logout",
            headers=with_cookie(session_id, Origin=ledger.base_url),
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
        assert await whoami(ledger, session_id) == 401


def retry_after(resp: aiohttp.ClientResponse) -> int:
    value = int(resp.headers["Retry-After"])
    assert value > 0
    return value


async def test_wrong_bearer_tokens_are_throttled(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    url = ledger.base_url + "/api/v1/whoami"
    # Four failures, then a success: the count starts again.
    for _ in range(4):
        assert (await ledger.call("GET", "/api/v1/whoami", token="wrong"))[0] == 401
    assert (await ledger.call("GET", "/api/v1/whoami"))[0] == 200
    issued = await ledger.ok("POST", "/api/v1/tokens", json={"scope": "integration"})
    await ledger.ok("DELETE", f"/api/v1/tokens/{issued['id']}")
    # A revoked token is a failure like a wrong one.
    for token in ("wrong-1", "wrong-2", issued["token"], "wrong-4", "wrong-5"):
        status, body = await ledger.call("GET", "/api/v1/whoami", token=token)
        assert status == 401, token
        assert body["error"]["code"] == "unauthorized"
    # The sixth attempt is refused without being checked, even with the right token.
    for token in ("wrong-6", ADMIN_TOKEN):
        async with ledger.http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 429
            assert (await resp.json())["error"]["code"] == "too_many_attempts"
            first_wait = retry_after(resp)
    # After the lockout, the next failure locks out for longer.
    await asyncio.sleep(first_wait + 0.2)
    assert (await ledger.call("GET", "/api/v1/whoami", token="wrong-7"))[0] == 401
    async with ledger.http.get(url, headers={"Authorization": "Bearer x"}) as resp:
        assert resp.status == 429
        assert retry_after(resp) > first_wait
    # No credential at all is not a guess: still the plain 401.
    assert (await ledger.call("GET", "/api/v1/whoami", token=None))[0] == 401


async def test_wrong_logins_are_throttled_with_a_login_page(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    for attempt in range(1, 6):
        resp = await post_login(ledger, f"not-the-token-{attempt}")
        assert resp.status == 401, attempt
    for token in ("not-the-token-6", ADMIN_TOKEN):
        async with ledger.http.post(
            ledger.base_url + "/login", data={"token": token}, allow_redirects=False
        ) as resp:
            assert resp.status == 429
            assert resp.content_type == "text/html"
            assert "Too many failed" in await resp.text()
            retry_after(resp)
            assert COOKIE not in set_cookie(resp)


@contextlib.asynccontextmanager
async def client_from(address: str) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client whose connections leave from ADDRESS (any 127.x.y.z is loopback)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        yield http


async def test_failures_from_one_address_never_lock_out_another(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    async with client_from("127.0.0.2") as attacker, client_from("127.0.0.3") as landlord:
        statuses = [
            (await post_login(ledger, f"guess-{n}", http=attacker)).status for n in range(30)
        ]
        assert statuses[:5] == [401] * 5
        assert set(statuses[5:]) == {429}
        # Changing X-Forwarded-For does not help: no proxy is trusted here.
        resp = await post_login(
            ledger, "guess", http=attacker, headers={"X-Forwarded-For": "198.51.100.9"}
        )
        assert resp.status == 429
        resp = await post_login(ledger, http=landlord)
        assert resp.status == 303
        assert set_cookie(resp)[COOKIE].value
        # The bearer path is keyed the same way.
        async with landlord.get(
            ledger.base_url + "/api/v1/whoami", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as answer:
            assert answer.status == 200


async def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled(tmp_path: Path) -> None:
    async with ledger_with(tmp_path, trusted_proxies=("127.0.0.1",)) as ledger:
        a = {"X-Forwarded-For": "203.0.113.5"}
        # The client may prepend anything; the proxy's own (last) hop is what counts.
        b = {"X-Forwarded-For": "203.0.113.5, 203.0.113.6"}
        for _ in range(30):
            resp = await post_login(ledger, "guess", headers=a)
        assert resp.status == 429
        assert (await post_login(ledger, headers=b)).status == 303
        assert (await post_login(ledger, headers=a)).status == 429


def test_the_lockout_doubles_is_capped_and_memory_is_bounded() -> None:
    now = [1000.0]
    tracker = FailureTracker(clock=lambda: now[0], max_entries=100)
    for _ in range(5):
        assert tracker.retry_after("a") is None
        tracker.failure("a")
    waits = []
    for _ in range(12):
        wait = tracker.retry_after("a")
        assert wait is not None
        waits.append(wait)
        now[0] += wait
        assert tracker.retry_after("a") is None
        tracker.failure("a")
    assert waits[:4] == [2, 4, 8, 16]
    assert waits == sorted(waits)
    assert max(waits) == 15 * 60
    assert tracker.retry_after("b") is None
    tracker.success("a")
    assert tracker.retry_after("a") is None
    for n in range(1000):
        tracker.failure(f"10.0.{n // 256}.{n % 256}")
    assert len(tracker) == 100


@pytest.mark.parametrize("body", [b"token=%ff%fe", b"token=\xff", b"token=\xed\xa0\x80"])
async def test_a_login_form_that_is_not_utf8_is_a_client_error(
    sqlite_ledger: Ledger, body: bytes
) -> None:
    async with sqlite_ledger.http.post(
        sqlite_ledger.base_url + "/login", data=body, headers=FORM, allow_redirects=False
    ) as resp:
        assert 400 <= resp.status < 500
        assert resp.content_type == "text/html"
        assert "Admin token" in await resp.text()


async def page_base(ledger: Ledger, headers: dict[str, str]) -> str:
    async with ledger.http.get(ledger.base_url + "/login", headers=headers) as resp:
        assert resp.status == 200
        found = re.search(r'<base href="([^"]*)">', await resp.text())
    assert found is not None
    return found.group(1)


async def test_only_the_supervisor_sets_the_pages_base(tmp_path: Path) -> None:
    for sub in ("direct", "ingress"):
        (tmp_path / sub).mkdir()
    async with ledger_with(tmp_path / "direct", ingress_proxy="172.30.32.2") as ledger:
        for path in ("//evil.example/x", "/api/hassio_ingress/abc123"):
            assert await page_base(ledger, {"X-Ingress-Path": path}) == "/"
    async with ledger_with(tmp_path / "ingress", ingress_proxy="127.0.0.1") as ledger:
        good = "/api/hassio_ingress/abc_123-X"
        assert await page_base(ledger, {"X-Ingress-Path": good}) == good + "/"
        for path in (
            "//evil.example/x",
            "https://evil.example",
            "/api/hassio_ingress/abc/../../x",
            "/api/hassio_ingress/",
            '/api/hassio_ingress/a"><script>',
        ):
            assert await page_base(ledger, {"X-Ingress-Path": path}) == "/", path


def csp_of(headers: Any) -> dict[str, str]:
    policy = headers["Content-Security-Policy"]
    return {
        part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2]
        for part in policy.split(";")
        if part.strip()
    }


async def test_pages_allow_no_inline_script_and_framing_only_through_ingress(
    tmp_path: Path,
) -> None:
    async with ledger_with(tmp_path, ingress_proxy="127.0.0.1") as ledger:
        async with ledger.http.get(ledger.base_url + "/login") as resp:
            csp = csp_of(resp.headers)
        assert csp["script-src"] == "'self'"
        assert csp["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in csp.get("default-src", "")
        ingress = {"X-Ingress-Path": "/api/hassio_ingress/abc123"}
        async with ledger.http.get(ledger.base_url + "/", headers=ingress) as resp:
            assert resp.status == 200
            csp = csp_of(resp.headers)
        assert csp["script-src"] == "'self'"
        assert csp["frame-ancestors"] == "'self'"
    files = resources.files("prepaid_ledger.web")
    for name in ("landlord.html", "login.html"):
        page = files.joinpath("templates", name).read_text(encoding="utf-8")
        # Only scripts from a file, and data blocks (never executed: the page's words).
        scripts = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page)
        assert set(scripts) <= {'<script type="application/json" id="i18n">'}, name
        assert re.findall(r"\son[a-z]+\s*=", page) == [], name
        assert "javascript:" not in page.lower(), name
