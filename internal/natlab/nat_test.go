package natlab

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func testParams() natParams {
	return natParams{
		WANIf:  "wan",
		WAN:    netip.MustParseAddr("203.0.113.101"),
		LAN:    netip.MustParsePrefix("10.99.1.0/24"),
		Client: netip.MustParseAddr("10.99.1.2"),
		Seed:   0x726b0001,
	}
}

// TestNATRuleset checks the distinguishing rules of each kind's script; the
// lab tests check that the kernel accepts them and behaves as intended.
func TestNATRuleset(t *testing.T) {
	const out = `ip saddr 10.99.1.0/24 oifname "wan"`
	tests := []struct {
		kind    NATKind
		want    []string
		notWant []string
	}{
		{NATNone, nil, []string{"masquerade", "snat", "dnat", "chain"}},
		{"", []string{out + " masquerade\n", "ct state new drop"}, []string{"fully-random", "dnat", "udp_peers"}},
		{NATPortRestricted, []string{out + " masquerade\n"}, []string{"fully-random", "dnat"}},
		{NATSymmetric, []string{out + " masquerade fully-random"}, []string{"dnat"}},
		{NATFullCone, []string{"masquerade\n", `iifname "wan" ip daddr 203.0.113.101 meta l4proto udp dnat to 10.99.1.2`}, []string{"udp_peers"}},
		{NATRestrictedCone, []string{
			"dnat to 10.99.1.2",
			"timeout 120s",
			"update @udp_peers { ip daddr . udp sport }",
			"ip saddr . udp dport != @udp_peers drop",
		}, nil},
		{NATAddressDependent, []string{
			"snat to 203.0.113.101 : jhash ip saddr . ip daddr . udp sport mod 1024 seed 0x726b0001 map {",
			"0 : 49152,", "1023 : 50175\n",
			out + " masquerade\n",
		}, []string{"dnat"}},
		{NATUDPBlocked, []string{out + " masquerade\n", "meta l4proto udp drop"}, []string{"dnat"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			script, err := natRuleset(tt.kind, testParams())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(script, "table ip rtknat\ndelete table ip rtknat\n") {
				t.Errorf("script does not replace the table:\n%s", script)
			}
			for _, w := range tt.want {
				if !strings.Contains(script, w) {
					t.Errorf("script lacks %q:\n%s", w, script)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(script, w) {
					t.Errorf("script has %q:\n%s", w, script)
				}
			}
		})
	}
	if _, err := natRuleset("carrier-grade", testParams()); !errors.Is(err, ErrUnknownNAT) {
		t.Errorf("unknown kind: %v, want ErrUnknownNAT", err)
	}
}

func TestNATKindsBehavior(t *testing.T) {
	seen := map[NATBehavior]NATKind{}
	for _, k := range NATKinds() {
		if !k.Valid() {
			t.Errorf("%s not valid", k)
		}
		b := k.Behavior()
		if prev, dup := seen[b]; dup {
			t.Errorf("%s and %s look alike to an RFC 5780 client: %+v", prev, k, b)
		}
		seen[b] = k
	}
	if NATKind("").Behavior() != NATPortRestricted.Behavior() {
		t.Error("zero NATKind is not port-restricted")
	}
	if NATKind("x").Valid() {
		t.Error("unknown kind valid")
	}
}

func TestLossRuleset(t *testing.T) {
	tests := []struct {
		loss float64
		want string
	}{
		{0, ""},
		{0.00001, ""},
		{30, `iifname "wan" numgen random mod 1000000 < 300000 drop`},
		{0.5, `oifname "wan" numgen random mod 1000000 < 5000 drop`},
		{100, "iifname \"wan\" drop\n"},
	}
	for _, tt := range tests {
		script := lossRuleset("wan", tt.loss)
		if !strings.HasPrefix(script, "table ip rtkimpair\ndelete table ip rtkimpair\n") {
			t.Errorf("loss %v: script does not replace the table:\n%s", tt.loss, script)
		}
		if tt.want == "" {
			if strings.Contains(script, "chain") {
				t.Errorf("loss %v: script has rules:\n%s", tt.loss, script)
			}
		} else if !strings.Contains(script, tt.want) {
			t.Errorf("loss %v: script lacks %q:\n%s", tt.loss, tt.want, script)
		}
	}
}

func TestImpairmentQdisc(t *testing.T) {
	tests := []struct {
		imp  Impairment
		want string
	}{
		{Impairment{}, ""},
		{Impairment{Loss: 5}, ""},
		{Impairment{Delay: 40 * time.Millisecond}, "netem delay 40000us"},
		{Impairment{Delay: 40 * time.Millisecond, Jitter: 5 * time.Millisecond, Rate: 2_000_000}, "netem delay 40000us 5000us rate 2000000bit"},
		{Impairment{Jitter: time.Millisecond}, "netem delay 0us 1000us"},
		{Impairment{Rate: 1_000_000}, "tbf rate 1000000bit burst 3028 latency 100000us"},
		{Impairment{Rate: 100_000_000}, "tbf rate 100000000bit burst 250000 latency 100000us"},
	}
	for _, tt := range tests {
		if got := strings.Join(tt.imp.qdiscArgs(), " "); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.imp, got, tt.want)
		}
	}
	for _, bad := range []Impairment{{Loss: -1}, {Loss: 100.5}, {Delay: -time.Second}, {Jitter: -1}} {
		if bad.validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestParseID(t *testing.T) {
	tests := []struct {
		name string
		pid  int
		ok   bool
	}{
		{"rtk1234x0a1b2c-inet", 1234, true},
		{"rtk1234x0a1b2c-r12", 1234, true},
		{"rtk1234x0a1b2c-4242424", 1234, true}, // a lab's temporary directory
		{"rtk1234x0a1b2c", 0, false},
		{"rtk1234x0a1b2-inet", 0, false},
		{"rtk1234xzzzzzz-inet", 0, false},
		{"rtk01234x0a1b2c-inet", 0, false},
		{"rtkx0a1b2c-inet", 0, false},
		{"rtk-1x0a1b2c-inet", 0, false},
		{"other1234x0a1b2c-inet", 0, false},
		{"rtkbench", 0, false},
	}
	for _, tt := range tests {
		pid, ok := parseID(tt.name)
		if pid != tt.pid || ok != tt.ok {
			t.Errorf("parseID(%q) = %d, %v; want %d, %v", tt.name, pid, ok, tt.pid, tt.ok)
		}
	}
}

func TestSiteAddrs(t *testing.T) {
	seen := map[netip.Addr]bool{internetGateway: true, serverIPs[0]: true, serverIPs[1]: true}
	for i := 1; i <= MaxSites; i++ {
		wan, lan, gw, client := siteAddrs(i)
		if !internetPrefix.Contains(wan) || seen[wan] {
			t.Errorf("site %d: WAN %v outside %v or reused", i, wan, internetPrefix)
		}
		seen[wan] = true
		if !lan.Contains(gw) || !lan.Contains(client) || gw == client {
			t.Errorf("site %d: LAN %v, gateway %v, client %v", i, lan, gw, client)
		}
	}
}

// TestNewRejectsBadConfig needs no root: New checks its Config first.
func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(t.Context(), Config{Sites: make([]SiteConfig, MaxSites+1)}); !errors.Is(err, ErrTooManySites) {
		t.Errorf("%d sites: %v, want ErrTooManySites", MaxSites+1, err)
	}
	if _, err := New(t.Context(), Config{Sites: []SiteConfig{{NAT: "carrier-grade"}}}); !errors.Is(err, ErrUnknownNAT) {
		t.Errorf("unknown kind: %v, want ErrUnknownNAT", err)
	}
}
