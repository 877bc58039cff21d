// Package loadgen is a load generator for rtckit's signaling hub: it opens
// sender→receiver pairs that speak the classic chat-server protocol, sends
// targeted video-offer messages at a set rate (or as fast as a window of
// messages in flight allows), holds extra idle connections, reconnects
// senders to model churn, and measures delivery latency from a send
// timestamp embedded in each offer. When the hub runs on this machine it
// also reads the hub's memory and CPU time from /proc.
package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
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
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// Result is what a run measured.
type Result struct {
	// Pairs, Idle, Rate and PayloadBytes repeat the options.
	Pairs        int     `json:"pairs"`
	Idle         int     `json:"idle"`
	Rate         float64 `json:"target_rate"`
	PayloadBytes int     `json:"payload_bytes"`
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
	// Hub is nil when the hub's process was not measured.
	Hub *HubUsage `json:"hub,omitempty"`
	// Errors are the failures seen; they are data, not a failed run.
	Errors Errors `json:"errors"`
}

// Latency is the delivery latency distribution, send to receipt.
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
	ws      *websocket.Conn
	name    string
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
}

// run is the state of one Run.
type run struct {
	opts    Options
	log     *slog.Logger
	base    time.Time
	id      string
	clients []*http.Client
	next    atomic.Uint64 // round robin over clients

	open        atomic.Int64
	reconnects  atomic.Int64
	dialErrs    atomic.Int64
	sendErrs    atomic.Int64
	disconnects atomic.Int64
	mu          sync.Mutex
	server      map[string]int64
	readers     sync.WaitGroup
	rctx        context.Context // ends the readers
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
	r.clients = httpClients(opts.SourceIPs)

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
	pairs := r.connectPairs(ctx, rctx)
	idle := r.connectIdle(ctx, rctx)
	defer func() { r.closeAll(pairs, idle); cancelReaders(); r.readers.Wait() }()
	if opts.Pairs > 0 && len(pairs) == 0 {
		return nil, fmt.Errorf("%w (%d connection failures)", ErrNoConnections, r.dialErrs.Load())
	}
	r.log.Info("connected", "pairs", len(pairs), "idle", len(idle), "open", r.open.Load())

	var cpuStart procSample
	if opts.HubPID != 0 {
		cpuStart, _ = readProc(opts.ProcRoot, opts.HubPID) // read just before; a failure shows as zero CPU
	}
	start := time.Now()
	r.send(ctx, pairs)
	elapsed := time.Since(start)
	r.drain(ctx, pairs)

	res := &Result{
		Pairs: opts.Pairs, Idle: opts.Idle, Rate: opts.Rate, PayloadBytes: opts.PayloadBytes,
		Elapsed: elapsed, Connections: r.open.Load(),
	}
	if opts.HubPID != 0 {
		if after, err := readProc(opts.ProcRoot, opts.HubPID); err == nil {
			res.Hub = hubUsage(opts.HubPID, before, cpuStart, after)
		} else {
			r.log.Warn("reading the hub's /proc", "err", err)
		}
	}
	r.closeAll(pairs, idle)
	cancelReaders()
	r.readers.Wait()

	var lat []time.Duration
	for _, p := range pairs {
		res.Sent += p.sent.Load()
		res.Delivered += p.delivered.Load()
		lat = append(lat, p.lat...)
	}
	res.Lost = res.Sent - res.Delivered
	if elapsed > 0 {
		res.MessagesPerSecond = float64(res.Delivered) / elapsed.Seconds()
	}
	res.Latency = latencyOf(lat)
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
	return res, nil
}

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

// httpClients returns one HTTP client per source address (one default
// client when there are none).
func httpClients(ips []netip.Addr) []*http.Client {
	if len(ips) == 0 {
		return []*http.Client{{Transport: &http.Transport{DialContext: (&net.Dialer{}).DialContext}}}
	}
	out := make([]*http.Client, 0, len(ips))
	for _, ip := range ips {
		d := &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))}
		out = append(out, &http.Client{Transport: &http.Transport{DialContext: d.DialContext}})
	}
	return out
}

