package e2e

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/rtckit/rtckit/diag/icegather"
	"github.com/rtckit/rtckit/internal/natlab"
)

// labGather runs `rtckit --json ice gather` in a lab site's client namespace.
func labGather(t *testing.T, lab *natlab.Lab, site *natlab.Site, args ...string) gatherResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	return runGather(t, lab.Command(ctx, site.Client, rtckitBin, append([]string{"--json", "ice", "gather"}, args...)...))
}

func newCoturnLab(t *testing.T, kind natlab.NATKind) (*natlab.Lab, *natlab.Site) {
	t.Helper()
	lab := natlab.NewForTest(t, natlab.Config{Sites: []natlab.SiteConfig{{NAT: kind}}, Require: []string{natlab.TurnServer}})
	if _, err := natlab.StartCoturn(t.Context(), lab); err != nil {
		t.Fatal(err)
	}
	return lab, lab.Sites[0]
}

func labTURN(lab *natlab.Lab, transport string) string {
	return "turn:" + natlab.CoturnUser + ":" + natlab.CoturnPassword + "@" +
		netip.AddrPortFrom(lab.ServerIPs[0], natlab.CoturnPort).String() + "?transport=" + transport
}

// TestNATLabGatherBehindSymmetricNAT: the server-reflexive port differs per
// STUN server behind a symmetric NAT, and the relay still carries data.
func TestNATLabGatherBehindSymmetricNAT(t *testing.T) {
	lab, site := newCoturnLab(t, natlab.NATSymmetric)
	res := labGather(t, lab, site, "--network", "udp4",
		"--stun", "stun:"+netip.AddrPortFrom(lab.ServerIPs[0], natlab.CoturnPort).String(),
		"--stun", "stun:"+netip.AddrPortFrom(lab.ServerIPs[1], natlab.CoturnPort).String(),
		"--turn", labTURN(lab, "udp"), "--require", "srflx,relay", "--relay-check")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	ports := map[string]uint16{}
	for _, c := range res.report.Candidates {
		if c.Type == icegather.TypeSrflx && c.Address == site.WAN.String() {
			ports[c.Server] = c.Port
		}
	}
	s0 := "stun:" + netip.AddrPortFrom(lab.ServerIPs[0], natlab.CoturnPort).String()
	s1 := "stun:" + netip.AddrPortFrom(lab.ServerIPs[1], natlab.CoturnPort).String()
	if ports[s0] == 0 || ports[s1] == 0 || ports[s0] == ports[s1] {
		t.Errorf("srflx ports per server %v: want two different ports on %s", ports, site.WAN)
	}
	if len(res.report.RelayChecks) != 1 || !res.report.RelayChecks[0].Passed {
		t.Errorf("relay check %+v, want passed", res.report.RelayChecks)
	}
}

// TestNATLabGatherUDPBlocked: with UDP blocked the UDP relay fails with a
// timeout, the TCP relay works, and neither waits for the other.
func TestNATLabGatherUDPBlocked(t *testing.T) {
	lab, site := newCoturnLab(t, natlab.NATUDPBlocked)
	res := labGather(t, lab, site, "--turn", labTURN(lab, "udp"), "--turn", labTURN(lab, "tcp"), "--require", "relay", "--relay-check")
	var udp, tcp icegather.ServerResult
	for _, s := range res.report.Servers {
		switch s.Transport {
		case "udp":
			udp = s
		case "tcp":
			tcp = s
		}
	}
	if tcp.Status != icegather.StatusOK || tcp.FirstCandidateMS == nil {
		t.Fatalf("TCP relay %+v, want ok", tcp)
	}
	if udp.Status != icegather.StatusFailed || udp.ErrorKind != icegather.KindTimeout {
		t.Errorf("UDP relay %+v, want failed with a timeout", udp)
	}
	t.Logf("UDP blocked: TCP relay candidate after %.1f ms, UDP relay given up after %.0f ms", *tcp.FirstCandidateMS, udp.DoneMS)
	for _, c := range res.report.RelayChecks {
		if c.Server == tcp.URI && !c.Passed {
			t.Errorf("TCP relay check %+v, want passed", c)
		}
	}
}
