#!/usr/bin/env bash
# Real GCS emulator (fake-gcs-server, JSON API over plain HTTP) on 127.0.0.1 for integration tests.
#
#   scripts/gcs-server.sh start    # install fake-gcs-server (once), start, create the bucket, wait until it answers
#   scripts/gcs-server.sh stop     # SIGTERM, bounded wait, then SIGKILL; idempotent
#   scripts/gcs-server.sh status   # exit 0 iff running AND answering (bucket reachable)
#   scripts/gcs-server.sh env      # print export-able TERRITORY_GCS_* lines
#   scripts/gcs-server.sh install  # only build/install fake-gcs-server into the cache
#   scripts/gcs-server.sh reset    # stop and delete all objects/buckets
#
# How a client reaches it (no Google account involved): see "fake-gcs-server" in scripts/README.md.
set -euo pipefail

readonly HOST=127.0.0.1 # loopback only, on purpose not configurable

FGS_VERSION="${TERRITORY_FAKE_GCS_VERSION:-v1.56.1}"
FGS_MODULE=github.com/fsouza/fake-gcs-server
CACHE_DIR="${TERRITORY_CACHE:-$HOME/.cache/territory}"
BIN_DIR="${CACHE_DIR}/bin"
FGS_BIN="${BIN_DIR}/fake-gcs-server"
if [[ -n "${TERRITORY_GCS_RUN:-}" ]]; then
  RUN_DIR="${TERRITORY_GCS_RUN}"
elif [[ -n "${TERRITORY_RUN:-}" ]]; then
  RUN_DIR="${TERRITORY_RUN}/gcs"
else
  RUN_DIR=/tmp/territory-gcs
fi
PORT="${TERRITORY_GCS_PORT:-4443}"
BUCKET="${TERRITORY_GCS_BUCKET:-territory-test}"
BACKEND="${TERRITORY_GCS_BACKEND:-filesystem}"
START_TIMEOUT="${TERRITORY_GCS_START_TIMEOUT:-30}"
STOP_TIMEOUT="${TERRITORY_GCS_STOP_TIMEOUT:-20}"
INSTALL_TIMEOUT="${TERRITORY_GCS_INSTALL_TIMEOUT:-900}"

PID_FILE="${RUN_DIR}/fake-gcs-server.pid"
SERVICE=gcs-server
# shellcheck source=./lib/service.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/service.sh"
LOG_FILE="${RUN_DIR}/fake-gcs-server.log"
DATA_DIR="${RUN_DIR}/data"
BASE_URL="http://${HOST}:${PORT}"
ENDPOINT="${BASE_URL}/storage/v1/"


validate_settings() {
  local v
  for v in PORT START_TIMEOUT STOP_TIMEOUT INSTALL_TIMEOUT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "${v}='${!v}' is not a number"
  done
  ((PORT > 0 && PORT < 65536)) || die "port ${PORT} out of range"
  # GCS bucket naming rules (strict subset): 3-63 chars, lowercase, digits, '-', '_', '.'
  [[ "${BUCKET}" =~ ^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$ ]] || die "invalid bucket name '${BUCKET}'"
  [[ "${BACKEND}" == filesystem || "${BACKEND}" == memory ]] || die "TERRITORY_GCS_BACKEND='${BACKEND}': filesystem or memory"
}

# --- install --------------------------------------------------------------------

installed_version() {
  [[ -x "${FGS_BIN}" ]] || return 1
  command -v go >/dev/null 2>&1 || { echo unknown; return 0; }
  go version -m "${FGS_BIN}" 2>/dev/null | awk -v m="${FGS_MODULE}" '$1 == "mod" && $2 == m { print $3; exit }'
}

install_fgs() {
  local have
  have="$(installed_version || true)"
  if [[ "${have}" == "${FGS_VERSION}" ]]; then
    log "fake-gcs-server ${FGS_VERSION} cached: ${FGS_BIN}"
    return 0
  fi
  if [[ "${have}" == unknown ]]; then
    log "WARNING: 'go' not in PATH, cannot check the version of ${FGS_BIN}; using it as is"
    return 0
  fi
  need go "Go is needed once to build fake-gcs-server ${FGS_VERSION} into ${BIN_DIR}"
  mkdir -p "${BIN_DIR}"
  local tmp="${BIN_DIR}/.install-fgs.$$"
  rm -rf "${tmp}"
  mkdir -p "${tmp}"
  log "installing ${FGS_MODULE}@${FGS_VERSION} (one-time, ~1 min on 2 cores)"
  local t0=${SECONDS}
  if ! (cd "${tmp}" && GOWORK=off GOFLAGS="" GOBIN="${tmp}" timeout "${INSTALL_TIMEOUT}" \
      go install "${FGS_MODULE}@${FGS_VERSION}") >"${BIN_DIR}/fake-gcs-server-install.log" 2>&1; then
    tail -n 30 "${BIN_DIR}/fake-gcs-server-install.log" >&2 || true
    rm -rf "${tmp}"
    die "go install of fake-gcs-server ${FGS_VERSION} failed or timed out after ${INSTALL_TIMEOUT}s (log: ${BIN_DIR}/fake-gcs-server-install.log)"
  fi
  mv -f "${tmp}/fake-gcs-server" "${FGS_BIN}"
  rm -rf "${tmp}"
  log "installed fake-gcs-server ${FGS_VERSION} in $((SECONDS - t0))s: ${FGS_BIN}"
}

