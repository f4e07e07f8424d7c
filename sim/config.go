// Package sim is the simulated world: it runs the protocol core (territories
// and clients from model/) against simulated services (coordination store,
// replicated log over bookies, object store) connected by a simulated network,
// injects a fault schedule, records a linearizability history in virtual time,
// and checks invariants as it goes. One seed gives one exact execution.
package sim

import (
	"fmt"

	"territory/faults"
	"territory/model"
	"territory/sim/netsim"
	"territory/sim/pulsartopic"
	"territory/sim/replog"
)

// Config is everything one run depends on besides the seed. Scenarios build
// it; a replay file carries it.
type Config struct {
	Scenario    string            `json:"scenario"`
	DurationMs  int64             `json:"duration_ms"` // the workload runs this long
	DrainMs     int64             `json:"drain_ms"`    // then this long with no new operations, to let every operation finish
	Territories int               `json:"territories"`
	Subgraphs   uint32            `json:"subgraphs"`
	Clients     int               `json:"clients"`
	Policy      model.Policy      `json:"policy"`
	Net         netsim.LinkConfig `json:"net"`
	Log         replog.Config     `json:"log"`
	// LogBackend selects the log service: LogBookies (sim/replog, the
	// default) or LogTopic (model/logfence over sim/pulsartopic, configured
	// by Topic). See sim/log_topic.go.
	LogBackend string             `json:"log_backend,omitempty"`
	Topic      pulsartopic.Config `json:"topic,omitempty"`
	CoordMinUs int64              `json:"coord_latency_min_us"`
	CoordMaxUs int64              `json:"coord_latency_max_us"`
	BlobMinUs  int64              `json:"blob_latency_min_us"`
	BlobMaxUs  int64              `json:"blob_latency_max_us"`
	Workload   Workload           `json:"workload"`
	Schedule   faults.Schedule    `json:"schedule"`
	LivenessMs int64              `json:"liveness_bound_ms"` // after the last fault heals, every subgraph is served within this
	CheckEvery int64              `json:"check_every_ms"`    // period of the running state-versus-log check
	MaxSteps   uint64             `json:"max_steps"`
	Territory  TerritoryOverrides `json:"territory"`
	Manager    ManagerOverrides   `json:"manager"`
	Progress   ProgressBounds     `json:"progress"`
	// Egress: egress nodes e1..eN (the log egress service, one leading) and
	// a proxy in every territory, over the simulated egress topic "estream"
	// (sim/egress.go). 0: none.
	Egress int `json:"egress,omitempty"`
	// EgressLagMs bounds a proxy's lag once faults heal (0: 3 s).
	EgressLagMs int64 `json:"egress_lag_ms,omitempty"`
	// Migration: phased migrations and the faults aimed at their steps
	// (sim/migration_world.go). Zero: none.
	Migration MigrationConfig `json:"migration,omitempty"`
}

// ProgressBounds are the progress check's limits (zero: the default).
//
// After the last fault heals plus BoundMs, the run is cut into windows of
// WindowMs until the workload stops (the workload runs at least one window
// past that point): in each, every client that runs through it completes at
// least MinOps operations with a final answer from the store, and each
// client's last final answer is at most WindowMs old when the workload stops.
// A run without faults has no unknown outcome at all. Over the whole run,
// unknown outcomes, busy answers and unavailable answers (final ones, and the
// retried replies clients saw) are bounded, in parts per million of the
// operations.
type ProgressBounds struct {
	BoundMs             int64 `json:"bound_ms,omitempty"`                   // default: the liveness bound
	WindowMs            int64 `json:"window_ms,omitempty"`                  // default 5 s
	MinOps              int   `json:"min_ops,omitempty"`                    // default 25 (a client answers about 125 in 5 s)
	MaxUnknownPM        int64 `json:"max_unknown_pm,omitempty"`             // default 1%
	MaxBusyPM           int64 `json:"max_busy_pm,omitempty"`                // final busy answers; default 0.1%
	MaxUnavailablePM    int64 `json:"max_unavailable_pm,omitempty"`         // final unavailable answers; default 0.1%
	MaxBusyRepliesPM    int64 `json:"max_busy_replies_pm,omitempty"`        // retried busy replies seen; default 10%
	MaxUnavailRepliesPM int64 `json:"max_unavailable_replies_pm,omitempty"` // retried unavailable replies seen; default 10%
}

