// Package netaddr holds the small address helpers that rtckit's servers and
// probes share.
package netaddr

import (
	"fmt"
	"math"
	"net"
	"net/netip"
)

// AddrPortOf converts a UDP or TCP net.Addr (or any address whose String is
// host:port) to a netip.AddrPort with any IPv4-mapped IPv6 address unmapped.
// It reports false when a is nil or not an IP address and port.
func AddrPortOf(a net.Addr) (netip.AddrPort, bool) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		if a == nil {
			return ap, false
		}
		ap = a.AddrPort()
	case *net.TCPAddr:
		if a == nil {
			return ap, false
		}
		ap = a.AddrPort()
	case nil:
		return ap, false
	default:
		var err error
		if ap, err = netip.ParseAddrPort(a.String()); err != nil {
			return ap, false
		}
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return ap, ap.IsValid()
}

// CheckServerIP rejects addresses a server cannot answer from: the
// wildcard, multicast and broadcast. service names the protocol in messages.
func CheckServerIP(ip netip.Addr, service string) error {
	switch {
	case ip.IsUnspecified():
		return fmt.Errorf("a concrete address is needed, not the wildcard")
	case ip.IsMulticast():
		return fmt.Errorf("multicast addresses cannot serve %s", service)
	case ip.Is4() && ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("the broadcast address cannot serve %s", service)
	}
	return nil
}

// CheckPort rejects ports outside 0-65535 (0 means "pick a free one").
func CheckPort(p int) error {
	if p < 0 || p > math.MaxUint16 {
		return fmt.Errorf("out of range 0-65535")
	}
	return nil
}

// ipv6SourceBits is the part of an IPv6 address that counts as one source:
// a /64 usually belongs to one host or one subscriber.
const ipv6SourceBits = 64

// SourceKey maps a client address to the source that limits count it
// under: the address itself for IPv4 (and IPv4-mapped IPv6), its /64 for
// IPv6, without a zone.
func SourceKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		if p, err := ip.Prefix(ipv6SourceBits); err == nil {
			return p.Addr()
		}
	}
	return ip
}
