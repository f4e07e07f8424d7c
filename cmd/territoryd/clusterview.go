package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"territory/model"
	"territory/runtime/transport"
)

// clusterView is what `territoryd status --addr` shows and `territoryd
// migrate` reads: the routes, the territories and the migrations, as one
// daemon serves them (Info and CoordRead: the routes, the migration records
// and the alive keys).
type clusterView struct {
	Subgraphs   uint32          `json:"subgraphs"`
	Manager     model.HostID    `json:"manager"`
	ManagerAddr string          `json:"manager_addr,omitempty"`
	Territories []territoryView `json:"territories"`
	Routes      []routeView     `json:"routes"`
	Migrations  []migrationView `json:"migrations"`
	Problems    []string        `json:"problems,omitempty"` // values that do not parse
}

type territoryView struct {
	ID        model.HostID       `json:"id"`
	Addr      string             `json:"addr,omitempty"`
	Alive     bool               `json:"alive"`
	PrimaryOf []model.SubgraphID `json:"primary_of"`
}

type routeView struct {
	Subgraph  model.SubgraphID `json:"subgraph"`
	Primary   model.HostID     `json:"primary"`
	Epoch     uint64           `json:"epoch"`
	Revision  int64            `json:"revision"`
	Migrating bool             `json:"migrating"`
}

type migrationView struct {
	Subgraph    model.SubgraphID `json:"subgraph"`
	State       string           `json:"state"`
	Epoch       uint64           `json:"migration_epoch"`
	From        model.HostID     `json:"from"`
	To          model.HostID     `json:"to"`
	Attempts    int              `json:"attempts"`
	SnapshotLSN uint64           `json:"snapshot_lsn"`
	AckedLSN    uint64           `json:"acked_lsn"`
	TargetLSN   uint64           `json:"target_lsn"`
	CatchupLag  uint64           `json:"catchup_lag_events"`
	InStateMs   int64            `json:"in_state_ms"`
}

func viewOf(r model.MigrationRecord, nowMs int64) migrationView {
	return migrationView{Subgraph: r.Subgraph, State: r.State.String(), Epoch: r.Epoch, From: r.From, To: r.To, Attempts: r.Attempts,
		SnapshotLSN: r.SnapshotLSN, AckedLSN: r.AckedLSN, TargetLSN: r.TargetLSN, CatchupLag: r.CatchupLag(), InStateMs: max(0, nowMs-r.SinceMs)}
}

// coordRange reads every key under prefix through the daemon.
func coordRange(ctx context.Context, r *transport.Remote, prefix string) ([]model.KV, error) {
	resp, se, err := r.Do(ctx, model.CoordRequest{Kind: model.CoordRange, Key: prefix})
	if err == nil && se != model.ErrNone {
		err = fmt.Errorf("%s", se)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", prefix, err)
	}
	return resp.KVs, nil
}

