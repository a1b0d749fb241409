"""The actions: top up, adjust a balance, refresh a top-up, get a statement, override supply.

They are registered once for the integration (not per ledger site). A call names its target by a
meter device (whose site and ledger meter say which account) or by an account id or number on
one site. Amounts come in major units and are turned into integer minor units exactly by the
account currency's ISO 4217 exponent; anything that cannot be (too many decimals, NaN, zero, ...)
is refused before the ledger is asked, so a bad call changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Final

import probatio
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.service import async_get_config_entry, async_register_admin_service
from homeassistant.util import dt as dt_util
from prepaid_meter_contract.client import LedgerClient
from prepaid_meter_contract.errors import LedgerAuthError, LedgerError, LedgerRequestError
from prepaid_meter_contract.resources import Account
from prepaid_meter_contract.vocabulary import Scope
from pydantic import BaseModel

from .const import CONF_LEDGER_METER_ID, DOMAIN
from .money import MAX_AMOUNT_CHARS, AmountError, major_to_minor
from .supply_control import SupplyController

if TYPE_CHECKING:
    from . import PrepaidConfigEntry

SERVICE_TOP_UP: Final = "top_up"
SERVICE_ADJUST_BALANCE: Final = "adjust_balance"
SERVICE_REFRESH_TOP_UP: Final = "refresh_top_up"
SERVICE_REDEEM_VOUCHER: Final = "redeem_voucher"
SERVICE_GET_STATEMENT: Final = "get_statement"
SERVICE_SET_SUPPLY_OVERRIDE: Final = "set_supply_override"

ATTR_DEVICE_ID: Final = "device_id"
ATTR_ACCOUNT: Final = "account"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_AMOUNT: Final = "amount"
ATTR_REFERENCE: Final = "reference"
ATTR_REASON: Final = "reason"
ATTR_ORDER_ID: Final = "order_id"
ATTR_CODE: Final = "code"
ATTR_FROM: Final = "from"
ATTR_TO: Final = "to"
ATTR_FORMAT: Final = "format"
ATTR_SUPPLY: Final = "supply"
ATTR_DURATION: Final = "duration"
ATTR_UNTIL: Final = "until"
#: An override is a person's temporary decision; a year is the longest it may last.
MAX_OVERRIDE: Final = timedelta(days=366)

#: A typed account number has at least nine digits (eight-digit body plus check digit); any
#: shorter run of digits is an account id.
ACCOUNT_NUMBER_MIN_DIGITS: Final = 9
_SEPARATORS: Final = re.compile(r"[\s\-]")
DEFAULT_RECHECK_REASON: Final = "refresh requested from Home Assistant"


def _invalid(key: str, **placeholders: object) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={name: str(value) for name, value in placeholders.items()},
    )


def _drop_blank(*keys: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Treat an empty text field (as a cleared form field sends it) as not given."""

    def drop(data: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in data.items() if key not in keys or value != ""}

    return drop


def _refused_as[T](key: str, rule: Callable[[T], T]) -> Callable[[T], T]:
    """Run a rule over the call's fields; when it fails, refuse the call with our ``key``.

    The rule (which fields go together) is the schema's, so Home Assistant checks it before
    the action runs; the refusal is a translated validation error, as every other one.
    """

    def check(data: T) -> T:
        try:
            return rule(data)
        except probatio.Invalid as err:
            raise _invalid(key) from err

    return check


_TARGET: Final = {
    probatio.Optional(ATTR_DEVICE_ID): cv.string,
    probatio.Optional(ATTR_ACCOUNT): cv.string,
    probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
}
#: A call names its account by a meter device or by the account, exactly one of them.
_ONE_TARGET: Final = (
    _drop_blank(ATTR_DEVICE_ID, ATTR_ACCOUNT, ATTR_CONFIG_ENTRY_ID),
    _refused_as("target_required", probatio.ExactlyOne(ATTR_DEVICE_ID, ATTR_ACCOUNT)),
)
_AMOUNT: Final = probatio.Any(str, int, float)

