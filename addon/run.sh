#!/usr/bin/with-contenv bashio
# Start the ledger with the add-on's options, then announce it to Home Assistant (discovery).
# DATA, PORT, PUBLIC_PORT and PYTHON may be overridden for tests; in the add-on they are /data,
# 8099 (private: ingress, the integration, admin API), 8100 (public: webhooks, pay pages), the venv.
set -euo pipefail

data="${PREPAID_LEDGER_DATA:-/data}"
port="${PREPAID_LEDGER_PORT:-8099}"
public_port="${PREPAID_LEDGER_PUBLIC_PORT:-8100}"
python="${PREPAID_LEDGER_PYTHON:-/opt/venv/bin/python}"

# Optional ("?") options the user has not set are absent from options.json: bashio::config then
# prints "null", so every optional option is read only after bashio::config.has_value.
optional() {  # export VAR from OPTION only when the option has a value
  if bashio::config.has_value "$2"; then export "$1=$(bashio::config "$2")"; fi
}
optional PREPAID_LEDGER_ADMIN_TOKEN admin_token
optional PREPAID_LEDGER_STRIPE_WEBHOOK_SECRET stripe_webhook_secret
optional PREPAID_LEDGER_STRIPE_API_KEY stripe_api_key
optional PREPAID_LEDGER_STANDARD_WEBHOOK_SECRET standard_webhook_secret
optional PREPAID_LEDGER_PUBLIC_BASE_URL public_base_url
optional PREPAID_LEDGER_MAX_ACTIVE_REQUESTS max_active_requests
optional PREPAID_LEDGER_MAX_ACTIVE_READINGS max_active_readings
optional PREPAID_LEDGER_DB_POOL_SIZE db_pool_size
optional PREPAID_LEDGER_DB_MAX_OVERFLOW db_max_overflow
optional PREPAID_LEDGER_BACKLOG_WORKER backlog_worker
if ! bashio::config.has_value 'public_base_url'; then
  bashio::log.warning "public_base_url is not set: no pay links or Stripe Checkout for tenants until it is"
fi
export PREPAID_LEDGER_CURRENCY="$(bashio::config 'currency')"
export PREPAID_LEDGER_TIMEZONE="$(bashio::config 'timezone')"
# A list option: bashio prints one item a line; the ledger reads them comma-separated and
# refuses to start (naming the variable) if one does not take the currency, or none is left.
methods="$(bashio::config 'payment_methods')"
if [ "$methods" != "null" ]; then
  export PREPAID_LEDGER_PAYMENT_METHODS="${methods//$'\n'/,}"
fi
# Ingress requests come from the Supervisor only; the ledger trusts X-Ingress-Path from there.
export PREPAID_LEDGER_INGRESS_PROXY="${PREPAID_LEDGER_INGRESS_PROXY:-172.30.32.2}"

# Whole currency units in the options; the ledger counts minor units (the currency's exponent).
exponent="$("$python" -c 'import sys; from prepaid_ledger.domain.money import currency_exponent; print(currency_exponent(sys.argv[1]))' "$PREPAID_LEDGER_CURRENCY")"
scale=$((10 ** exponent))
export PREPAID_LEDGER_TENANT_MIN_TOPUP_MINOR=$(( $(bashio::config 'tenant_min_topup') * scale ))

args=(serve --data-dir "$data" --host 0.0.0.0 --port "$port" --public-port "$public_port"
  --processing-timeout "$(( $(bashio::config 'stuck_order_minutes') * 60 ))"
  --max-topup-minor "$(( $(bashio::config 'max_topup') * scale ))"
  --log-level "$(bashio::config 'log_level')")
if bashio::config.has_value 'database_url'; then
  args+=(--database-url "$(bashio::config 'database_url')")
fi

"$python" -m prepaid_ledger "${args[@]}" &
ledger=$!
trap 'kill -TERM "$ledger" 2>/dev/null || true' TERM INT

ready=0
for _ in $(seq 1 60); do
  if curl -fsS "http://127.0.0.1:${port}/api/v1/health" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$ledger" 2>/dev/null || break
  sleep 0.5
done
if [ "$ready" = 1 ]; then
  # Discovery: the integration's config flow (async_step_hassio) receives host, port and token.
  token="${PREPAID_LEDGER_ADMIN_TOKEN:-$(cat "$data/admin-token" 2>/dev/null || true)}"
  config=$(bashio::var.json host "$(hostname)" port "^${port}" token "${token}")
  if bashio::discovery "prepaid_meter" "${config}" >/dev/null; then
    bashio::log.info "Announced the ledger to Home Assistant"
  else
    bashio::log.warning "Discovery failed; add the integration by hand with the admin token"
  fi
else
  bashio::log.error "The ledger did not become healthy"
fi

wait "$ledger"
