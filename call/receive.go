package call

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	rtpstats "github.com/pion/interceptor/pkg/stats"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/call/media"
)

// inTrack is one received track.
type inTrack struct {
	track *webrtc.TrackRemote
	// recv is set once its receiver is made, after the track is listed
	// (nil when echoing): the status line and the hang-up may read it
	// meanwhile.
	recv atomic.Pointer[media.Receiver]
	err  error
	done chan struct{}
}

// receive starts reading a remote track: counting, verifying, recording
// it, or echoing it back.
func (m *mediaSet) receive(track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	s := m.s
	s.tl.mark(PhaseFirstRTP) // OnTrack fires with the track's first packet
	// The peer's sender reports reach the interceptors only when read; the
	// receiver reports we send then carry LSR/DLSR, which give the peer
	// its RTT.
	go m.watchReceiverRTCP(receiver)
	it := &inTrack{track: track, done: make(chan struct{})}
	m.mu.Lock()
	if m.closed {
		// pion runs OnTrack on a goroutine of its own, which may come
		// after the call ended: nothing more is read or recorded.
		m.mu.Unlock()
		return
	}
	m.wg.Add(1) // before close's Wait, which follows closed
	echo := m.echo[track.Kind()]
	m.in = append(m.in, it)
	m.mu.Unlock()
	if echo != nil {
		m.wg.Done()
		go m.echoTrack(it, echo)
		return
	}
	ssrc := uint32(track.SSRC())
	opts := media.ReceiveOptions{
		RecordDir: s.opts.RecordDir, Verify: m.verifier, Logger: s.log,
		RequestKeyframe: func() {
			_ = s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
		},
	}
	recv, err := media.NewReceiver(track, opts)
	if err != nil {
		m.mu.Lock()
		it.err = err
		m.mu.Unlock()
		close(it.done)
		m.wg.Done()
		s.endCall(EndFailed, err)
		return
	}
	it.recv.Store(recv)
	go func() {
		defer m.wg.Done()
		defer close(it.done)
		go m.watchKeyframe(it)
		if err := recv.Run(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
			m.mu.Lock()
			it.err = err
			m.mu.Unlock()
			if errors.Is(err, media.ErrRecord) {
				s.endCall(EndFailed, err)
			}
		}
	}()
}

// watchReceiverRTCP reads a receiver's RTCP until it closes. RTCP BYEs
// (RFC 3550 6.6) from the peer for every source we receive end the call
// as its hang-up (sayGoodbye sends them), also when neither the hub nor a
// data channel carried it. A BYE for some of them is a stream that
// stopped (a browser's camera turned off), not the end of the call.
func (m *mediaSet) watchReceiverRTCP(r *webrtc.RTPReceiver) {
	for {
		pkts, _, err := r.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if bye, ok := p.(*rtcp.Goodbye); ok && m.goodbye(bye.Sources) && m.s.isConnected() {
				m.s.endCall(EndPeerHungUp, nil)
			}
		}
	}
}

// goodbye records the sources of a BYE and reports whether every source
// received so far has said goodbye.
func (m *mediaSet) goodbye(sources []uint32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byes == nil {
		m.byes = make(map[uint32]bool)
	}
	for _, ssrc := range sources {
		m.byes[ssrc] = true
	}
	for _, it := range m.in {
		if !m.byes[uint32(it.track.SSRC())] {
			return false
		}
	}
	return len(m.in) > 0
}

// sayGoodbye sends an RTCP BYE for the sources we send: the peer's sign
// that the call ended when the hub is gone and no data channel is open.
// A side that sends nothing has no source of its own and says goodbye with
// goodbyeReceiving instead.
func (m *mediaSet) sayGoodbye() {
	var ssrcs []uint32
	for _, snd := range m.s.pc.GetSenders() {
		if snd.Track() == nil {
			continue
		}
		for _, e := range snd.GetParameters().Encodings {
			ssrcs = append(ssrcs, uint32(e.SSRC))
		}
	}
	var bye []rtcp.Packet
	if len(ssrcs) > 0 {
		// A compound packet starts with a report (RFC 3550 6.1).
		bye = []rtcp.Packet{&rtcp.ReceiverReport{SSRC: ssrcs[0]}, &rtcp.Goodbye{Sources: ssrcs}}
	} else if bye = m.goodbyeReceiving(); bye == nil {
		return
	}
	if err := m.s.pc.WriteRTCP(bye); err != nil {
		m.s.log.Debug("call: sending RTCP BYE", "err", err)
	}
}

