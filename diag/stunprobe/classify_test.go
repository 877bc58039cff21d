package stunprobe

import (
	"net/netip"
	"strings"
	"testing"
)

var (
	srvA1P1 = netip.MustParseAddrPort("203.0.113.10:3478")
	srvA2P1 = netip.MustParseAddrPort("203.0.113.11:3478")
	srvA2P2 = netip.MustParseAddrPort("203.0.113.11:3479")
	srvA1P2 = netip.MustParseAddrPort("203.0.113.10:3479")
	mapped1 = netip.MustParseAddrPort("198.51.100.1:40000")
	mapped2 = netip.MustParseAddrPort("198.51.100.1:40001")
	mapped3 = netip.MustParseAddrPort("198.51.100.1:40002")
)

func reply(to, from, mapped netip.AddrPort) observation {
	return observation{to: to, from: from, mapped: mapped, outcome: OutcomeReply}
}

func silent(to netip.AddrPort) observation {
	return observation{to: to, outcome: OutcomeNoReply}
}

func TestClassifyMapping(t *testing.T) {
	t1 := reply(srvA1P1, srvA1P1, mapped1)
	t1.other = srvA2P2
	noOther := reply(srvA1P1, srvA1P1, mapped1)
	sameIPOther := t1
	sameIPOther.other = srvA1P2
	tests := []struct {
		name       string
		t1, t2, t3 observation
		want       Behavior
		reason     string
	}{
		{"EIM", t1, reply(srvA2P1, srvA2P1, mapped1), reply(srvA2P2, srvA2P2, mapped1), EndpointIndependent, "same mapping"},
		{"ADM", t1, reply(srvA2P1, srvA2P1, mapped2), reply(srvA2P2, srvA2P2, mapped2), AddressDependent, "not with the port"},
		{"APDM", t1, reply(srvA2P1, srvA2P1, mapped2), reply(srvA2P2, srvA2P2, mapped3), AddressPortDependent, "and with the port"},
		{"no test I reply", silent(srvA1P1), observation{}, observation{}, Inconclusive, "did not answer binding test I"},
		{"no OTHER-ADDRESS", noOther, observation{}, observation{}, Inconclusive, "no OTHER-ADDRESS"},
		{"OTHER-ADDRESS on same IP", sameIPOther, observation{}, observation{}, Inconclusive, "server's own IP"},
		{"alternate silent", t1, silent(srvA2P1), observation{}, Inconclusive, "did not answer test II"},
		{"alternate port silent", t1, reply(srvA2P1, srvA2P1, mapped2), silent(srvA2P2), Inconclusive, "did not answer test III"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classifyMapping(tt.t1, tt.t2, tt.t3)
			if got.Behavior != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("classifyMapping = %s (%s), want %s (%q)", got.Behavior, got.Reason, tt.want, tt.reason)
			}
		})
	}
}

func TestClassifyFiltering(t *testing.T) {
	expect := func(o observation, e netip.AddrPort) observation {
		o.expect = e
		return checkSource(o)
	}
	f2ok := expect(reply(srvA1P1, srvA2P2, mapped1), srvA2P2)
	f3ok := expect(reply(srvA1P1, srvA1P2, mapped1), srvA1P2)
	f2none, f3none := silent(srvA1P1), silent(srvA1P1)
	// A server that ignores CHANGE-REQUEST answers from its primary address:
	// such a reply must never count as "open".
	f2ignored := expect(reply(srvA1P1, srvA1P1, mapped1), srvA2P2)
	f3ignored := expect(reply(srvA1P1, srvA1P1, mapped1), srvA1P2)
	// The right packet source but a RESPONSE-ORIGIN that says otherwise.
	f2origin := reply(srvA1P1, srvA2P2, mapped1)
	f2origin.origin = srvA1P1
	f2origin = expect(f2origin, srvA2P2)
	rejected := observation{outcome: OutcomeRejectedReq, errCode: 420}

	tests := []struct {
		name   string
		f2, f3 observation
		alive  bool
		want   Behavior
		reason string
	}{
		{"EIF", f2ok, f3ok, true, EndpointIndependent, "never contacted"},
		{"ADF", f2none, f3ok, true, AddressDependent, "another port"},
		{"APDF", f2none, f3none, true, AddressPortDependent, "only replies from the contacted"},
		{"APDF needs a live alternate", f2none, f3none, false, Inconclusive, "cannot be told"},
		{"ignored CHANGE-REQUEST (both)", f2ignored, f3ignored, true, Inconclusive, "did not honour CHANGE-REQUEST"},
		{"ignored change port only", f2none, f3ignored, true, Inconclusive, "did not honour CHANGE-REQUEST"},
		{"lying RESPONSE-ORIGIN", f2origin, f3ok, true, Inconclusive, "RESPONSE-ORIGIN"},
		{"420", rejected, rejected, true, Inconclusive, "rejected CHANGE-REQUEST (error 420)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classifyFiltering(tt.f2, tt.f3, tt.alive)
			if got.Behavior != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("classifyFiltering = %s (%s), want %s (%q)", got.Behavior, got.Reason, tt.want, tt.reason)
			}
		})
	}
}

