package turnserver

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"

	"github.com/rtckit/rtckit/internal/netaddr"
)

const (
	// errorBackoff is the pause after repeated socket errors, so that a
	// persistent failure does not spin a CPU.
	errorBackoff = 50 * time.Millisecond
	// errorsBeforeBackoff is how many consecutive read errors are retried
	// at once before pausing.
	errorsBeforeBackoff = 8
)

// packetConn wraps a UDP socket handed to pion: the listener or a relay.
// pion ends a listener's read loop, or deletes an allocation, on the first
// read error; packetConn retries transient errors so that only closing the
// socket ends it. A relay socket also counts the traffic to and from peers
// and is closed by the server at shutdown whatever pion does.
type packetConn struct {
	net.PacketConn
	s      *Server
	relay  bool
	closed atomic.Bool
	once   sync.Once
}

// ReadFrom reads the next datagram, retrying past transient errors.
func (c *packetConn) ReadFrom(p []byte) (int, net.Addr, error) {
	consecutive := 0
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err == nil {
			if c.relay {
				c.s.stats.packetsFromPeers.Add(1)
				c.s.stats.bytesFromPeers.Add(uint64(n))
			}
			return n, addr, nil
		}
		if c.closed.Load() || c.s.isClosed() || isTimeout(err) || errors.Is(err, net.ErrClosed) {
			return n, addr, err
		}
		if n > 0 && errors.Is(err, io.ErrShortBuffer) {
			continue // an oversized datagram (vnet reports them): drop it
		}
		c.s.stats.errors.Add(1)
		c.s.log.Warn("UDP read failed", "socket", c.PacketConn.LocalAddr(), "relay", c.relay, "err", err)
		if consecutive++; consecutive > errorsBeforeBackoff && !c.s.pause(errorBackoff) {
			return n, addr, err
		}
	}
}

// WriteTo sends one datagram, counting relayed traffic. It counts before
// sending, so that whoever sees the peer's answer also sees the count; a
// failed send takes the count back.
func (c *packetConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.relay {
		return c.PacketConn.WriteTo(p, addr)
	}
	c.s.stats.packetsToPeers.Add(1)
	c.s.stats.bytesToPeers.Add(uint64(len(p)))
	n, err := c.PacketConn.WriteTo(p, addr)
	if err != nil {
		c.s.stats.packetsToPeers.Add(^uint64(0))
		c.s.stats.bytesToPeers.Add(^uint64(len(p) - 1))
	}
	return n, err
}

// Close closes the socket once; later calls return nil, so that pion and
// the server may both close it.
func (c *packetConn) Close() error {
	var err error
	c.once.Do(func() {
		c.closed.Store(true)
		err = c.PacketConn.Close()
		if c.relay {
			c.s.untrackRelay(c)
		}
	})
	return err
}

// relayListener wraps an RFC 6062 TCP relay listener so that the
// connections it accepts from peers are counted and the server can close it.
type relayListener struct {
	net.Listener
	s    *Server
	once sync.Once
}

// Accept returns the next peer connection.
func (l *relayListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.s.trackRelayConn(c)
}

// Close closes the listener once.
func (l *relayListener) Close() error {
	var err error
	l.once.Do(func() {
		err = l.Listener.Close()
		l.s.untrackRelay(l)
	})
	return err
}

// relayConn is an RFC 6062 peer data connection: what is read from it came
// from the peer, what is written goes to it.
type relayConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (c *relayConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.s.stats.bytesFromPeers.Add(uint64(n))
	return n, err
}

// Write counts before writing, as packetConn.WriteTo does, and takes back
// what was not written.
func (c *relayConn) Write(p []byte) (int, error) {
	c.s.stats.bytesToPeers.Add(uint64(len(p)))
	n, err := c.Conn.Write(p)
	if n < len(p) {
		c.s.stats.bytesToPeers.Add(^uint64(len(p) - n - 1))
	}
	return n, err
}

// Close closes the connection once.
func (c *relayConn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.Conn.Close()
		c.s.untrackRelay(c)
	})
	return err
}

// relayGenerator wraps one of pion's relay address generators so that every
// relay socket it creates is counted and tracked by the server.
type relayGenerator struct {
	inner turn.RelayAddressGenerator
	s     *Server
}

