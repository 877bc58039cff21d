package cmd

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rtckit/rtckit/diag/icegather"
	"github.com/rtckit/rtckit/internal/coturn"
	"github.com/rtckit/rtckit/internal/testenv"
	"github.com/rtckit/rtckit/turnserver"
	"go.uber.org/goleak"
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
		{"empty require", []string{"ice", "gather", "--require", "relay,,host"}, "unknown candidate type"},
		{"relay check with STUN only", []string{"ice", "gather", "--relay-check", "--stun", "stun:127.0.0.1:9"}, "needs a TURN server"},
		{"stuns server", []string{"ice", "gather", "--stun", "stuns:127.0.0.1:5349"}, "stun:host[:port]"},
		{"stuns server by name", []string{"--json", "ice", "gather", "--stun", "stuns:stun.example.net"}, "stuns: is not supported"},
		{"require relay without TURN", []string{"ice", "gather", "--stun", "stun:127.0.0.1:9", "--require", "relay"}, "needs a TURN server"},
		{"require srflx without servers", []string{"ice", "gather", "--require", "srflx"}, "needs a STUN or TURN server"},
		{"require host with relay policy", []string{"ice", "gather", "--turn", "turn:u:p@127.0.0.1:9", "--ice-policy", "relay", "--require", "host"}, "can never be met"},
		{"bad require with ndjson", []string{"ice", "gather", "--ndjson", "--require", "magic"}, "unknown candidate type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != ExitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", code, stderr, ExitUsage, tt.want)
			}
			if stdout != "" {
				t.Errorf("a usage error printed on stdout first: %q", stdout)
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

// TestICEGatherInterrupted: SIGINT or SIGTERM while a server is still
// answering is an interruption (exit 130), not a server failure; the
// partial report is printed and marked.
func TestICEGatherInterrupted(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ctx, silent := interruptOnFirstPacket(t)
	start := time.Now()
	code, stdout, stderr := runCLIContext(t, ctx, "--json", "--timeout", "20s", "ice", "gather", "--network", "udp4",
		"--server-timeout", "15s", "--stun", "stun:"+silent.LocalAddr().String(), "--require", "srflx")
	if code != ExitInterrupted || !strings.Contains(stderr, "interrupted") {
		t.Fatalf("exit %d, stderr %q; want %d saying interrupted", code, stderr, ExitInterrupted)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s after the interruption", d)
	}
	var r icegather.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("decode %q: %v", stdout, err)
	}
	if !r.Interrupted || len(r.Missing) != 0 {
		t.Errorf("interrupted %v, missing %v; want an interrupted report with no verdict on missing types", r.Interrupted, r.Missing)
	}
	if len(r.Servers) != 1 || r.Servers[0].Status != icegather.StatusInterrupted || r.Servers[0].ErrorKind != "" {
		t.Errorf("servers %+v, want the server marked interrupted, not diagnosed", r.Servers)
	}
}

// startTurnServer serves TURN over UDP in-process on 127.0.0.1 for user
// alice; it refuses loopback peers unless allowLoopback.
func startTurnServer(t *testing.T, allowLoopback bool) netip.AddrPort {
	t.Helper()
	srv, err := turnserver.Listen(turnserver.Config{
		ListenIP: netip.MustParseAddr("127.0.0.1"), UDP: true,
		Users: map[string]string{"alice": "wonderland"}, AllowLoopbackPeers: allowLoopback,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Serve(t, srv.Serve)
	return srv.Addrs().UDP
}

// TestICEGatherRelayCheckPermissionRefused: a TURN server that grants the
// allocations but refuses the permissions towards the peers (403) fails the
// relay check at once with that reason, not at the end of its deadline.
func TestICEGatherRelayCheckPermissionRefused(t *testing.T) {
	servers := map[string]func(t *testing.T) string{
		"turn serve": func(t *testing.T) string {
			return "turn:alice:wonderland@" + startTurnServer(t, false).String()
		},
		"coturn denied-peer-ip": func(t *testing.T) string {
			testenv.RequireProgram(t, "turnserver")
			srv, err := coturn.StartOnFreePorts(context.Background(), coturn.Config{
				ListenIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Users: []string{"alice:wonderland"},
				AllowLoopbackPeers: true, Extra: []string{"--denied-peer-ip=127.0.0.0-127.255.255.255"},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })
			return "turn:alice:wonderland@" + srv.Addr().String()
		},
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // after the server's cleanup
			uri := start(t)
			begin := time.Now()
			code, stdout, stderr := runCLI(t, "--json", "--timeout", "10s", "ice", "gather", "--network", "udp4",
				"--relay-check", "--relay-count", "5", "--turn", uri)
			took := time.Since(begin)
			if code != ExitCheckFailed {
				t.Fatalf("exit %d, want %d; stderr %s", code, ExitCheckFailed, stderr)
			}
			var r icegather.Report
			if err := json.Unmarshal([]byte(stdout), &r); err != nil {
				t.Fatal(err)
			}
			if len(r.Servers) != 1 || r.Servers[0].Status != icegather.StatusOK {
				t.Fatalf("servers %+v, want the allocation granted", r.Servers)
			}
			if len(r.RelayChecks) != 1 || r.RelayChecks[0].Passed || !strings.Contains(r.RelayChecks[0].Error, "403") {
				t.Fatalf("relay checks %+v, want one failing with the 403 refusal", r.RelayChecks)
			}
			t.Logf("relay check after %s: %s", took.Round(time.Millisecond), r.RelayChecks[0].Error)
			if took > 5*time.Second {
				t.Errorf("took %s: the refusal did not end the check at once", took)
			}
		})
	}
}

// TestICEGatherRelayCheckPasses: the same server allowing loopback peers
// passes the relay check, so the permission check does not get in the way.
func TestICEGatherRelayCheckPasses(t *testing.T) {
	uri := "turn:alice:wonderland@" + startTurnServer(t, true).String()
	code, stdout, stderr := runCLI(t, "--json", "--timeout", "10s", "ice", "gather", "--network", "udp4",
		"--relay-check", "--relay-count", "5", "--turn", uri)
	if code != ExitOK {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
}
