// Package stunserver is an RFC 5780-capable STUN server for labs and
// self-hosting.
//
// It answers Binding requests with XOR-MAPPED-ADDRESS, MAPPED-ADDRESS,
// RESPONSE-ORIGIN and, when an alternate IP is configured, OTHER-ADDRESS. With
// two IPs and two ports it honours CHANGE-REQUEST by answering from the
// changed address, which is what NAT behaviour discovery (RFC 5780 §4) needs,
// and RESPONSE-PORT for binding lifetime measurements. A per-source token
// bucket keeps it from being used as a traffic reflector.
//
// Every socket is created through a transport.Net, so the server runs on
// pion's virtual network (vnet) as well as on the host's.
package stunserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"

	"github.com/rtckit/rtckit/internal/netaddr"
)

const (
	// maxRequestSize bounds the requests the server reads. Binding requests
	// are a few dozen bytes; larger UDP datagrams and TCP messages are
	// dropped (and the TCP connection closed).
	maxRequestSize = 4096
	// tcpWriteTimeout bounds writing one response on a TCP connection.
	tcpWriteTimeout = 5 * time.Second
	// errorBackoff is the pause after repeated socket errors, so that a
	// persistent failure does not spin a CPU.
	errorBackoff = 50 * time.Millisecond
	// errorsBeforeBackoff is how many consecutive read errors are retried
	// at once before pausing.
	errorsBeforeBackoff = 8
	// bindAttempts is how many times Listen retries when a port it picked
	// on one IP turns out to be taken on another.
	bindAttempts = 16
	// MaxTCPConnsPerSource bounds the concurrent TCP connections of one
	// source (an IPv4 address or an IPv6 /64, as the rate limit counts
	// them), so that one client cannot hold every one of
	// Config.MaxTCPConns. A STUN client needs one connection per
	// transaction at most. It applies only while rate limiting is on.
	MaxTCPConnsPerSource = 16
)

// Addrs are the addresses a Server actually bound. Fields that are not in
// use are zero (and omitted from JSON).
type Addrs struct {
	// Primary is PrimaryIP:Port.
	Primary netip.AddrPort `json:"primary"`
	// AltPort is PrimaryIP:AltPort.
	AltPort netip.AddrPort `json:"alt_port,omitzero"`
	// AltIP is AlternateIP:Port.
	AltIP netip.AddrPort `json:"alt_ip,omitzero"`
	// AltIPAltPort is AlternateIP:AltPort, the OTHER-ADDRESS.
	AltIPAltPort netip.AddrPort `json:"alt_ip_alt_port,omitzero"`
	// TCP is the TCP listener's address (PrimaryIP:Port).
	TCP netip.AddrPort `json:"tcp,omitzero"`
}

// socket returns the address of one UDP socket.
func (a Addrs) socket(s socket) netip.AddrPort {
	switch s {
	case sockPrimary:
		return a.Primary
	case sockAltPort:
		return a.AltPort
	case sockAltIP:
		return a.AltIP
	case sockAltIPAltPort:
		return a.AltIPAltPort
	}
	return netip.AddrPort{}
}

