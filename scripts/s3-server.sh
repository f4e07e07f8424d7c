#!/usr/bin/env bash
# Real S3-compatible server (versitygw, posix backend) on 127.0.0.1 for integration tests.
#
#   scripts/s3-server.sh start    # install versitygw (once), start, create the bucket, wait until it answers
#   scripts/s3-server.sh stop     # SIGTERM, bounded wait, then SIGKILL; idempotent
#   scripts/s3-server.sh status   # exit 0 iff running AND answering (bucket reachable with the credentials)
#   scripts/s3-server.sh env      # print export-able TERRITORY_S3_* lines
#   scripts/s3-server.sh install  # only build/install versitygw into the cache
#   scripts/s3-server.sh reset    # stop and delete all objects/buckets
#
# See scripts/README.md for the environment variables.
set -euo pipefail

readonly HOST=127.0.0.1 # loopback only, on purpose not configurable

VGW_VERSION="${TERRITORY_VERSITYGW_VERSION:-v1.8.0}"
VGW_MODULE=github.com/versity/versitygw
CACHE_DIR="${TERRITORY_CACHE:-$HOME/.cache/territory}"
BIN_DIR="${CACHE_DIR}/bin"
VGW_BIN="${BIN_DIR}/versitygw"
if [[ -n "${TERRITORY_S3_RUN:-}" ]]; then
  RUN_DIR="${TERRITORY_S3_RUN}"
elif [[ -n "${TERRITORY_RUN:-}" ]]; then
  RUN_DIR="${TERRITORY_RUN}/s3"
else
  RUN_DIR=/tmp/territory-s3
fi
PORT="${TERRITORY_S3_PORT:-7070}"
ACCESS_KEY="${TERRITORY_S3_ACCESS_KEY:-territory}"
SECRET_KEY="${TERRITORY_S3_SECRET_KEY:-territory-secret}"
REGION="${TERRITORY_S3_REGION:-us-east-1}"
BUCKET="${TERRITORY_S3_BUCKET:-territory-test}"
START_TIMEOUT="${TERRITORY_S3_START_TIMEOUT:-60}"
STOP_TIMEOUT="${TERRITORY_S3_STOP_TIMEOUT:-20}"
INSTALL_TIMEOUT="${TERRITORY_S3_INSTALL_TIMEOUT:-900}"

PID_FILE="${RUN_DIR}/versitygw.pid"
SERVICE=s3-server
# shellcheck source=./lib/service.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/service.sh"
LOG_FILE="${RUN_DIR}/versitygw.log"
DATA_DIR="${RUN_DIR}/data"
ENDPOINT="http://${HOST}:${PORT}"
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855


