package cmd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/rtckit/rtckit/internal/testenv"
	"github.com/rtckit/rtckit/turnserver"
)

const (
	// turnServeWait bounds every wait in the turn serve tests.
	turnServeWait = 10 * time.Second
	// uclientTimeout bounds one run of coturn's turnutils_uclient, which
	// takes a few seconds and can hang.
	uclientTimeout = 60 * time.Second
)

// turnServe is `rtckit turn serve` running in-process.
type turnServe struct {
	t      *testing.T
	cancel context.CancelFunc
	lines  chan string
	exit   chan int
	// done is closed once Run has returned.
	done   chan struct{}
	errOut *lockedBuffer
}

// startTurnServe runs `rtckit --json turn serve args...` and returns its
// "listening" event.
func startTurnServe(t *testing.T, args ...string) (*turnServe, TurnServeEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	ts := &turnServe{t: t, cancel: cancel, lines: make(chan string, 8), exit: make(chan int, 1), done: make(chan struct{}), errOut: &lockedBuffer{}}
	go func() {
		defer close(ts.done)
		code := Run(ctx, Streams{In: strings.NewReader(""), Out: pw, ErrOut: ts.errOut},
			append([]string{"--json", "turn", "serve"}, args...))
		_ = pw.Close()
		ts.exit <- code
	}()
	go func() {
		defer close(ts.lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			ts.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = pr.Close()
		select {
		case <-ts.done:
		case <-time.After(turnServeWait):
			t.Errorf("rtckit turn serve did not return within %s of cancel", turnServeWait)
		}
	})
	ev := ts.next()
	if ev.Event != "listening" {
		t.Fatalf("first event %+v, want listening", ev)
	}
	return ts, ev
}

// next returns the next JSON event.
func (ts *turnServe) next() TurnServeEvent {
	ts.t.Helper()
	select {
	case line, ok := <-ts.lines:
		if !ok {
			ts.t.Fatalf("output ended early; stderr: %s", ts.errOut.String())
		}
		var ev TurnServeEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			ts.t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		if ev.Schema != turnServeSchema {
			ts.t.Errorf("schema %q, want %q", ev.Schema, turnServeSchema)
		}
		return ev
	case <-time.After(turnServeWait):
		ts.t.Fatalf("no output; stderr: %s", ts.errOut.String())
	}
	return TurnServeEvent{}
}

// stop cancels the command and returns its "stopped" event and exit code.
func (ts *turnServe) stop() (TurnServeEvent, int) {
	ts.t.Helper()
	ts.cancel()
	ev := ts.next()
	if ev.Event != "stopped" || ev.Stats == nil {
		ts.t.Fatalf("last event %+v, want stopped with stats", ev)
	}
	select {
	case code := <-ts.exit:
		if _, ok := <-ts.lines; ok {
			ts.t.Error("output after the stopped event")
		}
		return ev, code
	case <-time.After(turnServeWait):
		ts.t.Fatal("rtckit turn serve did not stop after cancel")
	}
	return ev, -1
}

// allocateUDP allocates a relay with a pion client over UDP and releases it.
func allocateUDP(t *testing.T, server netip.AddrPort, user, pass string) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server.String(), TURNServerAddr: server.String(),
		Conn: conn, Username: user, Password: pass,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), turnServeWait)
	defer cancel()
	relay, err := c.AllocateWithContext(ctx)
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	defer relay.Close()
	ap, _ := netip.ParseAddrPort(relay.LocalAddr().String())
	return ap
}