// Server is a STUN server bound to its sockets. Create it with Listen, run
// it with Serve and stop it with Close or by cancelling Serve's context.
type Server struct {
	cfg   Config
	log   *slog.Logger
	h     *handler
	socks *sockets
	lim   *limiter // nil when rate limiting is off
	stats counters

	mu      sync.Mutex
	closed  bool
	serving bool
	conns   map[net.Conn]struct{}
	// perSource counts the open TCP connections of each source; it is
	// kept only when rate limiting is on.
	perSource map[netip.Addr]int

	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// Listen validates cfg and binds every socket it asks for. On error nothing
// stays open. Errors about the configuration itself wrap ErrInvalidConfig.
func Listen(cfg Config) (*Server, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if cfg.Net == nil {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil, fmt.Errorf("stunserver: opening the host network: %w", err)
		}
		cfg.Net = n
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	socks, err := bind(&cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		log:       log,
		h:         newHandler(socks.addrs, cfg.EnableChangeRequest, cfg.Software),
		socks:     socks,
		conns:     make(map[net.Conn]struct{}),
		perSource: make(map[netip.Addr]int),
		done:      make(chan struct{}),
	}
	if cfg.RateLimit > 0 {
		s.lim = newLimiter(cfg.RateLimit, cfg.RateBurst, maxLimiterEntries, nil)
	}
	a := socks.addrs
	log.Info("stun server listening", "primary", a.Primary, "alt_port", a.AltPort,
		"alt_ip", a.AltIP, "alt_ip_alt_port", a.AltIPAltPort, "tcp", a.TCP,
		"change_request", s.h.changeRequest)
	return s, nil
}

// Addrs returns the addresses the server is bound to.
func (s *Server) Addrs() Addrs { return s.socks.addrs }

// ChangeRequest reports whether the server honours CHANGE-REQUEST: it was
// asked to and has an alternate IP.
func (s *Server) ChangeRequest() bool { return s.h.changeRequest }

// RateLimit returns the effective per-source rate limit in requests per
// second and its burst, with defaults applied; both are zero when rate
// limiting is off.
func (s *Server) RateLimit() (perSecond float64, burst int) {
	if s.lim == nil {
		return 0, 0
	}
	return s.cfg.RateLimit, s.cfg.RateBurst
}

// Stats returns a snapshot of the server's counters. It is safe to call at
// any time, also after Close.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// Serve answers requests until ctx is done or Close is called, then closes
// every socket and waits for its goroutines. It returns nil on such a clean
// stop, ErrServerClosed if the server was already closed, and
// ErrAlreadyServing if Serve was called before.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrServerClosed
	case s.serving:
		s.mu.Unlock()
		return ErrAlreadyServing
	}
	s.serving = true
	for i, c := range s.socks.udp {
		if c != nil {
			s.wg.Add(1)
			go s.serveUDP(socket(i), c)
		}
	}
	if s.socks.tcp != nil {
		s.wg.Add(1)
		go s.acceptTCP(s.socks.tcp)
	}
	s.mu.Unlock()

	select {
	case <-ctx.Done():
	case <-s.done:
	}
	return s.Close()
}

// Close stops the server: it closes every socket and TCP connection and
// waits for the serving goroutines to return. It is safe to call more than
// once and from several goroutines; every call returns the same error.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]net.Conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()

		close(s.done)
		s.closeErr = s.socks.close()
		for _, c := range conns {
			_ = c.Close() // the connection's goroutine reports its own end
		}
	})
	s.wg.Wait()
	return s.closeErr
}

func (s *Server) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// pause waits for d and reports false if the server closed meanwhile.
func (s *Server) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.done:
		return false
	case <-t.C:
		return true
	}
}

// answer runs the handler on one request, applies the rate limit and sends
// the reply with send. It returns send's error.
func (s *Server) answer(req request, send func(reply) error) error {
	r := s.h.handle(req)
	switch r.verdict {
	case verdictDrop:
		s.stats.malformed.Add(1)
		s.log.Debug("dropped message", "from", req.src, "reason", r.reason)
		return nil
	case verdictFailed:
		s.stats.requests.Add(1)
		s.stats.errors.Add(1)
		s.log.Error("cannot answer request", "from", req.src, "reason", r.reason)
		return nil
	}
	s.stats.requests.Add(1)
	if s.lim != nil && !s.lim.allow(req.src.Addr()) {
		s.stats.rateLimited.Add(1)
		s.log.Debug("rate limited", "from", req.src)
		return nil
	}
	// Count before sending, so that a client holding the response sees it
	// in Stats; a failed send takes the count back.
	s.countReply(r, 1)
	if err := send(r); err != nil {
		s.countReply(r, -1)
		s.stats.errors.Add(1)
		s.log.Warn("sending response failed", "to", r.to, "err", err)
		return err
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("answered", "from", req.src, "to", r.to, "via", s.h.origin(req.proto, r.from),
			"error_code", int(r.code), "changed", r.changed)
	}
	return nil
}

// countReply adds delta (1 or -1) to the counters a sent reply affects.
func (s *Server) countReply(r reply, delta int) {
	d := uint64(delta) // -1 wraps around, which atomic addition turns into a subtraction
	switch r.verdict {
	case verdictSuccess:
		s.stats.responses.Add(d)
		if r.changed {
			s.stats.changeRequests.Add(d)
		}
	case verdictError:
		s.stats.errorResponses.Add(d)
	}
	if r.redirected {
		s.stats.responsePorts.Add(d)
	}
}

