package natlab

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// NATKind names the behaviour of a site's router. The zero value means
// NATPortRestricted.
type NATKind string

// The NAT kinds a router can emulate. Mapping and filtering follow RFC 4787
// and RFC 5780; NATKind.Behavior gives the verdict each one earns from an
// RFC 5780 client.
const (
	// NATNone routes the site's LAN without translation: the client's own
	// address (10.99.N.2) is reachable from the internet namespace.
	NATNone NATKind = "none"
	// NATPortRestricted is the common home router: endpoint-independent
	// mapping with port preservation, address-and-port-dependent filtering.
	NATPortRestricted NATKind = "port-restricted"
	// NATSymmetric picks a random external port for every destination:
	// address-and-port-dependent mapping and filtering.
	NATSymmetric NATKind = "symmetric"
	// NATFullCone forwards every inbound UDP packet on the WAN address to the
	// same port of the client (the router preserves the client's ports):
	// endpoint-independent mapping and filtering.
	NATFullCone NATKind = "full-cone"
	// NATRestrictedCone is a full cone that admits inbound UDP only from
	// remote addresses the client has sent to through that external port:
	// endpoint-independent mapping, address-dependent filtering.
	NATRestrictedCone NATKind = "restricted-cone"
	// NATAddressDependent derives the external UDP port from the client's
	// address and port and the remote address (not the remote port):
	// address-dependent mapping, address-and-port-dependent filtering.
	NATAddressDependent NATKind = "address-dependent"
	// NATUDPBlocked translates like NATPortRestricted but drops all forwarded
	// UDP; TCP still works.
	NATUDPBlocked NATKind = "udp-blocked"
)

// NATKinds lists every kind this package implements, in a stable order.
func NATKinds() []NATKind {
	return []NATKind{
		NATNone, NATPortRestricted, NATSymmetric, NATFullCone,
		NATRestrictedCone, NATAddressDependent, NATUDPBlocked,
	}
}

// Valid reports whether k is one of NATKinds or the zero value.
func (k NATKind) Valid() bool {
	if k == "" {
		return true
	}
	for _, v := range NATKinds() {
		if k == v {
			return true
		}
	}
	return false
}

func (k NATKind) orDefault() NATKind {
	if k == "" {
		return NATPortRestricted
	}
	return k
}

// Behavior is a mapping or filtering behaviour in RFC 4787 terms.
type Behavior string

// The behaviours an RFC 5780 client can tell apart.
const (
	// BehaviorUnknown means the behaviour was not determined, for example
	// because no UDP response arrived.
	BehaviorUnknown Behavior = ""
	// EndpointIndependent: one mapping (or admission) for every remote
	// endpoint.
	EndpointIndependent Behavior = "endpoint-independent"
	// AddressDependent: depends on the remote IP address only.
	AddressDependent Behavior = "address-dependent"
	// AddressPortDependent: depends on the remote IP address and port.
	AddressPortDependent Behavior = "address-and-port-dependent"
)

// NATBehavior is what an RFC 5780 client observes from behind a router.
type NATBehavior struct {
	// UDP is true when UDP Binding requests got any response.
	UDP bool `json:"udp"`
	// NAT is true when the server saw an address other than the client's own.
	NAT bool `json:"nat"`
	// Mapping is the mapping behaviour; unknown without UDP.
	Mapping Behavior `json:"mapping"`
	// Filtering is the filtering behaviour; unknown without UDP.
	Filtering Behavior `json:"filtering"`
}

// Behavior returns the behaviour an RFC 5780 client behind a router of kind
// k observes. Tests compare it with a Verdict or with rtckit's own probe.
func (k NATKind) Behavior() NATBehavior {
	switch k.orDefault() {
	case NATNone:
		return NATBehavior{UDP: true, NAT: false, Mapping: EndpointIndependent, Filtering: EndpointIndependent}
	case NATPortRestricted:
		return NATBehavior{UDP: true, NAT: true, Mapping: EndpointIndependent, Filtering: AddressPortDependent}
	case NATSymmetric:
		return NATBehavior{UDP: true, NAT: true, Mapping: AddressPortDependent, Filtering: AddressPortDependent}
	case NATFullCone:
		return NATBehavior{UDP: true, NAT: true, Mapping: EndpointIndependent, Filtering: EndpointIndependent}
	case NATRestrictedCone:
		return NATBehavior{UDP: true, NAT: true, Mapping: EndpointIndependent, Filtering: AddressDependent}
	case NATAddressDependent:
		return NATBehavior{UDP: true, NAT: true, Mapping: AddressDependent, Filtering: AddressPortDependent}
	default: // NATUDPBlocked and unknown kinds
		return NATBehavior{}
	}
}

const (
	// natTable is the nftables table holding a router's NAT rules.
	natTable = "rtknat"
	// impairTable is the nftables table holding a router's packet loss rules.
	impairTable = "rtkimpair"

	// RestrictedConeTimeout is how long a restricted-cone router keeps
	// admitting a remote address after the client last sent to it; it matches
	// the kernel's timeout for an assured UDP flow.
	RestrictedConeTimeout = 120 * time.Second

	// ADMPortBase and ADMPortCount set the external UDP ports of a
	// NATAddressDependent router: ADMPortBase up to ADMPortBase+ADMPortCount-1,
	// chosen by a hash of client address, client port and remote address.
	// Two flows to the same remote endpoint whose hashes collide cannot both
	// be translated; with few flows per test that does not happen.
	ADMPortBase  = 49152
	ADMPortCount = 1024
)

