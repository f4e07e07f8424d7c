#!/usr/bin/env bash
# mutants-selftest.sh: the planted-violation test of the mutation suite itself.
# mutants.sh must judge what a run found correctly: a failing check is a catch,
# a porcupine timeout or a panic outside model/ is not, a panic in model/ is,
# an unexpected catcher is flagged, a missing # expect: line fails. Part of
# `make mutants`; takes about a minute (it builds and tests small packages in
# copies of the tree).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1" >&2; fails=$((fails + 1)); }

# ---- the judging functions, on fixtures ----
# shellcheck source=mutants.sh
source "$here/mutants.sh"
set +e
t() { # name got want
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi
}
t "violation is a catch" "$(checks_of_line 'FAIL scenario=basic seed=1 trace=ab linearizable=violation invariants=ok ops=3')" linearizable
t "invariants are catches" "$(checks_of_line 'FAIL scenario=basic seed=1 linearizable=ok invariants=blob-retention,degree-policy ops=3')" "blob-retention degree-policy"
t "unknown is not a catch" "$(checks_of_line 'FAIL scenario=basic seed=1 linearizable=unknown invariants=ok ops=3')" ""
t "unknown beside an invariant" "$(checks_of_line 'FAIL scenario=basic seed=1 linearizable=unknown invariants=liveness ops=3')" liveness
t "the log checker's parts" "$(checks_of_line 'FAIL scenario=basic seed=1 linearizable=ok invariants=ok logcheck=log-answer,log-read ops=3')" "logcheck:log-answer logcheck:log-read"
t "logcheck ok" "$(checks_of_line 'PASS scenario=basic seed=1 linearizable=ok invariants=ok logcheck=ok ops=3')" ""
t "a new check field" "$(checks_of_line 'FAIL scenario=basic seed=1 linearizable=ok logcheck=violation invariants=ok')" logcheck
t "a pass names nothing" "$(checks_of_line 'PASS scenario=basic seed=1 linearizable=ok invariants=ok')" ""
expected_in "a,b" "c b" && ok "expected among several" || bad "expected among several"
expected_in "TestX" "TestX/case" && ok "a subtest matches its test" || bad "a subtest matches its test"
expected_in "logcheck" "logcheck:log-answer" && ok "a checker matches its parts" || bad "a checker matches its parts"
expected_in "logcheck:log-read" "logcheck:log-answer" && bad "one part matched another" || ok "one part does not match another"
expected_in "TestX" "TestXY" && bad "TestX matched TestXY" || ok "a longer test name does not match"
expected_in "" "linearizable" && bad "no expectation matched" || ok "no expectation matches nothing"
fx=$(mktemp)
printf 'panic: planted\n\ngoroutine 1 [running]:\npanic({0x1, 0x2})\n\t/go/src/runtime/panic.go:1 +0x1\nterritory/model.(*subgraph).apply(...)\n\t/x/model/subgraph.go:9\nterritory/sim.(*World).step()\n' > "$fx"
t "panic frame in model" "$(panic_frame "$fx")" "territory/model.(*subgraph).apply(...)"
printf 'panic: runtime error\n\ngoroutine 7 gp=0x1 m=0 [running]:\ntesting.tRunner.func1.2({0x1})\n\t/go/testing.go:1\npanic({0x1})\nruntime.panicmem()\nterritory/sim/replog.(*Log).append(0x0)\n' > "$fx"
t "panic frame outside model, testing and runtime skipped" "$(panic_frame "$fx")" "territory/sim/replog.(*Log).append(0x0)"
rm -f "$fx"
set -e

