package stunprobe

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// target is a server resolved to an address of the family under test.
type target struct {
	index  int
	server Server
	addr   netip.AddrPort
}

// rfc5780Result holds the mapping and filtering tests run against one server.
type rfc5780Result struct {
	t2, t3, f2, f3 observation
}

// familyRun collects the observations of one family's UDP tests.
type familyRun struct {
	mu        sync.Mutex
	test1     map[int]observation
	rfc       map[int]rfc5780Result
	hairpin   *observation
	lifetime  *LifetimeResult
	lifeTests []observation
}

// probeFamily runs the UDP tests of one address family. It returns nil when
// no server has an address in that family.
func (p *prober) probeFamily(ctx context.Context, f family) *FamilyReport {
	fr := &FamilyReport{
		Family: f.name, Status: "ok", Tests: []Evidence{},
		Mapping: Classification{Behavior: NotTested}, Filtering: Classification{Behavior: NotTested},
	}
	var targets []target
	for i, s := range p.opts.Servers {
		if s.TLS {
			continue
		}
		ip, status, err := p.resolve(ctx, s, f)
		switch {
		case status == StatusSkipped:
			continue
		case status != StatusOK:
			p.addBinding(i, Binding{Transport: "udp", Family: f.name, Status: status, Error: errString(err)})
			continue
		}
		targets = append(targets, target{index: i, server: s, addr: netip.AddrPortFrom(ip, uint16(s.Port))})
	}
	if len(targets) == 0 {
		return nil
	}
	local, err := p.localAddrTowards(f.udp, targets[0].addr)
	if err != nil {
		for _, t := range targets {
			p.addBinding(t.index, Binding{Transport: "udp", Family: f.name, Status: StatusNoRoute, Server: t.addr.String(), Error: err.Error()})
		}
		fr.Status = StatusNoRoute
		fr.Verdict = Verdict{RFC4787: "not tested", Classic: "no route", WebRTC: fmt.Sprintf("no %s route from this host: %s candidates will not work", familyTitle(f.name), familyTitle(f.name))}
		return fr
	}
	fr.Local = local.String()

	e := newEngine(p.net, p.log, p.opts.now, p.opts.rto())
	defer e.close()
	m, err := e.listen(f.udp, local)
	if err != nil {
		for _, t := range targets {
			p.addBinding(t.index, Binding{Transport: "udp", Family: f.name, Status: StatusError, Server: t.addr.String(), Error: err.Error()})
		}
		fr.Status = StatusError
		return fr
	}

	run := &familyRun{test1: map[int]observation{}, rfc: map[int]rfc5780Result{}}
	var hairpinOnce, lifetimeOnce sync.Once
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Go(func() {
			r := e.newRequest(m, t.addr)
			r.deadline = time.Now().Add(p.opts.transactionTimeout())
			o := e.roundTrip(ctx, r, "mapping-1", t.server.URI)
			if o.replied() && o.from != t.addr {
				o.note = fmt.Sprintf("reply came from %s", o.from)
			}
			p.addBinding(t.index, bindingOf(o, "udp", f.name))
			run.mu.Lock()
			run.test1[t.index] = o
			run.mu.Unlock()
			if !o.replied() {
				return
			}
			rfc5780 := o.other.IsValid() && o.other.Addr() != t.addr.Addr() && f.matches(o.other.Addr())
			p.setServerInfo(t.index, o.other.IsValid(), o.software)
			if p.opts.Hairpin {
				hairpinOnce.Do(func() {
					wg.Go(func() {
						h := p.hairpin(ctx, e, f, local, m, o, t)
						run.mu.Lock()
						run.hairpin = &h
						run.mu.Unlock()
					})
				})
			}
			if p.opts.Lifetime {
				lifetimeOnce.Do(func() {
					wg.Go(func() {
						lr, tests := p.lifetime(ctx, e, f, local, t, o.rtt)
						run.mu.Lock()
						run.lifetime, run.lifeTests = lr, tests
						run.mu.Unlock()
					})
				})
			}
			if rfc5780 {
				res := p.rfc5780Tests(ctx, e, f, local, m, t, o)
				run.mu.Lock()
				run.rfc[t.index] = res
				run.mu.Unlock()
			}
		})
	}
	wg.Wait()
	p.analyse(fr, targets, m, run)
	return fr
}

