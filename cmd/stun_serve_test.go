package cmd

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"go.uber.org/goleak"

	"github.com/rtckit/rtckit/stunserver"
)

// stunServeWait bounds every wait in the stun serve tests.
const stunServeWait = 5 * time.Second

// lockedBuffer is a strings.Builder safe for a writer and a later reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestStunServeJSON(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	defer pr.Close()
	var errOut lockedBuffer
	exit := make(chan int, 1)
	go func() {
		code := Run(ctx, Streams{In: strings.NewReader(""), Out: pw, ErrOut: &errOut},
			[]string{"--json", "stun", "serve", "--listen", "127.0.0.1", "--port", "0", "--tcp", "--software", "cmd-test"})
		_ = pw.Close()
		exit <- code
	}()
	lines := make(chan string, 8)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() StunServeEvent {
		t.Helper()
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("output ended early; stderr: %s", errOut.String())
			}
			var ev StunServeEvent
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("not a JSON line: %q: %v", line, err)
			}
			if ev.Schema != stunServeSchema {
				t.Errorf("schema %q, want %q", ev.Schema, stunServeSchema)
			}
			return ev
		case <-time.After(stunServeWait):
			t.Fatalf("no output; stderr: %s", errOut.String())
		}
		return StunServeEvent{}
	}

	ev := next()
	if ev.Event != "listening" || ev.Primary.Addr() != netip.MustParseAddr("127.0.0.1") || ev.Primary.Port() == 0 ||
		ev.TCP != ev.Primary || ev.AltIPAltPort.IsValid() || ev.ChangeRequest || ev.RateLimit != stunserver.DefaultRateLimit {
		t.Fatalf("listening event %+v", ev)
	}

	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if _, err := c.WriteToUDPAddrPort(req.Raw, ev.Primary); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(stunServeWait)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	resp := new(stun.Message)
	if err := stun.Decode(buf[:n], resp); err != nil {
		t.Fatal(err)
	}
	var mapped stun.XORMappedAddress
	if err := mapped.GetFrom(resp); err != nil {
		t.Fatal(err)
	}
	if mapped.Port != c.LocalAddr().(*net.UDPAddr).Port {
		t.Errorf("mapped %v, want %v", mapped, c.LocalAddr())
	}
	var sw stun.Software
	if err := sw.GetFrom(resp); err != nil || sw.String() != "cmd-test" {
		t.Errorf("SOFTWARE %q (%v), want cmd-test", sw, err)
	}

	cancel()
	ev = next()
	if ev.Event != "stopped" || ev.Stats == nil || ev.Stats.Responses != 1 || ev.Stats.Requests != 1 {
		t.Errorf("stopped event %+v (stats %+v)", ev, ev.Stats)
	}
	select {
	case code := <-exit:
		if code != ExitOK {
			t.Errorf("exit code %d, want %d; stderr: %s", code, ExitOK, errOut.String())
		}
	case <-time.After(stunServeWait):
		t.Fatal("rtckit stun serve did not stop after cancel")
	}
	if _, ok := <-lines; ok {
		t.Error("output after the stopped event")
	}
}

func TestStunServeText(t *testing.T) {
	// A context that is already done: the server binds, reports, and stops.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut lockedBuffer
	code := Run(ctx, Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		[]string{"stun", "serve", "--port", "0", "--rate", "0"})
	if code != ExitOK {
		t.Fatalf("exit code %d; stderr: %s", code, errOut.String())
	}
	got := out.String()
	for _, want := range []string{"STUN server listening\n", "  primary          udp 127.0.0.1:", "rate limit       none", "STUN server stopped: 0 requests"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestStunServeTextRendering(t *testing.T) {
	ap := netip.MustParseAddrPort
	ev := StunServeEvent{
		Schema: stunServeSchema, Event: "listening",
		Addrs: stunserver.Addrs{
			Primary: ap("192.0.2.1:3478"), AltPort: ap("192.0.2.1:3479"),
			AltIP: ap("192.0.2.2:3478"), AltIPAltPort: ap("192.0.2.2:3479"), TCP: ap("192.0.2.1:3478"),
		},
		ChangeRequest: true, RateLimit: 20, RateBurst: 40,
	}
	want := `STUN server listening
  primary          udp 192.0.2.1:3478
  alternate port   udp 192.0.2.1:3479
  alternate IP     udp 192.0.2.2:3478
  other address    udp 192.0.2.2:3479
  tcp              192.0.2.1:3478
  change request   honoured
  rate limit       20/s per source, burst 40
`
	if got := stunServeText(ev); got != want {
		t.Errorf("listening text:\n%s\nwant:\n%s", got, want)
	}

	ev.Event = "stopped"
	ev.Stats = &stunserver.Stats{Requests: 9, Responses: 6, ErrorResponses: 1, ChangeRequests: 3, ResponsePorts: 1,
		RateLimited: 2, Malformed: 4, TCPAccepted: 2, TCPRejected: 1}
	want = "STUN server stopped: 9 requests, 6 responses, 1 error responses, 3 change requests, 1 to RESPONSE-PORT, " +
		"2 rate limited, 4 malformed, 0 errors, 2 TCP connections (1 refused)\n"
	if got := stunServeText(ev); got != want {
		t.Errorf("stopped text:\n%s\nwant:\n%s", got, want)
	}

	b, err := json.Marshal(StunServeEvent{Schema: stunServeSchema, Event: "listening", Addrs: stunserver.Addrs{Primary: ap("127.0.0.1:3478")}})
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"schema":"rtckit.stun.serve/v1","event":"listening","primary":"127.0.0.1:3478","change_request":false,"rate_limit":0,"rate_burst":0}`
	if string(b) != wantJSON {
		t.Errorf("JSON %s\nwant %s", b, wantJSON)
	}
}

func TestStunServeUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad port", []string{"--port", "abc"}, "invalid argument"},
		{"port out of range", []string{"--port", "70000"}, "port"},
		{"bad listen", []string{"--listen", "stun.example.com"}, "not an IP address"},
		{"bad alt listen", []string{"--alt-listen", "x"}, "not an IP address"},
		{"wildcard", []string{"--listen", "0.0.0.0"}, "wildcard"},
		{"mixed families", []string{"--listen", "127.0.0.1", "--alt-listen", "::1"}, "families"},
		{"same ports", []string{"--alt-listen", "127.0.0.2", "--port", "4000", "--alt-port", "4000"}, "both 4000"},
		{"change request without alternate", []string{"--change-request"}, "needs --alt-listen"},
		{"alt port without alternate", []string{"--alt-port", "5000"}, "needs --alt-listen"},
		{"negative rate", []string{"--rate", "-1"}, "--rate"},
		{"negative burst", []string{"--burst", "-3"}, "--burst"},
		{"unknown flag", []string{"--bogus"}, "unknown flag"},
		{"stray argument", []string{"extra"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut lockedBuffer
			args := append([]string{"stun", "serve"}, tt.args...)
			code := Run(context.Background(), Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, args)
			if code != ExitUsage {
				t.Errorf("exit code %d, want %d (stderr %q)", code, ExitUsage, errOut.String())
			}
			if !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tt.want)
			}
			if out.String() != "" {
				t.Errorf("stdout %q, want nothing", out.String())
			}
		})
	}
}
