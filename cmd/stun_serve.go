package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rtckit/rtckit/stunserver"
)

// stunServeSchema versions the JSON lines of `rtckit stun serve --json`.
const stunServeSchema = "rtckit.stun.serve/v1"

// Defaults of `rtckit stun serve`.
const (
	// defaultStunListen is loopback: serving the internet is a deliberate
	// choice of a public address.
	defaultStunListen = "127.0.0.1"
	// defaultStunPort is the IANA STUN port.
	defaultStunPort = 3478
	// defaultStunAltPort is the conventional RFC 5780 alternate port.
	defaultStunAltPort = 3479
)

// StunServeOptions are the inputs of `rtckit stun serve`.
type StunServeOptions struct {
	// Listen is the primary IP, a concrete address of this host.
	Listen netip.Addr
	// AltListen is the alternate IP; when valid the server is RFC 5780-capable.
	AltListen netip.Addr
	// Port and AltPort are the primary and alternate ports; 0 picks free ones.
	Port, AltPort int
	// ChangeRequest honours CHANGE-REQUEST (only with AltListen).
	ChangeRequest bool
	// TCP also serves Binding over TCP on Listen:Port.
	TCP bool
	// Rate is requests/s per source; 0 disables the limit.
	Rate float64
	// Burst is the rate limit's bucket size; 0 means the default.
	Burst int
	// Software is the SOFTWARE attribute.
	Software string
}

// StunServeEvent is one line of `rtckit stun serve --json` output: a
// "listening" event once every socket is bound, and a "stopped" event with
// the final counters.
type StunServeEvent struct {
	Schema string `json:"schema"`
	// Event is "listening" or "stopped".
	Event string `json:"event"`
	// Addrs are the bound addresses: primary, alt_port, alt_ip,
	// alt_ip_alt_port (the OTHER-ADDRESS) and tcp, the absent ones omitted.
	stunserver.Addrs
	// ChangeRequest tells whether CHANGE-REQUEST is honoured.
	ChangeRequest bool `json:"change_request"`
	// RateLimit is requests/s per source; 0 means unlimited.
	RateLimit float64 `json:"rate_limit"`
	// RateBurst is the rate limit's bucket size; 0 when unlimited.
	RateBurst int `json:"rate_burst"`
	// Stats are the final counters of a "stopped" event.
	Stats *stunserver.Stats `json:"stats,omitempty"`
}

