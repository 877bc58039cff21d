package turnserver

import (
	"crypto/tls"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtckit/rtckit/internal/testenv"

	"github.com/rtckit/rtckit/peer"
)

func TestNormalize(t *testing.T) {
	cert, key := testenv.WriteSelfSignedCert(t, t.TempDir())
	tests := []struct {
		name   string
		change func(*Config)
		want   string // substring of the error; empty for success
	}{
		{"lab", func(*Config) {}, ""},
		{"no listen IP", func(c *Config) { c.ListenIP = netip.Addr{} }, "listen IP is required"},
		{"wildcard", func(c *Config) { c.ListenIP = netip.IPv4Unspecified() }, "wildcard"},
		{"multicast", func(c *Config) { c.ListenIP = netip.MustParseAddr("239.1.1.1") }, "multicast"},
		{"broadcast", func(c *Config) { c.ListenIP = netip.MustParseAddr("255.255.255.255") }, "broadcast"},
		{"port out of range", func(c *Config) { c.Port = 70000 }, "out of range"},
		{"no listener", func(c *Config) { c.UDP, c.TCP = false, false }, "no listener"},
		{"TLS only", func(c *Config) { c.UDP, c.TCP, c.TLSCert, c.TLSKey = false, false, cert, key }, ""},
		{"TLS without key", func(c *Config) { c.TLSCert = cert }, "both a certificate and a key"},
		{"TLS without certificate", func(c *Config) { c.TLSKey = key }, "both a certificate and a key"},
		{"TLS missing file", func(c *Config) { c.TLSCert, c.TLSKey = filepath.Join(t.TempDir(), "nope.pem"), key }, "loading the TLS certificate"},
		{"TLS port clash", func(c *Config) { c.TLSCert, c.TLSKey, c.Port, c.TLSPort = cert, key, 3478, 3478 }, "both want port 3478"},
		{"TLS config and files", func(c *Config) { c.TLSConfig, c.TLSCert, c.TLSKey = &tls.Config{}, cert, key }, "not both"},
		{"TLS config without certificate", func(c *Config) { c.TLSConfig = &tls.Config{} }, "no certificate"},
		{"TLS port out of range", func(c *Config) { c.TLSCert, c.TLSKey, c.TLSPort = cert, key, -1 }, "TLS port"},
		{"no credentials", func(c *Config) { c.Users = nil }, "open relay"},
		{"REST secret only", func(c *Config) { c.Users, c.AuthSecret = nil, "s" }, ""},
		{"empty password", func(c *Config) { c.Users = map[string]string{"alice": ""} }, "empty password"},
		{"empty user", func(c *Config) { c.Users = map[string]string{"": "x"} }, "empty user"},
		{"long user", func(c *Config) { c.Users = map[string]string{strings.Repeat("u", 509): "x"} }, "509 bytes"},
		{"long realm", func(c *Config) { c.Realm = strings.Repeat("r", 764) }, "realm"},
		{"relay family", func(c *Config) { c.RelayIP = netip.IPv6Loopback() }, "different families"},
		{"relay wildcard", func(c *Config) { c.RelayIP = netip.IPv4Unspecified() }, "relay IP"},
		{"external family", func(c *Config) { c.ExternalIP = netip.IPv6Loopback() }, "different families"},
		{"external wildcard", func(c *Config) { c.ExternalIP = netip.IPv4Unspecified() }, "external IP"},
		{"port range", func(c *Config) { c.MinPort, c.MaxPort = 50000, 50100 }, ""},
		{"port range inverted", func(c *Config) { c.MinPort, c.MaxPort = 50100, 50000 }, "relay port range"},
		{"port range half", func(c *Config) { c.MinPort = 50000 }, "relay port range"},
		{"port range too high", func(c *Config) { c.MinPort, c.MaxPort = 50000, 70000 }, "relay port range"},
		{"negative idle timeout", func(c *Config) { c.TCPIdleTimeout = -time.Second }, "idle timeout"},
		{"negative max conns", func(c *Config) { c.MaxTCPConns = -1 }, "max TCP connections"},
		{"negative auth timeout", func(c *Config) { c.TCPAuthTimeout = -time.Second }, "authentication timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := labConfig()
			tt.change(&cfg)
			_, err := cfg.normalize()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("normalize: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("normalize succeeded, want an error with %q", tt.want)
			case tt.want != "" && (!errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("normalize: %v, want ErrInvalidConfig with %q", err, tt.want)
			}
		})
	}
}

func TestNormalizeDefaults(t *testing.T) {
	users := map[string]string{"alice": "wonderland"}
	cfg := Config{ListenIP: netip.MustParseAddr("::ffff:192.0.2.1"), UDP: true, Users: users, QuotaPerUser: -5}
	got, err := cfg.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if got.ListenIP != netip.MustParseAddr("192.0.2.1") || got.RelayIP != got.ListenIP {
		t.Errorf("listen %v relay %v, want 192.0.2.1 for both", got.ListenIP, got.RelayIP)
	}
	if got.Realm != DefaultRealm || got.QuotaPerUser != -1 || got.TCPIdleTimeout != DefaultTCPIdleTimeout ||
		got.MaxTCPConns != DefaultMaxTCPConns || got.TCPAuthTimeout != DefaultTCPAuthTimeout || got.Now == nil || got.TLSConfig != nil || got.TLSPort != 0 {
		t.Errorf("defaults not applied: %+v", got)
	}
	users["mallory"] = "x"
	if _, ok := got.Users["mallory"]; ok {
		t.Error("normalize kept the caller's user map")
	}
	if got, _ := (Config{ListenIP: loopback, UDP: true, Users: users}).normalize(); got.QuotaPerUser != DefaultQuotaPerUser {
		t.Errorf("quota %d, want %d", got.QuotaPerUser, DefaultQuotaPerUser)
	}
}

