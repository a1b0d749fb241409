"""Constants shared across the Prepaid Meter integration."""

from datetime import timedelta
from typing import Final

DOMAIN: Final = "prepaid_meter"

# Ledger site (the config entry).
CONF_URL: Final = "url"
CONF_TOKEN: Final = "token"  # noqa: S105 - the name of the config key, not a secret

# Meters (config subentries of type SUBENTRY_METER).
SUBENTRY_METER: Final = "meter"
CONF_CONNECTION: Final = "connection"
CONNECTION_TCP: Final = "tcp"
CONNECTION_RTU_OVER_TCP: Final = "rtu_over_tcp"
CONNECTION_SERIAL: Final = "serial"
CONF_HOST: Final = "host"
CONF_PORT: Final = "port"
CONF_SERIAL_PORT: Final = "serial_port"
CONF_BAUDRATE: Final = "baudrate"
CONF_PARITY: Final = "parity"
CONF_STOPBITS: Final = "stopbits"
CONF_BYTESIZE: Final = "bytesize"
CONF_UNIT_ID: Final = "unit_id"
CONF_PROFILE: Final = "profile"
CONF_CUSTOM_PROFILE: Final = "custom_profile"
CONF_RELAY_UNIT_ID: Final = "relay_unit_id"
CONF_RELAY_COIL: Final = "relay_coil"
CONF_NAME: Final = "name"
CONF_SCAN_INTERVAL: Final = "scan_interval"
CONF_UNREACHABLE_MINUTES: Final = "unreachable_minutes"
CONF_FRAME_GAP_MS: Final = "frame_gap_ms"
CONF_LEDGER_METER_ID: Final = "ledger_meter_id"
CONF_ACCOUNT_NAME: Final = "account_name"
CONF_TARIFF: Final = "tariff"
LINK_NEW: Final = "new"
LINK_NONE: Final = "none"

PROFILE_CUSTOM: Final = "custom"

DEFAULT_MODBUS_PORT: Final = 502
DEFAULT_SCAN_INTERVAL: Final = 10  # seconds
DEFAULT_UNREACHABLE_MINUTES: Final = 15
MIN_SCAN_INTERVAL: Final = timedelta(seconds=2)

ADDON_SLUG: Final = "prepaid_meter_ledger"

# Site options: relay control by the ledger's supply decision.
CONF_STALE_POLLS: Final = "stale_polls"
CONF_ENFORCE_WHEN_OFFLINE: Final = "enforce_when_offline"
#: A reading older than this many poll intervals is stale: no cut on it.
DEFAULT_STALE_POLLS: Final = 3
