# shellcheck shell=bash
# One place that knows where the project's Python 3.14 toolchain lives.
#
# Two modes, chosen by scripts/setup and remembered in the cache:
#   host   - a python3.14 (>= 3.14.2) already on PATH; the venv lives in the cache.
#   chroot - a Debian-unstable root made with debootstrap (these machines ship only 3.11/3.13);
#            commands run inside it through a private mount namespace, so the bind mounts
#            (repository, /proc, /dev, /tmp) vanish with the process and nothing needs cleaning.

PM_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PM_CACHE="${PREPAID_METER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/prepaid_meter}"
PM_ROOT="$PM_CACHE/sid-root"
PM_MIN_PY="3.14.2"

# Files whose content decides the environment; their hash keys the venv.
pm_requirements_hash() {
  cat "$PM_REPO/requirements_test.txt" "$PM_REPO/requirements_develop.txt" \
      "$PM_REPO/scripts/lib/system-packages.txt" |
    sha256sum | cut -c1-16
}

pm_python_ok() { # $1: interpreter; true when it is >= PM_MIN_PY
  "$1" -c "import sys; v=tuple(map(int,'$PM_MIN_PY'.split('.'))); sys.exit(sys.version_info[:3] < v)" 2>/dev/null
}

pm_mode() {
  if [ -f "$PM_CACHE/mode" ]; then cat "$PM_CACHE/mode"; return; fi
  local py; py="$(command -v python3.14 || true)"
  if [ -n "$py" ] && pm_python_ok "$py"; then echo host; else echo chroot; fi
}

# Path of the venv as seen by the commands that run in it. Keyed on the requirements' hash, so
# a rebuild never pulls the venv from under a process that is still using the previous one.
pm_venv() {
  local base; if [ "$(pm_mode)" = host ]; then base="$PM_CACHE"; else base="/opt"; fi
  echo "$base/venv-$(pm_requirements_hash)"
}

# Run a command in the project's environment, in the current directory.
pm_exec() {
  local venv; venv="$(pm_venv)"
  local envs=(
    "PATH=$venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    "VIRTUAL_ENV=$venv" "HOME=${HOME:-/root}" "TERM=${TERM:-dumb}" "LANG=C.UTF-8"
    "PM_REPO=$PM_REPO" "PYTHONPATH=$PM_REPO:$PM_REPO/contract/src:$PM_REPO/addon/src"
  )
  # Home Assistant installs packages with uv, which reads SSL_CERT_FILE rather than pip's settings.
  [ -z "${PIP_CERT:-}" ] || envs+=("SSL_CERT_FILE=$PIP_CERT")
  local name
  for name in $(compgen -e); do
    case "$name" in PIP_*|PREPAID_*|CI|PYTEST_*|COVERAGE_*|HYPOTHESIS_*|PM_*) envs+=("$name=${!name}");; esac
  done
  if [ "$(pm_mode)" = host ]; then
    exec env "${envs[@]}" "$@"
  fi
  local cwd; cwd="$(pwd)"
  exec unshare --mount --propagation private -- /bin/bash -c '
    set -e
    root="$1"; repo="$2"; cwd="$3"; shift 3
    mkdir -p "$root$repo" "$root$cwd"
    mount --bind "$repo" "$root$repo"
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount --rbind /sys "$root/sys" 2>/dev/null || true
    mount --bind /tmp "$root/tmp"
    [ "$cwd" = "$repo" ] || case "$cwd" in "$repo"/*) ;; *) mount --bind "$cwd" "$root$cwd";; esac
    cp -f /etc/resolv.conf /etc/hosts "$root/etc/" 2>/dev/null || true
    exec chroot "$root" /usr/bin/env -C "$cwd" "$@"
  ' pm-exec "$PM_ROOT" "$PM_REPO" "$cwd" env -i "${envs[@]}" "$@"
}

# Make sure the environment exists (quiet and fast when it already does).
pm_ensure() {
  "$PM_REPO/scripts/setup" --quiet
}
