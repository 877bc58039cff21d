// Package turnserver is a TURN server (RFC 8656, RFC 6062 TCP relays) for
// labs and for embedding, built on pion/turn.
//
// It listens on UDP, TCP and TLS, authenticates with long-term credentials
// (static users, or TURN REST credentials derived from a shared secret, as
// coturn's use-auth-secret), limits the allocations each user holds, and
// refuses to relay to loopback, private, link-local and other special
// addresses unless told to: a TURN server that relays anywhere is an open
// door into the network it runs in. It never runs without credentials.
//
// Every socket is created through a transport.Net, so the UDP side runs on
// pion's virtual network (vnet) as well as on the host's.
package turnserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/turn/v5"

	"github.com/rtckit/rtckit/peer"
)

const (
	// CloseTimeout bounds how long Close waits for pion to release the
	// allocations once their sockets are closed; it normally takes
	// microseconds.
	CloseTimeout = 5 * time.Second
	// bindAttempts is how many times Listen retries when the port it picked
	// for UDP turns out to be taken for TCP.
	bindAttempts = 16
	// relayRetriesMax bounds the random ports tried in a relay port range.
	relayRetriesMax = 64
)

// Addrs are the addresses a Server actually bound; listeners that are off
// are zero (and omitted from JSON).
type Addrs struct {
	// UDP is the UDP listener, ListenIP:Port.
	UDP netip.AddrPort `json:"udp,omitzero"`
	// TCP is the TCP listener, ListenIP:Port.
	TCP netip.AddrPort `json:"tcp,omitzero"`
	// TLS is the TLS listener, ListenIP:TLSPort.
	TLS netip.AddrPort `json:"tls,omitzero"`
}

// URIs returns the ICE server URIs (RFC 7065) of the bound listeners, for
// a WebRTC configuration: turn:…?transport=udp, turn:…?transport=tcp and
// turns:…?transport=tcp. A turns: URI names an IP address here; clients
// that check the certificate need a host name it is valid for instead.
func (a Addrs) URIs() []string {
	var uris []string
	if a.UDP.IsValid() {
		uris = append(uris, "turn:"+a.UDP.String()+"?transport=udp")
	}
	if a.TCP.IsValid() {
		uris = append(uris, "turn:"+a.TCP.String()+"?transport=tcp")
	}
	if a.TLS.IsValid() {
		uris = append(uris, "turns:"+a.TLS.String()+"?transport=tcp")
	}
	return uris
}

// Info describes how a Server relays and whom it serves, with defaults
// applied and secrets left out, for a "listening" report.
type Info struct {
	// Realm is the long-term credential realm.
	Realm string `json:"realm"`
	// RelayIP is the address relay sockets bind.
	RelayIP netip.Addr `json:"relay_ip"`
	// ExternalIP is the address announced for relays, when it differs
	// from RelayIP.
	ExternalIP netip.Addr `json:"external_ip,omitzero"`
	// MinPort is the lowest relay port; zero when the system picks ports.
	MinPort int `json:"min_port,omitempty"`
	// MaxPort is the highest relay port; zero when the system picks ports.
	MaxPort int `json:"max_port,omitempty"`
	// QuotaPerUser is the limit of concurrent allocations per user; zero
	// means unlimited.
	QuotaPerUser int `json:"quota_per_user"`
	// MaxPermissions is the limit of peer addresses with permissions per
	// allocation; zero means unlimited.
	MaxPermissions int `json:"max_permissions"`
	// AllowLoopbackPeers tells whether loopback peers are relayed to.
	AllowLoopbackPeers bool `json:"allow_loopback_peers"`
	// AllowPrivatePeers tells whether private peers are relayed to.
	AllowPrivatePeers bool `json:"allow_private_peers"`
	// Users is the number of static users.
	Users int `json:"users"`
	// RESTAuth tells whether TURN REST credentials are accepted.
	RESTAuth bool `json:"rest_auth"`
}

