package natlab

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/natdiscovery from coturn's real output (TestNATKinds)")

// natDiscoveryGolden is the file holding turnutils_natdiscovery's output
// for a client behind kind.
func natDiscoveryGolden(kind NATKind) string {
	return filepath.Join("testdata", "natdiscovery", string(kind)+".txt")
}

// TestParseNatDiscovery parses recorded turnutils_natdiscovery output, one
// file per NAT kind, recorded from TestNATKinds's lab (site i+1 has kind
// NATKinds()[i]).
func TestParseNatDiscovery(t *testing.T) {
	for i, kind := range NATKinds() {
		t.Run(string(kind), func(t *testing.T) {
			raw, err := os.ReadFile(natDiscoveryGolden(kind))
			if err != nil {
				t.Fatal(err)
			}
			wan, _, _, client := siteAddrs(i + 1)
			v := parseNatDiscovery(string(raw), client)
			if want := kind.Behavior(); v.NATBehavior != want {
				t.Errorf("verdict %+v, want %+v", v.NATBehavior, want)
			}
			if v.Raw != string(raw) {
				t.Error("Raw is not the tool's output")
			}
			want := wan
			if kind == NATNone {
				want = client
			}
			if v.UDP && len(v.Mapped) < 3 {
				t.Errorf("mapped %v, want at least 3 addresses", v.Mapped)
			}
			for _, m := range v.Mapped {
				if m.Addr() != want {
					t.Errorf("mapped %v, want address %v", m, want)
				}
			}
		})
	}
}

func TestParseNatDiscoveryEdgeCases(t *testing.T) {
	local := netip.MustParseAddr("10.99.1.2")
	tests := []struct {
		name string
		out  string
		want NATBehavior
	}{
		{"empty", "", NATBehavior{}},
		{"timeouts only", "\n-= Mapping Behavior Discovery =-\nSTUN receive timeout..\n", NATBehavior{}},
		{
			// Printed when the tool is bound to the client's address (-L).
			"no NAT line",
			"0: : IPv4. UDP reflexive addr: 10.99.1.2:4000\n" +
				"========================================\nNo NAT! (Endpoint Independent Mapping)\n" +
				"========================================\nNAT with Endpoint Independent Mapping!\n",
			NATBehavior{UDP: true, Mapping: EndpointIndependent},
		},
		{
			"mapping only",
			"0: : IPv4. UDP reflexive addr: 203.0.113.101:4000\nNAT with Address Dependent Mapping!\n",
			NATBehavior{UDP: true, NAT: true, Mapping: AddressDependent},
		},
		{
			"garbled address",
			"0: : IPv4. UDP reflexive addr: nonsense\nNAT with Address and Port Dependent Filtering!\n",
			NATBehavior{Filtering: AddressPortDependent},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseNatDiscovery(tt.out, local).NATBehavior; got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBindingMessages(t *testing.T) {
	req, txid := bindingRequest()
	if len(req) != 20 || req[0] != 0 || req[1] != 1 {
		t.Fatalf("request % x", req)
	}
	resp := append([]byte{0x01, 0x01, 0, 0}, req[4:]...)
	if !isBindingSuccess(resp, txid) {
		t.Error("matching success response rejected")
	}
	other := append([]byte(nil), resp...)
	other[19] ^= 1
	if isBindingSuccess(other, txid) {
		t.Error("response to another transaction accepted")
	}
	if isBindingSuccess(req, txid) {
		t.Error("request taken for a response")
	}
	if isBindingSuccess(resp[:19], txid) {
		t.Error("short message accepted")
	}
}
