package cmd

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rtckit/rtckit/internal/testenv"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"

	rtcsignal "github.com/rtckit/rtckit/signal"
)

// signalServeWait bounds every wait in the signal serve tests.
const signalServeWait = 10 * time.Second

// signalServe is `rtckit signal serve` running in-process.
type signalServe struct {
	t      *testing.T
	cancel context.CancelFunc
	lines  chan string
	exit   chan int
	// done is closed once Run has returned.
	done   chan struct{}
	errOut *lockedBuffer
}

// startSignalServe runs `rtckit --json signal serve args...` and returns
// its "listening" event.
func startSignalServe(t *testing.T, args ...string) (*signalServe, SignalServeEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	ss := &signalServe{t: t, cancel: cancel, lines: make(chan string, 8), exit: make(chan int, 1), done: make(chan struct{}), errOut: &lockedBuffer{}}
	go func() {
		defer close(ss.done)
		code := Run(ctx, Streams{In: strings.NewReader(""), Out: pw, ErrOut: ss.errOut},
			append([]string{"--json", "signal", "serve"}, args...))
		_ = pw.Close()
		ss.exit <- code
	}()
	go func() {
		defer close(ss.lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			ss.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = pr.Close()
		select {
		case <-ss.done:
		case <-time.After(signalServeWait):
			t.Errorf("rtckit signal serve did not return within %s of cancel", signalServeWait)
		}
	})
	ev := ss.next()
	if ev.Event != "listening" {
		t.Fatalf("first event %+v, want listening", ev)
	}
	return ss, ev
}

// next returns the next JSON event.
func (ss *signalServe) next() SignalServeEvent {
	ss.t.Helper()
	select {
	case line, ok := <-ss.lines:
		if !ok {
			ss.t.Fatalf("output ended early; stderr: %s", ss.errOut.String())
		}
		var ev SignalServeEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			ss.t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		if ev.Schema != signalServeSchema {
			ss.t.Errorf("schema %q, want %q", ev.Schema, signalServeSchema)
		}
		return ev
	case <-time.After(signalServeWait):
		ss.t.Fatalf("no output; stderr: %s", ss.errOut.String())
	}
	return SignalServeEvent{}
}

// stop cancels the command and returns its "stopped" event and exit code.
func (ss *signalServe) stop() (SignalServeEvent, int) {
	ss.t.Helper()
	ss.cancel()
	ev := ss.next()
	if ev.Event != "stopped" || ev.Stats == nil {
		ss.t.Fatalf("last event %+v, want stopped with stats", ev)
	}
	select {
	case code := <-ss.exit:
		return ev, code
	case <-time.After(signalServeWait):
		ss.t.Fatal("rtckit signal serve did not stop after cancel")
	}
	return ev, -1
}

// readMessage reads one hub message.
func readMessage(t *testing.T, ws *websocket.Conn) rtcsignal.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), signalServeWait)
	defer cancel()
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m rtcsignal.Message
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("bad message %s: %v", b, err)
	}
	return m
}

