"""Subentry flow for meters: where the meter is, which model it is, and a test read before saving.

Two steps: the meter (name, model, how it is connected), then the connection details. The test
read goes through the shared hub manager, so a line already used by running meters is borrowed,
never opened a second time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import modbus_connection as mc
import probatio
from homeassistant.config_entries import ConfigSubentryFlow, SubentryFlowResult
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
)
from prepaid_meter_contract.client import LedgerClient
from prepaid_meter_contract.errors import LedgerAuthError, LedgerError, LedgerRequestError
from prepaid_meter_contract.tariffs import Tariff
from prepaid_meter_contract.vocabulary import Scope

from .const import (
    CONF_ACCOUNT_NAME,
    CONF_BAUDRATE,
    CONF_BYTESIZE,
    CONF_CONNECTION,
    CONF_CUSTOM_PROFILE,
    CONF_FRAME_GAP_MS,
    CONF_HOST,
    CONF_LEDGER_METER_ID,
    CONF_NAME,
    CONF_PARITY,
    CONF_PORT,
    CONF_PROFILE,
    CONF_READ_FUNCTION,
    CONF_RELAY_COIL,
    CONF_RELAY_UNIT_ID,
    CONF_SERIAL_PORT,
    CONF_STOPBITS,
    CONF_TARIFF,
    CONF_TOKEN,
    CONF_UNIT_ID,
    CONF_URL,
    CONNECTION_RTU_OVER_TCP,
    CONNECTION_SERIAL,
    CONNECTION_TCP,
    DEFAULT_MODBUS_PORT,
    LINK_NEW,
    LINK_NONE,
    PARITY_OPTIONS,
    PROFILE_CUSTOM,
)
from .meter_config import line_key, modbus_params, profile_from_config, profile_has_relay_module
from .meter_errors import (
    DecodeError,
    EndpointConflict,
    ExceptionResponse,
    MeterLinkError,
    NoResponse,
    WrongProfile,
)
from .meter_link import MeterLink, async_borrow_meter
from .profiles import PROFILES, MeterProfile, ProfileError

#: The ledger's unit for each kind of meter.
LEDGER_UNITS = {"energy": "kWh", "water": "m3"}
CONNECTIONS = [CONNECTION_TCP, CONNECTION_RTU_OVER_TCP, CONNECTION_SERIAL]
BAUD_RATES = ["1200", "2400", "4800", "9600", "19200", "38400", "57600", "115200"]


def _number(low: int, high: int, unit: str | None = None) -> NumberSelector:
    config = NumberSelectorConfig(min=low, max=high, step=1, mode=NumberSelectorMode.BOX)
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


def _select(options: list[str], key: str) -> SelectSelector:
    return SelectSelector(
        SelectSelectorConfig(options=options, translation_key=key, mode=SelectSelectorMode.DROPDOWN)
    )


METER_SCHEMA = probatio.Schema(
    {
        probatio.Required(CONF_NAME): TextSelector(),
        probatio.Required(CONF_PROFILE): _select([*PROFILES, PROFILE_CUSTOM], CONF_PROFILE),
        probatio.Required(CONF_CONNECTION, default=CONNECTION_TCP): _select(
            CONNECTIONS, CONF_CONNECTION
        ),
    }
)


def _connection_schema(meter: Mapping[str, Any], profile: MeterProfile | None) -> probatio.Schema:
    """Fields for the chosen connection, defaults from the model's factory settings."""
    fields: dict[Any, Any] = {}
    if meter[CONF_CONNECTION] == CONNECTION_SERIAL:
        serial = profile.serial_defaults if profile is not None else None
        fields |= {
            probatio.Required(CONF_SERIAL_PORT): TextSelector(),
            probatio.Required(
                CONF_BAUDRATE, default=str(serial.baudrate if serial else 9600)
            ): _select(BAUD_RATES, CONF_BAUDRATE),
            probatio.Required(CONF_PARITY, default=_parity_key(serial.parity if serial else "N")): (
                _select(list(PARITY_OPTIONS), CONF_PARITY)
            ),
            probatio.Required(CONF_STOPBITS, default=serial.stopbits if serial else 1): _number(
                1, 2
            ),
            probatio.Required(CONF_BYTESIZE, default=serial.bytesize if serial else 8): _number(
                7, 8
            ),
            probatio.Optional(CONF_FRAME_GAP_MS): _number(0, 1000, "ms"),
        }
    else:
        fields |= {
            probatio.Required(CONF_HOST): TextSelector(),
            probatio.Required(CONF_PORT, default=DEFAULT_MODBUS_PORT): _number(1, 65535),
        }
    fields[probatio.Required(CONF_UNIT_ID, default=1)] = _number(1, 247)
    if meter[CONF_PROFILE] == PROFILE_CUSTOM:
        fields[probatio.Required(CONF_CUSTOM_PROFILE)] = TextSelector(
            TextSelectorConfig(multiline=True)
        )
    if profile is not None and profile_has_relay_module(profile):
        fields[probatio.Optional(CONF_RELAY_UNIT_ID)] = _number(1, 247)
        fields[probatio.Optional(CONF_RELAY_COIL, default=0)] = _number(0, 65535)
    return probatio.Schema(fields)


