package signal

import (
	"fmt"
	"log/slog"
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
	byKey   map[string]*session // by nameKey: names unique regardless of case
	byToken map[string]*session

	// Users of other nodes, from Hub.SetRemoteUsers: connected names for
	// the user list, and (by nameKey) every name they hold for uniqueness.
	remoteUsers []string
	remoteNames map[string]struct{}

	// The user list's pacing (userListChangedLocked): the earliest time
	// of the next list, and the timer that sends a held-back one.
	listNext  time.Time
	listTimer *time.Timer

	// now is the rate limiters' clock: time.Now, or a test's.
	now func() time.Time

	connectionsTotal, errors, drops uint64        // guarded by mu
	scratch                         []byte        // guarded by mu: one relayed message
	messages                        atomic.Uint64 // counted outside mu
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
		byKey:   make(map[string]*session),
		byToken: make(map[string]*session),
		now:     time.Now,
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
func (c *Client) Disconnect() { c.disconnect(false) }

// Leave removes a client that closed its connection normally (WebSocket
// status 1000): it left, so its name is free at once, with no resume.
func (c *Client) Leave() { c.disconnect(true) }

func (c *Client) disconnect(left bool) {
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
	if h.cfg.ResumeGrace > 0 && !h.closed && !left {
		s.awayUntil = time.Now().Add(h.cfg.ResumeGrace)
		h.scheduleLocked(s)
		h.log.Debug("user away", "id", c.id, "name", s.name)
	} else {
		h.removeSessionLocked(s)
	}
	h.userListChangedLocked()
}

// Handle processes one message received from the client. It must not be
// called concurrently for the same client; a transport calls it from its
// read loop. Problems are answered with error messages, never by closing.
func (c *Client) Handle(data []byte) {
	h := c.hub
	h.messages.Add(1)
	if c.limiter != nil {
		// A flood ends when half the burst has come back; a client
		// that keeps sending faster than the rate gets one error.
		now := h.now()
		if c.limited && c.limiter.TokensAt(now) >= float64(h.cfg.Burst)/2 {
			c.limited = false
		}
		if !c.limiter.AllowN(now, 1) {
			h.cfg.Metrics.message(rateLimitedType)
			if !c.limited {
				c.limited = true
				c.reply(Message{Type: TypeError, Code: CodeRateLimited, Ref: peekType(data),
					Message: "too many messages; messages are dropped until the rate falls"})
			}
			return
		}
	}
	first := !c.gotFirst
	c.gotFirst = true
	if len(data) <= h.cfg.MaxMessageSize {
		if fm, ok := scanFast(data); ok {
			h.cfg.Metrics.message(fm.typ)
			h.relayFast(c, fm)
			return
		}
	}
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
		h.cfg.Metrics.dropped(dropSlowConsumer)
		h.log.Info("dropping slow client", "id", c.id)
		c.conn.Close(StatusPolicyViolation, "send queue full")
	}
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
	if h.listTimer != nil {
		h.listTimer.Stop()
		h.listTimer = nil
	}
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
	clear(h.byKey)
	clear(h.byToken)
	if p, ok := h.cfg.Bus.(Presence); ok {
		p.Announce(nil, nil) // the other nodes drop this hub's users now
	}
}
