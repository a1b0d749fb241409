"""The Supervisor's rules for an add-on's files, restated in our own code for the tests.

Read from home-assistant/supervisor (commit 090ef31ec024, 2026-08-21); every rule names the
file and function it comes from. Only voluptuous, the library the Supervisor itself validates
with, is shared: the grammar and the checks below are written here, not copied or vendored.

- `option_types_problem`, `validate_options`: what the Supervisor does at every add-on start
  (supervisor/apps/app.py `App.write_options` -> supervisor/apps/options.py `AppOptions`).
- `validate_app_config`: reading config.yaml from a repository
  (supervisor/store/data.py `StoreData._read_apps_folder` -> supervisor/apps/validate.py
  `SCHEMA_APP_CONFIG`, with `_migrate_app_config` and `_warn_app_config`).
- `validate_translation`: supervisor/store/data.py `_read_app_translations` ->
  supervisor/apps/validate.py `SCHEMA_APP_TRANSLATIONS`.
- `validate_repository`: supervisor/store/data.py `_read_git_repository` ->
  supervisor/store/validate.py `SCHEMA_REPOSITORY_CONFIG`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import voluptuous as vol

# supervisor/const.py FILE_SUFFIX_CONFIGURATION: config.*, repository.* and translations/*.
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")

# supervisor/apps/options.py RE_SCHEMA_ELEMENT: one option type, then "?" for optional. The
# alternatives and their bounds (digits for str/password lengths, signed integers for int,
# signed decimals for float) are restated here; note the Supervisor's leading empty
# alternative, which lets "" and "?" through as types (they then fail every value, below).
_INT_BOUND = r"-?\d+"
_FLOAT_BOUND = r"-?\d*\.?\d+"
OPTION_TYPE = re.compile(
    r"^(?:"
    r"|(?P<bool>bool)|(?P<email>email)|(?P<url>url)|(?P<port>port)"
    r"|(?P<device>device)(?:\((?P<filter>subsystem=[a-z]+)\))?"
    r"|(?P<str>str)(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|(?P<password>password)(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?"
    rf"|(?P<int>int)(?:\((?P<i_min>{_INT_BOUND})?,(?P<i_max>{_INT_BOUND})?\))?"
    rf"|(?P<float>float)(?:\((?P<f_min>{_FLOAT_BOUND})?,(?P<f_max>{_FLOAT_BOUND})?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\)"
    r")\??$"
)
_KINDS = ("bool", "email", "url", "port", "device", "str", "password", "int", "float")


def _bounds(found: re.Match[str], first: str) -> dict[str, float]:
    """Range/length bounds of a type (options.py `_single_validate`: empty bounds are unset)."""
    return {
        side: float(text) for side in ("min", "max") if (text := found.group(f"{first}_{side}"))
    }


def _single(kind: str, value: Any, key: str, secrets: Mapping[str, Any]) -> Any:
    """One value against one type: supervisor/apps/options.py `AppOptions._single_validate`."""
    # A null is a missing value, optional type or not.
    if value is None:
        raise vol.Invalid(f"Missing required option '{key}'")
    # "!secret NAME" is looked up in Home Assistant's secrets.yaml.
    if str(value).startswith("!secret "):
        name = str(value).partition(" ")[2]
        if name not in secrets:
            raise vol.Invalid(f"Unknown secret '{name}'")
        value = secrets[name]
    found = OPTION_TYPE.match(kind)
    if found is None:
        raise vol.Invalid(f"Unknown type '{kind}'")
    checks: dict[str, Any] = {
        "str": vol.All(str, vol.Length(**_bounds(found, "s"))),
        "password": vol.All(str, vol.Length(**_bounds(found, "p"))),
        "int": vol.All(vol.Coerce(int), vol.Range(**_bounds(found, "i"))),
        "float": vol.All(vol.Coerce(float), vol.Range(**_bounds(found, "f"))),
        "bool": vol.Boolean(),
        "email": vol.Email(),
        "url": vol.Url(),
        # supervisor/validate.py network_port
        "port": vol.All(vol.Coerce(int), vol.Range(min=1, max=65535)),
    }
    for name in _KINDS:
        if found.group(name) is None:
            continue
        if name == "device":
            # The device must exist on the host; here we can only check it names a path.
            if not isinstance(value, str):
                raise vol.Invalid(f"Expected a string for option '{key}'")
            return value
        return checks[name](value)
    if found.group("match") is not None:
        # vol.Match anchors at the start only (re.match), on the value as a string.
        return vol.Match(found.group("match"))(str(value))
    if found.group("list") is not None:
        return vol.In(found.group("list").split("|"))(str(value))
    # "" and "?" pass the grammar but no value passes them.
    raise vol.Invalid(f"Fatal error for option '{key}' with type '{kind}'")


def _element(kind: Any, value: Any, key: str, secrets: Mapping[str, Any]) -> Any:
    """options.py `_validate_element`: a list type, a dict type or a single type."""
    if isinstance(kind, list):
        if not isinstance(value, list):
            raise vol.Invalid(f"Invalid list for option '{key}'")
        return [_element(kind[0], item, key, secrets) for item in value]
    if isinstance(kind, dict):
        if not isinstance(value, dict):
            raise vol.Invalid(f"Invalid dict for option '{key}'")
        return _mapping(kind, value, key, secrets)
    return _single(kind, value, key, secrets)


def _mapping(
    schema: Mapping[str, Any], values: Mapping[str, Any], where: str, secrets: Mapping[str, Any]
) -> dict[str, Any]:
    """options.py `__call__` / `_nested_validate_dict` and `_check_missing_options`."""
    result: dict[str, Any] = {}
    for key, value in values.items():
        if key not in schema:
            continue  # unknown options are dropped (with a warning in the log)
        try:
            result[key] = _element(schema[key], value, key, secrets)
        except (IndexError, KeyError) as err:
            raise vol.Invalid(f"Type error for option '{key}'") from err
    for key in set(schema) - set(result):
        kind = schema[key]
        # A list type is optional when its element type is ("str?" in ["str?"]).
        if isinstance(kind, list) and kind:
            kind = kind[0]
        if not (isinstance(kind, str) and kind.endswith("?")):
            raise vol.Invalid(f"Missing option '{key}' in {where}")
    return result


def validate_options(
    schema: Mapping[str, Any], options: Mapping[str, Any], secrets: Mapping[str, Any] = {}
) -> dict[str, Any]:
    """Validate options as the Supervisor does before every start; return what it writes.

    supervisor/apps/options.py `AppOptions.__call__` (through `vol.All(dict, ...)`): unknown
    keys are dropped, each known value must pass its type, a missing key is refused unless its
    type ends in "?", and the result (written to /data/options.json) has no absent keys.
    """
    if not isinstance(options, dict):
        raise vol.Invalid("expected a dictionary")
    return _mapping(schema, options, "root", secrets)


def unknown_option_keys(schema: Mapping[str, Any], options: Mapping[str, Any]) -> set[str]:
    """Keys options.py `AppOptions.__call__` silently drops: set but never reach the add-on."""
    return set(options) - set(schema)


def _schema_element(kind: Any, in_list: bool = False) -> None:
    """supervisor/apps/validate.py SCHEMA_ELEMENT: a type, a list of one element, or a dict."""
    if isinstance(kind, str):
        vol.Match(OPTION_TYPE)(kind)
    elif isinstance(kind, dict):
        for key, inner in kind.items():
            vol.Schema(str)(key)
            _schema_element(inner)
    elif isinstance(kind, list) and not in_list:
        # A list may hold types or dicts, never another list directly.
        for inner in kind:
            _schema_element(inner, in_list=True)
    else:
        raise vol.Invalid(f"not a schema element: {kind!r}")


# supervisor/const.py ARCH_ALL, ARCH_DEPRECATED (warned by `_warn_app_config`).
ARCHES = ("aarch64", "amd64")
DEPRECATED_ARCHES = ("armhf", "armv7", "i386")
# supervisor/const.py AppStartup, AppBootConfig, AppStage, ROLE_ALL; apps/const.py
# AppBackupMode; supervisor/const.py INGRESS_DYNAMIC_PORT_MIN/MAX.
STARTUPS = ("initialize", "system", "services", "application", "once")
BOOTS = ("auto", "manual", "manual_only")
STAGES = ("stable", "experimental", "deprecated")
ROLES = ("default", "homeassistant", "backup", "manager", "admin")
BACKUPS = ("hot", "cold")
DYNAMIC_INGRESS_PORTS = range(62000, 65501)
# supervisor/apps/const.py RE_SLUG, validate.py RE_SLUG_FIELD.
SLUG = re.compile(r"^[-_.A-Za-z0-9]+$")
# supervisor/validate.py docker_port / docker_ports.
_DOCKER_PORT = vol.All(str, vol.Match(r"^\d+(?:/tcp|/udp)?$"))
_NETWORK_PORT = vol.All(vol.Coerce(int), vol.Range(min=1, max=65535))


def _schema_field(value: Any) -> Any:
    """validate.py `schema`: a mapping of option name to schema element, or False."""
    if value is False:
        return value
    if not isinstance(value, dict):
        raise vol.Invalid("schema must be a mapping or false")
    for key, kind in value.items():
        vol.Schema(str)(key)
        _schema_element(kind)
    return value


_BOOL_KEYS = [
    "init", "advanced", "ingress", "ingress_stream", "panel_admin", "host_network", "host_pid",
    "host_ipc", "host_uts", "host_dbus", "udev", "tmpfs", "apparmor", "full_access", "audio",
    "video", "gpio", "usb", "uart", "devicetree", "kernel_modules", "realtime", "hassio_api",
    "homeassistant_api", "stdin", "legacy", "docker_api", "auth_api", "journald",
]  # fmt: skip

# supervisor/apps/validate.py _SCHEMA_APP_CONFIG: the keys an add-on's config may hold and the
# rules of those that matter to us; it is built with extra=vol.REMOVE_EXTRA, so any other key
# is dropped without a word (see `dropped_config_keys`).
APP_CONFIG = vol.Schema(
    {
        vol.Required("name"): vol.All(str, vol.Length(min=1)),
        # version_tag accepts anything AwesomeVersion does; a YAML string keeps "1.10" intact.
        vol.Required("version"): str,
        vol.Required("slug"): vol.Match(SLUG),
        vol.Required("description"): str,
        vol.Required("arch"): [vol.In(ARCHES + DEPRECATED_ARCHES)],
        vol.Optional("machine"): vol.All([str], vol.Unique()),
        vol.Optional("url"): vol.Url(),
        # "before"/"after" are migrated by `_migrate_app_config` (an advisory, see below).
        vol.Optional("startup"): vol.In((*STARTUPS, "before", "after")),
        vol.Optional("boot"): vol.In(BOOTS),
        vol.Optional("stage"): vol.In(STAGES),
        vol.Optional("ports"): vol.Schema({_DOCKER_PORT: vol.Maybe(_NETWORK_PORT)}),
        vol.Optional("ports_description"): vol.Schema({_DOCKER_PORT: str}),
        vol.Optional("watchdog"): vol.Match(
            r"^(?:https?|\[PROTO:\w+\]|tcp):\/\/\[HOST\]:(\[PORT:\d+\]|\d+).*$"
        ),
        vol.Optional("webui"): vol.Match(r"^(?:https?|\[PROTO:\w+\]):\/\/\[HOST\]:\[PORT:\d+\].*$"),
        vol.Optional("ingress_port"): vol.Any(_NETWORK_PORT, vol.Equal(0)),
        vol.Optional("ingress_entry"): str,
        vol.Optional("panel_icon"): str,
        vol.Optional("panel_title"): str,
        vol.Optional("homeassistant"): str,
        vol.Optional("devices"): [str],
        vol.Optional("map"): list,
        vol.Optional("environment"): {vol.Match(r"\w*"): str},
        vol.Optional("privileged"): [str],
        vol.Optional("hassio_role"): vol.In(ROLES),
        vol.Optional("services"): [
            vol.Match(r"^(?P<service>mqtt|mysql):(?P<rights>provide|want|need)$")
        ],
        vol.Optional("discovery"): [str],
        vol.Optional("backup_exclude"): [str],
        vol.Optional("backup_pre"): str,
        vol.Optional("backup_post"): str,
        vol.Optional("backup"): vol.In(BACKUPS),
        vol.Optional("options"): dict,
        vol.Optional("schema"): _schema_field,
        vol.Optional("image"): str,
        vol.Optional("ulimits"): dict,
        vol.Optional("timeout"): vol.All(vol.Coerce(int), vol.Range(min=10, max=300)),
        vol.Optional("breaking_versions"): [str],
    }
    | {vol.Optional(key): vol.Boolean() for key in _BOOL_KEYS},
    extra=vol.ALLOW_EXTRA,
)

_APP_CONFIG_KEYS = {str(marker) for marker in APP_CONFIG.schema}
# Renamed by `_migrate_app_config` (deprecated spellings the Supervisor still understands).
_MIGRATED_KEYS = {"auto_uart", "snapshot", "snapshot_exclude", "snapshot_pre", "snapshot_post"}


def dropped_config_keys(config: Mapping[str, Any]) -> set[str]:
    """Keys of config.yaml that `_SCHEMA_APP_CONFIG` (extra=REMOVE_EXTRA) throws away unseen."""
    return set(config) - _APP_CONFIG_KEYS - _MIGRATED_KEYS


def config_advisories(config: Mapping[str, Any]) -> list[str]:
    """The warnings `_migrate_app_config`/`_warn_app_config` log for a config that still loads."""
    notes = []
    if config.get("startup") in ("before", "after"):
        notes.append(f"deprecated startup value {config['startup']}")
    notes += [f"deprecated key {key}" for key in sorted(_MIGRATED_KEYS & set(config))]
    if "advanced" in config:
        notes.append("deprecated key advanced (ignored)")
    if "codenotary" in config:
        notes.append("deprecated key codenotary (ignored)")
    notes += [
        f"deprecated arch {arch}" for arch in config.get("arch", []) if arch in DEPRECATED_ARCHES
    ]
    return notes


def validate_app_config(config: Any) -> dict[str, Any]:
    """Refuse a config.yaml the Supervisor would refuse (the store then lists no add-on).

    supervisor/apps/validate.py: `_migrate_app_config` (a dict with a name),
    `_warn_app_config` (no host port in the dynamic ingress range with ingress_port 0), then
    `_SCHEMA_APP_CONFIG`. The defaults in `options` are not checked here: the Supervisor
    validates them at start (`validate_options`), when a bad default stops the add-on.
    """
    if not isinstance(config, dict):
        raise vol.Invalid("App config must be a dictionary!")
    if not config.get("name"):
        raise vol.Invalid("Invalid app config!")
    if config.get("ingress") and config.get("ingress_port") == 0:
        for container_port in config.get("ports") or {}:
            number = str(container_port).partition("/")[0]
            if number.isdigit() and int(number) in DYNAMIC_INGRESS_PORTS:
                raise vol.Invalid(f"port {number} is reserved for dynamic ingress ports")
    result: dict[str, Any] = APP_CONFIG(config)
    return result


def validate_translation(data: Any) -> dict[str, Any]:
    """supervisor/apps/validate.py SCHEMA_APP_TRANSLATIONS (a file that fails is skipped).

    `configuration` maps option names to a required `name`, an optional `description` (a
    string or null) and nested `fields` of the same shape; `network` maps ports to strings.
    """
    field: vol.Schema = vol.Schema(
        {
            vol.Required("name"): str,
            vol.Optional("description"): vol.Maybe(str),
            vol.Optional("fields"): {str: vol.Self},
        },
        extra=vol.REMOVE_EXTRA,
    )
    schema = vol.Schema(
        {vol.Optional("configuration"): {str: field}, vol.Optional("network"): {str: str}},
        extra=vol.REMOVE_EXTRA,
    )
    result: dict[str, Any] = schema(data)
    return result


def validate_repository(data: Any) -> dict[str, Any]:
    """supervisor/store/validate.py SCHEMA_REPOSITORY_CONFIG: name; optional url, maintainer."""
    schema = vol.Schema(
        {
            vol.Required("name"): str,
            vol.Optional("url"): vol.Url(),
            vol.Optional("maintainer"): str,
        },
        extra=vol.REMOVE_EXTRA,
    )
    result: dict[str, Any] = schema(data)
    return result
