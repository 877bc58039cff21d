package icegather

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/peer"
)

// Defaults of a gathering run.
const (
	// DefaultTimeout bounds a whole run when the context has no deadline.
	DefaultTimeout = 10 * time.Second
	// DefaultServerTimeout bounds how long one server may take to produce
	// its candidates before it counts as failed and is diagnosed. A working
	// server answers in a few round trips; only a silent one waits this long.
	DefaultServerTimeout = 3 * time.Second
	// DefaultRelayCheckCount is how many messages a relay check sends.
	DefaultRelayCheckCount = 50
	// DefaultRelayCheckInterval spaces the relay check's messages.
	DefaultRelayCheckInterval = 10 * time.Millisecond
	// relayCheckDrain is how long a relay check waits for the last echoes.
	relayCheckDrain = time.Second
)

// Options configures a gathering run. The zero value of every optional field works.
type Options struct {
	// Servers are the STUN and TURN servers, each gathered on its own so
	// that its timing and errors are its own. Host candidates are gathered
	// once, without servers.
	Servers []peer.ICEServer
	// ICE holds the shared ICE options (networks, interfaces, mDNS, policy).
	ICE peer.ICEConfig
	// Require lists candidate types that must appear (host, srflx, relay).
	Require []string
	// RelayCheck proves data flows through every TURN server that gave a
	// relay candidate, with a relay-only PeerConnection pair and a DataChannel.
	RelayCheck bool
	// RelayCheckCount and RelayCheckInterval shape the relay check's burst.
	RelayCheckCount    int
	RelayCheckInterval time.Duration
	// ServerTimeout bounds each server's gathering (DefaultServerTimeout when zero).
	ServerTimeout time.Duration
	// Net replaces the host network (pion's vnet in tests).
	Net transport.Net
	// Logger receives pion's logs and progress; nil discards them.
	Logger *slog.Logger
	// OnEvent, when set, receives every event as it happens (trickle).
	OnEvent func(Event)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Validate checks everything about the options that needs no network: the
// shared ICE options, the server schemes, the required candidate types and
// the combinations of flags that can never be met. Gather calls it first; a
// command calls it before printing anything, so that a bad option is reported
// alone.
func (o *Options) Validate() error {
	if err := o.ICE.Validate(); err != nil {
		return err
	}
	hasTURN := false
	for _, s := range o.Servers {
		if err := peer.CheckICEUsable(s.URI); err != nil {
			return err
		}
		hasTURN = hasTURN || s.URI.IsTURN()
	}
	for _, t := range o.Require {
		if !slices.Contains([]string{TypeHost, TypeSrflx, TypeRelay}, t) {
			return fmt.Errorf("%w: unknown candidate type %q (want host, srflx or relay)", peer.ErrICEConfig, t)
		}
	}
	relayOnly := o.ICE.Policy == peer.PolicyRelay
	for _, t := range o.Require {
		switch {
		case t == TypeRelay && !hasTURN:
			return fmt.Errorf("%w: --require relay needs a TURN server (--turn)", peer.ErrICEConfig)
		case t == TypeSrflx && len(o.Servers) == 0:
			return fmt.Errorf("%w: --require srflx needs a STUN or TURN server (--stun, --turn)", peer.ErrICEConfig)
		case t != TypeRelay && relayOnly:
			return fmt.Errorf("%w: --require %s can never be met with --ice-policy relay, which gathers relay candidates only", peer.ErrICEConfig, t)
		}
	}
	if o.RelayCheck && !hasTURN {
		return ErrNoTURN
	}
	return nil
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// gatherer holds one run's shared state.
type gatherer struct {
	opts  Options
	start time.Time
	log   *slog.Logger

	mu     sync.Mutex
	report *Report
}

// Gather gathers candidates from every server at once and returns when each
// has produced its candidates or failed, or when ctx ends. Server failures
// are results in the report; Gather's error is for invalid options (see
// Options.Validate) and a host network that cannot be opened. When ctx is
// cancelled (not timed out) before the run is over, the report holds what was
// gathered until then and is marked Interrupted.
func Gather(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.ServerTimeout <= 0 {
		opts.ServerTimeout = DefaultServerTimeout
	}
	gatherTimeout := opts.ServerTimeout
	if d, ok := ctx.Deadline(); ok {
		gatherTimeout = min(gatherTimeout, time.Until(d))
	}
	api, err := peer.NewAPI(peer.APIConfig{ICE: opts.ICE, Net: opts.Net, Logger: log, STUNGatherTimeout: gatherTimeout})
	if err != nil {
		return nil, err
	}
	g := &gatherer{opts: opts, start: opts.now(), log: log}
	g.report = &Report{Schema: SchemaVersion, StartedAt: g.start, Candidates: []Candidate{}, Findings: []Finding{},
		Servers: make([]ServerResult, len(opts.Servers)), Counts: map[string]int{}}

	var wg sync.WaitGroup
	relayOnly := opts.ICE.Policy == peer.PolicyRelay
	if !relayOnly {
		wg.Go(func() { g.gatherHost(ctx, api) })
	}
	for i, s := range opts.Servers {
		g.report.Servers[i] = newServerResult(s)
		if relayOnly && !s.URI.IsTURN() {
			g.report.Servers[i].Status = StatusSkipped
			g.report.Servers[i].Error = "skipped: the ICE transport policy is relay"
			continue
		}
		wg.Go(func() { g.gatherServer(ctx, api, i, s) })
	}
	wg.Wait()

	if opts.RelayCheck && !interrupted(ctx) {
		relayAPI, err := peer.NewAPI(peer.APIConfig{ICE: opts.ICE, Net: opts.Net, Logger: log, NoRelayWait: true})
		if err != nil {
			return nil, err
		}
		g.runRelayChecks(ctx, relayAPI)
	}
	r := g.report
	r.Interrupted = interrupted(ctx)
	r.DurationMS = g.elapsedMS()
	sortCandidates(r.Candidates)
	for _, c := range r.Candidates {
		r.Counts[c.Type]++
	}
	r.Findings = findings(r, opts.ICE)
	for _, t := range opts.Require {
		if r.Counts[t] == 0 && !r.Interrupted {
			r.Missing = append(r.Missing, t)
		}
	}
	g.emit(Event{Event: EventDone, Report: r})
	return r, nil
}

// interrupted reports whether ctx was cancelled rather than timed out: the
// caller stopped the run (SIGINT, SIGTERM) before it was over.
func interrupted(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.Canceled)
}

func newServerResult(s peer.ICEServer) ServerResult {
	sr := ServerResult{URI: s.URI.String(), Kind: "stun", Transport: string(s.URI.Transport), Expected: TypeSrflx}
	if s.URI.Secure() && s.URI.Transport == peer.TransportTCP {
		sr.Transport = "tls"
	}
	if s.URI.IsTURN() {
		sr.Kind, sr.Expected = "turn", TypeRelay
		switch {
		case s.REST:
			sr.Credentials = "rest"
		case s.URI.Username != "":
			sr.Credentials = "uri"
		default:
			sr.Credentials = "flags"
		}
	}
	return sr
}

func (g *gatherer) elapsedMS() float64 {
	return float64(g.opts.now().Sub(g.start).Microseconds()) / 1000
}

func (g *gatherer) emit(e Event) {
	if g.opts.OnEvent != nil {
		e.Schema = SchemaVersion
		g.opts.OnEvent(e)
	}
}

// gatherHost gathers host candidates with a PeerConnection that has no servers.
func (g *gatherer) gatherHost(ctx context.Context, api *webrtc.API) {
	_, _ = g.gatherPC(ctx, api, g.opts.ICE.Configuration(nil), func(c *webrtc.ICECandidate) bool {
		return c.Typ == webrtc.ICECandidateTypeHost
	}, "", "")
}

// gatherServer gathers the candidates one server produces and records how it did.
func (g *gatherer) gatherServer(ctx context.Context, api *webrtc.API, i int, s peer.ICEServer) {
	sr := g.report.Servers[i]
	relayProto := ""
	if s.URI.IsTURN() {
		relayProto = sr.Transport
	}
	n := 0
	serverCtx, cancel := context.WithTimeout(ctx, g.opts.ServerTimeout)
	defer cancel()
	first, err := g.gatherPC(serverCtx, api, g.opts.ICE.Configuration([]peer.ICEServer{s}), func(c *webrtc.ICECandidate) bool {
		if c.Typ.String() == sr.Expected {
			n++ // under g.mu, see gatherPC
		}
		return c.Typ != webrtc.ICECandidateTypeHost
	}, sr.URI, relayProto)
	g.mu.Lock()
	sr.Candidates = n
	g.mu.Unlock()
	sr.DoneMS = g.elapsedMS()
	if first >= 0 {
		sr.FirstCandidateMS = &first
	}
	switch {
	case n > 0:
		sr.Status = StatusOK
	case interrupted(ctx):
		// Not a failure of the server: there is nothing to diagnose.
		sr.Status, sr.Error = StatusInterrupted, "interrupted before the server produced a candidate"
	default:
		sr.Status = StatusFailed
		d := diagnose(ctx, s, g.opts.Net, g.log)
		if err != nil && d.kind == KindNoCandidate {
			d.message = err.Error()
		}
		sr.ErrorKind, sr.ErrorCode, sr.Error = d.kind, d.code, d.message
		if interrupted(ctx) {
			// The diagnosis was cut short: its silence proves nothing.
			sr.Status, sr.ErrorKind, sr.ErrorCode = StatusInterrupted, "", 0
			sr.Error = "interrupted while finding out why the server produced no candidate"
		}
	}
	g.mu.Lock()
	g.report.Servers[i] = sr
	g.mu.Unlock()
	g.emit(Event{Event: EventServer, Server: &sr})
}

// gatherPC runs one PeerConnection's gathering, keeping the candidates keep
// accepts, and returns the time of the first kept one (-1 when none).
func (g *gatherer) gatherPC(ctx context.Context, api *webrtc.API, cfg webrtc.Configuration,
	keep func(*webrtc.ICECandidate) bool, server, relayProto string,
) (float64, error) {
	first := -1.0
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		return first, err
	}
	defer func() { _ = pc.Close() }()
	done := make(chan struct{})
	var once sync.Once
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			once.Do(func() { close(done) })
			return
		}
		g.mu.Lock()
		if !keep(c) {
			g.mu.Unlock()
			return
		}
		cand := convert(c, g.elapsedMS(), server, relayProto)
		if first < 0 {
			first = cand.ElapsedMS
		}
		g.report.Candidates = append(g.report.Candidates, cand)
		g.mu.Unlock()
		g.emit(Event{Event: EventCandidate, Candidate: &cand})
	})
	if _, err := pc.CreateDataChannel("gather", nil); err != nil {
		return first, err
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return first, err
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return first, err
	}
	var waitErr error
	select {
	case <-done:
	case <-ctx.Done():
		waitErr = fmt.Errorf("no candidate before the server timeout")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return first, waitErr
}

// convert turns pion's candidate into a report entry.
func convert(c *webrtc.ICECandidate, elapsed float64, server, relayProto string) Candidate {
	out := Candidate{
		ElapsedMS: elapsed, Type: c.Typ.String(), Foundation: c.Foundation, Component: c.Component,
		Protocol: c.Protocol.String(), Address: c.Address, Port: c.Port, Priority: c.Priority,
		TypePreference: c.Priority >> 24, LocalPreference: (c.Priority >> 8) & 0xffff, ComponentPreference: c.Priority & 0xff,
		RelatedAddress: c.RelatedAddress, RelatedPort: c.RelatedPort, TCPType: c.TCPType, Server: server,
	}
	if c.Typ == webrtc.ICECandidateTypeRelay {
		out.RelayProtocol = relayProto
	}
	return out
}

// sortCandidates orders candidates by arrival, then priority.
func sortCandidates(cs []Candidate) {
	slices.SortStableFunc(cs, func(a, b Candidate) int {
		switch {
		case a.ElapsedMS < b.ElapsedMS:
			return -1
		case a.ElapsedMS > b.ElapsedMS:
			return 1
		case a.Priority > b.Priority:
			return -1
		case a.Priority < b.Priority:
			return 1
		}
		return 0
	})
}
