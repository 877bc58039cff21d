package stunserver

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rtckit/rtckit/internal/vnetlab"

	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/vnet"

	"github.com/rtckit/rtckit/internal/netaddr"
)

// vnetClient is a raw STUN client on a vnet socket.
type vnetClient struct {
	t    *testing.T
	conn transport.UDPConn
}

func (c *vnetClient) roundTrip(to netip.AddrPort, req *stun.Message) (*stun.Message, netip.AddrPort) {
	c.t.Helper()
	if _, err := c.conn.WriteTo(req.Raw, net.UDPAddrFromAddrPort(to)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
	if err := c.conn.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := c.conn.ReadFrom(buf)
		if err != nil {
			c.t.Fatalf("waiting for the response: %v", err)
		}
		m := new(stun.Message)
		if stun.Decode(buf[:n], m) != nil || m.TransactionID != req.TransactionID {
			continue
		}
		decoded(c.t, req, buf[:n])
		src, ok := netaddr.AddrPortOf(from)
		if !ok {
			c.t.Fatalf("bad source %v", from)
		}
		return m, src
	}
}

// TestVNet runs the server on pion's virtual network: a WAN router with
// the server's two IPs, a client directly on the WAN and one behind a NAT.
func TestVNet(t *testing.T) {
	lab := vnetlab.New(t)
	serverNet := lab.Host("203.0.113.10", "203.0.113.11")
	clientNet := lab.Host("203.0.113.20")
	natNet := lab.BehindNAT(vnet.NATType{
		MappingBehavior:   vnet.EndpointIndependent,
		FilteringBehavior: vnet.EndpointIndependent,
	}, "203.0.113.30", "10.0.0.2")
	lab.Start()

	if _, err := Listen(Config{PrimaryIP: netip.MustParseAddr("203.0.113.10"), TCP: true, Net: serverNet}); !errors.Is(err, ErrTCPUnsupported) {
		t.Errorf("TCP on vnet: %v, want ErrTCPUnsupported", err)
	}

	s := startServer(t, Config{
		PrimaryIP:           netip.MustParseAddr("203.0.113.10"),
		AlternateIP:         netip.MustParseAddr("203.0.113.11"),
		Port:                3478,
		AltPort:             3479,
		EnableChangeRequest: true,
		Net:                 serverNet,
	})
	a := s.Addrs()
	want := Addrs{
		Primary:      netip.MustParseAddrPort("203.0.113.10:3478"),
		AltPort:      netip.MustParseAddrPort("203.0.113.10:3479"),
		AltIP:        netip.MustParseAddrPort("203.0.113.11:3478"),
		AltIPAltPort: netip.MustParseAddrPort("203.0.113.11:3479"),
	}
	if a != want {
		t.Fatalf("addresses %+v, want %+v", a, want)
	}

	listen := func(n *vnet.Net, ip string) *vnetClient {
		t.Helper()
		c, err := n.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return &vnetClient{t: t, conn: c}
	}

	t.Run("public client", func(t *testing.T) {
		c := listen(clientNet, "203.0.113.20")
		local, _ := netaddr.AddrPortOf(c.conn.LocalAddr())
		for _, tc := range []struct {
			changeIP, changePort bool
			from                 netip.AddrPort
		}{
			{false, false, a.Primary},
			{false, true, a.AltPort},
			{true, false, a.AltIP},
			{true, true, a.AltIPAltPort},
		} {
			req := newRequest(t, changeRequest(tc.changeIP, tc.changePort))
			resp, from := c.roundTrip(a.Primary, req)
			if from != tc.from {
				t.Errorf("change ip=%v port=%v: response from %v, want %v", tc.changeIP, tc.changePort, from, tc.from)
			}
			if got := addrAttr(t, resp, stun.AttrXORMappedAddress); got != local {
				t.Errorf("XOR-MAPPED-ADDRESS %v, want %v", got, local)
			}
			if got := addrAttr(t, resp, stun.AttrResponseOrigin); got != tc.from {
				t.Errorf("RESPONSE-ORIGIN %v, want %v", got, tc.from)
			}
			if got := addrAttr(t, resp, stun.AttrOtherAddress); got != a.AltIPAltPort {
				t.Errorf("OTHER-ADDRESS %v, want %v", got, a.AltIPAltPort)
			}
		}
	})

	t.Run("client behind a full-cone NAT", func(t *testing.T) {
		c := listen(natNet, "10.0.0.2")
		resp, _ := c.roundTrip(a.Primary, newRequest(t))
		mapped := addrAttr(t, resp, stun.AttrXORMappedAddress)
		if mapped.Addr() != netip.MustParseAddr("203.0.113.30") {
			t.Errorf("XOR-MAPPED-ADDRESS %v, want the NAT's address 203.0.113.30", mapped)
		}
		// Endpoint-independent filtering lets the changed address through,
		// and endpoint-independent mapping keeps the same public port.
		resp, from := c.roundTrip(a.Primary, newRequest(t, changeRequest(true, true)))
		if from != a.AltIPAltPort {
			t.Errorf("response from %v, want %v", from, a.AltIPAltPort)
		}
		if got := addrAttr(t, resp, stun.AttrXORMappedAddress); got != mapped {
			t.Errorf("second mapping %v, want %v", got, mapped)
		}
	})
}
