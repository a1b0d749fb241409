"""A typed async client for the ledger's HTTP API and its event stream.

One class, so that every caller speaks to the ledger the same way: requests are built from the
contract's models, answers are read into them (a body of the wrong shape is a
``LedgerConnectionError``: whatever answered is not the ledger), and transport problems become
the few exceptions of ``errors``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

import aiohttp
from pydantic import BaseModel, ValidationError
from yarl import URL

from prepaid_meter_contract.accounts import AccountInput
from prepaid_meter_contract.errors import (
    ErrorBody,
    LedgerAuthError,
    LedgerConnectionError,
    LedgerError,
    LedgerRequestError,
)
from prepaid_meter_contract.events import StreamEvent, parse_event
from prepaid_meter_contract.meters import MeterInput
from prepaid_meter_contract.readings import (
    HeldReading,
    HeldReadings,
    Reading,
    ReadingsBatch,
    ReadingsResult,
    ResolvedReading,
    ResolveReading,
)
from prepaid_meter_contract.resources import (
    Account,
    Accounts,
    Health,
    Meter,
    Meters,
    MeterStatus,
    RecheckedOrder,
    TopupOrder,
    TopupOrders,
    WhoAmI,
)
from prepaid_meter_contract.sse import SseStream
from prepaid_meter_contract.statements import Statement
from prepaid_meter_contract.tariffs import Tariff, Tariffs
from prepaid_meter_contract.topups import (
    Adjustment,
    AdjustmentRequest,
    OrderAction,
    TopupRequest,
)
from prepaid_meter_contract.vocabulary import OrderStatus, ResolveAction, Scope
from prepaid_meter_contract.vouchers import RedeemedVoucher, RedeemVoucher
from prepaid_meter_contract.wire import WireModel, describe

REQUEST_TIMEOUT: Final = aiohttp.ClientTimeout(total=10)
#: The ledger sends a keep-alive every 15 s; silence for longer means the stream is dead.
STREAM_IDLE_S: Final = 45


class LedgerIdentity(WireModel):
    """Who the ledger is (stable across restarts) and what our token may do."""

    ledger_id: str
    version: str
    scope: Scope


class LedgerClient:
    """Speak to one ledger with one token over a shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        """Bind the client to a base URL such as ``http://127.0.0.1:8099``."""
        self._session = session
        self._base = URL(url.rstrip("/"))
        self._token = token

    @property
    def url(self) -> str:
        """The ledger's base URL."""
        return str(self._base)

    # ------------------------------------------------------------------ transport

    async def _call(
        self,
        method: str,
        path: str,
        body: BaseModel | dict[str, Any] | None = None,
        *,
        auth: bool = True,
        params: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        as_text: bool = False,
        repeatable: bool = False,
    ) -> Any:
        """Call the ledger: the one place that maps its answers to our exceptions.

        401 is ``LedgerAuthError``; another 4xx with the ledger's error body is
        ``LedgerRequestError`` with the ledger's code, message and field; anything else that
        is not 200/201 (5xx keeps the ledger's message, e.g. "Stripe did not answer") or not
        the ledger's shape is ``LedgerConnectionError``. ``as_text`` returns a text body (CSV).

        The ledger closes a connection idle for 5 s; a request sent on a pooled connection just
        as it closes fails with ServerDisconnectedError before the ledger read it. aiohttp sends
        a GET once more by itself; other requests are sent once more here when repeating them
        cannot do anything twice: one with an Idempotency-Key, or one the caller marks
        ``repeatable`` (readings: re-sends are free).
        """
        headers = {"Authorization": f"Bearer {self._token}"} if auth else {}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        json_body = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
        retry = repeatable or idempotency_key is not None
        while True:
            try:
                return await self._call_once(
                    method, path, json_body, headers=headers, params=params, as_text=as_text
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
        if response.status >= 400:
            try:
                error = ErrorBody.model_validate(payload).error
            except ValidationError:
                raise LedgerConnectionError(f"{path}: HTTP {response.status}") from None
            if response.status < 500:
                raise LedgerRequestError(response.status, error.code, error.message, error.field)
            raise LedgerConnectionError(f"{path}: HTTP {response.status}: {error.message}")
        if response.status not in (200, 201) or not isinstance(payload, dict):
            raise LedgerConnectionError(f"{path}: unexpected response")
        return payload

    async def _typed[M: BaseModel](
        self, model: type[M], method: str, path: str, body: BaseModel | None = None, **kwargs: Any
    ) -> M:
        """Call the ledger and read its answer into a model."""
        return _read(model, await self._call(method, path, body, **kwargs), path)

    # ------------------------------------------------------------------ identity

    async def async_identify(self) -> LedgerIdentity:
        """Check the ledger is up and the token valid; return who it is."""
        health = await self._typed(Health, "GET", "api/v1/health", auth=False)
        whoami = await self._typed(WhoAmI, "GET", "api/v1/whoami")
        return LedgerIdentity(
            ledger_id=health.ledger_id, version=health.version, scope=whoami.scope
        )

    # ------------------------------------------------------------------ readings and events

    async def async_post_readings(self, readings: Sequence[Reading]) -> ReadingsResult:
        """Send a batch of cumulative readings; the ledger charges each once (re-sends are free)."""
        batch = ReadingsBatch(readings=list(readings))
        return await self._typed(ReadingsResult, "POST", "api/v1/readings", batch, repeatable=True)

    async def async_held_readings(self) -> list[HeldReading]:
        """Return the readings the ledger's guard holds for a decision, oldest first."""
        return (await self._typed(HeldReadings, "GET", "api/v1/readings/held")).readings

    async def async_resolve_reading(
        self, reading_id: int, action: ResolveAction, reason: str
    ) -> ResolvedReading:
        """Accept, reject or re-base from a held reading, with the person's reason (audited)."""
        return await self._typed(
            ResolvedReading,
            "POST",
            f"api/v1/readings/{reading_id}/resolve",
            _request(ResolveReading, action=action, reason=reason),
        )

    async def events(self, after: str) -> AsyncIterator[StreamEvent]:
        """Follow the event stream after an event id (or ``latest``), one typed event at a time.

        Ends when the ledger closes the stream; a connection problem or a body that is not the
        ledger's stream is a ``LedgerConnectionError`` (an idle stream times out after
        ``STREAM_IDLE_S``: the ledger sends keep-alives well within it).
        """
        stream = SseStream()
        try:
            async with self._session.get(
                self._base / "api/v1/events",
                headers={"Authorization": f"Bearer {self._token}", "Last-Event-ID": after},
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=STREAM_IDLE_S),
            ) as response:
                if response.status == 401:
                    raise LedgerAuthError("event stream: HTTP 401")
                if response.status != 200:
                    raise LedgerConnectionError(f"event stream: HTTP {response.status}")
                async for chunk in response.content.iter_any():
                    for sse in stream.feed(chunk):
                        yield parse_event(sse.event, sse.data)
                for sse in stream.feed(b"", final=True):
                    yield parse_event(sse.event, sse.data)
        except LedgerError:
            raise
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise LedgerConnectionError(f"event stream: {err}") from err

    # ------------------------------------------------------------------ accounts and meters

    async def async_meter_status(self, meter_id: int) -> MeterStatus:
        """Cost so far, current price, days left and the guard's state of one meter."""
        return await self._typed(MeterStatus, "GET", f"api/v1/meters/{meter_id}/status")

    async def async_get_account(self, account_id: int) -> Account:
        """Return one account with its balance, currency and the currency's exponent."""
        return await self._typed(Account, "GET", f"api/v1/accounts/{account_id}")

    async def async_topups(
        self,
        *,
        account_id: int | None = None,
        status: OrderStatus | None = None,
        limit: int = 100,
    ) -> list[TopupOrder]:
        """List top-up orders, newest first (of one account, in one status)."""
        params = {"limit": str(limit)}
        if account_id is not None:
            params["account"] = str(account_id)
        if status is not None:
            params["status"] = status
        return (await self._typed(TopupOrders, "GET", "api/v1/topups", params=params)).topups

    async def async_accounts(self, *, search: str | None = None) -> list[Account]:
        """List every account (matching SEARCH), following the ledger's pages to the end."""
        found: list[Account] = []
        params = {"limit": "500", "sort": "created"} | ({"q": search} if search else {})
        while True:
            page = await self._typed(Accounts, "GET", "api/v1/accounts", params=params)
            found.extend(page.accounts)
            if page.next_cursor is None or not page.accounts:
                return found
            params["cursor"] = page.next_cursor

    async def async_meters(self) -> list[Meter]:
        """List every meter."""
        return (await self._typed(Meters, "GET", "api/v1/meters")).meters

    async def async_tariffs(self) -> list[Tariff]:
        """List every tariff."""
        return (await self._typed(Tariffs, "GET", "api/v1/tariffs")).tariffs

    async def async_get_meter(self, meter_id: int) -> Meter:
        """Return one ledger meter (its ``account_id`` says whose credit it uses)."""
        return await self._typed(Meter, "GET", f"api/v1/meters/{meter_id}")

    async def async_create_account_with_meter(
        self, *, name: str, timezone: str, tariff: Tariff, model: str | None = None
    ) -> Meter:
        """Open a prepaid account in the tariff's currency and give it a meter on that tariff."""
        opening = _request(AccountInput, name=name, currency=tariff.currency, timezone=timezone)
        account = await self._typed(Account, "POST", "api/v1/accounts", opening)
        meter = _request(
            MeterInput,
            account_id=account.id,
            tariff_id=tariff.id,
            name=name,
            unit=tariff.unit,
            model=model or None,  # gives the ledger's reading guard the meter's maximum power
        )
        return await self._typed(Meter, "POST", "api/v1/meters", meter)

    # ------------------------------------------------------------------ money

    async def async_top_up(
        self, account_id: int, amount_minor: int, reference: str | None, idempotency_key: str
    ) -> TopupOrder:
        """Credit a manual top-up; the same key and body replay the first order (no 2nd credit)."""
        request = _request(
            TopupRequest, account=account_id, amount_minor=amount_minor, reference=reference
        )
        return await self._typed(
            TopupOrder, "POST", "api/v1/topups", request, idempotency_key=idempotency_key
        )

    async def async_adjust_balance(
        self, account_id: int, amount_minor: int, reason: str
    ) -> Adjustment:
        """Post a signed correction with a reason (the ledger allows it to admin tokens only)."""
        request = _request(
            AdjustmentRequest, account=account_id, amount_minor=amount_minor, reason=reason
        )
        return await self._typed(Adjustment, "POST", "api/v1/adjustments", request)

    async def async_redeem_voucher(self, account_id: int, code: str) -> RedeemedVoucher:
        """Redeem a voucher's code for an account: its value is credited once, at once."""
        redeeming = _request(RedeemVoucher, account=account_id, code=code)
        return await self._typed(RedeemedVoucher, "POST", "api/v1/vouchers/redeem", redeeming)

    async def async_recheck_top_up(self, order_id: int, reason: str) -> RecheckedOrder:
        """Ask the order's payment provider again and apply its answer."""
        recheck = _request(OrderAction, action="recheck", reason=reason)
        return await self._typed(
            RecheckedOrder, "POST", f"api/v1/topups/{order_id}/actions", recheck
        )

    async def async_get_statement(self, account_id: int, params: dict[str, str]) -> Statement:
        """Return an account's statement (``from``/``to`` in ``params``)."""
        return await self._typed(
            Statement,
            "GET",
            f"api/v1/accounts/{account_id}/statement",
            params=params | {"format": "json"},
        )

    async def async_get_statement_csv(self, account_id: int, params: dict[str, str]) -> str:
        """Return an account's statement as the ledger's CSV text."""
        result: str = await self._call(
            "GET",
            f"api/v1/accounts/{account_id}/statement",
            params=params | {"format": "csv"},
            as_text=True,
        )
        return result


def _request[M: BaseModel](model: type[M], /, **fields: Any) -> M:
    """Build a request, refused here as the ledger would refuse it (422, same code and field)."""
    try:
        return model.model_validate(fields)
    except ValidationError as err:
        wrong = describe(err)
        raise LedgerRequestError(422, wrong.code, wrong.message(), wrong.field) from None


def _read[M: BaseModel](model: type[M], payload: object, path: str) -> M:
    """Read an answer into a model; another shape means whatever answered is not the ledger."""
    try:
        return model.model_validate(payload)
    except ValidationError as err:
        raise LedgerConnectionError(f"{path}: not the ledger's answer: {err}") from err