// ProgressLimits are the bounds with the defaults filled in.
func (c *Config) ProgressLimits() ProgressBounds {
	p := c.Progress
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&p.BoundMs, c.LivenessMs)
	def(&p.WindowMs, 5_000)
	if p.MinOps <= 0 {
		p.MinOps = 25
	}
	def(&p.MaxUnknownPM, 10_000)
	def(&p.MaxBusyPM, 1_000)
	def(&p.MaxUnavailablePM, 1_000)
	def(&p.MaxBusyRepliesPM, 100_000)
	def(&p.MaxUnavailRepliesPM, 100_000)
	return p
}

// HealedMs is when progress is due: the last fault's end plus the bound.
func (c *Config) HealedMs() int64 {
	return max(c.Schedule.LastEndMs(), c.Migration.faultsEndMs()) + c.ProgressLimits().BoundMs
}

// IssueEndMs is when clients stop issuing operations: the workload's duration,
// or one progress window after HealedMs if that is later (so that progress
// after the faults heal can be judged).
func (c *Config) IssueEndMs() int64 {
	return max(c.DurationMs, c.HealedMs()+c.ProgressLimits().WindowMs)
}

// ManagerOverrides tunes the control plane for a scenario (zero: default).
type ManagerOverrides struct {
	HostLossMs    int64 `json:"host_loss_ms,omitempty"`
	GraceMs       int64 `json:"grace_ms,omitempty"`
	StaleUploadMs int64 `json:"stale_upload_ms,omitempty"`
	OrphanMs      int64 `json:"orphan_ms,omitempty"`
}

func (o ManagerOverrides) apply(c *model.ManagerConfig) {
	if o.HostLossMs > 0 {
		c.HostLossMs = o.HostLossMs
	}
	if o.GraceMs > 0 {
		c.GraceMs = o.GraceMs
	}
	if o.StaleUploadMs > 0 {
		c.StaleUploadMs = o.StaleUploadMs
	}
	if o.OrphanMs > 0 {
		c.OrphanMs = o.OrphanMs
	}
}

// TerritoryOverrides tunes the territory state machine for a scenario (zero: default).
type TerritoryOverrides struct {
	QueueLimit    int   `json:"queue_limit,omitempty"`
	MigChunkBytes int   `json:"mig_chunk_bytes,omitempty"`
	SagaTimeoutMs int64 `json:"saga_timeout_ms,omitempty"`
}

// SagaTimeoutMs is the territories' saga timeout, the default filled in.
func (c *Config) SagaTimeoutMs() int64 {
	if c.Territory.SagaTimeoutMs > 0 {
		return c.Territory.SagaTimeoutMs
	}
	return model.DefaultTerritoryConfig(1, 1).SagaTimeoutMs
}

// Workload is the client workload: each client keeps InFlight operations
// outstanding, thinking between them.
type Workload struct {
	Neurons  int `json:"neurons"` // neuron ids 1..Neurons
	InFlight int `json:"in_flight"`
	// WatchingClients: clients c1..cN keep their route caches from watches;
	// the others, like production clients, have none and learn of a moved
	// subgraph only from an answer or a timeout.
	WatchingClients int   `json:"watching_clients"`
	ThinkMinUs      int64 `json:"think_min_us"`
	ThinkMaxUs      int64 `json:"think_max_us"`
	MaxOps          int   `json:"max_ops"` // 0: no limit; shrinking lowers it
	Mix             OpMix `json:"mix"`
	// CrossPM: parts per million of synapse operations whose post is drawn
	// from any subgraph (a cross-subgraph connect runs the handshake saga);
	// the others pair neurons of one subgraph. 0: 5%.
	CrossPM int64 `json:"cross_pm,omitempty"`
	// StalePM: parts per million of reads that are stale reads
	// (model/stale_read.go). Each client's home is territory t(i mod N).
	StalePM int64 `json:"stale_pm,omitempty"`
	// ResendPM: parts per million of a client's operations that send again,
	// under its first event_uuid, a cross-subgraph connect the client
	// finished more than the dedup window ago (as territoryd import's
	// re-run does): a second saga under an id whose first saga's late
	// messages may still be about (model.SagaInstanceID keeps them apart).
	ResendPM int64 `json:"resend_pm,omitempty"`
	// Graph, if set, is the neurons and synapses to draw from (Neurons must
	// equal len(Graph.Neurons); CrossPM does not apply: the graph's own
	// synapses decide which connects cross subgraphs).
	Graph *Graph `json:"graph,omitempty"`
}

