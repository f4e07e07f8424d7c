#!/usr/bin/env bash
# mutants.sh [PATCH...]: the planted-bug suite. Each patch in scripts/mutants/
# is applied to a temporary copy of the module (the production code has no
# switches for them) and must be caught by the check it names.
#
# Header lines of a patch (before the diff):
#
#   # mutation: NAME
#   # expect: CHECK[,CHECK...]  the check(s) expected to catch it: an invariant
#                               name (no-acked-write-lost, ...), linearizable,
#                               model-assertion (a panic raised inside model/),
#                               or, for a # test: patch, a Go test name
#   # scenarios: A B ...        a sim patch: `sim run` seeds of these scenarios,
#                               round-robin, until a check fails
#   # test: GO-TEST-ARGS        a test patch: `go test -count=1 GO-TEST-ARGS` in
#                               the copy must fail (and pass on the unpatched copy)
#   # services: pulsar s3 ...   the real services a test patch needs (their
#                               TERRITORY_* variables must be set; see README.md)
#   # <anything else>           the description
#
# What counts as a catch: a failing summary line (linearizable=violation, a
# violated invariant, or any other field =violation), a panic whose first frame
# is in territory/model (an assertion of the core), or, for a test patch, a
# failing Go test. NOT a catch: linearizable=unknown (porcupine timed out), a
# panic outside model/, an internal error of the simulator (exit 2): such runs
# are counted and the search goes on with the next seed.
#
# Verdicts: "caught" (by an expected check), "caught-by-other" (by a check the
# patch did not name: passes, flagged in the table; fails under
# MUTANTS_STRICT=1), "survived" (fails), "no-expect" (no # expect: line:
# fails), "not-run" (a test patch whose services are absent: fails under
# TERRITORY_REQUIRE_SERVICES=1). A patch that no longer applies, does not
# build, or whose test fails without the mutation stops the suite (exit 2).
#
# Environment: MUTANT_SEEDS (seeds per scenario, default 100), MUTANT_SHRINK
# (1: shrink each caught sim mutation's replay, default 1), MUTANTS_SELECT
# (all | local: patches needing no service | services: only those needing
# one; default all), MUTANTS_OUT (default out/mutants), MUTANTS_STRICT.
#
# Prints one line per mutation and a table (MUTANTS_OUT/table.md); writes
# MUTANTS_OUT/mutants.json.
set -euo pipefail
set -f # patch headers and summary lines are split on blanks, never globbed
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "mutants: $*" >&2; exit 2; }

# esc S: S as the inside of a JSON string.
esc() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '%s' "$s"; }

header() { sed -n "s/^# $1: //p" "$2" | head -n 1; }

# copy_tree DIR: the module's files (tracked and untracked, not ignored) into DIR.
# Outside a git work tree (an exported copy): everything but out/ and bin/.
copy_tree() {
  mkdir -p "$1"
  if git -C "$root" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
    (cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar cf -) | tar xf - -C "$1"
  else
    (cd "$root" && tar cf - --exclude=./out --exclude=./bin .) | tar xf - -C "$1"
  fi
}

# checks_of_line LINE: the checks a summary line says failed. invariants=a,b
# names checks a and b; logcheck=x,y names logcheck:x and logcheck:y (an
# expectation "logcheck" matches any of them); any field =violation names the
# field (linearizable=violation: linearizable). linearizable=unknown, a
# porcupine timeout, names nothing.
checks_of_line() {
  local kv k v n found=""
  for kv in $1; do
    k=${kv%%=*} v=${kv#*=}
    [ "$k" = "$kv" ] && continue
    case "$k" in
      invariants) [ "$v" != ok ] && found="$found ${v//,/ }" ;;
      logcheck)
        if [ "$v" = violation ]; then
          found="$found logcheck"
        elif [ "$v" != ok ]; then
          for n in ${v//,/ }; do found="$found logcheck:$n"; done
        fi
        ;;
      *) [ "$v" = violation ] && found="$found $k" ;;
    esac
  done
  echo $found
}

# panic_frame FILE: the first frame of the panicking goroutine that is neither
# the runtime's nor the testing package's (which re-panics a test's panic).
panic_frame() {
  awk '/^goroutine [0-9]+ .*\[running\]/ { g = 1; next }
       g && /^[^\t]/ && !/^(runtime\.|panic\(|testing\.)/ { print; exit }' "$1"
}

# expected_in EXPECT CAUGHT: does any expected check appear among the caught ones?
# A test name also matches its subtests (TestX matches TestX/case), a checker
# its parts (logcheck matches logcheck:log-answer).
expected_in() {
  local e c
  for e in ${1//,/ }; do
    for c in $2; do
      if [ "$c" = "$e" ] || [ "${c#"$e"/}" != "$c" ] || [ "${c#"$e":}" != "$c" ]; then return 0; fi
    done
  done
  return 1
}

services_env() {
  case "$1" in
    pulsar) echo TERRITORY_PULSAR_URL ;;
    s3) echo TERRITORY_S3_ENDPOINT ;;
    gcs) echo TERRITORY_GCS_ENDPOINT ;;
    azure) echo TERRITORY_AZURE_ENDPOINT ;;
    *) return 1 ;;
  esac
}

