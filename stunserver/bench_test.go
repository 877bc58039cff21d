package stunserver

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/rtckit/rtckit/internal/testenv"
)

// BenchmarkHandleBinding measures the pure request handler: decode a
// Binding request, build the success response with every RFC 5780
// attribute.
func BenchmarkHandleBinding(b *testing.B) {
	h := newHandler(Addrs{
		Primary:      netip.MustParseAddrPort("203.0.113.10:3478"),
		AltPort:      netip.MustParseAddrPort("203.0.113.10:3479"),
		AltIP:        netip.MustParseAddrPort("203.0.113.11:3478"),
		AltIPAltPort: netip.MustParseAddrPort("203.0.113.11:3479"),
	}, true, DefaultSoftware)
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		b.Fatal(err)
	}
	src := netip.MustParseAddrPort("198.51.100.1:40000")
	b.ReportAllocs()
	for b.Loop() {
		if r := h.handle(request{data: req.Raw, src: src, via: sockPrimary, proto: protoUDP}); r.verdict != verdictSuccess {
			b.Fatalf("verdict %d", r.verdict)
		}
	}
}

// BenchmarkServeUDPLoopback measures request/response round trips through
// the real server on loopback, one outstanding request at a time.
func BenchmarkServeUDPLoopback(b *testing.B) {
	srv, err := Listen(Config{PrimaryIP: netip.MustParseAddr("127.0.0.1"), RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	testenv.Serve(b, srv.Serve)
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(srv.Addrs().Primary))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1500)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(req.Raw); err != nil {
			b.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := conn.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}
