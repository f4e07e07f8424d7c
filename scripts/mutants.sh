#!/usr/bin/env bash
# mutants.sh [PATCH...]: the planted-bug suite. Each patch in scripts/mutants/
# is applied to a temporary copy of the module (the production code has no
# switches for them); the copy's `sim` runs seeds of the scenarios the patch
# names, round-robin, until a check fails. A mutation that survives
# MUTANT_SEEDS seeds per scenario fails the suite.
#
# Prints one line per mutation and a table; writes out/mutants/mutants.json.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
max=${MUTANT_SEEDS:-100}
out=$root/out/mutants
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
patches=("$@")
if [ ${#patches[@]} -eq 0 ]; then patches=("$root"/scripts/mutants/*.patch); fi

json="["
survivors=0
printf '| mutation | caught | seeds | seconds | by | faults after shrink |\n|---|---|---|---|---|---|\n' > "$out/table.md"
for patch in "${patches[@]}"; do
  name=$(basename "$patch" .patch)
  scenarios=$(sed -n 's/^# scenarios: //p' "$patch")
  work=$tmp/$name
  mkdir -p "$work"
  (cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar cf -) | tar xf - -C "$work"
  if ! patch -s -p1 -d "$work" < "$patch"; then
    echo "mutants: $name: the patch no longer applies; regenerate it" >&2
    exit 2
  fi
  (cd "$work" && go build -o "$work/sim.bin" ./cmd/sim)
  start=$(date +%s%N)
  caught="" by="" seeds=0
  for seed in $(seq 1 "$max"); do
    for scenario in $scenarios; do
      seeds=$((seeds + 1))
      set +e
      "$work/sim.bin" run --scenario "$scenario" --seed "$seed" --replay-dir "$work/replays" > "$work/last.txt" 2>&1
      rc=$?
      set -e
      if [ "$rc" -ne 0 ]; then
        caught="$scenario/$seed"
        if [ "$rc" -eq 1 ]; then
          by=$(tail -n 1 "$work/last.txt" | sed -E 's/.*linearizable=([a-z]+) invariants=([^ ]+)( logcheck=[^ ]+)?.*/linearizable=\1 invariants=\2\3/')
        elif grep -q '^panic' "$work/last.txt"; then
          by="assertion: $(grep -m1 '^panic' "$work/last.txt" | cut -c1-80)"
        else
          echo "mutants: $name: the run itself failed (not a check):" >&2
          cat "$work/last.txt" >&2
          exit 2
        fi
        break 2
      fi
    done
  done
  secs=$(( ($(date +%s%N) - start) / 1000000 ))
  secs=$(printf '%d.%03d' $((secs / 1000)) $((secs % 1000)))
  shrunk="-"
  if [ -n "$caught" ] && [ "$rc" -eq 1 ] && [ "${MUTANT_SHRINK:-1}" = 1 ]; then
    # How small does the failing schedule get? (sim shrink, bounded trials)
    replay="$work/replays/${caught%/*}-${caught#*/}.json"
    if "$work/sim.bin" shrink "$replay" --budget 120 > "$work/shrink.txt" 2>&1; then
      shrunk=$(sed -n -E 's/^faults ([0-9]+) -> ([0-9]+).*/\1 -> \2/p' "$work/shrink.txt" | head -n 1)
      [ -n "$shrunk" ] || shrunk="0 -> 0"
    fi
  fi
  if [ -n "$caught" ]; then
    echo "mutant $name: caught at $caught after $seeds seeds, ${secs}s ($by); faults after shrink: $shrunk"
    printf '| %s | yes (%s) | %d | %s | %s | %s |\n' "$name" "$caught" "$seeds" "$secs" "$by" "$shrunk" >> "$out/table.md"
  else
    survivors=$((survivors + 1))
    echo "mutant $name: SURVIVED $seeds seeds, ${secs}s"
    printf '| %s | **no** | %d | %s | | |\n' "$name" "$seeds" "$secs" >> "$out/table.md"
  fi
  json="$json{\"mutation\":\"$name\",\"caught\":$([ -n "$caught" ] && echo true || echo false),\"at\":\"$caught\",\"seeds\":$seeds,\"seconds\":$secs,\"shrunk_faults\":\"$shrunk\"},"
done
echo "${json%,}]" > "$out/mutants.json"
cat "$out/table.md"
total=${#patches[@]}
echo "mutants: $((total - survivors)) passed, $survivors failed"
[ "$survivors" -eq 0 ]
