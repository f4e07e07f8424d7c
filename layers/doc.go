// Package layers has no code of its own: its test holds the module to the
// layers of DESIGN.md section 7. Each package belongs to one layer, and a
// layer may import only the layers it lists, so no import runs back up:
//
//	core            model/..., proto/..., faults, linearizability/...
//	simulator       sim, sim/...                 (core; no file I/O, no network)
//	scenarios       scenarios/...                (simulator, core)
//	replayfile      replayfile                   (simulator, core)
//	reports         reports                      (replayfile, simulator, core)
//	shrink          shrink                       (replayfile, simulator, core)
//	swarm           swarm                        (shrink, reports, scenarios, replayfile, simulator, core)
//	runtime         runtime/...                  (core; never the simulator)
//	commands        cmd/...                      (anything)
//
// External test packages (package x_test) are the users of x and may import
// from above it; the rule is about the code that ships.
package layers
