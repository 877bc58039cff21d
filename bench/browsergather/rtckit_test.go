package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtckit/rtckit/cmd"
	"github.com/rtckit/rtckit/diag/icegather"
	"go.uber.org/goleak"
)

// fakeRTCKitEnv makes the test binary act as an rtckit binary, so that tests
// can pass it as -rtckit: "rtckit" runs the real command tree; the other
// modes are the stubs of fakeRTCKit.
const fakeRTCKitEnv = "BROWSERGATHER_TEST_RTCKIT"

func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv(fakeRTCKitEnv); ok {
		os.Exit(fakeRTCKit(mode, os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// fakeRTCKit is the test binary run as rtckit in mode with args; it returns
// the exit code.
func fakeRTCKit(mode string, args []string) int {
	if mode == "rtckit" {
		return cmd.Main()
	}
	if slices.Equal(args, []string{"version"}) {
		fmt.Println("rtckit fake (go1.26, linux/amd64)")
		return 0
	}
	switch mode {
	case "report": // the fixture report
		b, err := os.ReadFile("testdata/rtckit-report.json")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_, _ = os.Stdout.Write(b)
	case "text": // no --json
		fmt.Println("Candidates")
	case "old-schema":
		fmt.Println(`{"schema": "rtckit.ice.gather/v0"}`)
	case "usage":
		fmt.Fprintln(os.Stderr, "rtckit: unknown flag: --bogus")
		return 2
	case "hang": // until killed
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGUSR1)
		<-sig
	default:
		fmt.Fprintf(os.Stderr, "unknown %s %q\n", fakeRTCKitEnv, mode)
		return 1
	}
	return 0
}

// fakeRTCKitPath returns the test binary, to run as rtckit in mode. Built
// with -race, the binary would wait a second at every exit
// (atexit_sleep_ms); its children do not.
func fakeRTCKitPath(t *testing.T, mode string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeRTCKitEnv, mode)
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	return exe
}

// fixtureReport is testdata/rtckit-report.json.
func fixtureReport(t *testing.T) icegather.Report {
	t.Helper()
	b, err := os.ReadFile("testdata/rtckit-report.json")
	if err != nil {
		t.Fatal(err)
	}
	var rep icegather.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestRTCKitArgs(t *testing.T) {
	specs, err := coturnScenarios(coturnScenarioNames, "127.0.0.1:3478", "u", "p")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]scenarioSpec{}
	for _, s := range specs {
		byName[s.name] = s
	}
	base := []string{"--json", "--timeout", "30s", "ice", "gather"}
	tests := []struct {
		name     string
		servers  []iceServer
		loopback bool
		want     []string
		wantErr  string
	}{
		{name: "host", servers: byName["host"].servers, want: base},
		{name: "host with loopback", servers: byName["host"].servers, loopback: true,
			want: append(slices.Clone(base), "--include-loopback")},
		{name: "stun", servers: byName["stun"].servers,
			want: append(slices.Clone(base), "--stun", "stun:127.0.0.1:3478")},
		{name: "turn-tcp", servers: byName["turn-tcp"].servers,
			want: append(slices.Clone(base), "--turn", "turn:127.0.0.1:3478?transport=tcp", "--turn-user", "u", "--turn-pass", "p")},
		{name: "all", servers: byName["all"].servers, loopback: true,
			want: append(slices.Clone(base), "--include-loopback", "--stun", "stun:127.0.0.1:3478",
				"--turn", "turn:127.0.0.1:3478?transport=udp", "--turn", "turn:127.0.0.1:3478?transport=tcp",
				"--turn-user", "u", "--turn-pass", "p")},
		{name: "two credentials", servers: []iceServer{
			{URLs: []string{"turn:a"}, Username: "u", Credential: "p"},
			{URLs: []string{"turn:b"}, Username: "v", Credential: "p"},
		}, wantErr: "one TURN username"},
		{name: "bad uri", servers: []iceServer{{URLs: []string{"http://a"}}}, wantErr: "scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rtckitArgs(tt.servers, tt.loopback, 30*time.Second)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("args %q, err %v\nwant %q", got, err, tt.want)
			}
		})
	}
}