// Server is a TURN server bound to its sockets. Create it with Listen, run
// it with Serve and stop it with Close or by cancelling Serve's context.
type Server struct {
	cfg   Config
	log   *slog.Logger
	addrs Addrs
	quota *quota
	perms *permissionLedger
	stats counters

	// The listeners; nil when off. tlsL is the TCP listener under TLS.
	udp  *packetConn
	tcp  *clientListener
	tlsL *clientListener

	mu      sync.Mutex
	closed  bool
	serving bool
	turn    *turn.Server
	clients map[*clientConn]struct{}
	relays  map[io.Closer]struct{}
	// byAddr finds a client connection by its remote address (addrKey);
	// unauth counts the connections of each source (sourceKey) that have
	// not authenticated yet.
	byAddr map[string]*clientConn
	unauth map[netip.Addr]int

	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Listen validates cfg and binds every listener it asks for. On error
// nothing stays open. Errors about the configuration itself wrap
// ErrInvalidConfig; a configuration without credentials also wraps
// ErrNoCredentials.
func Listen(cfg Config) (*Server, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if cfg.Net == nil {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil, fmt.Errorf("turnserver: opening the host network: %w", err)
		}
		cfg.Net = n
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		log:     log,
		quota:   newQuota(cfg.QuotaPerUser),
		perms:   newPermissionLedger(cfg.MaxPermissions),
		clients: make(map[*clientConn]struct{}),
		relays:  make(map[io.Closer]struct{}),
		byAddr:  make(map[string]*clientConn),
		unauth:  make(map[netip.Addr]int),
		done:    make(chan struct{}),
	}
	if err := s.bind(); err != nil {
		return nil, err
	}
	info := s.Info()
	log.Info("turn server listening", "udp", s.addrs.UDP, "tcp", s.addrs.TCP, "tls", s.addrs.TLS,
		"realm", info.Realm, "relay_ip", info.RelayIP, "external_ip", info.ExternalIP,
		"min_port", info.MinPort, "max_port", info.MaxPort, "quota", info.QuotaPerUser,
		"users", info.Users, "rest_auth", info.RESTAuth,
		"allow_loopback_peers", info.AllowLoopbackPeers, "allow_private_peers", info.AllowPrivatePeers)
	return s, nil
}

// Addrs returns the addresses the server is bound to.
func (s *Server) Addrs() Addrs { return s.addrs }

// Info returns the server's effective relay and authentication settings.
func (s *Server) Info() Info {
	return Info{
		Realm:              s.cfg.Realm,
		RelayIP:            s.cfg.RelayIP,
		ExternalIP:         s.cfg.ExternalIP,
		MinPort:            s.cfg.MinPort,
		MaxPort:            s.cfg.MaxPort,
		QuotaPerUser:       max(s.cfg.QuotaPerUser, 0),
		MaxPermissions:     max(s.cfg.MaxPermissions, 0),
		AllowLoopbackPeers: s.cfg.AllowLoopbackPeers,
		AllowPrivatePeers:  s.cfg.AllowPrivatePeers,
		Users:              len(s.cfg.Users),
		RESTAuth:           s.cfg.AuthSecret != "",
	}
}

// Stats returns a snapshot of the server's counters. It is safe to call at
// any time, also after Close.
func (s *Server) Stats() Stats { return s.stats.snapshot(s.quota.count()) }

// Serve relays until ctx is done or Close is called, then closes every
// socket and releases every allocation. It returns nil on such a clean
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
	ts, err := turn.NewServer(s.turnConfig())
	if err != nil {
		s.mu.Unlock()
		return errors.Join(fmt.Errorf("turnserver: starting pion's server: %w", err), s.Close())
	}
	s.turn = ts
	s.mu.Unlock()

	select {
	case <-ctx.Done():
	case <-s.done:
	}
	return s.Close()
}

// turnConfig wires the server's sockets and hooks into pion's server.
func (s *Server) turnConfig() turn.ServerConfig {
	gen := &relayGenerator{s: s, inner: s.innerRelayGenerator()}
	cfg := turn.ServerConfig{
		LoggerFactory: peer.SlogLoggerFactory{Logger: s.log},
		Realm:         s.cfg.Realm,
		AuthHandler:   s.authenticate,
		QuotaHandler:  s.admit,
		EventHandler: turn.EventHandler{
			OnAuth:              s.onAuth,
			OnAllocationCreated: s.onAllocationCreated,
			OnAllocationDeleted: s.onAllocationDeleted,
			OnAllocationError:   s.onAllocationError,
			OnPermissionCreated: func(src, _ net.Addr, _, _, _ string, _ net.Addr, peer net.IP) {
				s.stats.permissions.Add(1)
				if ip, ok := netip.AddrFromSlice(peer); ok {
					s.perms.created(src, ip.Unmap())
				}
			},
			OnPermissionDeleted: func(src, _ net.Addr, _, _, _ string, _ net.Addr, peer net.IP) {
				if ip, ok := netip.AddrFromSlice(peer); ok {
					s.perms.expired(src, ip.Unmap())
				}
			},
			OnChannelCreated: func(net.Addr, net.Addr, string, string, string, net.Addr, net.Addr, uint16) {
				s.stats.channels.Add(1)
			},
		},
	}
	if s.udp != nil {
		cfg.PacketConnConfigs = append(cfg.PacketConnConfigs, turn.PacketConnConfig{
			PacketConn: s.udp, RelayAddressGenerator: gen, PermissionHandler: s.permit,
		})
	}
	if s.tcp != nil {
		cfg.ListenerConfigs = append(cfg.ListenerConfigs, turn.ListenerConfig{
			Listener: s.tcp, RelayAddressGenerator: gen, PermissionHandler: s.permit,
		})
	}
	if s.tlsL != nil {
		cfg.ListenerConfigs = append(cfg.ListenerConfigs, turn.ListenerConfig{
			Listener: tls.NewListener(s.tlsL, s.cfg.TLSConfig), RelayAddressGenerator: gen, PermissionHandler: s.permit,
		})
	}
	return cfg
}