// maxReportBlocks is the most report blocks one RTCP report holds (a
// 5-bit count, RFC 3550 6.4.2).
const maxReportBlocks = 31

// goodbyeReceiving is the hang-up of a side that receives media but sends
// none, or nil when it receives none either: a receiver report on every
// source it receives, from an SSRC of its own, and a BYE that names no
// source (RFC 3550 6.6 allows a count of zero).
//
// A BYE naming that SSRC would say the same in RFC 3550's terms, but never
// reach the peer's code: pion (srtp's SRTCP session) hands each packet of a
// compound packet to the streams of the SSRCs it names and drops those for
// an SSRC it has no stream of, which a peer that sends no media never has
// (its receiver reports come from a random SSRC per received stream, pion's
// report interceptor). A packet that names none goes to the streams the rest
// of its compound packet names: with the receiver report, to the RTCP
// readers of the peer's senders, where senderGoodbye ends the call.
//
// The report is this SSRC's first, so its loss fraction covers the whole
// call (RFC 3550 A.3); it has no LSR and DLSR, which leaves the peer's
// round-trip time as it was.
func (m *mediaSet) goodbyeReceiving() []rtcp.Packet {
	m.mu.Lock()
	ins := append([]*inTrack(nil), m.in...)
	m.mu.Unlock()
	rr := &rtcp.ReceiverReport{}
	received := map[uint32]bool{}
	for _, it := range ins {
		ssrc := uint32(it.track.SSRC())
		received[ssrc] = true
		recv := it.recv.Load()
		if recv == nil || len(rr.Reports) == maxReportBlocks {
			continue // the BYE matters, not a report on every source
		}
		st := recv.Stats()
		report := rtcp.ReceptionReport{SSRC: ssrc, LastSequenceNumber: st.HighestSeq}
		if lost := max(st.Lost, 0); lost > 0 {
			report.TotalLost = uint32(min(lost, 1<<23-1)) // 24 bits, signed
			report.FractionLost = uint8(min(lost*256/(int64(st.Packets)+lost), 255))
		}
		if rs := m.s.rtpStats(ssrc); rs != nil {
			report.Jitter = uint32(rs.InboundRTPStreamStats.Jitter * float64(it.track.Codec().ClockRate))
		}
		rr.Reports = append(rr.Reports, report)
	}
	if len(rr.Reports) == 0 {
		return nil
	}
	for rr.SSRC == 0 || received[rr.SSRC] {
		rr.SSRC = rand.Uint32()
	}
	return []rtcp.Packet{rr, &rtcp.Goodbye{}}
}

// senderGoodbye handles an RTCP BYE read on one of our senders. A peer
// that sends media says goodbye for its sources (watchReceiverRTCP); one
// that sends none has no source of its own, and its goodbye reaches our
// senders (goodbyeReceiving): while we receive nothing, such a BYE ends
// the call.
func (m *mediaSet) senderGoodbye() {
	m.mu.Lock()
	receiving := len(m.in) > 0
	m.mu.Unlock()
	if !receiving && m.s.isConnected() {
		m.s.endCall(EndPeerHungUp, nil)
	}
}

// watchKeyframe marks the first keyframe of a video track.
func (m *mediaSet) watchKeyframe(it *inTrack) {
	if it.track.Kind() != webrtc.RTPCodecTypeVideo {
		return
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-it.done:
			return
		case <-t.C:
			if st := it.recv.Load().Stats(); !st.FirstKeyframe.IsZero() {
				m.s.tl.markAt(PhaseFirstKeyframe, st.FirstKeyframe)
				return
			}
		}
	}
}

