package turnserver

import "sync/atomic"

// Stats is a snapshot of a Server's counters. Every field but the *Open and
// *Active gauges only grows; the names and json tags are stable so they can
// be exported as metrics (a Prometheus exporter maps each to a counter or
// gauge of the same name).
type Stats struct {
	// AllocationsActive is the number of allocations held at the time of
	// the snapshot; it is zero once the server has closed.
	AllocationsActive int `json:"allocations_active"`
	// Allocations counts allocations created.
	Allocations uint64 `json:"allocations"`
	// AuthFailures counts requests refused for their credentials: unknown
	// users, wrong passwords, expired or malformed TURN REST credentials and
	// wrong realms. The 401 challenge of a request that carries no
	// credentials yet is part of normal authentication and is not counted.
	AuthFailures uint64 `json:"auth_failures"`
	// QuotaRejections counts Allocate requests refused with 486 because the
	// user held Config.QuotaPerUser allocations already.
	QuotaRejections uint64 `json:"quota_rejections"`
	// PeerDenials counts CreatePermission, ChannelBind and Connect requests
	// refused for a peer address the server does not relay to.
	PeerDenials uint64 `json:"peer_denials"`
	// PermissionRefusals counts CreatePermission, ChannelBind and Connect
	// requests for a new peer address refused because the allocation held
	// Config.MaxPermissions already.
	PermissionRefusals uint64 `json:"permission_refusals"`
	// Permissions counts permissions installed (refreshes excluded).
	Permissions uint64 `json:"permissions"`
	// Channels counts channels bound (refreshes excluded).
	Channels uint64 `json:"channels"`
	// PacketsToPeers counts UDP datagrams relayed from clients to peers.
	PacketsToPeers uint64 `json:"packets_to_peers"`
	// BytesToPeers counts their payload bytes, and the stream bytes of TCP
	// relays (RFC 6062).
	BytesToPeers uint64 `json:"bytes_to_peers"`
	// PacketsFromPeers counts the datagrams relay sockets received from
	// peers, before the permission check: datagrams from peers without a
	// permission are counted here and then dropped.
	PacketsFromPeers uint64 `json:"packets_from_peers"`
	// BytesFromPeers counts their payload bytes, and the stream bytes of
	// TCP relays.
	BytesFromPeers uint64 `json:"bytes_from_peers"`
	// TCPAccepted counts TCP and TLS connections accepted and served.
	TCPAccepted uint64 `json:"tcp_accepted"`
	// TCPRejected counts TCP and TLS connections closed at once because
	// Config.MaxTCPConns were already open.
	TCPRejected uint64 `json:"tcp_rejected"`
	// TCPOpen is the number of TCP and TLS connections open at the time of
	// the snapshot.
	TCPOpen int64 `json:"tcp_open"`
	// Errors counts socket errors that the server retried past.
	Errors uint64 `json:"errors"`
}

// counters is the live, atomically updated form of Stats; the active
// allocations live in the quota bookkeeping.
type counters struct {
	allocations, authFailures, quotaRejections, peerDenials, permissions, channels atomic.Uint64
	permissionRefusals                                                             atomic.Uint64
	packetsToPeers, bytesToPeers, packetsFromPeers, bytesFromPeers                 atomic.Uint64
	tcpAccepted, tcpRejected, errors                                               atomic.Uint64
	tcpOpen                                                                        atomic.Int64
}

func (c *counters) snapshot(active int) Stats {
	return Stats{
		AllocationsActive:  active,
		Allocations:        c.allocations.Load(),
		AuthFailures:       c.authFailures.Load(),
		QuotaRejections:    c.quotaRejections.Load(),
		PeerDenials:        c.peerDenials.Load(),
		PermissionRefusals: c.permissionRefusals.Load(),
		Permissions:        c.permissions.Load(),
		Channels:           c.channels.Load(),
		PacketsToPeers:     c.packetsToPeers.Load(),
		BytesToPeers:       c.bytesToPeers.Load(),
		PacketsFromPeers:   c.packetsFromPeers.Load(),
		BytesFromPeers:     c.bytesFromPeers.Load(),
		TCPAccepted:        c.tcpAccepted.Load(),
		TCPRejected:        c.tcpRejected.Load(),
		TCPOpen:            c.tcpOpen.Load(),
		Errors:             c.errors.Load(),
	}
}