def _parity_key(code: str) -> str:
    """Return the selector's key for a line parity code ("N" -> "none")."""
    return next((key for key, value in PARITY_OPTIONS.items() if value == code), code)


INTEGER_FIELDS = (
    CONF_PORT, CONF_UNIT_ID, CONF_STOPBITS, CONF_BYTESIZE, CONF_BAUDRATE, CONF_RELAY_UNIT_ID,
    CONF_RELAY_COIL, CONF_FRAME_GAP_MS,
)  # fmt: skip


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    """Selectors give floats and strings; store the integers the Modbus layer expects."""
    for key in INTEGER_FIELDS:
        if data.get(key) is not None:
            data[key] = int(data[key])
    if CONF_HOST in data:
        data[CONF_HOST] = str(data[CONF_HOST]).strip()
    return data


def meter_unique_id(data: Mapping[str, Any]) -> str:
    """One subentry per physical meter: its line plus unit id."""
    return f"{line_key(data)}/{data[CONF_UNIT_ID]}"


class MeterSubentryFlow(ConfigSubentryFlow):
    """Add or reconfigure a meter of a ledger site."""

    def __init__(self) -> None:
        """Start with nothing chosen."""
        self._meter: dict[str, Any] = {}
        self._data: dict[str, Any] = {}
        self._tariffs: dict[str, Tariff] = {}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Ask for the meter's name, model and kind of connection."""
        return await self._async_step_meter("user", user_input, {})

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a meter: same steps, current values as defaults."""
        return await self._async_step_meter(
            "reconfigure", user_input, self._get_reconfigure_subentry().data
        )

    async def _async_step_meter(
        self, step_id: str, user_input: dict[str, Any] | None, current: Mapping[str, Any]
    ) -> SubentryFlowResult:
        if user_input is not None:
            self._meter = {**current, **user_input}
            return await self.async_step_connection()
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(METER_SCHEMA, current),
        )

    async def async_step_connection(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask where the meter is; save only after a successful test read."""
        errors: dict[str, str] = {}
        placeholders = {"detail": ""}
        builtin = PROFILES.get(self._meter[CONF_PROFILE])
        if user_input is not None:
            data = _normalise({**_meter_fields(self._meter), **user_input})
            error, detail = await self._async_test_read(data)
            if error is None:
                self._data = data
                return await self.async_step_ledger()
            errors["base"] = error
            placeholders["detail"] = detail
        schema = _connection_schema(self._meter, builtin)
        suggested = user_input if user_input is not None else self._meter
        return self.async_show_form(
            step_id="connection",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _ledger_client(self) -> LedgerClient:
        entry = self._get_entry()
        return LedgerClient(
            async_get_clientsession(self.hass), entry.data[CONF_URL], entry.data[CONF_TOKEN]
        )

    def _unit(self) -> str:
        return LEDGER_UNITS[profile_from_config(self._data).quantity]

    async def async_step_ledger(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Link the meter to its ledger meter: an existing one, a new account, or none yet."""
        errors: dict[str, str] = {}
        placeholders = {"detail": ""}
        can_create = await self._async_can_create_accounts()
        if user_input is not None:
            choice = user_input[CONF_LEDGER_METER_ID]
            if choice == LINK_NEW and not can_create:
                errors["base"] = "ledger_forbidden"
            elif choice == LINK_NEW:
                if self._tariffs:
                    return await self.async_step_ledger_new()
                errors["base"] = "no_tariff"
            else:
                ledger_meter = None if choice == LINK_NONE else int(choice)
                return self._async_finish({**self._data, CONF_LEDGER_METER_ID: ledger_meter})
        # Creating an account needs the admin scope: a site on an integration token is not
        # offered what it cannot do (it links an existing ledger meter, or none).
        options = (
            [SelectOptionDict(value=LINK_NEW, label="Create a new account and meter")]
            if can_create
            else []
        )
        try:
            options += await self._async_linkable_meters()
        except LedgerError as err:
            errors["base"], placeholders["detail"] = _ledger_error(err)
            options = []
        options.append(SelectOptionDict(value=LINK_NONE, label="Do not link it now"))
        # On reconfigure, the meter's current link (kept in the first step's merged data).
        current = self._meter.get(CONF_LEDGER_METER_ID)
        if current is not None:
            default = str(current)
        elif self.source == "reconfigure":
            default = LINK_NONE
        else:
            default = str(options[0]["value"])
        schema = probatio.Schema(
            {
                probatio.Required(CONF_LEDGER_METER_ID, default=default): SelectSelector(
                    SelectSelectorConfig(
                        options=options,
                        translation_key=CONF_LEDGER_METER_ID,
                        mode=SelectSelectorMode.DROPDOWN,
                    )
                )
            }
        )
        return self.async_show_form(
            step_id="ledger",
            data_schema=schema,
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _async_can_create_accounts(self) -> bool:
        """Whether the site's token may open accounts (the ledger's admin scope)."""
        entry = self._get_entry()
        runtime = getattr(entry, "runtime_data", None)
        if runtime is not None:
            return bool(runtime.identity.scope == Scope.ADMIN)
        try:
            identity = await self._ledger_client().async_identify()
        except LedgerError:
            return False
        return identity.scope == Scope.ADMIN

    async def _async_linkable_meters(self) -> list[SelectOptionDict]:
        """Ledger meters of this unit that no other meter of this site is linked to."""
        client = self._ledger_client()
        unit = self._unit()
        accounts = {a.id: a for a in await client.async_accounts()}
        self._tariffs = {str(t.id): t for t in await client.async_tariffs() if t.unit == unit}
        own = self._get_reconfigure_subentry().subentry_id if self.source == "reconfigure" else None
        taken = {
            subentry.data.get(CONF_LEDGER_METER_ID)
            for subentry in self._get_entry().subentries.values()
            if subentry.subentry_id != own
        }
        options = []
        for meter in await client.async_meters():
            if meter.unit != unit or meter.id in taken:
                continue
            owner = accounts.get(meter.account_id)
            label = f"{meter.name} (meter {meter.id}, account {owner.name if owner else '-'})"
            options.append(SelectOptionDict(value=str(meter.id), label=label))
        return options

    async def async_step_ledger_new(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Open a prepaid account with a meter on a tariff, in the ledger."""
        errors: dict[str, str] = {}
        placeholders = {"detail": ""}
        if user_input is not None:
            try:
                meter = await self._ledger_client().async_create_account_with_meter(
                    name=user_input[CONF_ACCOUNT_NAME],
                    timezone=self.hass.config.time_zone,
                    tariff=self._tariffs[user_input[CONF_TARIFF]],
                    model=str(self._data[CONF_PROFILE]),
                )
            except LedgerError as err:
                errors["base"], placeholders["detail"] = _ledger_error(err)
            else:
                return self._async_finish({**self._data, CONF_LEDGER_METER_ID: meter.id})
        tariffs = [
            SelectOptionDict(value=key, label=f"{t.name} ({t.currency})")
            for key, t in self._tariffs.items()
        ]
        schema = probatio.Schema(
            {
                probatio.Required(CONF_ACCOUNT_NAME, default=self._data[CONF_NAME]): TextSelector(),
                probatio.Required(CONF_TARIFF, default=tariffs[0]["value"]): SelectSelector(
                    SelectSelectorConfig(options=tariffs, mode=SelectSelectorMode.DROPDOWN)
                ),
            }
        )
        return self.async_show_form(
            step_id="ledger_new",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _async_finish(self, data: dict[str, Any]) -> SubentryFlowResult:
        unique_id = meter_unique_id(data)
        entry = self._get_entry()
        reconfiguring = self.source == "reconfigure"
        own_id = self._get_reconfigure_subentry().subentry_id if reconfiguring else None
        for subentry in entry.subentries.values():
            if subentry.unique_id == unique_id and subentry.subentry_id != own_id:
                return self.async_abort(reason="already_configured")
        title = str(data[CONF_NAME])
        if reconfiguring:
            return self.async_update_and_abort(
                entry, self._get_reconfigure_subentry(), title=title, data=data, unique_id=unique_id
            )
        return self.async_create_entry(title=title, data=data, unique_id=unique_id)

    async def _async_test_read(self, data: dict[str, Any]) -> tuple[str | None, str]:
        """Read the meter with its profile: (form error, Modbus detail) or (None, "").

        For a profile with a fallback read function, stores the one the meter answers in
        ``data`` (``read_function``), so it is read that way from then on.
        """
        try:
            modbus_params(data)
        except ValueError as err:
            return "invalid_connection", str(err)
        try:
            profile = profile_from_config(data)
        except ProfileError as err:
            return "invalid_profile", str(err)
        try:
            async with async_borrow_meter(self.hass, data, profile) as link:
                return await _async_test_read(link, data)
        except EndpointConflict as err:
            return "endpoint_conflict", str(err)


async def _async_test_read(link: MeterLink, data: dict[str, Any]) -> tuple[str | None, str]:
    """Probe the meter (and read its relay) on a borrowed link: (form error, detail)."""
    try:
        try:
            read_function = await _async_probe(link)
        except WrongProfile as err:
            if data[CONF_PROFILE] == PROFILE_CUSTOM and isinstance(err.__cause__, DecodeError):
                # The user's map cannot decode what the meter sends (NaN, a scale that
                # overflows): a mistake in the map, not a different meter.
                return "invalid_profile", str(err)
            raise
        if read_function is not None:
            data[CONF_READ_FUNCTION] = read_function
            link = link.with_profile(profile_from_config(data))
        if link.profile.relay is not None:
            await link.read_relay()
    except NoResponse as err:
        return "no_response", str(err)
    except (WrongProfile, ExceptionResponse, DecodeError) as err:
        return "wrong_profile", str(err)
    except MeterLinkError as err:  # EndpointUnreachable, and anything else about the line
        return "cannot_connect", str(err)
    return None, ""


async def _async_probe(link: MeterLink) -> int | None:
    """Prove the meter is this model; return the read function it answers if it had to fall back.

    A meter that refuses the profile's read function with "illegal function" is tried once
    more with the profile's fallback (Chint DDSU666 firmware answers FC04 or FC03).
    """
    try:
        await link.probe()
    except WrongProfile as err:
        refused = err.__cause__
        fallback = link.profile.fallback_read_function
        if (
            fallback is None
            or not isinstance(refused, ExceptionResponse)
            # The meter does not support the function code (exception code 1).
            or not isinstance(refused.error, mc.IllegalFunctionError)
        ):
            raise
        await link.with_profile(link.profile.with_read_function(fallback)).probe()
        return fallback
    return None


def _meter_fields(meter: Mapping[str, Any]) -> dict[str, Any]:
    """Pick the first step's answers that belong in the saved data."""
    return {key: meter[key] for key in (CONF_NAME, CONF_PROFILE, CONF_CONNECTION)}


def _ledger_error(err: LedgerError) -> tuple[str, str]:
    """Return the form error (and its detail) for what the ledger answered."""
    if isinstance(err, LedgerAuthError):
        return "invalid_auth", ""
    if isinstance(err, LedgerRequestError):
        return ("ledger_forbidden" if err.status == 403 else "ledger_rejected"), str(err)
    return "ledger_unavailable", str(err)