// natParams are the addresses a router's ruleset refers to.
type natParams struct {
	WANIf  string       // the router's internet-side interface
	WAN    netip.Addr   // the router's internet-side address
	LAN    netip.Prefix // the site's LAN
	Client netip.Addr   // the site's client
	Seed   uint32       // jhash seed for NATAddressDependent
}

// natRuleset returns the nft script that replaces a router's NAT table with
// the rules for kind. For NATNone the script only removes the table.
func natRuleset(kind NATKind, p natParams) (string, error) {
	kind = kind.orDefault()
	if !kind.Valid() {
		return "", fmt.Errorf("%w: %q", ErrUnknownNAT, kind)
	}
	var b strings.Builder
	// Creating the table first makes the delete succeed when it is absent;
	// nft applies the whole script atomically.
	fmt.Fprintf(&b, "table ip %s\ndelete table ip %s\n", natTable, natTable)
	if kind == NATNone {
		return b.String(), nil
	}
	out := fmt.Sprintf("ip saddr %s oifname %q", p.LAN, p.WANIf)
	fmt.Fprintf(&b, "table ip %s {\n", natTable)
	if kind == NATRestrictedCone {
		fmt.Fprintf(&b, "\tset udp_peers { type ipv4_addr . inet_service; flags dynamic,timeout; timeout %ds; }\n",
			int(RestrictedConeTimeout/time.Second))
	}

	b.WriteString("\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	switch kind {
	case NATSymmetric:
		fmt.Fprintf(&b, "\t\t%s masquerade fully-random\n", out)
	case NATAddressDependent:
		// The kernel reads a port from the hash's register in network byte
		// order, so "jhash … offset N" would yield byte-swapped ports; a
		// map from hash value to port keeps them in the documented range.
		fmt.Fprintf(&b, "\t\t%s meta l4proto udp snat to %s : jhash ip saddr . ip daddr . udp sport mod %d seed 0x%x map {",
			out, p.WAN, ADMPortCount, p.Seed)
		for i := range ADMPortCount {
			if i > 0 {
				b.WriteString(",")
			}
			if i%16 == 0 {
				b.WriteString("\n\t\t\t")
			} else {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "%d : %d", i, ADMPortBase+i)
		}
		b.WriteString("\n\t\t}\n")
		fmt.Fprintf(&b, "\t\t%s masquerade\n", out)
	default:
		fmt.Fprintf(&b, "\t\t%s masquerade\n", out)
	}
	b.WriteString("\t}\n")

	if kind == NATFullCone || kind == NATRestrictedCone {
		fmt.Fprintf(&b, "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n")
		fmt.Fprintf(&b, "\t\tiifname %q ip daddr %s meta l4proto udp dnat to %s\n", p.WANIf, p.WAN, p.Client)
		b.WriteString("\t}\n")
	}
	// Like most home routers, drop unsolicited TCP and UDP for the router
	// itself, silently. Dropping before connection tracking confirms the
	// packet also keeps it from leaving an entry that would later clash
	// with, and so change, the mapping of the client's own flow to that
	// peer (which breaks simultaneous-open hole punching).
	b.WriteString("\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n")
	fmt.Fprintf(&b, "\t\tiifname %q meta l4proto { tcp, udp } ct state new drop\n", p.WANIf)
	b.WriteString("\t}\n")

	switch kind {
	case NATRestrictedCone:
		// After source NAT (priority srcnat) the packet carries the external
		// port: remember (remote address, external port).
		b.WriteString("\tchain learn {\n\t\ttype filter hook postrouting priority srcnat + 10; policy accept;\n")
		fmt.Fprintf(&b, "\t\toifname %q ip saddr %s meta l4proto udp update @udp_peers { ip daddr . udp sport }\n", p.WANIf, p.WAN)
		b.WriteString("\t}\n")
		// Before destination NAT, drop UDP from remote addresses the client
		// has not sent to through that external port.
		b.WriteString("\tchain admit {\n\t\ttype filter hook prerouting priority dstnat - 10; policy accept;\n")
		fmt.Fprintf(&b, "\t\tiifname %q ip daddr %s meta l4proto udp ip saddr . udp dport != @udp_peers drop\n", p.WANIf, p.WAN)
		b.WriteString("\t}\n")
	case NATUDPBlocked:
		b.WriteString("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n")
		b.WriteString("\t\tmeta l4proto udp drop\n")
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String(), nil
}

// lossScale is the resolution of Impairment.Loss: parts per million.
const lossScale = 1_000_000

// lossRuleset returns the nft script that replaces a router's impairment
// table with random drops of lossPercent of the packets crossing wanIf in
// each direction. A zero lossPercent only removes the table.
func lossRuleset(wanIf string, lossPercent float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s\ndelete table ip %s\n", impairTable, impairTable)
	threshold := int64(lossPercent / 100 * lossScale)
	if threshold <= 0 {
		return b.String()
	}
	rule := "drop"
	if threshold < lossScale {
		rule = fmt.Sprintf("numgen random mod %d < %d drop", lossScale, threshold)
	}
	fmt.Fprintf(&b, "table ip %s {\n", impairTable)
	// Inbound drops happen before connection tracking, so a lost packet
	// leaves no trace; outbound drops happen after NAT, as on a real link.
	fmt.Fprintf(&b, "\tchain ingress {\n\t\ttype filter hook prerouting priority raw - 10; policy accept;\n\t\tiifname %q %s\n\t}\n", wanIf, rule)
	fmt.Fprintf(&b, "\tchain egress {\n\t\ttype filter hook postrouting priority srcnat + 20; policy accept;\n\t\toifname %q %s\n\t}\n", wanIf, rule)
	b.WriteString("}\n")
	return b.String()
}
