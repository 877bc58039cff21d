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

// admit reserves a permission for peer on client's allocation: true when
// it is held already or there is room for it.
func (l *permissionLedger) admit(client net.Addr, peer netip.Addr) bool {
	if l.max < 1 {
		return true
	}
	key := addrKey(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	set := l.peers[key]
	if _, held := set[peer]; held {
		return true
	}
	if len(set) >= l.max {
		return false
	}
	if set == nil {
		set = map[netip.Addr]struct{}{}
		l.peers[key] = set
	}
	set[peer] = struct{}{}
	return true
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
