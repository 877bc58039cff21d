package signal

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of HubConfig.
const (
	// DefaultMaxConnections bounds concurrent connections.
	DefaultMaxConnections = 1000
	// DefaultMaxMessageSize bounds one client message; SDP with many
	// codecs and simulcast stays well below it.
	DefaultMaxMessageSize = 64 << 10
	// DefaultRate is the sustained messages per second of one connection.
	DefaultRate = 50
	// DefaultBurst lets a connection trickle a burst of ICE candidates.
	DefaultBurst = 100
	// DefaultResumeGrace is how long a disconnected user's name and
	// messages are kept for a resume.
	DefaultResumeGrace = 30 * time.Second
	// DefaultQueueMessages bounds the messages queued for an away user.
	DefaultQueueMessages = 32
	// DefaultQueueTTL is how long a queued message waits before its
	// sender gets an "expired" error.
	DefaultQueueTTL = 10 * time.Second
)

// WebSocket close codes the hub uses.
const (
	// StatusGoingAway (1001) closes connections at shutdown.
	StatusGoingAway = 1001
	// StatusPolicyViolation (1008) drops a client that broke a limit.
	StatusPolicyViolation = 1008
	// StatusReplaced (4001) closes a connection whose session was resumed
	// on another connection.
	StatusReplaced = 4001
)

// Conn is the hub's view of a connection. A transport implements it.
type Conn interface {
	// Send queues one encoded message without blocking and reports
	// whether it was queued; false (queue full or connection closing)
	// makes the hub drop the client.
	Send(msg []byte) bool
	// Close starts closing the connection with a WebSocket status code
	// and reason, after the messages already queued. It never blocks
	// and may be called more than once.
	Close(code int, reason string)
}

// HubConfig configures a Hub. The zero value works: every zero field takes
// its default, and negative values disable a limit where noted.
type HubConfig struct {
	// MaxConnections bounds concurrent connections (<0: no limit).
	MaxConnections int
	// MaxMessageSize bounds one client message in bytes.
	MaxMessageSize int
	// Rate and Burst limit the messages of one connection (Rate<0: no
	// limit).
	Rate  float64
	Burst int
	// ResumeGrace keeps a disconnected user's name for a resume (<0:
	// sessions are not resumable and no session message is sent).
	ResumeGrace time.Duration
	// QueueMessages and QueueTTL bound the messages queued for an away
	// user.
	QueueMessages int
	QueueTTL      time.Duration
	// ICEServers returns the ICE servers for a new connection, called
	// once per connection so that credentials can be minted for it; nil
	// sends an empty list.
	ICEServers func(clientID int64) []ICEServer
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Metrics records counters; nil records nothing.
	Metrics *Metrics
	// Bus carries targeted messages to users on other nodes; nil routes
	// within this hub only.
	Bus Bus
}

// Bus connects the hubs of a cluster: a message whose target is not a
// user of this hub is published, and the node holding the target hands it
// to its hub with Hub.Deliver. Only targeted messages cross a plain Bus;
// names, user lists and broadcasts stay per hub unless it also implements
// Presence.
type Bus interface {
	// Publish sends data, a relayed message already stamped with its
	// sender's name, toward the node holding the user named target, and
	// reports false when no node holds it. It is called with the hub
	// locked: it must not block and must not call into a hub before it
	// returns.
	Publish(target string, data []byte) bool
}

// Presence is implemented by a Bus that also shares users and broadcasts
// across the cluster (Cluster does). With it, names are unique across the
// nodes (best effort, see docs/signal-serve.md), user lists list every
// node's users, and messages without a target reach every node. Its
// methods are called with the hub locked: they must not block and must not
// call into a hub before they return.
type Presence interface {
	// Announce gives the hub's own users: the connected names and the
	// names reserved for a resume. It is called on every change, and may
	// also be called without one.
	Announce(users, away []string)
	// Broadcast sends data, a relayed message without a target, to the
	// other nodes, which hand it in with Hub.DeliverAll.
	Broadcast(data []byte)
}

