package signal

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// startServer serves cfg on an httptest server and shuts both down at the
// end of the test.
func startServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	return startServerOn(t, cfg, nil)
}

// startServerOn is startServer with the test server's listener wrapped by
// wrap, when not nil.
func startServerOn(t *testing.T, cfg Config, wrap func(net.Listener) net.Listener) (*Server, *httptest.Server) {
	t.Helper()
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(s.Handler())
	if wrap != nil {
		ts.Listener = wrap(ts.Listener)
	}
	ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.Close()
	})
	return s, ts
}

// wsURL turns the test server's URL into a ws:// URL with path p.
func wsURL(ts *httptest.Server, p string) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http") + p
}

// tclient is a test WebSocket client.
type tclient struct {
	t    *testing.T
	ws   *websocket.Conn
	name string
}

func dial(t *testing.T, url string, opts *websocket.DialOptions) (*tclient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return nil, resp, err
	}
	c := &tclient{t: t, ws: ws}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return c, resp, nil
}

func mustDial(t *testing.T, url string, opts *websocket.DialOptions) *tclient {
	t.Helper()
	c, _, err := dial(t, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return c
}

func (c *tclient) sendRaw(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *tclient) recv() Message {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		c.t.Fatalf("%s: read: %v", c.name, err)
	}
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("bad message %s: %v", b, err)
	}
	return m
}

func (c *tclient) until(typ string) Message {
	c.t.Helper()
	for {
		if m := c.recv(); m.Type == typ {
			return m
		}
	}
}

// userlist waits for a userlist equal to want.
func (c *tclient) userlist(want ...string) {
	c.t.Helper()
	slices.Sort(want)
	for {
		if m := c.until(TypeUserList); slices.Equal(m.Users, want) {
			return
		}
	}
}

// closed waits for the server to close the connection and returns the
// status.
func (c *tclient) closed() websocket.StatusCode {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for {
		if _, _, err := c.ws.Read(ctx); err != nil {
			if ctx.Err() != nil {
				c.t.Fatal("connection not closed")
			}
			return websocket.CloseStatus(err)
		}
	}
}

// classic connects like the MDN tutorial client: id first, then username.
func classic(t *testing.T, url, name string, opts *websocket.DialOptions) *tclient {
	t.Helper()
	c := mustDial(t, url, opts)
	c.name = name
	id := c.recv()
	if id.Type != TypeID || id.ID == 0 {
		t.Fatalf("first message %+v, want id", id)
	}
	if m := c.recv(); m.Type != TypeICEServers || m.Version != ProtocolVersion || m.ICEServers == nil {
		t.Fatalf("second message %+v, want ice-servers", m)
	}
	b, _ := json.Marshal(map[string]any{"name": name, "date": time.Now().UnixMilli(), "id": id.ID, "type": "username"})
	c.sendRaw(string(b))
	return c
}

func TestClassicProtocol(t *testing.T) {
	for _, tc := range []struct {
		name, path, transport string
		subprotocols          []string
		want                  string
	}{
		{"root without subprotocol", "/", TransportAuto, nil, ""},
		{"root with json subprotocol", "/", TransportAuto, []string{"json"}, "json"},
		{"ws path", "/ws", TransportAuto, []string{"other", "json"}, "json"},
		{"goroutines without subprotocol", "/", TransportGoroutines, nil, ""},
		{"goroutines with json subprotocol", "/ws", TransportGoroutines, []string{"other", "json"}, "json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ice := []ICEServer{{URLs: []string{"stun:127.0.0.1:3478"}}}
			_, ts := startServer(t, Config{Transport: tc.transport, Hub: HubConfig{ICEServers: func(int64) []ICEServer { return ice }}})
			opts := &websocket.DialOptions{Subprotocols: tc.subprotocols}
			alice := classic(t, wsURL(ts, tc.path), "alice", opts)
			if got := alice.ws.Subprotocol(); got != tc.want {
				t.Fatalf("subprotocol %q, want %q", got, tc.want)
			}
			alice.until(TypeSession)
			alice.userlist("alice")
			bob := classic(t, wsURL(ts, tc.path), "bob", opts)
			bob.userlist("alice", "bob")
			alice.userlist("alice", "bob")

			// Chat is broadcast to everyone, sender included, HTML
			// escaped and with the sender's registered name.
			bob.sendRaw(`{"type":"message","text":"<img src=x onerror=alert(1)>","name":"alice","id":99,"date":5}`)
			for _, c := range []*tclient{alice, bob} {
				m := c.until(TypeMessage)
				if m.Name != "bob" || m.Text != "&lt;img src=x onerror=alert(1)&gt;" || m.Date != "5" {
					t.Fatalf("%s got %+v", c.name, m)
				}
			}

			// A call: offer, answer, candidates, hang-up, each routed to
			// its target with the sender's name (spoofing ignored).
			alice.sendRaw(`{"type":"video-offer","name":"bob","target":"bob","sdp":{"type":"offer","sdp":"v=0\r\n"}}`)
			if m := bob.until(TypeVideoOffer); m.Name != "alice" || string(m.SDP) != `{"type":"offer","sdp":"v=0\r\n"}` {
				t.Fatalf("offer %+v", m)
			}
			bob.sendRaw(`{"type":"video-answer","name":"bob","target":"alice","sdp":{"type":"answer","sdp":"v=0\r\n"}}`)
			if m := alice.until(TypeVideoAnswer); m.Name != "bob" {
				t.Fatalf("answer %+v", m)
			}
			alice.sendRaw(`{"type":"new-ice-candidate","target":"bob","candidate":{"candidate":"candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0}}`)
			if m := bob.until(TypeNewICECandidate); m.Name != "alice" || !strings.Contains(string(m.Candidate), "typ host") {
				t.Fatalf("candidate %+v", m)
			}
			bob.sendRaw(`{"type":"hang-up","name":"bob","target":"alice"}`)
			if m := alice.until(TypeHangUp); m.Name != "bob" {
				t.Fatalf("hang-up %+v", m)
			}
		})
	}
}

