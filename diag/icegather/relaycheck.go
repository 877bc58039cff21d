package icegather

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/peer"
)

// runRelayChecks checks every TURN server that produced a relay candidate, at once.
func (g *gatherer) runRelayChecks(ctx context.Context, api *webrtc.API) {
	var wg sync.WaitGroup
	checks := make([]*RelayCheck, len(g.opts.Servers))
	for i, s := range g.opts.Servers {
		if !s.URI.IsTURN() {
			continue
		}
		if g.report.Servers[i].Status != StatusOK {
			checks[i] = &RelayCheck{Server: s.URI.String(), Error: "no relay candidate to check: " + g.report.Servers[i].Error}
			continue
		}
		wg.Go(func() {
			c := relayCheck(ctx, api, g.opts, s, g.log)
			if !c.Passed && interrupted(ctx) {
				c.Error = "interrupted before the relay check finished"
			}
			checks[i] = &c
		})
	}
	wg.Wait()
	for _, c := range checks {
		if c != nil {
			g.report.RelayChecks = append(g.report.RelayChecks, *c)
			g.emit(Event{Event: EventRelay, RelayCheck: c})
		}
	}
}

// relayCheck connects two relay-only PeerConnections through server, opens
// an unreliable DataChannel and echoes a burst of timestamped messages,
// measuring loss and round trip times. What makes the connection impossible
// ends the check at once: a peer without a relay candidate, or a server that
// refuses the permissions towards the peers' relay addresses.
func relayCheck(ctx context.Context, api *webrtc.API, opts Options, server peer.ICEServer, log *slog.Logger) RelayCheck {
	res := RelayCheck{Server: server.URI.String()}
	count := opts.RelayCheckCount
	if count <= 0 {
		count = DefaultRelayCheckCount
	}
	interval := opts.RelayCheckInterval
	if interval <= 0 {
		interval = DefaultRelayCheckInterval
	}
	ice := opts.ICE
	ice.Policy = peer.PolicyRelay
	cfg := ice.Configuration([]peer.ICEServer{server})
	start := time.Now()

	a, err := api.NewPeerConnection(cfg)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer func() { _ = a.Close() }()
	b, err := api.NewPeerConnection(cfg)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer func() { _ = b.Close() }()
	b.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) { _ = dc.Send(m.Data) })
	})
	maxRetransmits := uint16(0)
	ordered := false
	dc, err := a.CreateDataChannel("relay-check", &webrtc.DataChannelInit{Ordered: &ordered, MaxRetransmits: &maxRetransmits})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	open := make(chan struct{})
	dc.OnOpen(func() { close(open) })
	var mu sync.Mutex
	var rtts []time.Duration
	received := make(chan struct{}, count)
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		if len(m.Data) < 16 {
			return
		}
		sent := time.Duration(binary.BigEndian.Uint64(m.Data[8:16]))
		mu.Lock()
		rtts = append(rtts, time.Since(start)-sent)
		mu.Unlock()
		select {
		case received <- struct{}{}:
		default:
		}
	})
	if err := negotiate(ctx, a, b); err != nil {
		res.Error = err.Error()
		return res
	}
	for name, pc := range map[string]*webrtc.PeerConnection{"first": a, "second": b} {
		if len(relayCandidates(pc)) == 0 {
			// Nothing can connect: no need to wait for the deadline.
			res.Error = "the " + name + " peer got no relay candidate: the server refused its allocation (quota, credentials or capacity; the server's own entry says why)"
			return res
		}
	}
	// pion asks for its permissions as it sends its connectivity checks,
	// and only logs a refusal: ask the server directly, alongside.
	refused := make(chan string, 1)
	permCtx, stopPerm := context.WithTimeout(ctx, diagnoseTimeout)
	var permWG sync.WaitGroup
	defer func() {
		stopPerm()
		permWG.Wait()
	}()
	permWG.Go(func() {
		if reason := permissionRefusal(permCtx, server, opts.Net, log, relayAddrs(a, b)); reason != "" {
			refused <- reason
		}
	})
	select {
	case <-open:
	case reason := <-refused:
		res.Error = "the server refused a permission towards the peers' relay addresses: " + reason +
			" (a peer address policy, such as coturn's denied-peer-ip or refusing loopback and private peers): nothing can be relayed"
		return res
	case <-ctx.Done():
		res.Error = "the relayed connection did not open before the deadline (" + a.ICEConnectionState().String() + ")"
		return res
	}
	res.ConnectedMS = float64(time.Since(start).Microseconds()) / 1000
	if pair, err := a.SCTP().Transport().ICETransport().GetSelectedCandidatePair(); err == nil && pair != nil {
		res.LocalCandidate = describe(pair.Local)
		res.RemoteCandidate = describe(pair.Remote)
		if pair.Local.Typ != webrtc.ICECandidateTypeRelay {
			res.Error = "the selected local candidate is not a relay"
			return res
		}
	}

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	buf := make([]byte, 64)
	for seq := 0; seq < count; seq++ {
		binary.BigEndian.PutUint64(buf[0:8], uint64(seq))
		binary.BigEndian.PutUint64(buf[8:16], uint64(time.Since(start)))
		if err := dc.Send(buf); err != nil {
			res.Error = err.Error()
			break
		}
		res.Sent++
		select {
		case <-ticker.C:
		case <-ctx.Done():
			seq = count
		}
	}
	drain := time.NewTimer(relayCheckDrain)
	defer drain.Stop()
	for got := 0; got < res.Sent; {
		select {
		case <-received:
			got++
			continue
		case <-drain.C:
		case <-ctx.Done():
		}
		break
	}
	mu.Lock()
	defer mu.Unlock()
	res.Received = len(rtts)
	if res.Sent > 0 {
		res.LossPercent = 100 * float64(res.Sent-res.Received) / float64(res.Sent)
	}
	if len(rtts) > 0 {
		slices.Sort(rtts)
		res.RTTP50MS, res.RTTP90MS = percentileMS(rtts, 50), percentileMS(rtts, 90)
		res.RTTP99MS, res.RTTMaxMS = percentileMS(rtts, 99), percentileMS(rtts, 100)
	}
	res.Passed = res.Error == "" && res.Received > 0
	if res.Received == 0 && res.Error == "" {
		res.Error = "no message came back through the relay"
	}
	return res
}

