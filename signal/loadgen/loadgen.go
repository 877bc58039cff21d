// Package loadgen is a load generator for rtckit's signaling hub: it opens
// sender→receiver pairs that speak the classic chat-server protocol, sends
// targeted video-offer messages at a set rate (or as fast as a window of
// messages in flight allows), holds extra idle connections, reconnects
// senders to model churn, and measures delivery latency from a send
// timestamp embedded in each offer. When the hub runs on this machine it
// also reads the hub's memory and CPU time from /proc.
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	// DefaultPayloadBytes is the size of the fake SDP in each offer.
	DefaultPayloadBytes = 512
	// DefaultDuration is how long messages are sent (or idle connections
	// held).
	DefaultDuration = 10 * time.Second
	// DefaultWindow is how many messages each pair keeps in flight when
	// Rate is 0.
	DefaultWindow = 32
)

// Timeouts and bounds of a run.
const (
	// DialTimeout bounds opening and registering one connection.
	DialTimeout = 10 * time.Second
	// WriteTimeout bounds writing one message.
	WriteTimeout = 5 * time.Second
	// DrainTimeout bounds the wait for messages still in flight once
	// sending stops.
	DrainTimeout = 5 * time.Second
	// CloseTimeout bounds closing one connection at the end.
	CloseTimeout = 5 * time.Second
	// dialConcurrency bounds the connections being opened at once.
	dialConcurrency = 64
	// maxSamplesPerPair bounds the latency samples kept per pair; later
	// deliveries are counted but not sampled.
	maxSamplesPerPair = 1 << 20
	// drainPoll is how often the drain checks the delivery counters.
	drainPoll = 5 * time.Millisecond
	// tsDigits is the fixed width of the timestamp in an offer.
	tsDigits = 20
)

// marker precedes the send timestamp (nanoseconds on the run's monotonic
// clock) in the offer's SDP origin line.
var marker = []byte("o=rtckit-bench ")