func TestICEServersPerClient(t *testing.T) {
	_, ts := startServer(t, Config{Hub: HubConfig{ICEServers: func(id int64) []ICEServer {
		return []ICEServer{{URLs: []string{"turn:127.0.0.1:3478?transport=udp"}, Username: "u" + string(rune('0'+id)), Credential: "p"}}
	}}})
	c := mustDial(t, wsURL(ts, "/"), nil)
	id := c.recv()
	m := c.recv()
	if len(m.ICEServers) != 1 || m.ICEServers[0].Username != "u"+string(rune('0'+id.ID)) {
		t.Fatalf("ice-servers %+v", m)
	}
}

func TestBadInputAnswered(t *testing.T) {
	_, ts := startServer(t, Config{Hub: HubConfig{MaxMessageSize: 1024}})
	alice := classic(t, wsURL(ts, "/"), "alice", nil)
	alice.userlist("alice")
	bob := classic(t, wsURL(ts, "/"), "bob", nil)
	bob.userlist("alice", "bob")
	alice.userlist("alice", "bob")

	for _, tc := range []struct {
		in, code, ref, target string
	}{
		{`{not json`, CodeInvalidJSON, "", ""},
		{`{"type":"teleport"}`, CodeUnknownType, "teleport", ""},
		{`{"type":"userlist","users":[]}`, CodeServerOnly, TypeUserList, ""},
		{`{"type":"video-offer","target":"carol","sdp":{"type":"offer","sdp":""}}`, CodeUnknownTarget, TypeVideoOffer, "carol"},
		{`{"type":"message","text":"` + strings.Repeat("x", 2000) + `"}`, CodeTooLarge, "", ""},
		{`{"type":"resume","token":"x"}`, CodeResumeLate, TypeResume, ""},
	} {
		alice.sendRaw(tc.in)
		m := alice.until(TypeError)
		if m.Code != tc.code || m.Ref != tc.ref || m.Target != tc.target {
			t.Errorf("%.40s: got %+v, want code %s ref %s", tc.in, m, tc.code, tc.ref)
		}
	}
	// A message beyond the hard limit closes with 1009, and only alice.
	alice.sendRaw(strings.Repeat("x", 1024*hardReadFactor+1))
	if code := alice.closed(); code != websocket.StatusMessageTooBig {
		t.Fatalf("closed with %v", code)
	}
	bob.userlist("bob")
	bob.sendRaw(`{"type":"ping","ts":7}`)
	if m := bob.until(TypePong); m.TS != 7 {
		t.Fatalf("pong %+v", m)
	}
}

func TestRateLimit(t *testing.T) {
	_, ts := startServer(t, Config{Hub: HubConfig{Rate: 0.001, Burst: 3}})
	flood := mustDial(t, wsURL(ts, "/"), nil)
	flood.until(TypeICEServers)
	calm := mustDial(t, wsURL(ts, "/"), nil)
	calm.until(TypeICEServers)
	for i := range 20 {
		flood.sendRaw(`{"type":"ping","ts":` + string(rune('1'+i%9)) + `}`)
	}
	pongs, errs := 0, 0
	for pongs+errs < 4 {
		switch m := flood.recv(); m.Type {
		case TypePong:
			pongs++
		case TypeError:
			if m.Code != CodeRateLimited || m.Ref != TypePing {
				t.Fatalf("got %+v", m)
			}
			errs++
		}
	}
	if pongs != 3 || errs != 1 {
		t.Fatalf("%d pongs and %d rate-limited errors, want 3 and 1", pongs, errs)
	}
	calm.sendRaw(`{"type":"ping","ts":1}`)
	calm.until(TypePong)
}

