package stunserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtckit/rtckit/internal/testenv"

	"github.com/pion/stun/v4"
)

// startServer listens with cfg and serves until the test ends; the cleanup
// checks that Serve stopped cleanly.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
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
		case <-time.After(ioTimeout):
			t.Error("Serve did not return after cancel")
		}
	})
	return s
}

// testWriter sends the server's logs to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// needLoopback requires that ip can be bound (127.0.0.2 is on lo on Linux
// but not everywhere; ::1 is missing in some containers): a skip on a
// developer's machine, a failure in CI.
func needLoopback(t *testing.T, ip string) {
	t.Helper()
	network := "udp4"
	if netip.MustParseAddr(ip).Is6() {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		testenv.Require(t, fmt.Errorf("cannot bind %s: %w", ip, err))
		return
	}
	_ = c.Close()
}

func TestLoopbackRFC5780(t *testing.T) {
	needLoopback(t, "127.0.0.2")
	s := startServer(t, Config{
		PrimaryIP:           netip.MustParseAddr("127.0.0.1"),
		AlternateIP:         netip.MustParseAddr("127.0.0.2"),
		EnableChangeRequest: true,
		RateLimit:           -1,
		Software:            "lab",
	})
	a := s.Addrs()
	if a.Primary.Port() == 0 || a.AltPort.Port() == 0 || a.Primary.Port() == a.AltPort.Port() {
		t.Fatalf("ports not picked: %+v", a)
	}
	if a.AltIP != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), a.Primary.Port()) ||
		a.AltIPAltPort != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), a.AltPort.Port()) ||
		a.AltPort.Addr() != a.Primary.Addr() || a.TCP.IsValid() {
		t.Fatalf("inconsistent addresses: %+v", a)
	}
	if !s.ChangeRequest() {
		t.Fatal("change requests not enabled")
	}
	if r, b := s.RateLimit(); r != 0 || b != 0 {
		t.Errorf("rate limit %v/s burst %d, want none", r, b)
	}
	c := newUDPClient(t, "127.0.0.1")

	sockets := []struct {
		name string
		addr netip.AddrPort
	}{{"primary", a.Primary}, {"alt-port", a.AltPort}, {"alt-ip", a.AltIP}, {"alt-ip-alt-port", a.AltIPAltPort}}
	for _, sock := range sockets {
		t.Run("binding on "+sock.name, func(t *testing.T) {
			req := newRequest(t)
			resp, from := c.roundTrip(sock.addr, req)
			if from != sock.addr {
				t.Errorf("response came from %v, want %v", from, sock.addr)
			}
			if got := addrAttr(t, resp, stun.AttrXORMappedAddress); got != c.addr() {
				t.Errorf("XOR-MAPPED-ADDRESS %v, want %v", got, c.addr())
			}
			if got := addrAttr(t, resp, stun.AttrMappedAddress); got != c.addr() {
				t.Errorf("MAPPED-ADDRESS %v, want %v", got, c.addr())
			}
			if got := addrAttr(t, resp, stun.AttrResponseOrigin); got != sock.addr {
				t.Errorf("RESPONSE-ORIGIN %v, want %v", got, sock.addr)
			}
			if got := addrAttr(t, resp, stun.AttrOtherAddress); got != a.AltIPAltPort {
				t.Errorf("OTHER-ADDRESS %v, want %v", got, a.AltIPAltPort)
			}
		})
	}

	changes := []struct {
		name               string
		to                 netip.AddrPort
		changeIP, changePt bool
		want               netip.AddrPort
	}{
		{"change port", a.Primary, false, true, a.AltPort},
		{"change IP", a.Primary, true, false, a.AltIP},
		{"change IP and port", a.Primary, true, true, a.AltIPAltPort},
		{"change IP from the alternate IP", a.AltIP, true, false, a.Primary},
		{"change port from the alternate port", a.AltIPAltPort, false, true, a.AltIP},
	}
	for _, ch := range changes {
		t.Run(ch.name, func(t *testing.T) {
			req := newRequest(t, changeRequest(ch.changeIP, ch.changePt))
			resp, from := c.roundTrip(ch.to, req)
			if from != ch.want {
				t.Errorf("response came from %v, want %v", from, ch.want)
			}
			if got := addrAttr(t, resp, stun.AttrResponseOrigin); got != ch.want {
				t.Errorf("RESPONSE-ORIGIN %v, want %v", got, ch.want)
			}
			if got := addrAttr(t, resp, stun.AttrXORMappedAddress); got != c.addr() {
				t.Errorf("XOR-MAPPED-ADDRESS %v, want %v", got, c.addr())
			}
		})
	}

	st := s.Stats()
	if st.Responses != uint64(len(sockets)+len(changes)) || st.ChangeRequests != uint64(len(changes)) || st.Requests != st.Responses {
		t.Errorf("stats %+v", st)
	}
}