validate_settings() {
  local v
  for v in PORT START_TIMEOUT STOP_TIMEOUT INSTALL_TIMEOUT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "${v}='${!v}' is not a number"
  done
  ((PORT > 0 && PORT < 65536)) || die "port ${PORT} out of range"
  # S3 bucket naming rules (strict subset): 3-63 chars, lowercase, digits, '-', '.'
  [[ "${BUCKET}" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "invalid bucket name '${BUCKET}'"
  [[ -n "${ACCESS_KEY}" && -n "${SECRET_KEY}" ]] || die "access key and secret key must be non-empty"
  [[ "${ACCESS_KEY}" != *:* ]] || die "access key must not contain ':'"
}

# --- install --------------------------------------------------------------------

installed_version() {
  # module version recorded in the binary's build info
  [[ -x "${VGW_BIN}" ]] || return 1
  command -v go >/dev/null 2>&1 || { echo unknown; return 0; }
  go version -m "${VGW_BIN}" 2>/dev/null | awk -v m="${VGW_MODULE}" '$1 == "mod" && $2 == m { print $3; exit }'
}

install_vgw() {
  local have
  have="$(installed_version || true)"
  if [[ "${have}" == "${VGW_VERSION}" ]]; then
    log "versitygw ${VGW_VERSION} cached: ${VGW_BIN}"
    return 0
  fi
  if [[ "${have}" == unknown ]]; then
    log "WARNING: 'go' not in PATH, cannot check the version of ${VGW_BIN}; using it as is"
    return 0
  fi
  need go "Go is needed once to build versitygw ${VGW_VERSION} into ${BIN_DIR}"
  mkdir -p "${BIN_DIR}"
  local tmp="${BIN_DIR}/.install.$$"
  rm -rf "${tmp}"
  mkdir -p "${tmp}"
  log "installing ${VGW_MODULE}/cmd/versitygw@${VGW_VERSION} (one-time, ~1-2 min on 2 cores)"
  local t0=${SECONDS}
  # build outside any module/workspace; binary lands in a temp GOBIN, then moved atomically
  if ! (cd "${tmp}" && GOWORK=off GOBIN="${tmp}" timeout "${INSTALL_TIMEOUT}" \
      go install "${VGW_MODULE}/cmd/versitygw@${VGW_VERSION}") >"${BIN_DIR}/versitygw-install.log" 2>&1; then
    tail -n 30 "${BIN_DIR}/versitygw-install.log" >&2 || true
    rm -rf "${tmp}"
    die "go install of versitygw ${VGW_VERSION} failed or timed out after ${INSTALL_TIMEOUT}s (log: ${BIN_DIR}/versitygw-install.log)"
  fi
  mv -f "${tmp}/versitygw" "${VGW_BIN}"
  rm -rf "${tmp}"
  log "installed versitygw ${VGW_VERSION} in $((SECONDS - t0))s: ${VGW_BIN}"
}

# --- run-state helpers --------------------------------------------------------


# true iff the pid in the pid file is alive and is OUR versitygw (guards against pid reuse)
is_running() {
  local pid
  pid="$(read_pid)" || return 1
  kill -0 "${pid}" 2>/dev/null || return 1
  [[ -r "/proc/${pid}/cmdline" ]] || return 0
  tr '\0' ' ' <"/proc/${pid}/cmdline" | grep -q -- "versitygw.*${DATA_DIR}"
}


# signed S3 request; prints the HTTP status code
s3_status() {
  local method="$1" path="$2"
  curl -s -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 10 \
    --aws-sigv4 "aws:amz:${REGION}:s3" --user "${ACCESS_KEY}:${SECRET_KEY}" \
    -H "x-amz-content-sha256: ${EMPTY_SHA256}" -X "${method}" "${ENDPOINT}${path}" || true
}

is_healthy() { [[ "$(curl -s --connect-timeout 2 --max-time 5 "${ENDPOINT}/health" || true)" == OK ]]; }

# health endpoint answers and the bucket is reachable with the configured credentials
is_answering() {
  is_healthy || return 1
  [[ "$(s3_status HEAD "/${BUCKET}")" == 200 ]]
}

print_env() {
  cat <<EOF
TERRITORY_S3_ENDPOINT=${ENDPOINT}
TERRITORY_S3_REGION=${REGION}
TERRITORY_S3_ACCESS_KEY=${ACCESS_KEY}
TERRITORY_S3_SECRET_KEY=${SECRET_KEY}
TERRITORY_S3_BUCKET=${BUCKET}
EOF
}

ensure_bucket() {
  local code
  code="$(s3_status HEAD "/${BUCKET}")"
  [[ "${code}" == 200 ]] && return 0
  [[ "${code}" == 403 ]] && die "bucket check got 403: the running server uses other credentials than TERRITORY_S3_ACCESS_KEY/TERRITORY_S3_SECRET_KEY"
  code="$(s3_status PUT "/${BUCKET}")"
  # 200 created; 409 BucketAlreadyOwnedByYou/Exists
  [[ "${code}" == 200 || "${code}" == 409 ]] || die "CreateBucket ${BUCKET} failed with HTTP ${code} (log: ${LOG_FILE})"
  [[ "$(s3_status HEAD "/${BUCKET}")" == 200 ]] || die "bucket ${BUCKET} not reachable after creation"
}

# --- commands -----------------------------------------------------------------



cmd_start() {
  validate_settings
  need curl "used to probe and sign S3 requests (needs --aws-sigv4, curl >= 7.75)"
  with_lock
  if is_running; then
    local pid
    pid="$(read_pid)"
    local deadline=$((SECONDS + START_TIMEOUT))
    until is_healthy || ((SECONDS >= deadline)); do sleep 0.5; done
    is_healthy || die "pid ${pid} is running but ${ENDPOINT}/health does not answer; run '$0 stop' (log: ${LOG_FILE})"
    ensure_bucket
    log "already running (pid ${pid}) at ${ENDPOINT}"
    print_env
    return 0
  fi
  rm -f "${PID_FILE}"
  port_in_use "${PORT}" && die "port ${HOST}:${PORT} is already in use by another process (set TERRITORY_S3_PORT)"
  install_vgw
  [[ -x "${VGW_BIN}" ]] || die "${VGW_BIN} missing"
  mkdir -p "${DATA_DIR}"
  [[ -f "${LOG_FILE}" ]] && mv -f "${LOG_FILE}" "${LOG_FILE}.1"
  log "starting versitygw ${VGW_VERSION} (posix backend ${DATA_DIR}) at ${ENDPOINT}"
  local t0=${SECONDS}
  (
    exec 9>&- # do not hand the start/stop lock to the server
    cd "${RUN_DIR}"
    # credentials via env (not argv, so they do not show in ps); explicit flags win over any VGW_* env
    export ROOT_ACCESS_KEY_ID="${ACCESS_KEY}" ROOT_SECRET_ACCESS_KEY="${SECRET_KEY}"
    exec setsid nohup "${VGW_BIN}" \
      --port "${HOST}:${PORT}" \
      --region "${REGION}" \
      --health /health \
      --quiet \
      posix "${DATA_DIR}" \
      </dev/null >"${LOG_FILE}" 2>&1
  ) &
  local pid=$!
  echo "${pid}" >"${PID_FILE}"
  await_healthy "${pid}" versitygw
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
    log "pid $(read_pid) running but ${ENDPOINT} does not answer or bucket ${BUCKET} is not reachable with the configured credentials"
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
  install) validate_settings; install_vgw ;;
  reset) cmd_reset ;;
  *)
    echo "usage: $0 start|stop|status|env|install|reset" >&2
    exit 2
    ;;
esac
