# A stand-in for bashio (the add-on base image's bash library), which no package registry
# ships: only the functions run.sh calls, with bashio's documented behaviour. Options come from
# $BASHIO_OPTIONS (bashio: /data/options.json); discovery POSTs to the Supervisor's /discovery
# with the add-on's SUPERVISOR_TOKEN ($SUPERVISOR_API stands for http://supervisor).
bashio::config() { jq -r --arg k "$1" '.[$k] // empty' "$BASHIO_OPTIONS"; }
bashio::config.has_value() {
  [ -n "$(jq -r --arg k "$1" '.[$k] // empty' "$BASHIO_OPTIONS")" ]
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