func (c HubConfig) withDefaults() HubConfig {
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Burst <= 0 {
		c.Burst = DefaultBurst
	}
	if c.ResumeGrace == 0 {
		c.ResumeGrace = DefaultResumeGrace
	}
	if c.QueueMessages <= 0 {
		c.QueueMessages = DefaultQueueMessages
	}
	if c.QueueTTL <= 0 {
		c.QueueTTL = DefaultQueueTTL
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Hub routes messages between clients. Its methods are safe for concurrent
// use.
type Hub struct {
	cfg HubConfig
	log *slog.Logger

	mu      sync.Mutex
	closed  bool
	nextID  int64
	clients map[*Client]struct{}
	byName  map[string]*session
	byToken map[string]*session

	// Users of other nodes, from Hub.SetRemoteUsers: connected names for
	// the user list, and every name they hold for uniqueness.
	remoteUsers []string
	remoteNames map[string]struct{}

	connectionsTotal, errors, drops uint64        // guarded by mu
	messages                        atomic.Uint64 // counted outside mu
}

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

// Client is one connection known to the hub.
type Client struct {
	hub     *Hub
	conn    Conn
	id      int64
	limiter *rate.Limiter

	// Touched only by the goroutine calling Handle.
	gotFirst, limited bool

	// Guarded by hub.mu.
	sess    *session
	dropped bool
	gone    bool
}

// ID returns the connection id sent in the id message.
func (c *Client) ID() int64 { return c.id }

// NewHub returns a hub configured by cfg.
func NewHub(cfg HubConfig) *Hub {
	cfg = cfg.withDefaults()
	return &Hub{
		cfg:     cfg,
		log:     cfg.Logger,
		clients: make(map[*Client]struct{}),
		byName:  make(map[string]*session),
		byToken: make(map[string]*session),
	}
}

// MaxMessageSize returns the effective message size limit.
func (h *Hub) MaxMessageSize() int { return h.cfg.MaxMessageSize }

// HubStats is a snapshot of the hub.
type HubStats struct {
	// Connections and Users are open connections and registered names
	// (including users away within the resume grace period).
	Connections int `json:"connections"`
	Users       int `json:"users"`
	// ConnectionsTotal, Messages, Errors and Drops count connections
	// accepted, client messages received, error messages sent and clients
	// dropped for a full send queue since the hub started.
	ConnectionsTotal uint64 `json:"connections_total"`
	Messages         uint64 `json:"messages"`
	Errors           uint64 `json:"errors"`
	Drops            uint64 `json:"drops"`
}

// Stats returns a snapshot of the hub's state and counters.
func (h *Hub) Stats() HubStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return HubStats{
		Connections: len(h.clients), Users: len(h.byName),
		ConnectionsTotal: h.connectionsTotal, Messages: h.messages.Load(),
		Errors: h.errors, Drops: h.drops,
	}
}

// Reserve reports whether one more connection fits, so a transport can
// refuse an upgrade cheaply. Connect still enforces the limit.
func (h *Hub) Reserve() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.admitLocked()
}

func (h *Hub) admitLocked() error {
	if h.closed {
		return ErrClosed
	}
	if h.cfg.MaxConnections > 0 && len(h.clients) >= h.cfg.MaxConnections {
		return ErrTooManyConnections
	}
	return nil
}

// Connect registers a new connection and sends it the id and ice-servers
// messages. It fails with ErrTooManyConnections or ErrClosed.
func (h *Hub) Connect(conn Conn) (*Client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.admitLocked(); err != nil {
		return nil, err
	}
	h.nextID++
	c := &Client{hub: h, conn: conn, id: h.nextID}
	if h.cfg.Rate > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(h.cfg.Rate), h.cfg.Burst)
	}
	h.clients[c] = struct{}{}
	h.connectionsTotal++
	h.cfg.Metrics.connected(1)
	ice := []ICEServer{}
	if h.cfg.ICEServers != nil {
		if s := h.cfg.ICEServers(c.id); s != nil {
			ice = s
		}
	}
	h.sendLocked(c, Message{Type: TypeID, ID: c.id})
	h.sendLocked(c, Message{Type: TypeICEServers, Version: ProtocolVersion, ICEServers: ice})
	h.log.Debug("client connected", "id", c.id)
	return c, nil
}

// Disconnect removes a client whose connection ended. A registered user
// stays resumable for the grace period. It may be called more than once.
func (c *Client) Disconnect() {
	h := c.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.gone {
		return
	}
	c.gone = true
	delete(h.clients, c)
	h.cfg.Metrics.connected(-1)
	s := c.sess
	c.sess = nil
	if s == nil || s.client != c {
		return
	}
	s.client = nil
	if h.cfg.ResumeGrace > 0 && !h.closed {
		s.awayUntil = time.Now().Add(h.cfg.ResumeGrace)
		h.scheduleLocked(s)
		h.log.Debug("user away", "id", c.id, "name", s.name)
	} else {
		h.removeSessionLocked(s)
	}
	h.broadcastUserListLocked()
}

