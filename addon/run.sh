#!/usr/bin/with-contenv bashio
# Start the ledger with the add-on's options as environment, and announce it to Home Assistant.
set -e

export PREPAID_LEDGER_ADMIN_TOKEN="$(bashio::config 'admin_token')"
export PREPAID_LEDGER_STRIPE_WEBHOOK_SECRET="$(bashio::config 'stripe_webhook_secret')"
export PREPAID_LEDGER_STANDARD_WEBHOOK_SECRET="$(bashio::config 'standard_webhook_secret')"
args=(serve --data-dir /data --host 0.0.0.0 --port 8099)
if bashio::config.has_value 'database_url'; then
  args+=(--database-url "$(bashio::config 'database_url')")
fi

/opt/venv/bin/python -m prepaid_ledger "${args[@]}" &
ledger=$!

# Discovery: the integration's config flow receives host, port and a token (async_step_hassio).
for _ in $(seq 1 30); do
  if curl -fsS http://127.0.0.1:8099/api/v1/health >/dev/null 2>&1; then break; fi
  sleep 1
done
token="${PREPAID_LEDGER_ADMIN_TOKEN:-$(cat /data/admin-token 2>/dev/null || true)}"
config=$(bashio::var.json host "$(hostname)" port "^8099" token "${token}")
bashio::discovery "prepaid_meter" "${config}" >/dev/null || bashio::log.warning "Discovery failed"

wait "${ledger}"
