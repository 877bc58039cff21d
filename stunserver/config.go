package stunserver

import (
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"time"

	"github.com/pion/transport/v5"

	"github.com/rtckit/rtckit/internal/netaddr"
)

// Defaults applied by Listen to zero-valued Config fields.
const (
	// DefaultRateLimit is the number of requests per second that one source
	// address may send before its requests are dropped. It is generous for a
	// NAT behaviour probe (a dozen requests, retransmissions included) and
	// keeps the server useless as a traffic reflector.
	DefaultRateLimit = 20.0

	// DefaultRateBurst is the token bucket size that goes with DefaultRateLimit.
	DefaultRateBurst = 40

	// DefaultSoftware is the SOFTWARE attribute sent when Config.Software is empty.
	DefaultSoftware = "rtckit"

	// DefaultTCPIdleTimeout closes a TCP connection that has carried no
	// request for this long. It leaves clients ample time to retransmit or
	// send follow-up requests on the same connection while bounding what an
	// idle client holds.
	DefaultTCPIdleTimeout = 30 * time.Second

	// DefaultMaxTCPConns bounds the number of concurrent TCP connections;
	// further connections are accepted and closed at once.
	DefaultMaxTCPConns = 1024

	// maxSoftwareBytes is the longest SOFTWARE value RFC 8489 §14.14 allows.
	maxSoftwareBytes = 763
)

// Config describes the sockets a Server binds and how it answers.
type Config struct {
	// PrimaryIP is the address the server answers on. It is required and must
	// be a concrete unicast address (not 0.0.0.0 or ::), because responses
	// carry it in RESPONSE-ORIGIN.
	PrimaryIP netip.Addr

	// AlternateIP, when valid, makes the server RFC 5780-capable: it binds
	// two IPs by two ports (PrimaryIP and AlternateIP, Port and AltPort) and
	// advertises AlternateIP:AltPort in OTHER-ADDRESS. It must be of the same
	// family as PrimaryIP. When it is not set, only PrimaryIP:Port is bound
	// and AltPort is ignored.
	AlternateIP netip.Addr

	// Port is the primary port. Zero picks a port that is free on every
	// bound IP (and for TCP when TCP is set); tests use this.
	Port int

	// AltPort is the alternate port, used only with AlternateIP. Zero picks
	// a port that is free on both IPs.
	AltPort int

	// EnableChangeRequest makes the server honour CHANGE-REQUEST by sending
	// the response from the socket with the changed IP and/or port. When it
	// is false, or no AlternateIP is configured, a request carrying
	// CHANGE-REQUEST gets a 420 (Unknown Attribute) error response.
	EnableChangeRequest bool

	// TCP also serves Binding requests over TCP on PrimaryIP:Port. STUN
	// over TCP has no framing of its own: each message is delimited by the
	// length in its header.
	TCP bool

	// RateLimit is the number of requests per second accepted from one
	// source (an IPv4 address or an IPv6 /64). Zero means DefaultRateLimit;
	// a negative value disables rate limiting.
	RateLimit float64

	// RateBurst is the token bucket size of the rate limit. Zero means
	// DefaultRateBurst, or twice RateLimit when that is larger.
	RateBurst int

	// Software is the SOFTWARE attribute value; empty means DefaultSoftware.
	Software string

	// TCPIdleTimeout closes idle TCP connections; zero means
	// DefaultTCPIdleTimeout.
	TCPIdleTimeout time.Duration

	// MaxTCPConns bounds concurrent TCP connections; zero means
	// DefaultMaxTCPConns.
	MaxTCPConns int

	// Net creates every socket. Nil means the host's real network
	// (pion's stdnet); tests pass a vnet.Net.
	Net transport.Net

	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// hasAlternate reports whether the configuration asks for RFC 5780 sockets.
func (c *Config) hasAlternate() bool { return c.AlternateIP.IsValid() }

// normalize validates c and returns a copy with defaults filled in. It does
// not touch Net or Logger.
func (c Config) normalize() (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if !c.PrimaryIP.IsValid() {
		return bad("a primary IP is required")
	}
	c.PrimaryIP = c.PrimaryIP.Unmap()
	if err := netaddr.CheckServerIP(c.PrimaryIP, "STUN"); err != nil {
		return bad("primary IP %s: %v", c.PrimaryIP, err)
	}
	if err := netaddr.CheckPort(c.Port); err != nil {
		return bad("port %d: %v", c.Port, err)
	}
	if c.hasAlternate() {
		c.AlternateIP = c.AlternateIP.Unmap()
		if err := netaddr.CheckServerIP(c.AlternateIP, "STUN"); err != nil {
			return bad("alternate IP %s: %v", c.AlternateIP, err)
		}
		if c.AlternateIP.Is4() != c.PrimaryIP.Is4() {
			return bad("alternate IP %s and primary IP %s are of different families", c.AlternateIP, c.PrimaryIP)
		}
		if c.AlternateIP.WithZone("") == c.PrimaryIP.WithZone("") {
			return bad("alternate IP and primary IP are both %s", c.PrimaryIP)
		}
		if err := netaddr.CheckPort(c.AltPort); err != nil {
			return bad("alternate port %d: %v", c.AltPort, err)
		}
		if c.Port != 0 && c.Port == c.AltPort {
			return bad("port and alternate port are both %d", c.Port)
		}
	} else {
		c.AltPort = 0
		c.EnableChangeRequest = false
	}

	switch {
	case math.IsNaN(c.RateLimit):
		return bad("rate limit is NaN")
	case c.RateLimit == 0:
		c.RateLimit = DefaultRateLimit
	case c.RateLimit < 0 || math.IsInf(c.RateLimit, 1):
		c.RateLimit = -1
	}
	switch {
	case c.RateBurst < 0:
		return bad("rate burst %d is negative", c.RateBurst)
	case c.RateBurst == 0 && c.RateLimit > 0:
		c.RateBurst = max(DefaultRateBurst, int(math.Min(2*c.RateLimit, math.MaxInt32)))
	}

	if c.Software == "" {
		c.Software = DefaultSoftware
	}
	if len(c.Software) > maxSoftwareBytes {
		return bad("software is %d bytes long, more than %d", len(c.Software), maxSoftwareBytes)
	}
	switch {
	case c.TCPIdleTimeout < 0:
		return bad("TCP idle timeout %v is negative", c.TCPIdleTimeout)
	case c.TCPIdleTimeout == 0:
		c.TCPIdleTimeout = DefaultTCPIdleTimeout
	}
	switch {
	case c.MaxTCPConns < 0:
		return bad("max TCP connections %d is negative", c.MaxTCPConns)
	case c.MaxTCPConns == 0:
		c.MaxTCPConns = DefaultMaxTCPConns
	}
	return c, nil
}
