#!/usr/bin/env bash
# sweep.sh SIM SEEDS OUT: runs seeds 1..SEEDS of every scenario, writes each
# report under OUT/<scenario>/<seed>/, and fails if any seed fails.
set -euo pipefail
sim=$1 seeds=$2 out=$3
rm -rf "$out"
failed=0 total=0
for scenario in $("$sim" list | awk '{print $1}'); do
  for seed in $(seq 1 "$seeds"); do
    total=$((total + 1))
    if ! line=$("$sim" run --scenario "$scenario" --seed "$seed" --report "$out/$scenario/$seed" | tail -n 1); then
      failed=$((failed + 1))
      echo "$line"
      echo "reproduce: $sim replay $out/$scenario/$seed/replay.json"
    fi
  done
  echo "sweep: $scenario seeds 1..$seeds done"
done
echo "sweep: $((total - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