// verifyNoLeaks checks for leaked goroutines after the test and all its
// cleanups: registered first, its cleanup runs last.
func verifyNoLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func TestSignalServe(t *testing.T) {
	verifyNoLeaks(t)
	ss, ev := startSignalServe(t, "--listen", "127.0.0.1:0", "--turn-embedded", "--turn-port", "0",
		"--stun", "stun:127.0.0.1:3478")
	if ev.TLS || ev.TokenRequired || ev.TURN == nil || !ev.TURN.UDP.IsValid() {
		t.Fatalf("listening %+v", ev)
	}
	if !strings.HasPrefix(ev.URL, "http://localhost:") || !strings.HasSuffix(ev.WebSocket, "/ws") {
		t.Fatalf("urls %q %q", ev.URL, ev.WebSocket)
	}
	if len(ev.ICEServers) != 3 || ev.ICEServers[0] != "stun:127.0.0.1:3478" {
		t.Fatalf("ice servers %v", ev.ICEServers)
	}

	// The page is served at /.
	resp, err := http.Get("http://" + ev.Addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Fatalf("GET / %d %.80q", resp.StatusCode, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), signalServeWait)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+ev.Addr+"/", &websocket.DialOptions{Subprotocols: []string{"json"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if m := readMessage(t, ws); m.Type != rtcsignal.TypeID {
		t.Fatalf("got %+v", m)
	}
	m := readMessage(t, ws)
	if m.Type != rtcsignal.TypeICEServers || len(m.ICEServers) != 3 {
		t.Fatalf("got %+v", m)
	}
	if m.ICEServers[0].Username != "" {
		t.Errorf("STUN server with credentials: %+v", m.ICEServers[0])
	}
	for _, s := range m.ICEServers[1:] {
		if !strings.HasSuffix(s.Username, ":client1") || s.Credential == "" {
			t.Errorf("TURN server without per-client REST credentials: %+v", s)
		}
	}

	// On interrupt the client is told, then closed with 1001.
	ss.cancel()
	if m := readMessage(t, ws); m.Type != rtcsignal.TypeError || m.Code != rtcsignal.CodeShutdown {
		t.Fatalf("got %+v", m)
	}
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("close: %v", err)
	}
	stopped, code := ss.stop()
	if code != ExitOK {
		t.Fatalf("exit %d; stderr: %s", code, ss.errOut.String())
	}
	if stopped.Stats.ConnectionsTotal != 1 {
		t.Errorf("stats %+v", stopped.Stats)
	}
}

func TestSignalServeTLS(t *testing.T) {
	verifyNoLeaks(t)
	cert, key := testenv.WriteSelfSignedCert(t, t.TempDir())
	ss, ev := startSignalServe(t, "--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--token", "tok")
	if !ev.TLS || !ev.TokenRequired || !strings.HasPrefix(ev.WebSocket, "wss://") {
		t.Fatalf("listening %+v", ev)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a self-signed test certificate
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), signalServeWait)
	defer cancel()
	if _, _, err := websocket.Dial(ctx, "wss://"+ev.Addr+"/ws", &websocket.DialOptions{HTTPClient: client}); err == nil {
		t.Fatal("dial without the token succeeded")
	}
	ws, _, err := websocket.Dial(ctx, "wss://"+ev.Addr+"/ws?token=tok", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if m := readMessage(t, ws); m.Type != rtcsignal.TypeID {
		t.Fatalf("got %+v", m)
	}
	if err := ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	if _, code := ss.stop(); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
}

func TestSignalServeUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"listen without port", []string{"--listen", "127.0.0.1"}},
		{"cert without key", []string{"--tls-cert", "c.pem"}},
		{"negative rate", []string{"--rate", "-1"}},
		{"zero queue", []string{"--send-queue", "0"}},
		{"turn-listen alone", []string{"--turn-listen", "127.0.0.1"}},
		{"embedded with secret", []string{"--turn-embedded", "--turn-secret", "s"}},
		{"embedded on a wildcard", []string{"--listen", "0.0.0.0:0", "--turn-embedded", "--turn-port", "0"}},
		{"stun URI for turn", []string{"--turn", "stun:example.net"}},
		{"turn without credentials", []string{"--turn", "turn:example.net"}},
		{"missing certificate", []string{"--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.pem"}},
		{"cluster not nats", []string{"--cluster", "http://127.0.0.1:4222"}},
		{"cluster without host", []string{"--cluster", "nats://"}},
		{"cluster name with a dot", []string{"--cluster", "nats://127.0.0.1:4222", "--cluster-name", "a.b"}},
		{"port out of range", []string{"--listen", "127.0.0.1:99999"}},
		{"negative port", []string{"--listen", ":-1"}},
		{"rate not a number", []string{"--rate", "NaN"}},
		{"infinite rate", []string{"--rate", "Inf"}},
		{"tiny message size", []string{"--max-message-size", "10"}},
		{"secret without turn", []string{"--turn-secret", "s"}},
		{"zero ttl", []string{"--turn", "turn:example.net", "--turn-secret", "s", "--turn-ttl", "0"}},
		{"turn-port without embedded", []string{"--turn-port", "3479"}},
		{"turn-port out of range", []string{"--turn-embedded", "--turn-port", "70000"}},
		{"negative timeout (any command)", []string{"--timeout", "-1s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := Run(context.Background(), Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
				append([]string{"signal", "serve"}, tc.args...))
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d; stderr: %s", code, ExitUsage, errOut.String())
			}
		})
	}
}

