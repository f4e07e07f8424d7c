#!/usr/bin/env bash
# Real Azure Blob Storage emulator (Azurite, blob service only) on 127.0.0.1 for integration tests.
#
#   scripts/azure-server.sh start    # npm-install Azurite (once), start, create the container, wait until it answers
#   scripts/azure-server.sh stop     # SIGTERM, bounded wait, then SIGKILL; idempotent
#   scripts/azure-server.sh status   # exit 0 iff running AND answering (container reachable with the dev key)
#   scripts/azure-server.sh env      # print export-able TERRITORY_AZURE_* lines
#   scripts/azure-server.sh install  # only npm-install Azurite into the cache
#   scripts/azure-server.sh reset    # stop and delete all containers/blobs
#
# The account is Azurite's built-in development account devstoreaccount1 with its
# published key (public, test-only). URLs are path-style: http://127.0.0.1:<port>/devstoreaccount1.
set -euo pipefail

readonly HOST=127.0.0.1 # loopback only, on purpose not configurable
# Azurite's well-known development account (documented by Microsoft; not a secret).
readonly ACCOUNT=devstoreaccount1
readonly ACCOUNT_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
readonly API_VERSION=2021-08-06 # x-ms-version of the script's own probe requests

AZURITE_VERSION="${TERRITORY_AZURITE_VERSION:-3.35.0}"
CACHE_DIR="${TERRITORY_CACHE:-$HOME/.cache/territory}"
PREFIX="${CACHE_DIR}/azurite"
AZURITE_MAIN="${PREFIX}/node_modules/azurite/dist/src/blob/main.js"
if [[ -n "${TERRITORY_AZURE_RUN:-}" ]]; then
  RUN_DIR="${TERRITORY_AZURE_RUN}"
elif [[ -n "${TERRITORY_RUN:-}" ]]; then
  RUN_DIR="${TERRITORY_RUN}/azure"
else
  RUN_DIR=/tmp/territory-azure
fi
PORT="${TERRITORY_AZURE_PORT:-10000}"
CONTAINER="${TERRITORY_AZURE_CONTAINER:-territory-test}"
START_TIMEOUT="${TERRITORY_AZURE_START_TIMEOUT:-60}"
STOP_TIMEOUT="${TERRITORY_AZURE_STOP_TIMEOUT:-20}"
INSTALL_TIMEOUT="${TERRITORY_AZURE_INSTALL_TIMEOUT:-600}"

PID_FILE="${RUN_DIR}/azurite.pid"
SERVICE=azure-server
# shellcheck source=./lib/service.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/service.sh"
LOG_FILE="${RUN_DIR}/azurite.log"
DATA_DIR="${RUN_DIR}/data"
ENDPOINT="http://${HOST}:${PORT}/${ACCOUNT}"


