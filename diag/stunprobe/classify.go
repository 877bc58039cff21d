package stunprobe

import (
	"fmt"
	"net/netip"
	"time"
)

// observation is the typed evidence of one request; Evidence is its report form.
type observation struct {
	test    string
	server  string
	local   netip.AddrPort
	to      netip.AddrPort
	expect  netip.AddrPort // required reply source; zero: any
	outcome string
	from    netip.AddrPort
	origin  netip.AddrPort // RESPONSE-ORIGIN
	mapped  netip.AddrPort // XOR-MAPPED-ADDRESS
	plain   netip.AddrPort // MAPPED-ADDRESS
	other   netip.AddrPort // OTHER-ADDRESS
	errCode int
	// recvOn is the local socket the reply arrived on.
	recvOn   netip.AddrPort
	software string
	sent     int
	rtt      time.Duration
	note     string
}

func (o observation) replied() bool { return o.outcome == OutcomeReply }

func (o observation) evidence() Evidence {
	e := Evidence{
		Test: o.test, Server: o.server, Outcome: o.outcome, Sent: o.sent, Note: o.note,
		Local: addrString(o.local), To: addrString(o.to), Expect: addrString(o.expect),
		From: addrString(o.from), ResponseOrigin: addrString(o.origin), Mapped: addrString(o.mapped),
	}
	if o.replied() {
		e.RTTMS = ms(o.rtt)
	}
	return e
}

func addrString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// checkSource turns a reply into a wrong-source observation when it did not
// come from where the test requires, by packet source or RESPONSE-ORIGIN.
func checkSource(o observation) observation {
	if !o.replied() || !o.expect.IsValid() {
		return o
	}
	switch {
	case o.from != o.expect:
		o.outcome = OutcomeWrongSource
		o.note = fmt.Sprintf("reply came from %s, not from %s", o.from, o.expect)
	case o.origin.IsValid() && o.origin != o.expect:
		o.outcome = OutcomeWrongSource
		o.note = fmt.Sprintf("RESPONSE-ORIGIN is %s, not %s", o.origin, o.expect)
	}
	return o
}

// classifyMapping applies RFC 5780 section 4.3 to tests I, II and III made
// from one socket to the primary, alternate-IP and alternate-IP-and-port
// addresses of one server.
func classifyMapping(t1, t2, t3 observation) Classification {
	c := Classification{Behavior: Inconclusive, Method: "rfc5780", Server: t1.server}
	switch {
	case !t1.replied():
		c.Reason = "the server did not answer binding test I"
	case !t1.other.IsValid():
		c.Reason = "the server sent no OTHER-ADDRESS (no RFC 5780 support)"
	case t1.other.Addr() == t1.to.Addr():
		c.Reason = "OTHER-ADDRESS has the server's own IP address"
	case !t2.replied():
		c.Reason = fmt.Sprintf("the alternate address %s did not answer test II (%s)", t2.to, t2.outcome)
	case t2.mapped == t1.mapped:
		c.Behavior = EndpointIndependent
		c.Reason = fmt.Sprintf("same mapping %s towards %s and %s", t1.mapped, t1.to, t2.to)
	case !t3.replied():
		c.Reason = fmt.Sprintf("the mapping changed with the destination IP, but %s did not answer test III (%s)", t3.to, t3.outcome)
	case t3.mapped == t2.mapped:
		c.Behavior = AddressDependent
		c.Reason = fmt.Sprintf("mapping changed with the destination IP (%s, %s) but not with the port", t1.mapped, t2.mapped)
	default:
		c.Behavior = AddressPortDependent
		c.Reason = fmt.Sprintf("mapping changed with the destination IP and with the port (%s, %s, %s)", t1.mapped, t2.mapped, t3.mapped)
	}
	return c
}

// classifyFiltering applies RFC 5780 section 4.4. f2 asked for a reply from
// the other IP and port, f3 from the other port only; each was sent from a
// fresh socket that had talked to nothing but the server's primary address.
// alternateAlive tells whether the server's alternate address answered the
// mapping tests, which makes a missing reply evidence of filtering rather
// than of a server that ignores CHANGE-REQUEST.
func classifyFiltering(f2, f3 observation, alternateAlive bool) Classification {
	c := Classification{Behavior: Inconclusive, Method: "rfc5780", Server: f2.server}
	for _, o := range []observation{f2, f3} {
		switch o.outcome {
		case OutcomeWrongSource:
			c.Reason = fmt.Sprintf("the server did not honour CHANGE-REQUEST in %s: %s", o.test, o.note)
			return c
		case OutcomeRejectedReq:
			c.Reason = fmt.Sprintf("the server rejected CHANGE-REQUEST (error %d)", o.errCode)
			return c
		case OutcomeFailed:
			c.Reason = fmt.Sprintf("%s failed: %s", o.test, o.note)
			return c
		}
	}
	switch {
	case f2.replied():
		c.Behavior = EndpointIndependent
		c.Reason = fmt.Sprintf("a reply from %s, an address never contacted, came through", f2.from)
	case f3.replied():
		c.Behavior = AddressDependent
		c.Reason = fmt.Sprintf("a reply from another port (%s) of the contacted IP came through, one from another IP did not", f3.from)
	case !alternateAlive:
		c.Reason = "no reply to CHANGE-REQUEST and the server's alternate address never answered: filtering cannot be told from a server that ignores CHANGE-REQUEST"
	default:
		c.Behavior = AddressPortDependent
		c.Reason = "only replies from the contacted address and port came through"
	}
	return c
}