// rfc5780Tests runs mapping tests II and III from the mapping socket m and
// filtering tests II and III from fresh sockets, all at once.
func (p *prober) rfc5780Tests(ctx context.Context, e *engine, f family, local netip.Addr, m *udpSocket, t target, t1 observation) rfc5780Result {
	altIP := netip.AddrPortFrom(t1.other.Addr(), t.addr.Port())
	altIPPort := t1.other
	altPort := netip.AddrPortFrom(t.addr.Addr(), t1.other.Port())
	mappingDeadline := time.Now().Add(p.opts.transactionTimeout())
	filterDeadline := time.Now().Add(p.opts.filterWait(t1.rtt))

	var res rfc5780Result
	var wg sync.WaitGroup
	mapping := func(to netip.AddrPort, test string, out *observation) {
		wg.Go(func() {
			r := e.newRequest(m, to)
			r.deadline = mappingDeadline
			o := e.roundTrip(ctx, r, test, t.server.URI)
			o.expect = to
			*out = checkSource(o)
		})
	}
	filtering := func(change uint32, expect netip.AddrPort, test string, out *observation) {
		wg.Go(func() {
			s, err := e.listen(f.udp, local)
			if err != nil {
				*out = observation{test: test, server: t.server.URI, to: t.addr, outcome: OutcomeFailed, note: err.Error()}
				return
			}
			r := e.newRequest(s, t.addr)
			r.change, r.deadline = change, filterDeadline
			o := e.roundTrip(ctx, r, test, t.server.URI)
			o.expect = expect
			o = checkSource(o)
			if change == changeIP|changePort {
				o.note = joinNote("CHANGE-REQUEST: change IP and port", o.note)
			} else {
				o.note = joinNote("CHANGE-REQUEST: change port", o.note)
			}
			*out = o
		})
	}
	mapping(altIP, "mapping-2", &res.t2)
	mapping(altIPPort, "mapping-3", &res.t3)
	filtering(changeIP|changePort, altIPPort, "filtering-2", &res.f2)
	filtering(changePort, altPort, "filtering-3", &res.f3)
	wg.Wait()
	return res
}

func joinNote(a, b string) string {
	if b == "" {
		return a
	}
	return a + "; " + b
}

