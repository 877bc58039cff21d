package udpimpair

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ioTimeout bounds every read a test waits on.
const ioTimeout = 5 * time.Second

// listen opens a loopback UDP socket closed when t ends.
func listen(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// echoServer answers every datagram with "echo:" and the datagram, and
// records each sender's address. It stops when t ends.
type echoServer struct {
	conn *net.UDPConn
	mu   sync.Mutex
	from map[netip.AddrPort]int
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	e := &echoServer{conn: listen(t), from: map[netip.AddrPort]int{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := e.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			e.mu.Lock()
			e.from[from]++
			e.mu.Unlock()
			_, _ = e.conn.WriteToUDPAddrPort(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() { _ = e.conn.Close(); wg.Wait() })
	return e
}

func (e *echoServer) addr() netip.AddrPort { return e.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (e *echoServer) senders() []netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []netip.AddrPort
	for a := range e.from {
		out = append(out, a)
	}
	return out
}

// startProxy starts a proxy on loopback, closed when t ends.
func startProxy(t *testing.T, cfg Config) *Proxy {
	t.Helper()
	p, err := New(listen(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p
}

// roundTrip sends msg from c to the proxy and waits for the echo.
func roundTrip(t *testing.T, c *net.UDPConn, p *Proxy, msg string) ([]byte, time.Duration, error) {
	t.Helper()
	start := time.Now()
	if _, err := c.WriteTo([]byte(msg), p.Addr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	n, _, err := c.ReadFrom(buf)
	return buf[:n], time.Since(start), err
}

func TestDelayEachWay(t *testing.T) {
	echo := startEcho(t)
	const up, down = 60 * time.Millisecond, 40 * time.Millisecond
	p := startProxy(t, Config{Target: echo.addr(), Up: Impairment{Delay: up}, Down: Impairment{Delay: down}})
	c := listen(t)
	for i := range 3 {
		msg := fmt.Sprintf("ping %d", i)
		got, rtt, err := roundTrip(t, c, p, msg)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo:"+msg {
			t.Errorf("got %q, want echo of %q", got, msg)
		}
		if rtt < up+down {
			t.Errorf("round trip %v, want at least %v", rtt, up+down)
		}
		t.Logf("round trip %v", rtt)
	}
	want := DirectionStats{Received: 3, Sent: 3}
	waitFor(t, func() bool { return p.Stats().Down.Sent == 3 })
	st := p.Stats()
	if st.Up != want || st.Down != want || st.Clients != 1 {
		t.Errorf("stats %+v, want 3 each way for one client", st)
	}
}

// TestOrderKept: a burst comes out in the order it went in.
func TestOrderKept(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, Config{Target: echo.addr(), Up: Impairment{Delay: 20 * time.Millisecond}})
	c := listen(t)
	const n = 200
	for i := range n {
		if _, err := c.WriteTo(fmt.Appendf(nil, "%04d", i), p.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 64)
	for i := range n {
		_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
		m, _, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v (stats %+v)", i, err, p.Stats())
		}
		if want := fmt.Sprintf("echo:%04d", i); string(buf[:m]) != want {
			t.Fatalf("datagram %d is %q, want %q", i, buf[:m], want)
		}
	}
}

func TestLoss(t *testing.T) {
	echo := startEcho(t)
	cases := []struct {
		name     string
		up, down float64
		lo, hi   uint64 // echoes received out of 1000
	}{
		{"none", 0, 0, 1000, 1000},
		{"all up", 100, 0, 0, 0},
		{"all down", 0, 100, 0, 0},
		{"30% up", 30, 0, 620, 780},
		{"10% each way", 10, 10, 740, 880},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, Config{Target: echo.addr(), Up: Impairment{Loss: tc.up}, Down: Impairment{Loss: tc.down}, Seed: 7})
			c := listen(t)
			got := countReads(t, c)
			// settled: everything sent so far went through the proxy both ways.
			settled := func(sent int) func() bool {
				return func() bool {
					st := p.Stats()
					return st.Up.Received == uint64(sent) && st.Up.Sent == st.Up.Received-st.Up.Lost &&
						st.Down.Received == st.Up.Sent && st.Down.Sent == st.Down.Received-st.Down.Lost
				}
			}
			const total, batch = 1000, 50
			for i := range total {
				if _, err := c.WriteTo(fmt.Appendf(nil, "%d", i), p.Addr()); err != nil {
					t.Fatal(err)
				}
				if (i+1)%batch == 0 {
					// Paced so that no socket buffer overflows: this test is about loss.
					waitFor(t, settled(i+1))
				}
			}
			st := p.Stats()
			if st.Down.Sent < tc.lo || st.Down.Sent > tc.hi || st.Up.Overflow+st.Down.Overflow+st.Up.Failed+st.Down.Failed != 0 {
				t.Errorf("stats %+v: want %d–%d echoes sent, no overflow or failure", st, tc.lo, tc.hi)
			}
			waitFor(t, func() bool { return got.Load() == int64(st.Down.Sent) })
		})
	}
}

// countReads counts the datagrams c receives until t ends.
func countReads(t *testing.T, c *net.UDPConn) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	t.Cleanup(func() { _ = c.Close(); <-done })
	return &n
}