func TestCompareDestinations(t *testing.T) {
	s1 := netip.MustParseAddrPort("192.0.2.1:3478")
	s2 := netip.MustParseAddrPort("192.0.2.2:3478")
	s1p2 := netip.MustParseAddrPort("192.0.2.1:3479")
	tests := []struct {
		name   string
		obs    []observation
		varies *bool
		want   Behavior
	}{
		{"one server", []observation{reply(s1, s1, mapped1)}, nil, Inconclusive},
		{"same mapping, two IPs", []observation{reply(s1, s1, mapped1), reply(s2, s2, mapped1)}, ptr(false), EndpointIndependent},
		{"different mapping, two IPs", []observation{reply(s1, s1, mapped1), reply(s2, s2, mapped2)}, ptr(true), EndpointDependent},
		{"different mapping, same IP other port", []observation{reply(s1, s1, mapped1), reply(s1p2, s1p2, mapped2)}, ptr(true), AddressPortDependent},
		{"address dependent", []observation{reply(s1, s1, mapped1), reply(s1p2, s1p2, mapped1), reply(s2, s2, mapped2)}, ptr(true), AddressDependent},
		{"same port only", []observation{reply(s1, s1, mapped1), reply(s1p2, s1p2, mapped1)}, ptr(false), Inconclusive},
		{"silent server ignored", []observation{reply(s1, s1, mapped1), silent(s2)}, nil, Inconclusive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			varies, c := compareDestinations(tt.obs)
			if (varies == nil) != (tt.varies == nil) || (varies != nil && *varies != *tt.varies) {
				t.Errorf("varies = %v, want %v", fmtBool(varies), fmtBool(tt.varies))
			}
			if c.Behavior != tt.want {
				t.Errorf("behaviour = %s (%s), want %s", c.Behavior, c.Reason, tt.want)
			}
		})
	}
}

func fmtBool(b *bool) string {
	if b == nil {
		return "nil"
	}
	if *b {
		return "true"
	}
	return "false"
}

func TestMergeMappingConflicts(t *testing.T) {
	eim := Classification{Behavior: EndpointIndependent, Method: "rfc5780"}
	multiVaries := Classification{Behavior: EndpointDependent, Method: "multi-server", Reason: "changed"}
	got, conflicts := mergeMapping(eim, multiVaries, ptr(true))
	if got.Behavior != EndpointIndependent || len(conflicts) != 1 {
		t.Errorf("got %v with conflicts %q, want RFC 5780 result and one conflict", got, conflicts)
	}
	incon := Classification{Behavior: Inconclusive, Method: "rfc5780", Reason: "no OTHER-ADDRESS"}
	got, conflicts = mergeMapping(incon, multiVaries, ptr(true))
	if got.Behavior != EndpointDependent || len(conflicts) != 0 || !strings.Contains(got.Reason, "no OTHER-ADDRESS") {
		t.Errorf("got %v with conflicts %q, want the multi-server result", got, conflicts)
	}
}

func TestVerdict(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	tests := []struct {
		udp        bool
		nat        *bool
		m, f       Behavior
		classic    string
		conclusive bool
	}{
		{false, nil, NotTested, NotTested, "UDP blocked", true},
		{true, no, EndpointIndependent, EndpointIndependent, "open internet (no NAT)", true},
		{true, no, EndpointIndependent, AddressPortDependent, "no NAT, stateful firewall", true},
		{true, no, Inconclusive, Inconclusive, "no NAT (filtering unknown)", false},
		{true, yes, EndpointIndependent, EndpointIndependent, "full cone", true},
		{true, yes, EndpointIndependent, AddressDependent, "restricted cone", true},
		{true, yes, EndpointIndependent, AddressPortDependent, "port-restricted cone", true},
		{true, yes, AddressPortDependent, AddressPortDependent, "symmetric", true},
		{true, yes, AddressDependent, Inconclusive, "symmetric", true},
		{true, yes, EndpointDependent, Inconclusive, "symmetric", true},
		{true, yes, EndpointIndependent, Inconclusive, "cone NAT (filtering unknown)", false},
		{true, yes, Inconclusive, Inconclusive, "unknown", false},
	}
	for _, tt := range tests {
		v := verdict(tt.udp, tt.nat, tt.m, tt.f)
		if v.Classic != tt.classic || v.conclusive() != tt.conclusive || v.WebRTC == "" {
			t.Errorf("verdict(%v, %s, %s) = %+v, want %q conclusive=%v", tt.udp, tt.m, tt.f, v, tt.classic, tt.conclusive)
		}
	}
}
