// Bounding the permissions of one allocation: pion keeps every permission
// a client asks for (one per peer address, for five minutes after its last
// refresh) with no limit, so one client could make the server hold and
// scan an unbounded table.

package turnserver

import (
	"net"
	"net/netip"
	"sync"
)

// permissionLedger tracks the peer addresses each client's allocation
// holds permissions for, and refuses new ones over its limit.
type permissionLedger struct {
	max int // no limit when < 1

	mu    sync.Mutex
	peers map[string]map[netip.Addr]struct{} // by the client's address (addrKey)
}

func newPermissionLedger(maxPerAllocation int) *permissionLedger {
	return &permissionLedger{max: maxPerAllocation, peers: map[string]map[netip.Addr]struct{}{}}
}

// allows tells whether client's allocation may have a permission for
// peer: it holds one already, or has room for another. The permission is
// noted when pion creates it (created), so a request that makes none
// (an RFC 6062 Connect, a refused ChannelBind) takes no room. pion
// handles one allocation's requests one at a time, so nothing comes
// between the check and the creation.
func (l *permissionLedger) allows(client net.Addr, peer netip.Addr) bool {
	if l.max < 1 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	set := l.peers[addrKey(client)]
	_, held := set[peer]
	return held || len(set) < l.max
}

// created notes a permission pion installed.
func (l *permissionLedger) created(client net.Addr, peer netip.Addr) {
	if l.max < 1 {
		return
	}
	key := addrKey(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	set := l.peers[key]
	if set == nil {
		set = map[netip.Addr]struct{}{}
		l.peers[key] = set
	}
	set[peer] = struct{}{}
}

// expired forgets a permission pion removed (it was not refreshed).
func (l *permissionLedger) expired(client net.Addr, peer netip.Addr) {
	key := addrKey(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	if set := l.peers[key]; set != nil {
		delete(set, peer)
		if len(set) == 0 {
			delete(l.peers, key)
		}
	}
}

// released forgets every permission of client's allocation.
func (l *permissionLedger) released(client net.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.peers, addrKey(client))
}

// held is the number of permissions client's allocation holds.
func (l *permissionLedger) held(client net.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.peers[addrKey(client)])
}
