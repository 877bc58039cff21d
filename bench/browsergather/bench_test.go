package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rtckit/rtckit/internal/browser"
	"github.com/rtckit/rtckit/internal/testenv"
)

func TestCoturnScenarios(t *testing.T) {
	specs, err := coturnScenarios(coturnScenarioNames, "127.0.0.1:3478", "u", "p")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"host":     nil,
		"stun":     {"stun:127.0.0.1:3478"},
		"turn-udp": {"turn:127.0.0.1:3478?transport=udp"},
		"turn-tcp": {"turn:127.0.0.1:3478?transport=tcp"},
		"all":      {"stun:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"},
	}
	if len(specs) != len(want) {
		t.Fatalf("got %d scenarios, want %d", len(specs), len(want))
	}
	for _, s := range specs {
		if !slices.Equal(s.urls(), want[s.name]) {
			t.Errorf("%s: urls %q, want %q", s.name, s.urls(), want[s.name])
		}
		for _, srv := range s.servers {
			isTURN := strings.HasPrefix(srv.URLs[0], "turn:")
			if isTURN != (srv.Username == "u" && srv.Credential == "p") {
				t.Errorf("%s: %s has credentials %q/%q", s.name, srv.URLs[0], srv.Username, srv.Credential)
			}
		}
	}
	if _, err := coturnScenarios([]string{"stun", "bogus"}, "127.0.0.1:3478", "u", "p"); err == nil {
		t.Error("unknown scenario accepted")
	}
}

func TestCustomScenario(t *testing.T) {
	tests := []struct {
		name        string
		stun, turn  []string
		user, pass  string
		wantErr     string
		wantServers int
	}{
		{name: "stun and turn", stun: []string{"stun:127.0.0.1:3478"}, turn: []string{"turn:127.0.0.1:3478?transport=tcp"}, user: "u", pass: "p", wantServers: 2},
		{name: "turn without credentials", turn: []string{"turn:127.0.0.1"}, wantErr: "-user and -pass"},
		{name: "turn given as stun", stun: []string{"turn:127.0.0.1"}, wantErr: "use -turn"},
		{name: "stun given as turn", turn: []string{"stun:127.0.0.1"}, user: "u", pass: "p", wantErr: "use -stun"},
		{name: "bad uri", stun: []string{"stun://127.0.0.1"}, wantErr: "-stun"},
		{name: "bad transport", turn: []string{"turn:127.0.0.1?transport=sctp"}, user: "u", pass: "p", wantErr: "-turn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := customScenario(tt.stun, tt.turn, tt.user, tt.pass)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(sc.servers) != tt.wantServers || sc.name != "custom" {
				t.Fatalf("scenario %+v, err %v", sc, err)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(options) bool
	}{
		{name: "coturn defaults", args: []string{"-coturn"}, check: func(o options) bool {
			return o.runs == defaultRuns && o.mode == modeGranted && o.loopback && slices.Equal(o.scenarios, coturnScenarioNames) && o.rtckit == ""
		}},
		{name: "rtckit", args: []string{"-coturn", "-rtckit", "/tmp/rtckit"}, check: func(o options) bool {
			return o.rtckit == "/tmp/rtckit"
		}},
		{name: "coturn scenarios", args: []string{"-coturn", "-scenarios", "stun, all"}, check: func(o options) bool {
			return slices.Equal(o.scenarios, []string{"stun", "all"})
		}},
		{name: "repeated servers", args: []string{"-stun", "stun:a", "-stun", "stun:b", "-turn", "turn:c", "-user", "u", "-pass", "p"}, check: func(o options) bool {
			return slices.Equal(o.stun, []string{"stun:a", "stun:b"}) && slices.Equal(o.turn, []string{"turn:c"})
		}},
		{name: "no servers", args: nil, wantErr: "-coturn"},
		{name: "coturn and servers", args: []string{"-coturn", "-stun", "stun:a"}, wantErr: "drop -stun"},
		{name: "bad mode", args: []string{"-coturn", "-mode", "x"}, wantErr: "-mode"},
		{name: "zero runs", args: []string{"-coturn", "-runs", "0"}, wantErr: "-runs"},
		{name: "stray argument", args: []string{"-coturn", "extra"}, wantErr: "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(o) {
				t.Fatalf("options %+v, err %v", o, err)
			}
		})
	}
}

