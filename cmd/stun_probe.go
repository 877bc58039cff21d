package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/rtckit/rtckit/diag/stunprobe"
	"github.com/rtckit/rtckit/peer"
	"github.com/spf13/cobra"
)

// StunProbeOptions are the inputs of `rtckit stun probe`.
type StunProbeOptions struct {
	// Servers are stun: or stuns: URIs; empty means stunprobe.DefaultServers.
	Servers []string
	// Transports lists "udp" and/or "tcp".
	Transports []string
	// IPv4Only and IPv6Only restrict the address families.
	IPv4Only, IPv6Only bool
	// Hairpin enables the hairpinning test.
	Hairpin bool
	// Lifetime enables the binding lifetime search up to LifetimeMax.
	Lifetime    bool
	LifetimeMax time.Duration
	// FilterWait is the least wait for replies that filtering may drop.
	FilterWait time.Duration
	// RTO is the first retransmission timeout.
	RTO time.Duration
}

func newStunProbeCmd(g *GlobalOptions) *cobra.Command {
	opts := &StunProbeOptions{}
	c := &cobra.Command{
		Use:   "probe",
		Short: "Discover the public address and NAT behaviour",
		Long: `Probe sends STUN Binding requests to one or more servers and reports the public
(mapped) address, then classifies the NAT in front of this host: RFC 4787
mapping and filtering behaviour (RFC 5780 tests against servers that return
OTHER-ADDRESS, and a comparison of the mapping seen by different servers),
port preservation, and optionally hairpinning and binding lifetime.

All tests run at once; the probe ends when every answer is in. A reply to a
CHANGE-REQUEST counts only when it really comes from the changed address and
port; a server that ignores CHANGE-REQUEST makes the result inconclusive,
never "open". See docs/stun-probe.md for every verdict.`,
		Example: `  # Probe the default public servers
  rtckit stun probe

  # Probe your own RFC 5780 server and a second plain server, as JSON
  rtckit stun probe --server stun:stun.example.net --server stun:192.0.2.7:3478 --json

  # UDP over IPv4 only, with the hairpinning and binding lifetime tests
  rtckit stun probe -4 --transport udp --hairpin --lifetime --lifetime-max 60s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStunProbe(cmd.Context(), g, opts, cmd.OutOrStdout())
		},
	}
	f := c.Flags()
	f.StringArrayVarP(&opts.Servers, "server", "s", nil, "STUN server URI, stun:host[:port] or stuns:host[:port] (repeatable; default: well-known public servers)")
	f.StringSliceVar(&opts.Transports, "transport", []string{"udp", "tcp"}, "transports to test: udp, tcp")
	f.BoolVarP(&opts.IPv4Only, "ipv4", "4", false, "test IPv4 only")
	f.BoolVarP(&opts.IPv6Only, "ipv6", "6", false, "test IPv6 only")
	f.BoolVar(&opts.Hairpin, "hairpin", false, "test hairpinning (a packet to your own public address comes back in)")
	f.BoolVar(&opts.Lifetime, "lifetime", false, "measure how long an idle UDP binding lives (needs RESPONSE-PORT support)")
	f.DurationVar(&opts.LifetimeMax, "lifetime-max", stunprobe.DefaultLifetimeMax, "longest binding lifetime searched")
	f.DurationVar(&opts.FilterWait, "filter-wait", stunprobe.DefaultFilterWait, "least wait for replies that filtering may drop")
	f.DurationVar(&opts.RTO, "rto", stunprobe.DefaultRTO, "first retransmission timeout (doubles per retransmission)")
	return c
}

// stunProbeConfig turns validated command options into library options.
func stunProbeConfig(opts *StunProbeOptions) (stunprobe.Options, error) {
	var po stunprobe.Options
	servers := opts.Servers
	if len(servers) == 0 {
		servers = stunprobe.DefaultServers
	}
	for _, raw := range servers {
		u, err := peer.ParseICEServerURI(raw)
		if err != nil {
			return po, err
		}
		if u.IsTURN() {
			return po, fmt.Errorf("%w: %q is a TURN server; stun probe takes stun: or stuns: URIs (use the same host with stun:)", peer.ErrBadURI, raw)
		}
		po.Servers = append(po.Servers, stunprobe.Server{URI: u.String(), Host: u.Host, Port: u.Port, TLS: u.Secure()})
	}
	for _, t := range opts.Transports {
		switch t {
		case "udp":
			po.UDP = true
		case "tcp":
			po.TCP = true
		default:
			return po, fmt.Errorf("unknown transport %q: use udp and/or tcp", t)
		}
	}
	if !po.UDP && !po.TCP {
		return po, fmt.Errorf("--transport needs udp and/or tcp")
	}
	if opts.IPv4Only && opts.IPv6Only {
		return po, fmt.Errorf("--ipv4 and --ipv6 exclude each other")
	}
	po.IPv4, po.IPv6 = !opts.IPv6Only, !opts.IPv4Only
	if opts.IPv4Only || opts.IPv6Only {
		// A family no server can be reached in would probe nothing.
		usable := false
		for _, sv := range po.Servers {
			ip, err := netip.ParseAddr(sv.Host)
			if err != nil || ip.Unmap().Is4() == opts.IPv4Only {
				usable = true // a name may have addresses of either family
			}
		}
		if !usable {
			return po, fmt.Errorf("--ipv%s: no server has an address of that family", map[bool]string{true: "4", false: "6"}[opts.IPv4Only])
		}
	}
	if opts.Lifetime && opts.LifetimeMax < time.Second {
		return po, fmt.Errorf("--lifetime-max must be at least 1s")
	}
	if opts.FilterWait <= 0 || opts.RTO <= 0 {
		return po, fmt.Errorf("--filter-wait and --rto must be positive")
	}
	if opts.Lifetime && !po.UDP {
		return po, fmt.Errorf("--lifetime needs UDP")
	}
	if opts.Hairpin && !po.UDP {
		return po, fmt.Errorf("--hairpin needs UDP")
	}
	po.Hairpin, po.Lifetime, po.LifetimeMax = opts.Hairpin, opts.Lifetime, opts.LifetimeMax
	po.FilterWait, po.RTO = opts.FilterWait, opts.RTO
	return po, nil
}

func runStunProbe(ctx context.Context, g *GlobalOptions, opts *StunProbeOptions, out io.Writer) error {
	po, err := stunProbeConfig(opts)
	if err != nil {
		return usageError(err)
	}
	po.Logger = g.Logger()
	timeout := stunprobe.DefaultTimeout
	if po.Lifetime {
		timeout += po.LifetimeMax
	}
	ctx, cancel := g.Context(ctx, timeout)
	defer cancel()
	report, err := stunprobe.Probe(ctx, po)
	if err != nil {
		return err
	}
	if g.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else if err := stunprobe.WriteText(out, report); err != nil {
		return err
	}
	return report.Err()
}
