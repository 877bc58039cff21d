package turnserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/rtckit/rtckit/internal/netaddr"
	"github.com/rtckit/rtckit/internal/testenv"
	"github.com/rtckit/rtckit/peer"
)

func TestAllocate(t *testing.T) {
	certFile, keyFile := testenv.WriteSelfSignedCert(t, t.TempDir())
	cfg := labConfig()
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	s := startServer(t, cfg)
	a := s.Addrs()
	if !a.UDP.IsValid() || a.TCP != a.UDP || !a.TLS.IsValid() || a.TLS.Port() == a.TCP.Port() {
		t.Fatalf("addresses %+v", a)
	}

	for i, kind := range []transportKind{overUDP, overTCP, overTLS} {
		t.Run(string(kind), func(t *testing.T) {
			c := newClient(t, s, kind, "alice", "wonderland")
			relay, err := c.allocate(t)
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			got, ok := netaddr.AddrPortOf(relay.LocalAddr())
			if !ok || got.Addr() != loopback || got.Port() == 0 {
				t.Errorf("relayed address %v, want 127.0.0.1:port", relay.LocalAddr())
			}
			if st := s.Stats(); st.Allocations != uint64(i+1) || st.AllocationsActive < 1 || st.AuthFailures != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
	if st := s.Stats(); st.TCPAccepted != 2 || st.TCPRejected != 0 {
		t.Errorf("TCP stats %+v, want 2 accepted", st)
	}
}

func TestAuthRefused(t *testing.T) {
	cfg := labConfig()
	cfg.Realm = "lab"
	s := startServer(t, cfg)
	for _, tt := range []struct {
		name, user, pass string
	}{
		{"wrong password", "alice", "looking-glass"},
		{"unknown user", "bob", "wonderland"},
		{"REST user name without a secret", "4102444800:alice", "x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Stats().AuthFailures
			c := newClient(t, s, overUDP, tt.user, tt.pass)
			_, err := c.allocate(t)
			if code := turnCode(err); code != stun.CodeUnauthorized {
				t.Fatalf("Allocate: %v (code %d), want 401", err, code)
			}
			if got := s.Stats().AuthFailures; got != before+1 {
				t.Errorf("auth failures %d, want %d", got, before+1)
			}
		})
	}
	if st := s.Stats(); st.Allocations != 0 || st.AllocationsActive != 0 {
		t.Errorf("stats %+v, want no allocation", st)
	}
}

func TestRESTAuth(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := labConfig()
	cfg.Users = nil
	cfg.AuthSecret = "north-wind"
	cfg.Now = func() time.Time { return now }
	s := startServer(t, cfg)

	t.Run("valid", func(t *testing.T) {
		user, pass := peer.TURNRESTCredentials(cfg.AuthSecret, "carol", time.Hour, now)
		if _, err := newClient(t, s, overUDP, user, pass).allocate(t); err != nil {
			t.Fatalf("Allocate with %s: %v", user, err)
		}
	})
	t.Run("valid without a user", func(t *testing.T) {
		user, pass := peer.TURNRESTCredentials(cfg.AuthSecret, "", time.Minute, now)
		if _, err := newClient(t, s, overTCP, user, pass).allocate(t); err != nil {
			t.Fatalf("Allocate with %s: %v", user, err)
		}
	})
	for _, tt := range []struct {
		name       string
		user, pass string
	}{
		{"expired", "", ""},
		{"other secret", "", ""},
		{"not a timestamp", "carol", "x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			switch tt.name {
			case "expired":
				tt.user, tt.pass = peer.TURNRESTCredentials(cfg.AuthSecret, "carol", time.Hour, now.Add(-time.Hour-time.Second))
			case "other secret":
				tt.user, tt.pass = peer.TURNRESTCredentials("south-wind", "carol", time.Hour, now)
			}
			_, err := newClient(t, s, overUDP, tt.user, tt.pass).allocate(t)
			if code := turnCode(err); code != stun.CodeUnauthorized {
				t.Fatalf("Allocate: %v (code %d), want 401", err, code)
			}
		})
	}
	if st := s.Stats(); st.Allocations != 2 || st.AuthFailures != 3 {
		t.Errorf("stats %+v, want 2 allocations and 3 auth failures", st)
	}
}