// Handle processes one message received from the client. It must not be
// called concurrently for the same client; a transport calls it from its
// read loop. Problems are answered with error messages, never by closing.
func (c *Client) Handle(data []byte) {
	h := c.hub
	h.messages.Add(1)
	if c.limiter != nil && !c.limiter.Allow() {
		if !c.limited {
			c.limited = true
			c.reply(Message{Type: TypeError, Code: CodeRateLimited, Ref: peekType(data),
				Message: "too many messages; messages are dropped until the rate falls"})
		}
		return
	}
	c.limited = false
	first := !c.gotFirst
	c.gotFirst = true
	m, err := Decode(data, h.cfg.MaxMessageSize)
	h.cfg.Metrics.message(m.Type)
	if err != nil {
		if pe, ok := err.(*ProtocolError); ok {
			c.reply(pe.reply())
		}
		return
	}
	switch m.Type {
	case TypePing:
		c.reply(Message{Type: TypePong, TS: m.TS})
	case TypeResume:
		if !first {
			c.reply(Message{Type: TypeError, Code: CodeResumeLate, Ref: TypeResume,
				Message: "resume must be the first message of a connection"})
			return
		}
		h.resume(c, m.Token)
	case TypeUsername:
		h.register(c, m)
	default:
		h.relay(c, m)
	}
}

// TooLarge answers a message the transport did not read in full because it
// exceeded the size limit.
func (c *Client) TooLarge(size int) {
	c.reply(Message{Type: TypeError, Code: CodeTooLarge,
		Message: fmt.Sprintf("message of more than %d bytes exceeds the limit of %d", size, c.hub.cfg.MaxMessageSize)})
}

// reply sends m to c.
func (c *Client) reply(m Message) {
	h := c.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sendLocked(c, m)
}

// sendLocked encodes and sends m to c.
func (h *Hub) sendLocked(c *Client, m Message) {
	data, err := Encode(m)
	if err != nil {
		h.log.Error("encoding a message", "type", m.Type, "err", err)
		return
	}
	if m.Type == TypeError {
		h.errors++
		h.cfg.Metrics.errorSent(m.Code)
	}
	h.sendRawLocked(c, data)
}

// sendRawLocked sends data to c, dropping c when its queue is full.
func (h *Hub) sendRawLocked(c *Client, data []byte) {
	if c.dropped || c.gone {
		return
	}
	if !c.conn.Send(data) {
		c.dropped = true
		h.drops++
		h.cfg.Metrics.dropped("slow-consumer")
		h.log.Info("dropping slow client", "id", c.id)
		c.conn.Close(StatusPolicyViolation, "send queue full")
	}
}

