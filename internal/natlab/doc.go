// Package natlab builds NAT labs out of Linux network namespaces, so tests
// can run real programs (rtckit itself, coturn, browsers) behind real kernel
// NATs, where a simulated network cannot show port preservation,
// conntrack timing or the behaviour of real tools.
//
// A lab has one "internet" namespace and one or more sites. The internet
// namespace holds a bridge, the servers' two addresses (for an RFC 5780 STUN
// server) and the gateway address the routers use. A site is a router
// namespace, whose WAN side is a port of that bridge and which translates
// with nftables, and a client namespace behind it:
//
//	internet  br0: 203.0.113.1/24 (gateway), 203.0.113.10 and .11 (servers)
//	          siteN: bridge port, veth peer of router N's wan
//	router N  wan: 203.0.113.(100+N)/24, default via 203.0.113.1
//	          lan: 10.99.N.1/24, ip_forward on, NAT rules per NATKind
//	client N  eth0: 10.99.N.2/24, default via 10.99.N.1
//
// Every address lies in a documentation range (TEST-NET-3) or in private
// space and exists only inside the lab's namespaces: the lab creates nothing
// in the host's own namespace, so labs of parallel test binaries do not
// collide. Namespace names start with the lab's ID, "rtk<pid>x<random>",
// which lets Sweep remove what a crashed run left behind.
//
// Programs run in a namespace through Lab.Command (short commands) or
// Lab.Start (servers, killed by Close). Go code under test runs in-process:
// Lab.ListenPacket, Lab.Listen and Lab.Dial create sockets inside a
// namespace, which the caller then uses from any goroutine. StartCoturn runs
// coturn as an RFC 5780 STUN and TURN server, and Site.NatDiscovery records
// coturn's own verdict on a site's NAT.
//
// Limits: IPv4 only; routers do not hairpin (a client cannot reach its own
// router's public address); one client per site. Delay and jitter need the
// kernel's netem, which some kernels lack (ErrNetemUnavailable); loss and
// rate limits work everywhere.
//
// Building a lab needs root and the ip, nft, conntrack and tc tools; Available
// reports what is missing, and NewForTest turns that into a skip (or a
// failure under CI).
package natlab
