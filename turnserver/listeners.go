// Binding the server's UDP, TCP and TLS listeners, with a fresh port when
// one it picked itself turns out to be taken.

package turnserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/pion/transport/v5"

	"github.com/rtckit/rtckit/internal/netaddr"
)

// bind opens the listeners. When it picked the port itself (Port 0) and
// that port is taken for TCP, it starts again with a fresh one.
func (s *Server) bind() error {
	var lastErr error
	for range bindAttempts {
		retry, err := s.bindOnce()
		if err == nil {
			return nil
		}
		lastErr = err
		if !retry {
			break
		}
	}
	return lastErr
}

// bindOnce makes one attempt at binding. retry reports whether the failure
// concerned a port this attempt chose and another attempt may succeed.
func (s *Server) bindOnce() (retry bool, err error) {
	defer func() {
		if err != nil {
			s.closeListeners()
		}
	}()
	cfg, n := &s.cfg, s.cfg.Net
	port := cfg.Port
	if cfg.UDP {
		network := "udp4"
		if cfg.ListenIP.Is6() {
			network = "udp6"
		}
		c, err := n.ListenUDP(network, &net.UDPAddr{IP: cfg.ListenIP.AsSlice(), Port: port, Zone: cfg.ListenIP.Zone()})
		if err != nil {
			return false, fmt.Errorf("turnserver: binding UDP %s: %w", netip.AddrPortFrom(cfg.ListenIP, uint16(port)), err)
		}
		s.udp = &packetConn{PacketConn: c, s: s}
		ap, ok := netaddr.AddrPortOf(c.LocalAddr())
		if !ok {
			return false, fmt.Errorf("turnserver: unexpected local address %v", c.LocalAddr())
		}
		s.addrs.UDP, port = ap, int(ap.Port())
	}
	if cfg.TCP {
		l, ap, err := listenTCP(n, cfg.ListenIP, port)
		if err != nil {
			return cfg.UDP && cfg.Port == 0 && !errors.Is(err, ErrTCPUnsupported), err
		}
		s.tcp = &clientListener{Listener: l, s: s}
		s.addrs.TCP = ap
	}
	if cfg.tlsEnabled() {
		l, ap, err := listenTCP(n, cfg.ListenIP, cfg.TLSPort)
		if err != nil {
			return false, err
		}
		s.tlsL = &clientListener{Listener: l, s: s}
		s.addrs.TLS = ap
	}
	return false, nil
}

// closeListeners closes whatever bindOnce opened and forgets it.
func (s *Server) closeListeners() {
	if s.udp != nil {
		_ = s.udp.Close()
	}
	if s.tcp != nil {
		_ = s.tcp.Close()
	}
	if s.tlsL != nil {
		_ = s.tlsL.Close()
	}
	s.udp, s.tcp, s.tlsL, s.addrs = nil, nil, nil, Addrs{}
}

// listenTCP binds one TCP listener and returns it with its actual address.
func listenTCP(n transport.Net, ip netip.Addr, port int) (net.Listener, netip.AddrPort, error) {
	network := "tcp4"
	if ip.Is6() {
		network = "tcp6"
	}
	want := netip.AddrPortFrom(ip, uint16(port))
	l, err := n.ListenTCP(network, net.TCPAddrFromAddrPort(want))
	if err != nil {
		if errors.Is(err, transport.ErrNotSupported) {
			return nil, netip.AddrPort{}, fmt.Errorf("%w: %w", ErrTCPUnsupported, err)
		}
		return nil, netip.AddrPort{}, fmt.Errorf("turnserver: binding TCP %s: %w", want, err)
	}
	ap, ok := netaddr.AddrPortOf(l.Addr())
	if !ok {
		_ = l.Close()
		return nil, netip.AddrPort{}, fmt.Errorf("turnserver: unexpected local address %v", l.Addr())
	}
	return l, ap, nil
}
