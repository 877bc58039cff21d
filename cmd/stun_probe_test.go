package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rtckit/rtckit/diag/stunprobe"
	"github.com/rtckit/rtckit/internal/testenv"
	"github.com/rtckit/rtckit/stunserver"
)

// runCLI runs rtckit in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLIContext(t, context.Background(), args...)
}

// runCLIContext runs rtckit in-process under ctx, whose cancellation stands
// for SIGINT or SIGTERM (Main's signal.NotifyContext).
func runCLIContext(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(ctx, Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, args)
	return code, out.String(), errOut.String()
}

// interruptOnFirstPacket returns a silent UDP server on loopback and a
// context cancelled as soon as the server receives its first packet: an
// interruption while a command waits for the network.
func interruptOnFirstPacket(t *testing.T) (context.Context, *net.UDPConn) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		if _, _, err := conn.ReadFrom(buf); err == nil {
			cancel()
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = conn.Close()
		<-done
	})
	return ctx, conn
}

// startStunServer serves STUN in-process on loopback; alternate enables RFC 5780.
func startStunServer(t *testing.T, alternate bool) stunserver.Addrs {
	t.Helper()
	cfg := stunserver.Config{PrimaryIP: netip.MustParseAddr("127.0.0.1"), TCP: true, RateLimit: -1}
	if alternate {
		cfg.AlternateIP, cfg.EnableChangeRequest = netip.MustParseAddr("127.0.0.2"), true
	}
	srv, err := stunserver.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Serve(t, srv.Serve)
	return srv.Addrs()
}

func TestStunProbeUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad scheme", []string{"stun", "probe", "-s", "http://example.com"}, "scheme"},
		{"bad port", []string{"stun", "probe", "-s", "stun:127.0.0.1:99999"}, "port"},
		{"authority form", []string{"stun", "probe", "-s", "stun://127.0.0.1"}, "stun://"},
		{"turn server", []string{"stun", "probe", "-s", "turn:127.0.0.1"}, "TURN server"},
		{"unknown transport", []string{"stun", "probe", "-s", "stun:127.0.0.1", "--transport", "sctp"}, "unknown transport"},
		{"both families excluded", []string{"stun", "probe", "-s", "stun:127.0.0.1", "-4", "-6"}, "exclude each other"},
		{"unknown flag", []string{"stun", "probe", "--bogus"}, "unknown flag"},
		{"no server of the family", []string{"stun", "probe", "-s", "stun:127.0.0.1", "-6"}, "no server has an address of that family"},
		{"stray argument", []string{"stun", "probe", "extra"}, "unknown command"},
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

func TestStunProbeAgainstRFC5780Server(t *testing.T) {
	addrs := startStunServer(t, true)
	code, stdout, stderr := runCLI(t, "--json", "stun", "probe", "-4", "-s", "stun:"+addrs.Primary.String(), "--hairpin")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	var r stunprobe.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("decode %q: %v", stdout, err)
	}
	if r.Schema != stunprobe.SchemaVersion || r.Outcome != stunprobe.OutcomeOK || len(r.Families) != 1 {
		t.Fatalf("report = %+v", r)
	}
	f := r.Families[0]
	if f.Mapping.Behavior != stunprobe.EndpointIndependent || f.Filtering.Behavior != stunprobe.EndpointIndependent {
		t.Errorf("mapping %s, filtering %s; want endpoint-independent on loopback", f.Mapping.Behavior, f.Filtering.Behavior)
	}
	if r.TCP == nil || !*r.TCP {
		t.Errorf("TCP = %v, want a TCP binding", r.TCP)
	}
}

func TestStunProbeTextEndsWithVerdict(t *testing.T) {
	addrs := startStunServer(t, true)
	code, stdout, stderr := runCLI(t, "stun", "probe", "-4", "--transport", "udp", "-s", "stun:"+addrs.Primary.String())
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "Verdict (IPv4): open internet (no NAT)") {
		t.Errorf("last line %q, want the verdict", last)
	}
}

func TestStunProbeInconclusiveWithoutRFC5780(t *testing.T) {
	addrs := startStunServer(t, false)
	code, stdout, _ := runCLI(t, "stun", "probe", "-4", "--transport", "udp", "-s", "stun:"+addrs.Primary.String())
	if code != ExitInconclusive {
		t.Errorf("exit %d, want %d (inconclusive); output:\n%s", code, ExitInconclusive, stdout)
	}
}

func TestStunProbeUnreachable(t *testing.T) {
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	code, _, stderr := runCLI(t, "stun", "probe", "--transport", "udp", "--timeout", "500ms", "-s", "stun:"+silent.LocalAddr().String())
	if code != ExitUnreachable || !strings.Contains(stderr, "unreachable") {
		t.Errorf("exit %d, stderr %q; want %d", code, stderr, ExitUnreachable)
	}
}

func TestStunProbeIPv6Loopback(t *testing.T) {
	srv, err := stunserver.Listen(stunserver.Config{PrimaryIP: netip.MustParseAddr("::1"), TCP: true, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Serve(t, srv.Serve)
	_, stdout, stderr := runCLI(t, "--json", "stun", "probe", "-s", "stun:"+srv.Addrs().Primary.String())
	var r stunprobe.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("decode %q: %v (stderr %s)", stdout, err, stderr)
	}
	if len(r.Families) != 1 || r.Families[0].Family != "ipv6" || len(r.Families[0].Public) != 1 {
		t.Fatalf("families = %+v, want one IPv6 family with a public address", r.Families)
	}
	if got := netip.MustParseAddrPort(r.Families[0].Public[0]).Addr(); got != netip.MustParseAddr("::1") {
		t.Errorf("public address %s, want ::1", got)
	}
	for _, b := range r.Servers[0].Bindings {
		if b.Status != stunprobe.StatusOK || b.Family != "ipv6" {
			t.Errorf("binding %+v, want ok over IPv6", b)
		}
	}
}

// TestStunProbeInterrupted: SIGINT or SIGTERM while the probe waits for a
// silent server is an interruption (exit 130, outcome "interrupted"), not
// "every server unreachable"; the partial report is still printed.
func TestStunProbeInterrupted(t *testing.T) {
	for _, asJSON := range []bool{true, false} {
		t.Run(map[bool]string{true: "json", false: "text"}[asJSON], func(t *testing.T) {
			ctx, silent := interruptOnFirstPacket(t)
			args := []string{"--timeout", "20s", "stun", "probe", "-4", "--transport", "udp", "-s", "stun:" + silent.LocalAddr().String()}
			if asJSON {
				args = append([]string{"--json"}, args...)
			}
			start := time.Now()
			code, stdout, stderr := runCLIContext(t, ctx, args...)
			if code != ExitInterrupted || !strings.Contains(stderr, "interrupted") {
				t.Fatalf("exit %d, stderr %q; want %d saying interrupted", code, stderr, ExitInterrupted)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s after the interruption", d)
			}
			if !asJSON {
				if !strings.Contains(stdout, "interrupted") || strings.Contains(stdout, "UDP blocked") {
					t.Errorf("text output does not say it was interrupted:\n%s", stdout)
				}
				return
			}
			var r stunprobe.Report
			if err := json.Unmarshal([]byte(stdout), &r); err != nil {
				t.Fatalf("decode %q: %v", stdout, err)
			}
			if r.Outcome != stunprobe.OutcomeInterrupted || len(r.Servers) != 1 {
				t.Errorf("outcome %q, servers %+v; want interrupted with the server listed", r.Outcome, r.Servers)
			}
		})
	}
}