// Validate implements turn.RelayAddressGenerator.
func (g *relayGenerator) Validate() error { return g.inner.Validate() }

// AllocatePacketConn implements turn.RelayAddressGenerator.
func (g *relayGenerator) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	c, addr, err := g.inner.AllocatePacketConn(conf)
	if err != nil {
		return nil, nil, err
	}
	pc := &packetConn{PacketConn: c, s: g.s, relay: true}
	if err := g.s.trackRelay(pc); err != nil {
		return nil, nil, err
	}
	return pc, addr, nil
}

// AllocateListener implements turn.RelayAddressGenerator.
func (g *relayGenerator) AllocateListener(conf turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	l, addr, err := g.inner.AllocateListener(conf)
	if err != nil {
		return nil, nil, err
	}
	rl := &relayListener{Listener: l, s: g.s}
	if err := g.s.trackRelay(rl); err != nil {
		return nil, nil, err
	}
	return rl, addr, nil
}

// AllocateConn implements turn.RelayAddressGenerator. pion asks to bind the
// address it announced; behind a 1:1 NAT that is the external IP, which is
// not an address of this host, so the relay IP is bound instead.
func (g *relayGenerator) AllocateConn(conf turn.AllocateConnConfig) (net.Conn, error) {
	if a, ok := conf.LocalAddr.(*net.TCPAddr); ok && g.s.cfg.ExternalIP.IsValid() {
		local := *a
		local.IP, local.Zone = g.s.cfg.RelayIP.AsSlice(), g.s.cfg.RelayIP.Zone()
		conf.LocalAddr = &local
	}
	c, err := g.inner.AllocateConn(conf)
	if err != nil {
		return nil, err
	}
	return g.s.trackRelayConn(c)
}

// clientListener wraps the TCP listener that clients connect to (also under
// TLS). It retries transient accept errors, which would otherwise end
// pion's accept loop for good, refuses connections beyond
// Config.MaxTCPConns, and tracks the connections so that Close ends them.
type clientListener struct {
	net.Listener
	s      *Server
	closed atomic.Bool
	once   sync.Once
}

// Accept returns the next client connection.
func (l *clientListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if l.closed.Load() || l.s.isClosed() || errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			l.s.stats.errors.Add(1)
			l.s.log.Warn("TCP accept failed", "listener", l.Addr(), "err", err)
			if !l.s.pause(errorBackoff) {
				return nil, err
			}
			continue
		}
		if cc := l.s.trackClient(c); cc != nil {
			return cc, nil
		}
		_ = c.Close() // refused: the server is closing or full
	}
}

// Close closes the listener once.
func (l *clientListener) Close() error {
	var err error
	l.once.Do(func() {
		l.closed.Store(true)
		err = l.Listener.Close()
	})
	return err
}

// clientConn is a client's TCP connection. It closes itself when it has
// carried nothing for Config.TCPIdleTimeout, or no authenticated request
// within Config.TCPAuthTimeout of being accepted; timers check these rather
// than read deadlines, which pion and crypto/tls set themselves.
type clientConn struct {
	net.Conn
	s         *Server
	idle      time.Duration
	last      atomic.Int64 // UnixNano of the last read or write
	timer     *time.Timer
	authTimer *time.Timer
	closed    atomic.Bool
	once      sync.Once

	// key is the remote address as addrKey names it; source is what
	// Server.unauth counts it under.
	key    string
	source netip.Addr
	// authed is set once the connection carried an authenticated request.
	// It is guarded by Server.mu.
	authed bool
}