// innerRelayGenerator returns the pion generator for the relay settings:
// relays bind RelayIP and announce ExternalIP (or RelayIP), in the port
// range when one is set.
func (s *Server) innerRelayGenerator() turn.RelayAddressGenerator {
	announce := s.cfg.RelayIP
	if s.cfg.ExternalIP.IsValid() {
		announce = s.cfg.ExternalIP
	}
	if s.cfg.MinPort == 0 {
		return &turn.RelayAddressGeneratorStatic{
			RelayAddress: announce.AsSlice(), Address: s.cfg.RelayIP.String(), Net: s.cfg.Net,
		}
	}
	span := s.cfg.MaxPort - s.cfg.MinPort + 1
	return &turn.RelayAddressGeneratorPortRange{
		RelayAddress: announce.AsSlice(), Address: s.cfg.RelayIP.String(), Net: s.cfg.Net,
		MinPort: uint16(s.cfg.MinPort), MaxPort: uint16(s.cfg.MaxPort),
		MaxRetries: min(max(2*span, 10), relayRetriesMax),
	}
}

// admit is pion's QuotaHandler.
func (s *Server) admit(userID, _ string, src net.Addr) bool {
	if s.quota.admit(userID, src, time.Now()) {
		return true
	}
	s.stats.quotaRejections.Add(1)
	s.log.Info("allocation quota reached", "user", userID, "from", src, "quota", s.cfg.QuotaPerUser)
	return false
}

func (s *Server) onAllocationCreated(src, dst net.Addr, _, userID, _ string, relay net.Addr, _ int) {
	s.quota.created(allocKey(src, dst), userID, src)
	s.stats.allocations.Add(1)
	s.log.Info("allocation created", "user", userID, "from", src, "relay", relay)
}

func (s *Server) onAllocationDeleted(src, dst net.Addr, _, userID, _ string) {
	s.perms.released(src)
	if s.quota.deleted(allocKey(src, dst)) {
		s.log.Info("allocation released", "user", userID, "from", src)
	}
}

func (s *Server) onAllocationError(src, _ net.Addr, _, message string) {
	s.quota.failed(src)
	s.log.Debug("request failed", "from", src, "err", message)
}

// Close stops the server: it closes the listeners, every client connection
// and every relay socket, and waits (at most CloseTimeout) until pion has
// released every allocation. It is safe to call more than once and from
// several goroutines; every call returns the same error.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		ts := s.turn
		closers := make([]io.Closer, 0, len(s.clients)+len(s.relays))
		for c := range s.clients {
			closers = append(closers, c)
		}
		for c := range s.relays {
			closers = append(closers, c)
		}
		s.mu.Unlock()
		close(s.done)

		var errs []error
		if ts != nil {
			if err := ts.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		// pion closed the listeners it served; these calls close them when
		// Serve never ran, and are no-ops otherwise.
		var listeners []io.Closer
		if s.udp != nil {
			listeners = append(listeners, s.udp)
		}
		if s.tcp != nil {
			listeners = append(listeners, s.tcp)
		}
		if s.tlsL != nil {
			listeners = append(listeners, s.tlsL)
		}
		for _, l := range listeners {
			if err := l.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		for _, c := range closers {
			_ = c.Close() // a client's or peer's socket: its end is not the server's error
		}
		s.closeErr = errors.Join(errs...)
		s.waitReleased()
	})
	return s.closeErr
}

// waitReleased waits until pion reports every allocation deleted, at most
// CloseTimeout.
func (s *Server) waitReleased() {
	timeout := time.NewTimer(CloseTimeout)
	defer timeout.Stop()
	for s.quota.count() > 0 {
		select {
		case <-s.quota.released:
		case <-timeout.C:
			s.log.Warn("allocations not released at close", "count", s.quota.count())
			return
		}
	}
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
