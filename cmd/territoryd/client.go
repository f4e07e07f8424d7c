package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"territory/model"
	"territory/runtime/daemon"
	"territory/runtime/driver"
)

type opSpec struct {
	op   model.OpKind
	args []string
}

var clientOps = map[string]opSpec{
	"create-neuron": {model.OpCreateNeuron, []string{"N"}},
	"stimulate":     {model.OpStimulate, []string{"N", "DELTA"}},
	"read-neuron":   {model.OpReadNeuron, []string{"N"}},
	"connect":       {model.OpConnect, []string{"PRE", "POST", "W"}},
	"adjust":        {model.OpAdjustWeight, []string{"PRE", "POST", "D"}},
	"prune":         {model.OpPrune, []string{"PRE", "POST"}},
	"read-synapse":  {model.OpReadSynapse, []string{"PRE", "POST"}},
}

// parseOp turns command-line words into a request (without its id).
func parseOp(args []string) (model.Request, error) {
	if len(args) == 0 {
		return model.Request{}, errors.New("missing operation: create-neuron N | stimulate N DELTA | read-neuron N | connect PRE POST W | adjust PRE POST D | prune PRE POST | read-synapse PRE POST")
	}
	spec, ok := clientOps[args[0]]
	if !ok {
		return model.Request{}, fmt.Errorf("unknown operation %q", args[0])
	}
	if len(args)-1 != len(spec.args) {
		return model.Request{}, fmt.Errorf("%s takes %d arguments: %s %v", args[0], len(spec.args), args[0], spec.args)
	}
	req := model.Request{Op: spec.op}
	for i, name := range spec.args {
		s := args[i+1]
		switch name {
		case "N", "PRE", "POST":
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return model.Request{}, fmt.Errorf("%s %s: %s must be a neuron id (unsigned integer): %q", args[0], name, name, s)
			}
			switch name {
			case "N":
				req.Neuron = model.NeuronID(v)
			case "PRE":
				req.Pre = model.NeuronID(v)
			case "POST":
				req.Post = model.NeuronID(v)
			}
		default:
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return model.Request{}, fmt.Errorf("%s %s: must be an integer (fixed-point): %q", args[0], name, s)
			}
			req.Value = v
		}
	}
	return req, nil
}

// formatResult is the one line printed for an ok answer.
func formatResult(req model.Request, r model.Result) string {
	switch req.Op {
	case model.OpReadNeuron, model.OpReadSynapse:
		line := fmt.Sprintf("ok exists=%v weight=%d", r.Exists, r.Value)
		if req.Op == model.OpReadNeuron {
			line = fmt.Sprintf("ok exists=%v potential=%d in_degree=%d out_degree=%d", r.Exists, r.Value, r.InDegree, r.OutDegree)
		}
		if req.Stale {
			from := "primary"
			if r.Proxy {
				from = "proxy"
			}
			line += fmt.Sprintf(" lsn=%d from=%s", r.LSN, from)
		}
		return line
	case model.OpStimulate:
		return fmt.Sprintf("ok potential=%d", r.Value)
	case model.OpAdjustWeight:
		return fmt.Sprintf("ok weight=%d", r.Value)
	}
	return "ok"
}

func clientCmd() *cobra.Command {
	var (
		addr, level string
		timeout     time.Duration
		tlsFiles    TLSFiles
		stale       bool
		minLSN      uint64
	)
	cmd := &cobra.Command{
		Use:   "client --addr ADDR [--stale [--min-lsn LSN]] (create-neuron N | stimulate N DELTA | read-neuron N | connect PRE POST W | adjust PRE POST D | prune PRE POST | read-synapse PRE POST)",
		Short: "run one client operation against a daemon and print its result",
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := parseOp(args)
			if err != nil {
				return exitf(2, "client: %v", err)
			}
			if addr == "" {
				return exitf(2, "client: --addr is required")
			}
			if (stale || minLSN != 0) && !req.Op.IsRead() {
				return exitf(2, "client: --stale and --min-lsn are for read-neuron and read-synapse")
			}
			req.Stale, req.MinLSN = stale || minLSN != 0, minLSN
			var files *TLSFiles
			if tlsFiles != (TLSFiles{}) {
				if err := tlsFiles.validate("--tls"); err != nil {
					return exitf(2, "client: %v", err)
				}
				files = &tlsFiles
			}
			tlsCfg, err := files.tlsConfig(false)
			if err != nil {
				return exitf(2, "client: --tls-*: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			c, err := daemon.DialClient(ctx, addr, tlsCfg, newLogger(level), nil)
			if err != nil {
				return exitf(1, "client: %v", err)
			}
			defer c.Close()
			sent, r, err := c.Do(ctx, req)
			switch {
			case errors.Is(err, driver.ErrUnknownOutcome):
				return exitf(3, "client: %s: %v", sent.String(), err)
			case err != nil:
				return exitf(3, "client: %s: no answer: %v", sent.String(), err)
			case r.Status != model.StatusOK:
				msg := r.Status.String()
				if r.Reason != model.ReasonNone {
					msg += " (" + r.Reason.String() + ")"
				}
				return exitf(1, "client: %s: %s", sent.String(), msg)
			}
			fmt.Fprintln(cmd.OutOrStdout(), formatResult(req, r))
			return nil
		},
	}
	// Flags go before the operation, so that negative values (stimulate 1 -5) are arguments.
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:7420", "address of a territoryd (dev or run)")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Second, "give up after this long")
	cmd.Flags().BoolVar(&stale, "stale", false, "a read that may be stale: answered by the daemon's proxy or the primary without the read barrier; prints the LSN it reflects")
	cmd.Flags().Uint64Var(&minLSN, "min-lsn", 0, "with --stale: answer only from a state at or past this LSN of the subgraph (the lsn a previous stale read printed: never backwards across calls)")
	cmd.Flags().StringVar(&level, "log-level", "error", "log level: debug, info, warn, error")
	cmd.Flags().StringVar(&tlsFiles.CAFile, "tls-ca", "", "PEM file of the CA that signed the daemon's transport certificate (enables TLS)")
	cmd.Flags().StringVar(&tlsFiles.CertFile, "tls-cert", "", "PEM client certificate, when the daemon requires one")
	cmd.Flags().StringVar(&tlsFiles.KeyFile, "tls-key", "", "PEM key of --tls-cert")
	return cmd
}
