package stunprobe

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/stun/v4"
)

// TestParseReplyMappedAddress: a reply whose XOR-MAPPED-ADDRESS is of the
// wrong family, of a length its family does not have, or no address is a
// failed reply, not a public address.
func TestParseReplyMappedAddress(t *testing.T) {
	to := netip.MustParseAddrPort("192.0.2.1:3478")
	build := func(setters ...stun.Setter) *stun.Message {
		m, err := stun.Build(append([]stun.Setter{stun.TransactionID, stun.BindingSuccess}, setters...)...)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	raw := func(value []byte) stun.Setter {
		return stun.RawAttribute{Type: stun.AttrXORMappedAddress, Value: value}
	}
	for name, tc := range map[string]struct {
		m    *stun.Message
		want string // "" for a good reply
	}{
		"good":          {build(&stun.XORMappedAddress{IP: net.ParseIP("198.51.100.7"), Port: 4242}), ""},
		"ipv6 for ipv4": {build(&stun.XORMappedAddress{IP: net.ParseIP("2001:db8::1"), Port: 1234}), "family"},
		"unspecified":   {build(&stun.XORMappedAddress{IP: net.IPv4zero, Port: 0}), "no address"},
		"short ipv6":    {build(raw([]byte{0, 2, 0x10, 0x92, 1, 2, 3, 4})), "bytes long"},
		"long ipv4":     {build(raw([]byte{0, 1, 0x10, 0x92, 1, 2, 3, 4, 5, 6})), "XOR-MAPPED-ADDRESS"},
	} {
		o := parseReply(tc.m, observation{to: to})
		switch {
		case tc.want == "" && o.outcome != OutcomeReply:
			t.Errorf("%s: outcome %s (%s), want a reply", name, o.outcome, o.note)
		case tc.want != "" && (o.outcome != OutcomeFailed || !strings.Contains(o.note, tc.want)):
			t.Errorf("%s: outcome %s (%s), want failed: %s", name, o.outcome, o.note, tc.want)
		}
	}
}

// TestOutcomeErrorAnswers: servers that answered only with errors are not
// unreachable.
func TestOutcomeErrorAnswers(t *testing.T) {
	f := false
	r := &Report{UDP: &f, Servers: []ServerReport{{Bindings: []Binding{{Transport: "udp", Status: StatusRejected}}}}}
	if got := outcome(r); got != OutcomeInconclusive {
		t.Errorf("error answers: outcome %s, want %s", got, OutcomeInconclusive)
	}
	r.Servers[0].Bindings[0].Status = StatusTimeout
	if got := outcome(r); got != OutcomeUnreachable {
		t.Errorf("no answers: outcome %s, want %s", got, OutcomeUnreachable)
	}
}
