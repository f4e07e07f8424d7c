package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"territory/model"
	"territory/runtime/daemon"
	"territory/runtime/transport"
)

// migrateOpts are the arguments of `territoryd migrate`.
type migrateOpts struct {
	addr     string
	sg       int64
	to       uint32
	wait     bool
	timeout  time.Duration
	answerIn time.Duration
	poll     time.Duration
	tls      TLSFiles
}

// askMigration sends the manager a MigRequest, again every second, until it
// answers (MigRequestReply) or answerIn passes.
func askMigration(ctx context.Context, o migrateOpts, mgr model.HostID, mgrAddr string) (model.MigMsg, error) {
	var files *TLSFiles
	if o.tls != (TLSFiles{}) {
		files = &o.tls
	}
	tlsCfg, err := files.tlsConfig(false)
	if err != nil {
		return model.MigMsg{}, exitf(2, "migrate: --tls-*: %v", err)
	}
	tr, err := transport.New(transport.Config{Hosts: map[model.HostID]string{mgr: mgrAddr}, ClientTLS: tlsCfg})
	if err != nil {
		return model.MigMsg{}, exitf(1, "migrate: %v", err)
	}
	defer tr.Close()
	me := daemon.ClientHostID()
	replies := make(chan model.MigMsg, 4)
	tr.Register(me, func(_ model.HostID, msg *model.Message) bool {
		if g := msg.Migration; g != nil && g.Kind == model.MigRequestReply && g.Subgraph == model.SubgraphID(o.sg) {
			select {
			case replies <- *g:
			default:
			}
		}
		return true
	})
	req := &model.Message{Migration: &model.MigMsg{Kind: model.MigRequest, Subgraph: model.SubgraphID(o.sg), To: model.HostID(o.to)}}
	deadline := time.NewTimer(o.answerIn)
	defer deadline.Stop()
	every := time.NewTicker(time.Second)
	defer every.Stop()
	for {
		tr.Send(me, mgr, req)
		select {
		case a := <-replies:
			return a, nil
		case <-every.C:
		case <-deadline.C:
			return model.MigMsg{}, exitf(3, "migrate: no answer from the manager (host %d at %s) within %s: is `territoryd manager` running and elected? (the request may have been taken: see `territoryd status`)", mgr, mgrAddr, o.answerIn)
		case <-ctx.Done():
			return model.MigMsg{}, exitf(3, "migrate: %v", ctx.Err())
		}
	}
}

// waitMigration follows the record of an accepted migration until it is
// gone, printing each phase, and reports how it ended by the route.
func waitMigration(ctx context.Context, w io.Writer, r *transport.Remote, a model.MigMsg, poll time.Duration) error {
	sg := a.Subgraph
	var last *model.MigrationRecord
	for {
		resp, se, err := r.Do(ctx, model.CoordRequest{Kind: model.CoordGet, Key: model.MigrationKey(sg)})
		if err == nil && se != model.ErrNone {
			err = fmt.Errorf("%s", se)
		}
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			state := "unknown"
			if last != nil {
				state = last.State.String()
			}
			return exitf(3, "migrate: subgraph %d: still %s when --timeout passed", sg, state)
		case err != nil:
			fmt.Fprintf(w, "reading %s: %v (trying again)\n", model.MigrationKey(sg), err)
		case len(resp.KVs) == 0:
			return migrationEnded(ctx, w, r, a, last)
		default:
			rec, err := model.ParseMigrationRecord(resp.KVs[0])
			if err != nil {
				return exitf(1, "migrate: %v", err)
			}
			if rec.Epoch < a.Epoch && last == nil {
				break // not ours (an older record still being deleted): wait
			}
			if last == nil || last.State != rec.State || last.Epoch != rec.Epoch || last.AckedLSN != rec.AckedLSN {
				line := fmt.Sprintf("%s: subgraph %d, migration epoch %d, %d -> %d, attempt %d of %d", rec.State, sg, rec.Epoch, rec.From, rec.To, rec.Attempts, model.MigrationMaxAttempts)
				if rec.TargetLSN > 0 {
					line += fmt.Sprintf(", snapshot lsn %d, acked lsn %d of target %d (catch-up lag %d)", rec.SnapshotLSN, rec.AckedLSN, rec.TargetLSN, rec.CatchupLag())
				}
				fmt.Fprintln(w, line)
			}
			last = &rec
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
	}
}