func TestQuota(t *testing.T) {
	now := time.Now()
	cfg := labConfig()
	cfg.QuotaPerUser = 2
	cfg.AuthSecret = "s"
	s := startServer(t, cfg)

	first := newClient(t, s, overUDP, "alice", "wonderland")
	relay, err := first.allocate(t)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(t, s, overTCP, "alice", "wonderland").allocate(t); err != nil {
		t.Fatal(err)
	}
	_, err = newClient(t, s, overUDP, "alice", "wonderland").allocate(t)
	if code := turnCode(err); code != stun.CodeAllocQuotaReached {
		t.Fatalf("third Allocate: %v (code %d), want 486", err, code)
	}
	// Another user has a quota of their own; TURN REST credentials count
	// for the user after the colon.
	user, pass := peer.TURNRESTCredentials(cfg.AuthSecret, "bob", time.Hour, now)
	if _, err := newClient(t, s, overUDP, user, pass).allocate(t); err != nil {
		t.Fatalf("bob's Allocate: %v", err)
	}
	for range 2 {
		user, pass := peer.TURNRESTCredentials(cfg.AuthSecret, "dave", time.Hour, now)
		if _, err := newClient(t, s, overUDP, user, pass).allocate(t); err != nil {
			t.Fatalf("dave's Allocate: %v", err)
		}
	}
	user, pass = peer.TURNRESTCredentials(cfg.AuthSecret, "dave", 2*time.Hour, now)
	if _, err := newClient(t, s, overUDP, user, pass).allocate(t); turnCode(err) != stun.CodeAllocQuotaReached {
		t.Fatalf("dave's third Allocate with fresh credentials: %v, want 486", err)
	}

	// Releasing an allocation frees a slot.
	if err := relay.Close(); err != nil {
		t.Fatal(err)
	}
	first.sync(t)
	if _, err := newClient(t, s, overUDP, "alice", "wonderland").allocate(t); err != nil {
		t.Fatalf("Allocate after a release: %v", err)
	}
	if st := s.Stats(); st.QuotaRejections != 2 || st.AllocationsActive != 5 || st.Allocations != 6 {
		t.Errorf("stats %+v, want 2 quota rejections, 5 active of 6 allocations", st)
	}
}

func TestPeerFilter(t *testing.T) {
	tests := []struct {
		name              string
		loopback, private bool
		peer              string
		allowed           bool
	}{
		{"loopback refused", false, false, "127.0.0.1", false},
		{"other loopback refused", false, true, "127.1.2.3", false},
		{"loopback allowed", true, false, "127.0.0.1", true},
		{"private refused", true, false, "10.1.2.3", false},
		{"private allowed", false, true, "192.168.1.1", true},
		{"shared NAT refused", false, false, "100.64.0.1", false},
		{"public allowed", false, false, "192.0.2.1", true},
		{"metadata service refused", true, true, "169.254.169.254", false},
		{"this network refused", true, true, "0.0.0.1", false},
		{"broadcast refused", true, true, "255.255.255.255", false},
		{"multicast refused", true, true, "224.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := labConfig()
			cfg.AllowLoopbackPeers, cfg.AllowPrivatePeers = tt.loopback, tt.private
			s := startServer(t, cfg)
			c := newClient(t, s, overUDP, "alice", "wonderland")
			if _, err := c.allocate(t); err != nil {
				t.Fatal(err)
			}
			peer := &net.UDPAddr{IP: net.ParseIP(tt.peer), Port: 9}
			err := c.CreatePermission(peer)
			switch {
			case tt.allowed && err != nil:
				t.Errorf("CreatePermission(%v): %v", peer, err)
			case !tt.allowed && turnCode(err) != stun.CodeForbidden:
				t.Errorf("CreatePermission(%v): %v, want 403", peer, err)
			}
			st := s.Stats()
			if want := map[bool]uint64{true: 0, false: 1}[tt.allowed]; st.PeerDenials != want || st.Permissions != 1-want {
				t.Errorf("stats %+v, want %d peer denials", st, want)
			}
		})
	}
}

