package e2e

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtckit/rtckit/diag/stunprobe"
	"github.com/rtckit/rtckit/internal/natlab"
)

// labServePort is where `rtckit stun serve` listens in a lab; coturn has
// natlab.CoturnPort and CoturnAltPort on the same addresses.
const labServePort = 3480

// natLabProbe is one NAT kind's lab with both RFC 5780 servers running.
type natLabProbe struct {
	lab  *natlab.Lab
	site *natlab.Site
}

func newNATLabProbe(t *testing.T, kind natlab.NATKind) natLabProbe {
	t.Helper()
	lab := natlab.NewForTest(t, natlab.Config{
		Sites:   []natlab.SiteConfig{{NAT: kind}},
		Require: []string{natlab.TurnServer, natlab.NatDiscoveryTool},
	})
	ctx := t.Context()
	if _, err := natlab.StartCoturn(ctx, lab); err != nil {
		t.Fatal(err)
	}
	serve, err := lab.Start(ctx, lab.Internet, rtckitBin, "--json", "stun", "serve", "--tcp",
		"--listen", lab.ServerIPs[0].String(), "--alt-listen", lab.ServerIPs[1].String(),
		"--port", strconv.Itoa(labServePort), "--alt-port", strconv.Itoa(labServePort+1), "--rate", "0")
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, serveReadyTimeout)
	defer cancel()
	if _, err := serve.WaitLine(waitCtx, func(l string) bool { return strings.Contains(l, `"event":"listening"`) }); err != nil {
		t.Fatal(err)
	}
	return natLabProbe{lab: lab, site: lab.Sites[0]}
}

// probe runs `rtckit --json stun probe` in the site's client namespace.
func (p natLabProbe) probe(t *testing.T, args ...string) probeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	full := append([]string{"--json", "stun", "probe", "-4"}, args...)
	return runProbe(t, p.lab.Command(ctx, p.site.Client, rtckitBin, full...))
}

func (p natLabProbe) server(port int) string {
	return "stun:" + netip.AddrPortFrom(p.lab.ServerIPs[0], uint16(port)).String()
}

// TestNATLabStunProbe classifies every NAT kind of the lab with `rtckit stun
// probe` against coturn and against `rtckit stun serve`, and records
// coturn's own turnutils_natdiscovery verdict beside it.
func TestNATLabStunProbe(t *testing.T) {
	for _, kind := range natlab.NATKinds() {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			p := newNATLabProbe(t, kind)
			want := kind.Behavior()

			coturnRes := p.probe(t, "-s", p.server(natlab.CoturnPort))
			serveRes := p.probe(t, "-s", p.server(labServePort))
			for name, res := range map[string]probeResult{"coturn": coturnRes, "stun serve": serveRes} {
				checkKind(t, name, kind, want, res)
			}
			if a, b := summary(coturnRes.report), summary(serveRes.report); a != b {
				t.Errorf("coturn and stun serve disagree:\n  coturn:     %s\n  stun serve: %s", a, b)
			}

			ctx, cancel := context.WithTimeout(t.Context(), natlab.NatDiscoveryTimeout)
			defer cancel()
			v, err := p.site.NatDiscovery(ctx, p.lab.ServerIPs[0])
			if err != nil {
				t.Fatalf("turnutils_natdiscovery: %v", err)
			}
			t.Logf("%s: rtckit %s in %.0f ms; turnutils_natdiscovery mapping=%s filtering=%s in %s",
				kind, summary(coturnRes.report), coturnRes.report.DurationMS, v.Mapping, v.Filtering, v.Took.Round(time.Millisecond))
			if want.UDP && (string(v.Mapping) != string(want.Mapping) || string(v.Filtering) != string(want.Filtering)) {
				t.Errorf("turnutils_natdiscovery says %s/%s, the lab was built as %s/%s", v.Mapping, v.Filtering, want.Mapping, want.Filtering)
			}
		})
	}
}

// checkKind compares one probe's report with the behaviour the lab was built for.
func checkKind(t *testing.T, name string, kind natlab.NATKind, want natlab.NATBehavior, res probeResult) {
	t.Helper()
	r := res.report
	if !want.UDP {
		if res.code != 3 || r.Outcome != stunprobe.OutcomeNoUDP {
			t.Errorf("%s: exit %d outcome %s, want 3 (no UDP); stderr %s", name, res.code, r.Outcome, res.stderr)
		}
		return
	}
	if res.code != 0 || len(r.Families) == 0 {
		t.Fatalf("%s: exit %d, report %+v; stderr %s", name, res.code, r, res.stderr)
	}
	f := r.Families[0]
	if string(f.Mapping.Behavior) != string(want.Mapping) {
		t.Errorf("%s: mapping %s (%s), want %s", name, f.Mapping.Behavior, f.Mapping.Reason, want.Mapping)
	}
	if string(f.Filtering.Behavior) != string(want.Filtering) {
		t.Errorf("%s: filtering %s (%s), want %s", name, f.Filtering.Behavior, f.Filtering.Reason, want.Filtering)
	}
	if f.BehindNAT == nil || *f.BehindNAT != want.NAT {
		t.Errorf("%s: behind NAT %v, want %v", name, f.BehindNAT, want.NAT)
	}
	if kind == natlab.NATSymmetric && f.Verdict.Classic != "symmetric" {
		t.Errorf("%s: verdict %q, want symmetric", name, f.Verdict.Classic)
	}
}

// TestNATLabMultiServerSymmetric checks that two plain servers reveal the
// symmetric NAT without RFC 5780, and that hairpinning is reported.
func TestNATLabMultiServerSymmetric(t *testing.T) {
	p := newNATLabProbe(t, natlab.NATSymmetric)
	second := "stun:" + netip.AddrPortFrom(p.lab.ServerIPs[1], natlab.CoturnPort).String()
	res := p.probe(t, "--transport", "udp", "--hairpin", "-s", p.server(natlab.CoturnPort), "-s", second)
	f := res.report.Families[0]
	if f.MappingVariesByDestination == nil || !*f.MappingVariesByDestination {
		t.Errorf("mapping varies by destination = %v, want true", f.MappingVariesByDestination)
	}
	if f.Hairpinning == nil {
		t.Errorf("hairpinning not reported: %+v", f.Tests)
	}
	if len(f.Conflicts) != 0 {
		t.Errorf("conflicts: %q", f.Conflicts)
	}
}

// TestNATLabNoIPv6RouteIsAResult probes a dual-stack server list from a lab
// client that has no IPv6 route: IPv6 is reported as "no route" and the
// IPv4 verdict decides the exit code.
func TestNATLabNoIPv6RouteIsAResult(t *testing.T) {
	p := newNATLabProbe(t, natlab.NATPortRestricted)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res := runProbe(t, p.lab.Command(ctx, p.site.Client, rtckitBin, "--json", "stun", "probe", "--transport", "udp",
		"-s", p.server(natlab.CoturnPort), "-s", "stun:[2001:db8::10]:3478"))
	if res.code != 0 {
		t.Fatalf("exit %d, want 0; stderr %s", res.code, res.stderr)
	}
	var v6 *stunprobe.FamilyReport
	for i, f := range res.report.Families {
		if f.Family == "ipv6" {
			v6 = &res.report.Families[i]
		}
	}
	if v6 == nil || v6.Status != stunprobe.StatusNoRoute {
		t.Fatalf("IPv6 family = %+v, want status no-route", v6)
	}
}
