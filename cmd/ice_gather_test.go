package cmd

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/rtckit/rtckit/diag/icegather"
)

func TestICEGatherUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad STUN URI", []string{"ice", "gather", "--stun", "stun://x"}, "stun://"},
		{"TURN given as STUN", []string{"ice", "gather", "--stun", "turn:127.0.0.1"}, "TURN URI"},
		{"TURN without credentials", []string{"ice", "gather", "--turn", "turn:127.0.0.1"}, "needs credentials"},
		{"TURN user without password", []string{"ice", "gather", "--turn", "turn:u@127.0.0.1"}, "no password"},
		{"bad network", []string{"ice", "gather", "--network", "sctp"}, "unknown network type"},
		{"bad policy", []string{"ice", "gather", "--ice-policy", "direct"}, "unknown ICE transport policy"},
		{"bad require", []string{"ice", "gather", "--require", "magic"}, "unknown candidate type"},
		{"relay check without TURN", []string{"ice", "gather", "--relay-check"}, "needs a TURN server"},
		{"json and ndjson", []string{"--json", "ice", "gather", "--ndjson"}, "exclude each other"},
		{"half credentials", []string{"ice", "gather", "--turn-user", "u"}, "both a TURN user and a TURN password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != ExitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", code, stderr, ExitUsage, tt.want)
			}
		})
	}
}

func TestICEGatherHostOnly(t *testing.T) {
	code, stdout, stderr := runCLI(t, "--json", "ice", "gather", "--include-loopback", "--require", "host")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r icegather.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	if r.Counts[icegather.TypeHost] == 0 || r.Schema != icegather.SchemaVersion {
		t.Errorf("report %+v, want host candidates", r)
	}
	checkPriorities(t, r.Candidates)
}

// checkPriorities checks each candidate's priority against RFC 8445 section
// 5.1.2: the recommended type preference (pion's values), component 1 with
// component preference 256-1, and, among UDP candidates, every host above
// every srflx above every relay. TCP candidates get pion's TCP offset off
// their type preference, so only an upper bound holds for them.
func checkPriorities(t *testing.T, cs []icegather.Candidate) {
	t.Helper()
	typePref := map[string]uint32{icegather.TypeHost: 126, icegather.TypePrflx: 110, icegather.TypeSrflx: 100, icegather.TypeRelay: 0}
	rank := []string{icegather.TypeHost, icegather.TypeSrflx, icegather.TypeRelay}
	lowest, highest := map[string]uint32{}, map[string]uint32{}
	for _, c := range cs {
		want, ok := typePref[c.Type]
		switch {
		case !ok:
			t.Errorf("candidate %+v: unknown type", c)
		case c.Protocol == "udp" && c.TypePreference != want, c.TypePreference > want:
			t.Errorf("candidate %+v: type preference %d, want %d for %s", c, c.TypePreference, want, c.Type)
		}
		if c.Component != 1 || c.ComponentPreference != 255 {
			t.Errorf("candidate %+v: component %d with preference %d, want 1 with 255", c, c.Component, c.ComponentPreference)
		}
		if c.Priority == 0 {
			t.Errorf("candidate %+v: zero priority", c)
		}
		if c.Protocol != "udp" {
			continue
		}
		if l, ok := lowest[c.Type]; !ok || c.Priority < l {
			lowest[c.Type] = c.Priority
		}
		highest[c.Type] = max(highest[c.Type], c.Priority)
	}
	for i, above := range rank {
		for _, below := range rank[i+1:] {
			l, okA := lowest[above]
			h, okB := highest[below]
			if okA && okB && l <= h {
				t.Errorf("a UDP %s candidate (priority %d) does not rank above every UDP %s one (up to %d)", above, l, below, h)
			}
		}
	}
}

// TestICEGatherSilentAndClosedServers checks that a blackholed STUN server
// and a TURN server that hangs up are reported per server within the
// deadline, and that --require turns them into exit code 6.
func TestICEGatherSilentAndClosedServers(t *testing.T) {
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	hangup, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer hangup.Close()
	go func() {
		for {
			c, err := hangup.Accept()
			if err != nil {
				return
			}
			_ = c.Close() // closes mid-allocation
		}
	}()
	code, stdout, stderr := runCLI(t, "--json", "--timeout", "3s", "ice", "gather", "--network", "udp4,tcp4",
		"--stun", "stun:"+silent.LocalAddr().String(),
		"--turn", "turn:u:p@"+hangup.Addr().String()+"?transport=tcp", "--require", "srflx,relay")
	if code != ExitCheckFailed {
		t.Fatalf("exit %d, want %d; stderr %s", code, ExitCheckFailed, stderr)
	}
	var r icegather.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Servers) != 2 {
		t.Fatalf("servers %+v", r.Servers)
	}
	if s := r.Servers[0]; s.Status != icegather.StatusFailed || s.ErrorKind != icegather.KindTimeout {
		t.Errorf("silent STUN server: %+v, want failed with a timeout", s)
	}
	if s := r.Servers[1]; s.Status != icegather.StatusFailed || s.Error == "" {
		t.Errorf("hanging-up TURN server: %+v, want failed with an error", s)
	}
	if len(r.Missing) != 2 {
		t.Errorf("missing %v, want srflx and relay", r.Missing)
	}
}

func TestICEGatherNDJSONStream(t *testing.T) {
	code, stdout, stderr := runCLI(t, "ice", "gather", "--include-loopback", "--ndjson")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	candidates := 0
	for i, line := range lines {
		var e icegather.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		if e.Schema != icegather.SchemaVersion {
			t.Errorf("line %d: schema %q", i, e.Schema)
		}
		switch e.Event {
		case icegather.EventCandidate:
			candidates++
		case icegather.EventDone:
			if i != len(lines)-1 || e.Report == nil || len(e.Report.Candidates) != candidates {
				t.Errorf("done event at line %d of %d with %d candidates streamed: %+v", i, len(lines), candidates, e.Report)
			}
		}
	}
	if candidates == 0 {
		t.Error("no candidate event")
	}
}
