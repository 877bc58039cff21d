package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rtckit/rtckit/signal/loadgen"
	"github.com/spf13/cobra"
)

// signalBenchSchema versions the JSON of `rtckit signal bench --json`.
const signalBenchSchema = "rtckit.signal.bench/v1"

// Defaults of `rtckit signal bench`.
const (
	defaultSignalBenchURL   = "ws://127.0.0.1:8080/ws"
	defaultSignalBenchPairs = 100
	// maxSourceIPRange bounds one --source-ip range.
	maxSourceIPRange = 256
)

// SignalBenchOptions are the inputs of `rtckit signal bench`.
type SignalBenchOptions struct {
	// URL is the hub's WebSocket URL.
	URL string
	// Pairs, Rate, Window, PayloadBytes, Duration, Idle and Churn shape
	// the load (see loadgen.Options).
	Pairs, Window, PayloadBytes, Idle int
	Rate, Churn                       float64
	Duration                          time.Duration
	// SourceIPs are addresses or ranges (127.0.0.2-127.0.0.9) to spread
	// client connections over.
	SourceIPs []string
	// Token is the hub's access token.
	Token string
	// HubPID is the local hub's process id for memory and CPU figures.
	HubPID int
	// AllowRemote permits a hub that is not on a loopback address.
	AllowRemote bool
	// Engine is auto, loop or goroutines (see loadgen.Engine).
	Engine string
	// Protocol is classic or peerjs (see loadgen.Protocol).
	Protocol string
}

// SignalBenchReport is the output of `rtckit signal bench`.
type SignalBenchReport struct {
	Schema string `json:"schema"`
	URL    string `json:"url"`
	loadgen.Result
}

