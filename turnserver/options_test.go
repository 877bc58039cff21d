package turnserver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/rtckit/rtckit/internal/testenv"

	"github.com/pion/stun/v4"

	"github.com/rtckit/rtckit/internal/netaddr"
)

// freeUDPPort returns a UDP port that was free on loopback a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: loopback.AsSlice()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func TestPortRange(t *testing.T) {
	port := freeUDPPort(t)
	cfg := labConfig()
	cfg.MinPort, cfg.MaxPort = port, port
	s := startServer(t, cfg)
	relay, err := newClient(t, s, overUDP, "alice", "wonderland").allocate(t)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := netaddr.AddrPortOf(relay.LocalAddr()); got != netip.AddrPortFrom(loopback, uint16(port)) {
		t.Errorf("relayed address %v, want 127.0.0.1:%d", got, port)
	}
	// The range is exhausted.
	_, err = newClient(t, s, overUDP, "alice", "wonderland").allocate(t)
	if code := turnCode(err); code != stun.CodeInsufficientCapacity {
		t.Errorf("second Allocate: %v, want 508", err)
	}
	if info := s.Info(); info.MinPort != port || info.MaxPort != port {
		t.Errorf("info %+v", info)
	}
}

// TestExternalIPAndTCPRelay announces an external IP, as behind a 1:1 NAT,
// and relays over TCP (RFC 6062), whose outgoing connection must bind the
// relay IP rather than the announced one.
func TestExternalIPAndTCPRelay(t *testing.T) {
	external := netip.MustParseAddr("192.0.2.99")
	cfg := labConfig()
	cfg.ExternalIP = external
	cfg.AllowLoopbackPeers = true
	s := startServer(t, cfg)

	peer, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: loopback.AsSlice()})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := peer.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	defer func() {
		_ = peer.Close()
		<-served
	}()

	c := newClient(t, s, overTCP, "alice", "wonderland")
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	alloc, err := c.AllocateTCPWithContext(ctx)
	if err != nil {
		t.Fatalf("TCP Allocate: %v", err)
	}
	defer alloc.Close()
	if got, _ := netaddr.AddrPortOf(alloc.Addr()); got.Addr() != external {
		t.Errorf("relayed address %v, want one on %v", alloc.Addr(), external)
	}
	conn, err := alloc.Dial("tcp4", peer.Addr().String())
	if err != nil {
		t.Fatalf("Connect through the relay: %v", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("over tcp")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("over tcp"))
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "over tcp" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	if st := s.Stats(); st.BytesToPeers != 8 || st.BytesFromPeers != 8 {
		t.Errorf("stats %+v, want 8 bytes each way", st)
	}
	if info := s.Info(); info.ExternalIP != external || info.RelayIP != loopback {
		t.Errorf("info %+v", info)
	}
}

func TestTCPLimits(t *testing.T) {
	dial := func(t *testing.T, s *Server) net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", s.Addrs().TCP.String(), ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	// waitClosed waits for the server to close c.
	waitClosed := func(t *testing.T, c net.Conn, what string) {
		t.Helper()
		if err := c.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
			t.Fatalf("%s: read %v, want the server to close the connection", what, err)
		}
	}
	t.Run("max connections", func(t *testing.T) {
		cfg := labConfig()
		cfg.MaxTCPConns = 1
		s := startServer(t, cfg)
		c := newClient(t, s, overTCP, "alice", "wonderland")
		c.sync(t) // the first connection is being served
		waitClosed(t, dial(t, s), "connection over the limit")
		if st := s.Stats(); st.TCPAccepted != 1 || st.TCPRejected != 1 || st.TCPOpen != 1 {
			t.Errorf("stats %+v, want 1 accepted, 1 rejected, 1 open", st)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		cfg := labConfig()
		cfg.TCPIdleTimeout = 20 * time.Millisecond
		s := startServer(t, cfg)
		waitClosed(t, dial(t, s), "idle connection")
	})
	t.Run("authentication timeout", func(t *testing.T) {
		cfg := labConfig()
		cfg.TCPAuthTimeout = 100 * time.Millisecond
		s := startServer(t, cfg)
		c := newClient(t, s, overTCP, "alice", "wonderland")
		if _, err := c.allocate(t); err != nil {
			t.Fatalf("Allocate: %v", err)
		}
		// A silent connection, and one that only sends a STUN header, are
		// closed; the authenticated one, older than both, stays.
		silent := dial(t, s)
		partial := dial(t, s)
		req := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), requestedUDP)
		if _, err := partial.Write(req.Raw[:len(req.Raw)-1]); err != nil { // all but the last byte
			t.Fatal(err)
		}
		waitClosed(t, silent, "silent connection")
		waitClosed(t, partial, "connection with a partial message")
		c.sync(t)
		if st := s.Stats(); st.TCPOpen != 1 {
			t.Errorf("stats %+v, want the authenticated connection open", st)
		}
	})
	t.Run("authenticated TLS connection stays", func(t *testing.T) {
		s := startTLSServer(t, 100*time.Millisecond)
		c := newClient(t, s, overTLS, "alice", "wonderland")
		if _, err := c.allocate(t); err != nil {
			t.Fatalf("Allocate: %v", err)
		}
		// A silent connection opened later is closed by the timeout; by
		// then the authenticated one has outlived it too.
		waitClosed(t, dialTLSPort(t, s), "silent connection")
		c.sync(t)
		if st := s.Stats(); st.TCPOpen != 1 {
			t.Errorf("stats %+v, want the authenticated TLS connection open", st)
		}
	})
	t.Run("TLS handshake never completed", func(t *testing.T) {
		s := startTLSServer(t, 100*time.Millisecond)
		c := dialTLSPort(t, s)
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		if err := c.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
			t.Fatal(err)
		}
		// crypto/tls answers with an alert; then the server must close.
		if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
			t.Fatalf("read %v, want the server to close the connection", err)
		}
	})
	t.Run("unauthenticated connections per source", func(t *testing.T) {
		s := startServer(t, labConfig())
		for range MaxUnauthTCPConnsPerSource {
			dial(t, s)
		}
		waitClosed(t, dial(t, s), "connection over the per-source limit")
		if st := s.Stats(); st.TCPRejected != 1 || st.TCPAccepted != MaxUnauthTCPConnsPerSource {
			t.Errorf("stats %+v, want %d accepted, 1 rejected", st, MaxUnauthTCPConnsPerSource)
		}
	})
	t.Run("authenticated connections are not counted per source", func(t *testing.T) {
		cfg := labConfig()
		cfg.QuotaPerUser = -1
		s := startServer(t, cfg)
		for i := range MaxUnauthTCPConnsPerSource + 1 {
			if _, err := newClient(t, s, overTCP, "alice", "wonderland").allocate(t); err != nil {
				t.Fatalf("Allocate %d: %v", i, err)
			}
		}
		if st := s.Stats(); st.TCPRejected != 0 {
			t.Errorf("stats %+v, want none rejected", st)
		}
	})
}

