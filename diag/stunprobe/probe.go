package stunprobe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/rtckit/rtckit/internal/netaddr"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// family is an IP address family under test.
type family struct {
	name    string // "ipv4" or "ipv6"
	udp     string // "udp4" or "udp6"
	tcp     string // "tcp4" or "tcp6"
	lookup  string // "ip4" or "ip6"
	matches func(netip.Addr) bool
}

var (
	familyIPv4 = family{name: "ipv4", udp: "udp4", tcp: "tcp4", lookup: "ip4", matches: netip.Addr.Is4}
	familyIPv6 = family{name: "ipv6", udp: "udp6", tcp: "tcp6", lookup: "ip6", matches: netip.Addr.Is6}
)

// prober holds what one Probe call shares between its tests.
type prober struct {
	opts   Options
	net    transport.Net
	stdnet bool
	log    *slog.Logger

	mu     sync.Mutex
	report *Report
}

// Probe runs every enabled test against opts.Servers and returns the report.
// Network failures are recorded in the report; Probe returns an error only
// for invalid options or when the host's network cannot be opened. The probe
// ends when every test is done or ctx ends (DefaultTimeout applies when ctx
// has no deadline). When ctx is cancelled (not timed out) first, the report
// holds what came in until then and its outcome is OutcomeInterrupted.
func Probe(ctx context.Context, opts Options) (*Report, error) {
	switch {
	case len(opts.Servers) == 0:
		return nil, ErrNoServers
	case !opts.UDP && !opts.TCP:
		return nil, ErrNoTransport
	case !opts.IPv4 && !opts.IPv6:
		return nil, ErrNoFamily
	}
	if _, ok := ctx.Deadline(); !ok {
		timeout := DefaultTimeout
		if opts.Lifetime {
			timeout += opts.lifetimeMax()
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	p := &prober{opts: opts, net: opts.Net, log: opts.Logger}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if p.net == nil {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil, fmt.Errorf("open the host network: %w", err)
		}
		p.net, p.stdnet = n, true
	}
	start := opts.now()
	p.report = &Report{Schema: SchemaVersion, StartedAt: start, Servers: make([]ServerReport, len(opts.Servers))}
	for i, s := range opts.Servers {
		p.report.Servers[i] = ServerReport{URI: s.URI, Host: s.Host, Port: s.Port, Bindings: []Binding{}}
	}

	var families []family
	if opts.IPv4 {
		families = append(families, familyIPv4)
	}
	if opts.IPv6 {
		families = append(families, familyIPv6)
	}
	familyReports := make([]*FamilyReport, len(families))
	// A test that ended after a cancellation was cut short by it: only
	// those make the report interrupted, and only their family's verdict
	// is replaced.
	familyCut := make([]bool, len(families))
	var cut atomic.Bool
	cancelled := func() bool { return errors.Is(ctx.Err(), context.Canceled) }
	var wg sync.WaitGroup
	for i, f := range families {
		if opts.UDP {
			wg.Add(1)
			go func() {
				defer wg.Done()
				familyReports[i] = p.probeFamily(ctx, f)
				if cancelled() {
					familyCut[i] = true
					cut.Store(true)
				}
			}()
		}
		if opts.TCP {
			for si := range opts.Servers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if b := p.tcpBinding(ctx, si, f); b.Status != StatusSkipped {
						p.addBinding(si, b)
					}
					if cancelled() {
						cut.Store(true)
					}
				}()
			}
		}
	}
	wg.Wait()

	r := p.report
	r.DurationMS = ms(opts.now().Sub(start))
	r.UDP = p.anyOK(opts.UDP, "udp")
	r.TCP = p.anyOK(opts.TCP, "tcp", "tls")
	for i, fr := range familyReports {
		if fr != nil {
			if familyCut[i] && fr.Status != StatusNoRoute {
				fr.Verdict = interruptedVerdict()
			} else if fr.Status == "no-reply" {
				fr.Verdict = verdict(false, nil, NotTested, NotTested)
				if r.TCP == nil || !*r.TCP {
					fr.Verdict.Classic = "no reply"
					fr.Verdict.WebRTC = "no STUN server answered over UDP"
				}
			}
			r.Families = append(r.Families, *fr)
		}
	}
	for i := range r.Servers {
		sortBindings(r.Servers[i].Bindings)
	}
	r.Outcome = outcome(r)
	if cut.Load() {
		// Silence after a cancellation says nothing about the network.
		r.Outcome = OutcomeInterrupted
	}
	return r, nil
}

