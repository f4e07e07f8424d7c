#!/usr/bin/env bash
# Real Apache Pulsar standalone (broker + N real BookKeeper bookies + RocksDB
# metadata store, all in one JVM) on 127.0.0.1, for integration tests.
#
#   scripts/pulsar-standalone.sh start    # fetch (once), start, wait until it answers
#   scripts/pulsar-standalone.sh stop     # SIGTERM, bounded wait, then SIGKILL; idempotent
#   scripts/pulsar-standalone.sh status   # exit 0 iff running AND answering
#   scripts/pulsar-standalone.sh env      # print export-able TERRITORY_PULSAR_* lines
#   scripts/pulsar-standalone.sh fetch    # only download the jars into the cache
#   scripts/pulsar-standalone.sh reset    # stop and delete all data (fresh cluster next start)
#
# See scripts/README.md for the environment variables.
set -euo pipefail

readonly HOST=127.0.0.1 # loopback only, on purpose not configurable

PULSAR_VERSION="${TERRITORY_PULSAR_VERSION:-4.0.7}"
CACHE_DIR="${TERRITORY_CACHE:-$HOME/.cache/territory}"
PULSAR_HOME="${CACHE_DIR}/pulsar-${PULSAR_VERSION}"
LIB_DIR="${PULSAR_HOME}/lib"
if [[ -n "${TERRITORY_PULSAR_RUN:-}" ]]; then
  RUN_DIR="${TERRITORY_PULSAR_RUN}"
elif [[ -n "${TERRITORY_RUN:-}" ]]; then
  RUN_DIR="${TERRITORY_RUN}/pulsar"
else
  RUN_DIR=/tmp/territory-pulsar
fi
BROKER_PORT="${TERRITORY_PULSAR_BROKER_PORT:-6650}"
WEB_PORT="${TERRITORY_PULSAR_WEB_PORT:-8080}"
NUM_BOOKIES="${TERRITORY_PULSAR_BOOKIES:-3}"
HEAP="${TERRITORY_PULSAR_HEAP:-1g}"
DIRECT_MEM="${TERRITORY_PULSAR_DIRECT_MEMORY:-768m}"
START_TIMEOUT="${TERRITORY_PULSAR_START_TIMEOUT:-180}"
STOP_TIMEOUT="${TERRITORY_PULSAR_STOP_TIMEOUT:-60}"
FETCH_TIMEOUT="${TERRITORY_PULSAR_FETCH_TIMEOUT:-900}"
JOURNAL_SYNC="${TERRITORY_PULSAR_JOURNAL_SYNC:-false}"

PID_FILE="${RUN_DIR}/pulsar.pid"
SERVICE=pulsar-standalone
LOCK_WAIT=600 # a cold start downloads Pulsar first
# shellcheck source=./lib/service.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/service.sh"
LOG_FILE="${RUN_DIR}/pulsar.log"
CONF_FILE="${RUN_DIR}/standalone.conf"
LOG4J_FILE="${RUN_DIR}/log4j2.properties"
DATA_DIR="${RUN_DIR}/data"
WEB_URL="http://${HOST}:${WEB_PORT}"
BROKER_URL="pulsar://${HOST}:${BROKER_PORT}"


validate_settings() {
  local v
  for v in BROKER_PORT WEB_PORT NUM_BOOKIES START_TIMEOUT STOP_TIMEOUT FETCH_TIMEOUT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "${v}='${!v}' is not a number"
  done
  ((BROKER_PORT > 0 && BROKER_PORT < 65536)) || die "broker port ${BROKER_PORT} out of range"
  ((WEB_PORT > 0 && WEB_PORT < 65536)) || die "web port ${WEB_PORT} out of range"
  ((BROKER_PORT != WEB_PORT)) || die "broker and web port must differ"
  ((NUM_BOOKIES >= 1 && NUM_BOOKIES <= 9)) || die "TERRITORY_PULSAR_BOOKIES must be 1..9"
  [[ "${JOURNAL_SYNC}" == true || "${JOURNAL_SYNC}" == false ]] ||
    die "TERRITORY_PULSAR_JOURNAL_SYNC must be true or false"
}


java_bin() {
  if [[ -n "${JAVA_HOME:-}" && -x "${JAVA_HOME}/bin/java" ]]; then
    echo "${JAVA_HOME}/bin/java"
  else
    need java "Java 17+ is required"
    command -v java
  fi
}