func TestConnectionStorm(t *testing.T) {
	const maxConns = 8
	s, ts := startServer(t, Config{Hub: HubConfig{MaxConnections: maxConns}})
	var clients []*tclient
	for i := range maxConns {
		c := classic(t, wsURL(ts, "/"), "u"+string(rune('a'+i)), nil)
		clients = append(clients, c)
	}
	for range 5 {
		_, resp, err := dial(t, wsURL(ts, "/"), nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("connection over the limit: err %v resp %v", err, resp)
		}
	}
	// Everyone connected still works.
	clients[0].sendRaw(`{"type":"message","text":"still here"}`)
	for _, c := range clients {
		if m := c.until(TypeMessage); m.Text != "still here" {
			t.Fatalf("got %+v", m)
		}
	}
	// A slot freed is usable again once the hub saw the departure.
	if err := clients[maxConns-1].ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for i := range maxConns - 1 {
		names = append(names, "u"+string(rune('a'+i)))
	}
	clients[0].userlist(names...)
	mustDial(t, wsURL(ts, "/"), nil).until(TypeID)
	if got := s.Hub().Stats().Connections; got != maxConns {
		t.Fatalf("%d connections", got)
	}
}

func TestResume(t *testing.T) {
	_, ts := startServer(t, Config{Hub: HubConfig{ResumeGrace: time.Minute, QueueTTL: time.Minute}})
	alice := classic(t, wsURL(ts, "/"), "alice", nil)
	sess := alice.until(TypeSession)
	if sess.Token == "" || sess.ResumeMS != 60000 {
		t.Fatalf("session %+v", sess)
	}
	bob := classic(t, wsURL(ts, "/"), "bob", nil)
	bob.userlist("alice", "bob")
	if err := alice.ws.Close(websocket.StatusGoingAway, "network change"); err != nil {
		t.Fatal(err)
	}
	bob.userlist("bob")
	bob.sendRaw(`{"type":"new-ice-candidate","target":"alice","candidate":{"candidate":"c1"}}`)

	// Someone else cannot take the name while it is reserved.
	carol := classic(t, wsURL(ts, "/"), "alice", nil)
	if m := carol.until(TypeRejectUsername); m.Name != "alice1" {
		t.Fatalf("got %+v", m)
	}

	back := mustDial(t, wsURL(ts, "/"), nil)
	back.until(TypeICEServers)
	back.sendRaw(`{"type":"resume","token":"` + sess.Token + `"}`)
	if m := back.recv(); m.Type != TypeID {
		t.Fatalf("got %+v, want id", m)
	}
	if m := back.recv(); m.Type != TypeSession || m.Name != "alice" || m.Token == sess.Token {
		t.Fatalf("got %+v, want a new session", m)
	}
	back.userlist("alice", "alice1", "bob")
	if m := back.until(TypeNewICECandidate); m.Name != "bob" || string(m.Candidate) != `{"candidate":"c1"}` {
		t.Fatalf("queued %+v", m)
	}
	bob.userlist("alice", "alice1", "bob")
}

func TestResumeExpiry(t *testing.T) {
	_, ts := startServer(t, Config{Hub: HubConfig{ResumeGrace: time.Minute, QueueTTL: 50 * time.Millisecond}})
	alice := classic(t, wsURL(ts, "/"), "alice", nil)
	alice.until(TypeSession)
	bob := classic(t, wsURL(ts, "/"), "bob", nil)
	bob.userlist("alice", "bob")
	_ = alice.ws.Close(websocket.StatusGoingAway, "network change") // not a normal close: resumable
	bob.userlist("bob")
	bob.sendRaw(`{"type":"video-offer","target":"alice","sdp":{"type":"offer","sdp":""}}`)
	m := bob.until(TypeError)
	if m.Code != CodeExpired || m.Target != "alice" || m.Ref != TypeVideoOffer {
		t.Fatalf("got %+v", m)
	}

	stranger := mustDial(t, wsURL(ts, "/"), nil)
	stranger.sendRaw(`{"type":"resume","token":"forged"}`)
	if m := stranger.until(TypeError); m.Code != CodeInvalidToken {
		t.Fatalf("got %+v", m)
	}
}