// OpMix weighs the operations of the workload.
type OpMix struct {
	Create      int `json:"create"`
	Stimulate   int `json:"stimulate"`
	ReadNeuron  int `json:"read_neuron"`
	Connect     int `json:"connect"`
	Adjust      int `json:"adjust"`
	Prune       int `json:"prune"`
	ReadSynapse int `json:"read_synapse"`
}

func (m OpMix) total() int {
	return m.Create + m.Stimulate + m.ReadNeuron + m.Connect + m.Adjust + m.Prune + m.ReadSynapse
}

// Host names: territories t1..tN, clients c1..cM, and the service endpoints.
const (
	ManagerHostName = "m1"
	CoordHostName   = "coord"
	LogHostName     = "log"
	BlobHostName    = "blob"
	EgressTopicName = "estream"
)

// Topology names the hosts a fault schedule may refer to.
func (c *Config) Topology() faults.Topology {
	return faults.Topology{Hosts: c.HostNames(), Bookies: c.Log.Bookies}
}

// TerritoryNames, ClientNames and HostNames list hosts by name.
func (c *Config) TerritoryNames() []string { return names("t", c.Territories) }
func (c *Config) ClientNames() []string    { return names("c", c.Clients) }
func (c *Config) EgressNames() []string    { return names("e", c.Egress) }
func (c *Config) HostNames() []string {
	hosts := append(append(c.TerritoryNames(), c.ClientNames()...), ManagerHostName, CoordHostName, LogHostName, BlobHostName)
	if c.Egress > 0 {
		hosts = append(append(hosts, c.EgressNames()...), EgressTopicName)
	}
	return hosts
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i+1)
	}
	return out
}