check_java() {
  local jv major
  jv="$("$(java_bin)" -version 2>&1 | head -n1)"
  major="$(sed -E 's/.*version "([0-9]+)(\.[0-9]+)*.*/\1/' <<<"${jv}")"
  [[ "${major}" =~ ^[0-9]+$ && "${major}" -ge 17 ]] || die "Java 17+ required, found: ${jv}"
}

# --- run-state helpers --------------------------------------------------------


# true iff the pid in the pid file is alive and is OUR standalone (guards against pid reuse)
is_running() {
  local pid
  pid="$(read_pid)" || return 1
  kill -0 "${pid}" 2>/dev/null || return 1
  [[ -r "/proc/${pid}/cmdline" ]] || return 0
  tr '\0' ' ' <"/proc/${pid}/cmdline" | grep -q -- "PulsarStandaloneStarter.*${CONF_FILE}"
}


http_get() { curl -sf --connect-timeout 2 --max-time "${2:-10}" "${WEB_URL}$1"; }

# Broker answers, health check (produces+reads a heartbeat message through the
# bookies) passes, all bookies are registered and public/default exists.
is_answering() {
  local out n
  out="$(http_get /admin/v2/brokers/health 20)" || return 1
  [[ "${out}" == ok ]] || return 1
  out="$(http_get /admin/v2/bookies/all)" || return 1
  n="$(grep -o '"bookieId"' <<<"${out}" | wc -l)"
  ((n >= NUM_BOOKIES)) || return 1
  out="$(http_get /admin/v2/namespaces/public)" || return 1
  grep -q '"public/default"' <<<"${out}"
}

print_env() {
  cat <<EOF
TERRITORY_PULSAR_URL=${BROKER_URL}
TERRITORY_PULSAR_ADMIN_URL=${WEB_URL}
TERRITORY_PULSAR_VERSION=${PULSAR_VERSION}
TERRITORY_PULSAR_BOOKIES=${NUM_BOOKIES}
EOF
}

# --- fetch --------------------------------------------------------------------

stamp() {
  # what a complete lib dir was built from; changes => refetch
  printf 'org.apache.pulsar:pulsar-broker:%s\n' "${PULSAR_VERSION}"
}

lib_complete() {
  [[ -f "${LIB_DIR}/.complete" && -f "${LIB_DIR}/pulsar-broker-${PULSAR_VERSION}.jar" ]] &&
    [[ "$(cat "${LIB_DIR}/.complete")" == "$(stamp)" ]]
}

fetch() {
  if lib_complete; then
    log "jars cached: ${LIB_DIR} ($(find "${LIB_DIR}" -name '*.jar' | wc -l) jars)"
    return 0
  fi
  need mvn "Maven is needed once to download Pulsar ${PULSAR_VERSION} into ${LIB_DIR}"
  mkdir -p "${PULSAR_HOME}/empty-repo"
  local repo="${TERRITORY_MAVEN_REPO:-${PULSAR_HOME}/m2}"
  local tmp="${PULSAR_HOME}/lib.tmp.$$"
  rm -rf "${tmp}"
  # Only pulsar-broker is declared: it pulls bookkeeper-server, pulsar-metadata
  # (RocksDB store), the functions worker classes the starter links against and
  # log4j-slf4j2-impl transitively. Every org.apache.pulsar artifact resolves at
  # the one version.
  cat >"${PULSAR_HOME}/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>territory.local</groupId>
  <artifactId>pulsar-standalone-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.pulsar</groupId>
      <artifactId>pulsar-broker</artifactId>
      <version>${PULSAR_VERSION}</version>
    </dependency>
  </dependencies>
</project>
EOF
  # Pulsar's own POMs declare extra third-party repositories; route every
  # repository except Maven's default 'central' to an empty local directory so
  # resolution uses central only and never waits on unreachable hosts.
  local settings="${TERRITORY_MAVEN_SETTINGS:-${PULSAR_HOME}/settings.xml}"
  if [[ -z "${TERRITORY_MAVEN_SETTINGS:-}" ]]; then
    cat >"${settings}" <<EOF
<settings>
  <mirrors>
    <mirror>
      <id>territory-non-central</id>
      <mirrorOf>*,!central</mirrorOf>
      <url>file://${PULSAR_HOME}/empty-repo</url>
    </mirror>
  </mirrors>
</settings>
EOF
  fi
  log "downloading org.apache.pulsar:pulsar-broker:${PULSAR_VERSION} + runtime deps into ${LIB_DIR} (one-time, ~240 MB)"
  local t0=${SECONDS}
  if ! timeout "${FETCH_TIMEOUT}" mvn -B -q -s "${settings}" -f "${PULSAR_HOME}/pom.xml" \
      -Dmaven.repo.local="${repo}" \
      org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="${tmp}" >"${PULSAR_HOME}/mvn.log" 2>&1; then
    tail -n 30 "${PULSAR_HOME}/mvn.log" >&2 || true
    rm -rf "${tmp}"
    die "maven download failed or timed out after ${FETCH_TIMEOUT}s (full log: ${PULSAR_HOME}/mvn.log)"
  fi
  [[ -f "${tmp}/pulsar-broker-${PULSAR_VERSION}.jar" ]] || die "download finished but pulsar-broker-${PULSAR_VERSION}.jar is missing in ${tmp}"
  stamp >"${tmp}/.complete"
  rm -rf "${LIB_DIR}"
  mv "${tmp}" "${LIB_DIR}"
  # lib/ is self-contained; drop the private maven repo copy (not a user-supplied one)
  [[ -n "${TERRITORY_MAVEN_REPO:-}" ]] || rm -rf "${repo}"
  log "downloaded $(find "${LIB_DIR}" -name '*.jar' | wc -l) jars in $((SECONDS - t0))s"
}

