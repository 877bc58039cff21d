// Sessions outlive connections: a resume token gives a reconnecting client
// its name back, and messages to it wait, bounded, until it returns.

package signal

import (
	"crypto/rand"
	"encoding/base64"
	"time"
)

// session is a registered name, attached to a client or away within the
// resume grace period.
type session struct {
	name, token string
	client      *Client // nil while away
	awayUntil   time.Time
	queue       []queued
	timer       *time.Timer
	dead        bool
}

// queued is a message waiting for an away user.
type queued struct {
	data  []byte
	from  *session
	ref   string
	until time.Time
}

// resume handles a resume message, the first of a connection.
func (h *Hub) resume(c *Client, token string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.byToken[token]
	if s == nil || h.cfg.ResumeGrace <= 0 {
		h.sendLocked(c, Message{Type: TypeError, Code: CodeInvalidToken, Ref: TypeResume,
			Message: "unknown or expired resume token; register with a username message"})
		return
	}
	if old := s.client; old != nil {
		old.sess = nil
		old.dropped = true
		old.conn.Close(StatusReplaced, "session resumed on another connection")
	}
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	delete(h.byToken, s.token)
	s.token = newToken()
	h.byToken[s.token] = s
	s.client = c
	c.sess = s
	h.log.Debug("user resumed", "id", c.id, "name", s.name, "queued", len(s.queue))
	h.sendLocked(c, Message{Type: TypeID, ID: c.id})
	h.sendLocked(c, Message{Type: TypeSession, Token: s.token, ResumeMS: h.cfg.ResumeGrace.Milliseconds(), Name: s.name})
	h.userListChangedLocked()
	q := s.queue
	s.queue = nil
	for _, m := range q {
		h.sendRawLocked(c, m.data)
	}
}

// scheduleLocked arms s's timer for its next deadline: the end of the grace
// period or the oldest queued message's expiry.
func (h *Hub) scheduleLocked(s *session) {
	next := s.awayUntil
	if len(s.queue) > 0 && s.queue[0].until.Before(next) {
		next = s.queue[0].until
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timer = time.AfterFunc(time.Until(next), func() { h.expire(s) })
}

// expire runs at a session's deadline.
func (h *Hub) expire(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.dead || s.client != nil {
		return
	}
	now := time.Now()
	if !now.Before(s.awayUntil) {
		h.log.Debug("session expired", "name", s.name)
		h.removeSessionLocked(s)
		h.announceLocked(nil)
		return
	}
	i := 0
	for i < len(s.queue) && !now.Before(s.queue[i].until) {
		h.expiredLocked(s, s.queue[i])
		i++
	}
	s.queue = s.queue[i:]
	h.scheduleLocked(s)
}

// expiredLocked tells the sender of q that it was not delivered.
func (h *Hub) expiredLocked(to *session, q queued) {
	if q.from == nil || q.from.client == nil {
		return
	}
	h.sendLocked(q.from.client, Message{Type: TypeError, Code: CodeExpired, Ref: q.ref, Target: to.name,
		Message: "the user did not come back in time; the message was not delivered"})
}

// removeSessionLocked forgets s, expiring its queued messages.
func (h *Hub) removeSessionLocked(s *session) {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.dead = true
	for _, q := range s.queue {
		h.expiredLocked(s, q)
	}
	s.queue = nil
	h.dropNameLocked(s)
	delete(h.byToken, s.token)
	h.cfg.Metrics.setUsers(len(h.byName))
}

// newToken returns a random resume token.
func newToken() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}