func TestBrowserOptions(t *testing.T) {
	tests := []struct {
		mode        string
		fakeUI      bool // the fake media permission stays on
		mdnsAllowed bool
	}{
		{modeGranted, true, false},
		{modePlain, false, false},
		{modeMDNS, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			b := browserOptions(options{mode: tt.mode, loopback: true}, nil)
			if !b.AllowLoopback {
				t.Error("loopback not allowed")
			}
			if _, off := b.Flags["use-fake-ui-for-media-stream"]; off == tt.fakeUI {
				t.Errorf("fake permission on = %v, want %v", !off, tt.fakeUI)
			}
			if _, off := b.Flags["disable-features"]; off == tt.mdnsAllowed {
				t.Errorf("mDNS allowed = %v, want %v", !off, tt.mdnsAllowed)
			}
		})
	}
}

// TestBenchAgainstCoturn runs one gathering per scenario in Chromium
// against a loopback coturn and checks that each kind of candidate shows
// up where it must. In page mode granted it runs rtckit too (the test binary
// acting as rtckit), in page mode plain Chromium only.
func TestBenchAgainstCoturn(t *testing.T) {
	testenv.Require(t, browser.Available())
	testenv.RequireProgram(t, "turnserver")
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))

	for _, mode := range []string{modeGranted, modePlain} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			opts := options{coturn: true, scenarios: coturnScenarioNames, runs: 1, warmup: 0,
				timeout: 10 * time.Second, loopback: true, mode: mode}
			withRTCKit := mode == modeGranted
			if withRTCKit {
				opts.rtckit = fakeRTCKitPath(t, "rtckit")
			}
			var out bytes.Buffer
			if err := run(ctx, opts, &out, log); err != nil {
				t.Fatal(err)
			}
			sums := map[string]Summary{} // by gatherer/scenario
			records := map[string]int{}
			sc := bufio.NewScanner(&out)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var rec struct {
					Record string `json:"record"`
				}
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
					t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
				}
				records[rec.Record]++
				if rec.Record == "summary" {
					var s Summary
					if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
						t.Fatal(err)
					}
					sums[s.Gatherer+"/"+s.Scenario] = s
				}
			}
			n := len(coturnScenarioNames)
			wantRecords := map[string]int{"browser": 1, "run": n, "summary": n}
			if withRTCKit {
				wantRecords = map[string]int{"browser": 1, "rtckit": 1, "run": 2 * n, "summary": 2 * n}
				checkRTCKitSummaries(t, sums)
			}
			if !maps.Equal(records, wantRecords) {
				t.Errorf("records %v, want %v", records, wantRecords)
			}
			for _, name := range coturnScenarioNames {
				s, ok := sums[gathererChromium+"/"+name]
				if !ok {
					t.Fatalf("no summary for %s in\n%s", name, out.String())
				}
				if s.TimedOut != 0 || s.Complete.N != 1 || len(s.ErrorURLs) != 0 {
					t.Errorf("%s: %+v", name, s)
				}
				// Loopback host candidates need media permission; without
				// it the host candidate is the default route's address,
				// which a machine may lack.
				if mode == modeGranted && s.FirstHost.N != 1 {
					t.Errorf("%s: no host candidate: %+v", name, s)
				}
				wantRelay := name == "turn-udp" || name == "turn-tcp" || name == "all"
				if got := s.FirstRelay.N == 1; got != wantRelay {
					t.Errorf("%s: relay candidate %v, want %v", name, got, wantRelay)
				}
				// A page without media permission gathers from an
				// any-address socket, so the server sees 127.0.0.1, not
				// the host address, and the srflx candidate (from a STUN
				// Binding or a TURN UDP Allocate) survives; with permission
				// it equals a host candidate and is dropped.
				wantSrflx := mode == modePlain && name != "host" && name != "turn-tcp"
				if got := s.FirstSrflx.N == 1; got != wantSrflx {
					t.Errorf("%s: srflx candidate %v, want %v", name, got, wantSrflx)
				}
			}
		})
	}
}

// checkRTCKitSummaries checks rtckit's summaries of TestBenchAgainstCoturn:
// every run completed with a host candidate (loopback ones included) and
// its wall-clock time, and the TURN scenarios gave a relay candidate.
func checkRTCKitSummaries(t *testing.T, sums map[string]Summary) {
	t.Helper()
	for _, name := range coturnScenarioNames {
		s, ok := sums[gathererRTCKit+"/"+name]
		if !ok {
			t.Errorf("no rtckit summary for %s", name)
			continue
		}
		if s.TimedOut != 0 || s.Complete.N != 1 || s.Wall.N != 1 || s.FirstHost.N != 1 || len(s.ErrorURLs) != 0 {
			t.Errorf("rtckit %s: %+v", name, s)
		}
		wantRelay := name == "turn-udp" || name == "turn-tcp" || name == "all"
		if got := s.FirstRelay.N == 1; got != wantRelay {
			t.Errorf("rtckit %s: relay candidate %v, want %v", name, got, wantRelay)
		}
	}
}
