package stunprobe

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/rtckit/rtckit/internal/vnetlab"

	"github.com/pion/transport/v5/vnet"

	"github.com/rtckit/rtckit/internal/testenv"
	"github.com/rtckit/rtckit/stunserver"
)

// Addresses of the virtual lab: the servers sit on a WAN segment, the client
// behind a NAT whose public address is natPublic.
const (
	vnetServerIP    = "203.0.113.10"
	vnetServerAltIP = "203.0.113.11"
	vnetNATPublic   = "203.0.113.100"
)

// vnetLab is a virtual WAN with an RFC 5780 server and a client behind a NAT.
type vnetLab struct {
	client *vnet.Net
	server netip.AddrPort
}

// newVnetLab builds the lab; nat nil puts the client directly on the WAN.
func newVnetLab(t *testing.T, nat *vnet.NATType) *vnetLab {
	t.Helper()
	lab := vnetlab.New(t)
	serverNet := lab.Host(vnetServerIP, vnetServerAltIP)
	var client *vnet.Net
	if nat == nil {
		client = lab.Host("203.0.113.50")
	} else {
		client = lab.BehindNAT(*nat, vnetNATPublic)
	}
	lab.Start()
	srv, err := stunserver.Listen(stunserver.Config{
		PrimaryIP: netip.MustParseAddr(vnetServerIP), AlternateIP: netip.MustParseAddr(vnetServerAltIP),
		Port: 3478, AltPort: 3479, EnableChangeRequest: true, RateLimit: -1, Net: serverNet,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Serve(t, srv.Serve)
	return &vnetLab{client: client, server: srv.Addrs().Primary}
}

func (l *vnetLab) options() Options {
	return Options{
		Servers: []Server{{URI: "stun:" + l.server.String(), Host: l.server.Addr().String(), Port: int(l.server.Port())}},
		UDP:     true, IPv4: true, Net: l.client,
		// Replies that filtering drops are awaited this long on the virtual
		// network, whose round trips take microseconds.
		FilterWait: 300 * time.Millisecond,
	}
}

func TestVnetNATBehaviours(t *testing.T) {
	names := map[vnet.EndpointDependencyType]Behavior{
		vnet.EndpointIndependent:       EndpointIndependent,
		vnet.EndpointAddrDependent:     AddressDependent,
		vnet.EndpointAddrPortDependent: AddressPortDependent,
	}
	kinds := []vnet.EndpointDependencyType{vnet.EndpointIndependent, vnet.EndpointAddrDependent, vnet.EndpointAddrPortDependent}
	for _, mapping := range kinds {
		for _, filtering := range kinds {
			t.Run(fmt.Sprintf("%s-mapping/%s-filtering", names[mapping], names[filtering]), func(t *testing.T) {
				lab := newVnetLab(t, &vnet.NATType{MappingBehavior: mapping, FilteringBehavior: filtering})
				r, err := Probe(context.Background(), lab.options())
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Families) != 1 {
					t.Fatalf("families = %+v", r.Families)
				}
				f := r.Families[0]
				if f.Mapping.Behavior != names[mapping] {
					t.Errorf("mapping = %s (%s), want %s", f.Mapping.Behavior, f.Mapping.Reason, names[mapping])
				}
				if f.Filtering.Behavior != names[filtering] {
					t.Errorf("filtering = %s (%s), want %s", f.Filtering.Behavior, f.Filtering.Reason, names[filtering])
				}
				if f.BehindNAT == nil || !*f.BehindNAT {
					t.Errorf("behind NAT = %v, want true", fmtBool(f.BehindNAT))
				}
				if len(f.Public) == 0 || netip.MustParseAddrPort(f.Public[0]).Addr().String() != vnetNATPublic {
					t.Errorf("public = %v, want the NAT's address %s", f.Public, vnetNATPublic)
				}
				want := verdict(true, ptr(true), names[mapping], names[filtering]).Classic
				if f.Verdict.Classic != want || r.Outcome != OutcomeOK {
					t.Errorf("verdict = %q, outcome %s; want %q, ok", f.Verdict.Classic, r.Outcome, want)
				}
			})
		}
	}
}

func TestVnetNoNAT(t *testing.T) {
	lab := newVnetLab(t, nil)
	r, err := Probe(context.Background(), lab.options())
	if err != nil {
		t.Fatal(err)
	}
	f := r.Families[0]
	if f.BehindNAT == nil || *f.BehindNAT || f.Verdict.Classic != "open internet (no NAT)" {
		t.Errorf("behind NAT %s (local %s, public %v), verdict %q; want no NAT, open internet", fmtBool(f.BehindNAT), f.Local, f.Public, f.Verdict.Classic)
	}
}

func TestVnetMultiServerComparison(t *testing.T) {
	for _, tc := range []struct {
		mapping vnet.EndpointDependencyType
		varies  bool
	}{{vnet.EndpointIndependent, false}, {vnet.EndpointAddrPortDependent, true}} {
		lab := newVnetLab(t, &vnet.NATType{MappingBehavior: tc.mapping, FilteringBehavior: vnet.EndpointAddrPortDependent})
		opts := lab.options()
		// The alternate address answers Binding like a second plain server.
		opts.Servers = append(opts.Servers, Server{URI: "stun:" + vnetServerAltIP, Host: vnetServerAltIP, Port: 3478})
		r, err := Probe(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		f := r.Families[0]
		if f.MappingVariesByDestination == nil || *f.MappingVariesByDestination != tc.varies {
			t.Errorf("mapping %d: varies = %s, want %v", tc.mapping, fmtBool(f.MappingVariesByDestination), tc.varies)
		}
		if len(f.Conflicts) != 0 {
			t.Errorf("conflicts: %q", f.Conflicts)
		}
	}
}

func TestVnetLifetime(t *testing.T) {
	lab := newVnetLab(t, &vnet.NATType{
		MappingBehavior: vnet.EndpointIndependent, FilteringBehavior: vnet.EndpointAddrPortDependent,
		MappingLifeTime: 2 * time.Second,
	})
	opts := lab.options()
	opts.Lifetime, opts.LifetimeMax = true, 6*time.Second
	r, err := Probe(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	l := r.Families[0].Lifetime
	if l == nil || l.Status != "measured" || l.ExpiredAfterS == nil {
		t.Fatalf("lifetime = %+v, want measured", l)
	}
	if l.AliveAfterS > 2 || *l.ExpiredAfterS < 2 {
		t.Errorf("lifetime between %gs and %gs, want it to bracket the NAT's 2 s", l.AliveAfterS, *l.ExpiredAfterS)
	}
}