func TestTurnServeJSON(t *testing.T) {
	verifyNoLeaks(t)

	ts, ev := startTurnServe(t, "--port", "0", "--user", "alice:wonderland", "--min-port", "0", "--max-port", "0")
	lo := netip.MustParseAddr("127.0.0.1")
	if ev.UDP.Addr() != lo || ev.UDP.Port() == 0 || ev.TCP != ev.UDP || ev.TLS.IsValid() {
		t.Errorf("listeners %+v", ev.Addrs)
	}
	wantURIs := []string{"turn:" + ev.UDP.String() + "?transport=udp", "turn:" + ev.TCP.String() + "?transport=tcp"}
	if strings.Join(ev.URIs, " ") != strings.Join(wantURIs, " ") {
		t.Errorf("uris %q, want %q", ev.URIs, wantURIs)
	}
	wantInfo := turnserver.Info{Realm: "rtckit", RelayIP: lo, QuotaPerUser: 10, MaxPermissions: 64, Users: 1}
	if ev.Info != wantInfo {
		t.Errorf("info %+v, want %+v", ev.Info, wantInfo)
	}

	relay := allocateUDP(t, ev.UDP, "alice", "wonderland")
	if relay.Addr() != lo {
		t.Errorf("relayed address %v", relay)
	}

	ev, code := ts.stop()
	if code != ExitOK {
		t.Errorf("exit code %d, want %d; stderr: %s", code, ExitOK, ts.errOut.String())
	}
	if s := ev.Stats; s.Allocations != 1 || s.AllocationsActive != 0 || s.AuthFailures != 0 {
		t.Errorf("stopped stats %+v", s)
	}
}

