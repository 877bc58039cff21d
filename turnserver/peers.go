package turnserver

import (
	"net"
	"net/netip"
)

// PeerClass is the kind of address a client asks the server to relay to;
// the server refuses some kinds so that it is not an open door into its own
// host or network (the classic TURN open-relay hole).
type PeerClass int

const (
	// PeerPublic is a global unicast address; relaying to it is always
	// allowed.
	PeerPublic PeerClass = iota
	// PeerLoopback is 127.0.0.0/8 or ::1, allowed only with
	// Config.AllowLoopbackPeers.
	PeerLoopback
	// PeerPrivate is a private or shared address (RFC 1918, RFC 6598
	// carrier-grade NAT, RFC 2544 benchmarking, RFC 4193 unique local,
	// deprecated site-local), allowed only with Config.AllowPrivatePeers.
	PeerPrivate
	// PeerForbidden is never relayed to: the unspecified address and
	// 0.0.0.0/8 (which Linux delivers to the host itself), multicast,
	// 240.0.0.0/4 including broadcast, IPv4-compatible IPv6, and link-local
	// addresses, which include cloud metadata services (169.254.169.254)
	// and need a zone that TURN cannot carry.
	PeerForbidden
)

// String names the class as the logs and docs do.
func (c PeerClass) String() string {
	switch c {
	case PeerPublic:
		return "public"
	case PeerLoopback:
		return "loopback"
	case PeerPrivate:
		return "private"
	case PeerForbidden:
		return "forbidden"
	}
	return "unknown"
}

var (
	// sharedNAT is RFC 6598's carrier-grade NAT space.
	sharedNAT = netip.MustParsePrefix("100.64.0.0/10")
	// benchmarking is RFC 2544's, often used for lab networks.
	benchmarking = netip.MustParsePrefix("198.18.0.0/15")
	// thisNetwork is RFC 1122's "this host on this network".
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	// reserved4 is the former class E, with the limited broadcast address.
	reserved4 = netip.MustParsePrefix("240.0.0.0/4")
	// siteLocal is the deprecated IPv6 site-local space (RFC 3879).
	siteLocal = netip.MustParsePrefix("fec0::/10")
	// ipv4Compatible is the deprecated IPv4-compatible IPv6 space (RFC 4291).
	ipv4Compatible = netip.MustParsePrefix("::/96")
	// nat64 is the well-known NAT64 prefix (RFC 6052): a gateway delivers
	// it to the IPv4 address in its last 32 bits.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
)

// ClassifyPeer returns the class of a peer address. IPv4-mapped IPv6 and
// NAT64 (64:ff9b::/96) addresses are classified by the IPv4 address they
// carry, so neither form slips past the filter.
func ClassifyPeer(ip netip.Addr) PeerClass {
	if !ip.IsValid() {
		return PeerForbidden
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is6() && nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:16]))
	}
	switch {
	case ip.IsLoopback():
		return PeerLoopback
	case ip.IsUnspecified(), ip.IsMulticast(), ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(),
		ip.IsInterfaceLocalMulticast():
		return PeerForbidden
	case ip.Is4() && (thisNetwork.Contains(ip) || reserved4.Contains(ip)):
		return PeerForbidden
	case ip.Is6() && ipv4Compatible.Contains(ip):
		return PeerForbidden
	case ip.IsPrivate(), sharedNAT.Contains(ip), benchmarking.Contains(ip), siteLocal.Contains(ip):
		return PeerPrivate
	}
	return PeerPublic
}

// peerAllowed reports whether the configuration lets clients relay to a peer
// of class c.
func (c *Config) peerAllowed(class PeerClass) bool {
	switch class {
	case PeerPublic:
		return true
	case PeerLoopback:
		return c.AllowLoopbackPeers
	case PeerPrivate:
		return c.AllowPrivatePeers
	}
	return false
}

// permit is the pion PermissionHandler of every listener. pion consults it
// for CreatePermission, ChannelBind and (RFC 6062) Connect; Send
// indications and ChannelData need a permission it granted, and data from a
// peer is relayed only under such a permission. So refusing here closes
// every path to the peer. It refuses peers the configuration forbids, and
// a new peer address once the allocation holds MaxPermissions.
func (s *Server) permit(client net.Addr, peerIP net.IP) bool {
	ip, ok := netip.AddrFromSlice(peerIP)
	class := PeerForbidden
	if ok {
		class = ClassifyPeer(ip)
	}
	if !s.cfg.peerAllowed(class) {
		s.stats.peerDenials.Add(1)
		s.log.Info("refused a peer", "from", client, "peer", peerIP, "class", class)
		return false
	}
	if !s.perms.allows(client, ip.Unmap()) {
		s.stats.permissionRefusals.Add(1)
		s.log.Info("refused a permission: the allocation holds its maximum", "from", client, "peer", peerIP,
			"max", s.cfg.MaxPermissions)
		return false
	}
	return true
}