// readView reads the cluster's routes, territories and migrations.
func readView(ctx context.Context, r *transport.Remote) (clusterView, error) {
	var v clusterView
	n, hosts, err := r.Info(ctx)
	if err != nil {
		return v, fmt.Errorf("asking for the cluster layout: %w", err)
	}
	v.Subgraphs = n
	if v.Manager, v.ManagerAddr, err = r.Manager(ctx); err != nil {
		return v, fmt.Errorf("asking for the manager: %w", err)
	}
	routes, err := coordRange(ctx, r, model.RoutesPrefix)
	if err != nil {
		return v, err
	}
	migs, err := coordRange(ctx, r, model.MigrationsPrefix)
	if err != nil {
		return v, err
	}
	alive, err := coordRange(ctx, r, model.AlivePrefix)
	if err != nil {
		return v, err
	}
	ts := map[model.HostID]*territoryView{}
	terr := func(id model.HostID) *territoryView {
		if ts[id] == nil {
			ts[id] = &territoryView{ID: id, Addr: hosts[id], PrimaryOf: []model.SubgraphID{}}
		}
		return ts[id]
	}
	for id := range hosts { // order: sorted below
		terr(id)
	}
	for _, kv := range alive {
		id, err := model.ParseAliveKey(kv.Key)
		if err != nil {
			v.Problems = append(v.Problems, err.Error())
			continue
		}
		terr(id).Alive = true
	}
	nowMs := time.Now().UnixMilli()
	migrating := map[model.SubgraphID]bool{}
	v.Migrations = []migrationView{}
	for _, kv := range migs {
		rec, err := model.ParseMigrationRecord(kv)
		if err != nil {
			v.Problems = append(v.Problems, err.Error())
			continue
		}
		migrating[rec.Subgraph] = rec.State != model.MigCommitted && rec.State != model.MigFailed
		v.Migrations = append(v.Migrations, viewOf(rec, nowMs))
	}
	v.Routes = []routeView{}
	for _, kv := range routes {
		rt, err := model.ParseRoute(kv)
		if err != nil {
			v.Problems = append(v.Problems, err.Error())
			continue
		}
		v.Routes = append(v.Routes, routeView{Subgraph: rt.Subgraph, Primary: rt.Primary, Epoch: rt.Epoch, Revision: kv.ModRevision, Migrating: migrating[rt.Subgraph]})
		t := terr(rt.Primary)
		t.PrimaryOf = append(t.PrimaryOf, rt.Subgraph)
	}
	slices.SortFunc(v.Routes, func(a, b routeView) int { return int(a.Subgraph) - int(b.Subgraph) })
	slices.SortFunc(v.Migrations, func(a, b migrationView) int { return int(a.Subgraph) - int(b.Subgraph) })
	for _, t := range ts { // order: sorted below
		slices.Sort(t.PrimaryOf)
		v.Territories = append(v.Territories, *t)
	}
	slices.SortFunc(v.Territories, func(a, b territoryView) int { return int(a.ID) - int(b.ID) })
	return v, nil
}

func printViewJSON(w io.Writer, v clusterView) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printView prints the view as tables.
func printView(w io.Writer, v clusterView) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	mgr := "unknown"
	if v.Manager != 0 {
		mgr = fmt.Sprintf("%d at %s", v.Manager, v.ManagerAddr)
	}
	fmt.Fprintf(tw, "cluster: %d subgraphs, manager %s\n", v.Subgraphs, mgr)
	fmt.Fprintln(tw, "\nTERRITORY\tADDR\tALIVE\tPRIMARY OF")
	for _, t := range v.Territories {
		sgs := make([]string, len(t.PrimaryOf))
		for i, sg := range t.PrimaryOf {
			sgs[i] = fmt.Sprint(sg)
		}
		fmt.Fprintf(tw, "%d\t%s\t%v\t%s\n", t.ID, t.Addr, t.Alive, strings.Join(sgs, ","))
	}
	fmt.Fprintln(tw, "\nSUBGRAPH\tPRIMARY\tEPOCH\tREVISION\tMIGRATING")
	for _, r := range v.Routes {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%v\n", r.Subgraph, r.Primary, r.Epoch, r.Revision, r.Migrating)
	}
	fmt.Fprintln(tw, "\nMIGRATION SUBGRAPH\tSTATE\tEPOCH\tFROM\tTO\tATTEMPT\tSNAPSHOT LSN\tACKED LSN\tTARGET LSN\tCATCH-UP LAG\tIN STATE")
	for _, m := range v.Migrations {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d/%d\t%d\t%d\t%d\t%d\t%s\n", m.Subgraph, m.State, m.Epoch, m.From, m.To, m.Attempts, model.MigrationMaxAttempts,
			m.SnapshotLSN, m.AckedLSN, m.TargetLSN, m.CatchupLag, (time.Duration(m.InStateMs) * time.Millisecond).String())
	}
	if len(v.Migrations) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	for _, p := range v.Problems {
		fmt.Fprintf(tw, "\nproblem: %s\n", p)
	}
}