func TestTurnServeText(t *testing.T) {
	// A context that is already done: the server binds, reports, and stops.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut lockedBuffer
	code := Run(ctx, Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		[]string{"turn", "serve", "--port", "0", "--auth-secret", "s", "--quota", "0", "--allow-private-peers"})
	if code != ExitOK {
		t.Fatalf("exit code %d; stderr: %s", code, errOut.String())
	}
	got := out.String()
	for _, want := range []string{"TURN server listening\n", "  udp          127.0.0.1:", "  credentials  TURN REST secret\n",
		"  quota        none\n", "  permissions  64 peers per allocation\n", "  peers        public, private\n", "relay        127.0.0.1, ports 49152-65535\n",
		"TURN server stopped: 0 allocations"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestTurnServeTextRendering(t *testing.T) {
	ap := netip.MustParseAddrPort
	addrs := turnserver.Addrs{UDP: ap("192.0.2.1:3478"), TCP: ap("192.0.2.1:3478"), TLS: ap("192.0.2.1:5349")}
	ev := TurnServeEvent{
		Schema: turnServeSchema, Event: "listening", Addrs: addrs, URIs: addrs.URIs(),
		Info: turnserver.Info{
			Realm: "lab", RelayIP: netip.MustParseAddr("10.0.0.5"), ExternalIP: netip.MustParseAddr("203.0.113.7"),
			MinPort: 50000, MaxPort: 50100, QuotaPerUser: 1, MaxPermissions: 1, AllowLoopbackPeers: true, Users: 2, RESTAuth: true,
		},
	}
	want := `TURN server listening
  udp          192.0.2.1:3478
  tcp          192.0.2.1:3478
  tls          192.0.2.1:5349
  realm        lab
  credentials  2 users, TURN REST secret
  quota        1 allocation per user
  permissions  1 peer per allocation
  relay        10.0.0.5, ports 50000-50100, announced as 203.0.113.7
  peers        public, loopback
  uris         turn:192.0.2.1:3478?transport=udp
               turn:192.0.2.1:3478?transport=tcp
               turns:192.0.2.1:5349?transport=tcp
`
	if got := turnServeText(ev); got != want {
		t.Errorf("listening text:\n%s\nwant:\n%s", got, want)
	}

	ev.Event = "stopped"
	ev.Stats = &turnserver.Stats{Allocations: 9, AllocationsActive: 1, AuthFailures: 2, QuotaRejections: 3, PeerDenials: 4,
		Permissions: 5, PermissionRefusals: 2, Channels: 6, PacketsToPeers: 7, PacketsFromPeers: 8, BytesToPeers: 70, BytesFromPeers: 80,
		TCPAccepted: 10, TCPRejected: 1, Errors: 0}
	want = "TURN server stopped: 9 allocations (1 still active), 2 auth failures, 3 quota rejections, 4 peer denials, " +
		"5 permissions (2 refused over the limit), 6 channels, 7/8 packets to/from peers (70/80 bytes), 10 TCP connections (1 refused), 0 errors\n"
	if got := turnServeText(ev); got != want {
		t.Errorf("stopped text:\n%s\nwant:\n%s", got, want)
	}

	b, err := json.Marshal(TurnServeEvent{Schema: turnServeSchema, Event: "listening",
		Addrs: turnserver.Addrs{UDP: ap("127.0.0.1:3478")}, URIs: []string{"turn:127.0.0.1:3478?transport=udp"},
		Info: turnserver.Info{Realm: "rtckit", RelayIP: netip.MustParseAddr("127.0.0.1"), QuotaPerUser: 10, Users: 1}})
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"schema":"rtckit.turn.serve/v1","event":"listening","udp":"127.0.0.1:3478",` +
		`"uris":["turn:127.0.0.1:3478?transport=udp"],"realm":"rtckit","relay_ip":"127.0.0.1","quota_per_user":10,` +
		`"max_permissions":0,"allow_loopback_peers":false,"allow_private_peers":false,"users":1,"rest_auth":false}`
	if string(b) != wantJSON {
		t.Errorf("JSON %s\nwant %s", b, wantJSON)
	}
}

func TestTurnServeCredentialFiles(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(users, []byte("# lab\nalice:wonderland\nbob:builder\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte("north-wind\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, ev := startTurnServe(t, "--port", "0", "--users-file", users, "--user", "carol:x", "--auth-secret-file", secret)
	if ev.Users != 3 || !ev.RESTAuth {
		t.Errorf("info %+v, want 3 users and REST auth", ev.Info)
	}
	allocateUDP(t, ev.UDP, "bob", "builder")
	if _, code := ts.stop(); code != ExitOK {
		t.Errorf("exit code %d; stderr: %s", code, ts.errOut.String())
	}
}

func TestTurnServeUsageErrors(t *testing.T) {
	dir := t.TempDir()
	badUsers := filepath.Join(dir, "bad-users")
	if err := os.WriteFile(badUsers, []byte("alice:a\nsecret-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dupUsers := filepath.Join(dir, "dup-users")
	if err := os.WriteFile(dupUsers, []byte("alice:a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptySecret := filepath.Join(dir, "empty-secret")
	if err := os.WriteFile(emptySecret, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	u := []string{"--user", "u:p"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no credentials", nil, "no credentials: give --user, --users-file or --auth-secret"},
		{"bad port", append([]string{"--port", "abc"}, u...), "invalid argument"},
		{"relay ip of another host", append([]string{"--listen", "127.0.0.1", "--relay-ip", "192.0.2.5"}, u...), "not an address of this host"},
		{"port out of range", append([]string{"--port", "70000"}, u...), "port"},
		{"bad listen", append([]string{"--listen", "turn.example.com"}, u...), "not an IP address"},
		{"empty listen", append([]string{"--listen", ""}, u...), "--listen: an IP address is required"},
		{"wildcard", append([]string{"--listen", "0.0.0.0"}, u...), "wildcard"},
		{"bad relay IP", append([]string{"--relay-ip", "x"}, u...), "--relay-ip"},
		{"bad external IP", append([]string{"--external-ip", "x"}, u...), "--external-ip"},
		{"relay family", append([]string{"--relay-ip", "::1"}, u...), "different families"},
		{"user without password", []string{"--user", "alice"}, "want user:password"},
		{"user with empty password", []string{"--user", "alice:"}, "empty password"},
		{"user twice", []string{"--user", "alice:a", "--user", "alice:b"}, "defined twice (--user and --user)"},
		{"user in file and flag", []string{"--users-file", dupUsers, "--user", "alice:b"}, "defined twice (--users-file and --user)"},
		{"bad users file", []string{"--users-file", badUsers}, "line 2"},
		{"missing users file", []string{"--users-file", missing}, "--users-file"},
		{"two secrets", []string{"--auth-secret", "a", "--auth-secret-file", emptySecret}, "exclude each other"},
		{"empty secret file", []string{"--auth-secret-file", emptySecret}, "is empty"},
		{"missing secret file", []string{"--auth-secret-file", missing}, "--auth-secret-file"},
		{"TLS port without certificate", append([]string{"--tls-port", "5349"}, u...), "need --tls-cert"},
		{"TLS key without certificate", append([]string{"--tls-key", "k.pem"}, u...), "need --tls-cert"},
		{"TLS certificate without key", append([]string{"--tls-cert", "c.pem"}, u...), "--tls-cert needs --tls-key"},
		{"TLS certificate missing", append([]string{"--tls-cert", missing, "--tls-key", missing}, u...), "TLS certificate"},
		{"no listener", append([]string{"--udp=false", "--tcp=false"}, u...), "nothing to listen on"},
		{"negative quota", append([]string{"--quota", "-1"}, u...), "--quota"},
		{"half a port range", append([]string{"--min-port", "0"}, u...), "--min-port and --max-port"},
		{"inverted port range", append([]string{"--min-port", "60000", "--max-port", "50000"}, u...), "relay port range"},
		{"unknown flag", append([]string{"--bogus"}, u...), "unknown flag"},
		{"stray argument", append([]string{"extra"}, u...), "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut lockedBuffer
			args := append([]string{"turn", "serve", "--port", "0"}, tt.args...)
			code := Run(context.Background(), Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, args)
			if code != ExitUsage {
				t.Errorf("exit code %d, want %d (stderr %q)", code, ExitUsage, errOut.String())
			}
			if !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tt.want)
			}
			if strings.Contains(errOut.String(), "secret-password") {
				t.Errorf("stderr quotes a password: %q", errOut.String())
			}
			if out.String() != "" {
				t.Errorf("stdout %q, want nothing", out.String())
			}
		})
	}
}

// TestTurnServeCoturnClient relays through `rtckit turn serve` with coturn's
// own test client, turnutils_uclient, to turnutils_peer (a UDP echo peer):
// over UDP, TCP and TLS with long-term credentials, and with TURN REST
// credentials that the client derives from the shared secret.
func TestTurnServeCoturnClient(t *testing.T) {
	testenv.RequireProgram(t, "turnutils_uclient", "turnutils_peer")
	cert, key := testenv.WriteSelfSignedCert(t, t.TempDir())
	ts, ev := startTurnServe(t, "--port", "0", "--tls-port", "0", "--tls-cert", cert, "--tls-key", key,
		"--user", "u:p", "--user", "t:p", "--user", "s:p", "--auth-secret", "north-wind", "--allow-loopback-peers")
	peerPort := startTurnutilsPeer(t)

	const clients, messages = 2, 50
	common := []string{"-e", "127.0.0.1", "-r", strconv.Itoa(peerPort), "-n", strconv.Itoa(messages),
		"-m", strconv.Itoa(clients), "-c", "-z", "5"}
	runs := []struct {
		name string
		args []string
		port uint16
	}{
		// A user per run: the runs overlap, and uclient's allocations for
		// one user at once could reach the per-user quota.
		{"udp", []string{"-u", "u", "-w", "p"}, ev.UDP.Port()},
		{"tcp", []string{"-t", "-u", "t", "-w", "p"}, ev.TCP.Port()},
		{"tls", []string{"-t", "-S", "-u", "s", "-w", "p"}, ev.TLS.Port()},
		{"rest", []string{"-u", "carol", "-W", "north-wind"}, ev.UDP.Port()},
	}
	// The runs take seconds each, mostly waiting: run them all at once
	// (t.Parallel would be bounded by GOMAXPROCS), then check each.
	type result struct {
		out string
		err error
	}
	results := make([]result, len(runs))
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Go(func() {
			args := append(append(r.args, common...), "-p", strconv.Itoa(int(r.port)), "127.0.0.1")
			results[i].out, results[i].err = runUclient(args...)
		})
	}
	wg.Wait()
	for i, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			out, err := results[i].out, results[i].err
			if err != nil {
				t.Fatalf("turnutils_uclient %s: %v\n%s", strings.Join(r.args, " "), err, out)
			}
			sent, received, lost := uclientTotals(t, out)
			if want := clients * messages; sent != want || received != want || lost != 0 {
				t.Errorf("sent %d, received %d, lost %d; want %d, %d, 0\n%s", sent, received, lost, want, want, out)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		args := append([]string{"-u", "u", "-w", "wrong"}, common...)
		args = append(args, "-m", "1", "-p", strconv.Itoa(int(ev.UDP.Port())), "127.0.0.1")
		if out, err := runUclient(args...); err == nil {
			t.Errorf("turnutils_uclient with a wrong password succeeded:\n%s", out)
		}
	})

	stopped, code := ts.stop()
	if code != ExitOK {
		t.Errorf("exit code %d; stderr: %s", code, ts.errOut.String())
	}
	s := stopped.Stats
	want := uint64(len(runs) * clients * messages)
	// uclient makes more than one allocation per client; every one must be
	// released at the end.
	if s.Allocations < uint64(len(runs)*clients) || s.AllocationsActive != 0 || s.AuthFailures == 0 ||
		s.PacketsToPeers != want || s.PacketsFromPeers != want || s.PeerDenials != 0 {
		t.Errorf("stopped stats %+v, want at least %d allocations and %d packets each way", s, len(runs)*clients, want)
	}
}

// runUclient runs turnutils_uclient under uclientTimeout.
func runUclient(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), uclientTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "turnutils_uclient", args...).CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("timed out after %v: %w", uclientTimeout, err)
	}
	return string(out), err
}

var (
	uclientMsgs = regexp.MustCompile(`start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)`)
	uclientLost = regexp.MustCompile(`Total lost packets (\d+)`)
)

// uclientTotals reads the final counters of turnutils_uclient's output.
func uclientTotals(t *testing.T, out string) (sent, received, lost int) {
	t.Helper()
	m := uclientMsgs.FindAllStringSubmatch(out, -1)
	l := uclientLost.FindStringSubmatch(out)
	if len(m) == 0 || l == nil {
		t.Fatalf("no totals in turnutils_uclient output:\n%s", out)
	}
	last := m[len(m)-1]
	sent, _ = strconv.Atoi(last[1])
	received, _ = strconv.Atoi(last[2])
	lost, _ = strconv.Atoi(l[1])
	return sent, received, lost
}

// startTurnutilsPeer runs coturn's UDP echo peer on a free loopback port and
// returns the port once the peer echoes.
func startTurnutilsPeer(t *testing.T) int {
	t.Helper()
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	free, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := free.LocalAddr().(*net.UDPAddr).Port
	_ = free.Close()

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "turnutils_peer", "-L", "127.0.0.1", "-p", strconv.Itoa(port))
	var log lockedBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait() // killed by the cancel
	})

	// Wait for the echo of a probe, resending it in case the peer was not
	// bound yet.
	deadline := time.Now().Add(turnServeWait)
	buf := make([]byte, 64)
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	for time.Now().Before(deadline) {
		if _, err := probe.WriteToUDP([]byte("probe"), to); err != nil {
			t.Fatal(err)
		}
		if err := probe.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if n, _, err := probe.ReadFromUDP(buf); err == nil && string(buf[:n]) == "probe" {
			return port
		}
	}
	t.Fatalf("turnutils_peer on port %d did not echo; log:\n%s", port, log.String())
	return 0
}
