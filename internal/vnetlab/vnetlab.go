// Package vnetlab builds small virtual networks with pion's vnet for fast,
// root-free tests: a WAN segment (203.0.113.0/24, TEST-NET-3) with hosts on
// it, and NAT routers with hosts behind them.
package vnetlab

import (
	"testing"

	"github.com/pion/logging"
	"github.com/pion/transport/v5/vnet"
)

// WANCIDR is the virtual WAN segment.
const WANCIDR = "203.0.113.0/24"

// Lab is a virtual WAN. Add hosts and NATs, then Start it; it stops when the
// test ends.
type Lab struct {
	t   testing.TB
	wan *vnet.Router
	lf  *logging.DefaultLoggerFactory
}

// New creates the WAN router; vnet logs only errors.
func New(t testing.TB) *Lab {
	t.Helper()
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: WANCIDR, LoggerFactory: lf})
	if err != nil {
		t.Fatal(err)
	}
	return &Lab{t: t, wan: wan, lf: lf}
}

// Host adds a host with the given static IPs on the WAN.
func (l *Lab) Host(ips ...string) *vnet.Net {
	l.t.Helper()
	return l.addNet(l.wan, ips)
}

// BehindNAT adds a NAT router whose public address is public, with a LAN
// 10.0.0.0/24, and returns a host on that LAN (at lanIPs, or an address the
// router picks when none is given).
func (l *Lab) BehindNAT(nat vnet.NATType, public string, lanIPs ...string) *vnet.Net {
	l.t.Helper()
	lan, err := vnet.NewRouter(&vnet.RouterConfig{
		CIDR: "10.0.0.0/24", StaticIPs: []string{public}, NATType: &nat, LoggerFactory: l.lf,
	})
	if err != nil {
		l.t.Fatal(err)
	}
	if err := l.wan.AddRouter(lan); err != nil {
		l.t.Fatal(err)
	}
	return l.addNet(lan, lanIPs)
}

func (l *Lab) addNet(r *vnet.Router, ips []string) *vnet.Net {
	n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: ips})
	if err != nil {
		l.t.Fatal(err)
	}
	if err := r.AddNet(n); err != nil {
		l.t.Fatal(err)
	}
	return n
}

// Start starts the routers and stops them when the test ends.
func (l *Lab) Start() {
	l.t.Helper()
	if err := l.wan.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		if err := l.wan.Stop(); err != nil {
			l.t.Errorf("stopping the virtual WAN: %v", err)
		}
	})
}

// AddFilter adds a filter for every packet crossing the WAN: a packet for
// which keep returns false is dropped.
func (l *Lab) AddFilter(keep vnet.ChunkFilter) { l.wan.AddChunkFilter(keep) }
