package stunprobe

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v4"
)

// OutcomeSkipped marks a test that did not apply (for example hairpinning
// without a NAT).
const OutcomeSkipped = "skipped"

// hairpin tests whether the NAT forwards a packet sent to its own public
// address back inside (RFC 5780 section 4.5). Two sockets learn their
// mappings and send to each other's public address; the first packet opens
// the NAT's filter for the other, as ICE connectivity checks do.
func (p *prober) hairpin(ctx context.Context, e *engine, f family, local netip.Addr, m *udpSocket, t1 observation, t target) observation {
	o := observation{test: "hairpin", server: t.server.URI, local: m.local, to: t1.mapped, outcome: OutcomeNoReply}
	if t1.mapped == m.local {
		o.outcome, o.note = OutcomeSkipped, "not behind a NAT: the mapped address is the local one"
		return o
	}
	h, err := e.listen(f.udp, local)
	if err != nil {
		o.outcome, o.note = OutcomeFailed, err.Error()
		return o
	}
	r := e.newRequest(h, t.addr)
	r.deadline = time.Now().Add(p.opts.transactionTimeout())
	setup := e.roundTrip(ctx, r, "hairpin-setup", t.server.URI)
	if !setup.replied() {
		o.outcome, o.note = OutcomeFailed, "the second socket got no mapping: "+setup.outcome
		return o
	}
	ch := make(chan inbound, 8)
	toH, toM := stun.NewTransactionID(), stun.NewTransactionID()
	e.registerOn(toH, ch)
	e.registerOn(toM, ch)
	defer e.unregister(toH)
	defer e.unregister(toM)
	sends := []struct {
		from *udpSocket
		to   netip.AddrPort
		id   [stun.TransactionIDSize]byte
	}{{m, setup.mapped, toH}, {h, t1.mapped, toM}}
	raws := make([][]byte, len(sends))
	for i, s := range sends {
		raw, err := buildBinding(request{id: s.id})
		if err != nil {
			o.outcome, o.note = OutcomeFailed, err.Error()
			return o
		}
		raws[i] = raw
	}
	deadline := time.NewTimer(p.opts.filterWait(t1.rtt))
	defer deadline.Stop()
	retransmit := time.NewTimer(0)
	defer retransmit.Stop()
	rto := e.rto
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return o
		case <-deadline.C:
			o.note = fmt.Sprintf("neither %s nor %s received a packet sent to the other's public address", m.local, h.local)
			return o
		case <-retransmit.C:
			for i, s := range sends {
				if _, err := s.from.conn.WriteTo(raws[i], net.UDPAddrFromAddrPort(s.to)); err != nil {
					o.outcome, o.note = OutcomeFailed, err.Error()
					return o
				}
			}
			o.sent++
			retransmit.Reset(rto)
			rto = min(rto*2, MaxRTO)
		case in := <-ch:
			id := in.msg.TransactionID
			if (id == toH && in.sock == h) || (id == toM && in.sock == m) {
				o.outcome, o.from, o.rtt = OutcomeReply, in.from, time.Since(start)
				o.note = fmt.Sprintf("%s reached %s through the public address", in.from, in.sock.local)
				return o
			}
		}
	}
}

// lifetimeLadder lists the idle times tested, as fractions of the maximum so
// that the search keeps its resolution at any scale (1, 2, 3, 5, 8, 13, 20,
// 30, 45, 60, 90 and 120 s for a two-minute maximum).
func lifetimeLadder(max time.Duration) []time.Duration {
	fractions := []float64{1.0 / 120, 1.0 / 60, 1.0 / 40, 1.0 / 24, 1.0 / 15, 1.0 / 9, 1.0 / 6, 1.0 / 4, 3.0 / 8, 1.0 / 2, 3.0 / 4, 1}
	out := make([]time.Duration, 0, len(fractions))
	for _, f := range fractions {
		out = append(out, time.Duration(float64(max)*f).Round(time.Millisecond))
	}
	return out
}

