package stunprobe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// fakeServer is a misbehaving STUN server on loopback: each of its sockets
// hands every datagram to reply, which may write anything back.
type fakeServer struct {
	conns []*net.UDPConn
	wg    sync.WaitGroup
}

type fakeReply func(s *fakeServer, sock int, req []byte, from *net.UDPAddr)

// startFake listens on each address (port 0 picks one) and serves reply until the test ends.
func startFake(t *testing.T, reply fakeReply, addrs ...string) *fakeServer {
	t.Helper()
	s := &fakeServer{}
	for _, a := range addrs {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(a)))
		if err != nil {
			s.close()
			t.Fatalf("listen %s: %v", a, err)
		}
		s.conns = append(s.conns, c)
	}
	for i, c := range s.conns {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			buf := make([]byte, 1500)
			for {
				n, from, err := c.ReadFromUDP(buf)
				if err != nil {
					return
				}
				if reply != nil {
					reply(s, i, append([]byte(nil), buf[:n]...), from)
				}
			}
		}()
	}
	t.Cleanup(s.close)
	return s
}

func (s *fakeServer) close() {
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.wg.Wait()
}

func (s *fakeServer) addr(i int) netip.AddrPort {
	return s.conns[i].LocalAddr().(*net.UDPAddr).AddrPort()
}

// bindingReply builds a success response to req with the given attributes.
func bindingReply(t *testing.T, req []byte, from *net.UDPAddr, extra ...stun.Setter) []byte {
	m := &stun.Message{Raw: req}
	if err := m.Decode(); err != nil {
		return nil
	}
	setters := append([]stun.Setter{m, stun.BindingSuccess, &stun.XORMappedAddress{IP: from.IP, Port: from.Port}}, extra...)
	setters = append(setters, stun.Fingerprint)
	resp, err := stun.Build(setters...)
	if err != nil {
		t.Errorf("build reply: %v", err)
		return nil
	}
	return resp.Raw
}

func loopbackOptions(servers ...netip.AddrPort) Options {
	o := Options{UDP: true, IPv4: true, FilterWait: DefaultFilterWait}
	for _, s := range servers {
		o.Servers = append(o.Servers, Server{URI: "stun:" + s.String(), Host: s.Addr().String(), Port: int(s.Port())})
	}
	return o
}

func TestBlackholedServerIsReportedWithinDeadline(t *testing.T) {
	silent := startFake(t, nil, "127.0.0.1:0")
	opts := loopbackOptions(silent.addr(0))
	opts.TransactionTimeout = 400 * DefaultRTO / 100 // 400 ms
	r, err := Probe(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != OutcomeUnreachable || !errors.Is(r.Err(), ErrUnreachable) {
		t.Fatalf("outcome = %s, want unreachable", r.Outcome)
	}
	b := r.Servers[0].Bindings[0]
	if b.Status != StatusTimeout || b.Sent < 2 {
		t.Errorf("binding = %+v, want a timeout after retransmissions", b)
	}
	if r.DurationMS > 10000 { // its own timeouts end it, not the test's
		t.Errorf("probe took %.0f ms with a 400 ms transaction timeout", r.DurationMS)
	}
}

// TestContextEndsProbe: a cancelled context (SIGINT, SIGTERM) ends the
// probe as interrupted, with the family verdict saying so; a deadline ends
// it with what the network did, here unreachable.
func TestContextEndsProbe(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		outcome string
		err     error
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, OutcomeInterrupted, ErrInterrupted},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, OutcomeUnreachable, ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			silent := startFake(t, nil, "127.0.0.1:0")
			ctx, cancel := tt.ctx()
			defer cancel()
			opts := loopbackOptions(silent.addr(0))
			opts.TransactionTimeout = DefaultTimeout * 10
			r, err := Probe(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if r.Outcome != tt.outcome || !errors.Is(r.Err(), tt.err) {
				t.Errorf("outcome = %s (%v), want %s", r.Outcome, r.Err(), tt.outcome)
			}
			if tt.outcome == OutcomeInterrupted {
				for _, f := range r.Families {
					if f.Verdict.Classic != "interrupted" {
						t.Errorf("family %s verdict %+v, want interrupted", f.Family, f.Verdict)
					}
				}
			}
		})
	}
}