// echoTrack sends a received track's packets back on the echo track.
func (m *mediaSet) echoTrack(it *inTrack, echo *webrtc.TrackLocalStaticRTP) {
	defer close(it.done)
	if !strings.EqualFold(it.track.Codec().MimeType, echo.Codec().MimeType) {
		m.s.log.Warn("call: cannot echo this codec", "codec", it.track.Codec().MimeType, "echo", echo.Codec().MimeType)
	}
	if it.track.Kind() == webrtc.RTPCodecTypeVideo {
		// Start the echo with a keyframe.
		_ = m.s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(it.track.SSRC())}})
	}
	for {
		pkt, _, err := it.track.ReadRTP()
		if err != nil {
			return
		}
		if err := echo.WriteRTP(pkt); err != nil {
			return
		}
	}
}

// forwardPLI passes the peer's keyframe requests for an echo track on to
// the sender of the track being echoed.
func (m *mediaSet) forwardPLI(sender *webrtc.RTPSender, kind webrtc.RTPCodecType) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.Goodbye:
				m.senderGoodbye()
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				m.mu.Lock()
				for _, it := range m.in {
					if it.track.Kind() == kind {
						_ = m.s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(it.track.SSRC())}})
					}
				}
				m.mu.Unlock()
			}
		}
	}
}

// err is the first media error that makes the call unhealthy: a recording
// that failed, or a source that could not be sent.
func (m *mediaSet) err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, it := range m.in {
		if it.err != nil && errors.Is(it.err, media.ErrRecord) {
			return it.err
		}
	}
	for _, t := range m.out {
		if t.err != nil {
			return t.err
		}
	}
	return nil
}

// reports builds the per-track statistics from the receivers, the senders
// and pion's stats report.
func (m *mediaSet) reports(stats webrtc.StatsReport, sent map[uint32]*rtpstats.Stats, connected time.Duration) []TrackReport {
	// Wait (bounded) for the receivers to finish their recordings.
	m.mu.Lock()
	ins := append([]*inTrack(nil), m.in...)
	outs := append([]*outTrack(nil), m.out...)
	m.mu.Unlock()
	deadline := time.After(finishTimeout)
	for _, it := range ins {
		select {
		case <-it.done:
		case <-deadline:
		}
	}
	inbound := map[uint32]webrtc.InboundRTPStreamStats{}
	for _, st := range stats {
		switch v := st.(type) {
		case webrtc.InboundRTPStreamStats:
			inbound[uint32(v.SSRC)] = v
		}
	}
	secs := connected.Seconds()
	out := []TrackReport{}
	for _, t := range outs {
		r := TrackReport{Direction: "out", Kind: t.src.Kind().String(), Codec: t.src.Codec().MimeType}
		snap := t.stats.Snapshot()
		r.Frames, r.Bytes = snap.Frames, snap.Bytes
		if ssrc, ok := senderSSRC(t.sender); ok {
			r.SSRC = ssrc
			if st := sent[ssrc]; st != nil {
				r.Packets = st.OutboundRTPStreamStats.PacketsSent
				r.NACKs, r.PLIs = st.OutboundRTPStreamStats.NACKCount, st.OutboundRTPStreamStats.PLICount
				ri := st.RemoteInboundRTPStreamStats
				r.Lost = ri.PacketsLost
				r.LossFraction = ri.FractionLost
				r.RTTMS = ms(ri.RoundTripTime)
				r.JitterMS = ri.Jitter * 1000
			}
		}
		if rtt := t.rttNanos.Load(); rtt > 0 {
			r.RTTMS = ms(time.Duration(rtt))
		}
		if secs > 0 {
			r.BitrateBPS = float64(r.Bytes) * 8 / secs
		}
		if t.err != nil {
			r.Error = t.err.Error()
		}
		out = append(out, r)
	}
	for _, c := range m.captured {
		r := TrackReport{Direction: "out", Kind: c.kind, Codec: c.codec}
		if r.Codec == "" {
			r.Codec = codecOf(c.sender)
		}
		if ssrc, ok := senderSSRC(c.sender); ok {
			r.SSRC = ssrc
			if st := sent[ssrc]; st != nil {
				r.Packets, r.Bytes = st.OutboundRTPStreamStats.PacketsSent, st.OutboundRTPStreamStats.BytesSent
				r.NACKs, r.PLIs = st.OutboundRTPStreamStats.NACKCount, st.OutboundRTPStreamStats.PLICount
				r.Lost, r.LossFraction = st.RemoteInboundRTPStreamStats.PacketsLost, st.RemoteInboundRTPStreamStats.FractionLost
				r.RTTMS = ms(st.RemoteInboundRTPStreamStats.RoundTripTime)
			}
		}
		if secs > 0 {
			r.BitrateBPS = float64(r.Bytes) * 8 / secs
		}
		out = append(out, r)
	}
	for _, it := range ins {
		ssrc := uint32(it.track.SSRC())
		r := TrackReport{Direction: "in", Kind: it.track.Kind().String(), Codec: it.track.Codec().MimeType, SSRC: ssrc}
		if in, ok := inbound[ssrc]; ok {
			r.Packets, r.Bytes = uint64(in.PacketsReceived), in.BytesReceived
			r.Lost = int64(in.PacketsLost)
			r.JitterMS = in.Jitter * 1000
			r.NACKs, r.PLIs = in.NACKCount, in.PLICount
		}
		if recv := it.recv.Load(); recv != nil {
			st := recv.Stats()
			r.Packets, r.Bytes, r.Lost = st.Packets, st.Bytes, max(r.Lost, st.Lost)
			r.Frames, r.Keyframes = st.Frames, st.Keyframes
			if st.Verify != nil {
				r.Verified, r.Mismatched = st.Verify.Verified, st.Verify.Mismatched
			}
			if st.Recording != nil {
				r.Recording = st.Recording.Path
				if st.Recording.Error != "" && r.Error == "" {
					r.Error = "recording: " + st.Recording.Error
				}
			}
		}
		if total := r.Packets + uint64(max(r.Lost, 0)); total > 0 {
			r.LossFraction = float64(max(r.Lost, 0)) / float64(total)
		}
		if secs > 0 {
			r.BitrateBPS = float64(r.Bytes) * 8 / secs
		}
		if it.err != nil && r.Error == "" {
			r.Error = it.err.Error()
		}
		out = append(out, r)
	}
	return out
}