// migrationEnded: the record is gone (deleted after COMMITTED, or FAILED
// after the last attempt); the route says where the subgraph lives.
func migrationEnded(ctx context.Context, w io.Writer, r *transport.Remote, a model.MigMsg, last *model.MigrationRecord) error {
	sg := a.Subgraph
	resp, se, err := r.Do(ctx, model.CoordRequest{Kind: model.CoordGet, Key: model.RouteKey(sg)})
	if err == nil && se != model.ErrNone {
		err = fmt.Errorf("%s", se)
	}
	if err != nil || len(resp.KVs) == 0 {
		return exitf(3, "migrate: subgraph %d: the migration record is gone, and its route cannot be read: %v", sg, err)
	}
	rt, err := model.ParseRoute(resp.KVs[0])
	if err != nil {
		return exitf(3, "migrate: %v", err)
	}
	to := a.To
	if last != nil {
		to = last.To // a retry may have gone to another territory
	}
	switch {
	case last != nil && last.State == model.MigFailed && !last.RetriesLeft():
		return exitf(1, "migrate: subgraph %d: FAILED %d times, abandoned; served by %d (epoch %d)", sg, last.Attempts, rt.Primary, rt.Epoch)
	case rt.Primary == to && last != nil && last.State == model.MigFailed:
		// The manager removes a FAILED record whose route names T_dest
		// alive: the flip had landed, and T_dest took the subgraph up from
		// the log (model: migrator.onRoute).
		fmt.Fprintf(w, "COMMITTED: subgraph %d is served by %d (route epoch %d; attempt %d FAILED after its route flip, and territory %d recovered the subgraph from the log)\n",
			sg, rt.Primary, rt.Epoch, last.Attempts, rt.Primary)
		return nil
	case rt.Primary == to:
		fmt.Fprintf(w, "COMMITTED: subgraph %d is served by %d (route epoch %d)\n", sg, rt.Primary, rt.Epoch)
		return nil
	}
	return exitf(1, "migrate: subgraph %d: the migration ended and the route names %d (epoch %d), not %d", sg, rt.Primary, rt.Epoch, to)
}

func runMigrate(cmd *cobra.Command, o migrateOpts) error {
	w := cmd.OutOrStdout()
	if o.sg < 0 || o.to == 0 {
		return exitf(2, "migrate: --subgraph S and --to T are required")
	}
	var files *TLSFiles
	if o.tls != (TLSFiles{}) {
		if err := o.tls.validate("--tls"); err != nil {
			return exitf(2, "migrate: %v", err)
		}
		files = &o.tls
	}
	tlsCfg, err := files.tlsConfig(false)
	if err != nil {
		return exitf(2, "migrate: --tls-*: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	r, err := transport.DialRemote(o.addr, tlsCfg)
	if err != nil {
		return exitf(1, "migrate: %v", err)
	}
	defer r.Close()
	ictx, icancel := context.WithTimeout(ctx, 10*time.Second)
	v, err := readView(ictx, r)
	icancel()
	if err != nil {
		return exitf(1, "migrate: %s: %v", o.addr, err)
	}
	if uint64(o.sg) >= uint64(v.Subgraphs) {
		return exitf(2, "migrate: unknown subgraph %d: the cluster has subgraphs 0..%d", o.sg, v.Subgraphs-1)
	}
	var ids []model.HostID
	for _, t := range v.Territories {
		ids = append(ids, t.ID)
	}
	if !slices.Contains(ids, model.HostID(o.to)) {
		return exitf(2, "migrate: unknown territory %d: the cluster's territories are %v", o.to, ids)
	}
	if v.Manager == 0 {
		return exitf(1, "migrate: the daemon at %s does not know the manager's address", o.addr)
	}
	mgrAddr := v.ManagerAddr
	if mgrAddr == "" {
		mgrAddr = o.addr
	}
	a, err := askMigration(ctx, o, v.Manager, mgrAddr)
	if err != nil {
		return err
	}
	if a.Refusal != 0 {
		return exitf(1, "migrate: refused by the manager: %s: %s", a.Refusal, a.Detail)
	}
	fmt.Fprintf(w, "accepted: subgraph %d, %d -> %d, migration epoch %d\n", a.Subgraph, a.From, a.To, a.Epoch)
	if !o.wait {
		return nil
	}
	return waitMigration(ctx, w, r, a, o.poll)
}

func migrateCmd() *cobra.Command {
	o := migrateOpts{sg: -1}
	cmd := &cobra.Command{
		Use:   "migrate --addr ADDR --subgraph S --to T [--wait]",
		Short: "ask the manager to migrate a subgraph to another territory (phased: snapshot, route flip, catch-up), and with --wait follow it to COMMITTED or FAILED",
		Long: "Asks the manager (found through the daemon at --addr) to migrate subgraph S to territory T. Exit codes: 0 accepted (with --wait: COMMITTED); " +
			"1 refused (unknown subgraph or territory, territory down, already there, primary down, a migration already running), or with --wait FAILED for good; " +
			"2 usage; 3 no answer in time (the request may have been taken).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runMigrate(cmd, o) },
	}
	cmd.Flags().StringVar(&o.addr, "addr", "127.0.0.1:7420", "address of a territoryd (dev, run or manager)")
	cmd.Flags().Int64Var(&o.sg, "subgraph", -1, "the subgraph to migrate (required)")
	cmd.Flags().Uint32Var(&o.to, "to", 0, "the destination territory's host id (required)")
	cmd.Flags().BoolVar(&o.wait, "wait", false, "follow the migration until its record is gone: exit 0 when COMMITTED, 1 when FAILED for good")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up after this long (exit 3)")
	cmd.Flags().DurationVar(&o.answerIn, "answer-timeout", 15*time.Second, "how long to wait for the manager's answer to the request")
	cmd.Flags().DurationVar(&o.poll, "poll", 200*time.Millisecond, "with --wait: how often to read the migration record")
	cmd.Flags().StringVar(&o.tls.CAFile, "tls-ca", "", "PEM file of the CA that signed the daemons' transport certificates (enables TLS)")
	cmd.Flags().StringVar(&o.tls.CertFile, "tls-cert", "", "PEM client certificate, when the daemons require one")
	cmd.Flags().StringVar(&o.tls.KeyFile, "tls-key", "", "PEM key of --tls-cert")
	return cmd
}
