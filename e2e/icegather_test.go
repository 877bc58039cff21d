package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rtckit/rtckit/diag/icegather"
	"github.com/rtckit/rtckit/internal/coturn"
	"github.com/rtckit/rtckit/internal/testenv"
)

// gatherResult is one run of `rtckit --json ice gather`.
type gatherResult struct {
	code   int
	report icegather.Report
	stderr string
}

func runGather(t *testing.T, cmd *exec.Cmd) gatherResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := gatherResult{stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	if err := json.Unmarshal(stdout.Bytes(), &res.report); err != nil {
		t.Fatalf("%s: decode %q: %v (stderr %s)", cmd, stdout.String(), err, res.stderr)
	}
	return res
}

// startCoturnWith runs coturn on 127.0.0.1 with cfg's credentials.
func startCoturnWith(t *testing.T, cfg coturn.Config) netip.AddrPort {
	t.Helper()
	testenv.RequireProgram(t, "turnserver")
	cfg.ListenIPs, cfg.AllowLoopbackPeers = []netip.Addr{netip.MustParseAddr("127.0.0.1")}, true
	srv, err := coturn.StartOnFreePorts(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv.Addr()
}

func TestICEGatherThroughCoturn(t *testing.T) {
	addr := startCoturnWith(t, coturn.Config{Users: []string{"alice:wonderland"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	turnUDP := "turn:" + addr.String() + "?transport=udp"
	turnTCP := "turn:" + addr.String() + "?transport=tcp"

	t.Run("long-term credentials over UDP and TCP with relay check", func(t *testing.T) {
		res := runGather(t, rtckit(ctx, "--json", "ice", "gather", "--stun", "stun:"+addr.String(),
			"--turn", turnUDP, "--turn", turnTCP, "--turn-user", "alice", "--turn-pass", "wonderland",
			"--require", "host,srflx,relay", "--relay-check"))
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		protos := map[string]bool{}
		for _, c := range res.report.Candidates {
			if c.Type == icegather.TypeRelay {
				protos[c.RelayProtocol] = true
			}
		}
		if !protos["udp"] || !protos["tcp"] {
			t.Errorf("relay protocols %v, want udp and tcp", protos)
		}
		if len(res.report.RelayChecks) != 2 {
			t.Fatalf("relay checks %+v", res.report.RelayChecks)
		}
		for _, c := range res.report.RelayChecks {
			if !c.Passed || c.Received == 0 {
				t.Errorf("relay check %+v did not pass", c)
			}
		}
	})

	t.Run("wrong password is 401 and fails --require relay", func(t *testing.T) {
		res := runGather(t, rtckit(ctx, "--json", "ice", "gather", "--turn", "turn:alice:nope@"+addr.String(), "--require", "relay"))
		if res.code != 6 {
			t.Fatalf("exit %d, want 6: %s", res.code, res.stderr)
		}
		s := res.report.Servers[0]
		if s.ErrorKind != icegather.KindUnauthorized || s.ErrorCode != 401 {
			t.Errorf("server %+v, want unauthorized (401)", s)
		}
	})
}

func TestICEGatherCoturnRESTSecret(t *testing.T) {
	const secret = "lab-shared-secret"
	addr := startCoturnWith(t, coturn.Config{AuthSecret: secret})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := runGather(t, rtckit(ctx, "--json", "ice", "gather", "--turn", "turn:"+addr.String(),
		"--turn-secret", secret, "--turn-user", "ci", "--require", "relay", "--relay-check"))
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if s := res.report.Servers[0]; s.Credentials != "rest" || s.Status != icegather.StatusOK {
		t.Errorf("server %+v, want ok with REST credentials", s)
	}
	bad := runGather(t, rtckit(ctx, "--json", "ice", "gather", "--turn", "turn:"+addr.String(),
		"--turn-secret", "not-the-secret", "--require", "relay"))
	if bad.code != 6 || bad.report.Servers[0].ErrorCode != 401 {
		t.Errorf("wrong secret: exit %d, server %+v; want 6 and 401", bad.code, bad.report.Servers[0])
	}
}

// TestICEGatherRelayCheckThroughTurnServe gathers relays from `rtckit turn
// serve` over UDP and TCP, with long-term and REST credentials, and proves
// data flows through each.
func TestICEGatherRelayCheckThroughTurnServe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	uris := startTurnServe(t, ctx, "--auth-secret", "lab-secret")
	for name, creds := range map[string][]string{
		"long-term": {"--turn-user", "alice", "--turn-pass", "wonderland"},
		"REST":      {"--turn-secret", "lab-secret"},
	} {
		t.Run(name, func(t *testing.T) {
			args := []string{"--json", "ice", "gather", "--require", "relay", "--relay-check"}
			for _, u := range uris {
				args = append(args, "--turn", u)
			}
			res := runGather(t, rtckit(ctx, append(args, creds...)...))
			if res.code != 0 {
				t.Fatalf("exit %d: %s\nservers %+v\nrelay checks %+v", res.code, res.stderr, res.report.Servers, res.report.RelayChecks)
			}
			if len(res.report.RelayChecks) != len(uris) {
				t.Errorf("relay checks %+v, want one per listener", res.report.RelayChecks)
			}
			for _, c := range res.report.RelayChecks {
				if !c.Passed {
					t.Errorf("relay check %+v", c)
				}
			}
		})
	}
}

// TestICEGatherRelayCheckRefused: a TURN server that refuses the relay
// check's allocations (a quota of one) fails the check with the reason at
// once, not when the check's deadline passes.
func TestICEGatherRelayCheckRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	uris := startTurnServe(t, ctx, "--quota", "1")
	res := runGather(t, rtckit(ctx, "--json", "ice", "gather", "--relay-check", "--turn",
		strings.Replace(uris[0], "turn:", "turn:alice:wonderland@", 1)))
	if res.code != 6 || len(res.report.RelayChecks) != 1 {
		t.Fatalf("exit %d, relay checks %+v: want 6 and one check; stderr %s", res.code, res.report.RelayChecks, res.stderr)
	}
	if c := res.report.RelayChecks[0]; c.Passed || !strings.Contains(c.Error, "no relay candidate") {
		t.Errorf("relay check %+v, want a failure naming the missing relay candidate", c)
	}
}

// startTurnServe runs `rtckit turn serve` on 127.0.0.1 with the user
// alice:wonderland, loopback peers allowed and extra flags, and returns
// its URIs, UDP and TCP (without credentials).
func startTurnServe(t *testing.T, ctx context.Context, extra ...string) []string {
	t.Helper()
	var ev struct {
		URIs []string `json:"uris"`
	}
	args := append([]string{"--json", "turn", "serve", "--listen", "127.0.0.1", "--port", "0",
		"--user", "alice:wonderland", "--allow-loopback-peers"}, extra...)
	startJSONChild(t, rtckit(ctx, args...), &ev)
	if len(ev.URIs) < 2 {
		t.Fatalf("turn serve URIs %v, want UDP and TCP", ev.URIs)
	}
	return ev.URIs
}