// sentStats reads the RTP statistics of the sent tracks; call it before
// the PeerConnection closes, which drops them.
// A peer that hangs up closes the connection from its side, which drops
// them too: the latest reading is kept (refreshed by keepSentStats).
func (m *mediaSet) sentStats() map[uint32]*rtpstats.Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastSent == nil {
		m.lastSent = map[uint32]*rtpstats.Stats{}
	}
	var senders []*webrtc.RTPSender
	for _, c := range m.captured {
		senders = append(senders, c.sender)
	}
	for _, t := range m.out {
		senders = append(senders, t.sender)
	}
	for _, snd := range senders {
		if ssrc, ok := senderSSRC(snd); ok {
			if st := m.s.rtpStats(ssrc); st != nil {
				m.lastSent[ssrc] = st
			}
		}
	}
	return maps.Clone(m.lastSent)
}

// sentStatsInterval is how often keepSentStats reads the sent tracks' statistics.
const sentStatsInterval = 200 * time.Millisecond

// keepSentStats refreshes the sent tracks' statistics until ctx ends.
func (m *mediaSet) keepSentStats(ctx context.Context) {
	t := time.NewTicker(sentStatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.sentStats()
		}
	}
}

// senderSSRC is the SSRC a sender sends with.
func senderSSRC(s *webrtc.RTPSender) (uint32, bool) {
	params := s.GetParameters()
	if len(params.Encodings) == 0 {
		return 0, false
	}
	return uint32(params.Encodings[0].SSRC), true
}

// statusLine summarises the call in one line for the live status.
func (m *mediaSet) statusLine(connected time.Duration) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	parts := []string{fmt.Sprintf("connected %s", connected.Round(time.Second))}
	for _, it := range m.in {
		recv := it.recv.Load()
		if recv == nil {
			continue
		}
		st := recv.Stats()
		p := fmt.Sprintf("↓%s %d pkts", st.Kind, st.Packets)
		if st.Kind == "video" {
			p += fmt.Sprintf(" %d frames", st.Frames)
		}
		if st.Lost > 0 {
			p += fmt.Sprintf(" %d lost", st.Lost)
		}
		parts = append(parts, p)
	}
	for _, t := range m.out {
		parts = append(parts, fmt.Sprintf("↑%s %d frames", t.src.Kind(), t.stats.Snapshot().Frames))
	}
	return strings.Join(parts, " · ")
}
