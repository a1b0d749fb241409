# A stand-in for bashio (the add-on base image's bash library), which no package registry
# ships: only the functions run.sh calls, with bashio's documented behaviour. Options come from
# $BASHIO_OPTIONS (bashio: /data/options.json); discovery POSTs to the Supervisor's /discovery
# with the add-on's SUPERVISOR_TOKEN ($SUPERVISOR_API stands for http://supervisor).
#
# bashio::config (bashio lib/config.sh) prints the literal word `null` for an option that is
# absent from options.json (the Supervisor leaves unset optional options out) or null; an empty
# string, empty list or empty object prints nothing; a list prints one item per line; anything
# else prints as jq's raw output. bashio::config.has_value is false for `null` and for nothing.
bashio::config() {
  jq -r -c --arg k "$1" '
    .[$k] as $v
    | if $v == null then null
      elif ($v | type) == "array" then $v[]
      elif ($v | type) == "object" and $v == {} then empty
      elif ($v | type) == "string" and $v == "" then empty
      else $v end' "$BASHIO_OPTIONS"
}
bashio::config.has_value() {
  local value
  value=$(bashio::config "$1")
  [ "$value" != "null" ] && [ -n "$value" ]
}
bashio::var.json() {  # key value pairs; a value starting with ^ is raw JSON (numbers, booleans)
  local args=() filter="{" sep=""
  while [ $# -gt 1 ]; do
    if [[ "$2" == ^* ]]; then
      args+=(--argjson "$1" "${2:1}")
    else
      args+=(--arg "$1" "$2")
    fi
    filter+="${sep}\"$1\": \$$1"; sep=", "
    shift 2
  done
  jq -cn "${args[@]}" "${filter}}"
}
bashio::discovery() {
  local body
  body=$(jq -cn --arg service "$1" --argjson config "$2" '{service: $service, config: $config}')
  curl -fsS -X POST -H "Authorization: Bearer ${SUPERVISOR_TOKEN}" \
    -H "Content-Type: application/json" -d "$body" "${SUPERVISOR_API:-http://supervisor}/discovery" \
    | jq -r '.data.uuid'
}
bashio::log.info() { echo "INFO: $*"; }
bashio::log.warning() { echo "WARNING: $*"; }
bashio::log.error() { echo "ERROR: $*" >&2; }
