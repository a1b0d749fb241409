#!/usr/bin/env bash
# The Home Assistant smoke, run inside the project's environment (by scripts/smoke-newest-ha and
# scripts/lib/checks.sh): resolve the newest homeassistant release for this Python, make sure its
# venv exists (cached per version next to the project's venv), run the smoke driver.
#   bash scripts/lib/smoke_newest_ha.sh [--keep]
set -euo pipefail
cd "$PM_REPO"
start=$SECONDS

version="${PREPAID_SMOKE_HA_VERSION:-}"
if [ -z "$version" ]; then
  # pip runs with the project's Python 3.14, so it lists the releases that support it, without
  # pre-releases. Its first line reads "homeassistant (2026.11.0)".
  version="$(python -m pip index versions homeassistant 2>/dev/null |
    sed -n 's/^homeassistant (\([^)]*\))$/\1/p' | head -1)" || true
  if [ -z "$version" ]; then
    echo "smoke: PyPI did not tell the newest homeassistant (pip index versions homeassistant);" >&2
    echo "smoke: PREPAID_SMOKE_HA_VERSION=X.Y.Z tests a given release" >&2
    exit 1
  fi
fi
case "$version" in
  *[!0-9A-Za-z.]* | "") echo "smoke: odd Home Assistant version '$version'" >&2; exit 2 ;;
esac

# Next to the project's venv: /opt in the Debian root, the cache with a host python3.14.
base="$(dirname "$VIRTUAL_ENV")"
venv="$base/smoke-ha-$version"
exec 8>"$base/smoke-ha.lock"
flock 8  # one builder at a time (two terminals, or CI jobs sharing the cache)
log="$venv/pip.log"
if [ ! -f "$venv/.installed" ]; then
  echo "smoke: creating a venv with homeassistant==$version in $venv (a few minutes, once)"
  rm -rf "$venv"
  "$(python -c 'import sys; print(sys._base_executable)')" -m venv "$venv"
  { "$venv/bin/python" -m pip install -q --upgrade pip &&
    "$venv/bin/python" -m pip install -q "homeassistant==$version"; } >"$log" 2>&1 || {
    grep -v '^WARNING: Location' "$log" | tail -30 >&2
    echo "smoke: installing homeassistant==$version failed (log: $log)" >&2
    exit 1
  }
  touch "$venv/.installed"
fi
# What this release sets up needs more packages (its frontend, modbus, ...); the list is worked
# out from its manifests, again whenever the inputs to that list change.
key="$(cat scripts/lib/smoke_ha_requirements.py scripts/lib/develop_config.py \
  scripts/lib/smoke_newest_ha.sh custom_components/prepaid_meter/manifest.json contract/pyproject.toml \
  contract/src/prepaid_meter_contract/*.py | sha256sum | cut -c1-16)"
if [ "$(cat "$venv/.complete" 2>/dev/null)" != "$key" ]; then
  missing="$("$venv/bin/python" scripts/lib/smoke_ha_requirements.py)" || {
    echo "smoke: could not list Home Assistant $version's requirements" >&2; exit 1; }
  if [ -n "$missing" ]; then
    echo "smoke: installing into the Home Assistant $version venv:" $missing
    constraints="$("$venv/bin/python" -c 'import homeassistant, pathlib
print(pathlib.Path(homeassistant.__file__).parent / "package_constraints.txt")')"
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install -q -c "$constraints" $missing >>"$log" 2>&1 || {
      grep -v '^WARNING: Location' "$log" | tail -30 >&2
      echo "smoke: installing Home Assistant $version's requirements failed (log: $log)" >&2
      exit 1
    }
    still="$("$venv/bin/python" scripts/lib/smoke_ha_requirements.py)"
    [ -z "$still" ] || { echo "smoke: still not installed: $still" >&2; exit 1; }
  fi
  # Our own requirement, the contract package, as this checkout would publish it (its pin in
  # manifest.json is its version: tests/test_metadata.py), with its dependencies (pydantic) at
  # the versions this release pins, as Home Assistant installs an integration's requirements.
  constraints="$("$venv/bin/python" -c 'import homeassistant, pathlib
print(pathlib.Path(homeassistant.__file__).parent / "package_constraints.txt")')"
  { "$venv/bin/python" -m pip install -q --force-reinstall --no-deps ./contract &&
    "$venv/bin/python" -m pip install -q -c "$constraints" ./contract; } >>"$log" 2>&1 || {
    grep -v '^WARNING: Location' "$log" | tail -30 >&2
    echo "smoke: installing the contract package failed (log: $log)" >&2
    exit 1
  }
  echo "$key" >"$venv/.complete"
fi
touch "$venv"
# Keep the two newest smoke venvs (the previous release's may still be in use elsewhere).
# shellcheck disable=SC2012
ls -1dt "$base"/smoke-ha-*/ 2>/dev/null | tail -n +3 | xargs -r rm -rf
flock -u 8
echo "smoke: Home Assistant $version venv ready ($venv, $((SECONDS - start)) s)"
exec python scripts/lib/smoke_newest_ha.py --ha-venv "$venv" --ha-version "$version" "$@"
