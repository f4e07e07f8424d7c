package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"territory/runtime/transport"
)

// statusRow is one series of a gauge: its labels and value.
type statusRow struct {
	labels map[string]string
	value  float64
}

// scrape reads the gauges of one /metrics endpoint.
func scrape(ctx context.Context, url string) (map[string][]statusRow, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	out := map[string][]statusRow{}
	for name, f := range fams { // order: rows are sorted when printed
		if f.GetType() != dto.MetricType_GAUGE && f.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range f.GetMetric() {
			r := statusRow{labels: map[string]string{}, value: m.GetGauge().GetValue() + m.GetCounter().GetValue()}
			for _, l := range m.GetLabel() {
				r.labels[l.GetName()] = l.GetValue()
			}
			out[name] = append(out[name], r)
		}
	}
	return out, nil
}

// statusReport prints the supernode path's figures of the scraped daemons:
// operational subgraphs, every proxy replica's LSN and lag, the lag per
// proxy and supernode, the egress
// cursors and lag. It returns the largest replica lag in events.
func statusReport(w io.Writer, gauges map[string][]statusRow) float64 {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	rows := func(name string, keys ...string) [][]string {
		var out [][]string
		for _, r := range gauges[name] {
			row := make([]string, 0, len(keys)+1)
			for _, k := range keys {
				row = append(row, r.labels[k])
			}
			out = append(out, append(row, fmt.Sprintf("%g", r.value)))
		}
		sort.Slice(out, func(i, j int) bool { return strings.Join(out[i], "\x00") < strings.Join(out[j], "\x00") })
		return out
	}
	fmt.Fprintln(tw, "TERRITORY\tOPERATIONAL SUBGRAPHS")
	for _, r := range rows("territory_operational_subgraphs", "territory") {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	// One line per (proxy territory, subgraph): LSN, lag in events and ms.
	type key struct{ t, sg string }
	lsn, lagMs := map[key]string{}, map[key]string{}
	for _, r := range rows("territory_replica_lsn", "territory", "subgraph") {
		lsn[key{r[0], r[1]}] = r[2]
	}
	for _, r := range rows("territory_replica_lag_ms", "territory", "subgraph") {
		lagMs[key{r[0], r[1]}] = r[2]
	}
	var maxLag float64
	fmt.Fprintln(tw, "\nPROXY TERRITORY\tSUBGRAPH\tREPLICA LSN\tLAG EVENTS\tLAG MS")
	for _, r := range gauges["territory_replica_lag_events"] {
		maxLag = max(maxLag, r.value)
	}
	for _, r := range rows("territory_replica_lag_events", "territory", "subgraph") {
		k := key{r[0], r[1]}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r[0], r[1], lsn[k], r[2], lagMs[k])
	}
	// One line per (proxy territory, supernode): its subgraph, lag in events and ms.
	type snKey struct{ t, sg, n string }
	snMs := map[snKey]string{}
	for _, r := range rows("territory_supernode_replica_lag_ms", "territory", "subgraph", "supernode") {
		snMs[snKey{r[0], r[1], r[2]}] = r[3]
	}
	fmt.Fprintln(tw, "\nPROXY TERRITORY\tSUPERNODE\tSUBGRAPH\tLAG EVENTS\tLAG MS")
	for _, r := range rows("territory_supernode_replica_lag_events", "territory", "subgraph", "supernode") {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r[0], r[2], r[1], r[3], snMs[snKey{r[0], r[1], r[2]}])
	}
	lag := map[string]string{}
	for _, r := range rows("territory_egress_lag_events", "subgraph") {
		lag[r[0]] = r[1]
	}
	fmt.Fprintln(tw, "\nEGRESS SUBGRAPH\tCURSOR LSN\tLAG EVENTS")
	for _, r := range rows("territory_egress_cursor_lsn", "subgraph") {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r[0], r[1], lag[r[0]])
	}
	fmt.Fprintln(tw, "\nMIGRATIONS (manager)\tCOUNT")
	for _, r := range rows("territory_migrations_total", "outcome") {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	fmt.Fprintln(tw, "\nMIGRATION SOURCE\tSUBGRAPH\tCATCH-UP LAG EVENTS")
	for _, r := range rows("territory_migration_catchup_lag_events", "territory", "subgraph") {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r[0], r[1], r[2])
	}
	return maxLag
}

