package turnserver

import (
	"net"
	"net/netip"
	"testing"

	"github.com/pion/stun/v4"
)

// TestMaxPermissions: an allocation holds at most MaxPermissions peer
// addresses; a refresh of one it holds passes, another allocation has its
// own budget, and a released allocation leaves nothing behind.
func TestMaxPermissions(t *testing.T) {
	cfg := labConfig()
	cfg.MaxPermissions = 3
	s := startServer(t, cfg)
	peer := func(i int) *net.UDPAddr { return &net.UDPAddr{IP: net.IPv4(192, 0, 2, byte(i)), Port: 9} }

	c := newClient(t, s, overUDP, "alice", "wonderland")
	relay, err := c.allocate(t)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if err := c.CreatePermission(peer(i)); err != nil {
			t.Fatalf("permission %d: %v", i, err)
		}
	}
	if err := c.CreatePermission(peer(4)); turnCode(err) != stun.CodeForbidden {
		t.Errorf("a fourth peer: %v, want 403", err)
	}
	if err := c.CreatePermission(peer(2)); err != nil {
		t.Errorf("refreshing a held permission: %v", err)
	}
	other := newClient(t, s, overUDP, "alice", "wonderland")
	if _, err := other.allocate(t); err != nil {
		t.Fatal(err)
	}
	if err := other.CreatePermission(peer(4)); err != nil {
		t.Errorf("another allocation's first peer: %v", err)
	}
	if st := s.Stats(); st.PermissionRefusals != 1 || st.Permissions != 4 || st.PeerDenials != 0 {
		t.Errorf("stats %+v, want 1 permission refusal and 4 permissions", st)
	}

	client := c.conn.LocalAddr()
	if n := s.perms.held(client); n != 3 {
		t.Errorf("the ledger holds %d permissions for the client, want 3", n)
	}
	// Closing the relay deletes the allocation (a Refresh with lifetime 0);
	// the server handles the client's messages in order, so after a
	// Binding transaction the allocation is gone.
	if err := relay.Close(); err != nil {
		t.Fatal(err)
	}
	c.sync(t)
	if n := s.perms.held(client); n != 0 {
		t.Fatalf("the released allocation still holds %d permissions", n)
	}
}

func TestPermissionLedger(t *testing.T) {
	client := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	l := newPermissionLedger(1)
	if !l.allows(client, a) || !l.allows(client, b) {
		t.Fatal("an empty allocation must allow a permission")
	}
	// A request that made no permission (a Connect) takes no room.
	l.created(client, a)
	if !l.allows(client, a) || l.allows(client, b) {
		t.Fatal("one permission held: a refresh passes, a second peer must not")
	}
	l.expired(client, a)
	if !l.allows(client, b) {
		t.Error("after the first expired the second must pass")
	}
	l.created(client, b)
	l.released(client)
	if l.held(client) != 0 {
		t.Error("a released client keeps permissions")
	}
	unlimited := newPermissionLedger(-1)
	for i := range 100 {
		peer := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		if !unlimited.allows(client, peer) {
			t.Fatal("no limit refused a peer")
		}
		unlimited.created(client, peer)
	}
}