# ---- end to end: planted patches that add files (so they apply to any tree) ----
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# newfile PATCH PATH CONTENT: append a diff creating PATH to PATCH.
newfile() {
  local n
  n=$(printf '%s\n' "$3" | wc -l)
  { echo "--- /dev/null"; echo "+++ b/$2"; echo "@@ -0,0 +1,$n @@"; printf '%s\n' "$3" | sed 's/^/+/'; } >> "$1"
}
planted_fail=$'package faults\n\nimport "testing"\n\nfunc TestPlantedSelftest(t *testing.T) { t.Fatal("planted") }'
planted_pass=$'package faults\n\nimport "testing"\n\nfunc TestPlantedSelftest(t *testing.T) {}'
model_panic=$'package model\n\nfunc plantedSelftest() { panic("planted assertion") }'
model_test=$'package model\n\nimport "testing"\n\nfunc TestPlantedSelftest(t *testing.T) { plantedSelftest() }'
faults_panic=$'package faults\n\nimport "testing"\n\nfunc TestPlantedSelftest(t *testing.T) { var m map[int]int; m[1] = 1 }'
mk() { # name expect testpkg then newfile pairs
  local p=$dir/$1.patch
  { echo "# mutation: $1"; [ -n "$2" ] && echo "# expect: $2"; echo "# test: -run ^TestPlantedSelftest\$ ./$3/"; echo "# self-test"; } > "$p"
}
mk caught TestPlantedSelftest faults; newfile "$dir/caught.patch" faults/zz_planted_test.go "$planted_fail"
mk other TestSomethingElse faults; newfile "$dir/other.patch" faults/zz_planted_test.go "$planted_fail"
mk survives TestPlantedSelftest faults; newfile "$dir/survives.patch" faults/zz_planted_test.go "$planted_pass"
mk noexpect "" faults; newfile "$dir/noexpect.patch" faults/zz_planted_test.go "$planted_fail"
mk modelpanic model-assertion model; newfile "$dir/modelpanic.patch" model/zz_planted.go "$model_panic"; newfile "$dir/modelpanic.patch" model/zz_planted_test.go "$model_test"
mk outsidepanic model-assertion faults; newfile "$dir/outsidepanic.patch" faults/zz_planted_test.go "$faults_panic"
{ echo "# mutation: needs-pulsar"; echo "# expect: TestPlantedSelftest"; echo "# test: -run ^TestPlantedSelftest\$ ./faults/"; echo "# services: pulsar"; } > "$dir/needs-pulsar.patch"
newfile "$dir/needs-pulsar.patch" faults/zz_planted_test.go "$planted_fail"

suite() { # want-exit want-verdict patch [env...]
  local want=$1 verdict=$2 p=$3 rc=0
  shift 3
  env "$@" MUTANTS_OUT="$dir/out" bash "$here/mutants.sh" "$p" > "$dir/log" 2>&1 || rc=$?
  got=$(sed -n 's/.*"verdict":"\([^"]*\)".*/\1/p' "$dir/out/mutants.json" 2>/dev/null)
  if [ "$rc" = "$want" ] && [ "$got" = "$verdict" ]; then
    ok "suite $(basename "$p" .patch) $*: exit $rc, $got"
  else
    bad "suite $(basename "$p" .patch) $*: exit $rc verdict '$got', want exit $want verdict '$verdict'"
    tail -n 5 "$dir/log" >&2
  fi
}
suite 0 caught "$dir/caught.patch"
suite 0 caught-by-other "$dir/other.patch"
suite 1 caught-by-other "$dir/other.patch" MUTANTS_STRICT=1
suite 1 survived "$dir/survives.patch"
suite 1 "no-expect (caught)" "$dir/noexpect.patch"
suite 0 caught "$dir/modelpanic.patch"
suite 1 survived "$dir/outsidepanic.patch"
suite 0 not-run "$dir/needs-pulsar.patch" TERRITORY_PULSAR_URL=
suite 1 not-run "$dir/needs-pulsar.patch" TERRITORY_PULSAR_URL= TERRITORY_REQUIRE_SERVICES=1

if [ "$fails" -gt 0 ]; then
  echo "mutants-selftest: $fails failed" >&2
  exit 1
fi
echo "mutants-selftest: all passed"
