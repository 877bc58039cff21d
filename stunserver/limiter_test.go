package stunserver

import (
	"net/netip"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock for the limiter.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLimiterBucket(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	l := newLimiter(2, 3, 100, clk.now)
	a := netip.MustParseAddr("198.51.100.1")
	b := netip.MustParseAddr("198.51.100.2")

	for i := range 3 {
		if !l.allow(a) {
			t.Fatalf("request %d within the burst was refused", i)
		}
	}
	if l.allow(a) {
		t.Fatal("request beyond the burst was allowed")
	}
	if !l.allow(b) {
		t.Fatal("another source was limited by the first one's bucket")
	}
	clk.advance(500 * time.Millisecond) // one token at 2/s
	if !l.allow(a) {
		t.Fatal("refilled token was refused")
	}
	if l.allow(a) {
		t.Fatal("only one token should have refilled")
	}
}

func TestLimiterKey(t *testing.T) {
	// Two addresses of one /64 share a bucket.
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	l := newLimiter(1, 1, 100, clk.now)
	if !l.allow(netip.MustParseAddr("2001:db8::1")) {
		t.Fatal("first request refused")
	}
	if l.allow(netip.MustParseAddr("2001:db8::2")) {
		t.Fatal("a second address of the same /64 got its own bucket")
	}
	if !l.allow(netip.MustParseAddr("2001:db8:0:1::1")) {
		t.Fatal("another /64 was limited")
	}
}

func TestLimiterTableIsBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	const size = 4
	l := newLimiter(10, 10, size, clk.now) // an idle entry is forgotten after 1s
	ip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}) }

	// A flood of distinct sources never grows the table beyond its size.
	for i := range 1000 {
		if !l.allow(ip(i)) {
			t.Fatalf("first request of source %d refused", i)
		}
		if n := l.size(); n > size {
			t.Fatalf("table holds %d entries, more than %d", n, size)
		}
	}

	// Idle entries are swept first: after the sweep interval, the busy
	// source keeps its (empty) bucket while idle ones make room.
	clk.advance(2 * time.Second)
	busy := netip.MustParseAddr("192.0.2.99")
	for range 10 {
		l.allow(busy)
	}
	if l.allow(busy) {
		t.Fatal("busy source not limited")
	}
	for i := range size - 1 {
		l.allow(ip(5000 + i))
	}
	if l.allow(busy) {
		t.Fatal("busy source was evicted while idle entries remained")
	}
}