TOP_UP_SCHEMA: Final = probatio.All(
    probatio.Schema(
        {
            **_TARGET,
            probatio.Required(ATTR_AMOUNT): _AMOUNT,
            probatio.Optional(ATTR_REFERENCE): cv.string,
        }
    ),
    *_ONE_TARGET,
)
ADJUST_BALANCE_SCHEMA: Final = probatio.All(
    probatio.Schema(
        {
            **_TARGET,
            probatio.Required(ATTR_AMOUNT): _AMOUNT,
            probatio.Required(ATTR_REASON): cv.string,
        }
    ),
    *_ONE_TARGET,
)
REDEEM_VOUCHER_SCHEMA: Final = probatio.All(
    probatio.Schema({**_TARGET, probatio.Required(ATTR_CODE): cv.string}),
    *_ONE_TARGET,
)
REFRESH_TOP_UP_SCHEMA: Final = probatio.Schema(
    {
        probatio.Required(ATTR_ORDER_ID): cv.positive_int,
        probatio.Optional(ATTR_REASON): cv.string,
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
    }
)
GET_STATEMENT_SCHEMA: Final = probatio.All(
    probatio.Schema(
        {
            **_TARGET,
            probatio.Optional(ATTR_FROM): cv.date,
            probatio.Optional(ATTR_TO): cv.date,
            probatio.Optional(ATTR_FORMAT, default="json"): probatio.In(["json", "csv"]),
        }
    ),
    *_ONE_TARGET,
)


SET_SUPPLY_OVERRIDE_SCHEMA: Final = probatio.All(
    probatio.Schema(
        {
            probatio.Required(ATTR_DEVICE_ID): cv.string,
            probatio.Required(ATTR_SUPPLY): probatio.In(["on", "off", "auto"]),
            probatio.Optional(ATTR_DURATION): cv.positive_time_period,
            probatio.Optional(ATTR_UNTIL): cv.datetime,
        }
    ),
    # An override lasts for a while or until a time (or, without either, until changed).
    _refused_as("override_duration_or_until", cv.has_at_most_one_key(ATTR_DURATION, ATTR_UNTIL)),
)


async def _ledger[T](call: Awaitable[T]) -> T:
    """Await a ledger call; a refusal becomes a validation error with the ledger's message."""
    try:
        return await call
    except LedgerRequestError as err:
        raise _invalid("ledger_refused", message=err, code=err.code) from err
    except LedgerAuthError as err:
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="invalid_auth") from err
    except LedgerError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="ledger_unavailable",
            translation_placeholders={"error": str(err)},
        ) from err


def as_response(answer: BaseModel) -> ServiceResponse:
    """Return the ledger's answer as an action's response: the fields the ledger sent."""
    return answer.model_dump(mode="json", exclude_unset=True)


def amount_to_minor(raw: object, target: Target, *, signed: bool) -> int:
    """Return an amount in major units as the target account's exact minor units, or refuse it."""
    try:
        return major_to_minor(raw, target.exponent, signed=signed)
    except AmountError as err:
        raise _invalid(
            err.reason,
            amount=str(raw).strip()[:MAX_AMOUNT_CHARS],
            currency=target.currency,
            decimals=target.exponent,
        ) from err


@dataclass(frozen=True, slots=True)
class Target:
    """The ledger site and account an action works on."""

    entry: PrepaidConfigEntry
    account: Account

    @property
    def client(self) -> LedgerClient:
        """The site's ledger client."""
        return self.entry.runtime_data.client

    @property
    def account_id(self) -> int:
        """The ledger's id of the account."""
        return self.account.id

    @property
    def currency(self) -> str:
        """The account's ISO 4217 currency."""
        return self.account.currency

    @property
    def exponent(self) -> int:
        """Decimals of the account's currency, as the ledger states them."""
        return self.account.currency_exponent


def _loaded_entry(hass: HomeAssistant, config_entry_id: str) -> PrepaidConfigEntry:
    """Return the loaded site ``config_entry_id``: Home Assistant's checks, in our words.

    Home Assistant's own refusals name the integration by its domain and stop at "not
    loaded"; ours name the ledger site and say what to check, the same as for a meter's site.
    """
    try:
        entry: PrepaidConfigEntry = async_get_config_entry(hass, DOMAIN, config_entry_id)
    except ServiceValidationError as err:
        placeholders = err.translation_placeholders or {}
        if err.translation_key == "service_config_entry_not_loaded":
            raise _invalid(
                "site_not_loaded", site=placeholders.get("entry_title", config_entry_id)
            ) from err
        if err.translation_key in {
            "service_config_entry_not_found",
            "service_config_entry_wrong_domain",
        }:
            raise _invalid("unknown_site", config_entry_id=config_entry_id) from err
        raise
    return entry


