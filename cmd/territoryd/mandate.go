package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"territory/model"
	"territory/runtime/daemon"
)

// mandateCmd runs a growth mandate: territoryd mandate --id ID PRE:POST:W ...
// (or --file F, one PRE POST W per line). It prints one JSON line per synapse:
// {"mandate_id", "pre", "post", "fulfilled": true}, or the synapse's
// mandate.fulfillment.failed event. Exit 0: all fulfilled; 1: some failed;
// 3: some outcomes unknown (run the mandate again: fulfilled ones stay so).
func mandateCmd() *cobra.Command {
	var (
		addr, level, id, file string
		timeout               time.Duration
		parallel              int
		tlsFiles              TLSFiles
	)
	cmd := &cobra.Command{
		Use:   "mandate --addr ADDR --id ID (--file FILE | PRE:POST:WEIGHT ...)",
		Short: "grow the synapses of a growth mandate, each as a (cross-subgraph: saga) connect, and report each outcome",
		RunE: func(cmd *cobra.Command, args []string) error {
			m := model.Mandate{ID: id}
			var err error
			switch {
			case file != "" && len(args) > 0:
				return exitf(2, "mandate: give the synapses as arguments or with --file, not both")
			case file != "":
				m.Synapses, err = readMandateFile(file)
			default:
				m.Synapses, err = parseMandateArgs(args)
			}
			if err == nil {
				err = m.Validate()
			}
			if err != nil {
				return exitf(2, "mandate: %v", err)
			}
			var files *TLSFiles
			if tlsFiles != (TLSFiles{}) {
				if err := tlsFiles.validate("--tls"); err != nil {
					return exitf(2, "mandate: %v", err)
				}
				files = &tlsFiles
			}
			tlsCfg, err := files.tlsConfig(false)
			if err != nil {
				return exitf(2, "mandate: --tls-*: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			c, err := daemon.DialClient(ctx, addr, tlsCfg, newLogger(level), nil)
			if err != nil {
				return exitf(1, "mandate: %v", err)
			}
			defer c.Close()
			outs, runErr := c.RunMandate(ctx, m, parallel)
			failed, unknown := writeMandateOutcomes(cmd.OutOrStdout(), &m, outs)
			switch {
			case runErr != nil && len(outs) < len(m.Synapses):
				return exitf(3, "mandate %s: %v", m.ID, runErr)
			case unknown > 0:
				return exitf(3, "mandate %s: %d of %d synapses have an unknown outcome (%d failed)", m.ID, unknown, len(m.Synapses), failed)
			case failed > 0:
				return exitf(1, "mandate %s: %d of %d synapses failed", m.ID, failed, len(m.Synapses))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:7420", "address of a territoryd (dev or run)")
	cmd.Flags().StringVar(&id, "id", "", "the mandate's id (required)")
	cmd.Flags().StringVar(&file, "file", "", "synapses, one \"PRE POST WEIGHT\" per line (# comments)")
	cmd.Flags().IntVar(&parallel, "parallel", 16, "connects in flight at once")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long")
	cmd.Flags().StringVar(&level, "log-level", "error", "log level: debug, info, warn, error")
	cmd.Flags().StringVar(&tlsFiles.CAFile, "tls-ca", "", "PEM file of the CA that signed the daemon's transport certificate (enables TLS)")
	cmd.Flags().StringVar(&tlsFiles.CertFile, "tls-cert", "", "PEM client certificate, when the daemon requires one")
	cmd.Flags().StringVar(&tlsFiles.KeyFile, "tls-key", "", "PEM key of --tls-cert")
	return cmd
}

func parseSynapse(fields []string, where string) (model.MandateSynapse, error) {
	if len(fields) != 3 {
		return model.MandateSynapse{}, fmt.Errorf("%s: want PRE POST WEIGHT, got %d field(s)", where, len(fields))
	}
	var v [3]int64
	for i, f := range fields {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || (i < 2 && n <= 0) {
			return model.MandateSynapse{}, fmt.Errorf("%s: field %d %q: want a positive neuron id or an integer weight", where, i+1, f)
		}
		v[i] = n
	}
	return model.MandateSynapse{Pre: model.NeuronID(v[0]), Post: model.NeuronID(v[1]), Weight: v[2]}, nil
}

func parseMandateArgs(args []string) ([]model.MandateSynapse, error) {
	var out []model.MandateSynapse
	for i, a := range args {
		s, err := parseSynapse(strings.Split(a, ":"), fmt.Sprintf("argument %d (%s)", i+1, a))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func readMandateFile(path string) ([]model.MandateSynapse, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []model.MandateSynapse
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		s, err := parseSynapse(strings.Fields(text), fmt.Sprintf("%s line %d", path, line))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		if len(out) > model.MaxMandateSynapses {
			return nil, fmt.Errorf("%s: more than %d synapses", path, model.MaxMandateSynapses)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// writeMandateOutcomes prints one JSON line per synapse that ran.
func writeMandateOutcomes(w io.Writer, m *model.Mandate, outs []model.SynapseOutcome) (failed, unknown int) {
	enc := json.NewEncoder(w)
	for _, o := range outs {
		if o.Fulfilled {
			_ = enc.Encode(map[string]any{"mandate_id": m.ID, "pre": o.Synapse.Pre, "post": o.Synapse.Post, "fulfilled": true})
			continue
		}
		if o.Failure.ReasonCode == model.MandateUnknown {
			unknown++
		} else {
			failed++
		}
		_ = enc.Encode(o.Failure)
	}
	return failed, unknown
}
