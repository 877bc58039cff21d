// Sending targeted messages between pairs, measuring their delivery, and churn.

package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// receive returns the receiver's handler (onOffer).
func (p *pair) receive(r *run) handler {
	return func(data []byte, arrived time.Time) { p.onOffer(r, data, arrived) }
}

// onOffer counts an offer the receiver got, frees a window slot and
// samples the latency, at the reader and, when the kernel stamped it, at
// the socket; other messages are ignored.
func (p *pair) onOffer(r *run, data []byte, arrived time.Time) {
	i := bytes.Index(data, marker)
	if i < 0 || len(data) < i+len(marker)+tsDigits {
		return
	}
	ts, ok := parseDigits(data[i+len(marker) : i+len(marker)+tsDigits])
	if !ok {
		return
	}
	now := time.Now()
	lat := now.Sub(r.base) - time.Duration(ts)
	if len(p.lat) < maxSamplesPerPair {
		p.lat = append(p.lat, lat)
		if !arrived.IsZero() {
			// Kernel times are wall-clock times: the wall clock
			// measures only the short wait since the arrival,
			// which a clock step during the run barely touches.
			p.socketLat = append(p.socketLat, lat-now.Round(0).Sub(arrived))
		}
	}
	p.delivered.Add(1)
	select {
	case <-p.window:
	default:
	}
}

// parseDigits parses a non-negative decimal number that fits in int64
// (ParseInt would make a string of b for each offer).
func parseDigits(b []byte) (int64, bool) {
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' || n > (math.MaxInt64-9)/10 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, len(b) > 0
}

// send runs the senders and the churn for the duration.
func (r *run) send(ctx context.Context, pairs []*pair) {
	sctx, cancel := context.WithTimeout(ctx, r.opts.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range pairs {
		wg.Go(func() { r.sendLoop(sctx, p, len(pairs)) })
	}
	if r.opts.Churn > 0 && len(pairs) > 0 {
		wg.Go(func() { r.churn(sctx, pairs) })
	}
	<-sctx.Done()
	wg.Wait()
}

// churn asks one sender after another to reconnect, Churn times a second.
func (r *run) churn(ctx context.Context, pairs []*pair) {
	t := time.NewTicker(time.Duration(float64(time.Second) / r.opts.Churn))
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			select {
			case pairs[i%len(pairs)].churn <- struct{}{}:
			default: // still reconnecting
			}
		}
	}
}

// offerSDP returns the session description object of an offer, in JSON,
// with a fake SDP of about payload bytes that holds the timestamp.
func offerSDP(payload int) []byte {
	head := "v=0\r\n" + string(marker) + strings.Repeat("0", tsDigits) + " 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
	const padHead, padTail = "a=x-pad:", "\r\n"
	if n := payload - len(head) - len(padHead) - len(padTail); n > 0 {
		head += padHead + strings.Repeat("x", n) + padTail
	}
	sdp, _ := json.Marshal(map[string]string{"type": "offer", "sdp": head}) // strings always marshal
	return sdp
}

// offer builds the pair's classic video-offer template and returns it
// with the offset of the timestamp digits.
func offer(target string, payload int) ([]byte, int) {
	sdp := offerSDP(payload)
	msg, _ := json.Marshal(struct {
		Type   string          `json:"type"`
		Target string          `json:"target"`
		SDP    json.RawMessage `json:"sdp"`
	}{"video-offer", target, sdp})
	return msg, bytes.Index(msg, marker) + len(marker)
}

// sendLoop sends offers to the pair's receiver at its share of Rate, or
// within its window, until ctx ends.
func (r *run) sendLoop(ctx context.Context, p *pair, n int) {
	msg, at := r.offerTemplate(p.target)
	var interval time.Duration
	if r.opts.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(n) / r.opts.Rate)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	next := time.Now()
	for {
		if interval > 0 {
			if d := time.Until(next); d > 0 {
				timer.Reset(d)
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
			next = next.Add(interval)
		} else {
			select {
			case <-ctx.Done():
				return
			case p.window <- struct{}{}:
			case <-p.churn:
				r.reconnect(p)
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-p.churn:
			r.reconnect(p)
		default:
		}
		ts := strconv.AppendInt(nil, int64(time.Since(r.base)), 10)
		copy(msg[at:at+tsDigits], strings.Repeat("0", tsDigits-len(ts)))
		copy(msg[at+tsDigits-len(ts):], ts)
		if err := p.sender.ws.WriteText(msg); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.sendErrs.Add(1)
			r.reconnect(p) // the sender is broken; a new one carries on
			continue
		}
		p.sent.Add(1)
	}
}

// reconnect closes the pair's sender and opens a new one.
func (r *run) reconnect(p *pair) {
	old := p.sender
	old.closing.Store(true)
	_ = old.ws.Close(statusNormal, "churn") // a failed close handshake changes nothing here
	// Not ctx: a registration cut by the end of sending would count as a
	// lost connection; DialTimeout bounds it.
	c, err := r.client(r.rctx, r.rctx, fmt.Sprintf("b%s-s%d", r.id, p.idx), nil)
	if err != nil {
		r.dialErrs.Add(1)
		// Keep the closed sender: its writes fail and retry the reconnect.
		return
	}
	p.sender = c
	r.reconnects.Add(1)
}

// drain waits until every sent offer is delivered or DrainTimeout passes.
func (r *run) drain(ctx context.Context, pairs []*pair) {
	dctx, cancel := context.WithTimeout(ctx, DrainTimeout)
	defer cancel()
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for {
		var sent, got int64
		for _, p := range pairs {
			sent += p.sent.Load()
			got += p.delivered.Load()
		}
		if got >= sent {
			return
		}
		select {
		case <-dctx.Done():
			return
		case <-t.C:
		}
	}
}

// latencyOf returns the distribution of lat, nil when it is empty.
func latencyOf(lat []time.Duration) *Latency {
	if len(lat) == 0 {
		return nil
	}
	slices.Sort(lat)
	q := func(f float64) time.Duration {
		i := int(f*float64(len(lat))+0.999999999) - 1
		return lat[min(max(i, 0), len(lat)-1)]
	}
	return &Latency{Samples: len(lat), P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: lat[len(lat)-1]}
}
