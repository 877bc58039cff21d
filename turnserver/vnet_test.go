package turnserver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/rtckit/rtckit/internal/vnetlab"

	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5/vnet"
	"github.com/pion/turn/v5"

	"github.com/rtckit/rtckit/peer"
)

// TestVNet runs the server with its default peer policy on pion's virtual
// network: a client behind a NAT relays to a public peer, and is refused a
// relay to a private address. The NAT is symmetric, as TURN is for.
func TestVNet(t *testing.T) {
	lab := vnetlab.New(t)
	serverNet := lab.Host("203.0.113.10")
	peerNet := lab.Host("203.0.113.40")
	clientNet := lab.BehindNAT(vnet.NATType{
		MappingBehavior:   vnet.EndpointAddrPortDependent,
		FilteringBehavior: vnet.EndpointAddrPortDependent,
	}, "203.0.113.30", "10.0.0.2")
	lab.Start()

	cfg := labConfig()
	cfg.ListenIP, cfg.TCP, cfg.Net = netip.MustParseAddr("203.0.113.10"), true, serverNet
	if _, err := Listen(cfg); !errors.Is(err, ErrTCPUnsupported) {
		t.Fatalf("Listen with TCP on vnet: %v, want ErrTCPUnsupported", err)
	}
	cfg.TCP, cfg.Port = false, 3478
	s := startServer(t, cfg)

	// A UDP echo peer on the WAN.
	pc, err := peerNet.ListenPacket("udp4", "203.0.113.40:5000")
	if err != nil {
		t.Fatal(err)
	}
	echoed := make(chan struct{})
	go func() {
		defer close(echoed)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	defer func() {
		_ = pc.Close()
		<-echoed
	}()

	conn, err := clientNet.ListenPacket("udp4", "10.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: "203.0.113.10:3478",
		TURNServerAddr: "203.0.113.10:3478",
		Conn:           conn,
		Net:            clientNet,
		Username:       "alice",
		Password:       "wonderland",
		LoggerFactory:  peer.SlogLoggerFactory{Logger: testLogger(t).With("side", "client")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		c.Close()
		_ = conn.Close()
	}()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	relay, err := c.AllocateWithContext(ctx)
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	defer relay.Close()
	if got := relay.LocalAddr().String(); !strings.HasPrefix(got, "203.0.113.10:") {
		t.Errorf("relayed address %s, want one on 203.0.113.10", got)
	}
	mapped, err := c.SendBindingRequest()
	if err != nil || mapped.(*net.UDPAddr).IP.String() != "203.0.113.30" {
		t.Errorf("mapped address %v (%v), want the NAT's 203.0.113.30", mapped, err)
	}

	roundTrip(t, relay, &net.UDPAddr{IP: net.IPv4(203, 0, 113, 40), Port: 5000}, "over the WAN")

	err = c.CreatePermission(&net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 5000})
	if turnCode(err) != stun.CodeForbidden {
		t.Errorf("CreatePermission to the client's LAN: %v, want 403", err)
	}
	if st := s.Stats(); st.PeerDenials != 1 || st.PacketsToPeers != 1 || st.PacketsFromPeers != 1 {
		t.Errorf("stats %+v", st)
	}
}