func TestSignalServeText(t *testing.T) {
	ev := SignalServeEvent{
		Schema: signalServeSchema, Event: "listening", Addr: "127.0.0.1:8080",
		URL: "http://localhost:8080/", WebSocket: "ws://localhost:8080/ws", ICEServers: []string{},
	}
	want := `signaling hub listening
  page         http://localhost:8080/
  websocket    ws://localhost:8080/ws
  access       open
  ice servers  none (host candidates only)
`
	if got := signalServeText(ev); got != want {
		t.Errorf("listening text:\n%s\nwant:\n%s", got, want)
	}
	ev.Cluster = &SignalClusterInfo{URL: "nats://u:xxxxx@nats.example.net:4222", Name: "prod", Node: "3f2a"}
	if got := signalServeText(ev); !strings.Contains(got, "  cluster      prod at nats://u:xxxxx@nats.example.net:4222 (node 3f2a)\n") {
		t.Errorf("listening text with a cluster:\n%s", got)
	}
	ev.Event = "stopped"
	ev.Stats = &rtcsignal.HubStats{ConnectionsTotal: 3, Messages: 40, Errors: 2, Drops: 1}
	if got := signalServeText(ev); got != "signaling hub stopped: 3 connections, 40 messages, 2 error replies, 1 slow clients dropped\n" {
		t.Errorf("stopped text %q", got)
	}
}

// startTestNATS runs an embedded NATS server on a random loopback port; the
// returned function stops it.
func startTestNATS(t *testing.T) (string, func()) {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	stop := func() { ns.Shutdown(); ns.WaitForShutdown() }
	if !ns.ReadyForConnections(signalServeWait) {
		stop()
		t.Fatal("NATS server not ready")
	}
	return ns.ClientURL(), stop
}

// joinHub connects to a hub and registers name.
func joinHub(t *testing.T, addr, name string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), signalServeWait)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"username","name":"`+name+`"}`)); err != nil {
		t.Fatal(err)
	}
	return ws
}

// readUntil reads hub messages until one of type typ for which ok holds.
func readUntil(t *testing.T, ws *websocket.Conn, typ string, ok func(rtcsignal.Message) bool) rtcsignal.Message {
	t.Helper()
	for {
		if m := readMessage(t, ws); m.Type == typ && ok(m) {
			return m
		}
	}
}

func TestSignalServeCluster(t *testing.T) {
	verifyNoLeaks(t)
	natsURL, stopNATS := startTestNATS(t)
	defer stopNATS()
	one, ev1 := startSignalServe(t, "--listen", "127.0.0.1:0", "--cluster", natsURL, "--cluster-name", "cmdtest")
	two, ev2 := startSignalServe(t, "--listen", "127.0.0.1:0", "--cluster", natsURL, "--cluster-name", "cmdtest")
	for _, ev := range []SignalServeEvent{ev1, ev2} {
		if ev.Cluster == nil || ev.Cluster.Name != "cmdtest" || ev.Cluster.URL != natsURL || ev.Cluster.Node == "" {
			t.Fatalf("listening %+v", ev)
		}
	}
	if ev1.Cluster.Node == ev2.Cluster.Node {
		t.Fatalf("both hubs are node %s", ev1.Cluster.Node)
	}

	alice := joinHub(t, ev1.Addr, "alice")
	defer alice.CloseNow()
	bob := joinHub(t, ev2.Addr, "bob")
	defer bob.CloseNow()
	both := func(m rtcsignal.Message) bool { return strings.Join(m.Users, ",") == "alice,bob" }
	readUntil(t, alice, rtcsignal.TypeUserList, both)
	readUntil(t, bob, rtcsignal.TypeUserList, both)
	ctx, cancel := context.WithTimeout(context.Background(), signalServeWait)
	defer cancel()
	if err := alice.Write(ctx, websocket.MessageText, []byte(`{"type":"video-offer","target":"bob","sdp":{"type":"offer","sdp":"v=0"}}`)); err != nil {
		t.Fatal(err)
	}
	readUntil(t, bob, rtcsignal.TypeVideoOffer, func(m rtcsignal.Message) bool { return m.Name == "alice" })

	// The first hub stopping takes alice off the second hub's list.
	one.cancel()
	readClosed(t, alice)
	if _, code := one.stop(); code != ExitOK {
		t.Fatalf("exit %d; stderr: %s", code, one.errOut.String())
	}
	readUntil(t, bob, rtcsignal.TypeUserList, func(m rtcsignal.Message) bool { return strings.Join(m.Users, ",") == "bob" })
	two.cancel()
	readClosed(t, bob)
	if _, code := two.stop(); code != ExitOK {
		t.Fatalf("exit %d; stderr: %s", code, two.errOut.String())
	}
}

// readClosed reads until the hub closes the connection with 1001.
func readClosed(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), signalServeWait)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("closed with %v", err)
			}
			return
		}
	}
}