// Options configure a run. The zero value of every field but URL and
// Pairs (or Idle) works.
type Options struct {
	// URL is the hub's WebSocket URL, ws://host:port/ws.
	URL string
	// Pairs is the number of sender→receiver pairs.
	Pairs int
	// Rate is the total target messages per second; 0 sends as fast as
	// Window messages in flight per pair allow.
	Rate float64
	// Window is the messages in flight per pair when Rate is 0
	// (DefaultWindow when 0).
	Window int
	// PayloadBytes is the size of the fake SDP of each offer
	// (DefaultPayloadBytes when 0).
	PayloadBytes int
	// Duration is how long to send or hold (DefaultDuration when 0).
	Duration time.Duration
	// Idle is the number of extra connections held without registering.
	Idle int
	// Churn is sender reconnects per second, spread over the pairs.
	Churn float64
	// SourceIPs spread the client connections over these local
	// addresses (round robin); none lets the system choose.
	SourceIPs []netip.Addr
	// Token is the hub's access token, sent as Authorization: Bearer.
	Token string
	// HubPID, when not 0, is the hub's process on this machine: its
	// memory and CPU time are read from /proc before and after.
	HubPID int
	// ProcRoot is the proc file system ("/proc" when empty).
	ProcRoot string
	// Protocol is the hub's protocol (ProtocolClassic when empty).
	Protocol Protocol
	// Engine is how the pairs are driven: EngineLoop, EngineGoroutines,
	// or EngineAuto (the event loop where it works).
	Engine Engine
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// Engine is a way of driving the pairs' connections.
type Engine string

// Engines.
const (
	// EngineAuto is EngineLoop on Linux with ws:// and no churn, else
	// EngineGoroutines.
	EngineAuto Engine = ""
	// EngineLoop is one goroutine on its own thread that sends on
	// schedule and reads every pair's socket through epoll (Linux, ws://,
	// no churn).
	EngineLoop Engine = "loop"
	// EngineGoroutines is a goroutine per sender and per connection's
	// reader.
	EngineGoroutines Engine = "goroutines"
)

// useLoop tells whether normalized options run the event loop.
func (o *Options) useLoop() bool {
	return o.Pairs > 0 && (o.Engine == EngineLoop || (o.Engine == EngineAuto && o.loopWorks() == nil))
}

// loopWorks returns why the event loop cannot run these options, or nil.
func (o *Options) loopWorks() error {
	switch {
	case !loopSupported:
		return errors.New("the event-loop engine needs Linux")
	case !strings.HasPrefix(o.URL, "ws://"):
		return errors.New("the event-loop engine needs a ws:// URL")
	case o.Churn > 0:
		return errors.New("the event-loop engine does not reconnect: no churn")
	}
	return loopProbe()
}

// Result is what a run measured.
type Result struct {
	// Pairs, Idle, Rate and PayloadBytes repeat the options.
	Pairs        int     `json:"pairs"`
	Idle         int     `json:"idle"`
	Rate         float64 `json:"target_rate"`
	PayloadBytes int     `json:"payload_bytes"`
	// Engine is the engine that drove the pairs.
	Engine Engine `json:"engine"`
	// Elapsed is how long messages were sent (or connections held).
	Elapsed time.Duration `json:"elapsed_ns"`
	// Connections is the number of connections open at the end.
	Connections int64 `json:"connections"`
	// Reconnects counts senders reconnected, for churn or after a failed
	// write.
	Reconnects int64 `json:"reconnects"`
	// Sent and Delivered count offers; Lost = Sent - Delivered.
	Sent      int64 `json:"sent"`
	Delivered int64 `json:"delivered"`
	Lost      int64 `json:"lost"`
	// MessagesPerSecond is Delivered / Elapsed.
	MessagesPerSecond float64 `json:"messages_per_second"`
	// Latency is nil when nothing was delivered.
	Latency *Latency `json:"latency,omitempty"`
	// SocketLatency runs from the send to the kernel's receipt of the
	// message at the receiver's socket (SO_TIMESTAMPNS, Linux, ws:// only),
	// leaving out the generator's own delay in reading it; nil when not
	// measured.
	SocketLatency *Latency `json:"socket_latency,omitempty"`
	// Hub is nil when the hub's process was not measured.
	Hub *HubUsage `json:"hub,omitempty"`
	// Generator is this process's own CPU use while it sent: when its
	// share of a core nears 1, the generator, not the hub, limits the
	// rate and adds to the latency.
	Generator *GeneratorUsage `json:"generator,omitempty"`
	// Errors are the failures seen; they are data, not a failed run.
	Errors Errors `json:"errors"`
}

// Latency is a delivery latency distribution: from just before the
// sender's write to the receiver's read of the message (Result.Latency) or
// to its arrival at the receiver's socket (Result.SocketLatency).
type Latency struct {
	Samples int           `json:"samples"`
	P50     time.Duration `json:"p50_ns"`
	P90     time.Duration `json:"p90_ns"`
	P99     time.Duration `json:"p99_ns"`
	Max     time.Duration `json:"max_ns"`
}

// HubUsage is the hub process's memory and CPU time, read from /proc.
type HubUsage struct {
	PID int `json:"pid"`
	// RSSBefore is the hub's resident memory before the run connected,
	// RSSAfter while the connections were still held at the end.
	RSSBefore int64 `json:"rss_before_bytes"`
	RSSAfter  int64 `json:"rss_after_bytes"`
	// BytesPerConnection is (RSSAfter - RSSBefore) / Connections.
	BytesPerConnection float64 `json:"bytes_per_connection"`
	// CPU is the hub's user+system time while sending and draining.
	CPU time.Duration `json:"cpu_ns"`
	// CPUPerMessage is CPU / Delivered; MessagesPerCPUSecond its inverse.
	CPUPerMessage        time.Duration `json:"cpu_per_message_ns"`
	MessagesPerCPUSecond float64       `json:"messages_per_cpu_second"`
	// LoopTurns is how long the hub's loop works on each wake-up (a bound on
	// a message's time in the hub after its read), from the event-loop
	// histogram of its /metrics; nil when /metrics could not be read or
	// the hub serves without its event loop.
	LoopTurns *LoopTurns `json:"loop_turns,omitempty"`
}

// Errors count what went wrong during a run.
type Errors struct {
	// Dial counts connections that could not be opened or registered.
	Dial int64 `json:"dial"`
	// Send counts offers that could not be written.
	Send int64 `json:"send"`
	// Disconnects counts connections closed by the hub or the network.
	Disconnects int64 `json:"disconnects"`
	// Server counts the hub's error messages by code.
	Server map[string]int64 `json:"server,omitempty"`
}

// conn is one client connection with its reader.
type conn struct {
	ws      *wsClient
	name    string
	direct  bool // no reader goroutine: the event loop reads it
	closing atomic.Bool
	done    chan struct{} // closed when the reader returns
}

// pair is a sender and a receiver; only the receiver's reader writes lat.
type pair struct {
	idx       int
	target    string
	sender    *conn
	receiver  *conn
	sent      atomic.Int64
	delivered atomic.Int64
	window    chan struct{}
	churn     chan struct{}
	lat       []time.Duration
	socketLat []time.Duration
}

// run is the state of one Run.
type run struct {
	opts    Options
	log     *slog.Logger
	base    time.Time
	id      string
	url     *url.URL
	dialers []*net.Dialer
	next    atomic.Uint64 // round robin over dialers

	open        atomic.Int64
	reconnects  atomic.Int64
	dialErrs    atomic.Int64
	sendErrs    atomic.Int64
	disconnects atomic.Int64
	mu          sync.Mutex
	server      map[string]int64
	readers     sync.WaitGroup
	rctx        context.Context // ends the readers
	loop        bool            // the event loop sends and reads the pairs
}

// Run connects, sends for opts.Duration, waits for messages in flight,
// closes every connection and returns what it measured. Connection and
// send failures are counted in the result; Run fails on invalid options,
// when no pair could connect, or when ctx ends before the run started.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	r := &run{opts: opts, log: opts.Logger, base: time.Now(), server: map[string]int64{}}
	var idb [4]byte
	_, _ = rand.Read(idb[:]) // crypto/rand.Read never fails
	r.id = hex.EncodeToString(idb[:])
	r.dialers = dialers(opts.SourceIPs)
	r.url, _ = url.Parse(opts.URL) // checked by normalize

	var before procSample
	if opts.HubPID != 0 {
		s, err := readProc(opts.ProcRoot, opts.HubPID)
		if err != nil {
			return nil, fmt.Errorf("%w: --hub-pid %d: %v", ErrInvalidOptions, opts.HubPID, err)
		}
		before = s
	}

	rctx, cancelReaders := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReaders()
	r.rctx = rctx
	r.loop = opts.useLoop()
	pairs := r.connectPairs(ctx, rctx)
	idle := r.connectIdle(ctx, rctx)
	defer func() { r.closeAll(pairs, idle); cancelReaders(); r.readers.Wait() }()
	if opts.Pairs > 0 && len(pairs) == 0 {
		return nil, fmt.Errorf("%w (%d connection failures)", ErrNoConnections, r.dialErrs.Load())
	}
	r.log.Info("connected", "pairs", len(pairs), "idle", len(idle), "open", r.open.Load())

	var cpuStart procSample
	var turnsStart bucketCounts
	if opts.HubPID != 0 {
		turnsStart = r.loopTurns(ctx)
		cpuStart, _ = readProc(opts.ProcRoot, opts.HubPID) // read just before; a failure shows as zero CPU
	}
	self, selfErr := readProc(opts.ProcRoot, os.Getpid())
	start := time.Now()
	var elapsed time.Duration
	var selfEnd procSample
	var selfEndErr error
	sent := func() {
		elapsed = time.Since(start)
		selfEnd, selfEndErr = readProc(opts.ProcRoot, os.Getpid())
	}
	var el *eventLoop
	if r.loop {
		var err error
		if el, err = r.newEventLoop(pairs); err != nil {
			return nil, err
		}
		el.runLoop(ctx, sent)
	} else {
		r.send(ctx, pairs)
		sent()
		r.drain(ctx, pairs)
	}

	res := &Result{
		Pairs: opts.Pairs, Idle: opts.Idle, Rate: opts.Rate, PayloadBytes: opts.PayloadBytes,
		Elapsed: elapsed, Connections: r.open.Load(), Engine: EngineGoroutines,
	}
	if opts.HubPID != 0 {
		if after, err := readProc(opts.ProcRoot, opts.HubPID); err == nil {
			res.Hub = hubUsage(opts.HubPID, before, cpuStart, after)
			if turnsStart != nil {
				if turnsEnd := r.loopTurns(ctx); turnsEnd != nil {
					res.Hub.LoopTurns = loopTurnsBetween(turnsStart, turnsEnd)
				}
			}
		} else {
			r.log.Warn("reading the hub's /proc", "err", err)
		}
	}
	if el != nil {
		res.Engine = EngineLoop
		el.close()
	}
	r.closeAll(pairs, idle)
	cancelReaders()
	r.readers.Wait()

	var lat, socketLat []time.Duration
	for _, p := range pairs {
		res.Sent += p.sent.Load()
		res.Delivered += p.delivered.Load()
		lat = append(lat, p.lat...)
		socketLat = append(socketLat, p.socketLat...)
	}
	res.Lost = res.Sent - res.Delivered
	if elapsed > 0 {
		res.MessagesPerSecond = float64(res.Delivered) / elapsed.Seconds()
	}
	res.Latency = latencyOf(lat)
	res.SocketLatency = latencyOf(socketLat)
	res.Reconnects = r.reconnects.Load()
	res.Errors = Errors{Dial: r.dialErrs.Load(), Send: r.sendErrs.Load(), Disconnects: r.disconnects.Load()}
	r.mu.Lock()
	if len(r.server) > 0 {
		res.Errors.Server = r.server
	}
	r.mu.Unlock()
	if res.Hub != nil {
		res.Hub.finish(res.Connections, res.Delivered)
	}
	if selfErr == nil && selfEndErr == nil && len(pairs) > 0 {
		res.Generator = generatorUsage(self, selfEnd, elapsed, res.Delivered)
	}
	return res, nil
}