// lifetime measures how long an idle binding survives. For each idle time on
// the ladder, a fresh socket learns its mapping, stays silent, and then a
// second socket asks the server (RFC 5780 RESPONSE-PORT) to answer at the
// first socket's mapped port: the answer arrives only while the binding
// lives. All idle times run at once.
func (p *prober) lifetime(ctx context.Context, e *engine, f family, local netip.Addr, t target, rtt time.Duration) (*LifetimeResult, []observation) {
	max := p.opts.lifetimeMax()
	ladder := lifetimeLadder(max)
	obs := make([]observation, len(ladder))
	var wg sync.WaitGroup
	for i, idle := range ladder {
		wg.Go(func() { obs[i] = p.lifetimeOne(ctx, e, f, local, t, rtt, idle) })
	}
	wg.Wait()
	return summariseLifetime(ladder, obs, max), obs
}

func (p *prober) lifetimeOne(ctx context.Context, e *engine, f family, local netip.Addr, t target, rtt, idle time.Duration) observation {
	test := fmt.Sprintf("lifetime-%gs", idle.Seconds())
	fail := func(note string) observation {
		return observation{test: test, server: t.server.URI, to: t.addr, outcome: OutcomeFailed, note: note}
	}
	l, err := e.listen(f.udp, local)
	if err != nil {
		return fail(err.Error())
	}
	r := e.newRequest(l, t.addr)
	r.deadline = time.Now().Add(p.opts.transactionTimeout())
	first := e.roundTrip(ctx, r, test, t.server.URI)
	if !first.replied() {
		return fail("no mapping: " + first.outcome)
	}
	idleTimer := time.NewTimer(idle)
	defer idleTimer.Stop()
	select {
	case <-ctx.Done():
		return fail("the probe's deadline came first")
	case <-idleTimer.C:
	}
	q, err := e.listen(f.udp, local)
	if err != nil {
		return fail(err.Error())
	}
	r = e.newRequest(q, t.addr)
	r.responsePort = int(first.mapped.Port())
	r.deadline = time.Now().Add(p.opts.filterWait(rtt))
	o := e.roundTrip(ctx, r, test, t.server.URI)
	o.local, o.expect = l.local, netip.AddrPort{}
	switch {
	case o.outcome == OutcomeReply && o.recvOn != l.local:
		o.outcome, o.note = OutcomeWrongSource, "the server ignored RESPONSE-PORT"
	case o.outcome == OutcomeReply:
		o.note = fmt.Sprintf("binding %s alive after %s idle", first.mapped, idle)
	case o.outcome == OutcomeNoReply:
		o.note = fmt.Sprintf("binding %s expired after %s idle", first.mapped, idle)
	}
	return o
}

// summariseLifetime bounds the binding lifetime from the ladder's results.
func summariseLifetime(ladder []time.Duration, obs []observation, max time.Duration) *LifetimeResult {
	res := &LifetimeResult{Status: "inconclusive", MaxS: max.Seconds()}
	var expired *time.Duration
	for i, o := range obs {
		switch o.outcome {
		case OutcomeRejectedReq, OutcomeWrongSource:
			res.Reason = "the server does not support RESPONSE-PORT (RFC 5780): " + o.note
			return res
		case OutcomeNoReply:
			if expired == nil || ladder[i] < *expired {
				expired = &ladder[i]
			}
		}
	}
	var alive time.Duration
	for i, o := range obs {
		if o.outcome == OutcomeReply && (expired == nil || ladder[i] < *expired) && ladder[i] > alive {
			alive = ladder[i]
		}
	}
	res.AliveAfterS = alive.Seconds()
	switch {
	case expired != nil:
		res.Status = "measured"
		res.ExpiredAfterS = ptr(expired.Seconds())
	case alive == max:
		res.Status = "longer-than-max"
	default:
		res.Reason = "some idle times could not be tested"
	}
	return res
}