// register handles a username message.
func (h *Hub) register(c *Client, m Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	want := SanitizeName(m.Name)
	s := c.sess
	if s != nil && s.name == want {
		h.broadcastUserListLocked()
		return
	}
	name := h.freeNameLocked(want, s)
	if name != m.Name {
		h.sendLocked(c, Message{Type: TypeRejectUsername, ID: c.id, Name: name})
	}
	if s != nil {
		delete(h.byName, s.name)
		s.name = name
		h.byName[name] = s
		h.log.Debug("user renamed", "id", c.id, "name", name)
	} else {
		s = &session{name: name, token: newToken(), client: c}
		c.sess = s
		h.byName[name] = s
		h.byToken[s.token] = s
		h.log.Debug("user registered", "id", c.id, "name", name)
		if h.cfg.ResumeGrace > 0 {
			h.sendLocked(c, Message{Type: TypeSession, Token: s.token, ResumeMS: h.cfg.ResumeGrace.Milliseconds()})
		}
	}
	h.broadcastUserListLocked()
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
	h.broadcastUserListLocked()
	q := s.queue
	s.queue = nil
	for _, m := range q {
		h.sendRawLocked(c, m.data)
	}
}

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
	if m.Target == "" {
		for other := range h.clients {
			if other != c || m.Type == TypeMessage {
				h.sendRawLocked(other, data)
			}
		}
		if p, ok := h.cfg.Bus.(Presence); ok {
			p.Broadcast(data)
		}
		return
	}
	if code := h.deliverLocked(m.Target, data, s, m.Type); code != "" {
		msg := "no user of that name"
		if code == CodeQueueFull {
			msg = "user is away and has too many messages waiting"
		}
		h.sendLocked(c, Message{Type: TypeError, Code: code, Ref: m.Type, Target: m.Target, Message: msg})
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

// Deliver hands a message that arrived on the bus to the local user named
// target (queued while the user is away). It reports false when no such
// user is here. data is a relayed message as Publish received it.
func (h *Hub) Deliver(target string, data []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	return h.deliverLocked(target, data, nil, "") == ""
}

// DeliverAll hands a message without a target that arrived on the bus to
// every local connection. data is a relayed message as Presence.Broadcast
// received it.
func (h *Hub) DeliverAll(data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for c := range h.clients {
		h.sendRawLocked(c, data)
	}
}

// RemoteUsers are the users of the other nodes of a cluster, as a
// Presence bus gives them to Hub.SetRemoteUsers.
type RemoteUsers struct {
	// Users are connected names, shown in user lists.
	Users []string
	// Reserved are names held for a resume; like Users, local users
	// cannot take them.
	Reserved []string
	// Yield are names that users of this hub hold too (two nodes took a
	// name at the same time) and that the cluster gave to the other
	// node: the local holders are renamed as if they had asked for it
	// now, and told with rejectusername.
	Yield []string
}

// SetRemoteUsers replaces the users of the other nodes of a cluster.
// Every connection gets the new user list when it changed.
func (h *Hub) SetRemoteUsers(r RemoteUsers) {
	users := slices.Clone(r.Users)
	slices.Sort(users)
	users = slices.Compact(users)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	names := make(map[string]struct{}, len(r.Reserved)+len(users))
	for _, n := range slices.Concat(users, r.Reserved) {
		names[n] = struct{}{}
	}
	changed := !slices.Equal(users, h.remoteUsers)
	h.remoteUsers, h.remoteNames = users, names
	for _, name := range r.Yield {
		s := h.byName[name]
		if s == nil {
			continue
		}
		delete(h.byName, name)
		s.name = h.freeNameLocked(name, s)
		h.byName[s.name] = s
		h.log.Info("user renamed: the name was taken on another node at the same time", "name", name, "new", s.name)
		if s.client != nil {
			h.sendLocked(s.client, Message{Type: TypeRejectUsername, ID: s.client.id, Name: s.name})
		}
		changed = true
	}
	if changed {
		h.broadcastUserListLocked()
	}
}

// freeNameLocked returns want, or want with the lowest number appended
// that makes it a name that neither another session of this hub nor a
// user of another node holds.
func (h *Hub) freeNameLocked(want string, s *session) string {
	name := want
	for i := 1; (h.byName[name] != nil && h.byName[name] != s) || h.takenRemotelyLocked(name); i++ {
		suffix := strconv.Itoa(i)
		name = truncate(want, MaxNameLen-len(suffix)) + suffix
	}
	return name
}

// takenRemotelyLocked reports whether a user of another node holds name.
func (h *Hub) takenRemotelyLocked(name string) bool {
	_, ok := h.remoteNames[name]
	return ok
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
	if h.byName[s.name] == s {
		delete(h.byName, s.name)
	}
	delete(h.byToken, s.token)
}

// broadcastUserListLocked sends the names of connected users, of this hub
// and of the other nodes, to every connection.
func (h *Hub) broadcastUserListLocked() {
	users := make([]string, 0, len(h.byName)+len(h.remoteUsers))
	for c := range h.clients {
		if c.sess != nil && c.sess.client == c {
			users = append(users, c.sess.name)
		}
	}
	h.announceLocked(users)
	users = append(users, h.remoteUsers...)
	slices.Sort(users)
	users = slices.Compact(users)
	h.cfg.Metrics.setUsers(len(h.byName))
	data, err := Encode(Message{Type: TypeUserList, Users: users})
	if err != nil {
		return
	}
	for c := range h.clients {
		h.sendRawLocked(c, data)
	}
}

// announceLocked gives a Presence bus this hub's users: connected, the
// connected names when the caller has them, and away.
func (h *Hub) announceLocked(connected []string) {
	p, ok := h.cfg.Bus.(Presence)
	if !ok || h.closed {
		return // Shutdown announced the end
	}
	if connected == nil {
		for c := range h.clients {
			if c.sess != nil && c.sess.client == c {
				connected = append(connected, c.sess.name)
			}
		}
	}
	users := slices.Clone(connected)
	slices.Sort(users)
	var away []string
	for name, s := range h.byName {
		if s.client == nil {
			away = append(away, name)
		}
	}
	slices.Sort(away)
	p.Announce(users, away)
}

// Shutdown tells every client that the server is going away and closes its
// connection with 1001 after its queued messages. New connections are
// refused from then on.
func (h *Hub) Shutdown(reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for c := range h.clients {
		h.sendLocked(c, Message{Type: TypeError, Code: CodeShutdown, Message: reason})
		c.dropped = true
		c.conn.Close(StatusGoingAway, reason)
	}
	for _, s := range h.byName {
		if s.timer != nil {
			s.timer.Stop()
			s.timer = nil
		}
		s.dead = true
	}
	clear(h.byName)
	clear(h.byToken)
	if p, ok := h.cfg.Bus.(Presence); ok {
		p.Announce(nil, nil) // the other nodes drop this hub's users now
	}
}

// newToken returns a random resume token.
func newToken() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}
