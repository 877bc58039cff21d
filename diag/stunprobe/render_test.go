package stunprobe

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtckit/rtckit/internal/golden"
)

// goldenReports are fixed reports covering the renderer's cases.
func goldenReports() map[string]*Report {
	started := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	portRestricted := &Report{
		Schema: SchemaVersion, StartedAt: started, DurationMS: 503.2, UDP: ptr(true), TCP: ptr(true), Outcome: OutcomeOK,
		Servers: []ServerReport{{
			URI: "stun:203.0.113.10:3478", Host: "203.0.113.10", Port: 3478, RFC5780: ptr(true), Software: "rtckit",
			Bindings: []Binding{
				{Transport: "udp", Family: "ipv4", Status: StatusOK, Server: "203.0.113.10:3478", Local: "10.99.0.2:40000",
					Mapped: "198.51.100.1:40000", MappedPlain: "198.51.100.1:40000", OtherAddress: "203.0.113.11:3479",
					ResponseOrigin: "203.0.113.10:3478", RTTMS: 0.4, Sent: 1},
				{Transport: "tcp", Family: "ipv4", Status: StatusOK, Server: "203.0.113.10:3478", Local: "10.99.0.2:41000",
					Mapped: "198.51.100.1:41000", RTTMS: 0.6, Sent: 1},
			},
		}, {
			URI: "stun:192.0.2.7:3478", Host: "192.0.2.7", Port: 3478,
			Bindings: []Binding{{Transport: "udp", Family: "ipv4", Status: StatusTimeout, Server: "192.0.2.7:3478", Sent: 5, Error: "no reply after 5 transmissions"}},
		}},
		Families: []FamilyReport{{
			Family: "ipv4", Local: "10.99.0.2", Status: "ok", Public: []string{"198.51.100.1:40000"},
			BehindNAT: ptr(true), PortPreserved: ptr(true), ALG: ptr(false), Hairpinning: ptr(false),
			Mapping:   Classification{Behavior: EndpointIndependent, Method: "rfc5780", Server: "stun:203.0.113.10:3478", Reason: "same mapping 198.51.100.1:40000 towards 203.0.113.10:3478 and 203.0.113.11:3478"},
			Filtering: Classification{Behavior: AddressPortDependent, Method: "rfc5780", Server: "stun:203.0.113.10:3478", Reason: "only replies from the contacted address and port came through"},
			Lifetime:  &LifetimeResult{Status: "measured", AliveAfterS: 20, ExpiredAfterS: ptr(30.0), MaxS: 120},
			Tests: []Evidence{
				{Test: "mapping-1", Server: "stun:203.0.113.10:3478", Local: "10.99.0.2:40000", To: "203.0.113.10:3478", Outcome: OutcomeReply, From: "203.0.113.10:3478", Mapped: "198.51.100.1:40000", Sent: 1, RTTMS: 0.4},
				{Test: "filtering-2", Server: "stun:203.0.113.10:3478", Local: "10.99.0.2:40001", To: "203.0.113.10:3478", Expect: "203.0.113.11:3479", Outcome: OutcomeNoReply, Sent: 3, Note: "CHANGE-REQUEST: change IP and port"},
			},
			Verdict: verdict(true, ptr(true), EndpointIndependent, AddressPortDependent),
		}},
	}
	udpBlocked := &Report{
		Schema: SchemaVersion, StartedAt: started, DurationMS: 1500, UDP: ptr(false), TCP: ptr(true), Outcome: OutcomeNoUDP,
		Servers: []ServerReport{{URI: "stun:203.0.113.10:3478", Host: "203.0.113.10", Port: 3478, Bindings: []Binding{
			{Transport: "udp", Family: "ipv4", Status: StatusTimeout, Server: "203.0.113.10:3478", Sent: 5, Error: "no reply after 5 transmissions"},
			{Transport: "tcp", Family: "ipv4", Status: StatusOK, Server: "203.0.113.10:3478", Mapped: "198.51.100.1:41000", RTTMS: 0.6, Sent: 1},
		}}},
		Families: []FamilyReport{{Family: "ipv4", Local: "10.99.0.2", Status: "no-reply",
			Mapping: Classification{Behavior: NotTested}, Filtering: Classification{Behavior: NotTested},
			Tests: []Evidence{}, Verdict: verdict(false, nil, NotTested, NotTested)}},
	}
	noRoute := &Report{
		Schema: SchemaVersion, StartedAt: started, DurationMS: 1, UDP: ptr(false), Outcome: OutcomeUnreachable,
		Servers: []ServerReport{{URI: "stun:[2001:db8::1]:3478", Host: "2001:db8::1", Port: 3478, Bindings: []Binding{
			{Transport: "udp", Family: "ipv6", Status: StatusNoRoute, Server: "[2001:db8::1]:3478", Error: "network is unreachable"},
		}}},
		Families: []FamilyReport{{Family: "ipv6", Status: StatusNoRoute, Tests: []Evidence{},
			Mapping: Classification{Behavior: NotTested}, Filtering: Classification{Behavior: NotTested},
			Verdict: Verdict{RFC4787: "not tested", Classic: "no route", WebRTC: "no IPv6 route from this host: IPv6 candidates will not work"}}},
	}
	interrupted := &Report{
		Schema: SchemaVersion, StartedAt: started, DurationMS: 212.5, UDP: ptr(false), TCP: ptr(false), Outcome: OutcomeInterrupted,
		Servers: []ServerReport{{URI: "stun:203.0.113.10:3478", Host: "203.0.113.10", Port: 3478, Bindings: []Binding{
			{Transport: "udp", Family: "ipv4", Status: StatusTimeout, Server: "203.0.113.10:3478", Sent: 2, Error: "no reply after 2 transmissions"},
		}}},
		Families: []FamilyReport{{Family: "ipv4", Local: "10.99.0.2", Status: "no-reply",
			Mapping: Classification{Behavior: NotTested}, Filtering: Classification{Behavior: NotTested},
			Tests: []Evidence{}, Verdict: interruptedVerdict()}},
	}
	return map[string]*Report{"port-restricted": portRestricted, "udp-blocked": udpBlocked, "no-route": noRoute, "interrupted": interrupted}
}

func TestGoldenOutput(t *testing.T) {
	for name, r := range goldenReports() {
		t.Run(name, func(t *testing.T) {
			var text bytes.Buffer
			if err := WriteText(&text, r); err != nil {
				t.Fatal(err)
			}
			js, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", name+".txt"), text.Bytes())
			golden.Check(t, filepath.Join("testdata", name+".json"), append(js, '\n'))
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for name, r := range goldenReports() {
		js, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back Report
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if back.Schema != SchemaVersion || back.Outcome != r.Outcome || len(back.Families) != len(r.Families) {
			t.Errorf("%s: round trip lost data: %+v", name, back)
		}
	}
}
