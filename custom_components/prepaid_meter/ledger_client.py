"""Client for the Prepaid Meter Ledger HTTP API (the add-on's service).

One small class so that the config flow, setup and coordinators speak to the ledger the same way
and translate transport problems into a few exceptions the flows can show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10)
#: The ledger sends a keep-alive every 15 s; silence for longer means the stream is dead.
STREAM_IDLE_S = 45


class LedgerError(Exception):
    """Base class for problems talking to the ledger."""


class LedgerConnectionError(LedgerError):
    """The ledger could not be reached or answered with something that is not the ledger API."""


class LedgerAuthError(LedgerError):
    """The ledger rejected the token."""


class LedgerRequestError(LedgerError):
    """The ledger refused a request (HTTP 4xx); ``code`` and message come from the ledger."""

    def __init__(self, status: int, code: str, message: str) -> None:
        """Keep the ledger's own error code and message."""
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class LedgerIdentity:
    """Who the ledger is (stable across restarts) and what our token may do."""

    ledger_id: str
    version: str
    scope: str


class LedgerClient:
    """Speak to one ledger with one token over Home Assistant's shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        """Bind the client to a base URL such as ``http://127.0.0.1:8099``."""
        self._session = session
        self._base = URL(url.rstrip("/"))
        self._token = token

    @property
    def url(self) -> str:
        """The ledger's base URL."""
        return str(self._base)

    async def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        auth: bool = True,
        params: dict[str, str] | None = None,
        repeatable: bool = False,
    ) -> dict[str, Any]:
        """Call the ledger and return its JSON object (see ``_call`` for the errors)."""
        result: dict[str, Any] = await self._call(
            method, path, body, auth=auth, params=params, repeatable=repeatable
        )
        return result

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        auth: bool = True,
        params: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        as_text: bool = False,
        repeatable: bool = False,
    ) -> Any:
        """Call the ledger: the one place that maps its answers to our exceptions.

        401 is ``LedgerAuthError``; another 4xx with the ledger's error body is
        ``LedgerRequestError`` with the ledger's code and message; anything else that is not
        200/201 (5xx keeps the ledger's message, e.g. "Stripe did not answer") or not the
        ledger's shape is ``LedgerConnectionError``. ``as_text`` returns a text body (CSV).

        The ledger closes a connection idle for 5 s; a request sent on a pooled connection just
        as it closes fails with ServerDisconnectedError before the ledger read it. aiohttp sends
        a GET once more by itself; other requests are sent once more here when repeating them
        cannot do anything twice: one with an Idempotency-Key, or one the caller marks
        ``repeatable`` (readings: re-sends are free).
        """
        headers = {"Authorization": f"Bearer {self._token}"} if auth else {}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        retry = repeatable or idempotency_key is not None
        while True:
            try:
                return await self._call_once(
                    method, path, body, headers=headers, params=params, as_text=as_text
                )
            except LedgerConnectionError as err:
                if not (retry and isinstance(err.__cause__, aiohttp.ServerDisconnectedError)):
                    raise
                retry = False

    async def _call_once(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        *,
        headers: dict[str, str],
        params: dict[str, str] | None,
        as_text: bool,
    ) -> Any:
        """Send one request and map its answer (``_call`` documents the errors)."""
        try:
            async with self._session.request(
                method,
                self._base / path.lstrip("/"),
                json=body,
                params=params,
                headers=headers,
                timeout=REQUEST_TIMEOUT,
            ) as response:
                if response.status == 401:
                    raise LedgerAuthError(f"{path}: HTTP 401")
                if as_text and response.status in (200, 201):
                    return await response.text()
                payload = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise LedgerConnectionError(f"{path}: {err}") from err
        error = payload.get("error") if isinstance(payload, dict) else None
        if response.status >= 400:
            message = (
                str(error.get("message", f"HTTP {response.status}"))
                if isinstance(error, dict)
                else f"HTTP {response.status}"
            )
            if response.status < 500 and isinstance(error, dict):
                raise LedgerRequestError(response.status, str(error.get("code", "error")), message)
            raise LedgerConnectionError(f"{path}: HTTP {response.status}: {message}")
        if response.status not in (200, 201) or not isinstance(payload, dict):
            raise LedgerConnectionError(f"{path}: unexpected response")
        return payload

    async def async_identify(self) -> LedgerIdentity:
        """Check the ledger is up and the token valid; return who it is."""
        health = await self._request("GET", "api/v1/health", auth=False)
        whoami = await self._request("GET", "api/v1/whoami")
        try:
            return LedgerIdentity(
                ledger_id=str(health["ledger_id"]),
                version=str(health["version"]),
                scope=str(whoami["scope"]),
            )
        except KeyError as err:
            raise LedgerConnectionError(f"not a Prepaid Meter Ledger: missing {err}") from err

    async def async_list(self, collection: str) -> list[dict[str, Any]]:
        """List ``accounts``, ``meters`` or ``tariffs``."""
        items = (await self._request("GET", f"api/v1/{collection}")).get(collection)
        if not isinstance(items, list):
            raise LedgerConnectionError(f"{collection}: unexpected response")
        return items

    async def async_get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """Read one resource, e.g. ``accounts/7`` or ``meters/3/status``."""
        return await self._request("GET", f"api/v1/{path}", params=params)

    async def async_post_readings(self, readings: list[dict[str, str | int]]) -> dict[str, Any]:
        """Send a batch of cumulative readings; the ledger charges each once (re-sends are free)."""
        return await self._request(
            "POST", "api/v1/readings", {"readings": readings}, repeatable=True
        )

    def open_event_stream(self, after: str) -> Any:
        """Open the Server-Sent Events stream after an event id (or ``latest``).

        Returns the request context manager; the caller reads the body line by line.
        """
        return self._session.get(
            self._base / "api/v1/events",
            headers={"Authorization": f"Bearer {self._token}", "Last-Event-ID": after},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=STREAM_IDLE_S),
        )

    async def async_create_account_with_meter(
        self, *, name: str, timezone: str, tariff: dict[str, Any], model: str | None = None
    ) -> dict[str, Any]:
        """Open a prepaid account in the tariff's currency and give it a meter on that tariff."""
        account = await self._request(
            "POST",
            "api/v1/accounts",
            {"name": name, "currency": tariff["currency"], "timezone": timezone},
        )
        return await self._request(
            "POST",
            "api/v1/meters",
            {
                "account_id": account["id"],
                "tariff_id": tariff["id"],
                "name": name,
                "unit": tariff["unit"],
                # The model gives the ledger's reading guard the meter's maximum power.
                **({"model": model} if model else {}),
            },
        )

    async def async_held_readings(self) -> list[dict[str, Any]]:
        """Return the readings the ledger's guard holds for a decision, oldest first."""
        items = (await self._request("GET", "api/v1/readings/held")).get("readings")
        if not isinstance(items, list):
            raise LedgerConnectionError("readings/held: unexpected response")
        return items

    async def async_resolve_reading(
        self, reading_id: int, action: str, reason: str
    ) -> dict[str, Any]:
        """Accept, reject or re-base from a held reading, with the person's reason (audited)."""
        return await self._request(
            "POST", f"api/v1/readings/{reading_id}/resolve", {"action": action, "reason": reason}
        )

    # --- actions ---

    async def async_get_meter(self, meter_id: int) -> dict[str, Any]:
        """Return one ledger meter (its ``account_id`` says whose credit it uses)."""
        result: dict[str, Any] = await self._call("GET", f"api/v1/meters/{meter_id}")
        return result

    async def async_get_account(self, account_id: int) -> dict[str, Any]:
        """Return one account with its balance, currency and the currency's exponent."""
        result: dict[str, Any] = await self._call("GET", f"api/v1/accounts/{account_id}")
        return result

    async def async_top_up(
        self, account_id: int, amount_minor: int, reference: str | None, idempotency_key: str
    ) -> dict[str, Any]:
        """Credit a manual top-up; the same key and body replay the first order (no 2nd credit)."""
        body: dict[str, Any] = {"account": account_id, "amount_minor": amount_minor}
        if reference is not None:
            body["reference"] = reference
        result: dict[str, Any] = await self._call(
            "POST", "api/v1/topups", body, idempotency_key=idempotency_key
        )
        return result

    async def async_adjust_balance(
        self, account_id: int, amount_minor: int, reason: str
    ) -> dict[str, Any]:
        """Post a signed correction with a reason (the ledger allows it to admin tokens only)."""
        result: dict[str, Any] = await self._call(
            "POST",
            "api/v1/adjustments",
            {"account": account_id, "amount_minor": amount_minor, "reason": reason},
        )
        return result

    async def async_recheck_top_up(self, order_id: int, reason: str) -> dict[str, Any]:
        """Ask the order's payment provider again and apply its answer."""
        result: dict[str, Any] = await self._call(
            "POST", f"api/v1/topups/{order_id}/actions", {"action": "recheck", "reason": reason}
        )
        return result

    async def async_get_statement(self, account_id: int, params: dict[str, str]) -> dict[str, Any]:
        """Return an account's statement as JSON (``from``/``to`` in ``params``)."""
        result: dict[str, Any] = await self._call(
            "GET", f"api/v1/accounts/{account_id}/statement", params=params | {"format": "json"}
        )
        return result

    async def async_get_statement_csv(self, account_id: int, params: dict[str, str]) -> str:
        """Return an account's statement as the ledger's CSV text."""
        result: str = await self._call(
            "GET",
            f"api/v1/accounts/{account_id}/statement",
            params=params | {"format": "csv"},
            as_text=True,
        )
        return result
