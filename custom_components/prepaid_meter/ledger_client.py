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
        self, method: str, path: str, body: dict[str, Any] | None = None, *, auth: bool = True
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token}"} if auth else {}
        try:
            async with self._session.request(
                method,
                self._base / path.lstrip("/"),
                json=body,
                headers=headers,
                timeout=REQUEST_TIMEOUT,
            ) as response:
                if response.status == 401:
                    raise LedgerAuthError(f"{path}: HTTP 401")
                payload = await response.json(content_type=None)
                if 400 <= response.status < 500 and isinstance(payload, dict):
                    error = payload.get("error") or {}
                    raise LedgerRequestError(
                        response.status,
                        str(error.get("code", "error")),
                        str(error.get("message", f"HTTP {response.status}")),
                    )
                if response.status not in (200, 201):
                    raise LedgerConnectionError(f"{path}: HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise LedgerConnectionError(f"{path}: {err}") from err
        if not isinstance(payload, dict):
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

    async def async_create_account_with_meter(
        self, *, name: str, timezone: str, tariff: dict[str, Any]
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
            },
        )
