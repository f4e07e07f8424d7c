#!/usr/bin/env bash
# Integration tests against real services: starts the Pulsar standalone
# (3 bookies), the S3 server and the GCS and Azure Blob emulators, exports their environment, runs
#
#   go test -race -tags integration -count=1 ./runtime/... ./cmd/territoryd/...
#   (runtime/pulsarlog without -race: pulsar-client-go races with itself; see NORACE_PKG)
#
# with TERRITORY_REQUIRE_SERVICES=1 (a test that would skip for an absent
# service fails instead; see runtime/servicetest), then the differential fidelity
# runs against the real services (fidelity.TestLogFidelityPulsar and
# TestBlobFidelityS3: 500 seeded sequences each, agreement tables in the log and
# in out/fidelity/*.json; without -race, as runtime/pulsarlog), then `sim chaos --scenario
# short` (real processes under real faults, the simulator's checks), then the planted bugs that
# need these services (scripts/mutants.sh with MUTANTS_SELECT=services), and
# always stops every service on exit (success, failure or Ctrl-C). The exit
# code is the tests' (or the failing start's). ./cmd/territoryd/... includes the
# end-to-end tests of cmd/territoryd/e2e: real `territoryd run` and `territoryd
# manager` processes on embedded etcd, the Pulsar standalone and the S3 bucket.
#
#   scripts/test-integration.sh                     # everything above
#   scripts/test-integration.sh -run Fencing -v     # extra arguments go to `go test`
#   TERRITORY_IT_PACKAGES=./cmd/territoryd/e2e scripts/test-integration.sh -run '^$' -bench . -v
#                                                   # the territoryd-vs-raw-Pulsar benchmarks
#
# Environment:
#   TERRITORY_IT_PACKAGES          packages to test (default ./runtime/... ./cmd/territoryd/...)
#   TERRITORY_IT_TIMEOUT           go test -timeout (default 20m)
#   TERRITORY_IT_RACE=0            run without the race detector (default: -race)
#   TERRITORY_IT_MUTANTS=0         do not run the planted bugs that need the services
#   TERRITORY_IT_CHAOS=0           do not run `sim chaos --scenario short` (about a minute)
#   TERRITORY_IT_FIDELITY=0        do not run the fidelity runs against Pulsar and S3 (about a minute;
#                                  TERRITORY_FIDELITY_LONG=1: 10,000 sequences each)
#   TERRITORY_CHAOS_SEED=N         its seed (default: the day of the year)
#   TERRITORY_REQUIRE_SERVICES     default 1 (0 when a TERRITORY_IT_NO_* switch leaves a
#                                  service out, whose tests then skip); 1 with such a
#                                  switch is an error
#   TERRITORY_IT_NO_S3=1           do not start the S3 server (the e2e tests then skip)
#   TERRITORY_IT_NO_GCS=1          do not start the GCS emulator (runtime/blob TestPortGCS then skips)
#   TERRITORY_IT_NO_AZURE=1        do not start Azurite (runtime/blob TestPortAzure then skips)
#   TERRITORY_IT_KEEP_SERVICES=1   leave the services running afterwards (to iterate)
#   TERRITORY_PULSAR_RESTART_TEST=1  afterwards, run the tests that stop or freeze the
#                                  shared Pulsar, each on its own (they would break the
#                                  tests of other packages running in parallel): the
#                                  pulsarlog test that stops and starts Pulsar (~20 s)
#                                  and the e2e test that freezes it under territoryd (~15 s)
#   TERRITORY_E2E_LOGS=DIR         the e2e tests copy the whole log of every territoryd
#                                  process of a failed test into DIR
# plus every variable of scripts/pulsar-standalone.sh, s3-server.sh, gcs-server.sh
# and azure-server.sh (ports, run dirs, cache); see scripts/README.md. On a fresh
# machine the service scripts download Pulsar from Maven Central (needs java 17+
# and mvn), go-install versitygw and fake-gcs-server (needs go) and npm-install
# Azurite (needs node and npm) first.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
PULSAR="${ROOT}/scripts/pulsar-standalone.sh"
S3="${ROOT}/scripts/s3-server.sh"
GCS="${ROOT}/scripts/gcs-server.sh"
AZURE="${ROOT}/scripts/azure-server.sh"
PACKAGES="${TERRITORY_IT_PACKAGES:-./runtime/... ./cmd/territoryd/...}"
TIMEOUT="${TERRITORY_IT_TIMEOUT:-20m}"
WITH_S3=1
[[ "${TERRITORY_IT_NO_S3:-}" == 1 ]] && WITH_S3=0
WITH_GCS=1
[[ "${TERRITORY_IT_NO_GCS:-}" == 1 ]] && WITH_GCS=0
WITH_AZURE=1
[[ "${TERRITORY_IT_NO_AZURE:-}" == 1 ]] && WITH_AZURE=0

