"""Client for the Prepaid Meter Ledger HTTP API (the add-on's service).

One small class so that the config flow, setup and coordinators speak to the ledger the same way
and translate transport problems into three exceptions the flows can show.
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

    async def _get(self, path: str, *, auth: bool = True) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token}"} if auth else {}
        try:
            async with self._session.get(
                self._base / path.lstrip("/"), headers=headers, timeout=REQUEST_TIMEOUT
            ) as response:
                if response.status in (401, 403):
                    raise LedgerAuthError(f"{path}: HTTP {response.status}")
                if response.status != 200:
                    raise LedgerConnectionError(f"{path}: HTTP {response.status}")
                body = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise LedgerConnectionError(f"{path}: {err}") from err
        if not isinstance(body, dict):
            raise LedgerConnectionError(f"{path}: unexpected response")
        return body

    async def async_identify(self) -> LedgerIdentity:
        """Check the ledger is up and the token valid; return who it is."""
        health = await self._get("api/v1/health", auth=False)
        whoami = await self._get("api/v1/whoami")
        try:
            return LedgerIdentity(
                ledger_id=str(health["ledger_id"]),
                version=str(health["version"]),
                scope=str(whoami["scope"]),
            )
        except KeyError as err:
            raise LedgerConnectionError(f"not a Prepaid Meter Ledger: missing {err}") from err
