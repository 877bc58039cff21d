package stunserver

import (
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"
)

func TestConfigNormalize(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.1")
	v4b := netip.MustParseAddr("192.0.2.2")
	v6 := netip.MustParseAddr("2001:db8::1")

	bad := []struct {
		name string
		cfg  Config
	}{
		{"no primary IP", Config{}},
		{"wildcard primary", Config{PrimaryIP: netip.IPv4Unspecified()}},
		{"wildcard IPv6 primary", Config{PrimaryIP: netip.IPv6Unspecified()}},
		{"multicast primary", Config{PrimaryIP: netip.MustParseAddr("239.1.2.3")}},
		{"broadcast primary", Config{PrimaryIP: netip.MustParseAddr("255.255.255.255")}},
		{"port out of range", Config{PrimaryIP: v4, Port: 70000}},
		{"negative port", Config{PrimaryIP: v4, Port: -1}},
		{"mixed families", Config{PrimaryIP: v4, AlternateIP: v6}},
		{"same IP twice", Config{PrimaryIP: v4, AlternateIP: netip.MustParseAddr("::ffff:192.0.2.1")}},
		{"wildcard alternate", Config{PrimaryIP: v4, AlternateIP: netip.IPv4Unspecified()}},
		{"same port twice", Config{PrimaryIP: v4, AlternateIP: v4b, Port: 3478, AltPort: 3478}},
		{"alt port out of range", Config{PrimaryIP: v4, AlternateIP: v4b, AltPort: 65536}},
		{"NaN rate", Config{PrimaryIP: v4, RateLimit: math.NaN()}},
		{"negative burst", Config{PrimaryIP: v4, RateBurst: -1}},
		{"long software", Config{PrimaryIP: v4, Software: strings.Repeat("x", 764)}},
		{"negative idle timeout", Config{PrimaryIP: v4, TCPIdleTimeout: -1}},
		{"negative max conns", Config{PrimaryIP: v4, MaxTCPConns: -1}},
	}
	for _, tt := range bad {
		if _, err := tt.cfg.normalize(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", tt.name, err)
		}
		if _, err := Listen(tt.cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Listen err = %v, want ErrInvalidConfig", tt.name, err)
		}
	}

	t.Run("defaults", func(t *testing.T) {
		c, err := Config{PrimaryIP: netip.MustParseAddr("::ffff:192.0.2.1"), AltPort: 9, EnableChangeRequest: true}.normalize()
		if err != nil {
			t.Fatal(err)
		}
		if c.PrimaryIP != v4 || c.AltPort != 0 || c.EnableChangeRequest {
			t.Errorf("primary %v alt port %d change %v: want unmapped IP, alternate settings dropped without an alternate IP",
				c.PrimaryIP, c.AltPort, c.EnableChangeRequest)
		}
		if c.RateLimit != DefaultRateLimit || c.RateBurst != DefaultRateBurst || c.Software != DefaultSoftware ||
			c.TCPIdleTimeout != DefaultTCPIdleTimeout || c.MaxTCPConns != DefaultMaxTCPConns {
			t.Errorf("defaults not applied: %+v", c)
		}
	})
	t.Run("burst follows a high rate", func(t *testing.T) {
		c, err := Config{PrimaryIP: v4, RateLimit: 1000}.normalize()
		if err != nil || c.RateBurst != 2000 {
			t.Errorf("burst %d (%v), want 2000", c.RateBurst, err)
		}
	})
	t.Run("unlimited", func(t *testing.T) {
		for _, r := range []float64{-1, math.Inf(1)} {
			c, err := Config{PrimaryIP: v4, RateLimit: r}.normalize()
			if err != nil || c.RateLimit >= 0 {
				t.Errorf("rate %v normalized to %v (%v), want unlimited", r, c.RateLimit, err)
			}
		}
	})
}