// analyse turns a family's observations into its classification and verdict.
func (p *prober) analyse(fr *FamilyReport, targets []target, m *udpSocket, run *familyRun) {
	var first *observation
	var test1 []observation
	for _, t := range targets {
		o, ok := run.test1[t.index]
		if !ok {
			continue
		}
		fr.Tests = append(fr.Tests, o.evidence())
		test1 = append(test1, o)
		if o.replied() && first == nil {
			first = &o
		}
	}
	if first == nil {
		fr.Status = "no-reply"
		return
	}

	public := map[string]bool{}
	alg := (*bool)(nil)
	for _, o := range test1 {
		if o.replied() {
			public[o.mapped.String()] = true
			if o.plain.IsValid() {
				differ := o.plain != o.mapped
				if alg == nil || differ {
					alg = &differ
				}
			}
		}
	}
	for a := range public {
		fr.Public = append(fr.Public, a)
	}
	slices.Sort(fr.Public)
	fr.ALG = alg
	behind := first.mapped != m.local
	preserved := first.mapped.Port() == m.local.Port()
	fr.BehindNAT, fr.PortPreserved = &behind, &preserved

	rfcMapping := Classification{Behavior: Inconclusive, Method: "rfc5780", Reason: "no server returned OTHER-ADDRESS (RFC 5780 support is needed)"}
	filtering := Classification{Behavior: Inconclusive, Method: "rfc5780", Reason: "filtering tests need a server with RFC 5780 support (OTHER-ADDRESS and CHANGE-REQUEST)"}
	decided := false
	for _, t := range targets {
		res, ok := run.rfc[t.index]
		if !ok {
			continue
		}
		for _, o := range []observation{res.t2, res.t3, res.f2, res.f3} {
			fr.Tests = append(fr.Tests, o.evidence())
		}
		mc := classifyMapping(run.test1[t.index], res.t2, res.t3)
		fc := classifyFiltering(res.f2, res.f3, res.t2.replied() || res.t3.replied())
		if !decided {
			rfcMapping, filtering, decided = mc, fc, true
			continue
		}
		if mc.Behavior.Known() && rfcMapping.Behavior.Known() && mc.Behavior != rfcMapping.Behavior {
			fr.Conflicts = append(fr.Conflicts, fmt.Sprintf("mapping: %s says %s, %s says %s", rfcMapping.Server, rfcMapping.Behavior, mc.Server, mc.Behavior))
		}
		if fc.Behavior.Known() && filtering.Behavior.Known() && fc.Behavior != filtering.Behavior {
			fr.Conflicts = append(fr.Conflicts, fmt.Sprintf("filtering: %s says %s, %s says %s", filtering.Server, filtering.Behavior, fc.Server, fc.Behavior))
		}
		if !rfcMapping.Behavior.Known() && mc.Behavior.Known() {
			rfcMapping = mc
		}
		if !filtering.Behavior.Known() && fc.Behavior.Known() {
			filtering = fc
		}
	}
	varies, multi := compareDestinations(test1)
	fr.MappingVariesByDestination = varies
	mapping, conflicts := mergeMapping(rfcMapping, multi, varies)
	fr.Mapping, fr.Filtering = mapping, filtering
	fr.Conflicts = append(fr.Conflicts, conflicts...)

	if run.hairpin != nil {
		fr.Tests = append(fr.Tests, run.hairpin.evidence())
		switch run.hairpin.outcome {
		case OutcomeReply:
			fr.Hairpinning = ptr(true)
		case OutcomeNoReply:
			fr.Hairpinning = ptr(false)
		}
	}
	if run.lifetime != nil {
		fr.Lifetime = run.lifetime
		for _, o := range run.lifeTests {
			fr.Tests = append(fr.Tests, o.evidence())
		}
	}
	fr.Verdict = verdict(true, fr.BehindNAT, fr.Mapping.Behavior, fr.Filtering.Behavior)
}

func ptr[T any](v T) *T { return &v }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// bindingOf turns a test-I observation into a Binding entry.
func bindingOf(o observation, transport, fam string) Binding {
	b := Binding{
		Transport: transport, Family: fam, Server: addrString(o.to), Local: addrString(o.local),
		Sent: o.sent, Error: o.note,
	}
	switch o.outcome {
	case OutcomeReply:
		b.Status = StatusOK
		b.Mapped, b.MappedPlain = addrString(o.mapped), addrString(o.plain)
		b.OtherAddress, b.ResponseOrigin = addrString(o.other), addrString(o.origin)
		b.RTTMS = ms(o.rtt)
	case OutcomeNoReply:
		b.Status = StatusTimeout
		b.Error = fmt.Sprintf("no reply after %d transmissions", o.sent)
	case OutcomeRejectedReq:
		b.Status = StatusRejected
	case OutcomeWrongSource:
		b.Status = StatusWrongReply
	default:
		b.Status = StatusError
	}
	return b
}

// sortBindings orders bindings by transport then family, for stable output.
func sortBindings(bs []Binding) {
	slices.SortStableFunc(bs, func(a, b Binding) int {
		if a.Transport != b.Transport {
			return transportRank(a.Transport) - transportRank(b.Transport)
		}
		if a.Family < b.Family {
			return -1
		}
		if a.Family > b.Family {
			return 1
		}
		return 0
	})
}

func transportRank(t string) int {
	switch t {
	case "udp":
		return 0
	case "tcp":
		return 1
	}
	return 2
}
