package turnserver

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"go.uber.org/goleak"

	"github.com/rtckit/rtckit/peer"
)

// ioTimeout bounds every network wait in the tests.
const ioTimeout = 5 * time.Second

var loopback = netip.MustParseAddr("127.0.0.1")

func TestMain(m *testing.M) {
	// pion's TURN client binds channels in a goroutine of its own; when the
	// client closes while one is starting, that goroutine lingers until its
	// next retransmission fails on the closed socket (200 ms later), which a
	// loaded machine can stretch past goleak's retries. It is the test
	// client's, never the server's.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/pion/turn/v5/internal/client.(*Transaction).WaitForResult"))
}

// testWriter sends logs to the test log until the test ends, then drops
// them: pion's goroutines may still log for a moment after a server or
// client closed, and t.Log after the end of a test is an error.
type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// testLogger logs at debug level to the test log.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// labConfig is a loopback server with UDP and TCP listeners on a free port
// and one user, alice:wonderland.
func labConfig() Config {
	return Config{
		ListenIP: loopback,
		UDP:      true,
		TCP:      true,
		Users:    map[string]string{"alice": "wonderland"},
	}
}

// startServer listens with cfg and serves until the test ends; the cleanup
// checks that Serve stopped cleanly.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := Listen(cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(CloseTimeout + ioTimeout):
			t.Error("Serve did not return after cancel")
		}
	})
	return s
}

// transportKind is how a test client reaches the server.
type transportKind string

const (
	overUDP transportKind = "udp"
	overTCP transportKind = "tcp"
	overTLS transportKind = "tls"
)

// testClient is a pion TURN client with its control connection.
type testClient struct {
	*turn.Client
	conn net.PacketConn
}

// newClient connects a pion TURN client to the server over kind with the
// given credentials; it is closed when the test ends.
func newClient(t *testing.T, s *Server, kind transportKind, user, pass string) *testClient {
	t.Helper()
	var (
		conn   net.PacketConn
		server netip.AddrPort
	)
	switch kind {
	case overUDP:
		server = s.Addrs().UDP
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: loopback.AsSlice()})
		if err != nil {
			t.Fatal(err)
		}
		conn = c
	case overTCP:
		server = s.Addrs().TCP
		d := net.Dialer{Timeout: ioTimeout}
		c, err := d.Dial("tcp", server.String())
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	case overTLS:
		server = s.Addrs().TLS
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: ioTimeout}, Config: &tls.Config{
			InsecureSkipVerify: true, //nolint:gosec // a self-signed test certificate
		}}
		c, err := d.DialContext(context.Background(), "tcp", server.String())
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	}
	if !server.IsValid() {
		t.Fatalf("the server has no %s listener", kind)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server.String(),
		TURNServerAddr: server.String(),
		Conn:           conn,
		Username:       user,
		Password:       pass,
		LoggerFactory:  peer.SlogLoggerFactory{Logger: testLogger(t).With("side", "client")},
	})
	if err != nil {
		_ = conn.Close()
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		_ = conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		_ = conn.Close()
	})
	return &testClient{Client: c, conn: conn}
}

// allocate asks for a UDP relay; the relay is closed when the test ends.
func (c *testClient) allocate(t *testing.T) (net.PacketConn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	relay, err := c.AllocateWithContext(ctx)
	if err == nil {
		t.Cleanup(func() { _ = relay.Close() })
	}
	return relay, err
}

// sync makes a Binding transaction with the server. The server handles a
// client's messages in order, so when it returns, everything sent before it
// (a Refresh, a Send indication) has been processed.
func (c *testClient) sync(t *testing.T) {
	t.Helper()
	if _, err := c.SendBindingRequest(); err != nil {
		t.Fatalf("Binding: %v", err)
	}
}

// turnCode returns the STUN error code in a TURN client error, or 0.
func turnCode(err error) stun.ErrorCode {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return te.ErrorCodeAttr.Code
	}
	return 0
}

// echoPeer is a UDP peer that returns every datagram to its sender.
type echoPeer struct {
	conn *net.UDPConn
	done chan struct{}
}

func newEchoPeer(t *testing.T, ip netip.Addr) *echoPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatal(err)
	}
	p := &echoPeer{conn: c, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() {
		_ = c.Close()
		<-p.done
	})
	return p
}

func (p *echoPeer) addr() *net.UDPAddr { return p.conn.LocalAddr().(*net.UDPAddr) }

// roundTrip sends msg through relay to the echo peer and waits for the echo.
func roundTrip(t *testing.T, relay net.PacketConn, peer *net.UDPAddr, msg string) {
	t.Helper()
	if _, err := relay.WriteTo([]byte(msg), peer); err != nil {
		t.Fatalf("relay write to %v: %v", peer, err)
	}
	if err := relay.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, from, err := relay.ReadFrom(buf)
	if err != nil {
		t.Fatalf("waiting for the echo of %q: %v", msg, err)
	}
	if string(buf[:n]) != msg || from.String() != peer.String() {
		t.Fatalf("got %q from %v, want %q from %v", buf[:n], from, msg, peer)
	}
}