func statusCmd() *cobra.Command {
	var (
		metrics  []string
		maxLag   float64
		timeout  time.Duration
		addr     string
		asJSON   bool
		tlsFiles TLSFiles
	)
	cmd := &cobra.Command{
		Use:   "status [--addr ADDR [--json]] [--metrics ADDR[,ADDR...] [--max-lag-events N]]",
		Short: "print the cluster as a daemon sees it (--addr: routes, territories, migrations with phase and catch-up lag; --json) and the supernode path of running daemons (--metrics: operational subgraphs, proxy replica lag, egress lag)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(metrics) == 0 && addr == "" {
				return exitf(2, "status: --addr or --metrics is required")
			}
			if asJSON && addr == "" {
				return exitf(2, "status: --json prints the --addr view; give --addr")
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if addr != "" {
				if err := statusView(ctx, cmd, addr, tlsFiles, asJSON); err != nil {
					return err
				}
				if len(metrics) == 0 {
					return nil
				}
				fmt.Fprintln(cmd.OutOrStdout())
			}
			all := map[string][]statusRow{}
			for _, a := range metrics {
				url := a
				if !strings.Contains(url, "://") {
					url = "http://" + a + "/metrics"
				}
				g, err := scrape(ctx, url)
				if err != nil {
					return exitf(1, "status: %v", err)
				}
				for name, rs := range g { // order: rows are sorted when printed
					all[name] = append(all[name], rs...)
				}
			}
			worst := statusReport(cmd.OutOrStdout(), all)
			if maxLag >= 0 && worst > maxLag {
				return exitf(1, "status: a proxy replica is %g events behind (--max-lag-events %g)", worst, maxLag)
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&metrics, "metrics", nil, "metrics addresses (host:port of a daemon's metrics listener, or a full URL), comma separated")
	cmd.Flags().Float64Var(&maxLag, "max-lag-events", -1, "exit 1 if a proxy replica lags more than this many events (-1: never)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	cmd.Flags().StringVar(&addr, "addr", "", "address of a territoryd (dev, run or manager): print its view of the routes, territories and migrations")
	cmd.Flags().BoolVar(&asJSON, "json", false, "with --addr: print the view as JSON")
	cmd.Flags().StringVar(&tlsFiles.CAFile, "tls-ca", "", "PEM file of the CA that signed the daemon's transport certificate (enables TLS)")
	cmd.Flags().StringVar(&tlsFiles.CertFile, "tls-cert", "", "PEM client certificate, when the daemon requires one")
	cmd.Flags().StringVar(&tlsFiles.KeyFile, "tls-key", "", "PEM key of --tls-cert")
	return cmd
}

// statusView prints the daemon's view of the cluster (clusterview.go).
func statusView(ctx context.Context, cmd *cobra.Command, addr string, tlsFiles TLSFiles, asJSON bool) error {
	var files *TLSFiles
	if tlsFiles != (TLSFiles{}) {
		if err := tlsFiles.validate("--tls"); err != nil {
			return exitf(2, "status: %v", err)
		}
		files = &tlsFiles
	}
	tlsCfg, err := files.tlsConfig(false)
	if err != nil {
		return exitf(2, "status: --tls-*: %v", err)
	}
	r, err := transport.DialRemote(addr, tlsCfg)
	if err != nil {
		return exitf(1, "status: %v", err)
	}
	defer r.Close()
	v, err := readView(ctx, r)
	if err != nil {
		return exitf(1, "status: %s: %v", addr, err)
	}
	if asJSON {
		return printViewJSON(cmd.OutOrStdout(), v)
	}
	printView(cmd.OutOrStdout(), v)
	return nil
}