// TestClientsKeptApart: each client reaches the target from its own
// address and gets only its own replies.
func TestClientsKeptApart(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, Config{Target: echo.addr()})
	a, b := listen(t), listen(t)
	for i := range 3 {
		for name, c := range map[string]*net.UDPConn{"a": a, "b": b} {
			msg := fmt.Sprintf("%s%d", name, i)
			got, _, err := roundTrip(t, c, p, msg)
			if err != nil || string(got) != "echo:"+msg {
				t.Fatalf("client %s got %q, %v; want echo of %q", name, got, err, msg)
			}
		}
	}
	if s := echo.senders(); len(s) != 2 {
		t.Errorf("target saw senders %v, want two", s)
	}
	if st := p.Stats(); st.Clients != 2 {
		t.Errorf("stats %+v, want two clients", st)
	}
}

// TestOnlyTargetAnswers: datagrams another host sends to a client's
// upstream socket are not passed back.
func TestOnlyTargetAnswers(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, Config{Target: echo.addr()})
	c := listen(t)
	if _, _, err := roundTrip(t, c, p, "hello"); err != nil {
		t.Fatal(err)
	}
	upstream := echo.senders()[0]
	stranger := listen(t)
	if _, err := stranger.WriteToUDPAddrPort([]byte("intruder"), upstream); err != nil {
		t.Fatal(err)
	}
	// The stranger's datagram was sent before the next echo, so it would
	// arrive first if it were forwarded.
	got, _, err := roundTrip(t, c, p, "again")
	if err != nil || string(got) != "echo:again" {
		t.Errorf("got %q, %v; want echo:again only", got, err)
	}
	if st := p.Stats(); st.Down.Received != 2 {
		t.Errorf("stats %+v, want two replies from the target", st)
	}
}

func TestQueueBounded(t *testing.T) {
	echo := startEcho(t)
	const queueLen = 8
	p := startProxy(t, Config{Target: echo.addr(), Up: Impairment{Delay: 300 * time.Millisecond}, QueueLen: queueLen})
	c := listen(t)
	const burst = 100
	for i := range burst {
		if _, err := c.WriteTo(fmt.Appendf(nil, "%d", i), p.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return p.Stats().Up.Received == burst })
	st := p.Stats()
	// The sender may already hold one datagram besides the full queue.
	if st.Up.Overflow < burst-queueLen-1 {
		t.Errorf("stats %+v: want at least %d overflows", st, burst-queueLen-1)
	}
	waitFor(t, func() bool { st = p.Stats(); return st.Up.Sent+st.Up.Overflow == burst })
}

func TestMaxClients(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, Config{Target: echo.addr(), MaxClients: 1})
	a, b := listen(t), listen(t)
	if _, _, err := roundTrip(t, a, p, "first"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WriteTo([]byte("second"), p.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return p.Stats().Refused == 1 })
	if _, _, err := roundTrip(t, a, p, "still"); err != nil {
		t.Errorf("first client after refusal: %v", err)
	}
}

// TestDialFailureRefuses: a client whose upstream socket cannot be opened
// is refused, and the proxy keeps serving.
func TestDialFailureRefuses(t *testing.T) {
	echo := startEcho(t)
	errDial := errors.New("no sockets today")
	var mu sync.Mutex
	fail := true
	p := startProxy(t, Config{Target: echo.addr(), Dial: func() (net.PacketConn, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return nil, errDial
		}
		return net.ListenPacket("udp4", "127.0.0.1:0")
	}})
	c := listen(t)
	if _, err := c.WriteTo([]byte("x"), p.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return p.Stats().Refused == 1 })
	mu.Lock()
	fail = false
	mu.Unlock()
	if got, _, err := roundTrip(t, c, p, "y"); err != nil || !bytes.Equal(got, []byte("echo:y")) {
		t.Errorf("got %q, %v", got, err)
	}
}

// TestCloseWithQueuedDatagrams: Close returns promptly while datagrams wait
// for a long delay, and is idempotent.
func TestCloseWithQueuedDatagrams(t *testing.T) {
	echo := startEcho(t)
	p, err := New(listen(t), Config{Target: echo.addr(), Up: Impairment{Delay: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	c := listen(t)
	for range 10 {
		if _, err := c.WriteTo([]byte("late"), p.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return p.Stats().Up.Received == 10 })
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second { // against an hour of delay
		t.Errorf("Close took %v", d)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if st := p.Stats(); st.Up.Sent != 0 {
		t.Errorf("stats %+v: nothing should have been sent", st)
	}
}

func TestConfigValidate(t *testing.T) {
	target := netip.MustParseAddrPort("127.0.0.1:9")
	cases := []struct {
		name string
		cfg  Config
	}{
		{"no target", Config{}},
		{"port zero", Config{Target: netip.MustParseAddrPort("127.0.0.1:0")}},
		{"negative delay", Config{Target: target, Up: Impairment{Delay: -time.Second}}},
		{"loss over 100", Config{Target: target, Down: Impairment{Loss: 101}}},
		{"negative loss", Config{Target: target, Up: Impairment{Loss: -1}}},
		{"negative queue", Config{Target: target, QueueLen: -1}},
		{"negative clients", Config{Target: target, MaxClients: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pc := listen(t)
			if _, err := New(pc, tc.cfg); !errors.Is(err, ErrConfig) {
				t.Errorf("New: %v, want ErrConfig", err)
			}
		})
	}
}

// waitFor polls cond until it holds, failing t after ioTimeout.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(ioTimeout)
	for !cond() {
		select {
		case <-deadline:
			t.Fatal("condition not met in time")
		case <-tick.C:
		}
	}
}