validate_settings() {
  local v
  for v in PORT START_TIMEOUT STOP_TIMEOUT INSTALL_TIMEOUT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "${v}='${!v}' is not a number"
  done
  ((PORT > 0 && PORT < 65536)) || die "port ${PORT} out of range"
  # Azure container naming rules: 3-63 chars, lowercase letters, digits, single '-'
  [[ "${CONTAINER}" =~ ^[a-z0-9]([a-z0-9]|-[a-z0-9]){2,62}$ ]] || die "invalid container name '${CONTAINER}'"
  [[ "${AZURITE_VERSION}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "TERRITORY_AZURITE_VERSION='${AZURITE_VERSION}' is not x.y.z"
}

# --- install --------------------------------------------------------------------

installed_version() {
  local pj="${PREFIX}/node_modules/azurite/package.json"
  [[ -f "${pj}" && -f "${AZURITE_MAIN}" ]] || return 1
  sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "${pj}" | head -n 1
}

install_azurite() {
  need node "Azurite runs on Node.js (3.35.x: node >= 10; 3.36+: node >= 21)"
  local have
  have="$(installed_version || true)"
  if [[ "${have}" == "${AZURITE_VERSION}" ]]; then
    log "Azurite ${AZURITE_VERSION} cached: ${PREFIX}"
    return 0
  fi
  need npm "npm is needed once to install Azurite ${AZURITE_VERSION} into ${PREFIX}"
  local tmp="${CACHE_DIR}/.install-azurite.$$"
  rm -rf "${tmp}"
  mkdir -p "${tmp}"
  log "installing azurite@${AZURITE_VERSION} from the npm registry (one-time, ~15-25 s)"
  local t0=${SECONDS}
  # install into a temp prefix, then swap it in, so a failed install never leaves a half tree
  if ! timeout "${INSTALL_TIMEOUT}" npm install --prefix "${tmp}" --no-audit --no-fund --omit=dev \
      --no-save --loglevel=error "azurite@${AZURITE_VERSION}" >"${CACHE_DIR}/azurite-install.log" 2>&1; then
    tail -n 30 "${CACHE_DIR}/azurite-install.log" >&2 || true
    rm -rf "${tmp}"
    die "npm install of azurite@${AZURITE_VERSION} failed or timed out after ${INSTALL_TIMEOUT}s (log: ${CACHE_DIR}/azurite-install.log)"
  fi
  [[ -f "${tmp}/node_modules/azurite/dist/src/blob/main.js" ]] || { rm -rf "${tmp}"; die "azurite@${AZURITE_VERSION} has no dist/src/blob/main.js"; }
  rm -rf "${PREFIX}"
  mv -f "${tmp}" "${PREFIX}"
  log "installed Azurite ${AZURITE_VERSION} in $((SECONDS - t0))s: ${PREFIX}"
}

# --- run-state helpers --------------------------------------------------------


# true iff the pid in the pid file is alive and is OUR Azurite (guards against pid reuse)
is_running() {
  local pid
  pid="$(read_pid)" || return 1
  kill -0 "${pid}" 2>/dev/null || return 1
  [[ -r "/proc/${pid}/cmdline" ]] || return 0
  tr '\0' ' ' <"/proc/${pid}/cmdline" | grep -q -- "azurite.*${DATA_DIR}"
}


# Shared Key-signed request against the blob service; prints the HTTP status code.
# $1 method, $2 path under the account (e.g. /territory-test), $3 query as sorted "k=v" lines joined by '&'
az_status() {
  local method="$1" path="$2" query="${3:-}" date sts sig canon_q="" url
  date="$(LC_ALL=C TZ=GMT date '+%a, %d %b %Y %H:%M:%S GMT')"
  if [[ -n "${query}" ]]; then
    canon_q=$'\n'"$(tr '&' '\n' <<<"${query}" | sed 's/=/:/' | LC_ALL=C sort)"
  fi
  # VERB, 11 standard headers (all empty: no body), canonical x-ms-* headers, canonical resource.
  # Path-style emulator URLs put the account in the path, so it appears twice in the resource.
  sts="${method}"$'\n\n\n\n\n\n\n\n\n\n\n\n'"x-ms-date:${date}"$'\n'"x-ms-version:${API_VERSION}"$'\n'"/${ACCOUNT}/${ACCOUNT}${path}${canon_q}"
  sig="$(printf '%s' "${sts}" | openssl dgst -sha256 -mac HMAC \
    -macopt "hexkey:$(printf '%s' "${ACCOUNT_KEY}" | base64 -d | od -An -v -tx1 | tr -d ' \n')" -binary | base64 -w0)"
  url="${ENDPOINT}${path}${query:+?${query}}"
  curl -s -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 10 -X "${method}" \
    -H "x-ms-date: ${date}" -H "x-ms-version: ${API_VERSION}" -H 'Content-Length: 0' \
    -H "Authorization: SharedKey ${ACCOUNT}:${sig}" "${url}" || true
}

# the blob service answers (any HTTP status; an unsigned request gets 403/400)
is_healthy() {
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 5 "${ENDPOINT}?comp=list" || true)"
  [[ "${code}" =~ ^[1-5][0-9][0-9]$ ]]
}

# the container is reachable with the dev key (proves the signature and the account)
is_answering() {
  is_healthy || return 1
  [[ "$(az_status GET "/${CONTAINER}" restype=container)" == 200 ]]
}

print_env() {
  cat <<EOF
TERRITORY_AZURE_ENDPOINT=${ENDPOINT}
TERRITORY_AZURE_ACCOUNT=${ACCOUNT}
TERRITORY_AZURE_KEY=${ACCOUNT_KEY}
TERRITORY_AZURE_CONTAINER=${CONTAINER}
EOF
}

ensure_container() {
  local code
  code="$(az_status GET "/${CONTAINER}" restype=container)"
  [[ "${code}" == 200 ]] && return 0
  [[ "${code}" == 403 ]] && die "container check got 403: Shared Key rejected (is AZURITE_ACCOUNTS set for the running Azurite?)"
  code="$(az_status PUT "/${CONTAINER}" restype=container)"
  # 201 created; 409 ContainerAlreadyExists
  [[ "${code}" == 201 || "${code}" == 409 ]] || die "creating container ${CONTAINER} failed with HTTP ${code} (log: ${LOG_FILE})"
  [[ "$(az_status GET "/${CONTAINER}" restype=container)" == 200 ]] || die "container ${CONTAINER} not reachable after creation"
}

# --- commands -----------------------------------------------------------------



cmd_start() {
  validate_settings
  need curl "used to probe the server and create the container"
  need openssl "used to sign Shared Key requests (HMAC-SHA256)"
  with_lock
  if is_running; then
    local pid
    pid="$(read_pid)"
    local deadline=$((SECONDS + START_TIMEOUT))
    until is_healthy || ((SECONDS >= deadline)); do sleep 0.5; done
    is_healthy || die "pid ${pid} is running but ${ENDPOINT} does not answer; run '$0 stop' (log: ${LOG_FILE})"
    ensure_container
    log "already running (pid ${pid}) at ${ENDPOINT}"
    print_env
    return 0
  fi
  rm -f "${PID_FILE}"
  port_in_use "${PORT}" && die "port ${HOST}:${PORT} is already in use by another process (set TERRITORY_AZURE_PORT)"
  install_azurite
  mkdir -p "${DATA_DIR}"
  [[ -f "${LOG_FILE}" ]] && mv -f "${LOG_FILE}" "${LOG_FILE}.1"
  log "starting Azurite ${AZURITE_VERSION} (blob service, location ${DATA_DIR}) at ${ENDPOINT}"
  local t0=${SECONDS}
  (
    exec 9>&- # do not hand the start/stop lock to the server
    cd "${RUN_DIR}"
    # only the built-in dev account: a caller's AZURITE_ACCOUNTS would replace it
    unset AZURITE_ACCOUNTS
    # --skipApiVersionCheck: newer Azure SDKs send x-ms-version values this Azurite has not heard of.
    # --disableProductStyleUrl: the account is always the first path segment (path-style URLs).
    exec setsid nohup node "${AZURITE_MAIN}" \
      --blobHost "${HOST}" \
      --blobPort "${PORT}" \
      --location "${DATA_DIR}" \
      --skipApiVersionCheck \
      --disableProductStyleUrl \
      --disableTelemetry \
      --silent \
      </dev/null >"${LOG_FILE}" 2>&1
  ) &
  local pid=$!
  echo "${pid}" >"${PID_FILE}"
  await_healthy "${pid}" Azurite
  ensure_container
  log "ready in $((SECONDS - t0))s (pid ${pid}, log ${LOG_FILE}), container ${CONTAINER}"
  print_env
}

cmd_stop() {
  validate_settings
  stop_service
}

cmd_status() {
  validate_settings
  if ! is_running; then
    log "not running (run dir ${RUN_DIR})"
    return 1
  fi
  if ! is_answering; then
    log "pid $(read_pid) running but ${ENDPOINT} does not answer or container ${CONTAINER} is not reachable with the dev key"
    return 1
  fi
  log "running (pid $(read_pid)) at ${ENDPOINT}, container ${CONTAINER}"
  print_env
}

cmd_reset() {
  cmd_stop
  log "deleting data in ${DATA_DIR}"
  rm -rf "${DATA_DIR}"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) validate_settings; print_env ;;
  install) validate_settings; install_azurite ;;
  reset) cmd_reset ;;
  *)
    echo "usage: $0 start|stop|status|env|install|reset" >&2
    exit 2
    ;;
esac
