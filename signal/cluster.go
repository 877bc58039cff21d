package signal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Defaults of ClusterConfig.
const (
	// DefaultClusterName is the cluster name, the subject segment that
	// separates clusters sharing one NATS server.
	DefaultClusterName = "default"
	// DefaultHeartbeat is how often a node republishes its users.
	DefaultHeartbeat = 2 * time.Second
	// heartbeatsPerTTL is how many heartbeats a node may miss before the
	// others drop its users.
	heartbeatsPerTTL = 3
	// DefaultClusterConnectTimeout bounds connecting to NATS at start.
	DefaultClusterConnectTimeout = 5 * time.Second
	// DefaultClusterReconnectWait and DefaultClusterMaxReconnects bound
	// reconnecting after a lost NATS connection: about two minutes, after
	// which the node serves its own users only.
	DefaultClusterReconnectWait = time.Second
	DefaultClusterMaxReconnects = 120
	// clusterReconnectBuffer bounds what is buffered for NATS while
	// reconnecting.
	clusterReconnectBuffer = 1 << 20
	// clusterQueue bounds the messages waiting to be published and those
	// received and not yet handled; beyond it messages are dropped.
	clusterQueue = 1024
	// clusterFlushTimeout bounds the flushes at start and close.
	clusterFlushTimeout = 2 * time.Second
	// subjectPrefix starts every subject: rtckit.signal.<cluster>.…
	subjectPrefix = "rtckit.signal."
)

// ErrCluster wraps errors connecting a Cluster to NATS.
var ErrCluster = errors.New("signal: cluster")

// clusterNameRE is a cluster name: one NATS subject token.
var clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Cluster joins hubs on several nodes through NATS: it is the Bus (and
// Presence) of one hub. Each node publishes its users on
// rtckit.signal.<name>.presence on every change and every heartbeat, and
// merges the other nodes' users into its hub; a message for a user of
// another node is published on rtckit.signal.<name>.node.<id> of that node,
// and a message without a target on rtckit.signal.<name>.broadcast.
// docs/signal-serve.md describes the guarantees.
//
// Create it with NewCluster, put it in HubConfig.Bus, Start it with the
// hub, and Close it after the hub's Shutdown.
type Cluster struct {
	cfg    ClusterConfig
	log    *slog.Logger
	nc     *nats.Conn
	prefix string // rtckit.signal.<name>.

	in     chan *nats.Msg
	out    chan outMsg
	kick   chan bool // announce now; true also asks the others to
	stop   chan struct{}
	wg     sync.WaitGroup
	closed sync.Once
	subs   []*nats.Subscription

	mu      sync.Mutex
	hub     *Hub
	started bool
	users   []string          // this hub's connected users
	away    []string          // this hub's away users
	where   map[string]string // remote name → node id
	seq     uint64
}

// outMsg is a message waiting to be published.
type outMsg struct {
	subject string
	data    []byte
}

// presenceMsg is the body of a presence message: a node's full user list.
type presenceMsg struct {
	// Node is the sender's node id.
	Node string `json:"node"`
	// Seq grows with every message of a node; older ones are ignored.
	Seq uint64 `json:"seq"`
	// Users are the node's connected users, Away those reserved for a
	// resume.
	Users []string `json:"users,omitempty"`
	Away  []string `json:"away,omitempty"`
	// TTLMS is how long receivers keep this list without a newer one.
	TTLMS int64 `json:"ttl_ms"`
	// Sync asks every node to publish its list now (a node starting or
	// reconnecting).
	Sync bool `json:"sync,omitempty"`
	// Leave tells the others to drop the node's users now.
	Leave bool `json:"leave,omitempty"`
}

// relayMsg is the body of a targeted (node.<id>) or broadcast message: a
// relayed message as the origin hub stamped it.
type relayMsg struct {
	Node   string          `json:"node"`
	Target string          `json:"target,omitempty"`
	Data   json.RawMessage `json:"data"`
}

// remoteNode is what this node knows of another.
type remoteNode struct {
	seq         uint64
	users, away []string
	expires     time.Time
}

// NewCluster connects to NATS. It does not route anything before Start.
// Errors wrap ErrInvalidConfig (a bad configuration) or ErrCluster.
func NewCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	cfg = cfg.withDefaults()
	if err := CheckClusterURL(cfg.URL); err != nil {
		return nil, err
	}
	if err := CheckClusterName(cfg.Name); err != nil {
		return nil, err
	}
	if !clusterNameRE.MatchString(cfg.NodeID) {
		return nil, fmt.Errorf("%w: node id %q: 1 to 64 letters, digits, - or _", ErrInvalidConfig, cfg.NodeID)
	}
	timeout := cfg.ConnectTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCluster, err)
	}
	c := &Cluster{
		cfg:    cfg,
		log:    cfg.Logger.With("node", cfg.NodeID),
		prefix: subjectPrefix + cfg.Name + ".",
		in:     make(chan *nats.Msg, clusterQueue),
		out:    make(chan outMsg, clusterQueue),
		kick:   make(chan bool, 1),
		stop:   make(chan struct{}),
		where:  make(map[string]string),
		seq:    uint64(time.Now().UnixNano()), //nolint:gosec // G115: positive; grows across restarts of a node
	}
	nc, err := nats.Connect(cfg.URL,
		nats.Name("rtckit-signal-"+cfg.NodeID),
		nats.Timeout(timeout),
		nats.NoEcho(),
		nats.MaxReconnects(cfg.MaxReconnects),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.ReconnectBufSize(clusterReconnectBuffer),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			c.log.Warn("cluster connection lost; reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.log.Info("cluster connection back", "server", nc.ConnectedUrlRedacted())
			c.announce(true)
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			select {
			case <-c.stop:
				c.log.Debug("cluster connection closed")
			default:
				c.log.Error("cluster connection lost for good; serving this node's users only")
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.log.Warn("cluster error", "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: connecting to NATS: %w", ErrCluster, err)
	}
	c.nc = nc
	return c, nil
}

// NodeID returns this node's id.
func (c *Cluster) NodeID() string { return c.cfg.NodeID }

// Name returns the cluster name.
func (c *Cluster) Name() string { return c.cfg.Name }

// Start subscribes to the cluster's subjects and starts routing for h, the
// hub whose HubConfig.Bus is c; it asks the other nodes for their users.
func (c *Cluster) Start(h *Hub) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return fmt.Errorf("%w: already started", ErrCluster)
	}
	c.started, c.hub = true, h
	c.mu.Unlock()
	for _, subj := range []string{c.prefix + "presence", c.prefix + "broadcast", c.prefix + "node." + c.cfg.NodeID} {
		sub, err := c.nc.ChanSubscribe(subj, c.in)
		if err != nil {
			return fmt.Errorf("%w: subscribing to %s: %w", ErrCluster, subj, err)
		}
		c.subs = append(c.subs, sub)
	}
	if err := c.nc.FlushTimeout(clusterFlushTimeout); err != nil {
		return fmt.Errorf("%w: subscribing: %w", ErrCluster, err)
	}
	c.wg.Add(2)
	go c.send()
	go c.run(h)
	c.announce(true)
	return nil
}

