package stunserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/pion/transport/v5"

	"github.com/rtckit/rtckit/internal/netaddr"
)

// sockets holds everything Listen bound.
type sockets struct {
	udp   [numSockets]transport.UDPConn
	tcp   transport.TCPListener
	addrs Addrs
}

func (k *sockets) close() error {
	var errs []error
	for i, c := range k.udp {
		if c != nil {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing %s socket: %w", socket(i), err))
			}
		}
	}
	if k.tcp != nil {
		if err := k.tcp.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing TCP listener: %w", err))
		}
	}
	return errors.Join(errs...)
}

// bind opens every socket cfg asks for. When it picked a port itself
// (Port or AltPort 0) and that port is taken on the other IP or for TCP, it
// starts again with fresh ports.
func bind(cfg *Config) (*sockets, error) {
	var lastErr error
	for range bindAttempts {
		socks, retry, err := bindOnce(cfg)
		if err == nil {
			return socks, nil
		}
		lastErr = err
		if !retry {
			break
		}
	}
	return nil, lastErr
}

// bindOnce makes one attempt at binding. retry reports whether the failure
// concerned a port this attempt chose and another attempt may succeed.
func bindOnce(cfg *Config) (socks *sockets, retry bool, err error) {
	k := &sockets{}
	defer func() {
		if err != nil {
			_ = k.close() // err already says what went wrong
		}
	}()
	n := cfg.Net
	open := func(s socket, ip netip.Addr, port int) (uint16, error) {
		c, ap, err := listenUDP(n, ip, port)
		if err != nil {
			return 0, fmt.Errorf("stunserver: binding UDP %s: %w", netip.AddrPortFrom(ip, uint16(port)), err)
		}
		k.udp[s] = c
		return ap.Port(), nil
	}

	p1, err := open(sockPrimary, cfg.PrimaryIP, cfg.Port)
	if err != nil {
		return nil, false, err
	}
	k.addrs.Primary = netip.AddrPortFrom(cfg.PrimaryIP, p1)
	if cfg.hasAlternate() {
		p2, err := open(sockAltPort, cfg.PrimaryIP, cfg.AltPort)
		if err != nil {
			return nil, false, err
		}
		k.addrs.AltPort = netip.AddrPortFrom(cfg.PrimaryIP, p2)
		if _, err := open(sockAltIP, cfg.AlternateIP, int(p1)); err != nil {
			return nil, cfg.Port == 0, err
		}
		k.addrs.AltIP = netip.AddrPortFrom(cfg.AlternateIP, p1)
		if _, err := open(sockAltIPAltPort, cfg.AlternateIP, int(p2)); err != nil {
			return nil, cfg.AltPort == 0, err
		}
		k.addrs.AltIPAltPort = netip.AddrPortFrom(cfg.AlternateIP, p2)
	}
	if cfg.TCP {
		network := "tcp4"
		if cfg.PrimaryIP.Is6() {
			network = "tcp6"
		}
		l, err := n.ListenTCP(network, net.TCPAddrFromAddrPort(k.addrs.Primary))
		if err != nil {
			if errors.Is(err, transport.ErrNotSupported) {
				return nil, false, fmt.Errorf("%w: %w", ErrTCPUnsupported, err)
			}
			return nil, cfg.Port == 0, fmt.Errorf("stunserver: binding TCP %s: %w", k.addrs.Primary, err)
		}
		k.tcp = l
		k.addrs.TCP = k.addrs.Primary
	}
	return k, false, nil
}

// listenUDP binds one UDP socket and returns it with its actual address.
func listenUDP(n transport.Net, ip netip.Addr, port int) (transport.UDPConn, netip.AddrPort, error) {
	network := "udp4"
	if ip.Is6() {
		network = "udp6"
	}
	c, err := n.ListenUDP(network, &net.UDPAddr{IP: ip.AsSlice(), Port: port, Zone: ip.Zone()})
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	ap, ok := netaddr.AddrPortOf(c.LocalAddr())
	if !ok {
		_ = c.Close()
		return nil, netip.AddrPort{}, fmt.Errorf("unexpected local address %v", c.LocalAddr())
	}
	return c, ap, nil
}
