package icegather

import (
	"fmt"
	"net"
	"slices"

	"github.com/rtckit/rtckit/peer"
)

// findings lists what a person would likely miss in a report.
func findings(r *Report, ice peer.ICEConfig) []Finding {
	out := []Finding{}
	hosts := map[string]bool{}
	v6 := false
	for _, c := range r.Candidates {
		ip := net.ParseIP(c.Address)
		if ip != nil && ip.To4() == nil {
			v6 = true
		}
		if c.Type == TypeHost {
			hosts[net.JoinHostPort(c.Address, fmt.Sprint(c.Port))] = true
			hosts[c.Address] = true
		}
	}
	for _, c := range r.Candidates {
		ip := net.ParseIP(c.Address)
		switch {
		case c.Type == TypeRelay && ip != nil && peer.IsPrivate(ip):
			out = append(out, Finding{Code: "relay-private-address", Message: fmt.Sprintf(
				"relay candidate %s from %s has a private address: remote peers cannot reach it (set the TURN server's external/relay address)", c.Address, c.Server)})
		case c.Type == TypeSrflx && hosts[c.Address]:
			out = append(out, Finding{Code: "srflx-equals-host", Message: fmt.Sprintf(
				"server-reflexive address %s equals a host address: no NAT between this host and %s", c.Address, c.Server)})
		}
	}
	wantsV6 := len(ice.Networks) == 0 || slices.Contains(ice.Networks, "udp6") || slices.Contains(ice.Networks, "tcp6")
	if !v6 && wantsV6 && ice.Policy != peer.PolicyRelay && !r.Interrupted {
		out = append(out, Finding{Code: "no-ipv6", Message: "no IPv6 candidate: this host has no usable IPv6 address, so IPv6-only peers cannot connect directly"})
	}
	for _, s := range r.Servers {
		if s.Status == StatusFailed {
			out = append(out, Finding{Code: "no-" + s.Expected, Message: fmt.Sprintf("%s produced no %s candidate: %s", s.URI, s.Expected, s.Error)})
		}
	}
	return dedupe(out)
}

func dedupe(fs []Finding) []Finding {
	seen := map[string]bool{}
	out := fs[:0]
	for _, f := range fs {
		if !seen[f.Message] {
			seen[f.Message] = true
			out = append(out, f)
		}
	}
	return out
}