// Close tells the other nodes that this node's users are gone, stops
// routing and closes the NATS connection. It may be called more than once.
func (c *Cluster) Close() error {
	var err error
	c.closed.Do(func() {
		close(c.stop)
		c.wg.Wait()
		for _, sub := range c.subs {
			_ = sub.Unsubscribe() // the connection closes next
		}
		if c.nc.IsConnected() {
			if data, merr := json.Marshal(presenceMsg{Node: c.cfg.NodeID, Seq: c.nextSeq(), Leave: true}); merr == nil {
				err = c.nc.Publish(c.prefix+"presence", data)
			}
			if ferr := c.nc.FlushTimeout(clusterFlushTimeout); err == nil {
				err = ferr
			}
		}
		c.nc.Close()
		if err != nil {
			err = fmt.Errorf("%w: leaving: %w", ErrCluster, err)
		}
	})
	return err
}

// Publish implements Bus: it queues data for the node holding target.
func (c *Cluster) Publish(target string, data []byte) bool {
	c.mu.Lock()
	node := c.where[target]
	c.mu.Unlock()
	if node == "" {
		return false
	}
	return c.enqueue(c.prefix+"node."+node, relayMsg{Node: c.cfg.NodeID, Target: target, Data: data})
}

// Broadcast implements Presence: it queues data for every other node.
func (c *Cluster) Broadcast(data []byte) {
	c.enqueue(c.prefix+"broadcast", relayMsg{Node: c.cfg.NodeID, Data: data})
}

// Announce implements Presence: it records this hub's users and has them
// published when they changed.
func (c *Cluster) Announce(users, away []string) {
	c.mu.Lock()
	changed := !slices.Equal(users, c.users) || !slices.Equal(away, c.away)
	if changed {
		c.users, c.away = slices.Clone(users), slices.Clone(away)
	}
	c.mu.Unlock()
	if changed {
		c.announce(false)
	}
}

// announce asks run to publish this node's users now, and with sync the
// other nodes' too. It never blocks.
func (c *Cluster) announce(sync bool) {
	for {
		select {
		case c.kick <- sync:
			return
		default:
		}
		select {
		case prev := <-c.kick: // merge with the pending request
			sync = sync || prev
		default:
		}
	}
}

// enqueue hands a message to the sender without blocking.
func (c *Cluster) enqueue(subject string, m relayMsg) bool {
	data, err := json.Marshal(m)
	if err != nil {
		c.log.Error("encoding a cluster message", "err", err)
		return false
	}
	select {
	case c.out <- outMsg{subject, data}:
		return true
	default:
		c.log.Warn("cluster send queue full; message dropped", "subject", subject)
		return false
	}
}

// send publishes queued messages until Close.
func (c *Cluster) send() {
	defer c.wg.Done()
	for {
		select {
		case m := <-c.out:
			if err := c.nc.Publish(m.subject, m.data); err != nil {
				c.log.Debug("cluster publish failed", "subject", m.subject, "err", err)
			}
		case <-c.stop:
			return
		}
	}
}