log() { printf '[test-integration] %s\n' "$*" >&2; }

# A test that would skip for an absent service fails instead, unless a service
# is left out on purpose.
if ((WITH_S3 && WITH_GCS && WITH_AZURE)); then
  export TERRITORY_REQUIRE_SERVICES="${TERRITORY_REQUIRE_SERVICES:-1}"
elif [[ "${TERRITORY_REQUIRE_SERVICES:-}" == 1 ]]; then
  log "ERROR: TERRITORY_REQUIRE_SERVICES=1 with a TERRITORY_IT_NO_* switch: the left-out service's tests could only fail"
  exit 2
else
  export TERRITORY_REQUIRE_SERVICES=0
  log "a service is left out (TERRITORY_IT_NO_*): its tests skip"
fi
RACE=(-race)
[[ "${TERRITORY_IT_RACE:-1}" == 0 ]] && RACE=()
# runtime/pulsarlog runs without the race detector: pulsar-client-go v0.21.0 races with
# itself in its reconnect paths (partitionProducer.grabCnx against internalSingleSend,
# partitionConsumer.grabConn against reader.Next's bookkeeping: both sides in the library),
# and -race fails every test that provokes a reconnect (a takeover, a restart). Our own
# goroutines in it are the driver's and the stream's, which the unit tests run under -race.
NORACE_PKG=territory/runtime/pulsarlog

command -v go >/dev/null 2>&1 || { log "ERROR: go not found in PATH"; exit 1; }
# The connectome tests (cmd/territoryd, its e2e import) read the C. elegans edge list.
bash "${ROOT}/scripts/connectome.sh" fetch >/dev/null || { log "ERROR: scripts/connectome.sh fetch failed"; exit 1; }

T0=${SECONDS}
started=0

# shellcheck disable=SC2317 # called from the EXIT trap
stop_services() {
  if [[ "${TERRITORY_IT_KEEP_SERVICES:-}" == 1 ]]; then
    log "leaving the services running (TERRITORY_IT_KEEP_SERVICES=1)"
    return 0
  fi
  local t=${SECONDS}
  log "stopping services"
  local pids=()
  "${PULSAR}" stop || log "WARNING: pulsar stop failed" &
  pids+=($!)
  if ((WITH_S3)); then
    "${S3}" stop || log "WARNING: s3 stop failed" &
    pids+=($!)
  fi
  if ((WITH_GCS)); then
    "${GCS}" stop || log "WARNING: gcs stop failed" &
    pids+=($!)
  fi
  if ((WITH_AZURE)); then
    "${AZURE}" stop || log "WARNING: azure stop failed" &
    pids+=($!)
  fi
  wait "${pids[@]}" || true
  log "services stopped in $((SECONDS - t))s"
}

# shellcheck disable=SC2317 # the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  ((started)) && stop_services
  log "total $((SECONDS - T0))s, exit ${rc}"
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- start (all at once; each script waits until its service answers) -------
started=1
t=${SECONDS}
log "starting Pulsar standalone$( ((WITH_S3)) && echo ', the S3 server')$( ((WITH_GCS)) && echo ', the GCS emulator')$( ((WITH_AZURE)) && echo ', Azurite')"
"${PULSAR}" start >/dev/null &
pulsar_pid=$!
if ((WITH_S3)); then
  "${S3}" start >/dev/null &
  s3_pid=$!
fi
if ((WITH_GCS)); then
  "${GCS}" start >/dev/null &
  gcs_pid=$!
fi
if ((WITH_AZURE)); then
  "${AZURE}" start >/dev/null &
  azure_pid=$!
fi
start_rc=0
wait "${pulsar_pid}" || { start_rc=$?; log "ERROR: Pulsar did not start (exit ${start_rc})"; }
if ((WITH_S3)); then
  wait "${s3_pid}" || { start_rc=$?; log "ERROR: the S3 server did not start (exit ${start_rc})"; }
fi
if ((WITH_GCS)); then
  wait "${gcs_pid}" || { start_rc=$?; log "ERROR: the GCS emulator did not start (exit ${start_rc})"; }
fi
if ((WITH_AZURE)); then
  wait "${azure_pid}" || { start_rc=$?; log "ERROR: Azurite did not start (exit ${start_rc})"; }
fi
((start_rc == 0)) || exit "${start_rc}"
log "services up in $((SECONDS - t))s"

set -a
eval "$("${PULSAR}" env)"
((WITH_S3)) && eval "$("${S3}" env)"
((WITH_GCS)) && eval "$("${GCS}" env)"
((WITH_AZURE)) && eval "$("${AZURE}" env)"
set +a