func TestGarbageAndWrongTransactionRepliesAreIgnored(t *testing.T) {
	var mu sync.Mutex
	sent := 0
	srv := startFake(t, func(s *fakeServer, sock int, req []byte, from *net.UDPAddr) {
		mu.Lock()
		defer mu.Unlock()
		sent++
		c := s.conns[sock]
		_, _ = c.WriteToUDP([]byte("definitely not STUN"), from)
		_, _ = c.WriteToUDP(req[:10], from) // truncated
		other, _ := stun.Build(stun.TransactionID, stun.BindingSuccess, &stun.XORMappedAddress{IP: net.IPv4(6, 6, 6, 6), Port: 6666})
		_, _ = c.WriteToUDP(other.Raw, from) // a reply to someone else's transaction
		if sent >= 3 {
			// Finally a genuine reply, after the garbage.
			_, _ = c.WriteToUDP(bindingReply(t, req, from), from)
		}
	}, "127.0.0.1:0")
	r, err := Probe(context.Background(), loopbackOptions(srv.addr(0)))
	if err != nil {
		t.Fatal(err)
	}
	b := r.Servers[0].Bindings[0]
	if b.Status != StatusOK || b.Mapped == "" || b.Mapped == "6.6.6.6:6666" {
		t.Fatalf("binding = %+v, want the genuine mapped address", b)
	}
}

func TestErrorResponseWithoutCodeIsAnErrorEntry(t *testing.T) {
	srv := startFake(t, func(s *fakeServer, sock int, req []byte, from *net.UDPAddr) {
		m := &stun.Message{Raw: req}
		if m.Decode() != nil {
			return
		}
		resp, _ := stun.Build(m, stun.NewType(stun.MethodBinding, stun.ClassErrorResponse))
		_, _ = s.conns[sock].WriteToUDP(resp.Raw, from)
	}, "127.0.0.1:0")
	r, err := Probe(context.Background(), loopbackOptions(srv.addr(0)))
	if err != nil {
		t.Fatal(err)
	}
	if b := r.Servers[0].Bindings[0]; b.Status != StatusError || b.Error == "" {
		t.Errorf("binding = %+v, want an error entry", b)
	}
}

// TestServerIgnoringChangeRequestIsNeverOpen checks the flaw this probe must
// not have: a server that advertises OTHER-ADDRESS but answers CHANGE-REQUEST
// from its primary address must not make filtering look open.
func TestServerIgnoringChangeRequestIsNeverOpen(t *testing.T) {
	// Learn two free ports, then bind A1:P1, A2:P1, A1:P2, A2:P2 with them.
	probe := startFake(t, nil, "127.0.0.1:0", "127.0.0.1:0")
	p1, p2 := probe.addr(0).Port(), probe.addr(1).Port()
	probe.close()
	a1, a2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	other := netip.AddrPortFrom(a2, p2)
	srv := startFake(t, func(s *fakeServer, sock int, req []byte, from *net.UDPAddr) {
		resp := bindingReply(t, req, from, &stun.OtherAddress{IP: other.Addr().AsSlice(), Port: int(other.Port())})
		_, _ = s.conns[sock].WriteToUDP(resp, from) // always from the receiving socket
	}, netip.AddrPortFrom(a1, p1).String(), netip.AddrPortFrom(a2, p1).String(),
		netip.AddrPortFrom(a1, p2).String(), other.String())
	r, err := Probe(context.Background(), loopbackOptions(srv.addr(0)))
	if err != nil {
		t.Fatal(err)
	}
	f := r.Families[0]
	if f.Mapping.Behavior != EndpointIndependent {
		t.Errorf("mapping = %+v, want endpoint-independent", f.Mapping)
	}
	if f.Filtering.Behavior != Inconclusive {
		t.Fatalf("filtering = %+v, want inconclusive", f.Filtering)
	}
	if f.Verdict.Classic == "open internet (no NAT)" || f.Verdict.Classic == "full cone" {
		t.Errorf("verdict %q claims open filtering", f.Verdict.Classic)
	}
}

// TestALGDetected checks that a MAPPED-ADDRESS differing from the
// XOR-MAPPED-ADDRESS, as left by a middlebox rewriting payload addresses,
// is reported.
func TestALGDetected(t *testing.T) {
	srv := startFake(t, func(s *fakeServer, sock int, req []byte, from *net.UDPAddr) {
		rewritten := &stun.MappedAddress{IP: net.IPv4(10, 0, 0, 1), Port: from.Port}
		_, _ = s.conns[sock].WriteToUDP(bindingReply(t, req, from, rewritten), from)
	}, "127.0.0.1:0")
	r, err := Probe(context.Background(), loopbackOptions(srv.addr(0)))
	if err != nil {
		t.Fatal(err)
	}
	if f := r.Families[0]; f.ALG == nil || !*f.ALG {
		t.Errorf("ALG = %s, want true", fmtBool(f.ALG))
	}
}