func (c *clientConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *clientConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// checkIdle runs on the idle timer: it closes the connection if nothing
// moved for the idle timeout, or sets the timer for when that would be.
func (c *clientConn) checkIdle() {
	if c.closed.Load() {
		return
	}
	left := c.idle - time.Since(time.Unix(0, c.last.Load()))
	if left > 0 {
		c.timer.Reset(left)
		return
	}
	c.s.log.Info("closing an idle TCP connection", "from", c.RemoteAddr(), "idle", c.idle)
	_ = c.Close()
}

// checkAuth runs on the authentication timer: it closes the connection if
// it has not carried an authenticated request yet.
func (c *clientConn) checkAuth() {
	c.s.mu.Lock()
	authed := c.authed
	c.s.mu.Unlock()
	if authed || c.closed.Load() {
		return
	}
	c.s.log.Info("closing a TCP connection that did not authenticate", "from", c.RemoteAddr(), "timeout", c.s.cfg.TCPAuthTimeout)
	_ = c.Close()
}

// Close closes the connection once and stops tracking it.
func (c *clientConn) Close() error {
	var err error
	c.once.Do(func() {
		c.closed.Store(true)
		c.timer.Stop()
		c.authTimer.Stop()
		// Untracked first, so that the counters have dropped it by the
		// time the client sees the close.
		c.s.untrackClient(c)
		err = c.Conn.Close()
	})
	return err
}

// trackClient registers a new client connection, or returns nil when the
// server is closing or full, or the connection's source holds
// MaxUnauthTCPConnsPerSource connections that have not authenticated.
func (s *Server) trackClient(c net.Conn) *clientConn {
	cc := &clientConn{Conn: c, s: s, idle: s.cfg.TCPIdleTimeout, key: addrKey(c.RemoteAddr())}
	if ap, ok := netaddr.AddrPortOf(c.RemoteAddr()); ok {
		cc.source = netaddr.SourceKey(ap.Addr())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if len(s.clients) >= s.cfg.MaxTCPConns {
		s.stats.tcpRejected.Add(1)
		s.log.Warn("too many TCP connections, refusing one", "from", c.RemoteAddr())
		return nil
	}
	if s.unauth[cc.source] >= MaxUnauthTCPConnsPerSource {
		s.stats.tcpRejected.Add(1)
		s.log.Info("too many unauthenticated TCP connections from one source, refusing one", "from", c.RemoteAddr())
		return nil
	}
	s.unauth[cc.source]++
	s.byAddr[cc.key] = cc
	cc.last.Store(time.Now().UnixNano())
	// Armed only once both timers are set, which checkIdle and Close read.
	cc.timer = time.AfterFunc(time.Duration(math.MaxInt64), cc.checkIdle)
	cc.authTimer = time.AfterFunc(time.Duration(math.MaxInt64), cc.checkAuth)
	cc.timer.Reset(cc.idle)
	cc.authTimer.Reset(s.cfg.TCPAuthTimeout)
	s.clients[cc] = struct{}{}
	s.stats.tcpAccepted.Add(1)
	s.stats.tcpOpen.Add(1)
	return cc
}

// authenticated marks the client connection from src, if there is one, as
// having carried an authenticated request: it no longer counts against its
// source's MaxUnauthTCPConnsPerSource, and the authentication timeout no
// longer applies to it.
func (s *Server) authenticated(src net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byAddr[addrKey(src)]
	if c == nil || c.authed {
		return
	}
	c.authed = true
	s.releaseUnauth(c.source)
	c.authTimer.Stop()
}

// releaseUnauth takes one unauthenticated connection off source's count.
// The caller holds s.mu.
func (s *Server) releaseUnauth(source netip.Addr) {
	if s.unauth[source]--; s.unauth[source] <= 0 {
		delete(s.unauth, source)
	}
}

func (s *Server) untrackClient(c *clientConn) {
	s.mu.Lock()
	_, ok := s.clients[c]
	delete(s.clients, c)
	if ok && !c.authed {
		s.releaseUnauth(c.source)
	}
	if s.byAddr[c.key] == c {
		delete(s.byAddr, c.key)
	}
	s.mu.Unlock()
	if ok {
		s.stats.tcpOpen.Add(-1)
	}
}

// trackRelay registers a relay socket for Close to end, or closes it and
// fails when the server is already closing.
func (s *Server) trackRelay(c io.Closer) error {
	s.mu.Lock()
	if !s.closed {
		s.relays[c] = struct{}{}
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	_ = c.Close()
	return fmt.Errorf("%w: no new relays", ErrServerClosed)
}

// trackRelayConn wraps and registers an RFC 6062 peer connection.
func (s *Server) trackRelayConn(c net.Conn) (net.Conn, error) {
	rc := &relayConn{Conn: c, s: s}
	if err := s.trackRelay(rc); err != nil {
		return nil, err
	}
	return rc, nil
}

func (s *Server) untrackRelay(c io.Closer) {
	s.mu.Lock()
	delete(s.relays, c)
	s.mu.Unlock()
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