# The last sim patch's search: sets caught, by, rc, seeds, unknown, errors, panics.
search_sim() {
  local work=$1 scenarios=$2 seed scenario line frame checks
  (cd "$work" && go build -trimpath -o "$work/sim.bin" ./cmd/sim) || die "$name: the mutated tree does not build"
  for seed in $(seq 1 "$max"); do
    for scenario in $scenarios; do
      seeds=$((seeds + 1))
      set +e
      "$work/sim.bin" run --scenario "$scenario" --seed "$seed" --replay-dir "$work/replays" > "$work/last.txt" 2>&1
      rc=$?
      set -e
      [ "$rc" -eq 0 ] && continue
      line=$(grep -E '^(PASS|FAIL) scenario=' "$work/last.txt" | tail -n 1 || true)
      if [ "$rc" -eq 1 ] && [ -n "$line" ]; then
        checks=$(checks_of_line "$line")
        if [ -n "$checks" ]; then
          caught="$scenario/$seed" by=$checks
          return
        fi
        unknown=$((unknown + 1)) # linearizable=unknown and nothing else: not a catch
        continue
      fi
      if grep -q '^panic: ' "$work/last.txt"; then
        frame=$(panic_frame "$work/last.txt")
        if [ "${frame#territory/model.}" != "$frame" ]; then
          caught="$scenario/$seed" by=model-assertion
          detail="$(grep -m1 '^panic: ' "$work/last.txt" | cut -c1-100) at ${frame%%(*}"
          return
        fi
        panics=$((panics + 1))
        [ -n "$detail" ] || detail="panic outside model/ (not a catch): $(grep -m1 '^panic: ' "$work/last.txt" | cut -c1-80) at ${frame%%(*}"
        continue
      fi
      errors=$((errors + 1))
      [ -n "$detail" ] || detail="internal error (not a catch): $(tail -n 1 "$work/last.txt" | cut -c1-100)"
    done
  done
}

# go test on the pristine copy, once per argument list: the test must pass
# without the mutation, or its failure proves nothing.
declare -A baseline=()
pristine=""
check_baseline() {
  local args=$1
  [ -n "${baseline[$args]:-}" ] && return
  if [ -z "$pristine" ]; then
    pristine=$tmp/.pristine
    copy_tree "$pristine"
  fi
  eval "set -- $args"
  if ! (cd "$pristine" && go test -trimpath -count=1 "$@") > "$tmp/baseline.txt" 2>&1; then
    tail -n 30 "$tmp/baseline.txt" >&2
    die "$name: go test $args fails without the mutation; fix the test or its services first"
  fi
  baseline[$args]=ok
}

search_test() {
  local work=$1 args=$2 failing frame
  check_baseline "$args"
  eval "set -- $args"
  seeds=1
  set +e
  (cd "$work" && go test -trimpath -count=1 "$@") > "$work/test.txt" 2>&1
  rc=$?
  set -e
  if grep -qE '\[(build|setup) failed\]|^# territory' "$work/test.txt"; then
    tail -n 30 "$work/test.txt" >&2
    die "$name: the mutated tree does not build"
  fi
  [ "$rc" -eq 0 ] && return
  if grep -q '^panic: ' "$work/test.txt"; then
    frame=$(panic_frame "$work/test.txt")
    if [ "${frame#territory/model.}" != "$frame" ]; then
      caught=test by=model-assertion
      return
    fi
    panics=1
    detail="panic outside model/ (not a catch): $(grep -m1 '^panic: ' "$work/test.txt" | cut -c1-80) at ${frame%%(*}"
    return
  fi
  failing=$(sed -n -E 's/^ *--- FAIL: ([^ ]+).*/\1/p' "$work/test.txt" | tr '\n' ' ')
  if [ -n "$failing" ]; then
    caught=test by=$failing
    return
  fi
  errors=1
  detail="go test failed without a failing test (not a catch): $(tail -n 1 "$work/test.txt" | cut -c1-100)"
}

# Sourced (scripts/mutants-selftest.sh): the functions only.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then return 0; fi