func newStunServeCmd(g *GlobalOptions) *cobra.Command {
	opts := &StunServeOptions{}
	var listen, altListen string
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run an RFC 5780-capable STUN server",
		Long: fmt.Sprintf(`Serve answers STUN Binding requests with the client's mapped address
(XOR-MAPPED-ADDRESS and MAPPED-ADDRESS) and RESPONSE-ORIGIN, over UDP and
optionally TCP. It honours RESPONSE-PORT, which binding lifetime measurements
need.

With --alt-listen it binds two IPs by two ports, advertises the alternate one in
OTHER-ADDRESS and answers CHANGE-REQUEST from the changed address and port:
the RFC 5780 NAT behaviour tests of 'rtckit stun probe' then work against it.
Both IPs must be addresses of this host; the wildcard 0.0.0.0 is refused
because every response names the address it leaves from.

A per-source rate limit (IPv4 address or IPv6 /64) keeps the server from being
used to reflect traffic; while it is on, one source may also hold at most %d TCP
connections at once. A TCP connection that carries no request for %v is closed,
and at most %d are open at once. The server runs until interrupted (or for
--timeout), then prints its counters. With --json it prints one JSON object per
line: a "listening" event with the bound addresses, and a "stopped" event.`,
			stunserver.MaxTCPConnsPerSource, stunserver.DefaultTCPIdleTimeout, stunserver.DefaultMaxTCPConns),
		Example: `  # A plain STUN server on a public address
  rtckit stun serve --listen 198.51.100.10

  # An RFC 5780 server on two addresses, also over TCP
  rtckit stun serve --listen 198.51.100.10 --alt-listen 198.51.100.11 --tcp

  # A lab server on loopback with free ports, announced as JSON
  rtckit stun serve --listen 127.0.0.1 --alt-listen 127.0.0.2 --port 0 --alt-port 0 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.parse(cmd, listen, altListen); err != nil {
				return usageError(err)
			}
			ctx, cancel := g.Context(cmd.Context(), 0)
			defer cancel()
			return runStunServe(ctx, g, opts, cmd.OutOrStdout())
		},
	}
	f := c.Flags()
	f.StringVar(&listen, "listen", defaultStunListen, "primary IP, an address of this host (0.0.0.0 is refused); the default serves loopback only")
	f.StringVar(&altListen, "alt-listen", "", "alternate IP; enables RFC 5780 (OTHER-ADDRESS, CHANGE-REQUEST)")
	f.IntVar(&opts.Port, "port", defaultStunPort, "primary port (0: pick a free one)")
	f.IntVar(&opts.AltPort, "alt-port", defaultStunAltPort, "alternate port, used with --alt-listen (0: pick a free one)")
	f.BoolVar(&opts.ChangeRequest, "change-request", true, "answer CHANGE-REQUEST from the changed address (needs --alt-listen; false replies 420)")
	f.BoolVar(&opts.TCP, "tcp", false, "also serve over TCP on the primary IP and port")
	f.Float64Var(&opts.Rate, "rate", stunserver.DefaultRateLimit, "requests per second accepted from one source (0: no limit)")
	f.IntVar(&opts.Burst, "burst", 0, fmt.Sprintf("rate limit burst (0: %d, or twice --rate if larger)", stunserver.DefaultRateBurst))
	f.StringVar(&opts.Software, "software", stunserver.DefaultSoftware, "SOFTWARE attribute sent in responses")
	return c
}

// parse validates the flags that need more than their type.
func (o *StunServeOptions) parse(cmd *cobra.Command, listen, altListen string) error {
	var err error
	if o.Listen, err = netip.ParseAddr(listen); err != nil {
		return fmt.Errorf("--listen: %q is not an IP address", listen)
	}
	if altListen != "" {
		if o.AltListen, err = netip.ParseAddr(altListen); err != nil {
			return fmt.Errorf("--alt-listen: %q is not an IP address", altListen)
		}
	}
	if !o.AltListen.IsValid() {
		if cmd.Flags().Changed("change-request") && o.ChangeRequest {
			return errors.New("--change-request needs --alt-listen")
		}
		if cmd.Flags().Changed("alt-port") {
			return errors.New("--alt-port needs --alt-listen")
		}
	}
	if o.Rate < 0 {
		return errors.New("--rate must not be negative (0 disables the limit)")
	}
	if o.Burst < 0 {
		return errors.New("--burst must not be negative")
	}
	return nil
}

// config turns the options into the server's configuration.
func (o *StunServeOptions) config() stunserver.Config {
	rate := o.Rate
	if rate == 0 {
		rate = -1 // the CLI's 0 is the library's "unlimited"
	}
	return stunserver.Config{
		PrimaryIP:           o.Listen,
		AlternateIP:         o.AltListen,
		Port:                o.Port,
		AltPort:             o.AltPort,
		EnableChangeRequest: o.ChangeRequest,
		TCP:                 o.TCP,
		RateLimit:           rate,
		RateBurst:           o.Burst,
		Software:            o.Software,
	}
}

// runStunServe serves until ctx ends, printing a "listening" event once
// bound and a "stopped" event at the end.
func runStunServe(ctx context.Context, g *GlobalOptions, opts *StunServeOptions, out io.Writer) error {
	cfg := opts.config()
	cfg.Logger = g.Logger()
	srv, err := stunserver.Listen(cfg)
	if err != nil {
		if errors.Is(err, stunserver.ErrInvalidConfig) {
			return usageError(err)
		}
		return err
	}
	ev := StunServeEvent{
		Schema:        stunServeSchema,
		Event:         "listening",
		Addrs:         srv.Addrs(),
		ChangeRequest: srv.ChangeRequest(),
	}
	ev.RateLimit, ev.RateBurst = srv.RateLimit()
	if err := writeEvent(out, g.JSON, ev, stunServeText); err != nil {
		return errors.Join(err, srv.Close())
	}
	serveErr := srv.Serve(ctx)
	stats := srv.Stats()
	ev.Event, ev.Stats = "stopped", &stats
	return errors.Join(serveErr, writeEvent(out, g.JSON, ev, stunServeText))
}

// stunServeText renders an event for people.
func stunServeText(ev StunServeEvent) string {
	var b strings.Builder
	if ev.Event == "stopped" && ev.Stats != nil {
		s := ev.Stats
		fmt.Fprintf(&b, "STUN server stopped: %d requests, %d responses, %d error responses, %d change requests, %d to RESPONSE-PORT, %d rate limited, %d malformed, %d errors",
			s.Requests, s.Responses, s.ErrorResponses, s.ChangeRequests, s.ResponsePorts, s.RateLimited, s.Malformed, s.Errors)
		if ev.TCP.IsValid() {
			fmt.Fprintf(&b, ", %d TCP connections (%d refused)", s.TCPAccepted, s.TCPRejected)
		}
		b.WriteString("\n")
		return b.String()
	}
	b.WriteString("STUN server listening\n")
	row := func(name, value string) { fmt.Fprintf(&b, "  %-16s %s\n", name, value) }
	row("primary", "udp "+ev.Primary.String())
	if ev.AltIPAltPort.IsValid() {
		row("alternate port", "udp "+ev.AltPort.String())
		row("alternate IP", "udp "+ev.AltIP.String())
		row("other address", "udp "+ev.AltIPAltPort.String())
	}
	if ev.TCP.IsValid() {
		row("tcp", ev.TCP.String())
	}
	switch {
	case ev.ChangeRequest:
		row("change request", "honoured")
	case ev.AltIPAltPort.IsValid():
		row("change request", "refused (420)")
	default:
		row("change request", "unavailable without --alt-listen (420)")
	}
	if ev.RateLimit > 0 {
		row("rate limit", fmt.Sprintf("%g/s per source, burst %d", ev.RateLimit, ev.RateBurst))
	} else {
		row("rate limit", "none")
	}
	return b.String()
}
