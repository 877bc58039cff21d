package icegather

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/rtckit/rtckit/internal/vnetlab"

	"github.com/pion/transport/v5/vnet"

	"github.com/rtckit/rtckit/internal/testenv"
	"github.com/rtckit/rtckit/peer"
	"github.com/rtckit/rtckit/turnserver"
)

const (
	vnetServerIP  = "203.0.113.10"
	vnetNATPublic = "203.0.113.100"
)

// newVnetTURN builds a virtual WAN with a TURN (and STUN) server and a client
// Net behind a NAT of the given type.
func newVnetTURN(t *testing.T, nat vnet.NATType) (client *vnet.Net, server netip.AddrPort) {
	t.Helper()
	lab := vnetlab.New(t)
	serverNet := lab.Host(vnetServerIP)
	client = lab.BehindNAT(nat, vnetNATPublic)
	lab.Start()
	srv, err := turnserver.Listen(turnserver.Config{
		ListenIP: netip.MustParseAddr(vnetServerIP), Port: 3478, UDP: true,
		Users: map[string]string{"alice": "wonderland"}, Net: serverNet,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Serve(t, srv.Serve)
	return client, srv.Addrs().UDP
}

// TestVnetGatherPerNATPreset gathers host, srflx and relay candidates through
// a TURN server on a virtual WAN, behind each vnet NAT preset, and checks the
// relay carries data.
func TestVnetGatherPerNATPreset(t *testing.T) {
	presets := map[string]vnet.NATType{
		"full cone":          {MappingBehavior: vnet.EndpointIndependent, FilteringBehavior: vnet.EndpointIndependent},
		"address restricted": {MappingBehavior: vnet.EndpointIndependent, FilteringBehavior: vnet.EndpointAddrDependent},
		"port restricted":    {MappingBehavior: vnet.EndpointIndependent, FilteringBehavior: vnet.EndpointAddrPortDependent},
		"symmetric":          {MappingBehavior: vnet.EndpointAddrPortDependent, FilteringBehavior: vnet.EndpointAddrPortDependent},
	}
	for name, nat := range presets {
		t.Run(name, func(t *testing.T) {
			client, server := newVnetTURN(t, nat)
			ice := peer.ICEConfig{
				STUN: []string{"stun:" + server.String()}, TURN: []string{"turn:" + server.String()},
				TURNUser: "alice", TURNPass: "wonderland", Networks: []string{"udp4"},
			}
			servers, err := ice.Servers(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			r, err := Gather(ctx, Options{Servers: servers, ICE: ice, Net: client, Require: []string{TypeHost, TypeSrflx, TypeRelay}, RelayCheck: true, RelayCheckCount: 10})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Err(); err != nil {
				t.Fatalf("%v: missing %v, servers %+v, relay checks %+v", err, r.Missing, r.Servers, r.RelayChecks)
			}
			for _, c := range r.Candidates {
				switch c.Type {
				case TypeSrflx:
					if c.Address != vnetNATPublic {
						t.Errorf("srflx %s, want the NAT's address %s", c.Address, vnetNATPublic)
					}
				case TypeRelay:
					if c.Address != vnetServerIP || c.RelayProtocol != "udp" {
						t.Errorf("relay %s over %s, want %s over udp", c.Address, c.RelayProtocol, vnetServerIP)
					}
				}
			}
			if rc := r.RelayChecks[0]; rc.Received == 0 {
				t.Errorf("relay check %+v", rc)
			}
		})
	}
}

// TestVnetGatherWrongPassword reports a 401 for the TURN server on the vnet.
func TestVnetGatherWrongPassword(t *testing.T) {
	client, server := newVnetTURN(t, vnet.NATType{MappingBehavior: vnet.EndpointIndependent, FilteringBehavior: vnet.EndpointIndependent})
	ice := peer.ICEConfig{TURN: []string{fmt.Sprintf("turn:alice:wrong@%s", server)}, Networks: []string{"udp4"}}
	servers, err := ice.Servers(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r, err := Gather(context.Background(), Options{Servers: servers, ICE: ice, Net: client, Require: []string{TypeRelay}})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Servers[0]; s.ErrorCode != 401 || s.ErrorKind != KindUnauthorized {
		t.Errorf("server %+v, want 401 unauthorized", s)
	}
	if len(r.Missing) != 1 || r.Missing[0] != TypeRelay {
		t.Errorf("missing %v, want relay", r.Missing)
	}
}
