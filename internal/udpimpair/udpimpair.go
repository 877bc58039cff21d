// Package udpimpair is a userspace UDP proxy that delays and drops
// datagrams. Tests put it in front of a UDP server (a TURN server, say) to
// give a path a long round trip where the kernel's netem queueing
// discipline is missing.
//
// The proxy listens on one socket and forwards each datagram to a fixed
// target. Every client address gets its own upstream socket, so the target
// sees one distinct address per client and its replies find their way
// back. Each direction has its own constant delay and random loss, and
// every queue is bounded: a datagram that finds its queue full is dropped
// and counted.
package udpimpair

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DefaultQueueLen is how many datagrams may wait in one direction of
	// one client when Config.QueueLen is zero: 100 ms of a 10 Mbit/s stream
	// of full-size datagrams.
	DefaultQueueLen = 1024
	// DefaultMaxClients bounds the number of client addresses when
	// Config.MaxClients is zero.
	DefaultMaxClients = 64
	// maxDatagram is the largest datagram the proxy forwards whole.
	maxDatagram = 65535
)

// ErrConfig reports an unusable Config.
var ErrConfig = errors.New("udpimpair: bad configuration")

// Impairment degrades one direction of the proxy.
type Impairment struct {
	// Delay holds every datagram back this long before it is sent on.
	Delay time.Duration
	// Loss is the percentage (0 to 100) of datagrams dropped at random.
	Loss float64
}

// Config describes a Proxy.
type Config struct {
	// Target receives what clients send; its replies go back to the client.
	Target netip.AddrPort
	// Up impairs datagrams from clients to Target, Down those from Target
	// back to clients.
	Up, Down Impairment
	// Dial opens the unconnected socket that carries one client's traffic to
	// Target, for example inside a network namespace. Nil listens on an
	// ephemeral UDP port of the host.
	Dial func() (net.PacketConn, error)
	// QueueLen bounds the datagrams waiting in each direction of each
	// client; zero means DefaultQueueLen.
	QueueLen int
	// MaxClients bounds the client addresses served; datagrams from further
	// clients are dropped. Zero means DefaultMaxClients.
	MaxClients int
	// Seed makes the random losses repeatable; zero seeds from the runtime.
	Seed uint64
}

func (c Config) validate() error {
	if !c.Target.IsValid() || c.Target.Port() == 0 {
		return fmt.Errorf("%w: target %v", ErrConfig, c.Target)
	}
	for _, imp := range []Impairment{c.Up, c.Down} {
		if imp.Delay < 0 || imp.Loss < 0 || imp.Loss > 100 {
			return fmt.Errorf("%w: delay %v, loss %v%%", ErrConfig, imp.Delay, imp.Loss)
		}
	}
	if c.QueueLen < 0 || c.MaxClients < 0 {
		return fmt.Errorf("%w: queue length %d, max clients %d", ErrConfig, c.QueueLen, c.MaxClients)
	}
	return nil
}

// DirectionStats counts what happened to the datagrams of one direction.
type DirectionStats struct {
	// Received counts datagrams read; Sent those written on.
	Received, Sent uint64
	// Lost counts random drops, Overflow drops at a full queue, and Failed
	// writes that returned an error.
	Lost, Overflow, Failed uint64
}

// Stats counts the proxy's work in each direction.
type Stats struct {
	Up, Down DirectionStats
	// Clients is the number of client addresses seen; Refused counts
	// datagrams from clients beyond Config.MaxClients or whose upstream
	// socket could not be opened.
	Clients int
	Refused uint64
}

// counters is the live form of DirectionStats.
type counters struct {
	received, sent, lost, overflow, failed atomic.Uint64
}

func (c *counters) snapshot() DirectionStats {
	return DirectionStats{
		Received: c.received.Load(), Sent: c.sent.Load(),
		Lost: c.lost.Load(), Overflow: c.overflow.Load(), Failed: c.failed.Load(),
	}
}

// Proxy is a running impairing UDP proxy. Close stops it.
type Proxy struct {
	pc  net.PacketConn
	cfg Config

	done    chan struct{}
	wg      sync.WaitGroup
	up      counters
	down    counters
	refused atomic.Uint64

	randMu sync.Mutex
	rand   *rand.Rand

	mu      sync.Mutex
	closed  bool
	clients map[netip.AddrPort]*client

	closeOnce sync.Once
	closeErr  error
}