# --- config -------------------------------------------------------------------

write_config() {
  local ens=3 wq=3 aq=2
  ((NUM_BOOKIES < 3)) && { ens=${NUM_BOOKIES}; wq=${NUM_BOOKIES}; aq=$((NUM_BOOKIES < 2 ? NUM_BOOKIES : 2)); }
  mkdir -p "${RUN_DIR}" "${DATA_DIR}" "${RUN_DIR}/tmp"
  cat >"${CONF_FILE}" <<EOF
# Generated by scripts/pulsar-standalone.sh — rewritten on every start.
# Read both as the broker's ServiceConfiguration and the bookies' ServerConfiguration.

### broker
clusterName=standalone
metadataStoreUrl=
configurationMetadataStoreUrl=
bindAddress=${HOST}
advertisedAddress=${HOST}
brokerServicePort=${BROKER_PORT}
webServicePort=${WEB_PORT}
functionsWorkerEnabled=false
webSocketServiceEnabled=false
transactionCoordinatorEnabled=false
loadManagerClassName=org.apache.pulsar.broker.loadbalance.NoopLoadManager
loadBalancerEnabled=false
allowAutoTopicCreation=true
allowAutoTopicCreationType=non-partitioned
brokerShutdownTimeoutMs=20000
narExtractionDirectory=${RUN_DIR}/tmp
# settings the territory tests rely on
brokerDeduplicationEnabled=true
brokerDeleteInactiveTopicsEnabled=false
defaultRetentionTimeInMinutes=-1
defaultRetentionSizeInMB=-1
managedLedgerDefaultEnsembleSize=${ens}
managedLedgerDefaultWriteQuorum=${wq}
managedLedgerDefaultAckQuorum=${aq}
# modest memory (2-core / CI machine)
managedLedgerCacheSizeMB=64

### bookies (each bookie gets its own dir under ${DATA_DIR}/bookkeeper)
listeningInterface=lo
allowLoopback=true
ledgerStorageClass=org.apache.bookkeeper.bookie.storage.ldb.DbLedgerStorage
dbStorage_writeCacheMaxSizeMb=16
dbStorage_readAheadCacheMaxSizeMb=16
dbStorage_rocksDB_blockCacheSize=16777216
journalSyncData=${JOURNAL_SYNC}
journalMaxGroupWaitMSec=1
diskUsageThreshold=0.99
diskUsageWarnThreshold=0.99
gcWaitTime=300000
flushInterval=60000
httpServerEnabled=false
EOF
  cat >"${LOG4J_FILE}" <<'EOF'
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{ISO8601} [%t] %-5level %logger{36} - %msg%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
EOF
}

# --- commands -----------------------------------------------------------------