func TestNoCredentialsError(t *testing.T) {
	_, err := Listen(Config{ListenIP: loopback, UDP: true})
	if !errors.Is(err, ErrNoCredentials) || !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Listen without credentials: %v, want ErrNoCredentials and ErrInvalidConfig", err)
	}
}

// TestRESTPasswordVector checks the TURN REST scheme the server verifies
// against a value computed independently (Python's hmac module):
// base64(HMAC-SHA1("north-wind", "1893456000:carol")).
func TestRESTPasswordVector(t *testing.T) {
	now := time.Date(2029, 12, 31, 23, 0, 0, 0, time.UTC)
	user, pass := peer.TURNRESTCredentials("north-wind", "carol", time.Hour, now)
	if user != "1893456000:carol" || pass != "rlHPTIziYYKS2lwNs3Q2PWbPNQ0=" {
		t.Errorf("TURNRESTCredentials = %q, %q", user, pass)
	}
	if userID, v := parseRESTUsername(user, now); userID != "carol" || v != restValid {
		t.Errorf("parseRESTUsername(%q) = %q, %v", user, userID, v)
	}
}

func TestParseRESTUsername(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		username string
		userID   string
		verdict  restVerdict
	}{
		{"1800000000:alice", "alice", restValid},
		{"1800000001:alice:x", "alice:x", restValid},
		{"1799999999:alice", "alice", restExpired},
		{"1900000000", "1900000000", restValid},
		{"1900000000:", "1900000000:", restValid},
		{"alice", "", restMalformed},
		{"alice:1900000000", "", restMalformed},
		{":alice", "", restMalformed},
		{"-5:alice", "", restMalformed},
		{"0:alice", "", restMalformed},
		{"99999999999999999999:alice", "", restMalformed},
		{"", "", restMalformed},
	}
	for _, tt := range tests {
		userID, v := parseRESTUsername(tt.username, now)
		if v != tt.verdict || (v != restMalformed && userID != tt.userID) {
			t.Errorf("parseRESTUsername(%q) = %q, %v; want %q, %v", tt.username, userID, v, tt.userID, tt.verdict)
		}
	}
}

func TestClassifyPeer(t *testing.T) {
	tests := []struct {
		ip   string
		want PeerClass
	}{
		{"192.0.2.1", PeerPublic},
		{"8.8.8.8", PeerPublic},
		{"2001:db8::1", PeerPublic},
		{"127.0.0.1", PeerLoopback},
		{"127.255.255.254", PeerLoopback},
		{"::1", PeerLoopback},
		{"::ffff:127.0.0.1", PeerLoopback},
		{"64:ff9b::127.0.0.1", PeerLoopback},
		{"10.0.0.1", PeerPrivate},
		{"172.16.5.4", PeerPrivate},
		{"172.32.0.1", PeerPublic},
		{"192.168.1.1", PeerPrivate},
		{"100.64.0.1", PeerPrivate},
		{"100.128.0.1", PeerPublic},
		{"198.18.0.1", PeerPrivate},
		{"fd00::1", PeerPrivate},
		{"fec0::1", PeerPrivate},
		{"::ffff:10.1.1.1", PeerPrivate},
		{"64:ff9b::10.1.1.1", PeerPrivate},
		{"64:ff9b::8.8.8.8", PeerPublic},
		{"0.0.0.0", PeerForbidden},
		{"0.1.2.3", PeerForbidden},
		{"::", PeerForbidden},
		{"169.254.169.254", PeerForbidden},
		{"fe80::1", PeerForbidden},
		{"fe80::1%eth0", PeerForbidden},
		{"224.0.0.1", PeerForbidden},
		{"ff02::1", PeerForbidden},
		{"ff0e::1", PeerForbidden},
		{"240.0.0.1", PeerForbidden},
		{"255.255.255.255", PeerForbidden},
		{"::10.0.0.1", PeerForbidden},
		{"64:ff9b::169.254.169.254", PeerForbidden},
	}
	for _, tt := range tests {
		if got := ClassifyPeer(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("ClassifyPeer(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
	if got := ClassifyPeer(netip.Addr{}); got != PeerForbidden {
		t.Errorf("ClassifyPeer(invalid) = %v, want forbidden", got)
	}
}

func TestPeerAllowed(t *testing.T) {
	for _, tt := range []struct {
		loopback, private bool
		want              map[PeerClass]bool
	}{
		{false, false, map[PeerClass]bool{PeerPublic: true}},
		{true, false, map[PeerClass]bool{PeerPublic: true, PeerLoopback: true}},
		{false, true, map[PeerClass]bool{PeerPublic: true, PeerPrivate: true}},
		{true, true, map[PeerClass]bool{PeerPublic: true, PeerLoopback: true, PeerPrivate: true}},
	} {
		cfg := Config{AllowLoopbackPeers: tt.loopback, AllowPrivatePeers: tt.private}
		for _, class := range []PeerClass{PeerPublic, PeerLoopback, PeerPrivate, PeerForbidden, PeerClass(99)} {
			if got := cfg.peerAllowed(class); got != tt.want[class] {
				t.Errorf("loopback=%v private=%v: %v allowed = %v", tt.loopback, tt.private, class, got)
			}
		}
	}
}
