package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rtckit/rtckit/signal"
)

// testTimeout bounds every run in these tests.
const testTimeout = 30 * time.Second

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startHub serves an in-process hub without a per-connection rate limit.
func startHub(t *testing.T) string {
	t.Helper()
	s, err := signal.NewServer(signal.Config{Hub: signal.HubConfig{Rate: -1}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.Close()
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
}

func TestRun(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"rate", Options{Pairs: 10, Rate: 500, Duration: time.Second, HubPID: os.Getpid()}},
		{"window", Options{Pairs: 10, Window: 4, Duration: 500 * time.Millisecond}},
		{"idle and churn", Options{Pairs: 4, Rate: 200, Idle: 20, Churn: 8, Duration: time.Second}},
		{"rate, goroutines", Options{Pairs: 10, Rate: 500, Duration: time.Second, Engine: EngineGoroutines}},
		{"window, goroutines", Options{Pairs: 10, Window: 4, Duration: 500 * time.Millisecond, Engine: EngineGoroutines}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.URL = startHub(t)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			res, err := Run(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent == 0 || res.Delivered != res.Sent || res.Lost != 0 {
				t.Errorf("sent %d, delivered %d, lost %d", res.Sent, res.Delivered, res.Lost)
			}
			if want := int64(2*opts.Pairs + opts.Idle); res.Connections != want {
				t.Errorf("connections = %d, want %d", res.Connections, want)
			}
			l := res.Latency
			if l == nil || l.Samples != int(res.Delivered) || l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max {
				t.Errorf("latency = %+v", l)
			}
			// On Linux the kernel stamps the offers' arrival too: never
			// after the receiver read them.
			if sl := res.SocketLatency; pollLoop && (sl == nil || sl.Samples == 0 || sl.Max > l.Max+time.Millisecond) {
				t.Errorf("socket latency = %+v, read latency %+v", sl, l)
			}
			if res.Errors.Dial != 0 || res.Errors.Send != 0 || len(res.Errors.Server) != 0 {
				t.Errorf("errors = %+v", res.Errors)
			}
			wantEngine := EngineGoroutines
			if pollLoop && opts.Churn == 0 && opts.Engine != EngineGoroutines {
				wantEngine = EngineLoop
			}
			if res.Engine != wantEngine {
				t.Errorf("engine = %q, want %q", res.Engine, wantEngine)
			}
			if opts.Churn > 0 && res.Reconnects == 0 {
				t.Error("no reconnects with churn")
			}
			if opts.HubPID != 0 && pollLoop {
				// The offers took turns of the loop; several may share one.
				lt := res.Hub.LoopTurns
				if lt == nil || lt.Turns == 0 || lt.P50Max <= 0 || lt.P50Max > lt.P99Max || lt.P99Max > lt.P999Max {
					t.Errorf("loop turns = %+v for %d delivered", lt, res.Delivered)
				}
			}
			if opts.Rate > 0 && res.MessagesPerSecond > 1.5*opts.Rate {
				t.Errorf("%.0f messages/s, over the target %.0f", res.MessagesPerSecond, opts.Rate)
			}
		})
	}
}

func TestRunIdleOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	res, err := Run(ctx, Options{URL: startHub(t), Idle: 30, Duration: 100 * time.Millisecond, HubPID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connections != 30 || res.Sent != 0 || res.Latency != nil {
		t.Errorf("result = %+v", res)
	}
	if res.Hub == nil || res.Hub.RSSAfter <= 0 || res.Hub.PID != os.Getpid() {
		t.Errorf("hub = %+v", res.Hub)
	}
}

func TestRunInvalid(t *testing.T) {
	for _, o := range []Options{
		{URL: "http://127.0.0.1:1/ws", Pairs: 1},
		{URL: "ws://127.0.0.1:1/ws"},
		{URL: "ws://127.0.0.1:1/ws", Pairs: -1},
		{URL: "ws://127.0.0.1:1/ws", Pairs: 1, Rate: -1},
		{URL: "ws://127.0.0.1:1/ws", Idle: 1, Churn: 1},
		{URL: "ws://127.0.0.1:1/ws", Pairs: 1, Engine: "threads"},
		{URL: "ws://127.0.0.1:1/ws", Pairs: 1, Churn: 1, Engine: EngineLoop},
		{URL: "wss://127.0.0.1:1/ws", Pairs: 1, Engine: EngineLoop},
	} {
		if _, err := Run(context.Background(), o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("Run(%+v) = %v, want ErrInvalidOptions", o, err)
		}
	}
}

// TestRunHubGone shuts the hub down while the pairs send: every
// connection is counted as lost, and the run still ends on time.
func TestRunHubGone(t *testing.T) {
	for _, engine := range []Engine{EngineAuto, EngineGoroutines} {
		t.Run(string(engine), func(t *testing.T) {
			// The hub serves each WebSocket from goroutines on the
			// listener's connections, so that offerWatch sees what it
			// writes.
			s, err := signal.NewServer(signal.Config{Hub: signal.HubConfig{Rate: -1}, Transport: signal.TransportGoroutines})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewUnstartedServer(s.Handler())
			watch := newOfferWatch(ts.Listener, 20)
			ts.Listener = watch
			ts.Start()
			defer ts.Close()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			type result struct {
				res *Result
				err error
			}
			done := make(chan result, 1)
			const pairs = 5
			go func() {
				res, err := Run(ctx, Options{URL: "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws", Pairs: pairs,
					Rate: 500, Duration: time.Second, Engine: engine})
				done <- result{res, err}
			}()
			// Shut down once the pairs are sending.
			select {
			case <-watch.reached:
			case <-ctx.Done():
				t.Fatalf("the hub relayed %d offers in %v, want 20", watch.seen.Load(), testTimeout)
			}
			sctx, scancel := context.WithTimeout(ctx, testTimeout)
			defer scancel()
			if err := s.Shutdown(sctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.res.Errors.Disconnects != 2*pairs || r.res.Delivered == 0 || r.res.Delivered > r.res.Sent {
				t.Errorf("disconnects %d, sent %d, delivered %d; want %d disconnects", r.res.Errors.Disconnects,
					r.res.Sent, r.res.Delivered, 2*pairs)
			}
		})
	}
}

// offerWatch is a listener whose connections count the video-offers the
// hub writes to its clients (a server's frames are not masked, so their
// JSON is on the wire as it is); reached is closed once want went out.
type offerWatch struct {
	net.Listener
	want    int64
	seen    atomic.Int64
	once    sync.Once
	reached chan struct{}
}

func newOfferWatch(l net.Listener, want int64) *offerWatch {
	return &offerWatch{Listener: l, want: want, reached: make(chan struct{})}
}

func (w *offerWatch) Accept() (net.Conn, error) {
	c, err := w.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &offerConn{Conn: c, w: w}, nil
}

// offerMark is what every relayed offer holds.
var offerMark = []byte(`"video-offer"`)

// offerConn counts offerMark in what is written to it, also across writes.
type offerConn struct {
	net.Conn
	w    *offerWatch
	mu   sync.Mutex
	tail []byte // the last len(offerMark)-1 bytes written
}

func (c *offerConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	buf := append(c.tail, p...)
	found := bytes.Count(buf, offerMark)
	c.tail = append([]byte(nil), buf[max(0, len(buf)-len(offerMark)+1):]...)
	c.mu.Unlock()
	if found > 0 && c.w.seen.Add(int64(found)) >= c.w.want {
		c.w.once.Do(func() { close(c.w.reached) })
	}
	return c.Conn.Write(p)
}

// TestRunPartialPairs: a hub that takes an odd number of connections
// leaves a receiver without its sender; that receiver is closed and not
// counted, with either engine (the pairs dial at once, so which clients
// the hub refuses varies).
func TestRunPartialPairs(t *testing.T) {
	for _, engine := range []Engine{EngineAuto, EngineGoroutines} {
		t.Run(string(engine), func(t *testing.T) {
			s, err := signal.NewServer(signal.Config{Hub: signal.HubConfig{Rate: -1, MaxConnections: 5}})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			defer func() { _ = s.Shutdown(context.Background()) }()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			res, err := Run(ctx, Options{URL: "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws", Pairs: 4,
				Rate: 200, Duration: 200 * time.Millisecond, Engine: engine})
			if err != nil {
				t.Fatal(err)
			}
			// The hub took 5 of the 8 clients: one or two whole pairs, and
			// at least one receiver whose sender was refused.
			if c := res.Connections; c%2 != 0 || c < 2 || c > 4 || res.Errors.Dial < 2 || res.Delivered != res.Sent || res.Sent == 0 {
				t.Errorf("connections %d (want those of whole pairs), dial errors %d, sent %d, delivered %d",
					res.Connections, res.Errors.Dial, res.Sent, res.Delivered)
			}
		})
	}
}

func TestRunNoHub(t *testing.T) {
	// A closed port: every dial is refused at once.
	ts := httptest.NewServer(nil)
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
	ts.Close()
	_, err := Run(context.Background(), Options{URL: url, Pairs: 2, Duration: 100 * time.Millisecond})
	if !errors.Is(err, ErrNoConnections) {
		t.Errorf("err = %v, want ErrNoConnections", err)
	}
}

func TestOfferSize(t *testing.T) {
	msg, at := offer("bob", 512)
	if string(msg[at-len(marker):at]) != string(marker) {
		t.Fatalf("timestamp offset %d is not after the marker in %s", at, msg)
	}
	// The SDP string is 512 bytes; JSON escapes its 5 CRLFs as 4 bytes each.
	if n := len(msg); n < 512 || n > 512+200 {
		t.Errorf("offer of %d bytes for a 512-byte SDP", n)
	}
}

func TestLatencyOf(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	got := latencyOf(lat)
	want := Latency{Samples: 100, P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if *got != want {
		t.Errorf("latencyOf = %+v, want %+v", *got, want)
	}
	if latencyOf(nil) != nil {
		t.Error("latencyOf(nil) != nil")
	}
}

func TestProc(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "42")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	status := "Name:\trtckit\nVmPeak:\t  9000 kB\nVmRSS:\t    2048 kB\nThreads:\t5\n"
	stat := "42 (rt ck) it) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 5 0 100 0 0\n"
	for name, s := range map[string]string{"status": status, "stat": stat} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := readProc(root, 42)
	if err != nil {
		t.Fatal(err)
	}
	if want := (procSample{RSS: 2 << 20, CPU: 2 * time.Second}); got != want {
		t.Errorf("readProc = %+v, want %+v", got, want)
	}
	if _, err := readProc(root, 43); err == nil {
		t.Error("readProc of a missing process succeeded")
	}
	if _, err := parseVmRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("parseVmRSS without VmRSS succeeded")
	}
}

func TestGeneratorUsage(t *testing.T) {
	g := generatorUsage(procSample{CPU: time.Second}, procSample{CPU: 6 * time.Second}, 10*time.Second, 250000)
	if g.CPU != 5*time.Second || g.CPUPerMessage != 20*time.Microsecond || g.CoreShare != 0.5 {
		t.Errorf("usage %+v, want 5 s, 20 µs per message, half a core", g)
	}
	if g := generatorUsage(procSample{}, procSample{CPU: time.Second}, 0, 0); g.CPUPerMessage != 0 || g.CoreShare != 0 {
		t.Errorf("usage without messages or time %+v, want zeros", g)
	}
}

// pollLoop tells whether this is Linux, where the hub serves plain
// WebSockets from its event loop, which times its turns, and the
// generator reads the kernel's receive timestamps.
const pollLoop = runtime.GOOS == "linux"

func TestLoopTurnsBetween(t *testing.T) {
	exposition := func(counts ...int) string {
		var b strings.Builder
		b.WriteString("# TYPE rtckit_signal_loop_turn_seconds histogram\n")
		for i, le := range []string{"1e-05", "0.0001", "0.001"} {
			fmt.Fprintf(&b, "rtckit_signal_loop_turn_seconds_bucket{le=%q} %d\n", le, counts[i])
		}
		fmt.Fprintf(&b, "rtckit_signal_loop_turn_seconds_bucket{le=\"+Inf\"} %d\n", counts[3])
		fmt.Fprintf(&b, "rtckit_signal_loop_turn_seconds_sum 1\nrtckit_signal_loop_turn_seconds_count %d\n", counts[3])
		return b.String()
	}
	before, err := parseLoopTurns(strings.NewReader(exposition(5, 5, 5, 5)))
	if err != nil {
		t.Fatal(err)
	}
	// 1,000 turns since: 900 under 10 µs, 95 more under 100 µs, 3 more
	// under 1 ms, two slower.
	after, err := parseLoopTurns(strings.NewReader(exposition(905, 1000, 1003, 1005)))
	if err != nil {
		t.Fatal(err)
	}
	got := loopTurnsBetween(before, after)
	want := &LoopTurns{Turns: 1000, P50Max: 10 * time.Microsecond, P99Max: 100 * time.Microsecond, P999Max: -1}
	if got == nil || *got != *want {
		t.Errorf("loopTurnsBetween = %+v, want %+v", got, want)
	}
	if got := loopTurnsBetween(after, after); got != nil {
		t.Errorf("no turns: %+v, want nil", got)
	}
	// A hub restarted between the readings counts from 0 again.
	restarted, err := parseLoopTurns(strings.NewReader(exposition(1, 1, 1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := loopTurnsBetween(after, restarted); got != nil {
		t.Errorf("counts that went down: %+v, want nil", got)
	}
	delete(restarted, 0.001)
	if got := loopTurnsBetween(before, restarted); got != nil {
		t.Errorf("other buckets: %+v, want nil", got)
	}
	if _, err := parseLoopTurns(strings.NewReader("other_metric 1\n")); err == nil {
		t.Error("an exposition without the histogram was accepted")
	}
	if _, err := parseLoopTurns(strings.NewReader("{{{ not prometheus")); err == nil {
		t.Error("garbage was accepted")
	}
}

func TestMetricsURL(t *testing.T) {
	for in, want := range map[string]string{
		"ws://127.0.0.1:8080/ws?x=1":     "http://127.0.0.1:8080/metrics",
		"wss://user@hub.test/":           "https://hub.test/metrics",
		"ws://[::1]:9000/some/path#frag": "http://[::1]:9000/metrics",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := metricsURL(u); got != want {
			t.Errorf("metricsURL(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestParseDigits(t *testing.T) {
	for in, want := range map[string]int64{"00000000000000000042": 42, "9223372036854775799": 9223372036854775799, "0": 0} {
		if got, ok := parseDigits([]byte(in)); !ok || got != want {
			t.Errorf("parseDigits(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "12a4", "-1", "99999999999999999999"} {
		if got, ok := parseDigits([]byte(in)); ok {
			t.Errorf("parseDigits(%q) = %d, want a failure", in, got)
		}
	}
}

func TestMask(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	for n := range 20 {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i * 7)
		}
		got := slices.Clone(p)
		mask(got, key)
		for i := range p {
			if got[i] != p[i]^key[i%4] {
				t.Fatalf("mask of %d bytes: byte %d = %#x, want %#x", n, i, got[i], p[i]^key[i%4])
			}
		}
	}
}