// interruptedVerdict replaces the verdict of a family whose tests were cut
// short by a cancellation.
func interruptedVerdict() Verdict {
	return Verdict{RFC4787: "not tested", Classic: "interrupted", WebRTC: "the probe was interrupted before it finished"}
}

// outcome summarises a finished report.
func outcome(r *Report) string {
	udp := r.UDP != nil && *r.UDP
	tcp := r.TCP != nil && *r.TCP
	switch {
	case !udp && !tcp && answered(r):
		// Servers are there, but every answer was an error or unusable.
		return OutcomeInconclusive
	case !udp && !tcp:
		return OutcomeUnreachable
	case r.UDP != nil && !udp:
		return OutcomeNoUDP
	}
	for _, f := range r.Families {
		if f.Status == "ok" {
			if f.Verdict.conclusive() {
				return OutcomeOK
			}
			return OutcomeInconclusive
		}
	}
	return OutcomeOK
}

// answered reports whether any server answered at all, if only with an
// error response or a reply that could not be used.
func answered(r *Report) bool {
	for _, s := range r.Servers {
		for _, b := range s.Bindings {
			if b.Status == StatusRejected || b.Status == StatusBadReply {
				return true
			}
		}
	}
	return false
}

func (p *prober) addBinding(server int, b Binding) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.report.Servers[server].Bindings = append(p.report.Servers[server].Bindings, b)
}

func (p *prober) setServerInfo(server int, rfc5780 bool, software string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sr := &p.report.Servers[server]
	if sr.RFC5780 == nil || rfc5780 {
		sr.RFC5780 = &rfc5780
	}
	if software != "" {
		sr.Software = software
	}
}

// anyOK reports whether any binding over the given transports succeeded; nil when not tested.
func (p *prober) anyOK(tested bool, transports ...string) *bool {
	if !tested {
		return nil
	}
	ok := false
	for _, s := range p.report.Servers {
		for _, b := range s.Bindings {
			for _, t := range transports {
				if b.Transport == t && b.Status == StatusOK {
					ok = true
				}
			}
		}
	}
	return &ok
}

// resolve returns the server's address in family f. A status other than
// StatusOK explains why there is none.
func (p *prober) resolve(ctx context.Context, s Server, f family) (netip.Addr, string, error) {
	if ip, err := netip.ParseAddr(s.Host); err == nil {
		ip = ip.Unmap()
		if !f.matches(ip) {
			return netip.Addr{}, StatusSkipped, nil
		}
		return ip, StatusOK, nil
	}
	var addrs []netip.Addr
	if p.stdnet {
		var err error
		addrs, err = net.DefaultResolver.LookupNetIP(ctx, f.lookup, s.Host)
		if err != nil {
			var dnsErr *net.DNSError
			if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
				return netip.Addr{}, StatusNoAddress, err
			}
			return netip.Addr{}, StatusDNS, err
		}
	} else {
		a, err := p.net.ResolveUDPAddr(f.udp, net.JoinHostPort(s.Host, strconv.Itoa(s.Port)))
		if err != nil {
			return netip.Addr{}, StatusDNS, err
		}
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			addrs = append(addrs, ip.Unmap())
		}
	}
	for _, a := range addrs {
		if f.matches(a.Unmap()) {
			return a.Unmap(), StatusOK, nil
		}
	}
	return netip.Addr{}, StatusNoAddress, fmt.Errorf("%s has no %s address", s.Host, f.name)
}

// localAddrTowards returns the local IP the host would use to reach dst, or
// an error when the family has no route.
func (p *prober) localAddrTowards(network string, dst netip.AddrPort) (netip.Addr, error) {
	conn, err := p.net.DialUDP(network, nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return netip.Addr{}, err
	}
	defer conn.Close()
	local, ok := netaddr.AddrPortOf(conn.LocalAddr())
	if !ok {
		return netip.Addr{}, fmt.Errorf("unexpected local address %v", conn.LocalAddr())
	}
	if !local.Addr().IsUnspecified() {
		return local.Addr(), nil
	}
	// Some networks (pion's vnet) do not pick a source address for an
	// unbound socket: use the first non-loopback address of the family.
	return p.interfaceAddr(dst.Addr())
}

// interfaceAddr returns the first non-loopback interface address of dst's family.
func (p *prober) interfaceAddr(dst netip.Addr) (netip.Addr, error) {
	ifaces, err := p.net.Interfaces()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, ifc := range ifaces {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			ip := pfx.Addr().Unmap()
			if ip.Is4() == dst.Is4() && !ip.IsLoopback() && !ip.IsUnspecified() {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("no local %s address", map[bool]string{true: "IPv4", false: "IPv6"}[dst.Is4()])
}