# --- run-state helpers --------------------------------------------------------


# true iff the pid in the pid file is alive and is OUR fake-gcs-server (guards against pid reuse)
is_running() {
  local pid
  pid="$(read_pid)" || return 1
  kill -0 "${pid}" 2>/dev/null || return 1
  [[ -r "/proc/${pid}/cmdline" ]] || return 0
  tr '\0' ' ' <"/proc/${pid}/cmdline" | grep -q -- "fake-gcs-server.*${DATA_DIR}"
}


# prints the HTTP status code of a JSON API request
gcs_status() {
  local method="$1" path="$2" body="${3:-}"
  if [[ -n "${body}" ]]; then
    curl -s -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 10 -X "${method}" \
      -H 'Content-Type: application/json' --data "${body}" "${BASE_URL}${path}" || true
  else
    curl -s -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 10 -X "${method}" "${BASE_URL}${path}" || true
  fi
}

is_healthy() { [[ "$(gcs_status GET /storage/v1/b)" == 200 ]]; }

is_answering() {
  is_healthy || return 1
  [[ "$(gcs_status GET "/storage/v1/b/${BUCKET}")" == 200 ]]
}

print_env() {
  cat <<EOF
TERRITORY_GCS_ENDPOINT=${ENDPOINT}
TERRITORY_GCS_BUCKET=${BUCKET}
EOF
}

ensure_bucket() {
  local code
  [[ "$(gcs_status GET "/storage/v1/b/${BUCKET}")" == 200 ]] && return 0
  code="$(gcs_status POST /storage/v1/b "{\"name\":\"${BUCKET}\"}")"
  # 200 created; 409 already exists
  [[ "${code}" == 200 || "${code}" == 409 ]] || die "creating bucket ${BUCKET} failed with HTTP ${code} (log: ${LOG_FILE})"
  [[ "$(gcs_status GET "/storage/v1/b/${BUCKET}")" == 200 ]] || die "bucket ${BUCKET} not reachable after creation"
}

# --- commands -----------------------------------------------------------------



cmd_start() {
  validate_settings
  need curl "used to probe the server and create the bucket"
  with_lock
  if is_running; then
    local pid
    pid="$(read_pid)"
    local deadline=$((SECONDS + START_TIMEOUT))
    until is_healthy || ((SECONDS >= deadline)); do sleep 0.5; done
    is_healthy || die "pid ${pid} is running but ${ENDPOINT} does not answer; run '$0 stop' (log: ${LOG_FILE})"
    ensure_bucket
    log "already running (pid ${pid}) at ${ENDPOINT}"
    print_env
    return 0
  fi
  rm -f "${PID_FILE}"
  port_in_use "${PORT}" && die "port ${HOST}:${PORT} is already in use by another process (set TERRITORY_GCS_PORT)"
  install_fgs
  [[ -x "${FGS_BIN}" ]] || die "${FGS_BIN} missing"
  mkdir -p "${DATA_DIR}"
  [[ -f "${LOG_FILE}" ]] && mv -f "${LOG_FILE}" "${LOG_FILE}.1"
  log "starting fake-gcs-server ${FGS_VERSION} (${BACKEND} backend ${DATA_DIR}) at ${ENDPOINT}"
  local t0=${SECONDS}
  (
    exec 9>&- # do not hand the start/stop lock to the server
    cd "${RUN_DIR}"
    # -filesystem-root is passed with the memory backend too (ignored there): it marks the process as ours.
    # -public-host / -external-url: URLs the server hands out (resumable uploads, media links) point back at it.
    exec setsid nohup "${FGS_BIN}" \
      -scheme http \
      -host "${HOST}" \
      -port "${PORT}" \
      -backend "${BACKEND}" \
      -filesystem-root "${DATA_DIR}" \
      -public-host "${HOST}:${PORT}" \
      -external-url "${BASE_URL}" \
      -log-level warn \
      </dev/null >"${LOG_FILE}" 2>&1
  ) &
  local pid=$!
  echo "${pid}" >"${PID_FILE}"
  await_healthy "${pid}" fake-gcs-server
  ensure_bucket
  log "ready in $((SECONDS - t0))s (pid ${pid}, log ${LOG_FILE}), bucket ${BUCKET}"
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
    log "pid $(read_pid) running but ${ENDPOINT} does not answer or bucket ${BUCKET} does not exist"
    return 1
  fi
  log "running (pid $(read_pid)) at ${ENDPOINT}, bucket ${BUCKET}"
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
  install) validate_settings; install_fgs ;;
  reset) cmd_reset ;;
  *)
    echo "usage: $0 start|stop|status|env|install|reset" >&2
    exit 2
    ;;
esac