// Validate reports a configuration that cannot run, naming the field.
func (c *Config) Validate() error {
	switch {
	case c.DurationMs <= 0:
		return fmt.Errorf("config %s: duration_ms must be positive", c.Scenario)
	case c.DrainMs < 0:
		return fmt.Errorf("config %s: drain_ms must not be negative", c.Scenario)
	case c.Territories <= 0 || c.Territories > 256:
		return fmt.Errorf("config %s: territories %d not in 1..256", c.Scenario, c.Territories)
	case c.Subgraphs == 0 || c.Subgraphs > 16384:
		return fmt.Errorf("config %s: subgraphs %d not in 1..16384", c.Scenario, c.Subgraphs)
	case c.Clients <= 0 || c.Clients > 1024:
		return fmt.Errorf("config %s: clients %d not in 1..1024", c.Scenario, c.Clients)
	case c.Workload.Neurons <= 0 || c.Workload.InFlight <= 0:
		return fmt.Errorf("config %s: workload neurons and in_flight must be positive", c.Scenario)
	case c.Workload.InFlight > model.DefaultClientConfig(1, 1, 1).MaxInFlight:
		// Past the client's own bound it refuses operations locally: they
		// never reach the store and would only confuse the history.
		return fmt.Errorf("config %s: workload in_flight %d exceeds the client's limit of %d", c.Scenario, c.Workload.InFlight, model.DefaultClientConfig(1, 1, 1).MaxInFlight)
	case c.Workload.WatchingClients < 0 || c.Workload.WatchingClients > c.Clients:
		return fmt.Errorf("config %s: workload watching_clients %d not in 0..%d", c.Scenario, c.Workload.WatchingClients, c.Clients)
	case c.Workload.StalePM < 0 || c.Workload.StalePM > 1_000_000:
		return fmt.Errorf("config %s: workload stale_pm %d not in 0..1000000", c.Scenario, c.Workload.StalePM)
	case c.Workload.Mix.total() <= 0:
		return fmt.Errorf("config %s: workload mix is empty", c.Scenario)
	case c.Workload.ThinkMinUs < 0 || c.Workload.ThinkMaxUs < c.Workload.ThinkMinUs:
		return fmt.Errorf("config %s: workload think time %d..%d", c.Scenario, c.Workload.ThinkMinUs, c.Workload.ThinkMaxUs)
	case c.CoordMinUs < 0 || c.CoordMaxUs < c.CoordMinUs || c.BlobMinUs < 0 || c.BlobMaxUs < c.BlobMinUs:
		return fmt.Errorf("config %s: service latencies", c.Scenario)
	case c.Net.LatencyMinUs < 0 || c.Net.LatencyMaxUs < c.Net.LatencyMinUs:
		return fmt.Errorf("config %s: net latency %d..%d", c.Scenario, c.Net.LatencyMinUs, c.Net.LatencyMaxUs)
	case c.Migration.EveryMs < 0 || c.Migration.faulty() && (c.Migration.DownMinMs <= 0 || c.Migration.DownMaxMs < c.Migration.DownMinMs || c.Migration.FaultsUntilMs <= 0):
		return fmt.Errorf("config %s: migration every %d, down %d..%d ms, faults until %d", c.Scenario, c.Migration.EveryMs, c.Migration.DownMinMs, c.Migration.DownMaxMs, c.Migration.FaultsUntilMs)
	case c.Egress < 0 || c.Egress > 8 || c.EgressLagMs < 0:
		return fmt.Errorf("config %s: egress %d not in 0..8 or negative egress_lag_ms", c.Scenario, c.Egress)
	case c.LivenessMs <= 0:
		return fmt.Errorf("config %s: liveness_bound_ms must be positive", c.Scenario)
	case c.Progress.BoundMs < 0 || c.Progress.WindowMs < 0 || c.Progress.MinOps < 0 || c.Progress.MaxUnknownPM < 0 ||
		c.Progress.MaxBusyPM < 0 || c.Progress.MaxUnavailablePM < 0 || c.Progress.MaxBusyRepliesPM < 0 || c.Progress.MaxUnavailRepliesPM < 0:
		return fmt.Errorf("config %s: progress bounds must not be negative", c.Scenario)
	}
	if g := c.Workload.Graph; g != nil {
		if err := g.Validate(); err != nil {
			return fmt.Errorf("config %s: %w", c.Scenario, err)
		}
		if c.Workload.Neurons != len(g.Neurons) {
			return fmt.Errorf("config %s: workload neurons %d, but its graph has %d", c.Scenario, c.Workload.Neurons, len(g.Neurons))
		}
	}
	if c.LogBackend == LogTopic {
		if err := c.Topic.Validate(); err != nil {
			return err
		}
	} else if c.LogBackend != LogBookies {
		return fmt.Errorf("sim: unknown log backend %q", c.LogBackend)
	}
	if err := c.Log.Validate(); err != nil {
		return fmt.Errorf("config %s: log: %w", c.Scenario, err)
	}
	if err := c.Policy.Validate(); err != nil {
		return fmt.Errorf("config %s: %w", c.Scenario, err)
	}
	for i, f := range c.Schedule.Faults {
		if f.BandwidthKBps != 0 {
			return fmt.Errorf("config %s: schedule entry %d: fault %s: bandwidth_kbps: the simulator's links have no bandwidth (sim chaos makes it real)", c.Scenario, i, f)
		}
	}
	return c.Schedule.Validate(c.Topology())
}