// compareDestinations reports whether the mapping seen from one socket
// varies between servers (the multi-server method, which needs no RFC 5780
// support). It returns nil with fewer than two distinct server addresses.
func compareDestinations(obs []observation) (varies *bool, c Classification) {
	c = Classification{Behavior: Inconclusive, Method: "multi-server"}
	var replies []observation
	for _, o := range obs {
		if o.replied() && o.mapped.IsValid() {
			replies = append(replies, o)
		}
	}
	if len(replies) < 2 {
		c.Reason = "fewer than two servers answered from the same socket"
		return nil, c
	}
	sameIPSamePort, diffIPSame, diffIPDiff, sameIPDiffPort := false, false, false, false
	for i := 0; i < len(replies); i++ {
		for j := i + 1; j < len(replies); j++ {
			a, b := replies[i], replies[j]
			if a.to == b.to {
				continue
			}
			same := a.mapped == b.mapped
			switch {
			case a.to.Addr() == b.to.Addr() && same:
				sameIPSamePort = true
			case a.to.Addr() == b.to.Addr():
				sameIPDiffPort = true
			case same:
				diffIPSame = true
			default:
				diffIPDiff = true
			}
		}
	}
	v := diffIPDiff || sameIPDiffPort
	if !v && !diffIPSame && !sameIPSamePort {
		c.Reason = "the servers that answered share one address"
		return nil, c
	}
	varies = &v
	switch {
	case !v && diffIPSame:
		c.Behavior = EndpointIndependent
		c.Reason = "the same mapping towards servers at different IP addresses"
	case !v:
		c.Reason = "the same mapping towards different ports of one IP; servers at different IPs are needed"
	case sameIPDiffPort:
		c.Behavior = AddressPortDependent
		c.Reason = "the mapping changed between two ports of one server IP"
	case sameIPSamePort:
		c.Behavior = AddressDependent
		c.Reason = "the mapping changed with the server IP but not with the port"
	default:
		c.Behavior = EndpointDependent
		c.Reason = "the mapping changed with the server IP (no two servers share an IP, so port dependence is unknown)"
	}
	return varies, c
}

// mergeMapping combines the RFC 5780 result with the multi-server one,
// preferring RFC 5780 and reporting disagreement as a conflict.
func mergeMapping(rfc Classification, multi Classification, varies *bool) (Classification, []string) {
	var conflicts []string
	if rfc.Behavior.Known() && varies != nil {
		if rfc.Behavior == EndpointIndependent && *varies {
			conflicts = append(conflicts, fmt.Sprintf("RFC 5780 tests found endpoint-independent mapping, but the mapping varied between servers (%s)", multi.Reason))
		}
		if rfc.Behavior != EndpointIndependent && !*varies && multi.Behavior == EndpointIndependent {
			conflicts = append(conflicts, fmt.Sprintf("RFC 5780 tests found %s mapping, but servers at different IPs saw the same mapping", rfc.Behavior))
		}
	}
	if rfc.Behavior.Known() {
		return rfc, conflicts
	}
	if multi.Behavior.Known() {
		if rfc.Reason != "" {
			multi.Reason += "; RFC 5780: " + rfc.Reason
		}
		return multi, conflicts
	}
	if rfc.Reason == "" {
		return multi, conflicts
	}
	return rfc, conflicts
}

// verdict names the result. udp tells whether any UDP reply came; behindNAT
// may be nil when unknown.
func verdict(udp bool, behindNAT *bool, m, f Behavior) Verdict {
	v := Verdict{RFC4787: fmt.Sprintf("%s mapping, %s filtering", m, f)}
	switch {
	case !udp:
		v.RFC4787 = "no UDP"
		v.Classic = "UDP blocked"
		v.WebRTC = "UDP is blocked: calls need a TURN relay over TCP or TLS (turn:…?transport=tcp or turns:)"
	case behindNAT != nil && !*behindNAT && f == EndpointIndependent:
		v.Classic = "open internet (no NAT)"
		v.WebRTC = "direct P2P likely: peers can reach this address directly"
	case behindNAT != nil && !*behindNAT && (f == AddressDependent || f == AddressPortDependent):
		v.Classic = "no NAT, stateful firewall"
		v.WebRTC = "direct P2P likely: ICE opens the firewall from this side; needs TURN only when the other side is symmetric"
	case behindNAT != nil && !*behindNAT:
		v.Classic = "no NAT (filtering unknown)"
		v.WebRTC = "direct P2P likely: the public address is this host's own"
	case m == EndpointIndependent && f == EndpointIndependent:
		v.Classic = "full cone"
		v.WebRTC = "direct P2P likely with any peer"
	case m == EndpointIndependent && f == AddressDependent:
		v.Classic = "restricted cone"
		v.WebRTC = "direct P2P likely with any peer"
	case m == EndpointIndependent && f == AddressPortDependent:
		v.Classic = "port-restricted cone"
		v.WebRTC = "direct P2P likely, but needs TURN when the other side is symmetric"
	case m == EndpointIndependent:
		v.Classic = "cone NAT (filtering unknown)"
		v.WebRTC = "inconclusive: direct P2P likely unless the filtering is strict and the other side is symmetric"
	case m.Known():
		v.Classic = "symmetric"
		v.WebRTC = "direct P2P only with open, full-cone or restricted-cone peers; needs TURN when the other side is port-restricted or symmetric"
	default:
		v.Classic = "unknown"
		v.WebRTC = "inconclusive: the NAT's mapping behaviour could not be determined"
	}
	return v
}

// conclusive reports whether a verdict names the NAT well enough for WebRTC.
func (v Verdict) conclusive() bool {
	switch v.Classic {
	case "unknown", "cone NAT (filtering unknown)", "no NAT (filtering unknown)":
		return false
	}
	return true
}