func newSignalBenchCmd(g *GlobalOptions) *cobra.Command {
	opts := &SignalBenchOptions{}
	c := &cobra.Command{
		Use:   "bench",
		Short: "Load a signaling hub with sender→receiver pairs and measure it",
		Long: `Bench is a load generator for a signaling hub (rtckit signal serve, or any
server of the classic chat-server protocol). It opens --pairs sender→receiver
pairs, registers their names, and has every sender send targeted video-offer
messages with a fake SDP of --payload bytes to its receiver: --rate messages per
second in total, or with --rate 0 as fast as --window messages in flight per
pair allow. --idle extra connections are held without registering, and --churn
senders reconnect per second. Each offer carries its send time, so the receiver
measures the delivery latency (p50/p90/p99/max): when it reads the offer, and
(Linux, ws://) when the offer reached its socket, by the kernel's receive
timestamp, which leaves out the generator's own delay in reading it.

On Linux with ws:// and no --churn, one event loop on a thread of its own
drives every pair (--engine loop, the default there): it sends the offers on an
even schedule and reads every socket as soon as epoll reports it, so that the
generator's own scheduling stays out of the latency. --engine goroutines runs
a goroutine per sender and per reader instead. --protocol peerjs loads a PeerJS
server (--url ws://HOST:PORT/peerjs) with the same clients, for comparison.

With --hub-pid, the hub's process on this machine, bench reads its resident
memory before connecting and at the end (memory per connection) and its CPU
time while sending (CPU per relayed message), and from the hub's /metrics the
turns of its event loop while sending (from a wake-up of the loop to the end of
the writes attempted for what it read, as bucket bounds, per turn): a bound on
a message's time in the hub after its read, but not on its wait before it.

Bench refuses a hub that is not on a loopback address unless --allow-remote:
it must never load a machine by accident. Against rtckit signal serve, start
the hub with --rate 0 and a --max-connections above the connections used.
Spread many connections over several loopback source addresses
(--source-ip 127.0.0.2-127.0.0.9) so that ports do not run out.`,
		Example: `  # 100 pairs at 45,000 messages/s for 10 s, with the local hub's CPU and memory
  rtckit signal serve --rate 0 --max-connections 20000 &
  rtckit signal bench --pairs 100 --rate 45000 --duration 10s --hub-pid $!

  # Maximum throughput, as JSON
  rtckit --json signal bench --pairs 100 --rate 0

  # The same load against a PeerJS server (npm package peer) on port 9000
  rtckit signal bench --protocol peerjs --url ws://127.0.0.1:9000/peerjs --rate 45000

  # Memory per idle connection: hold 18,000 over eight source addresses
  rtckit signal bench --pairs 0 --idle 18000 --duration 5s \
    --source-ip 127.0.0.2-127.0.0.9 --hub-pid "$HUB_PID"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lopts, err := opts.loadgenOptions()
			if err != nil {
				return usageError(err)
			}
			lopts.Logger = g.Logger()
			ctx, cancel := g.Context(cmd.Context(), 0)
			defer cancel()
			return runSignalBench(ctx, g, lopts, cmd.OutOrStdout())
		},
	}
	f := c.Flags()
	f.StringVar(&opts.URL, "url", defaultSignalBenchURL, "the hub's WebSocket URL")
	f.IntVar(&opts.Pairs, "pairs", defaultSignalBenchPairs, "sender→receiver pairs")
	f.Float64Var(&opts.Rate, "rate", 0, "total messages per second (0: as fast as --window allows)")
	f.IntVar(&opts.Window, "window", loadgen.DefaultWindow, "messages in flight per pair with --rate 0")
	f.IntVar(&opts.PayloadBytes, "payload", loadgen.DefaultPayloadBytes, "bytes of fake SDP per offer")
	f.DurationVar(&opts.Duration, "duration", loadgen.DefaultDuration, "how long to send, or to hold idle connections")
	f.IntVar(&opts.Idle, "idle", 0, "extra idle connections to hold")
	f.Float64Var(&opts.Churn, "churn", 0, "sender reconnects per second")
	f.StringSliceVar(&opts.SourceIPs, "source-ip", nil, "local address or range (127.0.0.2-127.0.0.9) to spread connections over (repeatable)")
	f.StringVar(&opts.Token, "token", "", "the hub's access token")
	f.IntVar(&opts.HubPID, "hub-pid", 0, "process id of a local hub: report its memory per connection and CPU per message")
	f.BoolVar(&opts.AllowRemote, "allow-remote", false, "allow a hub that is not on a loopback address")
	f.StringVar(&opts.Protocol, "protocol", string(loadgen.ProtocolClassic), "the hub's protocol: classic (rtckit signal serve), or peerjs (a PeerJS server, for comparison; --url ws://HOST:PORT/peerjs)")
	f.StringVar(&opts.Engine, "engine", "auto", "how the pairs are driven: loop (one epoll loop; Linux, ws://, no churn), goroutines, or auto")
	return c
}

// loadgenOptions checks the flags and returns the generator's options.
func (o *SignalBenchOptions) loadgenOptions() (loadgen.Options, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Hostname() == "" {
		return loadgen.Options{}, fmt.Errorf("--url: %q is not a ws:// or wss:// URL", o.URL)
	}
	if !o.AllowRemote && !isLoopbackHost(u.Hostname()) {
		return loadgen.Options{}, fmt.Errorf("--url: %s is not a loopback address; bench loads the hub hard, add --allow-remote if that is meant", u.Hostname())
	}
	switch {
	case o.Pairs < 0 || o.Idle < 0:
		return loadgen.Options{}, errors.New("--pairs and --idle must not be negative")
	case o.Pairs == 0 && o.Idle == 0:
		return loadgen.Options{}, errors.New("nothing to do: --pairs and --idle are 0")
	case o.Rate < 0 || o.Churn < 0:
		return loadgen.Options{}, errors.New("--rate and --churn must not be negative")
	case o.Window < 1 || o.PayloadBytes < 1:
		return loadgen.Options{}, errors.New("--window and --payload must be at least 1")
	case o.Duration <= 0:
		return loadgen.Options{}, errors.New("--duration must be positive")
	case o.Churn > 0 && o.Pairs == 0:
		return loadgen.Options{}, errors.New("--churn needs --pairs")
	case o.HubPID < 0:
		return loadgen.Options{}, errors.New("--hub-pid must not be negative")
	}
	ips, err := parseSourceIPs(o.SourceIPs)
	if err != nil {
		return loadgen.Options{}, err
	}
	engine := loadgen.Engine(o.Engine)
	switch engine {
	case "auto":
		engine = loadgen.EngineAuto
	case loadgen.EngineLoop, loadgen.EngineGoroutines:
	default:
		return loadgen.Options{}, fmt.Errorf("--engine: %q is not auto, loop or goroutines", o.Engine)
	}
	lopts := loadgen.Options{
		URL: o.URL, Pairs: o.Pairs, Rate: o.Rate, Window: o.Window, PayloadBytes: o.PayloadBytes,
		Duration: o.Duration, Idle: o.Idle, Churn: o.Churn, SourceIPs: ips, Token: o.Token, HubPID: o.HubPID,
		Engine: engine, Protocol: loadgen.Protocol(o.Protocol),
	}
	if p := lopts.Protocol; p != loadgen.ProtocolClassic && p != loadgen.ProtocolPeerJS {
		return loadgen.Options{}, fmt.Errorf("--protocol: %q is not classic or peerjs", o.Protocol)
	}
	if err := lopts.Check(); err != nil {
		return loadgen.Options{}, fmt.Errorf("--engine: %w", err)
	}
	return lopts, nil
}

// isLoopbackHost tells whether host is localhost or a loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// parseSourceIPs expands addresses and first-last ranges.
func parseSourceIPs(specs []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range specs {
		first, last, isRange := strings.Cut(s, "-")
		a, err := netip.ParseAddr(strings.TrimSpace(first))
		if err != nil {
			return nil, fmt.Errorf("--source-ip: %q is not an address or range", s)
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b, err := netip.ParseAddr(strings.TrimSpace(last))
		if err != nil || b.Less(a) || a.Is4() != b.Is4() {
			return nil, fmt.Errorf("--source-ip: %q is not a range first-last", s)
		}
		for n := 0; ; n++ {
			if n == maxSourceIPRange {
				return nil, fmt.Errorf("--source-ip: range %q has more than %d addresses", s, maxSourceIPRange)
			}
			out = append(out, a)
			if a == b {
				break
			}
			a = a.Next()
		}
	}
	return out, nil
}

// runSignalBench runs the generator and prints its report.
func runSignalBench(ctx context.Context, g *GlobalOptions, opts loadgen.Options, out io.Writer) error {
	g.Logger().Info("bench starting", "url", opts.URL, "pairs", opts.Pairs, "idle", opts.Idle, "rate", opts.Rate)
	res, err := loadgen.Run(ctx, opts)
	if err != nil {
		if errors.Is(err, loadgen.ErrInvalidOptions) {
			return usageError(err)
		}
		return err
	}
	rep := SignalBenchReport{Schema: signalBenchSchema, URL: opts.URL, Result: *res}
	if g.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	_, err = io.WriteString(out, signalBenchText(rep))
	return err
}

// signalBenchText renders a report for people.
func signalBenchText(r SignalBenchReport) string {
	var b strings.Builder
	rate := "as fast as possible"
	if r.Rate > 0 {
		rate = fmt.Sprintf("target %.0f msg/s", r.Rate)
	}
	fmt.Fprintf(&b, "signal bench %s: %d pairs, %s, %d-byte offers, %d idle, %s\n",
		r.URL, r.Pairs, rate, r.PayloadBytes, r.Idle, r.Elapsed.Round(time.Millisecond))
	row := func(name, format string, a ...any) {
		fmt.Fprintf(&b, "  %-20s "+format+"\n", append([]any{name}, a...)...)
	}
	if r.Engine != "" {
		row("engine", "%s", r.Engine)
	}
	row("connections held", "%d", r.Connections)
	if r.Reconnects > 0 {
		row("reconnects", "%d", r.Reconnects)
	}
	row("messages", "%d sent, %d delivered, %d lost", r.Sent, r.Delivered, r.Lost)
	row("messages/s", "%.0f", r.MessagesPerSecond)
	if l := r.Latency; l != nil {
		row("latency", "p50 %s  p90 %s  p99 %s  max %s", benchMS(l.P50), benchMS(l.P90), benchMS(l.P99), benchMS(l.Max))
	} else {
		row("latency", "none delivered")
	}
	if l := r.SocketLatency; l != nil {
		row("at the socket", "p50 %s  p90 %s  p99 %s  max %s", benchMS(l.P50), benchMS(l.P90), benchMS(l.P99), benchMS(l.Max))
	}
	if h := r.Hub; h != nil {
		row("hub memory", "%.2f KiB per connection (RSS %.1f → %.1f MiB)",
			h.BytesPerConnection/1024, float64(h.RSSBefore)/(1<<20), float64(h.RSSAfter)/(1<<20))
		row("hub CPU", "%s, %.2f µs per message, %.0f messages per CPU-second",
			h.CPU.Round(10*time.Millisecond), float64(h.CPUPerMessage)/float64(time.Microsecond), h.MessagesPerCPUSecond)
		if t := h.LoopTurns; t != nil {
			row("hub loop turns", "%d, p50 ≤ %s  p99 ≤ %s  p99.9 ≤ %s", t.Turns, turnBound(t.P50Max), turnBound(t.P99Max), turnBound(t.P999Max))
		}
	} else {
		row("hub usage", "not measured (--hub-pid)")
	}
	if g := r.Generator; g != nil {
		row("generator CPU", "%s, %.2f µs per message, %.0f%% of a core",
			g.CPU.Round(10*time.Millisecond), float64(g.CPUPerMessage)/float64(time.Microsecond), 100*g.CoreShare)
	}
	e := r.Errors
	if e.Dial == 0 && e.Send == 0 && e.Disconnects == 0 && len(e.Server) == 0 {
		row("errors", "none")
	} else {
		s := fmt.Sprintf("%d dial, %d send, %d disconnects", e.Dial, e.Send, e.Disconnects)
		for _, code := range slices.Sorted(maps.Keys(e.Server)) {
			s += fmt.Sprintf(", %s %d", code, e.Server[code])
		}
		row("errors", "%s", s)
	}
	return b.String()
}

// turnBound formats a loop-turn quantile bound; negative is beyond the
// histogram's largest bucket.
func turnBound(d time.Duration) string {
	if d < 0 {
		return "> 41 ms"
	}
	return benchMS(d)
}

// benchMS formats d in milliseconds with two decimals.
func benchMS(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
