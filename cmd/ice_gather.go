package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rtckit/rtckit/diag/icegather"
	"github.com/rtckit/rtckit/peer"
	"github.com/spf13/cobra"
)

// ICEGatherOptions are the inputs of `rtckit ice gather`.
type ICEGatherOptions struct {
	ICE peer.ICEConfig
	// Require lists candidate types that must appear.
	Require []string
	// NDJSON streams one JSON event per line.
	NDJSON bool
	// RelayCheck proves data flows through each TURN relay.
	RelayCheck bool
	// RelayCount is the relay check's burst size.
	RelayCount int
	// ServerTimeout bounds each server's gathering.
	ServerTimeout time.Duration
}

func newICEGatherCmd(g *GlobalOptions) *cobra.Command {
	opts := &ICEGatherOptions{}
	c := &cobra.Command{
		Use:   "gather",
		Short: "Gather ICE candidates and explain every server failure",
		Long: `Gather collects ICE candidates the way a WebRTC peer does (pion), printing each
as it arrives with its type, foundation, component, protocol, address, priority
and its parts, related address and the server that produced it.

Each STUN and TURN server is gathered on its own, so each gets its own timing
and, when it fails, a precise error: TURN 401 (bad credentials), 441, 486
(allocation quota), 508, timeout, DNS, unreachable or TLS failure. Gathering
ends as soon as every server has answered or failed.

--relay-check then proves that data flows through each TURN relay: two
relay-only PeerConnections open a DataChannel through it and echo a burst of
messages, reporting loss and round trip times.`,
		Example: `  # Host candidates and a public STUN server
  rtckit ice gather --stun stun:stun.l.google.com:19302

  # A TURN server over UDP and TCP; fail (exit 6) unless a relay candidate appears
  rtckit ice gather --turn 'turn:alice:secret@turn.example.net?transport=udp' \
    --turn 'turn:alice:secret@turn.example.net?transport=tcp' --require relay

  # TURN REST credentials from a shared secret, prove the relay carries data
  rtckit ice gather --turn turn:turn.example.net --turn-secret "$SECRET" --relay-check

  # Stream one JSON event per candidate and per server
  rtckit ice gather --stun stun:stun.example.net --ndjson`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runICEGather(cmd.Context(), g, opts, cmd.OutOrStdout())
		},
	}
	f := c.Flags()
	addICEFlags(f, &opts.ICE)
	f.StringSliceVar(&opts.Require, "require", nil, "candidate types that must appear: host, srflx, relay (exit 6 otherwise)")
	f.BoolVar(&opts.NDJSON, "ndjson", false, "stream one JSON event per line: candidates, server results, relay checks, the final report")
	f.BoolVar(&opts.RelayCheck, "relay-check", false, "prove data flows through each TURN relay (DataChannel echo burst)")
	f.IntVar(&opts.RelayCount, "relay-count", icegather.DefaultRelayCheckCount, "messages sent by the relay check")
	f.DurationVar(&opts.ServerTimeout, "server-timeout", icegather.DefaultServerTimeout, "how long one server may take before it counts as failed and is diagnosed")
	return c
}

func runICEGather(ctx context.Context, g *GlobalOptions, opts *ICEGatherOptions, out io.Writer) error {
	if opts.NDJSON && g.JSON {
		return usageError(fmt.Errorf("--json and --ndjson exclude each other"))
	}
	if opts.ServerTimeout <= 0 {
		return usageError(fmt.Errorf("--server-timeout must be positive"))
	}
	if opts.RelayCount < 1 {
		return usageError(fmt.Errorf("--relay-count must be at least 1"))
	}
	servers, err := opts.ICE.Servers(time.Now())
	if err != nil {
		return usageError(err)
	}
	gopts := icegather.Options{
		Servers: servers, ICE: opts.ICE, Require: opts.Require, RelayCheck: opts.RelayCheck,
		RelayCheckCount: opts.RelayCount, ServerTimeout: opts.ServerTimeout, Logger: g.Logger(),
	}
	// Every usage error is found before the first line of output.
	if err := gopts.Validate(); err != nil {
		return usageError(err)
	}
	ctx, cancel := g.Context(ctx, icegather.DefaultTimeout)
	defer cancel()
	var mu sync.Mutex
	var writeErr error
	write := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if writeErr == nil {
			_, writeErr = io.WriteString(out, s)
		}
	}
	switch {
	case opts.NDJSON:
		gopts.OnEvent = func(e icegather.Event) {
			b, err := json.Marshal(e)
			if err == nil {
				write(string(b) + "\n")
			}
		}
	case !g.JSON:
		write("Candidates\n" + icegather.CandidateHeader + "\n")
		gopts.OnEvent = func(e icegather.Event) {
			if e.Event == icegather.EventCandidate {
				write(icegather.FormatCandidate(*e.Candidate) + "\n")
			}
		}
	}
	report, err := icegather.Gather(ctx, gopts)
	if err != nil {
		return err
	}
	switch {
	case g.JSON:
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	case !opts.NDJSON:
		if err := icegather.WriteSummary(out, report); err != nil {
			return err
		}
	}
	if writeErr != nil {
		return writeErr
	}
	if err := report.Err(); err != nil {
		if len(report.Missing) > 0 {
			return fmt.Errorf("%w: %v", err, report.Missing)
		}
		return err
	}
	return nil
}
