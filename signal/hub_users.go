// The hub's users: registering and renaming, unique names, and the user
// list every connection gets, paced by what it costs.

package signal

import (
	"slices"
	"strconv"
	"time"
)

// userListBytesPerSecond bounds what user lists cost: after a list of L
// bytes went to N connections, the next one waits until L×N bytes at this
// rate have passed, and then carries every change made meanwhile. A full
// list on every change is the classic protocol's; unpaced, a hub of a few
// thousand users spent all its time and memory copying lists when many
// registered at once. A hub of tens of users still sends every change at
// once (30 users: 0.2 ms).
const userListBytesPerSecond = 64 << 20

// register handles a username message.
func (h *Hub) register(c *Client, m Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	want := SanitizeName(m.Name)
	s := c.sess
	if s != nil && s.name == want {
		if want != m.Name {
			h.sendLocked(c, Message{Type: TypeRejectUsername, ID: c.id, Name: want})
		}
		h.userListChangedLocked()
		return
	}
	name := h.freeNameLocked(want, s)
	if name != m.Name {
		h.sendLocked(c, Message{Type: TypeRejectUsername, ID: c.id, Name: name})
	}
	if s != nil {
		h.dropNameLocked(s)
		h.setNameLocked(s, name)
		h.log.Debug("user renamed", "id", c.id, "name", name)
	} else {
		s = &session{token: newToken(), client: c}
		c.sess = s
		h.setNameLocked(s, name)
		h.byToken[s.token] = s
		h.log.Debug("user registered", "id", c.id, "name", name)
		if h.cfg.ResumeGrace > 0 {
			h.sendLocked(c, Message{Type: TypeSession, Token: s.token, ResumeMS: h.cfg.ResumeGrace.Milliseconds()})
		}
	}
	h.userListChangedLocked()
}

// freeNameLocked returns want, or want with the lowest number appended
// that makes it a name that neither another session of this hub nor a
// user of another node holds.
func (h *Hub) freeNameLocked(want string, s *session) string {
	name := want
	for i := 1; h.takenLocked(name, s); i++ {
		suffix := strconv.Itoa(i)
		name = truncateRunes(want, MaxNameLen-len(suffix)) + suffix
	}
	return name
}

// setNameLocked gives s name.
func (h *Hub) setNameLocked(s *session, name string) {
	s.name = name
	h.byName[name] = s
	h.byKey[nameKey(name)] = s
}

// dropNameLocked frees s's name.
func (h *Hub) dropNameLocked(s *session) {
	if h.byName[s.name] == s {
		delete(h.byName, s.name)
	}
	if key := nameKey(s.name); h.byKey[key] == s {
		delete(h.byKey, key)
	}
}

// takenLocked reports whether a session other than s, here or on another
// node, holds name or a name that differs from it only in case or width.
func (h *Hub) takenLocked(name string, s *session) bool {
	key := nameKey(name)
	if other := h.byKey[key]; other != nil && other != s {
		return true
	}
	_, remote := h.remoteNames[key]
	return remote
}

// userListChangedLocked handles a change of the user list: it tells the
// other nodes at once, and sends the list to every connection now or,
// while the last list's cost still paces them (userListBytesPerSecond),
// once that time is over.
func (h *Hub) userListChangedLocked() {
	h.cfg.Metrics.setUsers(len(h.byName))
	var users []string
	if _, ok := h.cfg.Bus.(Presence); ok {
		users = h.connectedUsersLocked()
		h.announceLocked(users)
	}
	if h.closed || h.listTimer != nil {
		return // the held-back list will carry this change
	}
	if wait := time.Until(h.listNext); wait > 0 {
		h.listTimer = time.AfterFunc(wait, h.sendHeldUserList)
		return
	}
	if users == nil {
		users = h.connectedUsersLocked()
	}
	h.sendUserListLocked(users)
}

// sendHeldUserList sends the list that userListChangedLocked held back.
func (h *Hub) sendHeldUserList() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.listTimer == nil || h.closed {
		return
	}
	h.listTimer = nil
	h.sendUserListLocked(h.connectedUsersLocked())
}

// connectedUsersLocked returns the names of this hub's connected users.
func (h *Hub) connectedUsersLocked() []string {
	users := make([]string, 0, len(h.byName)+len(h.remoteUsers))
	for c := range h.clients {
		if c.sess != nil && c.sess.client == c {
			users = append(users, c.sess.name)
		}
	}
	return users
}

// sendUserListLocked sends the names of connected users, of this hub
// (users, which it may reorder) and of the other nodes, to every
// connection, and sets when the next list may go out.
func (h *Hub) sendUserListLocked(users []string) {
	users = append(users, h.remoteUsers...)
	slices.Sort(users)
	users = slices.Compact(users)
	data, err := Encode(Message{Type: TypeUserList, Users: users})
	if err != nil {
		return
	}
	for c := range h.clients {
		h.sendRawLocked(c, data)
	}
	pace := float64(len(data)) * float64(len(h.clients)) / userListBytesPerSecond
	h.listNext = time.Now().Add(time.Duration(pace * float64(time.Second)))
}
