"""Constants shared across the Prepaid Meter integration."""

from typing import Final

DOMAIN: Final = "prepaid_meter"

CONF_URL: Final = "url"
CONF_TOKEN: Final = "token"  # noqa: S105 - the name of the config key, not a secret

# Hostname and port the ledger add-on announces through Supervisor discovery.
ADDON_SLUG: Final = "prepaid_meter_ledger"