// negotiate runs the offer/answer exchange between a and b in-process,
// each description carrying its complete candidate list.
func negotiate(ctx context.Context, a, b *webrtc.PeerConnection) error {
	offer, err := a.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := setLocalAndGather(ctx, a, offer); err != nil {
		return err
	}
	if err := b.SetRemoteDescription(*a.LocalDescription()); err != nil {
		return err
	}
	answer, err := b.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := setLocalAndGather(ctx, b, answer); err != nil {
		return err
	}
	if err := a.SetRemoteDescription(*b.LocalDescription()); err != nil {
		return errors.Join(errors.New("apply the answer"), err)
	}
	return nil
}

// setLocalAndGather applies a local description and waits for gathering to complete.
func setLocalAndGather(ctx context.Context, pc *webrtc.PeerConnection, d webrtc.SessionDescription) error {
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(d); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("candidate gathering did not finish before the deadline")
	}
}

// relayCandidates returns the relay candidates in pc's local description.
func relayCandidates(pc *webrtc.PeerConnection) []ice.Candidate {
	d := pc.LocalDescription()
	if d == nil {
		return nil
	}
	var out []ice.Candidate
	for line := range strings.Lines(d.SDP) {
		raw, ok := strings.CutPrefix(strings.TrimSpace(line), "a=candidate:")
		if !ok {
			continue
		}
		if c, err := ice.UnmarshalCandidate(raw); err == nil && c.Type() == ice.CandidateTypeRelay {
			out = append(out, c)
		}
	}
	return out
}

// relayAddrs returns the relay candidate addresses of pcs, one per IP
// address (permissions are per IP address, RFC 8656 section 9): the peers
// each side's relay must be permitted to reach.
func relayAddrs(pcs ...*webrtc.PeerConnection) []*net.UDPAddr {
	var out []*net.UDPAddr
	seen := map[string]bool{}
	for _, pc := range pcs {
		for _, c := range relayCandidates(pc) {
			ip := net.ParseIP(c.Address())
			if ip == nil || seen[ip.String()] {
				continue
			}
			seen[ip.String()] = true
			out = append(out, &net.UDPAddr{IP: ip, Port: c.Port()})
		}
	}
	return out
}

// permissionRefusal allocates on server directly, as each relay check peer
// does, and asks it for a permission towards each of peers of its relay's
// address family. It returns the server's refusal of one, as "TURN error
// 403 Forbidden for peer 192.0.2.1", or "" when every permission was
// granted or the question could not be put (an allocation refused, a
// timeout): the connection attempt then tells. Only 403 (Forbidden) counts:
// it is the answer to a peer address the server will not relay to.
func permissionRefusal(ctx context.Context, server peer.ICEServer, n transport.Net, log *slog.Logger, peers []*net.UDPAddr) string {
	if len(peers) == 0 {
		return ""
	}
	client, closeClient, d := dialTURN(ctx, server, n, log)
	if d != nil {
		return ""
	}
	defer closeClient()
	relay, err := client.AllocateWithContext(ctx)
	if err != nil {
		return ""
	}
	defer relay.Close()
	relayAddr, ok := relay.LocalAddr().(*net.UDPAddr)
	if !ok {
		return ""
	}
	for _, p := range peers {
		if (p.IP.To4() == nil) != (relayAddr.IP.To4() == nil) {
			continue // another family's relay: 443, not a policy
		}
		err := client.CreatePermission(p)
		var te *stun.TurnError
		if errors.As(err, &te) && te.ErrorCodeAttr.Code == stun.CodeForbidden && ctx.Err() == nil {
			return fmt.Sprintf("%s for peer %s", classifyErr(err).message, p.IP)
		}
		if err != nil {
			return ""
		}
	}
	return ""
}

func describe(c *webrtc.ICECandidate) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf("%s %s %s:%d", c.Typ, c.Protocol, c.Address, c.Port)
}

// percentileMS returns the p-th percentile of sorted durations, in milliseconds.
func percentileMS(sorted []time.Duration, p int) float64 {
	i := (len(sorted)*p + 99) / 100
	i = min(max(i-1, 0), len(sorted)-1)
	return float64(sorted[i].Microseconds()) / 1000
}
