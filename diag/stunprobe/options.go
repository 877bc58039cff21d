package stunprobe

import (
	"log/slog"
	"time"

	"github.com/pion/transport/v5"
)

// Timing defaults. The probe is fast because every test runs at once and
// retransmits on a short schedule; the waits below bound how long it listens
// for replies that a NAT or firewall may legitimately swallow.
const (
	// DefaultTimeout bounds a whole probe when the context has no deadline.
	DefaultTimeout = 3 * time.Second
	// DefaultRTO is the first retransmission timeout of a request; it
	// doubles after each retransmission up to MaxRTO.
	DefaultRTO = 100 * time.Millisecond
	// MaxRTO caps the retransmission timeout.
	MaxRTO = 800 * time.Millisecond
	// DefaultTransactionTimeout bounds a request that a live server is
	// expected to answer (binding to a primary or alternate address).
	DefaultTransactionTimeout = 1500 * time.Millisecond
	// DefaultFilterWait is the least time the probe waits for replies that
	// filtering may drop (CHANGE-REQUEST, hairpin), counted from the moment
	// the server proved alive.
	DefaultFilterWait = 500 * time.Millisecond
	// filterWaitRTTs scales the filter wait with the measured round trip
	// time on slow paths.
	filterWaitRTTs = 10
	// DefaultLifetimeMax is the longest binding lifetime searched by the
	// lifetime test.
	DefaultLifetimeMax = 120 * time.Second
	// DefaultTCPTimeout bounds a TCP (or TLS) connection and its binding.
	DefaultTCPTimeout = 2 * time.Second
)

// DefaultServers are the public STUN servers probed when none is given.
// stun.stunprotocol.org supports RFC 5780 (OTHER-ADDRESS and CHANGE-REQUEST);
// the others are plain servers used for the multi-server mapping comparison.
var DefaultServers = []string{
	"stun:stun.l.google.com:19302",
	"stun:stun.cloudflare.com:3478",
	"stun:stun.stunprotocol.org:3478",
}

// Server is one STUN server to probe.
type Server struct {
	// URI is the server as the user named it, used in reports.
	URI string
	// Host is a host name or IP literal (no brackets).
	Host string
	// Port is the server's port.
	Port int
	// TLS selects STUN over TLS (stuns:) for the TCP test; UDP is not
	// probed for such a server.
	TLS bool
}

// Options configures a probe. The zero value of every optional field works.
type Options struct {
	// Servers to probe; at least one.
	Servers []Server
	// UDP and TCP select the transports to test.
	UDP, TCP bool
	// IPv4 and IPv6 select the address families to test. A family without
	// a route is a result, not an error.
	IPv4, IPv6 bool
	// Hairpin enables the hairpinning test.
	Hairpin bool
	// Lifetime enables the binding lifetime search, up to LifetimeMax.
	Lifetime bool
	// LifetimeMax is the longest lifetime searched (DefaultLifetimeMax when zero).
	LifetimeMax time.Duration
	// RTO is the first retransmission timeout (DefaultRTO when zero).
	RTO time.Duration
	// TransactionTimeout bounds requests a live server must answer
	// (DefaultTransactionTimeout when zero).
	TransactionTimeout time.Duration
	// FilterWait is the least wait for replies that filtering may drop
	// (DefaultFilterWait when zero).
	FilterWait time.Duration
	// Net creates sockets; nil means the host's network.
	Net transport.Net
	// Logger receives progress at debug level; nil discards it.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

func (o *Options) rto() time.Duration { return orDefault(o.RTO, DefaultRTO) }

func (o *Options) transactionTimeout() time.Duration {
	return orDefault(o.TransactionTimeout, DefaultTransactionTimeout)
}

func (o *Options) filterWait(rtt time.Duration) time.Duration {
	w := orDefault(o.FilterWait, DefaultFilterWait)
	if scaled := rtt * filterWaitRTTs; scaled > w {
		w = scaled
	}
	return w
}

func (o *Options) lifetimeMax() time.Duration { return orDefault(o.LifetimeMax, DefaultLifetimeMax) }

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func orDefault(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}
