package netaddr

import (
	"net"
	"net/netip"
	"testing"
)

func TestAddrPortOf(t *testing.T) {
	tests := []struct {
		in   net.Addr
		want string
		ok   bool
	}{
		{&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 3478}, "192.0.2.1:3478", true},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 80}, "192.0.2.1:80", true},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 80}, "[2001:db8::1]:80", true},
		{(*net.UDPAddr)(nil), "", false},
		{nil, "", false},
		{&net.UnixAddr{Name: "/tmp/x", Net: "unix"}, "", false},
	}
	for _, tt := range tests {
		got, ok := AddrPortOf(tt.in)
		if ok != tt.ok || (ok && got.String() != tt.want) {
			t.Errorf("AddrPortOf(%v) = %v, %v; want %s, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestChecks(t *testing.T) {
	for _, ip := range []string{"0.0.0.0", "::", "224.0.0.1", "255.255.255.255"} {
		if CheckServerIP(netip.MustParseAddr(ip), "STUN") == nil {
			t.Errorf("CheckServerIP(%s) accepted", ip)
		}
	}
	if err := CheckServerIP(netip.MustParseAddr("127.0.0.1"), "STUN"); err != nil {
		t.Error(err)
	}
	for p, ok := range map[int]bool{-1: false, 0: true, 3478: true, 65535: true, 65536: false} {
		if (CheckPort(p) == nil) != ok {
			t.Errorf("CheckPort(%d) ok=%v", p, !ok)
		}
	}
}

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":               "192.0.2.7",
		"::ffff:192.0.2.7":        "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":    "2001:db8:1:2::",
		"fe80::1%eth0":            "fe80::",
		"2001:db8:1:2:ffff::ffff": "2001:db8:1:2::",
	} {
		if got := SourceKey(netip.MustParseAddr(in)); got != netip.MustParseAddr(want) {
			t.Errorf("SourceKey(%s) = %s, want %s", in, got, want)
		}
	}
}