// dial opens one connection and starts its reader, which hands every
// message to onMsg until the connection ends.
func (r *run) dial(ctx, rctx context.Context, onMsg func([]byte)) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	hc := r.clients[int(r.next.Add(1)%uint64(len(r.clients)))]
	dopts := &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{"json"}}
	if r.opts.Token != "" {
		dopts.HTTPHeader = http.Header{"Authorization": {"Bearer " + r.opts.Token}}
	}
	ws, resp, err := websocket.Dial(dctx, r.opts.URL, dopts)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close() // nothing to read from a handshake response
	}
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(-1)
	c := &conn{ws: ws, done: make(chan struct{})}
	r.open.Add(1)
	r.readers.Add(1)
	go func() {
		defer r.readers.Done()
		defer close(c.done)
		defer r.open.Add(-1)
		for {
			_, data, err := ws.Read(rctx)
			if err != nil {
				if !c.closing.Load() && rctx.Err() == nil {
					r.disconnects.Add(1)
					r.log.Info("connection lost", "name", c.name, "err", err)
				}
				_ = ws.CloseNow() // the connection is over either way
				return
			}
			if bytes.HasPrefix(data, []byte(`{"type":"error"`)) {
				r.serverError(data)
				continue
			}
			if onMsg != nil {
				onMsg(data)
			}
		}
	}()
	return c, nil
}

// serverError counts an error message by code.
func (r *run) serverError(data []byte) {
	var m struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(data, &m) // an undecodable error still counts, as ""
	r.mu.Lock()
	r.server[m.Code]++
	r.mu.Unlock()
}

// register asks for name and returns the name the hub registered. The
// ping sent after it is answered once the hub has handled the username,
// so the pong marks the registration as done.
func (r *run) register(ctx context.Context, name string, replies <-chan []byte, c *conn) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	msg := fmt.Appendf(nil, `{"type":"username","name":%q}`, name)
	if err := c.ws.Write(rctx, websocket.MessageText, msg); err != nil {
		return "", err
	}
	if err := c.ws.Write(rctx, websocket.MessageText, []byte(`{"type":"ping","ts":1}`)); err != nil {
		return "", err
	}
	for {
		select {
		case data := <-replies:
			var m struct {
				Type string `json:"type"`
				Name string `json:"name"`
			}
			if json.Unmarshal(data, &m) != nil {
				continue
			}
			switch m.Type {
			case "rejectusername":
				name = m.Name
			case "pong":
				return name, nil
			}
		case <-c.done:
			return "", errors.New("connection closed while registering")
		case <-rctx.Done():
			return "", rctx.Err()
		}
	}
}

// setupReplies returns a message handler that passes messages to the
// registration until it is done, then to after.
type setupReplies struct {
	ch     chan []byte
	ready  atomic.Bool
	failed chan struct{} // closed when the registration gave up
	after  func([]byte)
}

func newSetupReplies(after func([]byte)) *setupReplies {
	return &setupReplies{ch: make(chan []byte, 64), failed: make(chan struct{}), after: after}
}

func (s *setupReplies) handle(data []byte) {
	if s.ready.Load() {
		if s.after != nil {
			s.after(data)
		}
		return
	}
	select {
	case s.ch <- data:
	default: // a userlist flood during setup; only pong and rejectusername matter
		if bytes.Contains(data, []byte(`"pong"`)) || bytes.Contains(data, []byte(`"rejectusername"`)) {
			select {
			case s.ch <- data:
			case <-s.failed:
			}
		}
	}
}

// client opens a connection and registers name on it.
func (r *run) client(ctx, rctx context.Context, name string, after func([]byte)) (*conn, error) {
	sr := newSetupReplies(after)
	c, err := r.dial(ctx, rctx, sr.handle)
	if err != nil {
		return nil, err
	}
	got, err := r.register(ctx, name, sr.ch, c)
	if err != nil {
		close(sr.failed)
		c.closing.Store(true)
		_ = c.ws.CloseNow()
		return nil, err
	}
	c.name = got
	sr.ready.Store(true)
	return c, nil
}