// New starts a proxy that reads clients' datagrams from pc, which it owns
// from now on and closes on Close.
func New(pc net.PacketConn, cfg Config) (*Proxy, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	if cfg.MaxClients == 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.Dial == nil {
		cfg.Dial = func() (net.PacketConn, error) { return net.ListenPacket("udp", ":0") }
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	p := &Proxy{
		pc:      pc,
		cfg:     cfg,
		done:    make(chan struct{}),
		rand:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		clients: map[netip.AddrPort]*client{},
	}
	p.wg.Add(1)
	go p.readClients()
	return p, nil
}

// Addr is the address clients send to.
func (p *Proxy) Addr() net.Addr { return p.pc.LocalAddr() }

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	n := len(p.clients)
	p.mu.Unlock()
	return Stats{Up: p.up.snapshot(), Down: p.down.snapshot(), Clients: n, Refused: p.refused.Load()}
}

// Close stops the proxy: it closes every socket, drops the datagrams still
// queued and returns once all its goroutines have ended.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		clients := p.clients
		p.mu.Unlock()
		close(p.done)
		errs := []error{p.pc.Close()}
		for _, c := range clients {
			errs = append(errs, c.upstream.Close())
		}
		p.wg.Wait()
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}

// drop decides at random whether a datagram is lost.
func (p *Proxy) drop(lossPercent float64) bool {
	if lossPercent <= 0 {
		return false
	}
	p.randMu.Lock()
	defer p.randMu.Unlock()
	return p.rand.Float64()*100 < lossPercent
}

// readClients reads datagrams from clients and queues them for Target.
func (p *Proxy) readClients() {
	defer p.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := p.pc.ReadFrom(buf)
		if err != nil {
			if p.stopped(err) {
				return
			}
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		src := ua.AddrPort()
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		c := p.client(src)
		if c == nil {
			continue
		}
		p.up.received.Add(1)
		if p.drop(p.cfg.Up.Loss) {
			p.up.lost.Add(1)
			continue
		}
		c.up.push(buf[:n], p.cfg.Up.Delay, &p.up)
	}
}

// stopped tells whether a read error means the proxy is shutting down.
func (p *Proxy) stopped(err error) bool {
	select {
	case <-p.done:
		return true
	default:
	}
	return errors.Is(err, net.ErrClosed)
}

// client returns the client for src, starting one if needed; nil when the
// datagram must be refused.
func (p *Proxy) client(src netip.AddrPort) *client {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if c, ok := p.clients[src]; ok {
		return c
	}
	if len(p.clients) >= p.cfg.MaxClients {
		p.refused.Add(1)
		return nil
	}
	upstream, err := p.cfg.Dial()
	if err != nil {
		p.refused.Add(1)
		return nil
	}
	c := &client{
		upstream: upstream,
		up:       newQueue(p.cfg.QueueLen),
		down:     newQueue(p.cfg.QueueLen),
	}
	p.clients[src] = c
	target := net.UDPAddrFromAddrPort(p.cfg.Target)
	back := net.UDPAddrFromAddrPort(src)
	p.wg.Add(3)
	go p.readTarget(c)
	go p.send(c.up, upstream, target, &p.up)
	go p.send(c.down, p.pc, back, &p.down)
	return c
}

// readTarget reads Target's replies to one client and queues them back.
func (p *Proxy) readTarget(c *client) {
	defer p.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := c.upstream.ReadFrom(buf)
		if err != nil {
			if p.stopped(err) {
				return
			}
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok || netip.AddrPortFrom(ua.AddrPort().Addr().Unmap(), ua.AddrPort().Port()) != p.cfg.Target {
			continue // only the target may answer
		}
		p.down.received.Add(1)
		if p.drop(p.cfg.Down.Loss) {
			p.down.lost.Add(1)
			continue
		}
		c.down.push(buf[:n], p.cfg.Down.Delay, &p.down)
	}
}

// send writes a queue's datagrams to dst through pc, each at its due time,
// until the proxy stops.
func (p *Proxy) send(q queue, pc net.PacketConn, dst net.Addr, cnt *counters) {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var d datagram
		select {
		case <-p.done:
			return
		case d = <-q:
		}
		if wait := time.Until(d.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-p.done:
				return
			case <-timer.C:
			}
		}
		if _, err := pc.WriteTo(d.data, dst); err != nil {
			cnt.failed.Add(1)
			continue
		}
		cnt.sent.Add(1)
	}
}

// client is one client address's upstream socket and queues.
type client struct {
	upstream net.PacketConn
	up, down queue
}

// datagram is a queued datagram and when to send it.
type datagram struct {
	data []byte
	due  time.Time
}

// queue holds datagrams in the order they are due; with a constant delay
// that is the order they arrived.
type queue chan datagram

func newQueue(n int) queue { return make(queue, n) }

// push copies b into the queue, due after delay, or counts an overflow.
func (q queue) push(b []byte, delay time.Duration, cnt *counters) {
	d := datagram{data: append([]byte(nil), b...), due: time.Now().Add(delay)}
	select {
	case q <- d:
	default:
		cnt.overflow.Add(1)
	}
}