func TestResumeGraceEnds(t *testing.T) {
	_, ts := startServer(t, Config{Hub: HubConfig{ResumeGrace: 50 * time.Millisecond, QueueTTL: time.Minute}})
	alice := classic(t, wsURL(ts, "/"), "alice", nil)
	sess := alice.until(TypeSession)
	bob := classic(t, wsURL(ts, "/"), "bob", nil)
	bob.userlist("alice", "bob")
	_ = alice.ws.Close(websocket.StatusGoingAway, "network change") // not a normal close: resumable
	bob.userlist("bob")
	bob.sendRaw(`{"type":"hang-up","target":"alice"}`)
	if m := bob.until(TypeError); m.Code != CodeExpired {
		t.Fatalf("got %+v", m)
	}
	late := mustDial(t, wsURL(ts, "/"), nil)
	late.sendRaw(`{"type":"resume","token":"` + sess.Token + `"}`)
	if m := late.until(TypeError); m.Code != CodeInvalidToken {
		t.Fatalf("got %+v", m)
	}
	// The name is free again.
	again := classic(t, wsURL(ts, "/"), "alice", nil)
	again.userlist("alice", "bob")
}

func TestOrigin(t *testing.T) {
	_, ts := startServer(t, Config{AllowedOrigins: []string{"*.example.com"}})
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{ts.URL, true},
		{"http://localhost:3000", true},
		{"http://127.0.0.1:9", true},
		{"http://[::1]:8080", true},
		{"https://app.example.com", true},
		{"https://evil.test", false},
		{"https://example.com.evil.test", false},
		{"null", false},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		_, resp, err := dial(t, wsURL(ts, "/ws"), &websocket.DialOptions{HTTPHeader: h})
		if tc.ok != (err == nil) {
			t.Errorf("origin %q: err %v, want ok=%v", tc.origin, err, tc.ok)
		}
		if !tc.ok && (resp == nil || resp.StatusCode != http.StatusForbidden) {
			t.Errorf("origin %q: response %v, want 403", tc.origin, resp)
		}
	}
}

func TestToken(t *testing.T) {
	_, ts := startServer(t, Config{Token: "s3cret", TokenSecret: "hmac-key"})
	now := time.Now()
	for _, tc := range []struct {
		name, query, auth string
		ok                bool
	}{
		{"none", "", "", false},
		{"wrong", "?token=nope", "", false},
		{"query", "?token=s3cret", "", true},
		{"bearer", "", "Bearer s3cret", true},
		{"signed", "?token=" + SignToken("hmac-key", now.Add(time.Hour)), "", true},
		{"signed expired", "?token=" + SignToken("hmac-key", now.Add(-time.Second)), "", false},
		{"signed other key", "?token=" + SignToken("other", now.Add(time.Hour)), "", false},
	} {
		h := http.Header{}
		if tc.auth != "" {
			h.Set("Authorization", tc.auth)
		}
		_, resp, err := dial(t, wsURL(ts, "/"+tc.query), &websocket.DialOptions{HTTPHeader: h})
		if tc.ok != (err == nil) {
			t.Errorf("%s: err %v, want ok=%v", tc.name, err, tc.ok)
		}
		if !tc.ok && (resp == nil || resp.StatusCode != http.StatusUnauthorized) {
			t.Errorf("%s: response %v, want 401", tc.name, resp)
		}
	}
}

// TestLeaveFreesName: a client that closes normally (1000) has left: its
// name is free at once, and messages to it get unknown-target, on either
// transport.
func TestLeaveFreesName(t *testing.T) {
	for _, transport := range []string{TransportAuto, TransportGoroutines} {
		t.Run(transport, func(t *testing.T) {
			_, ts := startServer(t, Config{Transport: transport, Hub: HubConfig{ResumeGrace: time.Minute}})
			alice := classic(t, wsURL(ts, "/"), "alice", nil)
			alice.until(TypeSession)
			bob := classic(t, wsURL(ts, "/"), "bob", nil)
			bob.userlist("alice", "bob")
			if err := alice.ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
				t.Fatal(err)
			}
			bob.userlist("bob")
			bob.sendRaw(`{"type":"video-offer","target":"alice","sdp":{"type":"offer","sdp":""}}`)
			if m := bob.until(TypeError); m.Code != CodeUnknownTarget {
				t.Fatalf("got %+v, want unknown-target", m)
			}
			again := classic(t, wsURL(ts, "/"), "alice", nil)
			if m := again.until(TypeSession); m.Name != "" && m.Name != "alice" {
				t.Fatalf("session %+v", m)
			}
			bob.userlist("alice", "bob")
		})
	}
}
