// Relaying chat and call messages between users, here or on other nodes.

package signal

import "time"

// relay handles chat and call messages: it sets the sender's identity and
// routes the message to its target, or to everyone without one.
func (h *Hub) relay(c *Client, m Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := c.sess
	if s == nil {
		h.sendLocked(c, Message{Type: TypeError, Code: CodeNotRegistered, Ref: m.Type,
			Message: "send a username message first"})
		return
	}
	out := Message{Type: m.Type, Name: s.name, Target: m.Target}
	switch m.Type {
	case TypeMessage:
		out.ID, out.Date, out.Text = c.id, m.Date, escapeText(m.Text)
	case TypeVideoOffer, TypeVideoAnswer:
		out.SDP = m.SDP
	case TypeNewICECandidate:
		out.Candidate = m.Candidate
	}
	data, err := Encode(out)
	if err != nil {
		h.log.Error("encoding a message", "type", out.Type, "err", err)
		return
	}
	h.routeLocked(c, s, m.Type, m.Target, data)
}

// relayFast relays a message that scanFast recognized, as relay would.
func (h *Hub) relayFast(c *Client, m fastMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := c.sess
	if s == nil {
		h.sendLocked(c, Message{Type: TypeError, Code: CodeNotRegistered, Ref: m.typ,
			Message: "send a username message first"})
		return
	}
	// The common case, a user connected here over a transport that copies
	// what it sends, needs no buffer of the message's own.
	if t := h.byName[string(m.target)]; t != nil && t.client != nil {
		if _, ok := t.client.conn.(copyingConn); ok {
			h.scratch = appendFast(h.scratch[:0], m, s.name)
			h.sendRawLocked(t.client, h.scratch)
			return
		}
	}
	n := len(`{"type":"","name":"","target":"","candidate":}`) + len(m.typ) + len(s.name) + len(m.target) + len(m.payload)
	data := appendFast(make([]byte, 0, n+8), m, s.name)
	h.routeLocked(c, s, m.typ, string(m.target), data)
}

// copyingConn is a Conn whose Send copies msg before it returns, so the
// caller may reuse it.
type copyingConn interface {
	Conn
	sendCopies()
}

// routeLocked sends data, a relayed message of type typ from c, to target,
// or to everyone when target is empty, and answers c when it cannot.
func (h *Hub) routeLocked(c *Client, s *session, typ, target string, data []byte) {
	if target == "" {
		for other := range h.clients {
			if other != c || typ == TypeMessage {
				h.sendRawLocked(other, data)
			}
		}
		if p, ok := h.cfg.Bus.(Presence); ok {
			p.Broadcast(data)
		}
		return
	}
	if code := h.deliverLocked(target, data, s, typ); code != "" {
		msg := "no user of that name"
		if code == CodeQueueFull {
			msg = "user is away and has too many messages waiting"
		}
		h.sendLocked(c, Message{Type: TypeError, Code: code, Ref: typ, Target: target, Message: msg})
	}
}

// deliverLocked hands data to the user named target: sent when connected,
// queued when away, published on the bus when the user is not here. It
// returns the error code for the sender, or "" when delivered or queued.
// from is nil for messages from the bus.
func (h *Hub) deliverLocked(target string, data []byte, from *session, ref string) string {
	t := h.byName[target]
	switch {
	case t == nil:
		if from != nil && h.cfg.Bus != nil && h.cfg.Bus.Publish(target, data) {
			return ""
		}
		return CodeUnknownTarget
	case t.client != nil:
		h.sendRawLocked(t.client, data)
	case len(t.queue) >= h.cfg.QueueMessages:
		return CodeQueueFull
	default:
		until := time.Now().Add(h.cfg.QueueTTL)
		if t.awayUntil.Before(until) {
			until = t.awayUntil
		}
		t.queue = append(t.queue, queued{data: data, from: from, ref: ref, until: until})
		h.scheduleLocked(t)
	}
	return ""
}