func TestRelayRoundTrip(t *testing.T) {
	cfg := labConfig()
	cfg.AllowLoopbackPeers = true
	s := startServer(t, cfg)
	peer := newEchoPeer(t, loopback)
	for _, kind := range []transportKind{overUDP, overTCP} {
		t.Run(string(kind), func(t *testing.T) {
			c := newClient(t, s, kind, "alice", "wonderland")
			relay, err := c.allocate(t)
			if err != nil {
				t.Fatal(err)
			}
			// The first datagrams go in Send indications while the client
			// binds a channel; later ones go as ChannelData.
			for i := range 5 {
				roundTrip(t, relay, peer.addr(), "ping "+string(rune('a'+i)))
			}
		})
	}
	st := s.Stats()
	if st.PacketsToPeers != 10 || st.PacketsFromPeers != 10 || st.BytesToPeers != 60 || st.BytesFromPeers != 60 {
		t.Errorf("relay counters %+v, want 10 packets and 60 bytes each way", st)
	}
	if st.Permissions < 2 || st.PeerDenials != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestCloseWithActiveAllocations(t *testing.T) {
	cfg := labConfig()
	cfg.Logger = testLogger(t)
	cfg.AllowLoopbackPeers = true
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()

	peer := newEchoPeer(t, loopback)
	var relays []netip.AddrPort
	for _, kind := range []transportKind{overUDP, overTCP, overUDP} {
		c := newClient(t, s, kind, "alice", "wonderland")
		relay, err := c.allocate(t)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, relay, peer.addr(), "hello")
		ap, _ := netaddr.AddrPortOf(relay.LocalAddr())
		relays = append(relays, ap)
	}
	if st := s.Stats(); st.AllocationsActive != 3 || st.TCPOpen != 1 {
		t.Fatalf("stats before close %+v", st)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(CloseTimeout + ioTimeout):
		t.Fatal("Serve did not return after cancel")
	}
	if st := s.Stats(); st.AllocationsActive != 0 || st.TCPOpen != 0 {
		t.Errorf("stats after close %+v, want no allocation and no connection", st)
	}
	// Every relay port and the listen port are free again.
	for _, ap := range append(relays, s.Addrs().UDP) {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			t.Errorf("%v still bound after Close: %v", ap, err)
			continue
		}
		_ = c.Close()
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Serve(context.Background()); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close: %v, want ErrServerClosed", err)
	}
}

func TestIPv6(t *testing.T) {
	v6 := netip.IPv6Loopback()
	probe, err := net.ListenUDP("udp6", &net.UDPAddr{IP: v6.AsSlice()})
	if err != nil {
		testenv.Require(t, fmt.Errorf("binding ::1: %w", err))
	}
	_ = probe.Close()

	cfg := labConfig()
	cfg.ListenIP, cfg.AllowLoopbackPeers = v6, true
	s := startServer(t, cfg)
	if got := s.Addrs().UDP.Addr(); got != v6 {
		t.Fatalf("UDP listener on %v", got)
	}
	conn, err := net.ListenUDP("udp6", &net.UDPAddr{IP: v6.AsSlice()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: s.Addrs().UDP.String(), TURNServerAddr: s.Addrs().UDP.String(),
		Conn: conn, Username: "alice", Password: "wonderland",
		LoggerFactory: peer.SlogLoggerFactory{Logger: testLogger(t).With("side", "client")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := (&testClient{Client: c, conn: conn}).allocate(t)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := netaddr.AddrPortOf(relay.LocalAddr()); got.Addr() != v6 {
		t.Errorf("relayed address %v, want one on ::1", relay.LocalAddr())
	}
	roundTrip(t, relay, newEchoPeer(t, v6).addr(), "over IPv6")
	// An IPv4 peer does not fit an IPv6 allocation (RFC 6156: 443).
	if err := c.CreatePermission(&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9}); turnCode(err) != stun.CodePeerAddrFamilyMismatch {
		t.Errorf("CreatePermission to IPv4: %v, want 443", err)
	}
}
