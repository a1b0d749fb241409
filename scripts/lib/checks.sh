#!/usr/bin/env bash
# The project's checks, run inside its environment by scripts/test. Extra arguments go to pytest.
set -uo pipefail
cd "$PM_REPO"
failed=()
step() { # name, command...
  local name="$1"; shift
  echo "==> $name"
  "$@" || failed+=("$name")
}
step "ruff check" ruff check .
step "ruff format" ruff format --check --quiet .
step "mypy (integration)" mypy --strict custom_components/prepaid_meter
step "mypy (ledger, Python 3.12)" mypy --strict --python-version 3.12 addon/src/prepaid_ledger
step "mypy (contract, Python 3.12)" mypy --strict --python-version 3.12 contract/src/prepaid_meter_contract
step "mypy (simulator)" mypy --strict meter_simulator
echo "==> pytest"
# Two workers (pytest-xdist): each test starts its own ledger, browser or Home Assistant, so
# they run side by side; PREPAID_TEST_WORKERS=0 runs them in one process (e.g. to debug).
python -m pytest -n "${PREPAID_TEST_WORKERS:-2}" --cov --cov-report=term "$@"
rc=$?
case $rc in
  0)
    # The Integration Quality Scale's test-coverage rule: above 95% for the integration. Only
    # checked on a full run (a filtered run covers less by design).
    if [ $# -eq 0 ]; then
      step "integration coverage >= 95%" python -m coverage report \
        --include='custom_components/prepaid_meter/*' --fail-under=95 --format=total
    fi ;;
  5) echo "pytest: no tests were collected"; failed+=("pytest (no tests)") ;;
  *) failed+=("pytest") ;;
esac
# The suite is pinned to one Home Assistant; this runs the integration in the newest release on
# PyPI as well (scripts/smoke-newest-ha; it prints the version). Full runs only, like coverage.
if [ $# -eq 0 ] && [ "${PREPAID_SMOKE_HA_SKIP:-0}" != 1 ]; then
  step "smoke with the newest Home Assistant" bash scripts/lib/smoke_newest_ha.sh
fi
if [ ${#failed[@]} -gt 0 ]; then
  printf 'scripts/test: FAILED: %s\n' "$(IFS=,; echo "${failed[*]}")" >&2
  exit 1
fi
echo "scripts/test: all checks passed"