func TestNewRTCKitRun(t *testing.T) {
	r := newRTCKitRun("all", 2, rtckitResult{report: fixtureReport(t), wall: 61500 * time.Microsecond})
	if r.Gatherer != gathererRTCKit || r.Scenario != "all" || r.Index != 2 {
		t.Errorf("identity = %q %q %d", r.Gatherer, r.Scenario, r.Index)
	}
	for name, tt := range map[string]struct {
		got  *float64
		want float64
	}{
		"first host": {r.FirstHostMS, 3.9}, "first srflx": {r.FirstSrflxMS, 7.5}, "first relay": {r.FirstRelayMS, 9.25},
		"complete": {r.CompleteMS, 3012.5}, "wall": {r.WallMS, 61.5},
	} {
		if tt.got == nil || *tt.got != tt.want {
			t.Errorf("%s = %v, want %v", name, tt.got, tt.want)
		}
	}
	if r.EndOfCandidatesMS != nil || r.SetLocalDescriptionMS != nil {
		t.Error("Chromium-only times set")
	}
	if want := (Counts{Host: 2, Srflx: 1, Relay: 1}); r.Counts != want {
		t.Errorf("counts = %+v, want %+v", r.Counts, want)
	}
	if !r.TimedOut {
		t.Error("a server that timed out does not mark the run timed out")
	}
	wantErr := CandidateError{ElapsedMS: 3010, URL: "turn:127.0.0.1:3478?transport=tcp",
		ErrorText: "timeout: no answer to the TURN Allocate request before the deadline"}
	if len(r.Errors) != 1 || r.Errors[0] != wantErr {
		t.Errorf("errors = %+v, want [%+v]", r.Errors, wantErr)
	}
	if got, want := r.Candidates[3].SDP, "candidate:4 1 udp 16777215 127.0.0.1 50000 typ relay raddr 127.0.0.1 rport 40004"; got != want {
		t.Errorf("relay candidate attribute %q, want %q", got, want)
	}
	if got, want := r.Candidates[1].SDP, "candidate:2 1 udp 2130706431 10.0.0.2 40002 typ host"; got != want {
		t.Errorf("host candidate attribute %q, want %q", got, want)
	}
	if r.Candidates[2].URL != "stun:127.0.0.1:3478" {
		t.Errorf("srflx url %q", r.Candidates[2].URL)
	}
}

func TestCandidateAttributeTCP(t *testing.T) {
	c := icegather.Candidate{Foundation: "9", Component: 1, Protocol: "tcp", Priority: 1, Address: "10.0.0.2", Port: 9, Type: "host", TCPType: "active"}
	if got, want := candidateAttribute(c), "candidate:9 1 tcp 1 10.0.0.2 9 typ host tcptype active"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestGatherRTCKit runs the test binary as a fake rtckit.
func TestGatherRTCKit(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	args := []string{"--json", "ice", "gather", "--turn-pass", "s3cret"}

	t.Run("report", func(t *testing.T) {
		res, err := gatherRTCKit(ctx, fakeRTCKitPath(t, "report"), args, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res.wall <= 0 || res.report.DurationMS != 3012.5 || len(res.report.Candidates) != 4 {
			t.Errorf("wall %v, report %+v", res.wall, res.report)
		}
		v, err := rtckitVersion(ctx, fakeRTCKitPath(t, "report"))
		if err != nil || v != "rtckit fake (go1.26, linux/amd64)" {
			t.Errorf("version %q, err %v", v, err)
		}
	})
	for _, tt := range []struct{ mode, wantErr string }{
		{"usage", "rtckit ice gather: exit status 2: rtckit: unknown flag: --bogus"},
		{"text", "decode its report"},
		{"old-schema", `schema "rtckit.ice.gather/v0"`},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			_, err := gatherRTCKit(ctx, fakeRTCKitPath(t, tt.mode), args, time.Second)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows the TURN password: %v", err)
			}
		})
	}
	t.Run("hang", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		if _, err := gatherRTCKit(ctx, fakeRTCKitPath(t, "hang"), args, time.Second); err == nil {
			t.Fatal("a hanging rtckit was not stopped")
		}
	})
	t.Run("missing binary", func(t *testing.T) {
		if _, err := rtckitVersion(ctx, t.TempDir()+"/rtckit"); err == nil {
			t.Fatal("no error for a missing binary")
		}
	})
}