# --- tests ---------------------------------------------------------------------
t=${SECONDS}
rc=0
# The tests that stop or freeze Pulsar run alone below, never alongside other packages.
# shellcheck disable=SC2086 # PACKAGES may list several packages
mapfile -t all_pkgs < <(go list -tags integration ${PACKAGES})
race_pkgs=() norace_pkgs=()
for p in "${all_pkgs[@]}"; do
  if [[ "$p" == "${NORACE_PKG}" ]]; then norace_pkgs+=("$p"); else race_pkgs+=("$p"); fi
done
if ((${#race_pkgs[@]})); then
  env -u TERRITORY_PULSAR_RESTART_TEST -u TERRITORY_PULSAR_PAUSE_TEST \
    go test "${RACE[@]}" -tags integration -count=1 -timeout "${TIMEOUT}" "$@" "${race_pkgs[@]}" || rc=$?
fi
if ((${#norace_pkgs[@]})); then
  env -u TERRITORY_PULSAR_RESTART_TEST -u TERRITORY_PULSAR_PAUSE_TEST \
    go test -tags integration -count=1 -timeout "${TIMEOUT}" "$@" "${norace_pkgs[@]}" || rc=$?
fi
log "go test ${PACKAGES}: exit ${rc} in $((SECONDS - t))s"

if [[ "${TERRITORY_PULSAR_RESTART_TEST:-}" == 1 ]]; then
  t=${SECONDS}
  rrc=0
  go test -tags integration -count=1 -timeout "${TIMEOUT}" -run '^TestDurabilityAcrossRestart$' -v ./runtime/pulsarlog/ || rrc=$?
  log "restart test: exit ${rrc} in $((SECONDS - t))s"
  ((rc != 0)) || rc=${rrc}
  if ((WITH_S3)); then
    t=${SECONDS}
    prc=0
    TERRITORY_PULSAR_PAUSE_TEST=1 go test "${RACE[@]}" -tags integration -count=1 -timeout "${TIMEOUT}" -run '^TestPulsarOutage$' -v ./cmd/territoryd/e2e/ || prc=$?
    log "pulsar outage test: exit ${prc} in $((SECONDS - t))s"
    ((rc != 0)) || rc=${prc}
  fi
fi

# --- differential fidelity against the real services -------------------------------
# (the simulated log against Pulsar, the simulated object store against S3; the ones
# against embedded etcd and a filesystem bucket run with the unit tests). Without -race:
# pulsar-client-go races with itself on the takeovers these sequences make.
if [[ "${TERRITORY_IT_FIDELITY:-1}" == 1 ]] && ((WITH_S3)); then
  t=${SECONDS}
  frc=0
  TERRITORY_FIDELITY_OUT="${ROOT}/out/fidelity" go test -tags integration -count=1 -timeout "${TIMEOUT}" \
    -run '^(TestLogFidelityPulsar|TestBlobFidelityS3)$' -v ./fidelity/ || frc=$?
  log "fidelity against Pulsar and S3: exit ${frc} in $((SECONDS - t))s (tables: out/fidelity/*.json)"
  ((rc != 0)) || rc=${frc}
fi

# --- sim chaos, short mode: a real cluster under one fault of every kind it makes real -----
# (kill -9, SIGSTOP/SIGCONT, restart, host loss, etcd cut, partition and slowness through
# toxiproxy, lease revocation), checked by the simulator's checks; about a minute. The seed
# changes daily (reproduce with TERRITORY_CHAOS_SEED and the replay file in out/chaos-short).
if [[ "${TERRITORY_IT_CHAOS:-1}" == 1 ]] && ((WITH_S3)); then
  t=${SECONDS}
  crc=0
  chaos_seed="${TERRITORY_CHAOS_SEED:-$((10#$(date -u +%j)))}"
  go run ./cmd/sim chaos --scenario short --seed "${chaos_seed}" --out "${ROOT}/out/chaos-short" || crc=$?
  log "sim chaos --scenario short --seed ${chaos_seed}: exit ${crc} in $((SECONDS - t))s (report: out/chaos-short/summary.md)"
  ((rc != 0)) || rc=${crc}
fi

# --- planted bugs caught against the real services ----------------------------------
if [[ "${TERRITORY_IT_MUTANTS:-1}" == 1 ]]; then
  t=${SECONDS}
  mrc=0
  MUTANTS_SELECT=services MUTANTS_OUT="${ROOT}/out/mutants-services" bash "${ROOT}/scripts/mutants.sh" || mrc=$?
  log "mutants needing services: exit ${mrc} in $((SECONDS - t))s"
  ((rc != 0)) || rc=${mrc}
fi
exit "${rc}"
