# shellcheck shell=bash
# service.sh: what the service scripts (pulsar-standalone, s3-server,
# gcs-server, azure-server) share: messages, the pid file, the start/stop lock,
# and a bounded stop. Source it after setting:
#   SERVICE       the prefix of every message, e.g. "s3-server"
#   RUN_DIR       where the lock lives
#   PID_FILE      the server's pid file
#   STOP_TIMEOUT  seconds to wait after SIGTERM before SIGKILL
#   HOST          the loopback address the server listens on
#   LOG_FILE, START_TIMEOUT and is_healthy, for await_healthy
# and optionally LOCK_WAIT (seconds to wait for the lock, default 300).
# Each script keeps its own is_running (it knows its process's command line).

log() { printf '[%s] %s\n' "${SERVICE}" "$*" >&2; }
die() {
  printf '[%s] ERROR: %s\n' "${SERVICE}" "$*" >&2
  exit 1
}
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found in PATH ($2)"; }

read_pid() {
  [[ -f "${PID_FILE}" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"${PID_FILE}")"
  [[ -n "${pid}" ]] || return 1
  echo "${pid}"
}

port_in_use() { (exec 3<>"/dev/tcp/${HOST}/$1") 2>/dev/null; }

# with_lock serialises start, stop and reset of one run dir (fd 9 holds it;
# a started server must close fd 9 so it does not inherit the lock).
with_lock() {
  local wait="${LOCK_WAIT:-300}"
  mkdir -p "${RUN_DIR}"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"${RUN_DIR}/.lock"
    flock -w "${wait}" 9 || die "could not lock ${RUN_DIR}/.lock within ${wait}s (another start/stop running?)"
  fi
}

# stop_pid sends SIGTERM, waits STOP_TIMEOUT seconds, then SIGKILL.
stop_pid() {
  local pid="$1" deadline
  kill -TERM "${pid}" 2>/dev/null || return 0
  deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "${pid}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "${pid}" 2>/dev/null; then
    log "pid ${pid} still alive after ${STOP_TIMEOUT}s: SIGKILL"
    kill -KILL "${pid}" 2>/dev/null || true
    deadline=$((SECONDS + 30))
    while kill -0 "${pid}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -0 "${pid}" 2>/dev/null && die "pid ${pid} survived SIGKILL"
  fi
  return 0
}

# stop_service stops the server if it runs and removes its pid file.
stop_service() {
  with_lock
  if ! is_running; then
    rm -f "${PID_FILE}"
    log "not running"
    return 0
  fi
  local pid t0=${SECONDS}
  pid="$(read_pid)"
  log "stopping pid ${pid}"
  stop_pid "${pid}"
  rm -f "${PID_FILE}"
  log "stopped in $((SECONDS - t0))s"
}

# await_healthy waits (START_TIMEOUT seconds) until is_healthy answers for the
# server just started as pid; if it exits or never answers, it shows the end of
# LOG_FILE, stops it, removes the pid file and dies.
await_healthy() {
  local pid="$1" name="$2" deadline=$((SECONDS + START_TIMEOUT))
  until is_healthy; do
    if ! kill -0 "${pid}" 2>/dev/null; then
      tail -n 30 "${LOG_FILE}" >&2 || true
      rm -f "${PID_FILE}"
      die "${name} exited during startup (log: ${LOG_FILE})"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "${LOG_FILE}" >&2 || true
      stop_pid "${pid}"
      rm -f "${PID_FILE}"
      die "${name} not answering after ${START_TIMEOUT}s (log: ${LOG_FILE})"
    fi
    sleep 0.2
  done
}
