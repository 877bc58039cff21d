package e2e

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/rtckit/rtckit/internal/coturn"
	"github.com/rtckit/rtckit/internal/testenv"
)

var loopbackIPs = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}

// startLoopbackCoturn runs coturn as an RFC 5780 server on 127.0.0.1 and 127.0.0.2.
func startLoopbackCoturn(t *testing.T) netip.AddrPort {
	t.Helper()
	testenv.RequireProgram(t, "turnserver")
	srv, err := coturn.StartOnFreePorts(context.Background(), coturn.Config{
		ListenIPs: loopbackIPs, Users: []string{"u:p"}, AllowLoopbackPeers: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv.Addr()
}

// TestCoturnAndStunServeAgreeOnLoopback probes coturn and `rtckit stun
// serve` configured alike and expects the same classification.
func TestCoturnAndStunServeAgreeOnLoopback(t *testing.T) {
	coturnAddr := startLoopbackCoturn(t)
	var ev struct {
		Primary netip.AddrPort `json:"primary"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	startJSONChild(t, rtckit(ctx, "--json", "stun", "serve", "--listen", "127.0.0.1", "--alt-listen", "127.0.0.2",
		"--port", "0", "--alt-port", "0", "--tcp"), &ev)

	results := map[string]probeResult{}
	for name, addr := range map[string]netip.AddrPort{"coturn": coturnAddr, "stun serve": ev.Primary} {
		res := runProbe(t, rtckit(ctx, "--json", "stun", "probe", "-4", "--hairpin", "-s", "stun:"+addr.String()))
		if res.code != 0 {
			t.Errorf("%s: exit %d: %s", name, res.code, res.stderr)
		}
		s := res.report.Servers[0]
		if s.RFC5780 == nil || !*s.RFC5780 {
			t.Errorf("%s: RFC 5780 support not detected", name)
		}
		tcpOK := false
		for _, b := range s.Bindings {
			tcpOK = tcpOK || (b.Transport == "tcp" && b.Status == "ok")
		}
		if !tcpOK {
			t.Errorf("%s: no TCP binding: %+v", name, s.Bindings)
		}
		results[name] = res
	}
	want := "outcome=ok mapping=endpoint-independent filtering=endpoint-independent classic=open internet (no NAT)"
	for name, res := range results {
		if got := summary(res.report); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}
