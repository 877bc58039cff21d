package web_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// hubWriteTimeout bounds one write of the test hub.
const hubWriteTimeout = 5 * time.Second

// testHub is a minimal signaling hub for the page's own tests: ids,
// names (with rejectusername for duplicates), sessions and resume, user
// lists, chat, routing by target name, ping. It is deliberately naive (no
// write deadlines, unbounded goroutine per send); rtckit's real hub lives in
// package signal.
type testHub struct {
	mu       sync.Mutex
	nextID   int
	clients  map[*hubClient]struct{}
	sessions map[string]string // token → name
}

type hubClient struct {
	ws   *websocket.Conn
	id   int
	name string
	wmu  sync.Mutex
}

func newTestHub() *testHub {
	return &testHub{clients: make(map[*hubClient]struct{}), sessions: make(map[string]string)}
}

func (c *hubClient) send(msg any) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), hubWriteTimeout)
	defer cancel()
	_ = wsjson.Write(ctx, c.ws, msg)
}

// ServeHTTP accepts a WebSocket upgrade, selecting subprotocol "json".
func (h *testHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"json"}})
	if err != nil {
		return
	}
	defer ws.CloseNow()
	h.serve(r.Context(), ws)
}

func (h *testHub) serve(ctx context.Context, ws *websocket.Conn) {
	h.mu.Lock()
	h.nextID++
	c := &hubClient{ws: ws, id: h.nextID}
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.clients, c)
		h.mu.Unlock()
		h.broadcastUsers()
	}()
	c.send(map[string]any{"type": "id", "id": c.id})
	c.send(map[string]any{"type": "ice-servers", "version": 1, "iceServers": []any{}})
	for {
		var raw map[string]any
		if err := wsjson.Read(ctx, ws, &raw); err != nil {
			return
		}
		h.handle(c, raw)
	}
}

func (h *testHub) handle(c *hubClient, msg map[string]any) {
	typ, _ := msg["type"].(string)
	switch typ {
	case "username", "resume":
		name, _ := msg["name"].(string)
		h.mu.Lock()
		if typ == "resume" {
			tok, _ := msg["token"].(string)
			var ok bool
			if name, ok = h.sessions[tok]; !ok {
				h.mu.Unlock()
				c.send(map[string]any{"type": "error", "code": "bad-resume-token", "message": "unknown session", "ref": "resume"})
				return
			}
			delete(h.sessions, tok)
		}
		unique := name
		for i := 2; h.taken(unique, c); i++ {
			unique = fmt.Sprintf("%s%d", name, i)
		}
		c.name = unique
		tok := rand.Text()
		h.sessions[tok] = unique
		h.mu.Unlock()
		if unique != name {
			c.send(map[string]any{"type": "rejectusername", "id": c.id, "name": unique})
		}
		c.send(map[string]any{"type": "session", "token": tok, "resume_ms": 30000})
		h.broadcastUsers()
	case "message":
		text, _ := msg["text"].(string)
		msg["text"] = html.EscapeString(text)
		msg["name"] = c.name
		h.mu.Lock()
		all := make([]*hubClient, 0, len(h.clients))
		for o := range h.clients {
			all = append(all, o)
		}
		h.mu.Unlock()
		for _, o := range all {
			o.send(msg)
		}
	case "video-offer", "video-answer", "new-ice-candidate", "hang-up":
		target, _ := msg["target"].(string)
		msg["name"] = c.name
		h.mu.Lock()
		var to *hubClient
		for o := range h.clients {
			if o.name == target {
				to = o
			}
		}
		h.mu.Unlock()
		if to == nil {
			c.send(map[string]any{"type": "error", "code": "unknown-target", "message": "no such user", "ref": typ, "target": target})
			return
		}
		to.send(msg)
	case "ping":
		c.send(map[string]any{"type": "pong", "ts": msg["ts"]})
	}
}

// taken reports whether another client uses name; h.mu is held.
func (h *testHub) taken(name string, self *hubClient) bool {
	for o := range h.clients {
		if o != self && o.name == name {
			return true
		}
	}
	return false
}

func (h *testHub) broadcastUsers() {
	h.mu.Lock()
	var users []string
	all := make([]*hubClient, 0, len(h.clients))
	for o := range h.clients {
		all = append(all, o)
		if o.name != "" {
			users = append(users, o.name)
		}
	}
	h.mu.Unlock()
	slices.Sort(users)
	b, _ := json.Marshal(map[string]any{"type": "userlist", "users": users})
	for _, o := range all {
		o.send(json.RawMessage(b))
	}
}