// Check reports what Run would refuse in o (ErrInvalidOptions).
func (o Options) Check() error { return o.normalize() }

// normalize checks the options and fills in the defaults.
func (o *Options) normalize() error {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("%w: URL %q is not a ws:// or wss:// URL", ErrInvalidOptions, o.URL)
	}
	switch {
	case o.Pairs < 0 || o.Idle < 0:
		return fmt.Errorf("%w: pairs and idle must not be negative", ErrInvalidOptions)
	case o.Pairs == 0 && o.Idle == 0:
		return fmt.Errorf("%w: nothing to do: no pairs and no idle connections", ErrInvalidOptions)
	case o.Rate < 0 || o.Churn < 0 || o.PayloadBytes < 0 || o.Duration < 0 || o.Window < 0:
		return fmt.Errorf("%w: rate, churn, payload, duration and window must not be negative", ErrInvalidOptions)
	case o.Churn > 0 && o.Pairs == 0:
		return fmt.Errorf("%w: churn needs pairs", ErrInvalidOptions)
	}
	switch o.Protocol {
	case "":
		o.Protocol = ProtocolClassic
	case ProtocolClassic, ProtocolPeerJS:
	default:
		return fmt.Errorf("%w: unknown protocol %q (classic, peerjs)", ErrInvalidOptions, o.Protocol)
	}
	switch o.Engine {
	case EngineAuto, EngineGoroutines:
	case EngineLoop:
		if err := o.loopWorks(); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidOptions, err)
		}
	default:
		return fmt.Errorf("%w: unknown engine %q (loop, goroutines)", ErrInvalidOptions, o.Engine)
	}
	for _, ip := range o.SourceIPs {
		if !ip.IsValid() {
			return fmt.Errorf("%w: invalid source address", ErrInvalidOptions)
		}
	}
	if o.PayloadBytes == 0 {
		o.PayloadBytes = DefaultPayloadBytes
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// hubUsage starts the hub's usage from the samples before connecting,
// before sending and at the end.
func hubUsage(pid int, before, start, after procSample) *HubUsage {
	return &HubUsage{PID: pid, RSSBefore: before.RSS, RSSAfter: after.RSS, CPU: after.CPU - start.CPU}
}

// GeneratorUsage is the load generator's CPU time while sending.
type GeneratorUsage struct {
	// CPU is the generator's user and system time while it sent.
	CPU time.Duration `json:"cpu_ns"`
	// CPUPerMessage is CPU per delivered message (sending and receiving it).
	CPUPerMessage time.Duration `json:"cpu_per_message_ns"`
	// CoreShare is CPU divided by the sending time: 1 is one core busy.
	CoreShare float64 `json:"core_share"`
}

// generatorUsage derives the generator's figures from two samples of its
// own process, taken around the sending.
func generatorUsage(start, end procSample, elapsed time.Duration, delivered int64) *GeneratorUsage {
	g := &GeneratorUsage{CPU: end.CPU - start.CPU}
	if delivered > 0 {
		g.CPUPerMessage = g.CPU / time.Duration(delivered)
	}
	if elapsed > 0 {
		g.CoreShare = g.CPU.Seconds() / elapsed.Seconds()
	}
	return g
}

// finish derives the per-connection and per-message figures.
func (h *HubUsage) finish(conns, delivered int64) {
	if conns > 0 {
		h.BytesPerConnection = float64(h.RSSAfter-h.RSSBefore) / float64(conns)
	}
	if delivered > 0 {
		h.CPUPerMessage = h.CPU / time.Duration(delivered)
		if h.CPU > 0 {
			h.MessagesPerCPUSecond = float64(delivered) / h.CPU.Seconds()
		}
	}
}