func (c *Cluster) nextSeq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	return c.seq
}

// run handles received messages, heartbeats and expiry until Close. It
// alone owns nodes and calls into the hub, so the hub sees the cluster's
// users in order.
func (c *Cluster) run(h *Hub) {
	defer c.wg.Done()
	tick := time.NewTicker(c.cfg.Heartbeat)
	defer tick.Stop()
	nodes := make(map[string]*remoteNode)
	for {
		select {
		case m := <-c.in:
			if c.handle(h, nodes, m) {
				c.apply(h, nodes)
			}
		case sync := <-c.kick:
			c.publishPresence(sync)
		case <-tick.C:
			c.publishPresence(false)
			now := time.Now()
			gone := false
			for id, n := range nodes {
				if !now.Before(n.expires) {
					c.log.Info("cluster node expired", "peer", id)
					delete(nodes, id)
					gone = true
				}
			}
			if gone {
				c.apply(h, nodes)
			}
		case <-c.stop:
			return
		}
	}
}

// handle processes one received message and reports whether the other
// nodes' users changed.
func (c *Cluster) handle(h *Hub, nodes map[string]*remoteNode, m *nats.Msg) bool {
	switch {
	case m.Subject == c.prefix+"presence":
		var p presenceMsg
		if err := json.Unmarshal(m.Data, &p); err != nil || p.Node == "" {
			c.log.Debug("bad presence message", "err", err)
			return false
		}
		if p.Node == c.cfg.NodeID {
			return false
		}
		if p.Sync {
			c.announce(false)
		}
		n := nodes[p.Node]
		if n != nil && p.Seq <= n.seq {
			return false
		}
		if p.Leave {
			if n != nil {
				c.log.Info("cluster node left", "peer", p.Node)
			}
			delete(nodes, p.Node)
			return n != nil
		}
		if n == nil {
			c.log.Info("cluster node joined", "peer", p.Node)
			n = &remoteNode{}
			nodes[p.Node] = n
		}
		ttl := time.Duration(p.TTLMS) * time.Millisecond
		if ttl <= 0 {
			ttl = heartbeatsPerTTL * c.cfg.Heartbeat
		}
		n.seq, n.users, n.away, n.expires = p.Seq, p.Users, p.Away, time.Now().Add(ttl)
		return true
	case m.Subject == c.prefix+"broadcast":
		var r relayMsg
		if err := json.Unmarshal(m.Data, &r); err != nil || len(r.Data) == 0 {
			c.log.Debug("bad broadcast message", "err", err)
			return false
		}
		h.DeliverAll(r.Data)
	default:
		var r relayMsg
		if err := json.Unmarshal(m.Data, &r); err != nil || r.Target == "" || len(r.Data) == 0 {
			c.log.Debug("bad relayed message", "err", err)
			return false
		}
		if !h.Deliver(r.Target, r.Data) {
			c.log.Debug("relayed message for a user not here", "target", r.Target, "from", r.Node)
		}
	}
	return false
}

// apply gives the hub the other nodes' users and updates the directory
// Publish routes by. A name on several nodes (a registration race) belongs
// to the lowest node id: Publish routes it there, and the other nodes
// rename their holder.
func (c *Cluster) apply(h *Hub, nodes map[string]*remoteNode) {
	where := make(map[string]string)
	owner := make(map[string]string) // by nameKey: names differing in case are one name
	var r RemoteUsers
	for _, id := range slices.Sorted(maps.Keys(nodes)) {
		n := nodes[id]
		r.Users = append(r.Users, n.users...)
		r.Reserved = append(r.Reserved, n.away...)
		for _, name := range slices.Concat(n.users, n.away) {
			if _, ok := where[name]; !ok {
				where[name] = id
			}
			if _, ok := owner[nameKey(name)]; !ok {
				owner[nameKey(name)] = id
			}
		}
	}
	c.mu.Lock()
	c.where = where
	for _, name := range slices.Concat(c.users, c.away) {
		if id, ok := owner[nameKey(name)]; ok && id < c.cfg.NodeID {
			r.Yield = append(r.Yield, name)
		}
	}
	c.mu.Unlock()
	h.SetRemoteUsers(r)
}

// publishPresence publishes this node's users; with sync it asks the
// others to publish theirs.
func (c *Cluster) publishPresence(sync bool) {
	c.mu.Lock()
	c.seq++
	p := presenceMsg{Node: c.cfg.NodeID, Seq: c.seq, Users: c.users, Away: c.away,
		TTLMS: (heartbeatsPerTTL * c.cfg.Heartbeat).Milliseconds(), Sync: sync}
	data, err := json.Marshal(p)
	c.mu.Unlock()
	if err != nil {
		c.log.Error("encoding presence", "err", err)
		return
	}
	if err := c.nc.Publish(c.prefix+"presence", data); err != nil {
		c.log.Debug("publishing presence failed", "err", err)
	}
}
