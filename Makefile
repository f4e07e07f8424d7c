# territory: a deterministic simulation testbed for a sharded, log-replicated
# connectome store. `make run` runs one seeded scenario; `make test` is what CI runs.

GO          ?= go
BIN         := $(CURDIR)/bin
STATICCHECK := $(BIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
SCENARIO    ?= basic
SEED        ?= 7
SWEEP_SEEDS ?= 50
OUT         := $(CURDIR)/out

.PHONY: run test lint unit sweep mutants test-integration bench fuzz proto clean connectome

run: ## run one seeded scenario and write its report under out/run
	$(GO) run ./cmd/sim run --scenario $(SCENARIO) --seed $(SEED) --report $(OUT)/run

test: lint unit sweep mutants test-integration ## everything CI checks

$(STATICCHECK):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK) ## formatting, vet, staticcheck, the sans-IO analyzer on model/
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) run ./tools/sansio/cmd/sansio -test=false ./model/...

connectome: ## fetch and verify the C. elegans edge list (pip download of cect, pinned SHA-256) into ~/.cache/territory: the connectome tests and scenario read it
	bash scripts/connectome.sh fetch

unit: connectome ## unit tests, the sans-IO check and the determinism test (20 seeds per scenario, run twice); ./runtime/... and ./cmd/... (where the goroutines are) under the race detector
	$(GO) test -count=1 $$($(GO) list ./... | grep -v -e '^territory/runtime/' -e '^territory/cmd/')
	$(GO) test -race -count=1 ./runtime/... ./cmd/...

sweep: connectome ## SWEEP_SEEDS seeds of every scenario in parallel; swarm.json, junit.xml and replays under out/sweep
	$(GO) build -o $(BIN)/sim ./cmd/sim
	mkdir -p $(OUT)
	$(BIN)/sim swarm --scenario all --seeds 1..$(SWEEP_SEEDS) --out $(OUT)/sweep --progress lines > $(OUT)/sweep.log || { tail -n 40 $(OUT)/sweep.log; exit 1; }
	tail -n 3 $(OUT)/sweep.log

mutants: ## the planted-bug suite: every mutation must be caught by the check it names (those needing real services run in test-integration)
	bash scripts/mutants-selftest.sh
	MUTANTS_SELECT=local bash scripts/mutants.sh

test-integration: connectome ## the runtime under -race against real Pulsar (3 bookies), S3, GCS and Azure emulators started by scripts/; absent services fail; the mutants that need them
	TERRITORY_PULSAR_RESTART_TEST=1 bash scripts/test-integration.sh

bench: ## speed figures: simulated seconds per wall second, events per second
	$(GO) test -run '^$$' -bench . -benchmem ./sim/ ./sim/kernel/ ./sim/replog/ ./linearizability/
	$(GO) run ./cmd/sim bench --scenario basic --seeds 20

proto: ## regenerate the transport's protobuf code with pinned tools
	bash proto/generate.sh

fuzz: ## fuzz the event decoder
	$(GO) test -run '^$$' -fuzz FuzzDecodeEvent -fuzztime 60s ./model/

clean:
	rm -rf $(BIN) $(OUT)
