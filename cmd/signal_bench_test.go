package cmd

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	rtcsignal "github.com/rtckit/rtckit/signal"
	"github.com/rtckit/rtckit/signal/loadgen"
)

func TestSignalBenchUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"remote URL", []string{"--url", "ws://192.0.2.1:8080/ws"}, "not a loopback address"},
		{"remote name", []string{"--url", "wss://example.com/ws"}, "not a loopback address"},
		{"not ws", []string{"--url", "http://127.0.0.1:8080/"}, "not a ws://"},
		{"negative pairs", []string{"--pairs", "-1"}, "must not be negative"},
		{"nothing to do", []string{"--pairs", "0"}, "nothing to do"},
		{"negative rate", []string{"--rate", "-5"}, "must not be negative"},
		{"zero window", []string{"--window", "0"}, "at least 1"},
		{"zero duration", []string{"--duration", "0s"}, "must be positive"},
		{"churn without pairs", []string{"--pairs", "0", "--idle", "5", "--churn", "1"}, "--churn needs --pairs"},
		{"bad source", []string{"--source-ip", "127.0.0.x"}, "not an address"},
		{"backwards range", []string{"--source-ip", "127.0.0.9-127.0.0.2"}, "not a range"},
		{"not a number", []string{"--pairs", "many"}, "invalid argument"},
		{"unknown engine", []string{"--engine", "threads"}, "--engine"},
		{"unknown protocol", []string{"--protocol", "sip"}, "--protocol"},
		{"loop with churn", []string{"--engine", "loop", "--churn", "5"}, "no churn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, append([]string{"signal", "bench"}, tt.args...)...)
			if code != ExitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", code, stderr, ExitUsage, tt.want)
			}
		})
	}
}

func TestParseSourceIPs(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		in   []string
		want []netip.Addr
	}{
		{nil, nil},
		{[]string{"127.0.0.2"}, []netip.Addr{a("127.0.0.2")}},
		{[]string{"127.0.0.2-127.0.0.4", "::1"}, []netip.Addr{a("127.0.0.2"), a("127.0.0.3"), a("127.0.0.4"), a("::1")}},
		{[]string{"127.0.0.255-127.0.1.0"}, []netip.Addr{a("127.0.0.255"), a("127.0.1.0")}},
	}
	for _, tt := range tests {
		got, err := parseSourceIPs(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("parseSourceIPs(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := parseSourceIPs([]string{"127.0.0.0-127.0.2.0"}); err == nil {
		t.Error("a range of 513 addresses was accepted")
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.3.2.1": true, "::1": true, "localhost": true, "LocalHost": true,
		"10.0.0.1": false, "0.0.0.0": false, "example.com": false, "localhost.example.com": false,
	} {
		if got := isLoopbackHost(host); got != want {
			t.Errorf("isLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestSignalBenchRun(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv, err := rtcsignal.NewServer(rtcsignal.Config{Hub: rtcsignal.HubConfig{Rate: -1}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), signalServeWait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.Close()
	}()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
	code, stdout, stderr := runCLI(t, "--json", "-v", "signal", "bench", "--url", url,
		"--pairs", "5", "--rate", "250", "--duration", "400ms", "--idle", "3", "--source-ip", "127.0.0.1")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if strings.Contains(stderr, "lost") {
		t.Logf("stderr: %s", stderr)
	}
	var rep SignalBenchReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v in %s", err, stdout)
	}
	if rep.Schema != signalBenchSchema || rep.URL != url || rep.Pairs != 5 || rep.Connections != 13 {
		t.Errorf("report = %+v", rep)
	}
	if rep.Sent == 0 || rep.Delivered != rep.Sent || rep.Latency == nil || rep.Latency.P99 <= 0 {
		t.Errorf("sent %d, delivered %d, latency %+v", rep.Sent, rep.Delivered, rep.Latency)
	}
	if g := rep.Generator; g == nil || g.CPU <= 0 || g.CPUPerMessage <= 0 || g.CoreShare <= 0 {
		t.Errorf("generator usage %+v, want its CPU measured", rep.Generator)
	}
}

func TestSignalBenchText(t *testing.T) {
	rep := SignalBenchReport{Schema: signalBenchSchema, URL: "ws://127.0.0.1:8080/ws", Result: loadgen.Result{
		Pairs: 100, Rate: 45000, PayloadBytes: 512, Elapsed: 10 * time.Second, Connections: 200, Engine: loadgen.EngineLoop,
		Sent: 450000, Delivered: 449990, Lost: 10, MessagesPerSecond: 44999,
		Latency: &loadgen.Latency{Samples: 449990, P50: 630 * time.Microsecond, P90: time.Millisecond,
			P99: 2880 * time.Microsecond, Max: 12 * time.Millisecond},
		Hub: &loadgen.HubUsage{PID: 7, RSSBefore: 10 << 20, RSSAfter: 11 << 20, BytesPerConnection: 5242.88,
			CPU: 5 * time.Second, CPUPerMessage: 11111, MessagesPerCPUSecond: 89998},
		Generator: &loadgen.GeneratorUsage{CPU: 9900 * time.Millisecond, CPUPerMessage: 22000, CoreShare: 0.99},
		Errors:    loadgen.Errors{Server: map[string]int64{"rate-limited": 2, "queue-full": 1}},
	}}
	want := `signal bench ws://127.0.0.1:8080/ws: 100 pairs, target 45000 msg/s, 512-byte offers, 0 idle, 10s
  engine               loop
  connections held     200
  messages             450000 sent, 449990 delivered, 10 lost
  messages/s           44999
  latency              p50 0.63 ms  p90 1.00 ms  p99 2.88 ms  max 12.00 ms
  hub memory           5.12 KiB per connection (RSS 10.0 → 11.0 MiB)
  hub CPU              5s, 11.11 µs per message, 89998 messages per CPU-second
  generator CPU        9.9s, 22.00 µs per message, 99% of a core
  errors               0 dial, 0 send, 0 disconnects, queue-full 1, rate-limited 2
`
	if got := signalBenchText(rep); got != want {
		t.Errorf("text:\n%s\nwant:\n%s", got, want)
	}
	rep.Hub, rep.Latency, rep.Errors, rep.Rate = nil, nil, loadgen.Errors{}, 0
	got := signalBenchText(rep)
	for _, s := range []string{"as fast as possible", "not measured", "none delivered", "errors               none"} {
		if !strings.Contains(got, s) {
			t.Errorf("text without hub lacks %q:\n%s", s, got)
		}
	}
}