def _loaded_site(hass: HomeAssistant, config_entry_id: str | None) -> PrepaidConfigEntry:
    """Return the site named by ``config_entry_id``, or the only loaded one.

    Without a name this is not Home Assistant's fallback (the only entry, which must be
    loaded): a second site that failed to load does not block a call for the loaded one.
    """
    if config_entry_id is not None:
        return _loaded_entry(hass, config_entry_id)
    loaded: list[PrepaidConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    if not loaded:
        raise _invalid("no_site_loaded")
    if len(loaded) > 1:
        raise _invalid("site_ambiguous", sites=", ".join(sorted(e.title for e in loaded)))
    return loaded[0]


def _meter_site(
    hass: HomeAssistant, device_id: str, config_entry_id: str | None = None
) -> tuple[PrepaidConfigEntry, ConfigSubentry]:
    """Return the loaded site of a meter device and the meter's subentry."""
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        raise _invalid("not_a_meter", device_id=device_id)
    subentry_id = next((ident for domain, ident in device.identifiers if domain == DOMAIN), None)
    entry = hass.config_entries.async_get_entry(device.config_entry_id)
    subentry = (
        None if entry is None or entry.domain != DOMAIN else entry.subentries.get(subentry_id or "")
    )
    if entry is None or subentry is None:
        raise _invalid("not_a_meter", device_id=device_id)
    if config_entry_id is not None and config_entry_id != entry.entry_id:
        raise _invalid("site_mismatch", meter=device.name, site=entry.title)
    return _loaded_entry(hass, entry.entry_id), subentry


async def _meter_target(hass: HomeAssistant, device_id: str, config_entry_id: str | None) -> Target:
    """Follow a meter device to its subentry, its ledger meter and that meter's account."""
    entry, subentry = _meter_site(hass, device_id, config_entry_id)
    meter_id = subentry.data.get(CONF_LEDGER_METER_ID)
    if meter_id is None:
        raise _invalid("meter_not_linked", meter=subentry.title)
    client: LedgerClient = entry.runtime_data.client
    meter = await _ledger(client.async_get_meter(int(meter_id)))
    return Target(entry, await _ledger(client.async_get_account(meter.account_id)))


async def _account_target(entry: PrepaidConfigEntry, raw: str) -> Target:
    """Find an account by id (a short number) or by its printed account number."""
    client = entry.runtime_data.client
    digits = _SEPARATORS.sub("", raw)
    if not (digits.isascii() and digits.isdigit()):
        raise _invalid("invalid_account", account=raw)
    if len(digits) < ACCOUNT_NUMBER_MIN_DIGITS:
        return Target(entry, await _ledger(client.async_get_account(int(digits))))
    for account in await _ledger(client.async_accounts()):
        if account.number == digits:
            return Target(entry, account)
    raise _invalid("unknown_account_number", account=raw)


async def _resolve_target(hass: HomeAssistant, data: dict[str, Any]) -> Target:
    """Return the site and account a call targets (its schema let exactly one through)."""
    config_entry_id: str | None = data.get(ATTR_CONFIG_ENTRY_ID)
    if ATTR_DEVICE_ID in data:
        return await _meter_target(hass, data[ATTR_DEVICE_ID], config_entry_id)
    return await _account_target(_loaded_site(hass, config_entry_id), data[ATTR_ACCOUNT])


def _required_text(data: dict[str, Any], field: str) -> str:
    text = str(data.get(field) or "").strip()
    if not text:
        raise _invalid("text_required", field=field)
    return text


def top_up_idempotency_key(account_id: int, amount_minor: int, reference: str | None) -> str:
    """Return the key that makes a repeated call the same top-up, not a second one.

    With a reference, the same account, amount and reference give the same key, so a retry
    replays the first order. Without one, every call is a new top-up (a fresh key).
    """
    if reference is None:
        return f"ha-top-up-{uuid.uuid4()}"
    canonical = json.dumps([account_id, amount_minor, reference], separators=(",", ":"))
    return "ha-top-up-" + hashlib.sha256(canonical.encode()).hexdigest()


async def _async_top_up(call: ServiceCall) -> ServiceResponse:
    target = await _resolve_target(call.hass, call.data)
    amount = amount_to_minor(call.data[ATTR_AMOUNT], target, signed=False)
    reference = str(call.data.get(ATTR_REFERENCE) or "").strip() or None
    key = top_up_idempotency_key(target.account_id, amount, reference)
    order = await _ledger(target.client.async_top_up(target.account_id, amount, reference, key))
    return as_response(order)


async def _async_adjust_balance(call: ServiceCall) -> ServiceResponse:
    target = await _resolve_target(call.hass, call.data)
    scope = target.entry.runtime_data.identity.scope
    if scope != Scope.ADMIN:
        raise _invalid("admin_token_required", scope=scope, site=target.entry.title)
    amount = amount_to_minor(call.data[ATTR_AMOUNT], target, signed=True)
    reason = _required_text(call.data, ATTR_REASON)
    adjusted = await _ledger(target.client.async_adjust_balance(target.account_id, amount, reason))
    return as_response(adjusted)


async def _async_redeem_voucher(call: ServiceCall) -> ServiceResponse:
    target = await _resolve_target(call.hass, call.data)
    code = _required_text(call.data, ATTR_CODE)
    redeemed = await _ledger(target.client.async_redeem_voucher(target.account_id, code))
    return as_response(redeemed)


async def _async_refresh_top_up(call: ServiceCall) -> ServiceResponse:
    entry = _loaded_site(call.hass, call.data.get(ATTR_CONFIG_ENTRY_ID) or None)
    reason = str(call.data.get(ATTR_REASON) or "").strip() or DEFAULT_RECHECK_REASON
    client = entry.runtime_data.client
    return as_response(await _ledger(client.async_recheck_top_up(call.data[ATTR_ORDER_ID], reason)))


async def _async_get_statement(call: ServiceCall) -> ServiceResponse:
    target = await _resolve_target(call.hass, call.data)
    params: dict[str, str] = {}
    for field in (ATTR_FROM, ATTR_TO):
        day: date | None = call.data.get(field)
        if day is not None:
            params[field] = day.isoformat()
    if call.data[ATTR_FORMAT] == "csv":
        text = await _ledger(target.client.async_get_statement_csv(target.account_id, params))
        return {"account_id": target.account_id, "format": "csv", "csv": text}
    statement = await _ledger(target.client.async_get_statement(target.account_id, params))
    # The exponent turns the statement's minor units into the currency's major units.
    return {
        "account_id": target.account_id,
        "format": "json",
        "currency_exponent": target.exponent,
        "statement": statement.model_dump(mode="json"),
    }


def _meter_controller(hass: HomeAssistant, device_id: str) -> SupplyController:
    """Return the relay controller of a linked meter device with a relay."""
    entry, subentry = _meter_site(hass, device_id)
    controller: SupplyController | None = entry.runtime_data.supply.get(subentry.subentry_id)
    if controller is None:
        raise _invalid("no_relay_control", meter=subentry.title)
    return controller


async def _async_set_supply_override(call: ServiceCall) -> ServiceResponse:
    controller = _meter_controller(call.hass, call.data[ATTR_DEVICE_ID])
    supply: str = call.data[ATTR_SUPPLY]
    duration: timedelta | None = call.data.get(ATTR_DURATION)
    until = call.data.get(ATTR_UNTIL)
    if supply == "auto":
        if duration is not None or until is not None:
            raise _invalid("override_duration_or_until")
        await controller.async_clear_override()
        return {"supply": "auto", "until": None}
    now = dt_util.utcnow()
    if until is not None:
        local = until if until.tzinfo else until.replace(tzinfo=dt_util.get_default_time_zone())
        try:
            until = dt_util.as_utc(local)
        except (OverflowError, ValueError) as err:  # year 1 east of UTC, year 9999 west of it
            raise _invalid(
                "override_until_out_of_range", until=local.isoformat(), days=MAX_OVERRIDE.days
            ) from err
    elif duration is not None:
        if duration > MAX_OVERRIDE:
            raise _invalid("override_too_long", days=MAX_OVERRIDE.days)
        until = now + duration
    if until is not None and not now < until <= now + MAX_OVERRIDE:
        raise _invalid(
            "override_until_out_of_range", until=until.isoformat(), days=MAX_OVERRIDE.days
        )
    await controller.async_set_override(closed=supply == "on", until=until)
    return {"supply": supply, "until": None if until is None else until.isoformat()}


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the money actions once (Home Assistant admins only for those that move money)."""
    async_register_admin_service(
        hass, DOMAIN, SERVICE_TOP_UP, _async_top_up, TOP_UP_SCHEMA, SupportsResponse.OPTIONAL
    )
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_ADJUST_BALANCE,
        _async_adjust_balance,
        ADJUST_BALANCE_SCHEMA,
        SupportsResponse.OPTIONAL,
    )
    # The voucher is the authority (whoever holds the code holds its value): any user, or an
    # automation such as the NFC tag blueprint, may redeem one.
    hass.services.async_register(
        DOMAIN,
        SERVICE_REDEEM_VOUCHER,
        _async_redeem_voucher,
        REDEEM_VOUCHER_SCHEMA,
        SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_REFRESH_TOP_UP,
        _async_refresh_top_up,
        REFRESH_TOP_UP_SCHEMA,
        SupportsResponse.OPTIONAL,
    )
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_SET_SUPPLY_OVERRIDE,
        _async_set_supply_override,
        SET_SUPPLY_OVERRIDE_SCHEMA,
        SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_STATEMENT,
        _async_get_statement,
        GET_STATEMENT_SCHEMA,
        SupportsResponse.ONLY,
    )