// serveUDP reads requests from one UDP socket until the server closes.
func (s *Server) serveUDP(which socket, c transport.UDPConn) {
	defer s.wg.Done()
	buf := make([]byte, maxRequestSize+1)
	consecutiveErrors := 0
	for {
		n, addr, err := c.ReadFrom(buf)
		if err != nil {
			if s.isClosed() {
				return
			}
			if n > 0 && errors.Is(err, io.ErrShortBuffer) { // vnet reports oversized datagrams
				s.stats.malformed.Add(1)
				continue
			}
			s.stats.errors.Add(1)
			s.log.Warn("UDP read failed", "socket", which, "err", err)
			if consecutiveErrors++; consecutiveErrors > errorsBeforeBackoff && !s.pause(errorBackoff) {
				return
			}
			continue
		}
		consecutiveErrors = 0
		src, ok := netaddr.AddrPortOf(addr)
		if !ok || n > maxRequestSize {
			s.stats.malformed.Add(1)
			continue
		}
		_ = s.answer(request{data: buf[:n], src: src, via: which, proto: protoUDP}, func(r reply) error {
			_, err := s.socks.udp[r.from].WriteTo(r.data, net.UDPAddrFromAddrPort(r.to))
			return err
		})
	}
}

// acceptTCP accepts TCP connections until the server closes.
func (s *Server) acceptTCP(l transport.TCPListener) {
	defer s.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return
			}
			s.stats.errors.Add(1)
			s.log.Warn("TCP accept failed", "err", err)
			if !s.pause(errorBackoff) {
				return
			}
			continue
		}
		if !s.track(c) {
			_ = c.Close()
			continue
		}
		go s.serveTCP(c)
	}
}

// sourceKey returns the key c's source is counted under in perSource, and
// false when connections are not counted per source.
func (s *Server) sourceKey(c net.Conn) (netip.Addr, bool) {
	if s.lim == nil {
		return netip.Addr{}, false
	}
	ap, ok := netaddr.AddrPortOf(c.RemoteAddr())
	if !ok {
		return netip.Addr{}, false
	}
	return netaddr.SourceKey(ap.Addr()), true
}

// track registers a new TCP connection, or reports false when the server
// is closing or full, or the connection's source holds
// MaxTCPConnsPerSource connections already.
func (s *Server) track(c net.Conn) bool {
	key, perSource := s.sourceKey(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if len(s.conns) >= s.cfg.MaxTCPConns {
		s.stats.tcpRejected.Add(1)
		s.log.Warn("too many TCP connections, refusing one", "from", c.RemoteAddr())
		return false
	}
	if perSource && s.perSource[key] >= MaxTCPConnsPerSource {
		s.stats.tcpRejected.Add(1)
		s.log.Debug("too many TCP connections from one source, refusing one", "from", c.RemoteAddr())
		return false
	}
	if perSource {
		s.perSource[key]++
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.stats.tcpAccepted.Add(1)
	s.stats.tcpOpen.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	_ = c.Close()
	key, perSource := s.sourceKey(c)
	s.mu.Lock()
	delete(s.conns, c)
	if perSource {
		if s.perSource[key]--; s.perSource[key] <= 0 {
			delete(s.perSource, key)
		}
	}
	s.mu.Unlock()
	s.stats.tcpOpen.Add(-1)
}

// serveTCP answers requests on one TCP connection. STUN over TCP has no
// framing of its own: each message is its 20-byte header and the length it
// announces. A framing error, an idle timeout or a write failure closes this
// connection only.
func (s *Server) serveTCP(c net.Conn) {
	defer s.wg.Done()
	defer s.untrack(c)
	src, ok := netaddr.AddrPortOf(c.RemoteAddr())
	if !ok {
		s.stats.malformed.Add(1)
		return
	}
	hdr := make([]byte, headerSize)
	for {
		if err := c.SetReadDeadline(time.Now().Add(s.cfg.TCPIdleTimeout)); err != nil {
			return
		}
		if _, err := io.ReadFull(c, hdr); err != nil {
			s.log.Debug("TCP connection ended", "from", src, "err", err)
			return
		}
		length := int(binary.BigEndian.Uint16(hdr[2:4]))
		if hdr[0]&0xC0 != 0 || binary.BigEndian.Uint32(hdr[4:8]) != magicCookie ||
			length%4 != 0 || headerSize+length > maxRequestSize {
			s.stats.malformed.Add(1)
			s.log.Debug("closing TCP connection: not STUN framing", "from", src)
			return
		}
		msg := make([]byte, headerSize+length)
		copy(msg, hdr)
		if _, err := io.ReadFull(c, msg[headerSize:]); err != nil {
			s.stats.malformed.Add(1)
			return
		}
		err := s.answer(request{data: msg, src: src, via: sockPrimary, proto: protoTCP}, func(r reply) error {
			if err := c.SetWriteDeadline(time.Now().Add(tcpWriteTimeout)); err != nil {
				return err
			}
			_, err := c.Write(r.data)
			return err
		})
		if err != nil {
			return
		}
	}
}
