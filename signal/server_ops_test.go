// Operations tests: health and metrics, the page, shutdown, slow
// consumers and idle connections.

package signal

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rtckit/rtckit/internal/testenv"
)

func get(t *testing.T, url string) (int, string) { t.Helper(); return testenv.Get(t, url) }

func TestHealthzAndMetrics(t *testing.T) {
	_, ts := startServer(t, Config{AllowedOrigins: nil})
	alice := classic(t, wsURL(ts, "/"), "alice", nil)
	alice.userlist("alice")
	alice.sendRaw(`{"type":"ping"}`)
	alice.until(TypePong)
	alice.sendRaw(`{"type":"hang-up","target":"ghost"}`)
	alice.until(TypeError)
	// The loop counts a turn after its writes and before it waits again:
	// once the reply to this fourth message is back, the third is counted.
	alice.sendRaw(`{"type":"message","text":"hi"}`)
	alice.until(TypeMessage)
	h := http.Header{"Origin": []string{"https://evil.test"}}
	if _, _, err := dial(t, wsURL(ts, "/"), &websocket.DialOptions{HTTPHeader: h}); err == nil {
		t.Fatal("evil origin accepted")
	}

	code, body := get(t, ts.URL+"/healthz")
	var health Health
	if err := json.Unmarshal([]byte(body), &health); err != nil || code != 200 {
		t.Fatalf("/healthz %d %s", code, body)
	}
	if health.Status != "ok" || health.Connections != 1 || health.Users != 1 {
		t.Fatalf("/healthz %+v", health)
	}
	code, body = get(t, ts.URL+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics %d", code)
	}
	for _, want := range []string{
		"rtckit_signal_connections 1",
		"rtckit_signal_users 1",
		"rtckit_signal_connections_total 1",
		`rtckit_signal_messages_total{type="ping"} 1`,
		`rtckit_signal_messages_total{type="username"} 1`,
		`rtckit_signal_errors_total{code="unknown-target"} 1`,
		`rtckit_signal_rejected_total{reason="origin"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The event loop timed its turns: at least one per message read.
	if turns := metricValue(body, "rtckit_signal_loop_turn_seconds_count"); pollSupported && turns < 3 {
		t.Errorf("rtckit_signal_loop_turn_seconds_count = %v, want at least 3", turns)
	}
}

// metricValue returns the value of the sample named name in a Prometheus
// text exposition, -1 when it is not there.
func metricValue(body, name string) float64 {
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

func TestPage(t *testing.T) {
	_, plain := startServer(t, Config{})
	if code, body := get(t, plain.URL+"/"); code != 200 || !strings.Contains(body, "not available") {
		t.Errorf("fallback page %d %q", code, body)
	}
	if code, _ := get(t, plain.URL+"/app.js"); code != http.StatusNotFound {
		t.Errorf("fallback asset %d", code)
	}
	if code, _ := get(t, plain.URL+"/ws"); code != http.StatusUpgradeRequired {
		t.Errorf("/ws without upgrade %d", code)
	}
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "page:"+r.URL.Path)
	})
	_, withPage := startServer(t, Config{Page: page})
	if code, body := get(t, withPage.URL+"/"); code != 200 || body != "page:/" {
		t.Errorf("page %d %q", code, body)
	}
	if _, body := get(t, withPage.URL+"/app.js"); body != "page:/app.js" {
		t.Errorf("asset %q", body)
	}
	c := mustDial(t, wsURL(withPage, "/"), nil)
	c.until(TypeID)
}

func TestGracefulShutdown(t *testing.T) {
	s, err := NewServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	url := "ws://" + l.Addr().String() + "/"
	alice := classic(t, url, "alice", nil)
	alice.userlist("alice")
	bob := classic(t, url, "bob", nil)
	bob.userlist("alice", "bob")

	cancel()
	for _, c := range []*tclient{alice, bob} {
		if m := c.until(TypeError); m.Code != CodeShutdown {
			t.Fatalf("got %+v", m)
		}
		if code := c.closed(); code != websocket.StatusGoingAway {
			t.Fatalf("closed with %v", code)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Serve did not return")
	}
	if _, _, err := dial(t, url, nil); err == nil {
		t.Fatal("dial after shutdown succeeded")
	}
}

func TestShutdownDrainTimeout(t *testing.T) {
	s, err := NewServer(Config{DrainTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	// A client that, once connected (its "id" read, so the server has
	// registered it), never reads again nor answers the close handshake.
	c := mustDial(t, wsURL(ts, "/"), nil)
	c.until(TypeID)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the drain deadline", err)
	}
}

// smallBuffers is a listener whose connections have small send buffers, so
// that a client that stops reading blocks the server's writes quickly.
type smallBuffers struct{ net.Listener }

// withSmallBuffers wraps a test server's listener in smallBuffers.
func withSmallBuffers(l net.Listener) net.Listener { return smallBuffers{l} }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		err = c.(*net.TCPConn).SetWriteBuffer(16 << 10)
	}
	return c, err
}

func TestSlowConsumerDropped(t *testing.T) {
	for _, transport := range []string{TransportAuto, TransportGoroutines} {
		t.Run(transport, func(t *testing.T) { slowConsumerDropped(t, transport) })
	}
}

func slowConsumerDropped(t *testing.T, transport string) {
	_, ts := startServerOn(t, Config{
		Transport:    transport,
		Hub:          HubConfig{Rate: -1},
		SendQueue:    64,
		WriteTimeout: 200 * time.Millisecond,
	}, withSmallBuffers)
	fast := classic(t, wsURL(ts, "/"), "fast", nil)
	fast.ws.SetReadLimit(1 << 20)
	fast.userlist("fast")
	// The slow client never reads again, and its tiny receive buffer
	// keeps the kernel from absorbing what the server sends.
	tinyBuffer := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				err = c.(*net.TCPConn).SetReadBuffer(4 << 10)
			}
			return c, err
		},
	}}
	defer tinyBuffer.CloseIdleConnections()
	classic(t, wsURL(ts, "/"), "slow", &websocket.DialOptions{HTTPClient: tinyBuffer})
	sender := classic(t, wsURL(ts, "/"), "sender", nil)
	sender.userlist("fast", "sender", "slow")
	fast.userlist("fast", "sender", "slow")

	text := strings.Repeat("x", 16<<10)
	const n = 100 // more than the send queue (64) and the socket buffers hold
	// The sender keeps a few messages ahead of the fast client, so that
	// only the slow one falls behind however fast the hub relays.
	const window = 8
	acks := make(chan struct{}, n)
	// The sender is stopped and joined before the server shuts down.
	sendCtx, stopSending := context.WithCancel(context.Background())
	sent := make(chan struct{})
	defer func() {
		stopSending()
		select {
		case <-sent:
		case <-time.After(waitTimeout):
			t.Error("the sender goroutine did not return")
		}
	}()
	go func() {
		defer close(sent)
		for i := range n {
			if i >= window {
				select {
				case <-acks:
				case <-sendCtx.Done():
					return
				case <-time.After(waitTimeout):
					return
				}
			}
			ctx, cancel := context.WithTimeout(sendCtx, waitTimeout)
			err := sender.ws.Write(ctx, websocket.MessageText, []byte(`{"type":"video-offer","sdp":{"type":"offer","sdp":"`+text+`"}}`))
			cancel()
			if err != nil {
				return
			}
		}
	}()
	// The fast client gets every message (a broadcast offer is not echoed
	// to its sender), and sees the slow one leave.
	got, left := 0, false
	for got < n || !left {
		switch m := fast.recv(); m.Type {
		case TypeVideoOffer:
			got++
			acks <- struct{}{}
		case TypeUserList:
			left = slices.Equal(m.Users, []string{"fast", "sender"})
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	// The watcher answers pings only while it waits for a message; an
	// idle timeout well above the gaps between its waits keeps it in.
	_, ts := startServer(t, Config{PingInterval: 50 * time.Millisecond, IdleTimeout: 500 * time.Millisecond})
	watcher := classic(t, wsURL(ts, "/"), "watcher", nil)
	watcher.userlist("watcher")
	// A client that stops reading never answers pings.
	mute := classic(t, wsURL(ts, "/"), "mute", nil)
	_ = mute
	watcher.userlist("mute", "watcher")
	watcher.userlist("watcher")
}
