package loadgen

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// peerJSHub is a minimal PeerJS server for the generator's PeerJS dialect:
// an id, token and key in the query, OPEN once registered, OFFER routed to
// dst with src added, ID-TAKEN for a second client with the same id.
type peerJSHub struct {
	mu      sync.Mutex
	clients map[string]*websocket.Conn
	offers  int
}

func (h *peerJSHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id, key := q.Get("id"), q.Get("key")
	if r.URL.Path != "/peerjs" || id == "" || q.Get("token") == "" || key != peerJSKey {
		http.Error(w, "bad parameters", http.StatusBadRequest)
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ctx := r.Context()
	h.mu.Lock()
	if _, taken := h.clients[id]; taken {
		h.mu.Unlock()
		_ = ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}`))
		return
	}
	h.clients[id] = ws
	h.mu.Unlock()
	defer func() { h.mu.Lock(); delete(h.clients, id); h.mu.Unlock() }()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"OPEN"}`)); err != nil {
		return
	}
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		dst, _ := m["dst"].(string)
		m["src"] = id
		out, _ := json.Marshal(m) // decoded JSON marshals
		h.mu.Lock()
		peer := h.clients[dst]
		if m["type"] == "OFFER" && peer != nil {
			h.offers++
		}
		h.mu.Unlock()
		if peer == nil {
			_ = ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ERROR","payload":{"msg":"Unknown peer"}}`))
			continue
		}
		_ = peer.Write(ctx, websocket.MessageText, out) // a gone peer shows as lost offers
	}
}

func TestRunPeerJS(t *testing.T) {
	for _, engine := range []Engine{EngineAuto, EngineGoroutines} {
		t.Run(string(engine), func(t *testing.T) {
			hub := &peerJSHub{clients: map[string]*websocket.Conn{}}
			ts := httptest.NewServer(hub)
			defer ts.Close()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			res, err := Run(ctx, Options{URL: "ws" + strings.TrimPrefix(ts.URL, "http") + "/peerjs", Pairs: 4,
				Idle: 3, Rate: 400, Duration: 500 * time.Millisecond, Protocol: ProtocolPeerJS, Engine: engine})
			if err != nil {
				t.Fatal(err)
			}
			hub.mu.Lock()
			offers := hub.offers
			hub.mu.Unlock()
			if res.Sent < 50 || res.Delivered != res.Sent || int64(offers) != res.Sent || res.Connections != 11 {
				t.Errorf("sent %d, delivered %d, hub routed %d, connections %d", res.Sent, res.Delivered, offers, res.Connections)
			}
			if res.Latency == nil || res.Latency.Samples != int(res.Delivered) || len(res.Errors.Server) != 0 {
				t.Errorf("latency %+v, server errors %v", res.Latency, res.Errors.Server)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	for in, want := range map[string]struct {
		done   bool
		rename string
		err    bool
	}{
		`{"type":"pong","ts":1}`: {done: true},
		`{"type":"OPEN"}`:        {done: true},
		`{"type":"rejectusername","id":3,"name":"alice_2"}`:   {rename: "alice_2"},
		`{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}`: {err: true},
		`{"type":"userlist","users":["a"]}`:                   {},
		`not json`:                                            {},
	} {
		done, rename, err := registered([]byte(in))
		if done != want.done || rename != want.rename || (err != nil) != want.err {
			t.Errorf("registered(%s) = %v, %q, %v", in, done, rename, err)
		}
	}
}

func TestErrorCode(t *testing.T) {
	for in, want := range map[string]string{
		`{"type":"error","code":"unknown-target","text":"x"}`:       "unknown-target",
		`{"type":"ERROR","payload":{"msg":"Invalid key provided"}}`: "invalid-key-provided",
		`{"type":"error"`: "",
	} {
		if got, ok := errorCode([]byte(in)); !ok || got != want {
			t.Errorf("errorCode(%s) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := errorCode([]byte(`{"type":"video-offer"}`)); ok {
		t.Error("an offer taken for an error")
	}
}