max=${MUTANT_SEEDS:-100}
select=${MUTANTS_SELECT:-all}
out=${MUTANTS_OUT:-$root/out/mutants}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
patches=("$@")
if [ ${#patches[@]} -eq 0 ]; then
  set +f
  patches=("$root"/scripts/mutants/*.patch)
  set -f
fi

json="["
failed=0
flagged=0
ran=0
printf '| mutation | expected | caught by | verdict | at | seeds | seconds | faults after shrink | note |\n|---|---|---|---|---|---|---|---|---|\n' > "$out/table.md"
for patch in "${patches[@]}"; do
  name=$(basename "$patch" .patch)
  expect=$(header expect "$patch")
  scenarios=$(header scenarios "$patch")
  testargs=$(header test "$patch")
  services=$(header services "$patch")
  case "$select" in
    local) [ -n "$services" ] && continue ;;
    services) [ -z "$services" ] && continue ;;
    all) ;;
    *) die "MUTANTS_SELECT=$select: want all, local or services" ;;
  esac
  [ -n "$scenarios" ] || [ -n "$testargs" ] || die "$name: neither a # scenarios: nor a # test: line"
  [ -n "$scenarios" ] && [ -n "$testargs" ] && die "$name: both a # scenarios: and a # test: line"
  ran=$((ran + 1))
  caught="" by="" rc=0 seeds=0 unknown=0 errors=0 panics=0 detail="" shrunk="-" verdict=""
  start=$(date +%s%N)
  missing=""
  for s in $services; do
    v=$(services_env "$s") || die "$name: unknown service $s (pulsar, s3, gcs, azure)"
    [ -n "${!v:-}" ] || missing="$missing $s"
  done
  bad=0
  if [ -n "$missing" ]; then
    verdict=not-run
    detail="needs${missing} (run it under scripts/test-integration.sh)"
    [ "${TERRITORY_REQUIRE_SERVICES:-}" = 1 ] && bad=1
  else
    work=$tmp/$name
    copy_tree "$work"
    patch -s -p1 -d "$work" < "$patch" || die "$name: the patch no longer applies; regenerate it (python3 scripts/mutants/generate.py)"
    if [ -n "$scenarios" ]; then
      search_sim "$work" "$scenarios"
    else
      search_test "$work" "$testargs"
    fi
    if [ -n "$caught" ] && [ -n "$scenarios" ] && [ "$by" != model-assertion ] && [ "${MUTANT_SHRINK:-1}" = 1 ]; then
      # How small does the failing schedule get? (sim shrink, bounded trials)
      replay="$work/replays/${caught%/*}-${caught#*/}.json"
      if "$work/sim.bin" shrink "$replay" --budget 120 > "$work/shrink.txt" 2>&1; then
        shrunk=$(sed -n -E 's/^faults ([0-9]+) -> ([0-9]+).*/\1 -> \2/p' "$work/shrink.txt" | head -n 1)
        [ -n "$shrunk" ] || shrunk="0 -> 0"
      fi
    fi
    if [ -z "$caught" ]; then
      verdict=survived bad=1
    elif [ -z "$expect" ]; then
      verdict=caught
    elif expected_in "$expect" "$by"; then
      verdict=caught
    else
      verdict=caught-by-other
      flagged=$((flagged + 1))
      [ "${MUTANTS_STRICT:-}" = 1 ] && bad=1
    fi
  fi
  if [ -z "$expect" ]; then
    verdict="no-expect ($verdict)" bad=1 # a patch must name the check expected to catch it
  fi
  failed=$((failed + bad))
  secs=$(( ($(date +%s%N) - start) / 1000000 ))
  secs=$(printf '%d.%03d' $((secs / 1000)) $((secs % 1000)))
  note=$detail
  [ "$unknown" -gt 0 ] && note="$note; $unknown runs linearizable=unknown (not catches)"
  [ "$panics" -gt 1 ] && note="$note; $panics panics outside model/"
  [ "$errors" -gt 1 ] && note="$note; $errors internal errors"
  note=${note#; }
  echo "mutant $name: $verdict${caught:+ at $caught} after $seeds runs, ${secs}s (expected: ${expect:-none}; caught by: ${by:-nothing})${note:+; $note}; faults after shrink: $shrunk"
  printf '| %s | %s | %s | %s | %s | %d | %s | %s | %s |\n' "$name" "${expect:-**none**}" "${by:--}" \
    "$([ "$verdict" = caught ] && echo caught || echo "**$verdict**")" "${caught:--}" "$seeds" "$secs" "$shrunk" "${note//|//}" >> "$out/table.md"
  json="$json{\"mutation\":\"$name\",\"expected\":\"$(esc "$expect")\",\"caught_by\":\"$(esc "$by")\",\"verdict\":\"$verdict\",\"caught\":$([ -n "$caught" ] && echo true || echo false),\"at\":\"$caught\",\"runs\":$seeds,\"seconds\":$secs,\"unknown_runs\":$unknown,\"shrunk_faults\":\"$shrunk\",\"note\":\"$(esc "$note")\"},"
done
echo "${json%,}]" > "$out/mutants.json"
cat "$out/table.md"
echo "mutants: $ran run, $((ran - failed)) passed ($flagged caught by another check than expected), $failed failed"
[ "$failed" -eq 0 ]
