"""Config flow: one config entry per ledger site (URL + token), checked before it is created."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import probatio
from homeassistant.config_entries import (
    SOURCE_IGNORE,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.core import callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from prepaid_meter_contract.client import LedgerClient, LedgerIdentity
from prepaid_meter_contract.errors import LedgerAuthError, LedgerError
from prepaid_meter_contract.vocabulary import Scope
from yarl import URL

from .const import (
    CONF_ENFORCE_WHEN_OFFLINE,
    CONF_STALE_POLLS,
    CONF_TOKEN,
    CONF_URL,
    DEFAULT_STALE_POLLS,
    DOMAIN,
    SUBENTRY_METER,
)
from .meter_flow import MeterSubentryFlow

if TYPE_CHECKING:
    from . import PrepaidConfigEntry

# Scopes allowed to run a site; a tenant's read-only token cannot post readings.
SITE_SCOPES = frozenset({Scope.ADMIN, Scope.INTEGRATION})

URL_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
TOKEN_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))


def _ledger_url(raw: str) -> str | None:
    """Return the URL without a trailing slash, or None when it cannot address a ledger.

    yarl raises ValueError for a port out of range or a malformed IPv6 host; that must become
    a form error, not an exception the flow shows as "Unknown error".
    """
    text = raw.strip().rstrip("/")
    try:
        url = URL(text)
        host, port = url.host, url.port
    except ValueError:
        return None
    if url.scheme not in {"http", "https"} or not host or port == 0:
        return None
    return text


def _site_schema(defaults: Mapping[str, Any]) -> probatio.Schema:
    return probatio.Schema(
        {
            probatio.Required(
                CONF_URL, default=defaults.get(CONF_URL, probatio.UNDEFINED)
            ): URL_SELECTOR,
            probatio.Required(CONF_TOKEN): TOKEN_SELECTOR,
        }
    )


class PrepaidMeterConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up a ledger site by hand, from add-on discovery, or again after a token change."""

    VERSION = 1
    MINOR_VERSION = 1

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: PrepaidConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Meters are subentries of their ledger site."""
        return {SUBENTRY_METER: MeterSubentryFlow}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: PrepaidConfigEntry) -> OptionsFlow:  # noqa: ARG004
        """Relay-control options of the site."""
        return PrepaidMeterOptionsFlow()

    def __init__(self) -> None:
        """Start with nothing discovered."""
        self._discovered_url = ""
        self._discovered_token = ""
        self._entry_to_update: PrepaidConfigEntry | None = None

    def _async_update_and_restart(
        self,
        entry: PrepaidConfigEntry,
        *,
        data_updates: Mapping[str, Any],
        reason: str | None = None,
    ) -> ConfigFlowResult:
        """Store new site data and finish; the site restarts with it.

        A loaded site restarts itself from its update listener (Home Assistant 2026.12 refuses
        a flow's reload of an entry that has one); a site that is not loaded, say after a
        rejected token, has no listener and is reloaded by the flow.
        """
        kwargs: dict[str, Any] = {"data_updates": data_updates}
        if reason is not None:
            kwargs["reason"] = reason
        if entry.update_listeners:
            return self.async_update_and_abort(entry, **kwargs)
        return self.async_update_reload_and_abort(entry, **kwargs)

    def _abort_if_site_configured(self, url: str) -> None:
        """Abort when this ledger is set up already, taking its (maybe moved) URL.

        A loaded site's update listener restarts it on the new URL; one that is not loaded
        (retrying) is reloaded here.
        """
        entry = self.hass.config_entries.async_entry_for_domain_unique_id(
            DOMAIN, str(self.unique_id)
        )
        self._abort_if_unique_id_configured(
            updates={CONF_URL: url},
            reload_on_update=entry is None or not entry.update_listeners,
        )

    async def _async_check(
        self, url: str, token: str, errors: dict[str, str]
    ) -> LedgerIdentity | None:
        """Ask the ledger who it is; fill ``errors`` with a form error when it can't say."""
        client = LedgerClient(async_get_clientsession(self.hass), url, token)
        try:
            identity = await client.async_identify()
        except LedgerAuthError:
            errors["base"] = "invalid_auth"
            return None
        except LedgerError:
            errors["base"] = "cannot_connect"
            return None
        if identity.scope not in SITE_SCOPES:
            errors["base"] = "insufficient_scope"
            return None
        return identity

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the ledger's URL and an admin or integration token."""
        errors: dict[str, str] = {}
        if user_input is not None:
            url = _ledger_url(user_input[CONF_URL])
            if url is None:
                errors["base"] = "invalid_url"
            elif (
                identity := await self._async_check(url, user_input[CONF_TOKEN], errors)
            ) is not None:
                await self.async_set_unique_id(identity.ledger_id)
                self._abort_if_site_configured(url)
                return self.async_create_entry(
                    title="Prepaid Meter Ledger",
                    data={CONF_URL: url, CONF_TOKEN: user_input[CONF_TOKEN]},
                )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(_site_schema({}), user_input),
            errors=errors,
        )

    async def async_step_hassio(self, discovery_info: HassioServiceInfo) -> ConfigFlowResult:
        """Take the ledger add-on's Supervisor discovery (host, port, token).

        For a ledger already set up, discovery may move the URL, but it never swaps a token the
        user chose (perhaps a narrower integration token) for the add-on's admin token on its
        own: the entry keeps its token if that still works at the new URL, otherwise the user
        is asked first.
        """
        config = discovery_info.config
        url = _ledger_url(f"http://{config['host']}:{config['port']}")
        if url is None:
            return self.async_abort(reason="invalid_url")
        token = str(config[CONF_TOKEN])
        errors: dict[str, str] = {}
        identity = await self._async_check(url, token, errors)
        if identity is None:
            return self.async_abort(reason=errors["base"])
        await self.async_set_unique_id(identity.ledger_id)
        self._discovered_url = url
        self._discovered_token = token
        entry = self.hass.config_entries.async_entry_for_domain_unique_id(
            DOMAIN, identity.ledger_id
        )
        if (
            entry is not None
            and entry.source != SOURCE_IGNORE
            and entry.data.get(CONF_TOKEN) != token
        ):
            kept = await self._async_check(url, str(entry.data.get(CONF_TOKEN, "")), {})
            if kept is None or kept.ledger_id != identity.ledger_id:
                self._entry_to_update = entry
                return await self.async_step_hassio_token()
        self._abort_if_site_configured(url)
        self.context["title_placeholders"] = {"name": discovery_info.name}
        return await self.async_step_hassio_confirm()

    async def async_step_hassio_token(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask before the add-on's admin token replaces a token that no longer works."""
        entry = self._entry_to_update
        if entry is None:  # pragma: no cover - only reached from async_step_hassio
            return self.async_abort(reason="already_configured")
        if user_input is not None:
            return self._async_update_and_restart(
                entry,
                data_updates={CONF_URL: self._discovered_url, CONF_TOKEN: self._discovered_token},
                reason="discovery_token_accepted",
            )
        return self.async_show_form(
            step_id="hassio_token",
            description_placeholders={"url": self._discovered_url, "title": entry.title},
        )

    async def async_step_hassio_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Let the user confirm the discovered add-on."""
        if user_input is not None:
            return self.async_create_entry(
                title="Prepaid Meter Ledger",
                data={CONF_URL: self._discovered_url, CONF_TOKEN: self._discovered_token},
            )
        return self.async_show_form(
            step_id="hassio_confirm",
            description_placeholders={"url": self._discovered_url},
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Start re-authentication after the ledger rejected the stored token."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new token for the same ledger."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            identity = await self._async_check(entry.data[CONF_URL], user_input[CONF_TOKEN], errors)
            if identity is not None:
                await self.async_set_unique_id(identity.ledger_id)
                self._abort_if_unique_id_mismatch(reason="wrong_ledger")
                return self._async_update_and_restart(
                    entry, data_updates={CONF_TOKEN: user_input[CONF_TOKEN]}
                )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=probatio.Schema({probatio.Required(CONF_TOKEN): TOKEN_SELECTOR}),
            description_placeholders={"url": entry.data[CONF_URL]},
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the ledger's URL or token; it must stay the same ledger."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            url = _ledger_url(user_input[CONF_URL])
            if url is None:
                errors["base"] = "invalid_url"
            elif (
                identity := await self._async_check(url, user_input[CONF_TOKEN], errors)
            ) is not None:
                await self.async_set_unique_id(identity.ledger_id)
                self._abort_if_unique_id_mismatch(reason="wrong_ledger")
                return self._async_update_and_restart(
                    entry, data_updates={CONF_URL: url, CONF_TOKEN: user_input[CONF_TOKEN]}
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=_site_schema(entry.data),
            errors=errors,
        )


class PrepaidMeterOptionsFlow(OptionsFlow):
    """How cautiously the relay follows the ledger's supply decision."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form: how old a reading may be, and whether to keep cutting while offline."""
        if user_input is not None:
            return self.async_create_entry(
                data={
                    CONF_STALE_POLLS: int(user_input[CONF_STALE_POLLS]),
                    CONF_ENFORCE_WHEN_OFFLINE: bool(user_input[CONF_ENFORCE_WHEN_OFFLINE]),
                }
            )
        options = self.config_entry.options
        schema = probatio.Schema(
            {
                probatio.Required(
                    CONF_STALE_POLLS, default=options.get(CONF_STALE_POLLS, DEFAULT_STALE_POLLS)
                ): NumberSelector(
                    NumberSelectorConfig(min=1, max=20, step=1, mode=NumberSelectorMode.BOX)
                ),
                probatio.Required(
                    CONF_ENFORCE_WHEN_OFFLINE,
                    default=options.get(CONF_ENFORCE_WHEN_OFFLINE, False),
                ): BooleanSelector(),
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema)