wait_ready() {
  local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "${pid}" 2>/dev/null; then
      log "process ${pid} exited during startup; last log lines:"
      tail -n 40 "${LOG_FILE}" >&2 || true
      return 1
    fi
    is_answering && return 0
    sleep 1
  done
  log "not answering after ${START_TIMEOUT}s; last log lines:"
  tail -n 40 "${LOG_FILE}" >&2 || true
  return 1
}

cmd_start() {
  validate_settings
  need curl "used to probe the admin API"
  with_lock
  if is_running; then
    local pid
    pid="$(read_pid)"
    if is_answering || wait_ready "${pid}"; then
      log "already running (pid ${pid}), answering at ${WEB_URL}"
      print_env
      return 0
    fi
    die "pid ${pid} is running but does not answer; run '$0 stop' (log: ${LOG_FILE})"
  fi
  rm -f "${PID_FILE}"
  check_java
  local p
  for p in "${BROKER_PORT}" "${WEB_PORT}"; do
    port_in_use "${p}" && die "port ${HOST}:${p} is already in use by another process (set TERRITORY_PULSAR_BROKER_PORT / TERRITORY_PULSAR_WEB_PORT)"
  done
  fetch
  write_config
  [[ -f "${LOG_FILE}" ]] && mv -f "${LOG_FILE}" "${LOG_FILE}.1"
  log "starting Pulsar ${PULSAR_VERSION} standalone: ${NUM_BOOKIES} bookies, broker ${BROKER_URL}, admin ${WEB_URL}, heap ${HEAP}, run dir ${RUN_DIR}"
  local java t0=${SECONDS}
  java="$(java_bin)"
  (
    exec 9>&- # do not hand the start/stop lock to the long-running JVM
    cd "${RUN_DIR}"
    # PULSAR_STANDALONE_USE_ZOOKEEPER would switch to the legacy ZK mode: keep the RocksDB metadata store.
    exec env -u PULSAR_STANDALONE_USE_ZOOKEEPER setsid nohup "${java}" \
      -Xms256m -Xmx"${HEAP}" -XX:MaxDirectMemorySize="${DIRECT_MEM}" -XX:+UseG1GC \
      -XX:+ExitOnOutOfMemoryError \
      --add-opens java.base/java.io=ALL-UNNAMED \
      --add-opens java.base/java.util.zip=ALL-UNNAMED \
      --add-opens java.base/sun.net=ALL-UNNAMED \
      --add-opens java.management/sun.management=ALL-UNNAMED \
      --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED \
      --add-opens java.base/jdk.internal.platform=ALL-UNNAMED \
      --add-opens java.base/java.nio=ALL-UNNAMED \
      --add-opens java.base/jdk.internal.misc=ALL-UNNAMED \
      -Dio.netty.tryReflectionSetAccessible=true \
      -Djava.io.tmpdir="${RUN_DIR}/tmp" \
      -Dlog4j.configurationFile="${LOG4J_FILE}" \
      -cp "${LIB_DIR}/*" \
      org.apache.pulsar.PulsarStandaloneStarter \
      --config "${CONF_FILE}" \
      --num-bookies "${NUM_BOOKIES}" \
      --no-functions-worker --no-stream-storage \
      --metadata-dir "${DATA_DIR}/metadata" \
      --bookkeeper-dir "${DATA_DIR}/bookkeeper" \
      </dev/null >"${LOG_FILE}" 2>&1
  ) &
  local pid=$!
  echo "${pid}" >"${PID_FILE}"
  if ! wait_ready "${pid}"; then
    log "startup failed; stopping pid ${pid}"
    stop_pid "${pid}"
    rm -f "${PID_FILE}"
    die "Pulsar standalone did not come up (log: ${LOG_FILE})"
  fi
  log "ready in $((SECONDS - t0))s (pid ${pid}, log ${LOG_FILE}); bookies: $(http_get /admin/v2/bookies/all || true)"
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
    log "pid $(read_pid) running but not answering at ${WEB_URL} (starting, or broken: see ${LOG_FILE})"
    return 1
  fi
  log "running (pid $(read_pid)) and answering at ${WEB_URL}; bookies: $(http_get /admin/v2/bookies/all || true)"
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
  fetch) validate_settings; fetch ;;
  reset) cmd_reset ;;
  *)
    echo "usage: $0 start|stop|status|env|fetch|reset" >&2
    exit 2
    ;;
esac