// connectPairs opens and registers the pairs; pairs that fail are
// counted and left out.
func (r *run) connectPairs(ctx, rctx context.Context) []*pair {
	var (
		mu  sync.Mutex
		out []*pair
		wg  sync.WaitGroup
	)
	sem := make(chan struct{}, dialConcurrency)
	for i := range r.opts.Pairs {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			p := &pair{idx: i, window: make(chan struct{}, r.opts.Window), churn: make(chan struct{}, 1)}
			recv, err := r.client(ctx, rctx, fmt.Sprintf("b%s-r%d", r.id, i), p.receive(r))
			if err != nil {
				r.dialErrs.Add(1)
				r.log.Debug("receiver", "pair", i, "err", err)
				return
			}
			send, err := r.client(ctx, rctx, fmt.Sprintf("b%s-s%d", r.id, i), nil)
			if err != nil {
				r.dialErrs.Add(1)
				recv.closing.Store(true)
				_ = recv.ws.CloseNow()
				r.log.Debug("sender", "pair", i, "err", err)
				return
			}
			p.receiver, p.sender, p.target = recv, send, recv.name
			mu.Lock()
			out = append(out, p)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b *pair) int { return a.idx - b.idx })
	return out
}

// connectIdle opens the idle connections; they never register.
func (r *run) connectIdle(ctx, rctx context.Context) []*conn {
	var (
		mu  sync.Mutex
		out []*conn
		wg  sync.WaitGroup
	)
	sem := make(chan struct{}, dialConcurrency)
	for range r.opts.Idle {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := r.dial(ctx, rctx, nil)
			if err != nil {
				r.dialErrs.Add(1)
				r.log.Debug("idle", "err", err)
				return
			}
			mu.Lock()
			out = append(out, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// receive returns the receiver's handler: it counts offers, frees a
// window slot and samples the latency.
func (p *pair) receive(r *run) func([]byte) {
	return func(data []byte) {
		i := bytes.Index(data, marker)
		if i < 0 || len(data) < i+len(marker)+tsDigits {
			return
		}
		ts, err := strconv.ParseInt(string(data[i+len(marker):i+len(marker)+tsDigits]), 10, 64)
		if err != nil {
			return
		}
		lat := time.Since(r.base) - time.Duration(ts)
		if len(p.lat) < maxSamplesPerPair {
			p.lat = append(p.lat, lat)
		}
		p.delivered.Add(1)
		select {
		case <-p.window:
		default:
		}
	}
}

// send runs the senders and the churn for the duration.
func (r *run) send(ctx context.Context, pairs []*pair) {
	sctx, cancel := context.WithTimeout(ctx, r.opts.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range pairs {
		wg.Go(func() { r.sendLoop(sctx, p, len(pairs)) })
	}
	if r.opts.Churn > 0 && len(pairs) > 0 {
		wg.Go(func() { r.churn(sctx, pairs) })
	}
	<-sctx.Done()
	wg.Wait()
}

// churn asks one sender after another to reconnect, Churn times a second.
func (r *run) churn(ctx context.Context, pairs []*pair) {
	t := time.NewTicker(time.Duration(float64(time.Second) / r.opts.Churn))
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			select {
			case pairs[i%len(pairs)].churn <- struct{}{}:
			default: // still reconnecting
			}
		}
	}
}

// offer builds the pair's offer template and returns it with the offset
// of the timestamp digits.
func offer(target string, payload int) ([]byte, int) {
	head := "v=0\r\n" + string(marker) + strings.Repeat("0", tsDigits) + " 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
	const padHead, padTail = "a=x-pad:", "\r\n"
	if n := payload - len(head) - len(padHead) - len(padTail); n > 0 {
		head += padHead + strings.Repeat("x", n) + padTail
	}
	sdp, _ := json.Marshal(map[string]string{"type": "offer", "sdp": head}) // strings always marshal
	msg, _ := json.Marshal(struct {
		Type   string          `json:"type"`
		Target string          `json:"target"`
		SDP    json.RawMessage `json:"sdp"`
	}{"video-offer", target, sdp})
	return msg, bytes.Index(msg, marker) + len(marker)
}

// sendLoop sends offers to the pair's receiver at its share of Rate, or
// within its window, until ctx ends.
func (r *run) sendLoop(ctx context.Context, p *pair, n int) {
	msg, at := offer(p.target, r.opts.PayloadBytes)
	var interval time.Duration
	if r.opts.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(n) / r.opts.Rate)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	next := time.Now()
	for {
		if interval > 0 {
			if d := time.Until(next); d > 0 {
				timer.Reset(d)
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
			next = next.Add(interval)
		} else {
			select {
			case <-ctx.Done():
				return
			case p.window <- struct{}{}:
			case <-p.churn:
				r.reconnect(p)
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-p.churn:
			r.reconnect(p)
		default:
		}
		ts := strconv.AppendInt(nil, int64(time.Since(r.base)), 10)
		copy(msg[at:at+tsDigits], strings.Repeat("0", tsDigits-len(ts)))
		copy(msg[at+tsDigits-len(ts):], ts)
		// Not ctx: a write cancelled midway closes the connection.
		wctx, cancel := context.WithTimeout(r.rctx, WriteTimeout)
		err := p.sender.ws.Write(wctx, websocket.MessageText, msg)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.sendErrs.Add(1)
			r.reconnect(p) // the sender is broken; a new one carries on
			continue
		}
		p.sent.Add(1)
	}
}

// reconnect closes the pair's sender and opens a new one.
func (r *run) reconnect(p *pair) {
	old := p.sender
	old.closing.Store(true)
	_ = old.ws.Close(websocket.StatusNormalClosure, "churn") // a failed close handshake changes nothing here
	// Not ctx: a registration cut by the end of sending would count as a
	// lost connection; DialTimeout bounds it.
	c, err := r.client(r.rctx, r.rctx, fmt.Sprintf("b%s-s%d", r.id, p.idx), nil)
	if err != nil {
		r.dialErrs.Add(1)
		// Keep the closed sender: its writes fail and retry the reconnect.
		return
	}
	p.sender = c
	r.reconnects.Add(1)
}

// drain waits until every sent offer is delivered or DrainTimeout passes.
func (r *run) drain(ctx context.Context, pairs []*pair) {
	dctx, cancel := context.WithTimeout(ctx, DrainTimeout)
	defer cancel()
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for {
		var sent, got int64
		for _, p := range pairs {
			sent += p.sent.Load()
			got += p.delivered.Load()
		}
		if got >= sent {
			return
		}
		select {
		case <-dctx.Done():
			return
		case <-t.C:
		}
	}
}

// closeAll closes every connection, a few at a time; it is safe to call
// twice.
func (r *run) closeAll(pairs []*pair, idle []*conn) {
	var all []*conn
	for _, p := range pairs {
		all = append(all, p.sender, p.receiver)
	}
	all = append(all, idle...)
	sem := make(chan struct{}, dialConcurrency)
	var wg sync.WaitGroup
	for _, c := range all {
		if c.closing.Swap(true) {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			// Close waits for the hub's close frame, which the reader
			// sees; CloseNow after CloseTimeout.
			done := make(chan struct{})
			go func() { _ = c.ws.Close(websocket.StatusNormalClosure, "bench done"); close(done) }()
			select {
			case <-done:
			case <-time.After(CloseTimeout):
				_ = c.ws.CloseNow()
				<-done
			}
		})
	}
	wg.Wait()
}

// latencyOf returns the distribution of lat, nil when it is empty.
func latencyOf(lat []time.Duration) *Latency {
	if len(lat) == 0 {
		return nil
	}
	slices.Sort(lat)
	q := func(f float64) time.Duration {
		i := int(f*float64(len(lat))+0.999999999) - 1
		return lat[min(max(i, 0), len(lat)-1)]
	}
	return &Latency{Samples: len(lat), P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: lat[len(lat)-1]}
}

// hubUsage starts the hub's usage from the samples before connecting,
// before sending and at the end.
func hubUsage(pid int, before, start, after procSample) *HubUsage {
	return &HubUsage{PID: pid, RSSBefore: before.RSS, RSSAfter: after.RSS, CPU: after.CPU - start.CPU}
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
