package stunprobe

import (
	"context"
	"net/netip"
	"testing"

	"github.com/rtckit/rtckit/internal/testenv"
	"github.com/rtckit/rtckit/stunserver"
)

// BenchmarkProbeLoopback measures one full classification (binding, RFC 5780
// mapping and filtering tests, TCP binding) against an in-process RFC 5780
// server on loopback, where every reply arrives: the cost of the probe
// itself, without waits for filtered replies.
func BenchmarkProbeLoopback(b *testing.B) {
	srv, err := stunserver.Listen(stunserver.Config{
		PrimaryIP: netip.MustParseAddr("127.0.0.1"), AlternateIP: netip.MustParseAddr("127.0.0.2"),
		EnableChangeRequest: true, TCP: true, RateLimit: -1,
	})
	if err != nil {
		b.Fatal(err)
	}
	testenv.Serve(b, srv.Serve)
	opts := loopbackOptions(srv.Addrs().Primary)
	opts.TCP = true
	b.ReportAllocs()
	for b.Loop() {
		r, err := Probe(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		if r.Outcome != OutcomeOK {
			b.Fatalf("outcome %s", r.Outcome)
		}
	}
}