// startTLSServer serves TURN over TLS only, closing connections that do not
// authenticate within authTimeout.
func startTLSServer(t *testing.T, authTimeout time.Duration) *Server {
	t.Helper()
	cfg := labConfig()
	cfg.TCP = false
	cfg.TLSCert, cfg.TLSKey = testenv.WriteSelfSignedCert(t, t.TempDir())
	cfg.TCPAuthTimeout = authTimeout
	return startServer(t, cfg)
}

// dialTLSPort opens a plain TCP connection to s's TLS port, closed when the
// test ends.
func dialTLSPort(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addrs().TLS.String(), ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// isReset reports whether err is a connection reset.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

func TestServeLifecycle(t *testing.T) {
	s, err := Listen(labConfig())
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addrs().UDP
	if err := s.Close(); err != nil {
		t.Fatalf("Close before Serve: %v", err)
	}
	if err := s.Serve(context.Background()); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close: %v, want ErrServerClosed", err)
	}
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatalf("%v still bound after Close: %v", addr, err)
	}
	_ = c.Close()

	s = startServer(t, labConfig())
	// An allocation shows that the first Serve runs.
	if _, err := newClient(t, s, overUDP, "alice", "wonderland").allocate(t); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := s.Serve(ctx); !errors.Is(err, ErrAlreadyServing) {
		t.Errorf("second Serve: %v, want ErrAlreadyServing", err)
	}
}

func TestInfoAndURIs(t *testing.T) {
	cert, key := testenv.WriteSelfSignedCert(t, t.TempDir())
	cfg := labConfig()
	cfg.TLSCert, cfg.TLSKey = cert, key
	cfg.Realm = "lab"
	cfg.AuthSecret = "s"
	cfg.QuotaPerUser = -1
	cfg.AllowPrivatePeers = true
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := Info{Realm: "lab", RelayIP: loopback, QuotaPerUser: 0, MaxPermissions: DefaultMaxPermissions, AllowPrivatePeers: true, Users: 1, RESTAuth: true}
	if got := s.Info(); !reflect.DeepEqual(got, want) {
		t.Errorf("Info = %+v, want %+v", got, want)
	}
	a := s.Addrs()
	wantURIs := []string{
		"turn:" + a.UDP.String() + "?transport=udp",
		"turn:" + a.TCP.String() + "?transport=tcp",
		"turns:" + a.TLS.String() + "?transport=tcp",
	}
	if got := a.URIs(); !reflect.DeepEqual(got, wantURIs) {
		t.Errorf("URIs = %q, want %q", got, wantURIs)
	}
	v6 := Addrs{UDP: netip.MustParseAddrPort("[2001:db8::1]:3478")}
	if got := v6.URIs(); len(got) != 1 || got[0] != "turn:[2001:db8::1]:3478?transport=udp" {
		t.Errorf("IPv6 URIs = %q", got)
	}
}