func TestLoopbackChangeRequestDisabled(t *testing.T) {
	needLoopback(t, "127.0.0.2")
	s := startServer(t, Config{
		PrimaryIP:   netip.MustParseAddr("127.0.0.1"),
		AlternateIP: netip.MustParseAddr("127.0.0.2"),
	})
	c := newUDPClient(t, "127.0.0.1")
	req := newRequest(t, changeRequest(true, true))
	resp, from := c.roundTrip(s.Addrs().Primary, req)
	if from != s.Addrs().Primary {
		t.Errorf("error response came from %v, want the receiving socket %v", from, s.Addrs().Primary)
	}
	if code := errorCode(t, resp); code != stun.CodeUnknownAttribute {
		t.Errorf("code %v, want 420", code)
	}
	if u := unknownAttrs(t, resp); len(u) != 1 || u[0] != stun.AttrChangeRequest {
		t.Errorf("UNKNOWN-ATTRIBUTES %v, want [CHANGE-REQUEST]", u)
	}

	// A plain request still gets OTHER-ADDRESS.
	req = newRequest(t)
	resp, _ = c.roundTrip(s.Addrs().Primary, req)
	if got := addrAttr(t, resp, stun.AttrOtherAddress); got != s.Addrs().AltIPAltPort {
		t.Errorf("OTHER-ADDRESS %v, want %v", got, s.Addrs().AltIPAltPort)
	}
	if st := s.Stats(); st.ErrorResponses != 1 || st.Responses != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestLoopbackSingleAddress(t *testing.T) {
	s := startServer(t, Config{PrimaryIP: netip.MustParseAddr("127.0.0.1"), AltPort: 9, EnableChangeRequest: true})
	a := s.Addrs()
	if a.AltPort.IsValid() || a.AltIP.IsValid() || a.AltIPAltPort.IsValid() || s.ChangeRequest() {
		t.Fatalf("alternate sockets bound without an alternate IP: %+v", a)
	}
	if r, b := s.RateLimit(); r != DefaultRateLimit || b != DefaultRateBurst {
		t.Errorf("rate limit %v/s burst %d, want the defaults", r, b)
	}
	c := newUDPClient(t, "127.0.0.1")
	resp, _ := c.roundTrip(a.Primary, newRequest(t))
	if resp.Contains(stun.AttrOtherAddress) {
		t.Error("OTHER-ADDRESS without an alternate IP")
	}
	resp, _ = c.roundTrip(a.Primary, newRequest(t, changeRequest(false, true)))
	if code := errorCode(t, resp); code != stun.CodeUnknownAttribute {
		t.Errorf("code %v, want 420", code)
	}
}

func TestLoopbackResponsePort(t *testing.T) {
	s := startServer(t, Config{PrimaryIP: netip.MustParseAddr("127.0.0.1")})
	sender := newUDPClient(t, "127.0.0.1")
	receiver := newUDPClient(t, "127.0.0.1")

	req := newRequest(t, responsePort(receiver.addr().Port()))
	sender.send(s.Addrs().Primary, req.Raw)
	resp, from := receiver.receive(req)
	if from != s.Addrs().Primary {
		t.Errorf("response came from %v, want %v", from, s.Addrs().Primary)
	}
	if got := addrAttr(t, resp, stun.AttrXORMappedAddress); got != sender.addr() {
		t.Errorf("XOR-MAPPED-ADDRESS %v, want the sender %v", got, sender.addr())
	}
	if st := s.Stats(); st.ResponsePorts != 1 || st.Responses != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestLoopbackRateLimit(t *testing.T) {
	needLoopback(t, "127.0.0.2")
	s := startServer(t, Config{PrimaryIP: netip.MustParseAddr("127.0.0.1"), RateLimit: 0.001, RateBurst: 2})
	flooder := newUDPClient(t, "127.0.0.1")
	other := newUDPClient(t, "127.0.0.2")

	const sent = 5
	reqs := make([]*stun.Message, sent)
	for i := range reqs {
		reqs[i] = newRequest(t)
		flooder.send(s.Addrs().Primary, reqs[i].Raw)
	}
	for _, req := range reqs[:2] {
		flooder.receive(req)
	}
	// The server reads one socket in order: once another source's request
	// is answered, the flood has been processed.
	other.roundTrip(s.Addrs().Primary, newRequest(t))
	st := s.Stats()
	if st.RateLimited != sent-2 || st.Responses != 3 || st.Requests != sent+1 {
		t.Errorf("stats %+v, want %d rate limited of %d requests", st, sent-2, sent+1)
	}
	// Nothing beyond the burst reached the flooder.
	if err := flooder.conn.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := flooder.conn.ReadFromUDPAddrPort(make([]byte, 1500)); !isTimeout(err) {
		t.Errorf("flooder received more than its burst (err %v)", err)
	}
}

func TestLoopbackGarbage(t *testing.T) {
	s := startServer(t, Config{PrimaryIP: netip.MustParseAddr("127.0.0.1"), RateLimit: -1})
	c := newUDPClient(t, "127.0.0.1")
	valid := newRequest(t).Raw
	resp, _ := stun.Build(stun.TransactionID, stun.BindingSuccess)
	junk := [][]byte{
		{0},
		[]byte("hello"),
		valid[:len(valid)-1],
		valid[:headerSize],
		append(append([]byte{}, valid...), 1, 2, 3, 4),
		resp.Raw,
		make([]byte, maxRequestSize+100),
	}
	for _, b := range junk {
		c.send(s.Addrs().Primary, b)
	}
	c.roundTrip(s.Addrs().Primary, newRequest(t))
	if st := s.Stats(); st.Malformed != uint64(len(junk)) || st.Responses != 1 {
		t.Errorf("stats %+v, want %d malformed and one response", st, len(junk))
	}
}

func TestLoopbackIPv6(t *testing.T) {
	needLoopback(t, "::1")
	s := startServer(t, Config{PrimaryIP: netip.IPv6Loopback(), TCP: true})
	c := newUDPClient(t, "::1")
	resp, from := c.roundTrip(s.Addrs().Primary, newRequest(t))
	if from != s.Addrs().Primary {
		t.Errorf("response came from %v, want %v", from, s.Addrs().Primary)
	}
	if got := addrAttr(t, resp, stun.AttrXORMappedAddress); got != c.addr() || !got.Addr().Is6() {
		t.Errorf("XOR-MAPPED-ADDRESS %v, want %v", got, c.addr())
	}
	if got := addrAttr(t, resp, stun.AttrResponseOrigin); got != s.Addrs().Primary {
		t.Errorf("RESPONSE-ORIGIN %v, want %v", got, s.Addrs().Primary)
	}

	tc := dialTCP(t, s.Addrs().TCP)
	resp = tcpRoundTrip(t, tc, newRequest(t))
	if got := addrAttr(t, resp, stun.AttrXORMappedAddress); got != tc.LocalAddr().(*net.TCPAddr).AddrPort() {
		t.Errorf("TCP XOR-MAPPED-ADDRESS %v, want %v", got, tc.LocalAddr())
	}
}

func dialTCP(t *testing.T, to netip.AddrPort) *net.TCPConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", to.String())
	if err != nil {
		t.Fatalf("dial %v: %v", to, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		t.Fatal(err)
	}
	return c.(*net.TCPConn)
}

// readTCPMessage reads one STUN message framed by its header.
func readTCPMessage(c net.Conn) ([]byte, error) {
	hdr := make([]byte, headerSize)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil, err
	}
	msg := make([]byte, headerSize+int(binary.BigEndian.Uint16(hdr[2:4])))
	copy(msg, hdr)
	_, err := io.ReadFull(c, msg[headerSize:])
	return msg, err
}

func tcpRoundTrip(t *testing.T, c net.Conn, req *stun.Message) *stun.Message {
	t.Helper()
	if _, err := c.Write(req.Raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	raw, err := readTCPMessage(c)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return decoded(t, req, raw)
}

// expectClosed waits for the server to close c.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 1))
	if err == nil || isTimeout(err) {
		t.Fatalf("connection still open (read: %v)", err)
	}
}

func TestLoopbackTCP(t *testing.T) {
	needLoopback(t, "127.0.0.2")
	s := startServer(t, Config{
		PrimaryIP:           netip.MustParseAddr("127.0.0.1"),
		AlternateIP:         netip.MustParseAddr("127.0.0.2"),
		EnableChangeRequest: true,
		TCP:                 true,
	})
	a := s.Addrs()
	if a.TCP != a.Primary {
		t.Fatalf("TCP on %v, want %v", a.TCP, a.Primary)
	}
	c := dialTCP(t, a.TCP)
	local := c.LocalAddr().(*net.TCPAddr).AddrPort()

	// Two requests in one write: the server must split them by their headers.
	r1, r2 := newRequest(t), newRequest(t)
	if _, err := c.Write(append(append([]byte{}, r1.Raw...), r2.Raw...)); err != nil {
		t.Fatal(err)
	}
	for _, req := range []*stun.Message{r1, r2} {
		raw, err := readTCPMessage(c)
		if err != nil {
			t.Fatal(err)
		}
		resp := decoded(t, req, raw)
		if got := addrAttr(t, resp, stun.AttrXORMappedAddress); got != local {
			t.Errorf("XOR-MAPPED-ADDRESS %v, want %v", got, local)
		}
		if got := addrAttr(t, resp, stun.AttrResponseOrigin); got != a.TCP {
			t.Errorf("RESPONSE-ORIGIN %v, want %v", got, a.TCP)
		}
		if got := addrAttr(t, resp, stun.AttrOtherAddress); got != a.AltIPAltPort {
			t.Errorf("OTHER-ADDRESS %v, want %v", got, a.AltIPAltPort)
		}
	}

	resp := tcpRoundTrip(t, c, newRequest(t, changeRequest(true, false)))
	if code := errorCode(t, resp); code != stun.CodeUnknownAttribute {
		t.Errorf("CHANGE-REQUEST over TCP: code %v, want 420", code)
	}

	// Garbage closes that connection only.
	bad := dialTCP(t, a.TCP)
	if _, err := bad.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, bad)
	tcpRoundTrip(t, c, newRequest(t))

	// UDP is served alongside.
	u := newUDPClient(t, "127.0.0.1")
	u.roundTrip(a.Primary, newRequest(t))

	st := s.Stats()
	if st.TCPAccepted != 2 || st.Malformed != 1 || st.Responses != 4 || st.ErrorResponses != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestLoopbackTCPLimits(t *testing.T) {
	s := startServer(t, Config{
		PrimaryIP:      netip.MustParseAddr("127.0.0.1"),
		TCP:            true,
		TCPIdleTimeout: 100 * time.Millisecond,
		MaxTCPConns:    1,
	})
	first := dialTCP(t, s.Addrs().TCP)
	tcpRoundTrip(t, first, newRequest(t)) // the server has registered it

	second := dialTCP(t, s.Addrs().TCP)
	expectClosed(t, second)
	if st := s.Stats(); st.TCPRejected != 1 || st.TCPOpen != 1 {
		t.Errorf("stats %+v, want one rejected, one open", st)
	}

	// The idle first connection is closed by the server.
	expectClosed(t, first)
}

// TestLoopbackTCPPerSource checks that one source cannot hold every TCP
// connection the server allows: connections beyond MaxTCPConnsPerSource
// are refused while the others stay served, and a source's slot is freed
// when its connection ends.
func TestLoopbackTCPPerSource(t *testing.T) {
	s := startServer(t, Config{PrimaryIP: netip.MustParseAddr("127.0.0.1"), TCP: true})
	held := make([]*net.TCPConn, MaxTCPConnsPerSource)
	for i := range held {
		held[i] = dialTCP(t, s.Addrs().TCP)
		tcpRoundTrip(t, held[i], newRequest(t)) // the server has registered it
	}
	over := dialTCP(t, s.Addrs().TCP)
	expectClosed(t, over)
	if st := s.Stats(); st.TCPRejected != 1 || st.TCPOpen != MaxTCPConnsPerSource {
		t.Errorf("stats %+v, want one rejected, %d open", st, MaxTCPConnsPerSource)
	}
	tcpRoundTrip(t, held[0], newRequest(t))

	// Ending a connection frees its slot.
	_ = held[0].Close()
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	deadline := time.After(ioTimeout)
	for s.Stats().TCPOpen != MaxTCPConnsPerSource-1 {
		select {
		case <-poll.C:
		case <-deadline:
			t.Fatalf("stats %+v: the closed connection is still counted", s.Stats())
		}
	}
	tcpRoundTrip(t, dialTCP(t, s.Addrs().TCP), newRequest(t))

	// Without rate limiting, sources are not counted.
	unlimited := startServer(t, Config{PrimaryIP: netip.MustParseAddr("127.0.0.1"), TCP: true, RateLimit: -1})
	for range MaxTCPConnsPerSource + 1 {
		tcpRoundTrip(t, dialTCP(t, unlimited.Addrs().TCP), newRequest(t))
	}
	if st := unlimited.Stats(); st.TCPRejected != 0 {
		t.Errorf("stats %+v, want none rejected without rate limiting", st)
	}
}

func TestServeLifecycle(t *testing.T) {
	cfg := Config{PrimaryIP: netip.MustParseAddr("127.0.0.1"), TCP: true}

	t.Run("close before serve", func(t *testing.T) {
		s, err := Listen(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := s.Serve(context.Background()); !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve after Close: %v, want ErrServerClosed", err)
		}
	})

	t.Run("concurrent close while serving", func(t *testing.T) {
		s, err := Listen(cfg)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.Serve(context.Background()) }()
		// A TCP connection in flight must not keep Serve from returning.
		c := dialTCP(t, s.Addrs().TCP)
		tcpRoundTrip(t, c, newRequest(t))
		if err := s.Serve(context.Background()); !errors.Is(err, ErrAlreadyServing) {
			t.Errorf("second Serve: %v, want ErrAlreadyServing", err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
		wg.Wait()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(ioTimeout):
			t.Fatal("Serve did not return after Close")
		}
		expectClosed(t, c)
		if st := s.Stats(); st.TCPOpen != 0 {
			t.Errorf("%d TCP connections still counted open", st.TCPOpen)
		}
	})
}

func TestListenCleansUpOnFailure(t *testing.T) {
	// Reserve a port, then make the alternate IP fail to bind: Listen must
	// release the primary socket it had already opened.
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	_ = probe.Close()

	_, err = Listen(Config{
		PrimaryIP:   netip.MustParseAddr("127.0.0.1"),
		AlternateIP: netip.MustParseAddr("192.0.2.123"), // not an address of this host
		Port:        port,
	})
	if err == nil {
		t.Fatal("Listen succeeded on an address this host does not have")
	}
	again, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatalf("primary port still held after the failed Listen: %v", err)
	}
	_ = again.Close()

	// A port in use is an error, not a retry loop.
	busy, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = Listen(Config{PrimaryIP: netip.MustParseAddr("127.0.0.1"), Port: busy.LocalAddr().(*net.UDPAddr).Port})
	if err == nil || errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Listen on a busy port: %v, want a bind error", err)
	}
}
